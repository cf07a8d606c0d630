"""Overnight batches: every variant once, nothing twice, resumable after kill -9, a report in the morning."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from conftest import manifest_text
from media import tone_video
from PIL import Image

from clipper.batch.ledger import Ledger, ledger_path
from clipper.batch.run import LocalExecutor, run_batch
from clipper.media import content_hash

pytestmark = pytest.mark.slow
PLATFORMS = ["telegram", "tiktok"]
LANGUAGES = ["en", "fr"]


def _batch_tree(root: Path, n: int = 3) -> Path:
    """n manifests, each with its own small source, 2 languages × 2 platforms."""
    folder = root / "manifests"
    folder.mkdir(parents=True)
    for i in range(n):
        tone_video(root / f"src{i}.mp4", seconds=2.5, size=(320, 240), freq=300 + 100 * i)
        text = manifest_text(
            {"cam": f"../src{i}.mp4"}, [{"source": "cam", "in": 0.2, "out": 1.8}], platforms=PLATFORMS, id=f"clip{i}"
        )
        (folder / f"clip{i}.yaml").write_text(text.replace("languages:\n  - en", "languages:\n  - en\n  - fr"))
    return folder


def _expected(n: int = 3) -> set[str]:
    return {f"clip{i}/clip{i}.{lang}.{p}.mp4" for i in range(n) for lang in LANGUAGES for p in PLATFORMS}


def _check_outputs(out: Path, expected: set[str]) -> None:
    """Every expected output exactly once, matching its sidecar, whole; nothing half-written anywhere."""
    found = {str(p.relative_to(out)) for p in out.glob("*/*.mp4")}
    assert found == expected, found ^ expected
    for rel in expected:
        mp4 = out / rel
        side = json.loads(mp4.with_suffix(".json").read_text())
        assert side["output_sha256"] == content_hash(mp4)
        assert side["job_identity"]
        with av.open(str(mp4)) as c:
            frames = sum(1 for _ in c.decode(video=0))
        assert frames == side["frames"], rel
    leftovers = [
        p
        for p in out.rglob("*")
        if ".partial" in p.name or p.name.startswith(".work-") or (p.parent.name == ".work" and p.is_dir())
    ]
    assert not leftovers, leftovers


def _mtimes(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in out.glob("*/*.mp4")}


def test_a_batch_renders_every_variant_and_a_rerun_renders_nothing(tmp_path):
    manifests = _batch_tree(tmp_path)
    out = tmp_path / "output"
    first = run_batch([manifests], out, workers=2)
    assert (first.total, first.rendered, first.failed, first.problems) == (12, 12, 0, 0)
    _check_outputs(out, _expected())
    before = _mtimes(out)

    again = run_batch([manifests], out, workers=2)
    assert (again.total, again.rendered, again.skipped) == (12, 0, 12)
    assert _mtimes(out) == before  # nothing was rendered again

    # Editing one manifest's platforms renders only the new variants.
    doc = manifests / "clip1.yaml"
    doc.write_text(doc.read_text().replace("  - tiktok", "  - tiktok\n  - youtube"))
    edited = run_batch([manifests], out, workers=2)
    assert (edited.total, edited.rendered, edited.skipped) == (14, 2, 12)
    after = _mtimes(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == [
        str(out / "clip1" / "clip1.en.youtube.mp4"),
        str(out / "clip1" / "clip1.fr.youtube.mp4"),
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"done": 14}
    assert (out / "report.html").read_text().count('<tr class="done">') == 14


def test_a_broken_manifest_is_reported_first_and_the_rest_still_render(tmp_path):
    manifests = _batch_tree(tmp_path, n=2)
    (manifests / "broken.yaml").write_text(
        manifest_text({"cam": "../missing.mp4"}, [{"source": "cam", "in": 0, "out": 1}], id="broken")
    )
    out = tmp_path / "output"
    r = subprocess.run(
        [sys.executable, "-m", "clipper.cli", "batch", str(manifests), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 8, r.stderr
    assert "8 job(s): 8 rendered, 0 already done, 0 failed, 1 manifest(s) not planned" in r.stdout
    assert "Traceback" not in r.stderr
    _check_outputs(out, _expected(2))
    report = json.loads((out / "report.json").read_text())
    [problem] = report["problems"]
    assert problem["manifest"].endswith("broken.yaml") and "missing.mp4" in problem["error"]
    html = (out / "report.html").read_text()
    assert html.index("broken.yaml") < html.index('<tr class="done">')  # failures first
    status = subprocess.run(
        [sys.executable, "-m", "clipper.cli", "batch", "status", str(out)], capture_output=True, text=True, check=True
    )
    assert "8 done" in status.stdout and "not planned" in status.stdout


def test_a_batch_removes_the_report_and_thumbnail_files_a_killed_coordinator_left(tmp_path):
    # Found by the kill -9 test: a coordinator killed while ffmpeg wrote a thumbnail left its .partial.jpg behind.
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "broken.yaml").write_text(
        manifest_text({"cam": "../missing.mp4"}, [{"source": "cam", "in": 0, "out": 1}], id="broken")
    )
    out = tmp_path / "output"
    thumbs = out / ".batch" / "thumbs"
    thumbs.mkdir(parents=True)
    stale = [thumbs / ".abc-0123456789abcdef.4242.1.partial.jpg", out / ".report.json.4242.partial"]
    for path in stale:
        path.write_bytes(b"half")
    kept = thumbs / "abc-0123456789abcdef.jpg"
    kept.write_bytes(b"a finished strip")
    summary = run_batch([manifests], out, workers=1)
    assert summary.problems and not any(path.exists() for path in stale)
    assert kept.read_bytes() == b"a finished strip"


def _marked(mark: str) -> list[str]:
    """Processes whose environment carries `mark` (this test's batch, its workers and their ffmpeg)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark.encode() in env.read_bytes():
                found.append(
                    env.parent.name + " " + (env.parent / "cmdline").read_bytes()[:80].decode(errors="replace")
                )
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def _gone(mark: str, within: float) -> bool:
    end = time.monotonic() + within
    while _marked(mark):
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def test_killed_twenty_times_the_batch_still_makes_every_output_exactly_once(tmp_path, capsys):
    manifests = _batch_tree(tmp_path)
    out = tmp_path / "output"
    cmd = [sys.executable, "-m", "clipper.cli", "batch", str(manifests), "--out", str(out), "--workers", "2", "-q"]
    mark = f"clipper-batch-test-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "CLIPPER_TEST_MARK": mark}
    rng = random.Random(20)
    survived = 0
    for _ in range(20):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.2, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Workers and their ffmpeg processes die with the coordinator: none may go on working.
        assert _gone(mark, within=5.0), _marked(mark)
        survived += 1
    final = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    assert final.returncode == 0, final.stderr
    _check_outputs(out, _expected())
    ledger = Ledger(ledger_path(out), readonly=True)
    try:
        assert ledger.counts() == {"done": 12}  # no row stuck in running or pending
    finally:
        ledger.close()
    with capsys.disabled():
        print(f"\nkill -9 survived: {survived}/20")
    assert survived == 20


def test_sigterm_to_the_coordinator_stops_its_workers_mid_job(tmp_path):
    # The workers ignore SIGINT and were not sent SIGTERM: the coordinator waited while they finished and published
    # their jobs under a ledger that said "interrupted" (found in review).
    manifests = _batch_tree(tmp_path)
    out = tmp_path / "output"
    cmd = [sys.executable, "-m", "clipper.cli", "batch", str(manifests), "--out", str(out), "--workers", "2", "-q"]
    mark = f"clipper-batch-term-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "CLIPPER_TEST_MARK": mark}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob(".work/*/.*.partial")):
        time.sleep(0.02)
    assert list(out.glob(".work/*/.*.partial")), "no render started"
    signalled = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert _gone(mark, within=5.0), _marked(mark)
    late = [p.name for p in out.glob("*/*.json") if p.stat().st_mtime > signalled + 0.5]
    assert late == [], f"published after SIGTERM: {late}"
    # "nothing half-written was kept" is true when the command returns, not after the next run's clean-up.
    assert "nothing half-written was kept" in err
    leftovers = [
        p
        for p in out.rglob("*")
        if ".partial" in p.name or p.name.startswith(".work-") or (p.parent.name == ".work" and p.is_dir())
    ]
    assert leftovers == [], leftovers


def test_a_dask_cluster_makes_the_same_outputs_as_the_local_pool(tmp_path):
    pytest.importorskip("distributed")
    manifests = _batch_tree(tmp_path)
    local, dask = tmp_path / "local", tmp_path / "dask"
    a = run_batch([manifests], local, workers=2)
    b = run_batch([manifests], dask, dask="local", workers=2)
    assert (a.rendered, b.rendered, a.failed, b.failed) == (12, 12, 0, 0)
    _check_outputs(local, _expected())
    _check_outputs(dask, _expected())
    # The same jobs on either executor: the same identities and, byte for byte, the same files.
    for rel in _expected():
        side_a = json.loads((local / rel).with_suffix(".json").read_text())
        side_b = json.loads((dask / rel).with_suffix(".json").read_text())
        assert side_a["job_identity"] == side_b["job_identity"], rel
        assert content_hash(local / rel) == content_hash(dask / rel), rel


class _FlakyPool(LocalExecutor):
    """The local pool, with the first outcome of each chosen render replaced: a lost worker (transient), or the
    verify gate's verdict (anonymity). The boundary between coordinator and workers is the only thing faked."""

    def __init__(self, workers: int, failure: str, every: bool = False) -> None:
        super().__init__(workers)
        self.failure, self.every, self.seen = failure, every, set()
        self.args: dict[object, tuple] = {}

    def submit(self, fn, *args):
        fut = super().submit(fn, *args)
        self.args[fut] = args
        return fut

    def outcome(self, future):
        out = super().outcome(future)
        args = self.args.pop(future, ())
        if len(args) == 5 and (self.every or args[4] not in self.seen):  # a render job: (…, identity)
            self.seen.add(args[4])
            if self.failure == "anonymity":  # a gate that fails publishes nothing: take the output back
                for side in Path(args[1]).glob("*/*.json"):
                    if json.loads(side.read_text()).get("job_identity") == args[4]:
                        side.with_suffix(".mp4").unlink()
                        side.unlink()
            return {
                "ok": False,
                "failure": self.failure,
                "error": f"simulated {self.failure}",
                "fix": "x",
                "seconds": 1,
            }
        return out


def test_transient_failures_are_retried_with_backoff(tmp_path, monkeypatch):
    monkeypatch.setattr("clipper.batch.run.BACKOFF_S", 0.2)
    manifests = _batch_tree(tmp_path, n=1)
    out = tmp_path / "output"
    pool = _FlakyPool(2, "transient")
    from clipper.cli import _LineProgress

    lines: list[str] = []
    progress = _LineProgress(quiet=False)
    progress._say = lines.append  # type: ignore[method-assign]
    try:
        summary = run_batch([manifests], out, executor=pool, progress=progress)
    finally:
        pool.close()
    assert (summary.total, summary.failed) == (4, 0)
    # A try that will be repeated is not a finished job: the counter never passes the total ("[28/10]" before).
    counted = [line for line in lines if line.startswith("[")]
    assert sum("failed, will retry" in line for line in counted) == 4
    assert counted[-1].startswith("[4/4]") and all(int(line[1 : line.index("/")]) <= 4 for line in counted), counted
    ledger = Ledger(ledger_path(out), readonly=True)
    try:
        assert [r.attempts for r in ledger.rows()] == [2, 2, 2, 2]
        assert all(r.status == "done" and r.error is None for r in ledger.rows())
    finally:
        ledger.close()
    _check_outputs(out, {p for p in _expected(1)})


def test_an_anonymity_failure_is_never_retried_blindly_and_heads_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr("clipper.batch.run.BACKOFF_S", 0.2)
    manifests = _batch_tree(tmp_path, n=1)
    out = tmp_path / "output"
    pool = _FlakyPool(2, "anonymity", every=True)
    try:
        summary = run_batch([manifests], out, executor=pool)
    finally:
        pool.close()
    assert summary.failed == 4 and not summary.ok
    ledger = Ledger(ledger_path(out), readonly=True)
    try:
        assert {(r.status, r.failure, r.attempts) for r in ledger.rows()} == {("failed", "anonymity", 1)}
    finally:
        ledger.close()
    report = json.loads((out / "report.json").read_text())
    assert report["jobs"][0]["failure"] == "anonymity"
    # After a fix, --retry-failed queues them again.
    again = run_batch([manifests], out, workers=2, retry_failed=True)
    assert (again.rendered, again.failed) == (4, 0)


class _NightEndsAfterFirstRender(LocalExecutor):
    """The local pool, and a coordinator clock that jumps ten hours when the first render comes back: the night
    ends mid-batch whatever this machine's speed (three real seconds of night once held all four renders)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.offset = 0.0
        self.render_args: dict[object, tuple] = {}

    def time(self) -> float:
        return time.time() + self.offset

    def submit(self, fn, *args):
        fut = super().submit(fn, *args)
        self.render_args[fut] = args
        return fut

    def outcome(self, future):
        if len(self.render_args.pop(future, ())) == 5:  # a render job: (…, identity)
            self.offset = 10 * 3600.0
        return super().outcome(future)


def test_max_hours_stops_taking_jobs_and_the_next_run_goes_on(tmp_path, monkeypatch):
    import types

    import clipper.batch.run

    manifests = _batch_tree(tmp_path, n=1)
    out = tmp_path / "output"
    pool = _NightEndsAfterFirstRender(1)
    clock = types.SimpleNamespace(time=pool.time, sleep=time.sleep, monotonic=time.monotonic)
    monkeypatch.setattr(clipper.batch.run, "time", clock)
    try:
        first = run_batch([manifests], out, executor=pool, max_hours=1)
    finally:
        pool.close()
    monkeypatch.undo()
    assert first.stopped_early and first.rendered == 1, first
    second = run_batch([manifests], out, workers=1)
    assert second.rendered == 4 - first.rendered and second.ok
    _check_outputs(out, _expected(1))


LONG_CUE = "WEBVTT\n\n00:00:00.300 --> 00:00:01.500\n" + "word " * 400 + "\n"  # cannot fit any frame


def test_outputs_no_manifest_asks_for_any_more_are_withdrawn_even_when_the_fix_fails(tmp_path):
    manifests = _batch_tree(tmp_path, n=1)
    doc = manifests / "clip0.yaml"
    doc.write_text(doc.read_text().replace("  - tiktok\n", ""))
    out = tmp_path / "output"
    assert run_batch([manifests], out, workers=1).rendered == 2
    assert sorted(p.name for p in (out / "clip0").glob("*.mp4")) == ["clip0.en.telegram.mp4", "clip0.fr.telegram.mp4"]

    # The French translation named the man: the editor drops it. Its published file must go, not linger unlisted;
    # so does a review sheet of the manifest as it was (`clipper review` writes it beside the outputs).
    Image.new("RGB", (8, 8)).save(out / "clip0" / "clip0.review.png")
    doc.write_text(doc.read_text().replace("  - fr\n", ""))
    dropped = run_batch([manifests], out, workers=1)
    assert dropped.withdrawn == ["clip0/clip0.fr.telegram.mp4", "clip0/clip0.review.png"] and dropped.ok
    assert sorted(p.name for p in (out / "clip0").iterdir()) == ["clip0.en.telegram.json", "clip0.en.telegram.mp4"]
    report = json.loads((out / "report.json").read_text())
    assert report["withdrawn"] == dropped.withdrawn and report["counts"] == {"done": 1}
    assert "clip0/clip0.fr.telegram.mp4" in (out / "report.html").read_text()
    ledger = Ledger(ledger_path(out), readonly=True)
    assert [r.language for r in ledger.rows()] == ["en"]
    ledger.close()

    # A fix that makes the manifest unplannable (a cue too long to draw): the old output, made from the manifest
    # before the fix, is not left standing, and nothing else in the folder is either.
    (out / "clip0" / "clip0.fr.telegram.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nan orphan\n")
    (tmp_path / "manifests" / "long.en.vtt").write_text(LONG_CUE, encoding="utf-8")
    doc.write_text(doc.read_text().replace("outputs:", "subtitles:\n  en: long.en.vtt\noutputs:"))
    failed = run_batch([manifests], out, workers=1)
    assert failed.problems == 1 and failed.withdrawn == ["clip0/clip0.en.telegram.mp4"]
    assert sorted(p.name for p in (out / "clip0").iterdir() if not p.name.startswith(".")) == [
        "clip0.fr.telegram.srt"  # the manifest cannot be planned: only what its ledger rows name is known to be its
    ]
    # Planned again: a piece of an output whose sidecar is gone (an interrupted publish) goes too.
    doc.write_text(doc.read_text().replace("subtitles:\n  en: long.en.vtt\n", ""))
    fixed = run_batch([manifests], out, workers=1)
    assert fixed.ok and fixed.rendered == 1 and fixed.withdrawn == ["clip0/clip0.fr.telegram.mp4"]
    assert sorted(p.name for p in (out / "clip0").iterdir() if not p.name.startswith(".")) == [
        "clip0.en.telegram.json",
        "clip0.en.telegram.mp4",
    ]


def test_two_manifests_with_one_id_are_both_refused(tmp_path):
    manifests = _batch_tree(tmp_path, n=2)
    second = manifests / "clip1.yaml"
    second.write_text(second.read_text().replace("id: clip1", "id: clip0"))
    out = tmp_path / "output"
    summary = run_batch([manifests], out, workers=1)
    assert summary.problems == 2 and summary.total == 0 and not summary.ok
    problems = json.loads((out / "report.json").read_text())["problems"]
    assert len(problems) == 2 and all("is also the id of" in p["error"] for p in problems)
    assert not (out / "clip0").exists() or not list((out / "clip0").glob("*.mp4"))


def test_status_after_a_killed_coordinator_says_interrupted_not_running(tmp_path):
    from clipper.batch.run import CoordinatorLock

    manifests = _batch_tree(tmp_path, n=1)
    out = tmp_path / "output"
    run_batch([manifests], out, workers=1)
    ledger = Ledger(ledger_path(out))
    row = ledger.rows()[0]
    ledger.start(row.identity, "host/local/worker-1", lease_s=120)  # as a kill -9 mid-job leaves it
    ledger.close()

    def status() -> str:
        cmd = [sys.executable, "-m", "clipper.cli", "batch", "status", str(out)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    dead = status()
    assert "1 interrupted" in dead and "no batch is running" in dead and "  running " not in dead, dead
    lock = CoordinatorLock(out)  # a live coordinator
    try:
        alive = status()
    finally:
        lock.release()
    assert "1 running" in alive and "on host/local/worker-1" in alive and "interrupted" not in alive, alive


def test_a_manifest_named_twice_is_one_manifest(tmp_path):
    from clipper.batch.run import find_manifests

    manifests = _batch_tree(tmp_path, n=1)
    assert find_manifests([manifests / "clip0.yaml", manifests]) == [(manifests / "clip0.yaml").resolve()]

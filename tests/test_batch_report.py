"""The morning report: failures first (anonymity on top), thumbnails from the rendered files, opened in a real
headless browser (Debian's chromium), with a screenshot kept in test-artifacts/."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import manifest_text
from PIL import Image

from clipper.batch.jobs import RenderJob
from clipper.batch.ledger import Ledger, ledger_path
from clipper.batch.report import THUMB_GAP, THUMB_PX, THUMBS, thumbnail_frames, write_report

EVIL = '<script>alert("x")</script> & "quotes"'


def _job(manifest_id: str, lang: str, platform: str, manifest: Path | None = None) -> RenderJob:
    identity = hashlib.sha256(f"{manifest_id}.{lang}.{platform}".encode()).hexdigest()
    return RenderJob(
        identity=identity,
        manifest=manifest or Path(f"/night/manifests/{manifest_id}.yaml"),
        manifest_id=manifest_id,
        language=lang,
        platform=platform,
        output=f"{manifest_id}.{lang}.{platform}.mp4",
        inputs={"/night/footage/interview.mp4": "0" * 64},
    )


def _add_failures(ledger: Ledger, manifests: Path) -> tuple[RenderJob, RenderJob]:
    """An anonymity failure and a permanent one, written through the ledger's API as the coordinator writes them."""
    anon = _job("clip0", "en", "youtube", manifests / "clip0.yaml")
    broken = _job("clip1", "fr", "x", manifests / "clip1.yaml")
    ledger.add([anon, broken])
    for job in (anon, broken):
        ledger.start(job.identity, "test/local/worker-1", 60)
    ledger.fail(
        anon.identity,
        failure="anonymity",
        error="clip0.yaml: clip0.en.youtube.mp4 was not published: the verify detector found a face in 3 frame(s), "
        "at 0.40 s, 0.44 s, 0.48 s\n  hint: look at those times with `clipper preview --masks`",
        fix="look at those times with `clipper preview --masks`",
        retry_at=None,
        seconds=3.2,
    )
    ledger.fail(
        broken.identity,
        failure="permanent",
        error=f"clip1.fr.x.mp4 failed its checks and was not published:\n  file_size: {EVIL}",
        fix=f"lower the bitrate {EVIL}",
        retry_at=None,
        seconds=2.1,
    )
    return anon, broken


def _sidecar(out: Path, job: RenderJob) -> None:
    """The parts of a published sidecar the report reads."""
    side = out / job.manifest_id / Path(job.output).with_suffix(".json")
    side.parent.mkdir(parents=True, exist_ok=True)
    checks = {
        "faces": {"checked": True, "frames_checked": 40, "frames": 50, "faces_found": 0,
                  "dismissed_on_closer_look": [{"time_s": 1.2, "score": 0.6}]},
        "voice": {"checked": True, "similarity": 0.5123, "threshold": 0.75, "passed": True},
        "no_foreign_metadata": {"ok": True, "measured": [], "expected": []},
        "no_identifying_bytes": {"ok": False, "measured": [EVIL], "expected": []},
    }  # fmt: skip
    meta = {
        "job_identity": job.identity,
        "frames": 50,
        "fps": "25",
        "duration_s": 2.0,
        "width": 1080,
        "height": 1920,
        "cards": {},
        "anonymity": {"faces": "masked: pixelate", "voice": "changed"},
        "faces": {"mode": "pixelate", "frames_with_faces_detected": 12},
        "checks": checks,
    }
    side.write_text(json.dumps(meta))


# ---------------------------------------------------------------------------------------------- fast


def test_thumbnail_frames_are_evenly_spaced_middles():
    assert thumbnail_frames(100) == [10, 30, 50, 70, 90]
    assert thumbnail_frames(3) == [0, 1, 2]
    assert thumbnail_frames(0) == []


def test_report_orders_anonymity_first_then_failures_then_waiting_then_done_and_escapes_text(tmp_path):
    out = tmp_path / "output"
    ledger = Ledger(ledger_path(out))
    try:
        done, running, pending = _job("a", "en", "tiktok"), _job("b", "en", "tiktok"), _job("c", "en", "tiktok")
        ledger.add([done, running, pending])
        anon, broken = _add_failures(ledger, tmp_path)
        ledger.start(done.identity, "w", 60)
        ledger.done(done.identity, seconds=4.0, sha256="f" * 64, size=1234567)
        _sidecar(out, done)  # its sidecar but no video: checks shown, the thumbnail's absence said
        ledger.start(running.identity, "w", 60)
        ledger.set_problems([(str(tmp_path / "z-broken.yaml"), f"no such file {EVIL}", f"check the path {EVIL}")])
        json_path, html_path = write_report(ledger, out)
    finally:
        ledger.close()

    data = json.loads(json_path.read_text())
    assert [j["identity"] for j in data["jobs"]] == [
        anon.identity,
        broken.identity,
        running.identity,
        pending.identity,
        done.identity,
    ]
    assert data["anonymity_failures"] == 1
    assert data["counts"] == {"failed": 2, "running": 1, "pending": 1, "done": 1}
    assert data["jobs"][1]["error"].endswith(EVIL)  # the data keeps the text as it is
    assert data["time"]["by_manifest"]["a"]["render_seconds"] == 4.0
    assert data["time"]["analysis_seconds"] == 0.0  # no analysis ran for this hand-made ledger
    finished = data["jobs"][-1]
    assert finished["thumbnail"] is None and finished["thumbnail_error"]
    assert {k: (c["ok"], c["summary"]) for k, c in finished["checks"].items()} == {
        "faces": (True, "no face in 40 of 50 frames checked (1 candidate(s) dismissed on a closer look); pixelate over "
                  "the faces found in 12 frames"),
        "voice": (True, "similarity 0.512 vs threshold 0.75: not linkable"),
        "metadata": (False, f"no_identifying_bytes: {[EVIL]}"),
        "file": (False, "1 of 2 checks passed"),
    }  # fmt: skip

    page = html_path.read_text()
    assert "<script" not in page and "&lt;script&gt;" in page
    rows = _Rows()
    rows.feed(page)
    assert [c for c, _ in rows.rows] == [
        "failed anonymity",
        "failed",
        "failed problem",
        "running",
        "pending",
        "done",
    ]
    assert "z-broken.yaml" in rows.rows[2][1]
    assert EVIL in rows.rows[1][1]  # what a reader sees is the text itself, once unescaped by the parser


def test_where_the_time_went_includes_analysis_when_the_ledger_records_it(tmp_path):
    class Recording(Ledger):
        def analysis_seconds(self) -> dict[str, float]:
            return {"/night/manifests/a.yaml": 30.0}

    out = tmp_path / "output"
    ledger = Recording(ledger_path(out))
    try:
        jobs = [_job("a", "en", "tiktok"), _job("a", "fr", "tiktok"), _job("b", "en", "x")]
        ledger.add(jobs)
        for job, seconds in zip(jobs, (5.0, 7.0, 2.0), strict=True):
            ledger.start(job.identity, "w", 60)
            ledger.done(job.identity, seconds=seconds, sha256="f" * 64, size=1)
        json_path, html_path = write_report(ledger, out)
    finally:
        ledger.close()
    t = json.loads(json_path.read_text())["time"]
    assert (t["render_seconds"], t["analysis_seconds"]) == (14.0, 30.0)
    assert t["by_manifest"] == {
        "a": {"jobs": 2, "render_seconds": 12.0, "analysis_seconds": 30.0, "output_seconds": 0.0},
        "b": {"jobs": 1, "render_seconds": 2.0, "analysis_seconds": 0.0, "output_seconds": 0.0},
    }
    assert "analysis time" in html_path.read_text()


# ---------------------------------------------------------------------------------------------- browser


class _Rows(HTMLParser):
    """The rows of table#jobs as the page has them: (class, text) and every <img> with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.imgs: list[dict[str, str]] = []
        self.scripts = 0
        self._table = self._body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a.get("id") == "jobs"
        elif tag == "tbody" and self._table:
            self._body = True
        elif tag == "tr" and self._body:
            self.rows.append((a.get("class", ""), ""))
        elif tag == "img" and self._body:
            self.imgs.append(a)
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._body = False
        elif tag == "table":
            self._table = False

    def handle_data(self, data: str) -> None:
        if self._body and self.rows:
            cls, text = self.rows[-1]
            self.rows[-1] = (cls, text + data)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium): the report's browser test needs it")
    return found


def _browse(exe: str, page: Path, profile: Path, *args: str) -> str:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
    cmd += ["--hide-scrollbars", f"--user-data-dir={profile}", *args, page.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.slow
def test_the_report_opens_in_chromium_failures_first_with_thumbnails_of_the_outputs(tmp_path, artifacts):
    from test_batch import _batch_tree

    from clipper.batch.run import run_batch

    exe = _chromium()
    manifests = _batch_tree(tmp_path, n=2)
    (manifests / "broken.yaml").write_text(
        manifest_text({"cam": "../missing.mp4"}, [{"source": "cam", "in": 0, "out": 1}], id="broken")
    )
    out = tmp_path / "output"
    summary = run_batch([manifests], out, workers=2)
    assert (summary.rendered, summary.problems) == (8, 1)
    ledger = Ledger(ledger_path(out))
    try:
        anon, broken = _add_failures(ledger, manifests)
        write_report(ledger, out)
    finally:
        ledger.close()

    data = json.loads((out / "report.json").read_text())
    assert [j["identity"] for j in data["jobs"][:2]] == [anon.identity, broken.identity]
    done = [j for j in data["jobs"] if j["status"] == "done"]
    assert len(done) == 8 and all(j["thumbnail"] for j in done)
    assert all(j["checks"]["metadata"]["ok"] and j["checks"]["file"]["ok"] for j in done)
    assert data["thumbnails"]["decoded"] == 0  # run_batch made them; this second report took them from the cache
    for strip in (out / ".batch").rglob("*.jpg"):  # no encoder fingerprint in what the report embeds
        assert b"Lavc" not in strip.read_bytes() and b"Lavf" not in strip.read_bytes(), strip
    page = out / "report.html"
    per_job = page.stat().st_size / len(data["jobs"])
    assert per_job < 30_000, per_job

    # The browser's DOM: the page loaded, failure rows first (anonymity on top), no script smuggled in by an error.
    rows = _Rows()
    rows.feed(_browse(exe, page, tmp_path / "profile", "--dump-dom"))
    assert rows.scripts == 0
    classes = [c for c, _ in rows.rows]
    assert classes == ["failed anonymity", "failed", "failed problem"] + ["done"] * 8, classes
    assert "clip0 · en.youtube" in rows.rows[0][1] and "broken.yaml" in rows.rows[2][1]
    assert EVIL in rows.rows[1][1]

    # Every thumbnail strip is a JPEG of THUMBS frames from the rendered output, as a data: URI the browser decoded.
    assert len(rows.imgs) == 8
    for img in rows.imgs:
        head, _, b64 = img["src"].partition(",")
        assert head == "data:image/jpeg;base64"
        strip = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert strip.format == "JPEG"
        w, h = strip.size
        gaps = (THUMBS - 1) * THUMB_GAP
        # 16:9 (telegram) and 9:16 (tiktok) frames: taken from the rendered outputs, never from the 4:3 sources.
        assert (w, h) in ((THUMBS * THUMB_PX + gaps, 90), (THUMBS * 90 + gaps, THUMB_PX)), strip.size
    probe = page.with_name("probe.html")  # the same page plus a script that records what the browser decoded
    probe.write_text(
        page.read_text().replace(
            "</body>",
            "<script>addEventListener('load', () => { for (const i of document.images) "
            "i.dataset.decoded = i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight; });</script></body>",
        )
    )
    decoded = _Rows()
    decoded.feed(_browse(exe, probe, tmp_path / "profile", "--dump-dom"))
    sizes = sorted(i.get("data-decoded", "") for i in decoded.imgs)
    assert sizes == sorted(["true:808x90"] * 4 + ["true:458x160"] * 4), sizes

    shot = tmp_path / "report.png"
    _browse(exe, page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2000")
    picture = Image.open(shot).convert("RGB")
    assert picture.size == (1400, 2000)
    assert len(picture.getcolors(1 << 20) or []) > 500  # text, badges and pictures, not a blank page
    shutil.copy(shot, artifacts / "batch-report.png")
    shutil.copy(page, artifacts / "batch-report.html")

"""The real command line as a subprocess, on tiny generated media: exit codes, what it prints, what it writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
import yaml
from conftest import manifest_text
from media import numbered_video

from clipper import __version__

REPO = Path(__file__).resolve().parents[1]
FPS = 25
FRAMES = 75  # 3 s


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m clipper.cli ARGS` in cwd; a fixed 80-column width, as in a pipe."""
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "clipper.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli-media")
    numbered_video(d / "src.mp4", frames=FRAMES, fps=str(FPS))
    numbered_video(d / "turned.mp4", frames=10, fps=str(FPS), rotate=90, audio=False)
    return d


@pytest.fixture
def src(tmp_path: Path, media_dir: Path) -> Path:
    """A 3 s, 25 fps, 320x240 numbered video with audio, in the test's own folder."""
    return Path(shutil.copy(media_dir / "src.mp4", tmp_path / "src.mp4"))


def write(tmp_path: Path, name: str, *, languages: list[str] | None = None, **kwargs: object) -> Path:
    doc = yaml.safe_load(manifest_text(**kwargs))  # type: ignore[arg-type]
    if languages:
        doc["outputs"]["languages"] = languages
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


TWO_CUTS = [
    {"source": "cam", "in": 0.4, "out": 1.2},  # frames 10..29
    {"source": "cam", "in": "00:00:02:03", "out": 3.0},  # frames 53..74
]


def cut_rows(stdout: str) -> list[tuple[int, int]]:
    """(in frame, out frame) of each row of the plan's cuts table."""
    rows = []
    for line in stdout.splitlines():
        m = re.search(r"^\s*\d+\s.*\bframes (\d+)–(\d+)\s", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2))))
    return rows


def leftovers(folder: Path) -> list[Path]:
    return [
        p
        for p in folder.rglob("*")
        if ".partial" in p.name or p.name.startswith(".work-") or (p.parent.name == ".work" and p.is_dir())
    ]


# -------------------------------------------------------------------------------------------- validate


def test_validate_a_good_manifest_prints_ok(tmp_path, src):
    write(tmp_path, "good.yaml", sources={"cam": src.name}, segments=TWO_CUTS)
    r = run(tmp_path, "validate", "good.yaml")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("good.yaml: ok"), r.stdout
    assert "1 output(s), 1.68 s each" in r.stdout


def test_validate_reports_every_file_and_exits_2_when_one_is_bad(tmp_path, src):
    write(tmp_path, "bad.yaml", sources={"cam": "missing.mp4"}, segments=TWO_CUTS)
    write(tmp_path, "good.yaml", sources={"cam": src.name}, segments=TWO_CUTS)
    r = run(tmp_path, "validate", "bad.yaml", "good.yaml")
    assert r.returncode == 2
    assert "good.yaml: ok" in r.stdout
    assert "bad.yaml" not in r.stdout
    assert "bad.yaml:" in r.stderr and "missing.mp4" in r.stderr and "no such file" in r.stderr


def test_validate_lists_caption_findings_in_the_cues_the_clip_shows_and_counts_the_rest(tmp_path, src):
    # A whole interview's subtitle file buried the findings that matter under dozens about cues never shown (QA
    # sweep). Cue at line 3 is shown (0.5-1.0 s, inside the first cut) and reads too fast; line 6 is outside both.
    (tmp_path / "s.en.vtt").write_text(
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.000\nThirty characters in half a sec\n\n"
        "00:00:01.500 --> 00:00:02.000\nThirty characters in half a sec too\n",
        encoding="utf-8",
    )
    m = write(tmp_path, "c.yaml", sources={"cam": src.name}, segments=TWO_CUTS)
    m.write_text(m.read_text().replace("outputs:", "subtitles:\n  en: s.en.vtt\noutputs:"))
    r = run(tmp_path, "validate", "c.yaml")
    assert r.returncode == 0, r.stderr
    assert "s.en.vtt:3: cps: " in r.stderr and "s.en.vtt:6:" not in r.stderr, r.stderr
    assert "s.en.vtt: 2 more finding(s) in cues outside the cuts" in r.stderr, r.stderr  # cps, duration


# ------------------------------------------------------------------------------------------------ plan


def test_plan_prints_each_cuts_frames_and_every_output_file(tmp_path, src):
    write(tmp_path, "p.yaml", sources={"cam": src.name}, segments=TWO_CUTS, platforms=["telegram", "tiktok"], id="pl")
    r = run(tmp_path, "plan", "p.yaml")
    assert r.returncode == 0, r.stderr
    assert cut_rows(r.stdout) == [(10, 30), (53, 75)], r.stdout
    for name in ("pl.en.telegram.mp4", "pl.en.tiktok.mp4"):
        assert name in r.stdout, r.stdout
    assert "≤ 600 s" in r.stdout  # tiktok's longest clip: the limit column showed only size caps (QA sweep)
    assert "42 frames per output" in r.stdout


def test_plan_shows_where_each_cut_lands_in_the_clip_at_80_columns(tmp_path, src):
    write(tmp_path, "p.yaml", sources={"cam": src.name}, segments=TWO_CUTS)
    r = run(tmp_path, "plan", "p.yaml")
    assert r.returncode == 0, r.stderr
    assert "00:00:00.000" in r.stdout and "00:00:00.800" in r.stdout, r.stdout


def test_plan_json_has_frames_and_a_duration_consistent_with_the_rate(tmp_path, src):
    write(tmp_path, "p.yaml", sources={"cam": src.name}, segments=TWO_CUTS, platforms=["telegram", "tiktok"], id="pl")
    r = run(tmp_path, "plan", "p.yaml", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    segs = plan["segments"]
    assert [(s["in_frame"], s["out_frame"]) for s in segs] == [(10, 30), (53, 75)]
    assert [s["clip_start_frame"] for s in segs] == [0, 20]
    assert Fraction(plan["fps"]) == FPS
    assert plan["total_frames"] == sum(s["out_frames"] for s in segs) == 42
    assert plan["duration_s"] == pytest.approx(plan["total_frames"] / Fraction(plan["fps"]), abs=1e-6)
    assert [v["filename"] for v in plan["variants"]] == ["pl.en.telegram.mp4", "pl.en.tiktok.mp4"]


# ----------------------------------------------------------------------------------------------- probe


def test_probe_prints_the_files_facts_as_json(tmp_path, src):
    r = run(tmp_path, "probe", src.name)
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert (facts["width"], facts["height"]) == (320, 240)
    assert (facts["display_width"], facts["display_height"]) == (320, 240)
    assert Fraction(facts["fps"]) == FPS
    assert facts["has_audio"] is True
    assert facts["duration_s"] == pytest.approx(FRAMES / FPS, abs=0.05)


def test_probe_of_a_rotated_file_swaps_the_display_size(tmp_path, media_dir):
    r = run(tmp_path, "probe", str(media_dir / "turned.mp4"))
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert (facts["width"], facts["height"]) == (320, 240)
    assert facts["rotation"] in (90, 270)
    assert (facts["display_width"], facts["display_height"]) == (240, 320)
    assert facts["has_audio"] is False


# ---------------------------------------------------------------------------------------------- schema


def test_schema_writes_the_json_schema_where_asked(tmp_path):
    r = run(tmp_path, "schema", "--out", "editor/clipper.schema.json")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "editor" / "clipper.schema.json"
    schema = json.loads(out.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"anonymize", "segments", "outputs"} <= set(schema["properties"])
    assert out.read_bytes() == (REPO / "manifests" / "clipper.schema.json").read_bytes(), "run `make schema`"
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------- preview and render


@pytest.mark.parametrize(("platform", "size"), [("telegram", (640, 360)), ("tiktok", (360, 640))])
def test_preview_writes_one_small_file_with_a_360_short_side(tmp_path, src, platform, size):
    segments = [{"source": "cam", "in": 0, "out": 3.0}]
    write(tmp_path, "c.yaml", sources={"cam": src.name}, segments=segments, platforms=[platform, "youtube"])
    started = time.monotonic()
    r = run(tmp_path, "preview", "c.yaml", "--out", "previews")
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert elapsed < 15, f"a 3 s preview took {elapsed:.1f} s"
    [out] = list((tmp_path / "previews").rglob("*.preview.mp4"))
    assert out.name == f"clip.en.{platform}.preview.mp4"
    with av.open(str(out)) as c:
        v = c.streams.video[0].codec_context
        assert (v.width, v.height) == size
    assert leftovers(tmp_path / "previews") == []


def test_quiet_render_of_one_variant_prints_nothing_and_leaves_no_partials(tmp_path, src):
    segments = [{"source": "cam", "in": 0, "out": 3.0}]
    platforms = ["telegram", "whatsapp-status"]
    write(tmp_path, "c.yaml", sources={"cam": src.name}, segments=segments, platforms=platforms, languages=["en", "ar"])
    r = run(tmp_path, "render", "c.yaml", "--platform", "telegram", "--lang", "en", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    folder = tmp_path / "output" / "clip"
    mp4s = sorted(p.name for p in folder.glob("*.mp4"))
    assert mp4s == ["clip.en.telegram.mp4"]
    sidecar = json.loads((folder / "clip.en.telegram.json").read_text(encoding="utf-8"))
    assert sidecar["output_file"] == "clip.en.telegram.mp4"
    assert (sidecar["platform"], sidecar["language"]) == ("telegram", "en")
    assert sidecar["frames"] == FRAMES
    assert leftovers(tmp_path / "output") == []


def test_render_of_a_platform_the_manifest_does_not_list_names_the_choices(tmp_path, src):
    write(tmp_path, "c.yaml", sources={"cam": src.name}, segments=TWO_CUTS, platforms=["telegram", "tiktok"])
    r = run(tmp_path, "render", "c.yaml", "--platform", "youtube")
    assert r.returncode == 2
    assert "youtube not among this manifest's platforms" in r.stderr
    assert "choose from: telegram, tiktok" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "output").exists()


# --------------------------------------------------------------------------------------- debug, version


@pytest.fixture
def bad_manifest(tmp_path, src) -> Path:
    path = write(tmp_path, "bad.yaml", sources={"cam": src.name}, segments=TWO_CUTS)
    path.write_text(path.read_text(encoding="utf-8").replace("title:", "titel:"), encoding="utf-8")
    return path


def test_without_debug_a_bad_manifest_shows_its_location_not_a_traceback(tmp_path, bad_manifest):
    r = run(tmp_path, "plan", bad_manifest.name)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "bad.yaml:3:1: titel: unknown key" in r.stderr, r.stderr


def test_debug_shows_the_traceback_of_a_bad_manifest(tmp_path, bad_manifest):
    r = run(tmp_path, "--debug", "plan", bad_manifest.name)
    assert r.returncode != 0
    assert "Traceback (most recent call last)" in r.stderr
    assert "ManifestError" in r.stderr


def test_debug_validate_shows_the_traceback_of_a_bad_manifest(tmp_path, bad_manifest):
    r = run(tmp_path, "--debug", "validate", bad_manifest.name)
    assert r.returncode != 0
    assert "Traceback (most recent call last)" in r.stderr


def test_version_prints_the_version(tmp_path):
    r = run(tmp_path, "--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"clipper {__version__}"


def test_an_out_folder_that_is_a_file_is_a_clear_error(tmp_path, src):
    # It was a NotADirectoryError traceback (found by a QA sweep).
    write(tmp_path, "good.yaml", sources={"cam": src.name}, segments=TWO_CUTS)
    (tmp_path / "afile").write_text("not a folder")
    for command in ("render", "batch"):
        r = run(tmp_path, command, "good.yaml", "--out", "afile")
        assert r.returncode == 1, (command, r.stderr)
        assert "Traceback" not in r.stderr and "Not a directory" in r.stderr and "--out" in r.stderr, r.stderr


def test_voicecheck_refuses_an_unknown_strength_and_a_folder_as_usage_errors(tmp_path, src):
    # An unknown strength exited 7 ("the voice step cannot run"), a folder said "no such file" (found by a QA sweep).
    r = run(tmp_path, "voicecheck", src.name, src.name, "--strength", "extreme")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr
    r = run(tmp_path, "voicecheck", ".", src.name)
    assert r.returncode == 3 and "is a folder" in r.stderr


def test_lint_fails_on_what_a_render_stops_on_and_advises_on_style(tmp_path):
    slow = tmp_path / "slow.en.vtt"
    slow.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nThirty characters in one sec.\n", encoding="utf-8")
    backwards = tmp_path / "backwards.en.vtt"
    backwards.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nFine\n\n00:00:05.000 --> 00:00:04.000\nBackwards\n", encoding="utf-8"
    )
    style = run(tmp_path, "lint", str(slow))
    assert style.returncode == 0 and ":3: cps: " in style.stdout
    assert run(tmp_path, "lint", "--strict", str(slow)).returncode == 1
    broken = run(tmp_path, "lint", str(slow), str(backwards))
    assert broken.returncode == 1
    assert f"{backwards}:6: dropped: " in broken.stdout and "(a render stops on this)" in broken.stdout
    assert "Traceback" not in broken.stderr
    # A file that cannot be read at all is reported and the others are still linted (it stopped the lint, exit 2).
    latin1 = tmp_path / "notes.fr.vtt"
    latin1.write_bytes("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nDéjà\n".encode("latin-1"))
    both = run(tmp_path, "lint", str(latin1), str(slow))
    assert both.returncode == 1 and str(latin1) in both.stderr and ":3: cps: " in both.stdout, both


def test_a_ledger_that_cannot_be_written_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    import sqlite3

    from clipper.cli import main

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")  # what SQLite says on a full disk

    monkeypatch.setattr("clipper.batch.run.Ledger", disk_full)
    (tmp_path / "m.yaml").write_text("clipper: 1\n")
    assert main(["batch", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"the batch ledger ({tmp_path / 'out' / '.batch' / 'ledger.sqlite'}) cannot be used: disk I/O error" in err
    assert "free space" in err and "Traceback" not in err


def test_a_render_whose_manifest_no_longer_plans_withdraws_the_outputs_it_would_replace(tmp_path, src):
    doc = write(tmp_path, "c.yaml", sources={"cam": src.name}, segments=[{"source": "cam", "in": 0, "out": 2}])
    assert run(tmp_path, "render", "c.yaml", "--quiet").returncode == 0
    folder = tmp_path / "output" / "clip"
    assert (folder / "clip.en.telegram.mp4").is_file()
    # The edit that removes a name from the captions also makes a cue too long to draw: the render stops before
    # anything is made, and the output of the manifest as it was (name and all) must not stay published.
    (tmp_path / "long.en.vtt").write_text("WEBVTT\n\n00:00:00.300 --> 00:00:01.500\n" + "word " * 400 + "\n")
    doc.write_text(doc.read_text().replace("outputs:", "subtitles:\n  en: long.en.vtt\noutputs:"))
    r = run(tmp_path, "render", "c.yaml", "--quiet")
    assert r.returncode != 0 and "a caption needs" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == []

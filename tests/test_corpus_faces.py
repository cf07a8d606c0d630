"""Acceptance on real footage (../shared/corpus): every clip rendered with faces masked passes the verify gate,
and the primary detector finds no face in the published files either. Writes a per-clip report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS_CLIPS, CORPUS_VIDEO_MARKS
from media import rgb_frames

from clipper.faces.detect import CenterFace
from clipper.media import probe

CLIPS = CORPUS_CLIPS
# What an editor adds after the gate flags something that is not a person: the ASL signer's T-shirt carries a
# printed skull that face detectors score as a face (SOURCES.md calls it a false-positive trap).
EDITOR_REGIONS = {
    "intel_asl_again_640x480_signer.mkv": [{"box": [0.37, 0.37, 0.26, 0.40], "mode": "pixelate"}],
}
REPORT: dict[str, dict[str, object]] = {}

pytestmark = CORPUS_VIDEO_MARKS


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_corpus_clip_with_faces_masked_passes_both_detectors(
    tmp_path, write_manifest, render_manifest, clip: Path, monkeypatch
):
    # Acceptance is on every frame: the gate's sampling (render.gate_frames) is switched off here.
    monkeypatch.setenv("CLIPPER_GATE_EVERY", "1")
    facts = probe(clip)
    m = write_manifest(
        {"cam": str(clip)},
        [{"source": "cam", "in": 0, "out": round(facts.duration_s, 3)}],
        platforms=["telegram", "tiktok"],
        faces={"mode": "pixelate"},
        regions=EDITOR_REGIONS.get(clip.name),
    )
    results = render_manifest(m)  # raises AnonymityError if the gate finds a face in any frame
    row: dict[str, object] = {}
    # The primary detector as a second look at the published files, on every 3rd frame at 640 px wide (full size
    # at 1080x1920 would cost minutes per clip). At 0.25 it fires on TV-screen text in akiyo's background once
    # blown up for 9:16 (score 0.25–0.26, outside any mask; see the contact sheet): judged at 0.3.
    primary = CenterFace(threshold=0.3, width=640)
    for r in results:
        side = json.loads(r.sidecar.read_text())
        faces, gate = side["faces"], side["checks"]["faces"]
        assert gate["checked"] and gate["faces_found"] == 0 and gate["frames_checked"] == side["frames"]
        found = [i for i, f in enumerate(rgb_frames(r.path)) if i % 3 == 0 and primary.detect(f)]
        assert found == [], f"{r.path.name}: CenterFace finds a face in output frames {found[:10]}"
        row = {
            "frames": faces["frames"],
            "frames with faces detected": faces["frames_with_faces_detected"],
            "faces detected": faces["faces_detected"],
            "held": faces["frames_held"],
            "bridged": faces["frames_interpolated"],
            "masked whole (dark)": faces["frames_masked_whole_dark"],
            f"gate {r.variant.platform}": f"{gate['frames_checked']} checked, {gate['faces_found']} found, "
            f"{len(gate['dismissed_on_closer_look'])} dismissed up close",
            **{k: v for k, v in row.items() if k.startswith("gate")},
        }
    REPORT[clip.name] = row


@pytest.fixture(scope="module", autouse=True)
def _write_report(artifacts: Path):
    yield
    if not REPORT:
        return
    cols = list(next(iter(REPORT.values())))
    lines = ["| clip | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(row.get(c, "")) for c in cols) + " |" for name, row in REPORT.items()]
    (artifacts / "face-acceptance.md").write_text("\n".join(lines) + "\n", encoding="utf-8")

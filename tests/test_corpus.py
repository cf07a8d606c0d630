"""Real third-party footage from ../shared/corpus: every clip renders to a publishable file (skipped without it)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import CORPUS_CLIPS, CORPUS_VIDEO_MARKS
from test_outputs import assert_publishable

from clipper.media import probe

CLIPS = CORPUS_CLIPS

pytestmark = CORPUS_VIDEO_MARKS


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_corpus_clip_renders_publishable_with_exact_length(tmp_path, write_manifest, render_manifest, clip: Path):
    facts = probe(clip)
    # Two cuts: from 10 % to 40 % and from 60 % to 90 % of the clip.
    total = facts.duration_s
    segments = [
        {"source": "cam", "in": round(total * 0.1, 3), "out": round(total * 0.4, 3)},
        {"source": "cam", "in": round(total * 0.6, 3), "out": round(total * 0.9, 3)},
    ]
    m = write_manifest({"cam": str(clip)}, segments, platforms=["telegram", "instagram-feed"])
    for r in render_manifest(m):
        sidecar = json.loads(r.sidecar.read_text())
        frames = sum(s["frames"] for s in sidecar["segments"])
        assert sidecar["frames"] == frames
        assert (sidecar["loudness"] is None) == (not facts.has_audio)
        assert_publishable(
            r.path, r.variant.width, r.variant.height, Fraction(sidecar["fps"]), frames, silent=not facts.has_audio
        )

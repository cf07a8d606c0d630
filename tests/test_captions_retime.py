"""Placing a subtitle file's cues on the clip's frames, many cuts against a whole interview's cues."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from types import SimpleNamespace

from clipper.captions.read import Cue
from clipper.captions.timing import TimedCue, retime


def _reference(cues, segments, fps, intro_frames, source):
    """Every cue against every cut, exactly (the placement before cues far from every cut were passed by)."""
    pieces = []
    for cue in cues:
        start, end = Fraction(round(cue.start * 1000), 1000), Fraction(round(cue.end * 1000), 1000)
        for seg in segments:
            if seg.source != source:
                continue
            a = max(0, math.ceil((start - seg.in_s) * fps))
            b = min(seg.out_frames, math.ceil((end - seg.in_s) * fps))
            if a < b:
                base = intro_frames + seg.clip_start_frame
                pieces.append(TimedCue(base + a, base + b, cue.lines, cue.line))
    pieces.sort(key=lambda c: (c.start, c.end))
    joined: list[TimedCue] = []
    for p in pieces:  # a cue's pieces in adjacent cuts become one
        if joined and joined[-1].line == p.line and joined[-1].end == p.start:
            joined[-1] = TimedCue(joined[-1].start, p.end, p.lines, p.line)
        else:
            joined.append(p)
    return joined


def test_cues_far_from_every_cut_are_passed_by_and_nothing_else_changes():
    rng = random.Random(5)
    fps = Fraction(30000, 1001)
    placed = 0
    for _ in range(30):
        cues = []
        t = 0.0
        for i in range(400):
            t += rng.choice([0.0, 0.001, 0.033, 0.5, 2.0])
            cues.append(Cue(round(t, 3), round(t + rng.uniform(0.001, 4), 3), (f"cue {i}",), 3 + 4 * i))
        segments, clip = [], 0
        for _ in range(rng.randint(1, 12)):
            n = rng.randint(1, 90)
            in_s = Fraction(rng.randint(0, 400_000), 1000)
            segments.append(SimpleNamespace(source=rng.choice("ab"), in_s=in_s, out_frames=n, clip_start_frame=clip))
            clip += n
        got = retime(cues, segments, fps, intro_frames=7, clip_frames=clip, source="a")
        want = _reference(cues, segments, fps, 7, "a")
        assert [(c.start, c.end, c.line) for c in got] == [(c.start, c.end, c.line) for c in want]
        placed += len(got)
    assert placed > 100  # the cases do place cues

"""Caption timing: cues timed to a source interview (or to the clip) placed on the rendered clip's frames.

Pure functions of the plan: no I/O. A cue is shown on every output frame whose time falls in [start, end):
frame j of a cut shows source time in_s + j/fps, so it carries the cue when start <= in_s + j/fps < end.
Cues straddling a cut's edge are clamped to it, cues outside every cut are dropped, and everything is shifted
by the intro card. Pieces of one cue on consecutive cuts that meet on screen are joined (no flicker at a join).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from clipper.captions.read import Cue

if TYPE_CHECKING:  # plan.py imports this module
    from clipper.plan import SegmentPlan


@dataclass(frozen=True)
class TimedCue:
    """A cue on the output: frames [start, end) of the rendered file (cards included), its text and file line."""

    start: int
    end: int
    lines: tuple[str, ...]
    line: int


def _exact(seconds: float) -> Fraction:
    # Subtitle times are whole milliseconds; exact fractions keep frame edges from wobbling by float error.
    return Fraction(round(seconds * 1000), 1000)


def _first_frame_at(t: Fraction, fps: Fraction) -> int:
    """Index of the first frame whose time (j / fps) is at or after t."""
    return math.ceil(t * fps)


def retime(
    cues: Sequence[Cue],
    segments: Sequence[SegmentPlan],
    fps: Fraction,
    *,
    intro_frames: int,
    clip_frames: int,
    source: str | None,
) -> list[TimedCue]:
    """Place cues on output frames: timed to `source`'s timeline (cut by the segments from it), or to the clip
    itself (source None: time 0 is the clip's first frame after the intro card)."""
    pieces: list[TimedCue] = []
    # Each cut's stretch of the source in float seconds, a second wider each side: cues clear of it are passed by
    # before any exact arithmetic (a whole interview's subtitles against many cuts: 5,400 cues x 60 cuts took 3 s).
    near = [(float(seg.in_s) - 1, float(seg.in_s) + seg.out_frames / float(fps) + 1) for seg in segments]
    for cue in cues:
        if source is not None and not any(
            seg.source == source and cue.start < hi and cue.end > lo
            for seg, (lo, hi) in zip(segments, near, strict=True)
        ):
            continue
        start, end = _exact(cue.start), _exact(cue.end)
        if source is None:
            a = max(0, _first_frame_at(start, fps))
            b = min(clip_frames, _first_frame_at(end, fps))
            if a < b:
                pieces.append(TimedCue(intro_frames + a, intro_frames + b, cue.lines, cue.line))
            continue
        for seg, (lo, hi) in zip(segments, near, strict=True):
            if seg.source != source or not (cue.start < hi and cue.end > lo):
                continue
            a = max(0, _first_frame_at(start - seg.in_s, fps))
            b = min(seg.out_frames, _first_frame_at(end - seg.in_s, fps))
            if a < b:
                base = intro_frames + seg.clip_start_frame
                pieces.append(TimedCue(base + a, base + b, cue.lines, cue.line))
    pieces.sort(key=lambda c: (c.start, c.end))
    joined: list[TimedCue] = []
    for p in pieces:
        last = joined[-1] if joined else None
        if last and last.line == p.line and last.lines == p.lines and last.end == p.start:
            joined[-1] = TimedCue(last.start, p.end, p.lines, p.line)
        else:
            joined.append(p)
    return joined

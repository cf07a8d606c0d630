"""The redaction rule shared by bleeps and captions: caption words spoken under a bleep are replaced by a marker.

Cues carry no word timing, so each word is given the share of its cue's time that its characters have of the
cue's text (speech runs at a fairly even rate of characters). A word whose share overlaps a redacted span, by
as little as one frame, is replaced: in doubt, redact more. Adjacent replaced words become one marker.
"""

from __future__ import annotations

from collections.abc import Sequence

from clipper.captions.timing import TimedCue

MARKER = "[…]"


def redact(cues: Sequence[TimedCue], spans: Sequence[tuple[int, int]], marker: str = MARKER) -> list[TimedCue]:
    """Cues with every word that overlaps a span of output frames [start, end) replaced by `marker`."""
    out = []
    for cue in cues:
        hits = [(a, b) for a, b in spans if a < cue.end and b > cue.start]
        if not hits:
            out.append(cue)
            continue
        total = sum(len(line) for line in cue.lines) or 1
        duration = cue.end - cue.start
        offset = 0
        lines = []
        for line in cue.lines:
            words, pos = [], 0
            for word in line.split(" "):
                w0 = cue.start + duration * (offset + pos) / total
                w1 = cue.start + duration * (offset + pos + len(word)) / total
                pos += len(word) + 1
                covered = bool(word) and any(a < w1 + 1 and b > w0 - 1 for a, b in hits)  # a frame's margin
                if covered and words and words[-1] == marker:
                    continue
                words.append(marker if covered else word)
            offset += len(line)
            lines.append(" ".join(words))
        out.append(TimedCue(cue.start, cue.end, tuple(lines), cue.line))
    return out

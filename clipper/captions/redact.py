"""The redaction rule shared by bleeps and captions: caption words spoken under a bleep are replaced by a marker.

Cues carry no word timing, so each word is given the share of its cue's time that its characters have of the
cue's text (speech runs at a fairly even rate of characters). A word whose share overlaps a redacted span, by
as little as one frame, is replaced: in doubt, redact more. Adjacent replaced words become one marker.

The shares are taken over the cue's whole time as written, on the subtitle file's own timeline, before the cue is
cut to the clip: a cue that starts before a cut shows all its words over the part of it that is kept, so spread
over that part, the words would land at the wrong times (a QA sweep published a bleeped name that way).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

MARKER = "[…]"

# Letters written one way or another for the same name: Arabic alef maksura and yeh, teh marbuta and heh, the
# Persian yeh and kaf, the Turkish dotless i; and Latin letters with a stroke, which have no decomposition to drop
# an accent from (Łukasz is Lukasz). Folded together on both sides of a comparison (in doubt, redact more).
_FOLD = str.maketrans(
    {"ى": "ي", "ی": "ي", "ة": "ه", "ک": "ك", "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b"}
)


def fold(text: str) -> str:
    """`text` as names are compared: case, Unicode form, accents and Arabic vowel marks, the stretching tatweel,
    invisible joiners and direction marks, and spelling variants of a few letters all set aside.

    Character by character, never recomposed: a name held in a word stays held in it once both are folded (NFKC
    at the end joined a name's last letter with the word's next one: Hangul 가 inside 각 written 가+ᆨ, Bengali কে
    inside a decomposed কো)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold()).casefold()
    # Mn: combining marks (é's accent once decomposed, Arabic harakat and hamza above/below). Cf: format characters
    # (zero-width joiners, direction marks, soft hyphen). The tatweel is a letter (Lm) that only stretches a word.
    kept = "".join(c for c in decomposed if c != "\u0640" and unicodedata.category(c) not in ("Mn", "Me", "Cf"))
    return kept.translate(_FOLD)


class _Cue(Protocol):
    start: float
    end: float
    lines: tuple[str, ...]


C = TypeVar("C", bound=_Cue)


def redact(
    cues: Sequence[C],
    spans: Sequence[tuple[float, float] | tuple[float, float, Sequence[str]]],
    marker: str = MARKER,
    margin: float = 1,
) -> list[C]:
    """Cues with every word that overlaps a span [start, end) (in the cues' own time unit) replaced by `marker`;
    `margin` widens each word's share (one frame: 1 for frames, 1/fps for seconds).

    A span may name its words too, for what the even-rate estimate cannot place (a translation that puts the name
    elsewhere in its cue): in a cue shown during the span, every word holding one of them goes as well. Matching
    ignores case, accents, Unicode forms (a macOS tool saves "José" decomposed), Arabic vowel marks and tatweel
    (see `fold`), and takes a word holding the name (Arabic joins prefixes to it: "وأحمد" holds "أحمد"); text
    without spaces (Japanese) is one word, so its whole line goes. In doubt, redact more.
    """
    out: list[C] = []
    for cue in cues:
        hits = [sp for sp in spans if sp[0] < cue.end and sp[1] > cue.start]
        if not hits:
            out.append(cue)
            continue
        names = {fold(token) for sp in hits if len(sp) > 2 for w in sp[2] for token in w.split()} - {""}
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
                covered = bool(word) and (
                    any(sp[0] < w1 + margin and sp[1] > w0 - margin for sp in hits)
                    or any(n in fold(word) for n in names)
                )
                if covered and words and words[-1] == marker:
                    continue
                words.append(marker if covered else word)
            offset += len(line)
            lines.append(" ".join(words))
        out.append(replace(cue, lines=tuple(lines)))
    return out

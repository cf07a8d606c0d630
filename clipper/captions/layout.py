"""Caption layout: size, safe zone and line breaks per output frame, measured in the real font; ASS for libass.

Lines are broken here, by the width each one measures when shaped by HarfBuzz in the font libass will draw it
with, and libass is told not to wrap (WrapStyle 2). That keeps the breaks balanced, keeps Japanese breaking
between characters (with the usual kinsoku rules), and lets each line of right-to-left text carry its own
direction mark: libass resolves bidi per line, and a line of Arabic ending in a full stop or a number, or
starting with a Latin word, is otherwise laid out in the wrong order (see ass_line).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from clipper.captions.fonts import CaptionFont, is_rtl
from clipper.errors import ClipperError

# Text size: the em is this fraction of the frame's short side (54 px on 1080-wide or 1080-high frames).
EM_OF_SHORT_SIDE = 0.05
# Smallest size a caption may shrink to when its lines would not fit the safe zone, relative to EM_OF_SHORT_SIDE.
MIN_SHRINK = 0.75
OUTLINE_OF_EM = 0.09  # black outline around white text: legible on any picture
SHADOW_OF_EM = 0.03
# Safe zones as fractions of the frame. Vertical video: platform UI covers about the top 14 %, the bottom 35 %
# (captions, buttons, description) and 6 % at each side. Landscape: graphics-safe margins (EBU R 95: 5 %), with
# a little more at the bottom for players' progress bars.
PORTRAIT_ZONE = (0.06, 0.14, 0.06, 0.35)  # left, top, right, bottom
LANDSCAPE_ZONE = (0.05, 0.05, 0.05, 0.08)

# Kinsoku: characters that may not start a line (closing punctuation, small kana, prolonged sound mark) and
# that may not end one (opening brackets). Japanese lines break between any other two characters.
NO_LINE_START = set("、。，．・：；？！ー)]）」』】〉》〕｝ゝゞヽヾぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ…‥")
NO_LINE_END = set("(（「『【〈《〔｛")


@dataclass(frozen=True)
class CaptionStyle:
    """How captions look on one output frame size: em size in pixels and the safe zone's margins."""

    width: int
    height: int
    em_px: float
    left: int
    top: int
    right: int
    bottom: int

    @property
    def max_width(self) -> int:
        """Widest a line may be."""
        return self.width - self.left - self.right

    @property
    def zone_height(self) -> int:
        """Tallest a caption block may be."""
        return self.height - self.top - self.bottom


def style_for(width: int, height: int) -> CaptionStyle:
    """Caption size and safe zone for a frame of width x height (portrait frames get the vertical-video zone)."""
    left, top, right, bottom = PORTRAIT_ZONE if height > width else LANDSCAPE_ZONE
    return CaptionStyle(
        width=width,
        height=height,
        em_px=EM_OF_SHORT_SIDE * min(width, height),
        left=round(left * width),
        top=round(top * height),
        right=round(right * width),
        bottom=round(bottom * height),
    )


def is_cjk(ch: str) -> bool:
    """True for a wide East Asian character: a line may break between two of them."""
    return unicodedata.east_asian_width(ch) in ("W", "F") and not ch.isspace()


@dataclass(frozen=True)
class _Token:
    text: str
    space_before: bool  # joined to the previous token by a space (when on the same line)


def _extends(ch: str) -> bool:
    """A character that belongs to the one before it: a combining mark, a variation selector, a joiner."""
    return unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch == "\u200d" or "\ufe00" <= ch <= "\ufe0f"


def _joins(before: str, ch: str) -> bool:
    """`ch` continues the emoji sequence `before` ends (emoji are wide, so tokens of their own): after a zero-width
    joiner, or a skin tone. (Flags' letters are not wide: they stay in one run.)"""
    return before.endswith("\u200d") or "\U0001f3fb" <= ch <= "\U0001f3ff"


def _tokens(text: str) -> list[_Token]:
    """Break opportunities: between words, and between CJK characters except where kinsoku forbids."""
    out: list[_Token] = []
    for w, word in enumerate(text.split()):
        run = ""
        first = True
        for ch in word:
            if not run and out and not first and (_extends(ch) or _joins(out[-1].text, ch)):
                # A mark or joiner after a CJK character stays with it (か + U+3099 is one letter, が).
                out[-1] = _Token(out[-1].text + ch, out[-1].space_before)
            elif is_cjk(ch) or ch in NO_LINE_START:
                if run:
                    out.append(_Token(run, first and w > 0))
                    first = False
                    run = ""
                out.append(_Token(ch, first and w > 0))
                first = False
            else:
                run += ch
        if run:
            out.append(_Token(run, first and w > 0))
    # Kinsoku: glue a forbidden line start to what precedes it and a forbidden line end to what follows.
    merged: list[_Token] = []
    for tok in out:
        if merged and not tok.space_before and (tok.text[0] in NO_LINE_START or merged[-1].text[-1] in NO_LINE_END):
            merged[-1] = _Token(merged[-1].text + tok.text, merged[-1].space_before)
        else:
            merged.append(tok)
    return merged


def _join(tokens: Sequence[_Token]) -> str:
    return "".join((" " if t.space_before and i else "") + t.text for i, t in enumerate(tokens))


def _split_wide_token(tok: _Token, font: CaptionFont, em_px: float, max_width: float) -> list[_Token]:
    """A single word wider than the line (a long URL): broken between characters, as a last resort."""
    pieces: list[_Token] = []
    cur = ""
    for ch in font.clusters(tok.text):  # never between a letter and its marks, or inside an emoji sequence
        if cur and font.width(cur + ch, em_px) > max_width:
            pieces.append(_Token(cur, tok.space_before if not pieces else False))
            cur = ""
        cur += ch
    pieces.append(_Token(cur, tok.space_before if not pieces else False))
    return pieces


def wrap(text: str, font: CaptionFont, em_px: float, max_width: float) -> list[str]:
    """Break text into the fewest lines that fit max_width, balanced so the lines are of similar width."""
    tokens = _tokens(text)
    if not tokens:
        return []
    fitted: list[_Token] = []
    for tok in tokens:
        fitted += _split_wide_token(tok, font, em_px, max_width) if font.width(tok.text, em_px) > max_width else [tok]
    tokens = fitted
    n = len(tokens)
    width = {}  # (i, j) -> width of tokens[i:j] as one line
    for i in range(n):
        for j in range(i + 1, n + 1):
            w = font.width(_join(tokens[i:j]), em_px)
            width[i, j] = w
            if w > max_width:
                break
    # row[j]: (widest line, cut positions) of the most balanced split of tokens[:j] into k lines; one row per k,
    # each built from the last, until a split of all n tokens fits (the fewest lines).
    row: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
    for _ in range(n):
        nxt: dict[int, tuple[float, list[int]]] = {}
        for j in range(1, n + 1):
            for i, (worst, cuts) in row.items():
                w = width.get((i, j))
                if i >= j or w is None or w > max_width:
                    continue
                # The most balanced split: the widest line as narrow as it can be.
                if j not in nxt or max(worst, w) < nxt[j][0] - 1e-6:
                    nxt[j] = (max(worst, w), [*cuts, j])
        row = nxt
        if n in row:
            cuts = [0, *row[n][1]]
            return [_join(tokens[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    raise AssertionError("unreachable: one token per line always fits")


@dataclass(frozen=True)
class LaidOutCue:
    """A cue ready to draw: output frames [start, end), its lines as drawn, and its size."""

    start: int
    end: int
    lines: tuple[str, ...]
    em_px: float
    line: int  # the cue's line in its subtitle file, for errors


def lay_out(
    text_lines: Sequence[str], font: CaptionFont, style: CaptionStyle, *, where: str
) -> tuple[tuple[str, ...], float]:
    """Lines and em size for one cue: the editor's own line breaks when each fits, else the text re-wrapped by
    measured width; shrunk (to MIN_SHRINK at most) if the lines would not fit the safe zone's height."""
    em = style.em_px
    while True:
        if all(font.width(t, em) <= style.max_width for t in text_lines):
            lines = [t for t in text_lines if t.strip()]
        else:
            lines = wrap(" ".join(t for t in text_lines if t.strip()), font, em, style.max_width)
        if len(lines) * font.ass_size(em) <= style.zone_height:
            return tuple(lines), em
        if em <= style.em_px * MIN_SHRINK + 1e-9:
            raise ClipperError(
                f"a caption needs {len(lines)} lines, more than fit inside the safe zone of a "
                f"{style.width}x{style.height} frame",
                where=where,
                hint="split the cue into shorter ones (at most 2 lines of about 42 characters each)",
            )
        em = max(style.em_px * MIN_SHRINK, em * 0.9)


def ass_time(frame: int, fps: Fraction) -> str:
    """ASS time (centiseconds) at or just before frame's timestamp: shown from that frame on, not the one before."""
    cs = math.floor(Fraction(frame) / fps * 100)
    h, rest = divmod(cs, 360000)
    m, rest = divmod(rest, 6000)
    s, c = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{c:02d}"


def ass_line(text: str, rtl: bool) -> str:
    """One line of event text: ASS specials escaped, and a direction mark in front.

    libass takes each line's base direction from its first strong character (with Encoding -1), so an Arabic
    line starting with "ISIS" or "2014" would be laid out left to right, and its final full stop drawn at the
    wrong end; an RLM (LRM for left-to-right text) fixes the direction of every line whatever it starts with.
    """
    escaped = text.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")
    return ("\u200f" if rtl else "\u200e") + escaped


def ass_colour(rgb: int, alpha: int = 0) -> str:
    """An 0xRRGGBB colour (and alpha, 0 opaque) as ASS writes it: &HAABBGGRR."""
    r, g, b = (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255
    return f"&H{alpha:02X}{b:02X}{g:02X}{r:02X}"


def ass_document(
    cues: Sequence[LaidOutCue],
    font: CaptionFont,
    style: CaptionStyle,
    fps: Fraction,
    language: str,
    *,
    alignment: int = 2,
) -> str:
    """A complete ASS script drawing `cues` in the safe zone of a style.width x style.height frame (alignment is
    ASS numpad style: 2 = bottom centre, 1 = bottom left, 3 = bottom right)."""
    rtl = is_rtl(language)

    def style_line(name: str, em: float) -> str:
        outline, shadow = OUTLINE_OF_EM * em, SHADOW_OF_EM * em
        fields = [
            name,
            font.family,
            f"{font.ass_size(em):.2f}",
            ass_colour(0xFFFFFF),
            ass_colour(0xFFFFFF),
            ass_colour(0x000000),
            ass_colour(0x000000, 0x60),
            "0",
            "0",
            "0",
            "0",
            "100",
            "100",
            "0",
            "0",
            "1",
            f"{outline:.2f}",
            f"{shadow:.2f}",
            str(alignment),
            str(style.left),
            str(style.right),
            str(style.bottom),
            "-1",  # Encoding -1: bidi per line from its first strong character (the marks in ass_line set it)
        ]
        return "Style: " + ",".join(fields)

    sizes = sorted({c.em_px for c in cues} | {style.em_px})
    names = {em: f"S{i}" for i, em in enumerate(sizes)}
    events = [
        f"Dialogue: 0,{ass_time(c.start, fps)},{ass_time(c.end, fps)},{names[c.em_px]},,0,0,0,,"
        + "\\N".join(ass_line(t, rtl) for t in c.lines)
        for c in cues
    ]
    return ass_script(style.width, style.height, [style_line(names[em], em) for em in sizes], events)


def ass_script(width: int, height: int, styles: Sequence[str], events: Sequence[str]) -> str:
    """A complete ASS script for a width x height frame: its header, `Style:` lines and `Dialogue:` lines
    (no wrapping by libass: lines are broken by the caller, as measured)."""
    out = [
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {width}",
        f"PlayResY: {height}",
        "WrapStyle: 2",
        "ScaledBorderAndShadow: yes",
        "YCbCr Matrix: None",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
        "MarginR, MarginV, Encoding",
        *styles,
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        *events,
    ]
    return "\n".join(out) + "\n"

"""Title and end cards: text drawn by libass (as captions are) at a platform's geometry, saved as one PNG frame."""

from __future__ import annotations

import math
import shutil
import unicodedata
from pathlib import Path

from clipper.captions.fonts import CaptionFont
from clipper.errors import ClipperError
from clipper.plan import CardPlan


def default_font() -> Path:
    """Return the bundled Noto Sans font file (from the fontpkg-noto-sans package)."""
    import fontpkg_noto_sans

    files = sorted(Path(fontpkg_noto_sans.__file__).parent.joinpath("files").glob("NotoSans[[]*.ttf"))
    if not files:
        raise ClipperError("the bundled font is missing", hint="reinstall clipper: pip install --force-reinstall .")
    return files[0]


def card_font(card: CardPlan) -> CaptionFont:
    """The font a card is drawn in: the manifest's, or the first bundled one that has every character of its text."""
    from clipper.captions.fonts import FONT_PACKAGES, bundled_font, load_font

    if card.font is not None:
        if not card.font.is_file():
            raise ClipperError(
                f"card font not found: {card.font}", hint="name a .ttf/.otf file relative to the manifest"
            )
        font = load_font(card.font)
        missing = font.missing(card.text)
        if missing:
            raise ClipperError(
                f"the {card.kind} card's font {card.font.name} cannot draw {_sample(missing)}",
                hint="name a font that has these characters, or leave `font` out to use a bundled one",
            )
        return font
    for script in FONT_PACKAGES:  # Latin (with Cyrillic and Greek) first, then Arabic, Hebrew, Japanese
        font = bundled_font(script)
        if not font.missing(card.text):
            return font
    fonts = [bundled_font(script) for script in FONT_PACKAGES]
    nowhere = set.intersection(*(f.missing(card.text) for f in fonts))
    if nowhere:
        what = f"no bundled font can draw {_sample(nowhere)} of the {card.kind} card's text"
    else:  # each letter is in some font, but no one font has them all (Arabic and Hebrew together)
        what = f"the {card.kind} card's text mixes scripts that no one bundled font draws together"
    raise ClipperError(what, hint="name a font that has every character (cards: {intro: {font: fonts/your-font.ttf}})")


def _sample(chars: set[str]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted(chars)[:5])


def render_card_png(card: CardPlan, width: int, height: int, dest: Path) -> Path:
    """Draw `card` centred on its background at width×height and save it as a PNG."""
    import ffmpeg
    from PIL import ImageColor

    from clipper.captions.burn import check_font_log, write_ass_files
    from clipper.captions.layout import ass_colour, ass_line, ass_script
    from clipper.ffmpeg import run_ffmpeg

    font = card_font(card)
    lines, font_px = card_layout(card, width, height)
    margin = round(CARD_MARGIN * width)
    # libass draws the text, as it draws captions: Arabic joined and right to left, every script in its own font,
    # and a character the font lacks is an error (checked above, and in ffmpeg's log below), never a box. The base
    # direction is the text's first strong character's (Unicode's rule): "Ahmed: شهادة…" reads left to right.
    rtl = _first_strong_is_rtl(card.text)
    r, g, b = ImageColor.getrgb(card.color)[:3]
    style = (
        f"Style: Card,{font.family},{font.ass_size(font_px):.2f},{ass_colour((r << 16) | (g << 8) | b)},"
        f"&H00FFFFFF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,0,0,5,{margin},{margin},0,-1"
    )
    text = "\\N".join(ass_line(t, rtl) for t in lines)
    script = ass_script(width, height, [style], [f"Dialogue: 0,0:00:00.00,0:00:10.00,Card,,0,0,0,,{text}"])
    work = dest.parent / f".{dest.stem}-card"
    files = write_ass_files(script, font, work, "card")
    br, bg, bb = ImageColor.getrgb(card.background)[:3]
    dest.parent.mkdir(parents=True, exist_ok=True)
    graph = (
        ffmpeg.input(f"color=c=0x{br:02X}{bg:02X}{bb:02X}:s={width}x{height}:d=1,format=rgb24", f="lavfi")
        .filter("subtitles", filename=str(files.ass), fontsdir=str(files.fonts_dir))
        .output(str(dest), vframes=1, update=1)
    )
    try:
        log = run_ffmpeg(graph.get_args(), what=f"drawing the {card.kind} card")
        check_font_log(log, what=f"the {card.kind} card")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


CARD_MARGIN = 0.08  # of the frame's width at each side, and of its height above and below the text
CARD_MIN_SHRINK = 0.5  # the text may be drawn down to half its text_size to fit the frame


def _first_strong_is_rtl(text: str) -> bool:
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def card_layout(card: CardPlan, width: int, height: int) -> tuple[list[str], int]:
    """The card's lines and text size in pixels for a width×height frame: text_size, made smaller until every word
    fits a line (a word is cut between letters only when even 12 px is too big) and the lines fit the frame (down
    to half of text_size); ClipperError when they do not fit even then."""
    from clipper.captions.layout import is_cjk

    font = card_font(card)
    wanted = max(12, round(card.text_size * height))
    room_w, room_h = width - 2 * round(CARD_MARGIN * width), height - 2 * round(CARD_MARGIN * height)
    words = [w for w in card.text.split() if not any(is_cjk(c) for c in w)]  # CJK breaks between characters
    px = wanted
    while px > 12 and any(font.width(w, px) > room_w for w in words):
        px = max(12, math.floor(px * 0.95))
    floor = min(px, max(12, math.ceil(wanted * CARD_MIN_SHRINK)))
    while True:
        lines = wrap_text(card.text, font, px, room_w)
        if len(lines) * font.ass_size(px) <= room_h:
            return lines, px
        if px <= floor:
            raise ClipperError(
                f"the {card.kind} card's text needs {len(lines)} lines and does not fit a {width}x{height} frame, even "
                "at half its text_size",
                hint=f"shorten the text ({len(card.text)} characters) or lower its text_size ({card.text_size:g})",
            )
        px = max(floor, math.floor(px * 0.95))


def wrap_text(text: str, font: CaptionFont, font_px: int, max_width_px: int) -> list[str]:
    """Break text into lines no wider than max_width_px when shaped in `font` at font_px (HarfBuzz widths)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if not line or font.width(trial, font_px) <= max_width_px:
                line = trial
            else:
                lines.append(line)
                line = word
            # Japanese and Chinese put no spaces between words: a "word" wider than the card breaks between
            # characters, never between a letter and its marks or inside an emoji sequence.
            while font.width(line, font_px) > max_width_px and len(clusters := font.clusters(line)) > 1:
                cut = next(
                    k
                    for k in range(len(clusters), 0, -1)
                    if font.width("".join(clusters[:k]), font_px) <= max_width_px or k == 1
                )
                lines.append("".join(clusters[:cut]))
                line = "".join(clusters[cut:]).lstrip()
        lines.append(line)
    return lines

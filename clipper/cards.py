"""Title and end cards: text drawn by libass (as captions are) at a platform's geometry, saved as one PNG frame."""

from __future__ import annotations

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
    missing = bundled_font("latin").missing(card.text)
    raise ClipperError(
        f"no bundled font can draw all of the {card.kind} card's text ({_sample(missing)})",
        hint="name a font that has every character (cards: {intro: {font: fonts/your-font.ttf}})",
    )


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
    font_px = max(12, round(card.text_size * height))
    margin = round(0.08 * width)
    # libass draws the text, as it draws captions: Arabic joined and right to left, every script in its own font,
    # and a character the font lacks is an error (checked above, and in ffmpeg's log below), never a box.
    lines = wrap_text(card.text, font, font_px, width - 2 * margin)
    rtl = any(unicodedata.bidirectional(c) in ("R", "AL") for c in card.text)
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

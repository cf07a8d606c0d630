"""Title and end cards: text composed with MoviePy at a platform's geometry, saved as one PNG frame."""

from __future__ import annotations

from pathlib import Path

from clipper.errors import ClipperError
from clipper.plan import CardPlan


def default_font() -> Path:
    """Return the bundled Noto Sans font file (from the fontpkg-noto-sans package)."""
    import fontpkg_noto_sans

    files = sorted(Path(fontpkg_noto_sans.__file__).parent.joinpath("files").glob("NotoSans[[]*.ttf"))
    if not files:
        raise ClipperError("the bundled font is missing", hint="reinstall clipper: pip install --force-reinstall .")
    return files[0]


def render_card_png(card: CardPlan, width: int, height: int, dest: Path) -> Path:
    """Draw `card` centred on its background at width×height and save it as a PNG."""
    from moviepy import ColorClip, CompositeVideoClip, TextClip
    from PIL import Image, ImageColor

    font = card.font or default_font()
    if not font.is_file():
        raise ClipperError(f"card font not found: {font}", hint="name a .ttf/.otf file relative to the manifest")
    font_px = max(12, round(card.text_size * height))
    margin = round(0.08 * width)
    # MoviePy's own 'caption' wrapping misjudges widths and clips words at the edges, so lines are
    # broken here by the width each one measures in the real font, and MoviePy lays out the label.
    lines = wrap_text(card.text, font, font_px, width - 2 * margin)
    text = TextClip(
        font=str(font),
        text="\n".join(lines),
        font_size=font_px,
        color=card.color,
        method="label",
        text_align="center",
        interline=round(font_px * 0.25),
        margin=(0, round(font_px * 0.3)),
        duration=1,
    )
    bg = ColorClip(size=(width, height), color=ImageColor.getrgb(card.background)[:3], duration=1)
    frame = CompositeVideoClip([bg, text.with_position("center")], size=(width, height)).get_frame(0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame.astype("uint8")).save(dest)
    return dest


def wrap_text(text: str, font: Path, font_px: int, max_width_px: int) -> list[str]:
    """Break text into lines no wider than max_width_px when drawn in `font` at font_px."""
    from PIL import ImageFont

    face = ImageFont.truetype(str(font), font_px)
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if not line or face.getlength(trial) <= max_width_px:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines

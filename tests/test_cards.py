"""Title and end cards: every script drawn in a font that has it, laid out by libass as captions are, or an error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipper.captions.fonts import bundled_font
from clipper.cards import card_font, render_card_png, wrap_text
from clipper.errors import ClipperError
from clipper.plan import CardPlan


def _card(text: str, font: Path | None = None) -> CardPlan:
    return CardPlan(kind="intro", text=text, frames=25, color="white", background="#202020", font=font, text_size=0.06)


def _ink_columns(path: Path) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels brighter than the background."""
    a = np.asarray(Image.open(path).convert("L"))
    ys, xs = np.nonzero(a > 128)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("A former member speaks", "latin"),
        ("Бывший член говорит", "latin"),
        ("وعدونا بالجنة", "arabic"),
        ("הבטיחו לנו", "hebrew"),
        ("楽園を約束された", "japanese"),
    ],
)
def test_card_text_in_any_bundled_script_is_drawn_centred_in_its_own_font(tmp_path, text, script):
    # Arabic and CJK card text was drawn as empty boxes, and published (found by a QA sweep).
    card = _card(text)
    font = card_font(card)
    assert font.path == bundled_font(script).path
    png = render_card_png(card, 1080, 1920, tmp_path / "card.png")
    left, top, right, bottom = _ink_columns(png)
    # Centred, and as wide as HarfBuzz measures the shaped line in that font: boxes of a font without these
    # letters, or Arabic letters left unjoined, would not match.
    assert abs((left + right) / 2 - 540) < 20 and abs((top + bottom) / 2 - 960) < 60
    px = round(0.06 * 1920)
    expected = max(font.width(line, px) for line in wrap_text(text, font, px, 1080 - 2 * round(0.08 * 1080)))
    assert abs((right - left) - expected) < 0.12 * expected, (right - left, expected)


def test_arabic_is_joined_and_right_to_left():
    # The joined word is narrower than its letters drawn apart, and the first letter in memory is drawn rightmost.
    font = bundled_font("arabic")
    assert font.width("سلام", 100) < font.width("س ل ا م", 100) - 2 * font.width(" ", 100) - 1


def test_a_character_no_font_has_stops_the_card_with_its_code_point():
    with pytest.raises(ClipperError, match="U\\+1F642"):
        card_font(_card("Hello 🙂"))


def test_a_named_font_without_the_texts_letters_is_refused():
    latin = bundled_font("latin").path
    with pytest.raises(ClipperError, match="cannot draw"):
        card_font(_card("وعدونا بالجنة", font=latin))


def test_text_without_spaces_breaks_between_characters():
    font = bundled_font("japanese")
    lines = wrap_text("楽園を約束されたが、そこにあったのは牢獄だった。", font, 115, 900)
    assert len(lines) > 1 and "".join(lines) == "楽園を約束されたが、そこにあったのは牢獄だった。"
    assert all(font.width(line, 115) <= 900 for line in lines)


def test_a_card_no_font_can_draw_is_a_manifest_error_before_anything_renders(tmp_path, write_manifest):
    from media import tone_video

    from clipper.errors import ManifestError
    from clipper.render import prepare

    tone_video(tmp_path / "src.mp4", seconds=1.0, size=(320, 180))
    m = write_manifest(
        {"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 1}], cards={"intro": {"text": "Hi 🙂", "seconds": 1}}
    )
    with pytest.raises(ManifestError, match="U\\+1F642") as raised:
        prepare(m)
    assert raised.value.exit_code == 2 and "cards.intro" in raised.value.render()


@pytest.mark.parametrize(
    ("script", "word"),
    [
        ("latin", "e\u0301" * 40),  # é as e + combining acute
        ("arabic", "بِسْمِ" * 12),  # letters with harakat
        ("latin", "\U0001f468\u200d\U0001f469\u200d\U0001f467" * 12),  # a ZWJ family emoji, repeated
        ("japanese", "か\u3099" * 40),  # が as か + combining voiced mark
    ],
)
def test_a_word_wider_than_the_card_is_never_cut_inside_a_letter(script, word):
    from clipper.captions.layout import wrap

    font = bundled_font(script)
    clusters = font.clusters(word)
    boundaries = {sum(len(c) for c in clusters[:k]) for k in range(len(clusters) + 1)}
    for lines in (wrap_text(word, font, 48, 200), wrap(word, font, 48.0, 200.0)):
        assert len(lines) > 1 and "".join(lines) == word
        cuts = {sum(len(line) for line in lines[:k]) for k in range(1, len(lines))}
        assert cuts <= boundaries, f"cut inside a letter at {sorted(cuts - boundaries)}"

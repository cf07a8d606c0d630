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
        ("latin", "\U0001f44d\U0001f3fd" * 30),  # a thumbs-up with a skin tone, repeated
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


def _card_sized(text: str, text_size: float) -> CardPlan:
    return CardPlan(
        kind="outro", text=text, frames=25, color="white", background="#202020", font=None, text_size=text_size
    )


def test_a_long_card_text_shrinks_to_fit_the_frame_and_is_never_cut_off(tmp_path):
    # 247 characters at the default size ran off a tiktok frame, first and last lines invisible (QA sweep).
    text = (
        "FIRSTLINE "
        + "This film shows the words of people who left the group, told in their own voice. " * 3
        + "LASTLINE"
    )
    card = _card_sized(text, 0.06)
    png = render_card_png(card, 1080, 1920, tmp_path / "card.png")
    left, top, right, bottom = _ink_columns(png)
    assert top >= 0.08 * 1920 - 2 and bottom <= 1920 * 0.92 + 2 and left >= 0.08 * 1080 - 2
    # Landscape has less height: the text shrinks further, or the card is refused; never drawn off the frame.
    png = render_card_png(card, 1920, 1080, tmp_path / "wide.png")
    _, top, _, bottom = _ink_columns(png)
    assert top >= 0.08 * 1080 - 2 and bottom <= 1080 * 0.92 + 2


def test_a_card_that_cannot_fit_even_at_half_size_is_refused_before_anything_renders(tmp_path, write_manifest):
    from media import tone_video

    from clipper.errors import ManifestError
    from clipper.render import prepare

    tone_video(tmp_path / "src.mp4", seconds=1.0, size=(320, 180))
    m = write_manifest(
        {"cam": "src.mp4"},
        [{"source": "cam", "in": 0, "out": 1}],
        cards={"outro": {"text": "word " * 900, "seconds": 1}},
    )
    with pytest.raises(ManifestError, match="does not fit a .* frame, even at half its text_size") as raised:
        prepare(m)
    assert "cards.outro.text" in raised.value.render() and "lower its text_size" in raised.value.render()


def test_big_text_shrinks_before_a_word_is_cut_between_letters(tmp_path):
    from clipper.cards import card_layout

    lines, px = card_layout(_card_sized("Remember what they did about it", 0.2), 1080, 1920)
    assert px < round(0.2 * 1920) and {w for line in lines for w in line.split()} == set(
        ["Remember", "what", "they", "did", "about", "it"]
    )


def test_a_card_reads_in_the_direction_of_its_first_strong_letter(tmp_path):
    # "Ahmed: …" starts with a Latin word: drawn left to right, the name leftmost (any Arabic letter used to turn
    # the whole card right to left: "ISIS (2019) … :Ahmed", QA sweep).
    from clipper.cards import _first_strong_is_rtl

    assert not _first_strong_is_rtl("Ahmed: شهادة عضو سابق (2019)")
    assert _first_strong_is_rtl("(2019) شهادة عضو سابق ISIS")
    arabic = bundled_font("arabic").path  # one font for both cards, so "Ahmed" is drawn alike in each

    def columns(text: str) -> np.ndarray:
        png = render_card_png(_card(text, font=arabic), 1080, 1920, tmp_path / "card.png")
        ink = (np.asarray(Image.open(png).convert("L")) > 128).sum(axis=0).astype(float)
        xs = np.nonzero(ink)[0]
        return ink[xs.min() : xs.max() + 1]

    name, both = columns("Ahmed"), columns("Ahmed شهادة")
    left, right = both[: len(name)], both[-len(name) :]
    assert np.corrcoef(name, left)[0, 1] > 0.9 > np.corrcoef(name, right)[0, 1]


@pytest.mark.parametrize(("text", "message"), [("   ", "only spaces"), ("safe \u202eevil", "U\\+202E")])
def test_card_text_that_would_show_nothing_or_not_what_was_typed_is_refused(text, message):
    from pydantic import ValidationError

    from clipper.manifest import Card

    with pytest.raises(ValidationError, match=message):
        Card(text=text, seconds=2)


def test_a_card_mixing_scripts_no_one_font_has_says_so():
    with pytest.raises(ClipperError, match="mixes scripts that no one bundled font draws together"):
        card_font(_card("שלום سلام"))

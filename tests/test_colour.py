"""Colours as players show them: every output BT.709 and tagged so, whatever the source's matrix or dynamic range."""

from __future__ import annotations

import numpy as np
import pytest
from media import colour_tags, player_rgb, red_and_grey_video

from clipper.media import probe

pytestmark = pytest.mark.slow

RED, GREY = (200, 30, 30), (128, 128, 128)


def _halves(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean colour inside the red and the grey half of a telegram (1280x720) frame showing the picture."""
    h, w = rgb.shape[:2]
    return rgb[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].mean(axis=(0, 1)), rgb[
        h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8
    ].mean(axis=(0, 1))


@pytest.mark.parametrize(
    ("size", "tag"),
    [
        pytest.param((640, 480), None, id="sd-untagged"),
        pytest.param((640, 480), "smpte170m", id="sd-bt601-tagged"),
        pytest.param((1280, 720), "smpte170m", id="hd-bt601-tagged"),
        pytest.param((1280, 720), None, id="hd-untagged"),
        pytest.param((1280, 720), "rgb", id="hd-rgb"),
    ],
)
def test_a_source_s_colours_reach_the_player_unchanged(tmp_path, write_manifest, render_manifest, size, tag):
    """A BT.601 picture (SD cameras, DV) is converted to BT.709, the output says BT.709: a red 200,30,30 was shown
    as 215,46,28 (passed through untagged, players read HD as BT.709). An RGB picture is converted with BT.709's
    matrix (it was converted with BT.601's, then said to be BT.709: 215,46,28 again)."""
    name = "src.mov" if tag == "rgb" else "src.mp4"
    red_and_grey_video(tmp_path / name, size=size, tag=None if tag == "rgb" else tag, rgb=tag == "rgb")
    # Faces masked, as in every real manifest: the picture goes through the masking pipe.
    cut = [{"source": "a", "in": 0, "out": 0.8}]
    path = write_manifest({"a": name}, cut, reframe="letterbox", faces={"mode": "pixelate"})
    (result,) = render_manifest(path)
    assert colour_tags(result.path) == ("bt709", "bt709", "bt709")
    red, grey = _halves(player_rgb(result.path, 5)[:, 160:1120] if size == (640, 480) else player_rgb(result.path, 5))
    assert np.abs(red - RED).max() <= 5, red
    assert np.abs(grey - GREY).max() <= 3, grey


def test_cards_reach_the_player_in_their_own_colours(tmp_path, write_manifest, render_manifest):
    """Cards are drawn in RGB: converted with BT.601's matrix (scale's default), a red card came out 213,46,28."""
    red_and_grey_video(tmp_path / "src.mp4", size=(1280, 720))
    cards = {"intro": {"text": "Colour", "seconds": 1, "color": "#ffd54a", "background": "#c81e1e"}}
    path = write_manifest({"a": "src.mp4"}, [{"source": "a", "in": 0, "out": 0.8}], cards=cards)
    (result,) = render_manifest(path)
    corner = player_rgb(result.path, 5)[:40, :40].mean(axis=(0, 1))
    assert np.abs(corner - RED).max() <= 5, corner


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_an_hdr_source_is_tone_mapped_to_sdr(tmp_path, write_manifest, render_manifest, transfer):
    """A phone's HLG or an HDR10 (PQ) picture is tone-mapped to BT.709: shown as it was, its red came out a greyish
    pink and its grey a dim grey; now a red and a neutral grey, a little darker than in SDR (Hable's curve)."""
    try:
        red_and_grey_video(tmp_path / "hdr.mp4", size=(1280, 720), transfer=transfer)
    except Exception as e:  # an ffmpeg without libx265 or zimg cannot write the source
        pytest.skip(f"cannot make an HDR source here: {e}")
    assert probe(tmp_path / "hdr.mp4").hdr == {"smpte2084": "pq", "arib-std-b67": "hlg"}[transfer]
    path = write_manifest({"a": "hdr.mp4"}, [{"source": "a", "in": 0, "out": 0.8}], faces={"mode": "pixelate"})
    (result,) = render_manifest(path)
    assert colour_tags(result.path) == ("bt709", "bt709", "bt709")
    red, grey = _halves(player_rgb(result.path, 5))
    # The tone-mapped red is darker than SDR's (Hable's curve) but as red: its hue and saturation are SDR's.
    assert red[0] - max(red[1], red[2]) > 120, f"the red is washed out: {red}"
    assert abs(red[1] - red[2]) <= 6 and red[1] <= 0.25 * red[0], f"the red has turned: {red}"
    assert np.ptp(grey) <= 4 and 90 <= grey.mean() <= 140, f"the grey is not a mid grey: {grey}"


def test_the_logo_reaches_the_player_in_its_own_colours(tmp_path, write_manifest, render_manifest):
    """The logo is an RGBA picture laid over the clip: in its place and its colour, and the clip around it and
    under its transparent part as it was (the overlay's own conversion shifted the whole picture by a level)."""
    from PIL import Image

    blue = (40, 90, 220)
    logo = np.zeros((100, 200, 4), np.uint8)
    logo[:, :100] = (*blue, 255)  # left half opaque, right half transparent
    Image.fromarray(logo).save(tmp_path / "logo.png")
    red_and_grey_video(tmp_path / "src.mp4", size=(1280, 720))
    cards = {"logo": {"file": "logo.png", "corner": "top-right", "width": 0.25, "opacity": 1.0}}
    path = write_manifest({"a": "src.mp4"}, [{"source": "a", "in": 0, "out": 0.8}], cards=cards)
    (result,) = render_manifest(path)
    rgb = player_rgb(result.path, 5)
    # 0.25 of 1280 px: 320x160 px over the grey half, its margin from the top-right corner a few per cent.
    columns = 640 + np.flatnonzero(np.abs(rgb[100, 640:] - blue).max(axis=1) <= 5)
    assert columns.size > 140, "no logo in its colour in the top-right quarter"
    assert np.abs(rgb[60:120, columns.min() + 10 : columns.min() + 150].mean(axis=(0, 1)) - blue).max() <= 5
    source = player_rgb(tmp_path / "src.mp4", 5)
    for what, rows, cols in [
        ("the transparent half", slice(60, 120), slice(columns.max() + 10, columns.max() + 140)),
        ("the clip below the logo", slice(500, 700), slice(700, 1200)),
    ]:
        seen, was = rgb[rows, cols].mean(axis=(0, 1)), source[rows, cols].mean(axis=(0, 1))
        assert np.abs(seen - was).max() <= 0.6, f"{what} does not show the clip as it was: {seen} against {was}"

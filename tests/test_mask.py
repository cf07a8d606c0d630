"""Face masks drawn in numpy: what is left inside a mask carries no more detail than a few blocks."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.faces.mask import MAX_BLOCKS_ACROSS, MIN_BLOCK_PX, SOLID_RGB, apply_masks, block_px


def _face_like(h: int = 240, w: int = 320, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_block_size_follows_the_face_with_a_floor():
    assert block_px(270, 300) == 100  # 3 blocks across the larger side
    assert block_px(40, 30) == MIN_BLOCK_PX
    for size in range(1, 800, 7):
        b = block_px(size, size)
        assert b >= MIN_BLOCK_PX and size / b <= MAX_BLOCKS_ACROSS


@pytest.mark.parametrize("mode", ["pixelate", "blur"])
def test_inside_a_mask_at_most_three_distinct_blocks_across(mode):
    frame = _face_like()
    before = frame.copy()
    box = (40, 30, 150, 150)
    apply_masks(frame, [box], mode=mode)
    x, y, w, h = box
    inside = frame[y : y + h, x : x + w].astype(int)
    b = block_px(w, h)
    if mode == "pixelate":
        for by in range(0, h, b):
            for bx in range(0, w, b):
                cell = inside[by : by + b, bx : bx + b]
                assert np.ptp(cell, axis=(0, 1)).max() <= 1  # one colour per block
    # Low-pass: the masked area's fine detail (neighbour differences) is a small fraction of the source's.
    detail = np.abs(np.diff(inside, axis=1)).mean()
    source_detail = np.abs(np.diff(before[y : y + h, x : x + w].astype(int), axis=1)).mean()
    assert detail < 0.1 * source_detail
    # Outside the box nothing changed.
    outside = before.copy()
    outside[y : y + h, x : x + w] = frame[y : y + h, x : x + w]
    assert np.array_equal(outside, frame)


def test_solid_is_grey_and_an_ellipse_covers_its_whole_box():
    frame = _face_like()
    before = frame.copy()
    apply_masks(frame, [(100, 50, 80, 120)], mode="solid", shape="ellipse")
    assert (frame[50:170, 100:180] == SOLID_RGB).all()  # every pixel of the box, corners included
    assert np.array_equal(frame[20, 75], before[20, 75])  # outside the ellipse drawn around the box


def test_full_frame_masks_everything_and_boxes_past_the_edge_are_clipped():
    frame = _face_like()
    apply_masks(frame, [], mode="solid", full_frame=True)
    assert (frame == SOLID_RGB).all()
    frame = _face_like()
    apply_masks(frame, [(300, 220, 100, 100), (-50, -50, 60, 60)], mode="solid")
    assert (frame[230:, 310:] == SOLID_RGB).all() and (frame[:10, :10] == SOLID_RGB).all()

"""Masks drawn into decoded frames (numpy, in place): pixelate, solid or blur, box- or ellipse-shaped."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

PixelBox = tuple[int, int, int, int]  # x, y, w, h
MaskMode = Literal["pixelate", "solid", "blur"]
MaskShape = Literal["box", "ellipse"]

# Published attacks recover identities from mosaics of 8–16 px blocks, and a detector still found a 270 px
# face through 8 blocks across it. At 4–5 blocks a mosaic still reads as a small face to a detector (the
# verify gate fired inside 5-block masks in 15–87 of 502 corpus frames at 0.6); at 3 blocks on a box padded
# by 0.5 it fired in none (bench/mask_calibration.py). So at most this many blocks span the padded box ...
MAX_BLOCKS_ACROSS = 3
# ... and a block is never smaller than this, however small the face.
MIN_BLOCK_PX = 16


def block_px(w: int, h: int) -> int:
    """Block size for a face box: at most MAX_BLOCKS_ACROSS blocks across its larger side, never below the floor."""
    return max(MIN_BLOCK_PX, math.ceil(max(w, h) / MAX_BLOCKS_ACROSS))


def _ellipse(w: int, h: int) -> np.ndarray:
    """Boolean mask of the ellipse inscribed in a w×h box (every pixel whose centre is inside)."""
    yy, xx = np.ogrid[:h, :w]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ry, rx = max(h / 2, 0.5), max(w / 2, 0.5)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _mosaic(patch: np.ndarray, block: int) -> np.ndarray:
    """Each block×block cell replaced by its mean colour (cells anchored at the patch's top-left)."""
    h, w = patch.shape[:2]
    ny, nx = math.ceil(h / block), math.ceil(w / block)
    padded = np.zeros((ny * block, nx * block, patch.shape[2]), dtype=np.float32)
    padded[:h, :w] = patch
    counts = np.zeros((ny * block, nx * block, 1), dtype=np.float32)
    counts[:h, :w] = 1
    sums = padded.reshape(ny, block, nx, block, -1).sum(axis=(1, 3))
    n = counts.reshape(ny, block, nx, block, 1).sum(axis=(1, 3))
    means = sums / np.maximum(n, 1)
    return np.repeat(np.repeat(means, block, axis=0), block, axis=1)[:h, :w]


def _smear(patch: np.ndarray, block: int) -> np.ndarray:
    """Blur that keeps no more detail than the mosaic: the mosaic, then smoothed across block edges."""
    coarse = _mosaic(patch, block)
    k = max(1, block // 2)
    # Box filter along both axes with edge padding (separable, cumulative sums: O(pixels)).
    for axis in (0, 1):
        pad = [(0, 0)] * coarse.ndim
        pad[axis] = (k, k)
        c = np.cumsum(np.pad(coarse, pad, mode="edge"), axis=axis, dtype=np.float64)
        zero = np.zeros_like(np.take(c, [0], axis=axis))
        c = np.concatenate([zero, c], axis=axis)
        n = coarse.shape[axis]
        coarse = (
            np.take(c, np.arange(2 * k + 1, 2 * k + 1 + n), axis=axis) - np.take(c, np.arange(0, n), axis=axis)
        ) / (2 * k + 1)
    return coarse


def _mask_plane(
    plane: np.ndarray,
    box: PixelBox,
    *,
    block: int,
    mode: MaskMode,
    shape: MaskShape,
    fill: int,
) -> None:
    """Mask one box of an H×W×C plane in place; an ellipse is the one around the whole box, clipped with it."""
    h, w = plane.shape[:2]
    x, y, bw, bh = box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
    if x1 <= x0 or y1 <= y0:
        return
    region = plane[y0:y1, x0:x1]
    if mode == "solid":
        covered = np.full(region.shape, fill, dtype=np.uint8)
    else:
        src = region.astype(np.float32)
        covered = (_mosaic(src, block) if mode == "pixelate" else _smear(src, block)).round().astype(np.uint8)
    if shape == "ellipse":
        # The ellipse of the whole (grown) box, then clipped: a face half out of frame keeps its visible half masked.
        inside = _ellipse(bw, bh)[y0 - y : y1 - y, x0 - x : x1 - x]
        region[inside] = covered[inside]
    else:
        region[...] = covered


# An ellipse inscribed in a box leaves its corners open; the one through the box's corners is sqrt(2) larger.
ELLIPSE_GROWTH = math.sqrt(2)


def _shaped(box: PixelBox, shape: MaskShape) -> PixelBox:
    """The box to draw for a shape: the box itself, or for an ellipse the box it must be inscribed in to cover it."""
    if shape != "ellipse":
        return box
    x, y, w, h = box
    gw, gh = math.ceil(w * ELLIPSE_GROWTH), math.ceil(h * ELLIPSE_GROWTH)
    return (x - (gw - w + 1) // 2, y - (gh - h + 1) // 2, gw, gh)


# Solid masks are mid-grey: a black patch on a body reads as a head silhouette to a detector (the verify
# gate fired on black boxes over heads in 4 of 56 frames at 0.6; on grey ones in none).
SOLID_RGB = 128
SOLID_YUV = (126, 128, 128)
# Regions (not faces) stay black, like the ones ffmpeg draws for fixed regions.
BLACK_YUV = (16, 128, 128)


def apply_masks(
    frame: np.ndarray,
    boxes: list[PixelBox] | tuple[PixelBox, ...],
    *,
    mode: MaskMode = "pixelate",
    shape: MaskShape = "box",
    full_frame: bool = False,
) -> np.ndarray:
    """Mask `boxes` in an H×W×C uint8 frame, in place; full_frame masks everything. Returns the frame."""
    h, w = frame.shape[:2]
    if full_frame:
        boxes, shape = [(0, 0, w, h)], "box"
    for box in boxes:
        x, y, bw, bh = _shaped(box, shape)
        _mask_plane(frame, (x, y, bw, bh), block=block_px(bw, bh), mode=mode, shape=shape, fill=SOLID_RGB)
    return frame


def yuv420_planes(buf: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (H×W×1, and half-size ×1 for chroma) of the Y, U and V planes of one raw yuv420p frame."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    n, c = width * height, cw * ch
    return (
        buf[:n].reshape(height, width, 1),
        buf[n : n + c].reshape(ch, cw, 1),
        buf[n + c : n + 2 * c].reshape(ch, cw, 1),
    )


def yuv420_frame_bytes(width: int, height: int) -> int:
    """Size in bytes of one raw yuv420p frame."""
    return width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)


def apply_masks_yuv420(
    buf: np.ndarray,
    width: int,
    height: int,
    boxes: list[PixelBox] | tuple[PixelBox, ...],
    *,
    mode: MaskMode = "pixelate",
    shape: MaskShape = "box",
    full_frame: bool = False,
    solid: tuple[int, int, int] = SOLID_YUV,
) -> np.ndarray:
    """Mask `boxes` in one raw yuv420p frame (limited range), in place; the same masks as apply_masks.

    Boxes grow outward to even coordinates and blocks to even sizes, so that each chroma block covers
    exactly its luma block: no colour detail at finer than block size survives either.
    """
    y_plane, u_plane, v_plane = yuv420_planes(buf, width, height)
    if full_frame:
        boxes, shape = [(0, 0, width + width % 2, height + height % 2)], "box"
    for box in boxes:
        x, y, bw, bh = _shaped(box, shape)
        ex, ey = x - x % 2, y - y % 2
        ew, eh = (x + bw + 1) // 2 * 2 - ex, (y + bh + 1) // 2 * 2 - ey
        block = block_px(bw, bh)
        block += block % 2
        _mask_plane(y_plane, (ex, ey, ew, eh), block=block, mode=mode, shape=shape, fill=solid[0])
        chroma = (ex // 2, ey // 2, ew // 2, eh // 2)
        for plane, fill in ((u_plane, solid[1]), (v_plane, solid[2])):
            _mask_plane(plane, chroma, block=block // 2, mode=mode, shape=shape, fill=fill)
    return buf

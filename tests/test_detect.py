"""The primary face detector finds a real face (the astronaut) wherever and however large it is, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clipper.faces.detect import CenterFace

skimage_data = pytest.importorskip("skimage.data")


def _frame_with_face(face_px: int, x: int, y: int, size=(1280, 720)) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A grey frame with the astronaut's head scaled so her face is about face_px wide; returns frame and face box."""
    head = skimage_data.astronaut()[0:300, 100:380]  # face roughly at rows 20..230, cols 40..230 of this crop
    scale = face_px / 190
    img = Image.fromarray(head).resize((max(1, round(280 * scale)), max(1, round(300 * scale))))
    frame = np.full((size[1], size[0], 3), 128, np.uint8)
    frame[y : y + img.height, x : x + img.width] = np.asarray(img)
    face = (x + round(40 * scale), y + round(20 * scale), round(190 * scale), round(210 * scale))
    return frame, face


def _covers(det, face, slack: float = 0.5) -> bool:
    fx, fy, fw, fh = face
    cx, cy = fx + fw / 2, fy + fh / 2
    return det.x0 - slack * fw <= cx <= det.x1 + slack * fw and det.y0 - slack * fh <= cy <= det.y1 + slack * fh


@pytest.mark.parametrize("face_px,x,y", [(40, 100, 100), (120, 900, 300), (300, 400, 150), (24, 1200, 650)])
def test_finds_the_astronaut_at_any_place_and_size(face_px, x, y):
    frame, face = _frame_with_face(face_px, min(x, 1280 - 2 * face_px), min(y, 720 - 2 * face_px))
    dets = CenterFace().detect(frame)
    assert any(_covers(d, face) for d in dets), (face, dets)


def test_finds_nothing_in_a_plain_frame_or_noise():
    rng = np.random.default_rng(0)
    assert CenterFace().detect(np.full((720, 1280, 3), 128, np.uint8)) == []
    assert CenterFace().detect(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)) == []


def test_reduced_analysis_width_reports_boxes_in_full_frame_pixels():
    frame, face = _frame_with_face(160, 700, 200)
    full = CenterFace().detect(frame)
    small = CenterFace(width=640).detect(frame)
    assert full and small
    a, b = max(full, key=lambda d: d.score), max(small, key=lambda d: d.score)
    assert abs((a.x0 + a.x1) / 2 - (b.x0 + b.x1) / 2) < 16 and abs((a.y0 + a.y1) / 2 - (b.y0 + b.y1) / 2) < 16


def test_detector_id_names_model_and_settings():
    a, b = CenterFace(), CenterFace(threshold=0.3, width=640)
    assert a.id != b.id and a.id.startswith("centerface-") and "w640" in b.id

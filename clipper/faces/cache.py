"""Face detections cached per source segment, shared by every language/platform variant and by previews."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipper import __version__
from clipper.faces.track import Detection

# Bumped whenever detection or its pre/post-processing changes meaning: old entries are then not reused.
CACHE_FORMAT = 4  # 3: the frames analysed for a flash are stored too; 4: analysis frames scaled in YUV first


def track_key(*, source_sha256: str, in_frame: int, out_frame: int, fps: str, detector_id: str) -> str:
    """Cache key of one segment's detections: source content, segment, detector and settings, code version."""
    parts = {
        "format": CACHE_FORMAT,
        "clipper": __version__,
        "source": source_sha256,
        "segment": [in_frame, out_frame, fps],
        "detector": detector_id,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CachedSegment:
    """One segment's analysis: face detections per frame, and each frame's mean luma (to spot dark frames)."""

    detections: list[list[Detection]]
    luma: list[float]
    flashed: tuple[int, ...] = ()  # skipped frames analysed because they showed a picture of their own


class DetectionCache:
    """A folder of .npz files (no pickle), one per key; writes are atomic, unreadable entries are misses."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> CachedSegment | None:
        """The detections (one list per frame) and frame lumas stored under `key`, or None when absent or unreadable."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                frames = int(data["frames"])
                index, boxes, luma, flashed = data["frame_index"], data["boxes"], data["luma"], data["flashed"]
            if luma.shape != (frames,) or (index.size and not 0 <= index.min() <= index.max() < frames):
                raise ValueError("inconsistent entry")
            if flashed.size and not 0 <= flashed.min() <= flashed.max() < frames:
                raise ValueError("inconsistent entry")
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            # Missing or damaged: the caller detects again; a damaged entry is never half-used.
            path.unlink(missing_ok=True)
            return None
        out: list[list[Detection]] = [[] for _ in range(frames)]
        for i, (x0, y0, x1, y1, score) in zip(index.tolist(), boxes.tolist(), strict=True):
            out[i].append(Detection(x0, y0, x1, y1, score))
        return CachedSegment(detections=out, luma=luma.tolist(), flashed=tuple(flashed.tolist()))

    def save(
        self, key: str, detections: list[list[Detection]], luma: list[float], flashed: tuple[int, ...] = ()
    ) -> Path:
        """Store one segment's detections and frame lumas under `key` (written to a temporary name, then renamed)."""
        if len(luma) != len(detections):
            raise ValueError(f"{len(luma)} luma values for {len(detections)} frames")
        self.root.mkdir(parents=True, exist_ok=True)
        index = np.array([i for i, dets in enumerate(detections) for _ in dets], dtype=np.int64)
        boxes = np.array([[d.x0, d.y0, d.x1, d.y1, d.score] for dets in detections for d in dets], dtype=np.float64)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".partial-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    frames=len(detections),
                    frame_index=index,
                    boxes=boxes.reshape(-1, 5),
                    luma=np.array(luma, dtype=np.float64),
                    flashed=np.array(flashed, dtype=np.int64),
                )
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._path(key)

"""What the masking pipe does to each frame of the clip's cuts: face masks, then moving (keyframed) regions."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from clipper.analyze import FaceAnalysis
from clipper.faces.follow import CropPath, plan_crop
from clipper.faces.mask import BLACK_YUV, apply_masks_yuv420, yuv420_frame_bytes, yuv420_planes
from clipper.graph import PipeLayout, region_pixels
from clipper.plan import RenderPlan


def needs_pipe(plan: RenderPlan) -> bool:
    """True when frames must pass through Python: faces to mask, or regions that move."""
    return plan.faces is not None or any(r.keyframes for r in plan.regions)


@dataclass
class FrameMasker:
    """Masks raw yuv420p canvas frames in place, by clip frame index (cards excluded)."""

    plan: RenderPlan
    layout: PipeLayout
    faces: FaceAnalysis | None

    def __post_init__(self) -> None:
        if self.plan.faces is not None and self.faces is None:
            raise ValueError("the plan masks faces but no face analysis was given")
        self._moving = [r for r in self.plan.regions if r.keyframes]
        self._segment_of = np.repeat(
            np.arange(len(self.plan.segments)), [s.out_frames for s in self.plan.segments]
        ).tolist()

    def segment_of(self, index: int) -> int:
        """Index of the cut that clip frame `index` belongs to."""
        if not 0 <= index < len(self._segment_of):
            raise IndexError(f"frame {index} is outside the clip's {len(self._segment_of)} frames")
        return self._segment_of[index]

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Mask clip frame `index` (a raw yuv420p canvas frame) in place and return it."""
        cw, ch = self.layout.canvas
        if self.faces is not None and self.plan.faces is not None:
            _, m = self.faces.mask_at(index)
            apply_masks_yuv420(
                frame,
                cw,
                ch,
                m.boxes,
                mode=self.plan.faces.mode,  # type: ignore[arg-type]
                shape=self.plan.faces.shape,  # type: ignore[arg-type]
                full_frame=m.full_frame,
            )
        if self._moving:
            pw, ph = self.layout.pictures[self.segment_of(index)]
            for r in self._moving:
                if r.start_frame <= index < r.end_frame:
                    box = region_pixels(r.box_at(index, self.plan.fps), pw, ph)
                    apply_masks_yuv420(frame, cw, ch, [box], mode=r.mode, solid=BLACK_YUV)  # type: ignore[arg-type]
        return frame


@dataclass(frozen=True)
class FaceReframe:
    """How one variant follows the faces: a crop path per cut, or pad-blur when they do not fit."""

    paths: tuple[CropPath, ...]
    fallback: str | None  # why pad-blur is used instead, or None

    def report(self) -> dict[str, object]:
        """For the sidecar."""
        return {
            "mode": "pad-blur (fallback from face)" if self.fallback else "face",
            "fallback": self.fallback,
            "catch_up_frames": sum(b - a + 1 for p in self.paths for a, b in p.catch_up),
        }


def plan_face_reframe(plan: RenderPlan, faces: FaceAnalysis, aspect: Fraction) -> FaceReframe:
    """Crop paths that follow the tracked faces in each cut at the output's aspect; pad-blur if they don't fit."""
    paths = []
    for seg, seg_faces in zip(plan.segments, faces.segments, strict=True):
        path = plan_crop(seg_faces.masks, seg.display_width, seg.display_height, aspect, plan.fps)
        if path.fallback:
            return FaceReframe(paths=(), fallback=f"cut {seg.index + 1}: {path.reason}")
        paths.append(path)
    return FaceReframe(paths=tuple(paths), fallback=None)


@dataclass
class CroppingMasker:
    """Masks full-size frames, then cuts each one's face-following window into a smaller canvas."""

    masker: FrameMasker
    paths: tuple[CropPath, ...]
    out_layout: PipeLayout

    def __post_init__(self) -> None:
        ow, oh = self.out_layout.canvas
        self._out = np.zeros(yuv420_frame_bytes(ow, oh), dtype=np.uint8)
        self._starts = [s.clip_start_frame for s in self.masker.plan.segments]

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Mask clip frame `index` at full size, then return its window (in a reused buffer)."""
        self.masker(index, frame)
        s = self.masker.segment_of(index)
        x, y, w, h = self.paths[s].window(index - self._starts[s])
        x, y = x - x % 2, y - y % 2  # chroma samples cover 2x2 pixels: keep the window on their grid
        cw, ch = self.masker.layout.canvas
        ow, oh = self.out_layout.canvas
        for src, dst, k in zip(yuv420_planes(frame, cw, ch), yuv420_planes(self._out, ow, oh), (1, 2, 2), strict=True):
            dst[: h // k, : w // k] = src[y // k : (y + h) // k, x // k : (x + w) // k]
        return self._out

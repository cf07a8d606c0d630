"""What the masking pipe does to each frame of the clip's cuts: face masks, then moving (keyframed) regions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipper.analyze import FaceAnalysis
from clipper.faces.mask import apply_masks_yuv420
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
            if index >= len(self._segment_of):
                raise IndexError(f"frame {index} is past the clip's {len(self._segment_of)} frames")
            pw, ph = self.layout.pictures[self._segment_of[index]]
            for r in self._moving:
                if r.start_frame <= index < r.end_frame:
                    box = region_pixels(r.box_at(index), pw, ph)
                    apply_masks_yuv420(frame, cw, ch, [box], mode=r.mode)  # type: ignore[arg-type]
        return frame

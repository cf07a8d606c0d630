"""What the masking pipe does to each frame of the clip's cuts: face masks, then moving (keyframed) regions."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from clipper.analyze import FaceAnalysis
from clipper.faces.follow import CropPath, plan_crop
from clipper.faces.mask import BLACK_YUV, apply_masks_yuv420, yuv420_frame_bytes, yuv420_planes
from clipper.faces.track import Detection, PixelBox
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


def framing_boxes(detections: list[list[Detection]]) -> list[list[PixelBox]]:
    """The faces to frame, per frame: the detections themselves (x, y, w, h), not the masks.

    Masks are padded (twice the face across), held 15 frames around each sighting and grown on holds: framed on
    them, a close-up's single face was wider than a 9:16 window (the variant fell back to pad-blur), and a hard
    cut inside a source left the old face's hold beside the new face (two "faces" a frame apart). The masks are
    drawn on the full frame before the window is cut, so framing on the faces shows nothing the masks hide.
    """
    return [
        [(int(d.x0), int(d.y0), max(1, round(d.x1 - d.x0)), max(1, round(d.y1 - d.y0))) for d in frame]
        for frame in detections
    ]


# How far beyond its box, in its own sizes a frame, a face may move between the frames it is seen in and still be
# the same face to the window (a face 200 px wide crossing a 1080p frame in a second moves 0.4 of its size a frame
# at 25 fps); at most this many frames apart count, so that a face gone for a while and back elsewhere is a jump.
FACE_REACH_PER_FRAME = 0.5
FACE_REACH_FRAMES = 3
# How long a detected face still counts for the window after it was last seen (the detector runs on every 2nd
# frame and misses a face now and then): without it, a two-shot whose second face was missed in some frames was
# "one face" there, never fell back, and the window jumped between the two (found in review).
FRAMING_HOLD_S = 0.5


def _reached(new: PixelBox, old: PixelBox, frames: int) -> bool:
    """Whether a face at `new` can be the face seen at `old` `frames` frames before."""
    grow = FACE_REACH_PER_FRAME * min(max(frames, 1), FACE_REACH_FRAMES) * max(old[2], old[3])
    x0, y0, x1, y1 = old[0] - grow, old[1] - grow, old[0] + old[2] + grow, old[1] + old[3] + grow
    return new[0] < x1 and x0 < new[0] + new[2] and new[1] < y1 and y0 < new[1] + new[3]


def framing(boxes: list[list[PixelBox]], fps: Fraction) -> tuple[list[list[PixelBox]], list[int]]:
    """The faces the window frames, per frame, and the frames where they jump (cuts for follow.plan_crop).

    Each detected face is held FRAMING_HOLD_S after it was last seen, unless a face is seen within its reach. A
    frame whose faces are all beyond reach of every face held is a jump (a cut inside the source, a new subject)
    when the next frame with faces confirms it (one stray detection while the real face is missed is not): the
    faces held from before it are dropped from there on, so the old face is not framed beside the new one, and
    the window may jump instead of panning for seconds.
    """
    hold = max(1, round(FRAMING_HOLD_S * float(fps)))
    out: list[list[PixelBox]] = []
    cuts: list[int] = []
    held: list[tuple[PixelBox, int, int]] = []  # (box, frame it was last seen, sightings)
    pending: tuple[int, list[tuple[PixelBox, int, int]]] | None = None  # (candidate cut, the faces held before)
    for i, frame in enumerate(boxes):
        held = [(b, f, n) for b, f, n in held if i - f <= hold]
        if frame:
            if pending is not None:
                at, before = pending
                pending = None
                if not any(_reached(a, b, i - f) for a in frame for b, f, _ in before):
                    cuts.append(at)  # confirmed: what was held before it goes, back to the cut
                    gone = {b for b, _, _ in before}
                    held = [h for h in held if h[0] not in gone]
                    for k in range(at, i):
                        out[k] = [b for b in out[k] if b not in gone]
            elif held and not any(_reached(a, b, i - f) for a in frame for b, f, _ in held):
                pending = (i, list(held))
            seen = [(a, i, 1 + max((n for b, f, n in held if _reached(a, b, i - f)), default=0)) for a in frame]
            held = [(b, f, n) for b, f, n in held if not any(_reached(a, b, i - f) for a in frame)] + seen
        # A face seen once is framed in its own frame only: a stray detection held for FRAMING_HOLD_S beside the
        # real face could make the variant fall back.
        out.append([b for b, f, n in held if n > 1 or f == i])
    return out, cuts


def plan_face_reframe(plan: RenderPlan, faces: FaceAnalysis, aspect: Fraction) -> FaceReframe:
    """Crop paths that follow the detected faces in each cut at the output's aspect; pad-blur if they don't fit."""
    paths = []
    for seg, seg_faces in zip(plan.segments, faces.segments, strict=True):
        boxes, cuts = framing(framing_boxes(seg_faces.detections), plan.fps)
        path = plan_crop(boxes, seg.display_width, seg.display_height, aspect, plan.fps, cuts=cuts or None)
        if path.fallback:
            return FaceReframe(paths=(), fallback=f"segments.{seg.index}: {path.reason}")
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
        if hasattr(self.masker, "view"):  # an overlay (preview --masks): its labels go inside the window
            self.masker.view = self.window_at

    def window_at(self, index: int) -> tuple[int, int, int, int]:
        """The window (x, y, w, h) cut from clip frame `index`, on the chroma grid."""
        s = self.masker.segment_of(index)
        x, y, w, h = self.paths[s].window(index - self._starts[s])
        return x - x % 2, y - y % 2, w, h  # chroma samples cover 2x2 pixels: keep the window on their grid

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Mask clip frame `index` at full size, then return its window (in a reused buffer)."""
        self.masker(index, frame)
        x, y, w, h = self.window_at(index)
        cw, ch = self.masker.layout.canvas
        ow, oh = self.out_layout.canvas
        for src, dst, k in zip(yuv420_planes(frame, cw, ch), yuv420_planes(self._out, ow, oh), (1, 2, 2), strict=True):
            dst[: h // k, : w // k] = src[y // k : (y + h) // k, x // k : (x + w) // k]
        return self._out

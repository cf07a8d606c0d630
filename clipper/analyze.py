"""Analyze stage: find the faces in every frame of every cut, once, and plan the masks every variant applies."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from clipper.errors import ClipperError, MediaError
from clipper.faces.cache import DetectionCache, track_key
from clipper.faces.detect import FLOOR_PX, LUMA_WEIGHTS, CenterFace, FaceDetector
from clipper.faces.track import Detection, FrameMask, TrackingSettings, coverage_report, plan_masks
from clipper.ffmpeg import read_frames
from clipper.graph import analysis_cmd
from clipper.media import content_hash
from clipper.plan import RenderPlan, SegmentPlan

log = logging.getLogger("clipper.analyze")

# The smallest face that must be found, in pixels of the picture as shown (the source's square pixels): the
# "recognise" level of IEC 62676-4 (DORI, 125 px/m: a person known to the viewer can be recognised) on a face
# about 16 cm wide. Recognition by someone who knows the person is exactly the threat.
SMALLEST_FACE_PX = 20
# CenterFace's floor in what it sees (detect.FLOOR_PX, the detector's floor_px): 20 px, measured in front of
# texture and scenes (on a plain grey picture it was 14, the floor used before, which published 20 px faces).
# Frames are scaled by floor / SMALLEST_FACE_PX, never up, so the smallest face reaches the detector at its floor at
# any source size: with the floor at SMALLEST_FACE_PX, every source at its own width. A fixed 960 px published 22 px
# faces of a 1080p source and 56 px faces of a 4K one; 70 % of the width (14 px), 20 px faces of a 720p source in
# front of brick. Speeds are in docs/ARCHITECTURE.md.
DETECTOR_FLOOR_PX = FLOOR_PX
# The detector runs on every ANALYSIS_STRIDE-th frame of a cut (and its last). The frames between are covered
# by the tracker like any missed detection: bridged between sightings with a motion margin and held 15 frames
# around them; the property test covers the true face in 100 % of frames with 15 % of detections missing at
# random, and a skipped frame is never more than one frame from a sighting. Detection is 90 % of a cold
# render's analysis time (bench, 720p: 62 s of a 135 s render at stride 1). CLIPPER_ANALYSIS_STRIDE=1 analyzes
# every frame.
ANALYSIS_STRIDE = 2
# What a stride cannot see is a face shown on skipped frames only (a flash, a one-frame insert): the tracker has
# no sighting to hold. So a skipped frame is looked at anyway where it is unlike both its neighbours by more than
# they and the blocks around are unlike each other (a picture of its own, not motion between them): in any 16×16
# block of the analysed picture, by more than FLASH_THRESHOLD luma levels. A face shown on one frame of a still
# scene scores ~120; the corpus's clips score under 6 but for a few frames of a shaky camera (3 % of foreman's
# skipped frames), a face gliding 13 px a frame scores 0.
FLASH_THRESHOLD = 12.0
FLASH_BLOCK = 8  # in the half-resolution grey picture the score is computed on: 16 analysed pixels


def frame_width(display_width: int, floor_px: int = DETECTOR_FLOOR_PX) -> int:
    """The width a picture this wide is analysed at: as narrow as lets the smallest face reach the detector at
    `floor_px`, never wider than the picture."""
    return min(display_width, math.ceil(display_width * floor_px / SMALLEST_FACE_PX))


def analysis_stride() -> int:
    """Frames between detector runs: CLIPPER_ANALYSIS_STRIDE if set, else ANALYSIS_STRIDE (at most 3)."""
    raw = os.environ.get("CLIPPER_ANALYSIS_STRIDE", "").strip()
    if not raw:
        return ANALYSIS_STRIDE
    if not raw.isdigit() or not 1 <= int(raw) <= 3:
        # Larger strides would leave faces that appear briefly to the holds alone: not offered.
        raise ClipperError(f"CLIPPER_ANALYSIS_STRIDE={raw!r} must be 1, 2 or 3", hint="unset it for the default (2)")
    return int(raw)


def default_detector() -> CenterFace:
    """The detector that places masks: CenterFace on up to two cores, given frames at `frame_width`."""
    return CenterFace(threads=min(2, os.cpu_count() or 1))


def cache_root(out_root: Path) -> Path:
    """Where analyses shared by every variant are kept: CLIPPER_CACHE_DIR, or .cache under the output folder."""
    override = os.environ.get("CLIPPER_CACHE_DIR")
    return Path(override) if override else Path(out_root) / ".cache"


# A cache writer holds a temporary file for milliseconds to seconds; one this old belongs to a process that died.
# The cache may be shared by several machines and renders, so "not ours" is no reason to delete: age is.
STALE_CACHE_PARTIAL_S = 3600.0
CACHE_FOLDERS = ("faces", "sound", "loudness", "hashes")  # what clipper writes under the cache root (besides logs/)


def sweep_cache_partials(root: Path, max_age_s: float = STALE_CACHE_PARTIAL_S) -> list[Path]:
    """Delete temporary files older than max_age_s that killed writers left in the cache; return what was removed."""
    removed: list[Path] = []
    now = time.time()
    # Only clipper's own cache folders and temporary names: CLIPPER_CACHE_DIR may point into a folder shared with
    # other programs.
    for folder in (root / name for name in CACHE_FOLDERS):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if not (p.name.startswith(".") and "partial" in p.name and p.is_file()):
                continue
            try:
                if now - p.stat().st_mtime > max_age_s:
                    p.unlink()
                    removed.append(p)
            except OSError as e:  # swept by another process first, or another user's: not this render's problem
                log.debug("cache sweep left %s: %s", p, e)
    return removed


def cache_dir(out_root: Path) -> Path:
    """Where face analyses are kept: faces/ under cache_root."""
    return cache_root(out_root) / "faces"


def hash_memo(out_root: Path) -> Path:
    """Where the sources' content hashes are remembered across runs (media.content_hash): hashes/ under cache_root."""
    return cache_root(out_root) / "hashes"


@dataclass(frozen=True)
class SegmentFaces:
    """One cut's faces: detections and masks in full-resolution pixels of the cut's picture, per clip frame."""

    segment: int
    detections: list[list[Detection]]
    luma: list[float]
    masks: list[FrameMask]
    cached: bool
    seconds: float
    flashed: tuple[int, ...] = ()  # skipped frames analysed because they showed a picture of their own


@dataclass(frozen=True)
class FaceAnalysis:
    """The faces of a whole clip, shared by every variant and preview of it."""

    detector: str
    tracking: TrackingSettings
    segments: tuple[SegmentFaces, ...]
    stride: int = 1  # the detector ran on every stride-th frame of each cut (and its last)
    _starts: tuple[int, ...] = field(repr=False, default=())

    def mask_at(self, clip_frame: int) -> tuple[int, FrameMask]:
        """(segment index, mask) for a frame of the clip's cuts (cards excluded)."""
        for i in range(len(self.segments) - 1, -1, -1):
            start = self._starts[i]
            if clip_frame >= start:
                masks = self.segments[i].masks
                if clip_frame - start >= len(masks):
                    break
                return i, masks[clip_frame - start]
        # No analysis for this frame: it must not be shown at all (the caller fails the render).
        raise ClipperError(
            f"frame {clip_frame} of the clip has no face analysis",
            hint="this is a bug: the analyzed and rendered frames differ; report it with --debug output",
        )

    def analysed(self, segment: int) -> set[int]:
        """The frames of a cut the detector looked at: every stride-th, the last, and those that flashed."""
        n = len(self.segments[segment].masks)
        return {*range(0, n, self.stride), n - 1, *self.segments[segment].flashed} if n else set()

    def coverage(self, segment: int) -> dict[str, Any]:
        """coverage_report of a cut, its stretches opened only by frames the detector looked at."""
        return coverage_report(self.segments[segment].masks, self.analysed(segment))

    def report(self) -> dict[str, Any]:
        """What was found and masked, for the sidecar: per cut and in total."""
        per = []
        for i, seg in enumerate(self.segments):
            cov = self.coverage(i)
            per.append(
                {
                    "segment": seg.segment,
                    "frames": cov["frames"],
                    "frames_with_faces_detected": cov["frames_with"]["detected"],
                    "faces_detected": sum(len(d) for d in seg.detections),
                    "lowest_score": min((d.score for dets in seg.detections for d in dets), default=None),
                    "frames_held": cov["frames_with"]["held"],
                    "frames_interpolated": cov["frames_with"]["interpolated"],
                    "frames_masked_whole_dark": cov["full_frame"],
                    "frames_analysed_for_a_flash": len(seg.flashed),
                    "stretches": [{"first": a, "last": b, "kind": k} for a, b, k in cov["stretches"]],
                    "from_cache": seg.cached,
                    "analysis_seconds": round(seg.seconds, 3),
                }
            )
        keys = ("frames", "frames_with_faces_detected", "faces_detected", "frames_held", "frames_interpolated")
        total = {k: sum(p[k] for p in per) for k in (*keys, "frames_masked_whole_dark")}
        return {"detector": self.detector, "analysis_stride": self.stride, **total, "segments": per}


def analyze_faces(
    plan: RenderPlan,
    cache: DetectionCache | None,
    *,
    detector: FaceDetector | None = None,
    source_hashes: dict[str, str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FaceAnalysis:
    """Detect faces in every frame of every cut (or load them from the cache) and plan their masks."""
    if plan.faces is None:
        raise ValueError("the plan opts out of face masking")
    detector = detector or default_detector()
    stride = analysis_stride()
    tracking = TrackingSettings(padding=plan.faces.padding)
    hashes = dict(source_hashes or {})
    total = plan.clip_frames
    done = 0
    segments = []
    for seg in plan.segments:
        started = time.monotonic()
        # A detector that names no floor gets CenterFace's.
        width = frame_width(seg.display_width, getattr(detector, "floor_px", DETECTOR_FLOOR_PX))
        if seg.source not in hashes:
            hashes[seg.source] = content_hash(seg.path, memo=cache.root.parent / "hashes" if cache else None)
        key = track_key(
            source_sha256=hashes[seg.source],
            in_frame=seg.in_frame,
            out_frame=seg.out_frame,
            fps=str(plan.fps),
            # A deinterlaced source is analysed on other pictures than before deinterlacing was added.
            detector_id=f"{detector.id}-at{width}-stride{stride}"
            + (f"-flash{FLASH_THRESHOLD}" if stride > 1 else "")
            + (f"-deint-{seg.interlace}" if seg.interlace else "")
            + (f"-tonemapped-{seg.hdr}" if seg.hdr else ""),  # an HDR source is analysed tone-mapped
        )
        hit = cache.load(key) if cache is not None else None
        if hit is not None and len(hit.detections) != seg.out_frames:
            hit = None  # written for another frame count: never reuse what does not line up frame for frame
        if hit is None:

            def frame_done(n: int, base: int = done) -> None:
                if on_progress:
                    on_progress(base + n, total)

            dets, luma, flashed = _detect_segment(plan, seg, detector, frame_done, stride, width)
            if cache is not None:
                cache.save(key, dets, luma, flashed)
        else:
            dets, luma, flashed = hit.detections, hit.luma, hit.flashed
        done += seg.out_frames
        if on_progress:
            on_progress(done, total)
        masks = plan_masks(dets, seg.display_width, seg.display_height, tracking, luma=luma)
        segments.append(
            SegmentFaces(
                segment=seg.index,
                detections=dets,
                luma=luma,
                masks=masks,
                cached=hit is not None,
                seconds=time.monotonic() - started,
                flashed=flashed,
            )
        )
    starts = tuple(s.clip_start_frame for s in plan.segments)
    return FaceAnalysis(
        detector=detector.id, tracking=tracking, segments=tuple(segments), stride=stride, _starts=starts
    )


def _detect_segment(
    plan: RenderPlan,
    seg: SegmentPlan,
    detector: FaceDetector,
    on_frame: Callable[[int], None],
    stride: int,
    width: int,
) -> tuple[list[list[Detection]], list[float], tuple[int, ...]]:
    """Run the detector over every stride-th frame of one cut (`width` px wide), its last, and skipped frames that
    flash; return the boxes (full-resolution pixels), mean luma per frame, and the skipped frames analysed."""
    # ffmpeg scales the frames to the analysis width (cheaper than scaling in Python); boxes are scaled
    # back up here.
    args, w, h = analysis_cmd(plan, seg, width)
    sx, sy = seg.display_width / w, seg.display_height / h
    dets: list[list[Detection]] = []
    luma: list[float] = []

    def detect(index: int, rgb: np.ndarray) -> list[Detection]:
        try:
            found = detector.detect(rgb)
        except Exception as e:  # noqa: BLE001 — any detector fault stops the job: faces cannot be guaranteed
            raise ClipperError(
                f"the face detector failed on frame {index} of segments.{seg.index}: {type(e).__name__}: {e}",
                where=str(seg.path),
                hint="nothing was rendered; run with --debug and report the log (faces are never left unmasked)",
            ) from e
        return [Detection(d.x0 * sx, d.y0 * sy, d.x1 * sx, d.y1 * sy, d.score) for d in found]

    # Frames since the last analysed one (which comes first): (index, picture, grey), judged when the next
    # analysed frame arrives and both neighbours of every skipped frame are known.
    window: list[tuple[int, np.ndarray, np.ndarray]] = []
    flashed: list[int] = []
    for frame in read_frames(args, w * h * 3, what=f"face analysis of segments.{seg.index}"):
        rgb = frame.reshape(h, w, 3)
        index = len(dets)
        grey = rgb[::2, ::2].astype(np.float32) @ LUMA_WEIGHTS
        luma.append(float(grey.mean()))  # brightness is cheap: every frame's is measured
        if index % stride and index != seg.out_frames - 1:
            dets.append([])  # not looked at unless it flashes: covered by the tracker's bridges and holds
            window.append((index, rgb.copy(), grey))  # read_frames reuses its buffer: keep this picture
            continue
        dets.append(detect(index, rgb))
        window.append((index, rgb, grey))  # only its grey is used from here on
        # Each skipped frame against the two analysed frames around it (at stride 3, against its immediate
        # neighbours, a face on both skipped frames of a still scene would score 0).
        before, after = window[0][2], window[-1][2]
        for j, skipped, g in window[1:-1]:
            if flash_score(before, g, after) > FLASH_THRESHOLD:
                dets[j] = detect(j, skipped)
                flashed.append(j)
        window = [window[-1]]
        if len(dets) % 25 == 0:
            on_frame(len(dets))
    if len(dets) != seg.out_frames:
        # Fewer frames than planned: the masks would not line up with the render. Stop rather than guess.
        raise MediaError(
            f"face analysis of segments.{seg.index} read {len(dets)} frames, expected {seg.out_frames}: the source "
            "ends or breaks off inside this cut",
            where=str(seg.path),
            hint="the file may be damaged or an unfinished copy: copy it again, or move the cut",
        )
    return dets, luma, tuple(flashed)


def flash_score(before: np.ndarray, grey: np.ndarray, after: np.ndarray, block: int = FLASH_BLOCK) -> float:
    """How much a frame shows that neither neighbour does: the largest, over blocks, of its smaller difference
    to a neighbour minus the neighbours' difference to each other (grey pictures, luma levels)."""

    def block_mean(diff: np.ndarray) -> np.ndarray:
        h, w = diff.shape
        ph, pw = -(-h // block) * block, -(-w // block) * block
        diff = np.pad(diff, ((0, ph - h), (0, pw - w)), mode="edge")
        return diff.reshape(ph // block, block, pw // block, block).mean(axis=(1, 3))

    own = np.minimum(block_mean(np.abs(grey - before)), block_mean(np.abs(grey - after)))
    # Where the neighbours differ (in a block or next to it) the picture moves: what the middle frame shows there
    # may be the moving thing half way, so only what it shows beyond the movement counts.
    moving = ndimage.maximum_filter(block_mean(np.abs(after - before)), size=3, mode="nearest")
    return float((own - moving).max())

"""Per-frame face detections to per-frame masks that fail closed: held, bridged, padded, never a frame left open."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the analyzed frame
PixelBox = tuple[int, int, int, int]  # x, y, w, h

# Canonical order of the parts of a FrameMask.reason ("detected+held", ...).
REASON_ORDER = ("detected", "interpolated", "held", "dark")
# Velocities are measured over at least this many frames where the track allows: detector jitter of a few
# pixels between neighbouring frames would otherwise read as motion. The neighbour-to-neighbour rate is
# also taken into account for margins (the larger wins), so a sudden start is not averaged away.
VELOCITY_SPAN = 5


@dataclass(frozen=True)
class Detection:
    """One face box from a detector, in pixels of the analyzed frame."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    def __post_init__(self) -> None:
        # A box that cannot be placed cannot be masked: stop the job rather than drop a face silently.
        if not all(math.isfinite(v) for v in (self.x0, self.y0, self.x1, self.y1, self.score)):
            raise ValueError(f"detection with a non-finite value: {self}")

    @property
    def box(self) -> Box:
        """The box with its corners in order (a detector may hand them over swapped)."""
        return (min(self.x0, self.x1), min(self.y0, self.y1), max(self.x0, self.x1), max(self.y0, self.y1))


@dataclass(frozen=True)
class TrackingSettings:
    """How far masks reach beyond what the detector saw; every default errs towards masking more."""

    hold_frames: int = 15  # kept before the first and after the last sighting, and from each side of a gap
    hold_growth: float = 1.3  # a held box's scale at the far end of the hold (linear from 1)
    padding: float = 0.5  # each side grows by this fraction of the box's size: w' = w * (1 + 2 * padding)
    max_gap_frames: int = 50  # gaps up to this long are interpolated; longer ones get the grown union
    iou_match: float = 0.1  # a detection continues a track at this IoU with its predicted box ...
    center_match: float = 1.0  # ... or with its centre within this many of the larger box side
    dark_luma: float = 16.0  # mean luma below this: the detector cannot be trusted, the whole frame is masked
    motion_margin: float = 1.0  # held/interpolated boxes grow by |velocity| * frames unseen * this, per axis

    def __post_init__(self) -> None:
        if self.hold_frames < 0 or self.max_gap_frames < 0:
            raise ValueError("hold_frames and max_gap_frames must be >= 0")
        if self.hold_growth < 1 or self.padding < 0 or self.motion_margin < 0:
            raise ValueError("hold_growth must be >= 1, padding and motion_margin >= 0: masks may only grow")
        if self.iou_match < 0 or self.center_match < 0:
            raise ValueError("iou_match and center_match must be >= 0")


@dataclass(frozen=True)
class FrameMask:
    """What to hide in one frame: pixel boxes (x, y, w, h), or the whole frame."""

    frame: int
    boxes: tuple[PixelBox, ...]
    full_frame: bool
    reason: str  # parts of REASON_ORDER joined by "+", or "none"


@dataclass(frozen=True)
class Track:
    """One face followed through the frames it was detected in (frames strictly increasing)."""

    id: int
    frames: list[int]
    boxes: list[Detection]


def associate(detections: list[list[Detection]], settings: TrackingSettings | None = None) -> list[Track]:
    """Link detections frame by frame into tracks: greedy, highest score first; unmatched detections start tracks."""
    s = settings or TrackingSettings()
    frames_of: list[list[int]] = []
    boxes_of: list[list[Detection]] = []
    for f, dets in enumerate(detections):
        taken: set[int] = set()
        # sorted() is stable: detections of equal score keep the detector's order, so results are reproducible.
        for det in sorted(dets, key=lambda d: -d.score):
            best: tuple[tuple[int, float, int, int], int] | None = None
            for tid, (frames, boxes) in enumerate(zip(frames_of, boxes_of, strict=True)):
                if tid in taken:
                    continue
                cost = _match_cost(frames, boxes, det, f, s)
                if cost is not None and (best is None or (*cost, tid) < best[0]):
                    best = ((*cost, tid), tid)
            if best is None:
                frames_of.append([f])
                boxes_of.append([det])
                taken.add(len(frames_of) - 1)
            else:
                frames_of[best[1]].append(f)
                boxes_of[best[1]].append(det)
                taken.add(best[1])
    # Tracks never expire: a face seen again where it was is assumed to have been there all along, and the time
    # between is bridged (see plan_masks). Wrong links only ever add masks, since holds are kept at every gap.
    return [Track(i, fr, bx) for i, (fr, bx) in enumerate(zip(frames_of, boxes_of, strict=True))]


def plan_masks(
    detections: list[list[Detection]],
    width: int,
    height: int,
    settings: TrackingSettings | None = None,
    *,
    luma: list[float] | None = None,
) -> list[FrameMask]:
    """Return one FrameMask per frame: padded detections, holds and gap bridges per track, dark frames whole."""
    s = settings or TrackingSettings()
    n = len(detections)
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if luma is not None and len(luma) != n:
        raise ValueError(f"luma has {len(luma)} values for {n} frames")
    found: list[list[tuple[Box, str]]] = [[] for _ in range(n)]
    for f, dets in enumerate(detections):
        # Every detection is masked in its own frame, whatever tracking makes of it.
        found[f].extend((_pad(d.box, s.padding), "detected") for d in dets)
    for track in associate(detections, s):
        _cover_track(track, n, s, found)

    masks: list[FrameMask] = []
    for f in range(n):
        # "not >=" so that a NaN measurement counts as dark: a frame we could not measure is not trusted.
        dark = luma is not None and not luma[f] >= s.dark_luma
        boxes: list[PixelBox] = []
        kinds: set[str] = set()
        for box, kind in found[f]:
            px = _to_pixels(box, width, height)
            if px is None:
                continue  # wholly outside the frame: nothing there to hide
            kinds.add(kind)
            if px not in boxes:
                boxes.append(px)
        if dark:
            kinds.add("dark")
        # Boxes stay listed on dark frames too: a consumer that missed full_frame still hides the faces.
        reason = "+".join(k for k in REASON_ORDER if k in kinds) or "none"
        masks.append(FrameMask(frame=f, boxes=tuple(boxes), full_frame=dark, reason=reason))
    return masks


def coverage_report(masks: list[FrameMask], analysed: Collection[int] | None = None) -> dict[str, Any]:
    """Summarize masks for the sidecar and contact sheet: counts per reason and the held/interpolated/dark stretches.

    `analysed` are the frames the detector ran on (None: every frame). A frame it skipped is covered by the tracker
    by design: it belongs to a held or interpolated stretch that frames the detector looked at open, and opens
    none (counted on their own, every skipped frame of a steady shot was a one-frame "held" stretch, and they
    buried the stretches where the detector did miss a face). Darkness is measured on every frame.
    """
    reasons = Counter(m.reason for m in masks)
    parts = [set(m.reason.split("+")) for m in masks]
    looked = set(range(len(masks))) if analysed is None else set(analysed)
    stretches: list[tuple[int, int, str]] = []  # (first frame, last frame inclusive, kind)
    counted: dict[str, int] = {}
    for kind in ("held", "interpolated", "dark"):
        counted[kind] = 0
        run: list[int] = []  # positions of the current run of consecutive frames of this kind
        for pos in [*range(len(masks)), None]:  # None closes the last run
            if pos is not None and kind in parts[pos] and (not run or masks[pos].frame == masks[run[-1]].frame + 1):
                run.append(pos)
                continue
            if run and (kind == "dark" or any(q in looked for q in run)):
                stretches.append((masks[run[0]].frame, masks[run[-1]].frame, kind))
                counted[kind] += len(run)
            run = [pos] if pos is not None and kind in parts[pos] else []
    frames_with = {k: sum(k in p for p in parts) for k in (*REASON_ORDER, "none")}
    frames_with.update(held=counted["held"], interpolated=counted["interpolated"])
    return {
        "frames": len(masks),
        "reasons": dict(sorted(reasons.items())),
        "frames_with": frames_with,
        "full_frame": sum(m.full_frame for m in masks),
        "stretches": sorted(stretches),
    }


# ------------------------------------------------------------------------------------------- tracking


def _match_cost(
    frames: list[int], boxes: list[Detection], det: Detection, f: int, s: TrackingSettings
) -> tuple[int, float, int] | None:
    """How well det continues a track (lower is better: tier, distance in box sides, frames unseen), or None."""
    unseen = f - frames[-1]
    # The velocity needs at most the last VELOCITY_SPAN + 1 sightings (frames strictly increase): keeps this O(1).
    recent = frames[-VELOCITY_SPAN - 1 :]
    centres = [_centre(b.box) for b in boxes[-VELOCITY_SPAN - 1 :]]
    last = boxes[-1].box
    d = det.box
    v = _velocity(recent, centres, len(recent) - 1)
    pred = _shift(last, v[0] * unseen, v[1] * unseen) if v else last
    side = max(_w(pred), _h(pred), _w(d), _h(d), 1.0)
    dist = _dist(pred, d)
    if _iou(pred, d) >= s.iou_match or dist <= s.center_match * side:
        return (0, dist / side, unseen)
    # Second chance against the unpredicted box: a face that stopped moving while unseen is still the same face.
    # A track seen once has no velocity: it may have moved up to center_match sides per unseen frame (a detector
    # run on every 3rd frame sees a fast face jump more than its size); the allowance stops growing after
    # hold_frames. Linking too eagerly only adds masks (holds are kept at every gap), linking too little loses them.
    reach = 1 if v else max(1, min(unseen, s.hold_frames))
    dist = _dist(last, d)
    if _iou(last, d) >= s.iou_match or dist <= s.center_match * side * reach:
        return (1, dist / side, unseen)
    return None


def _velocity(frames: list[int], centres: list[tuple[float, float]], i: int) -> tuple[float, float] | None:
    """Centre velocity (px/frame) arriving at sighting i, over at least VELOCITY_SPAN frames; None if i is first."""
    j = _back(frames, i)
    return None if j is None else _rate(frames, centres, j, i)


def _back(frames: list[int], i: int) -> int | None:
    if i == 0:
        return None
    j = i - 1
    while j > 0 and frames[i] - frames[j] < VELOCITY_SPAN:
        j -= 1
    return j


def _forward(frames: list[int], i: int) -> int | None:
    if i == len(frames) - 1:
        return None
    j = i + 1
    while j < len(frames) - 1 and frames[j] - frames[i] < VELOCITY_SPAN:
        j += 1
    return j


def _rate(frames: list[int], centres: list[tuple[float, float]], a: int, b: int) -> tuple[float, float]:
    dt = frames[b] - frames[a]
    return ((centres[b][0] - centres[a][0]) / dt, (centres[b][1] - centres[a][1]) / dt)


def _speed(frames: list[int], centres: list[tuple[float, float]], i: int) -> tuple[float, float]:
    """Largest |velocity| per axis around sighting i, before or after, short or long span: margins err wide."""
    pairs: list[tuple[int, int]] = []
    back, fwd = _back(frames, i), _forward(frames, i)
    if back is not None:
        pairs += [(i - 1, i), (back, i)]
    if fwd is not None:
        pairs += [(i, i + 1), (i, fwd)]
    rates = [_rate(frames, centres, a, b) for a, b in pairs]
    # A face seen once has no known speed: only padding and hold growth cover it.
    return (max((abs(r[0]) for r in rates), default=0.0), max((abs(r[1]) for r in rates), default=0.0))


def _cover_track(track: Track, n: int, s: TrackingSettings, found: list[list[tuple[Box, str]]]) -> None:
    """Add the track's held and bridging boxes to found (frames without a sighting of this track only)."""
    frames = track.frames
    raw = [d.box for d in track.boxes]
    centres = [_centre(b) for b in raw]
    padded = [_pad(b, s.padding) for b in raw]
    speeds = [_speed(frames, centres, i) for i in range(len(frames))]

    def held(i: int, unseen: int) -> Box:
        # Faces enter, leave and get missed gradually (turning, blur, occlusion): the box is kept, growing
        # linearly to hold_growth, and widened by how far the face could have moved at its last known speed.
        k = 1 + (s.hold_growth - 1) * unseen / max(s.hold_frames, 1)
        mx, my = (sp * unseen * s.motion_margin for sp in speeds[i])
        return _grow(_scale(padded[i], k), mx, my)

    for j in range(1, s.hold_frames + 1):  # before the first sighting
        if frames[0] - j < 0:
            break
        found[frames[0] - j].append((held(0, j), "held"))
    for j in range(1, s.hold_frames + 1):  # after the last sighting
        if frames[-1] + j >= n:
            break
        found[frames[-1] + j].append((held(len(frames) - 1, j), "held"))

    for i in range(len(frames) - 1):
        a, b = frames[i], frames[i + 1]
        gap = b - a - 1
        if gap == 0:
            continue
        chord = _rate(frames, centres, i, i + 1)
        vx = max(speeds[i][0], speeds[i + 1][0], abs(chord[0])) * s.motion_margin
        vy = max(speeds[i][1], speeds[i + 1][1], abs(chord[1])) * s.motion_margin
        union = _scale(_union(padded[i], padded[i + 1]), s.hold_growth)
        for f in range(a + 1, b):
            since, until = f - a, b - f
            # Holds from both sides as at a track's ends, so a gap is never less covered than if the link had
            # not been made: a wrong link (two people, a false positive) can then only add masks.
            if since <= s.hold_frames:
                found[f].append((held(i, since), "held"))
            if until <= s.hold_frames:
                found[f].append((held(i + 1, until), "held"))
            near = min(since, until)
            if gap <= s.max_gap_frames:
                # A short miss (blur, a turned head): the face is between its two sightings, close to the line
                # joining them; the margin covers how far it could stray from that line since it was last seen.
                t = since / (b - a)
                box = tuple(p + (q - p) * t for p, q in zip(raw[i], raw[i + 1], strict=True))
                found[f].append((_grow(_pad(box, s.padding), vx * near, vy * near), "interpolated"))
            else:
                # A long miss: where the face went is unknown, so cover everything between the two sightings.
                found[f].append((_grow(union, vx * near, vy * near), "held"))


# ------------------------------------------------------------------------------------------- geometry


def _w(b: Box) -> float:
    return b[2] - b[0]


def _h(b: Box) -> float:
    return b[3] - b[1]


def _centre(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


def _dist(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    return math.hypot(ax - bx, ay - by)


def _iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (_w(a) * _h(a) + _w(b) * _h(b) - inter)


def _shift(b: Box, dx: float, dy: float) -> Box:
    return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)


def _grow(b: Box, mx: float, my: float) -> Box:
    return (b[0] - mx, b[1] - my, b[2] + mx, b[3] + my)


def _pad(b: Box, padding: float) -> Box:
    return _grow(b, _w(b) * padding, _h(b) * padding)


def _scale(b: Box, k: float) -> Box:
    return _grow(b, _w(b) * (k - 1) / 2, _h(b) * (k - 1) / 2)


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _to_pixels(b: Box, width: int, height: int) -> PixelBox | None:
    """Round outward to whole pixels, at least one wide, clamped to the frame; None when wholly outside it."""
    x0, y0 = math.floor(b[0]), math.floor(b[1])
    x1, y1 = max(math.ceil(b[2]), x0 + 1), max(math.ceil(b[3]), y0 + 1)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)

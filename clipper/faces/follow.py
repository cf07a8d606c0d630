"""Face-following crop for `reframe: face`: a pure planner from per-frame face masks to a smooth crop-window path.

The window is planned offline over each shot, so it can see the future and never trails the subject:

1. target   per frame, the window position that centres the union of the face masks (holds where none is seen);
2. smooth   a centred moving average of the target (zero phase: no lag) takes out detector jitter and nods;
3. tube     the window may sit anywhere within ±dead_zone of the smoothed target, and must contain the union
            of the faces wherever it fits in the window (where it does not, the largest face: one face is cut
            at the edge rather than two; if that lasts, the variant falls back to pad-blur, see plan_crop);
4. taut     the path is the taut string through that tube: flat while the subject stays within the dead zone,
            straight constant-speed pans between, and of all paths in the tube the one with the least motion
            and the lowest top speed; long holds are then re-centred on the subject;
5. limit    a speed limit that is symmetric in time (the mean of the path's tightest upper and lower
            max-speed envelopes): a move the limit slows down starts early and ends late by the same amount,
            instead of trailing the subject;
6. ease     a short centred moving average rounds the corners of each pan (ease in, ease out), then the
            window is put back around the faces and the limit applied again.

Only the window is chosen here: faces are masked in the full frame before it is cropped, so whatever the
window shows of a face is masked. Nothing in this module reads or writes files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from clipper.faces.track import FrameMask, PixelBox

# Holds (flat stretches of the path) at least this long are moved to the subject's median position within the
# dead zone: the taut string alone parks the window at the edge of the dead zone after a move.
RECENTRE_MIN_S = 1.0
# Tolerance, in pixels, for float comparisons inside the taut-string solver.
_EPS = 1e-9


@dataclass(frozen=True)
class FollowSettings:
    """How the window follows the faces; the defaults aim for a calm, editor-like reframe."""

    # Top speed of the window, in fractions of the source's size along the axis of motion per second. 0.15 of a
    # 1920 px source is 288 px/s (9.6 px per frame at 30 fps): a 9:16 window (608 px) crosses its own width in
    # about 2 s, a reframe of half a window takes about a second, and the slowest case (edge to edge) under 5 s.
    # Faster reads as a whip pan on a phone (the 608 px window is blown up 1.8x); slower loses people who move.
    max_speed: float = 0.15
    # Width of the centred moving average on the target, seconds. Half a second takes out detector jitter and the
    # 2-5 Hz nods of speech but keeps a lean or a turn, and being centred it adds no lag.
    smoothing_s: float = 0.5
    # Half-width of the dead zone, as a fraction of the window's size along the axis: the subject may drift this far
    # from the window's centre before the window moves. 0.08 of a 608 px window is ±49 px: more than a talking
    # head sways, while a padded 1080p face mask (~340 px) still keeps ~85 px from the window's edge.
    dead_zone: float = 0.08
    # Width of the moving average that eases pans in and out, seconds. 0.5 s is a gentle keyframe ease; it rounds
    # each corner by at most max_speed * ease_s / 8 (~14 px at the defaults).
    ease_s: float = 0.5
    # The faces' union has to be wider (or taller) than the window for at least this long, within one shot, before
    # the variant falls back to pad-blur. Half a second: a face flashing past the edge, or two people meeting in
    # a shot for a moment, does not cost the whole clip its reframe; a two-shot held longer does.
    fallback_s: float = 0.5
    # Where the faces' centre sits in a window that can move vertically, from its top (0.5 = centred). 0.4 keeps
    # headroom to rule-of-thirds taste: a face centred in a tall window looks low. No effect on 16:9 -> 9:16,
    # where the window is the full height.
    face_y: float = 0.4

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_speed) and self.max_speed > 0):
            raise ValueError(f"max_speed must be a positive number, got {self.max_speed}")
        for name in ("smoothing_s", "ease_s", "fallback_s", "dead_zone"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v}")
        if self.dead_zone >= 0.5:
            raise ValueError(f"dead_zone must be below 0.5 of the window, got {self.dead_zone}")
        if not 0 <= self.face_y <= 1:
            raise ValueError(f"face_y must be within 0..1, got {self.face_y}")


@dataclass(frozen=True)
class CropPath:
    """A crop window per frame: fixed size, top-left corner per frame, all inside the source frame."""

    width: int  # crop size in source pixels: even, of the output aspect to a pixel, as large as the source allows
    height: int
    x: tuple[int, ...]  # top-left corner per frame
    y: tuple[int, ...]
    fallback: bool  # True: faces too far apart to fit for a sustained stretch; the caller uses pad-blur instead
    reason: str
    src_width: int
    src_height: int
    # Stretches (first, last frame, inclusive) where the speed limit holds the window off the path that would keep
    # the faces inside it: the only frames where a face that fits the window may be cut by its edge.
    catch_up: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        # Checked here so that no consumer can be handed a window outside the frame (a crop that fails, or reads
        # past the array) whatever produced the path.
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} positions, y {len(self.y)}")
        if not (0 < self.width <= self.src_width and 0 < self.height <= self.src_height):
            raise ValueError(f"crop {self.width}x{self.height} does not fit {self.src_width}x{self.src_height}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"crop size must be even, got {self.width}x{self.height}")
        for name, pos, room in (
            ("x", self.x, self.src_width - self.width),
            ("y", self.y, self.src_height - self.height),
        ):
            if pos and not (min(pos) >= 0 and max(pos) <= room):
                raise ValueError(f"{name} positions leave the frame (allowed 0..{room})")

    def __len__(self) -> int:
        return len(self.x)

    def window(self, n: int) -> PixelBox:
        """The crop window (x, y, w, h) of frame n."""
        return (self.x[n], self.y[n], self.width, self.height)


def crop_size(src_w: int, src_h: int, out_aspect: Fraction) -> tuple[int, int]:
    """Largest even-sized window of aspect out_aspect (w/h, to a pixel) that fits in a src_w x src_h frame."""
    aspect = Fraction(out_aspect)
    if aspect <= 0:
        raise ValueError(f"output aspect must be positive, got {out_aspect}")
    if src_w < 2 or src_h < 2:
        raise ValueError(f"source frame too small to crop: {src_w}x{src_h}")
    h = src_h - src_h % 2
    w = 2 * round(h * aspect / 2)
    if w > src_w:
        w = src_w - src_w % 2
        h = min(2 * round(w / aspect / 2), src_h - src_h % 2)
    if w < 2 or h < 2:
        raise ValueError(f"a {out_aspect} window of a {src_w}x{src_h} frame is less than 2 px across")
    return w, h


def plan_crop(
    masks_per_frame: Sequence[FrameMask | Sequence[PixelBox]],
    src_w: int,
    src_h: int,
    out_aspect: Fraction,
    fps: Fraction,
    settings: FollowSettings | None = None,
    cuts: Sequence[int] | None = None,
) -> CropPath:
    """Plan the crop window for every frame: following the masked faces, smooth, speed-limited, jumping only at cuts.

    masks_per_frame holds, per frame, a FrameMask from clipper.faces.track or just its boxes (x, y, w, h) in source
    pixels; a full_frame mask says nothing about where the faces are and counts as a frame without faces.
    cuts are the frames where a new shot starts: nothing is smoothed across them, and the window may jump there.

    Fallback rule: if, within one shot, the union of two or more face boxes is wider (or taller) than the window in
    frames spanning at least settings.fallback_s (frames without faces in between neither break nor extend the span, a
    frame where the faces fit or a cut ends it), the result has fallback=True and the caller renders this variant
    with pad-blur, keeping every face in the picture rather than cutting one out. The path is still returned.
    """
    s = settings or FollowSettings()
    n = len(masks_per_frame)
    if n == 0:
        raise ValueError("no frames to plan a crop for")
    fps = Fraction(fps)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    w, h = crop_size(src_w, src_h, out_aspect)
    starts = _segments(cuts, n)
    boxes = [_frame_boxes(m, src_w, src_h, i) for i, m in enumerate(masks_per_frame)]

    has = np.array([bool(b) for b in boxes])
    ext = np.zeros((n, 4))  # union x0, y0, x1, y1
    big = np.zeros((n, 4))  # the largest face: x0, y0, x1, y1
    wc = np.zeros((n, 2))  # area-weighted centre x, y
    for i, bs in enumerate(boxes):
        if bs:
            a = np.array(bs, dtype=float)
            ext[i] = (a[:, 0].min(), a[:, 1].min(), (a[:, 0] + a[:, 2]).max(), (a[:, 1] + a[:, 3]).max())
            area = a[:, 2] * a[:, 3]
            k = int(np.argmax(area))  # ties: the first listed, so the result is reproducible
            big[i] = (a[k, 0], a[k, 1], a[k, 0] + a[k, 2], a[k, 1] + a[k, 3])
            wc[i] = ((a[:, 0] + a[:, 2] / 2) @ area / area.sum(), (a[:, 1] + a[:, 3] / 2) @ area / area.sum())

    min_run = max(1, math.ceil(s.fallback_s * fps))
    fallback = ""
    # Only faces that do not fit together: one face wider than the window (a close-up) is framed on its centre,
    # cut at the window's edges like any close-up reframed; pad-blur would only shrink it.
    several = np.array([len(b) > 1 for b in boxes])
    for axis, size in ((0, w), (1, h)):
        too_big = several & (ext[:, axis + 2] - ext[:, axis] > size)
        run = _longest_run(too_big, has, starts, n)
        if run is not None and run[1] - run[0] + 1 >= min_run and not fallback:
            span = int(max(ext[i, axis + 2] - ext[i, axis] for i in range(run[0], run[1] + 1) if too_big[i]))
            dim = "wide" if axis == 0 else "tall"
            fallback = (
                f"faces span up to {span} px, the {w}x{h} window is {size} px {dim}, for "
                f"{float((run[1] - run[0] + 1) / fps):.2f} s from frame {run[0]} (>= {s.fallback_s} s): "
                f"pad-blur keeps every face in the picture"
            )

    xs, limited_x = _plan_axis(ext[:, 0::2], big[:, 0::2], wc[:, 0], has, src_w, w, 0.5, fps, s, starts)
    ys, limited_y = _plan_axis(ext[:, 1::2], big[:, 1::2], wc[:, 1], has, src_h, h, s.face_y, fps, s, starts)
    catch_up = _runs(limited_x | limited_y)
    if fallback:
        reason = fallback
    elif not has.any():
        reason = "no faces: centred window"
    elif w == src_w and h == src_h:
        reason = "the window is the whole frame"
    else:
        seen = int(has.sum())
        reason = f"following faces seen in {seen} of {n} frames"
        if catch_up:
            reason += f"; speed-limited catch-up in {sum(b - a + 1 for a, b in catch_up)} frames"
    return CropPath(
        width=w,
        height=h,
        x=tuple(int(v) for v in xs),
        y=tuple(int(v) for v in ys),
        fallback=bool(fallback),
        reason=reason,
        src_width=src_w,
        src_height=src_h,
        catch_up=catch_up,
    )


def _segments(cuts: Sequence[int] | None, n: int) -> list[int]:
    """Start frames of the shots, 0 first; cuts at 0 or n are no-ops, anything else outside 0..n is an error."""
    starts = {0}
    for c in cuts or ():
        if isinstance(c, bool) or int(c) != c:
            raise ValueError(f"cut {c!r} is not a frame number")
        if not 0 <= c <= n:
            raise ValueError(f"cut at frame {c} is outside the {n} frames")
        if c < n:
            starts.add(int(c))
    return sorted(starts)


def _frame_boxes(m: FrameMask | Sequence[PixelBox], src_w: int, src_h: int, i: int) -> list[PixelBox]:
    """The frame's face boxes clipped to the frame; none for a whole-frame mask (it carries no position)."""
    if isinstance(m, FrameMask):
        if m.full_frame:
            return []
        m = m.boxes
    out: list[PixelBox] = []
    for box in m:
        if len(box) != 4 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in box):
            raise ValueError(f"frame {i}: a box must be 4 integers (x, y, w, h), got {box!r}")
        x, y, bw, bh = (int(v) for v in box)
        if bw <= 0 or bh <= 0:
            raise ValueError(f"frame {i}: box {box!r} has no area")
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, src_w), min(y + bh, src_h)
        if x1 > x0 and y1 > y0:  # wholly outside the frame: nothing there to keep in it
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def _longest_run(bad: np.ndarray, has: np.ndarray, starts: list[int], n: int) -> tuple[int, int] | None:
    """Longest (first, last) span of bad frames within one shot, not interrupted by a good frame with faces."""
    best: tuple[int, int] | None = None
    for a, b in zip(starts, [*starts[1:], n], strict=True):
        first = last = -1
        for i in range(a, b):
            if bad[i]:
                first = i if first < 0 else first
                last = i
                if best is None or last - first > best[1] - best[0]:
                    best = (first, last)
            elif has[i]:
                first = last = -1
    return best


def _runs(flags: np.ndarray) -> tuple[tuple[int, int], ...]:
    """(first, last) of each stretch of True."""
    idx = np.flatnonzero(flags)
    if not idx.size:
        return ()
    breaks = np.flatnonzero(np.diff(idx) > 1)
    firsts = np.concatenate(([idx[0]], idx[breaks + 1]))
    lasts = np.concatenate((idx[breaks], [idx[-1]]))
    return tuple((int(a), int(b)) for a, b in zip(firsts, lasts, strict=True))


# ------------------------------------------------------------------------------------------- one axis


def _plan_axis(
    union: np.ndarray,
    largest: np.ndarray,
    centre: np.ndarray,
    has: np.ndarray,
    size: int,
    win: int,
    anchor: float,
    fps: Fraction,
    s: FollowSettings,
    starts: list[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Window start per frame along one axis (ints), and which frames the speed limit held off the faces.

    union and largest are the (start, end) extents of the faces' union and of the largest face, per frame.
    """
    n = len(has)
    room = size - win
    out = np.full(n, room // 2, dtype=np.int64)
    limited = np.zeros(n, dtype=bool)
    if room == 0:
        return out, limited
    v = s.max_speed * size / float(fps)  # px per frame
    k_smooth = _odd(s.smoothing_s * float(fps))
    k_ease = _odd(s.ease_s * float(fps))
    k_settle = max(2, round(RECENTRE_MIN_S * float(fps)))
    dz = s.dead_zone * win
    for a, b in zip(starts, [*starts[1:], n], strict=True):
        seen = has[a:b]
        if not seen.any():
            continue  # no face in the whole shot: the centred window
        lo_u, hi_u = union[a:b, 0], union[a:b, 1]
        fits = seen & (hi_u - lo_u <= win)
        # Hard bounds: the window contains the union wherever it fits, else the largest face whole if that fits
        # (cut one face at the edge rather than both).
        keep = np.where(fits[:, None], union[a:b], largest[a:b])
        kept = seen & (keep[:, 1] - keep[:, 0] <= win)
        c_lo = np.where(kept, np.clip(keep[:, 1] - win, 0, room), 0.0)
        c_hi = np.where(kept, np.clip(keep[:, 0], 0, room), float(room))
        # Target: the window centred on the faces' union; when they do not fit, on their area-weighted centre as
        # far as the largest face stays whole. Frames without faces hold the last target (the first one before
        # any is seen).
        c = np.where(fits, (lo_u + hi_u) / 2, centre[a:b])
        t = np.clip(c - anchor * win, c_lo, c_hi)
        idx = np.where(seen, np.arange(b - a), -1)
        idx = np.maximum.accumulate(idx)
        idx[idx < 0] = np.flatnonzero(seen)[0]
        ts = _moving_average(t[idx], k_smooth)
        # The soft tube is the dead zone around the smoothed target; the hard bounds win where they clash.
        lo, hi = np.maximum(ts - dz, c_lo), np.minimum(ts + dz, c_hi)
        clash = lo > hi  # the smoothed target is too far from where the faces are now: they win
        lo[clash], hi[clash] = c_lo[clash], c_hi[clash]
        p = _taut_string(lo, hi, float(np.median(ts)))
        p = _recentre_holds(p, lo, hi, ts, k_settle)
        q = _limit_speed(p, v)
        slow = np.abs(q - p) > 0.5
        q = _moving_average(q, k_ease)
        r = np.clip(np.rint(_limit_speed(np.clip(q, c_lo, c_hi), v)), 0, room)
        # Every frame where the window does not hold what it should is a catch-up frame, by definition; they can
        # only arise where the speed limit acts (the tube, and the clip above, contain them otherwise).
        limited[a:b] = slow | (r < c_lo) | (r > c_hi)
        out[a:b] = r.astype(np.int64)
    return out, limited


def _odd(frames: float) -> int:
    """Odd window length (frames) nearest to the given duration, at least 1."""
    k = max(1, round(frames))
    return k if k % 2 else k + 1


def _moving_average(p: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average over k (odd) frames, the ends padded with the edge values: zero phase, no lag."""
    if k <= 1 or len(p) < 2:
        return p.astype(float)
    h = k // 2
    c = np.cumsum(np.concatenate(([0.0], np.pad(p.astype(float), h, mode="edge"))))
    return (c[k:] - c[:-k]) / k


def _limit_speed(p: np.ndarray, v: float) -> np.ndarray:
    """Closest path (in max deviation) to p moving at most v per frame: the mean of its tightest v-envelopes.

    Symmetric in time, so a move too fast for the limit is spread evenly before and after it, never trailing.
    """
    i = np.arange(len(p)) * v
    up = np.maximum(np.maximum.accumulate(p + i) - i, (np.maximum.accumulate((p - i)[::-1]) + i[::-1])[::-1])
    down = np.minimum(np.minimum.accumulate(p - i) + i, (np.minimum.accumulate((p + i)[::-1]) - i[::-1])[::-1])
    return (up + down) / 2


def _taut_string(lo: np.ndarray, hi: np.ndarray, level: float) -> np.ndarray:
    """The taut string through lo <= p <= hi with free ends: shortest path, least total and peak motion.

    Where a flat path fits the whole tube, it is at `level` clipped into the tube.
    """
    n = len(lo)
    out = np.empty(n)
    # Free start: flat for as long as one level fits; then it bends at the last frame that pinned that level.
    top, bottom = np.minimum.accumulate(hi), np.maximum.accumulate(lo)
    bad = np.flatnonzero(bottom > top + _EPS)
    if not bad.size:
        out[:] = min(max(level, bottom[-1]), top[-1])
        return out
    k = bad[0]
    if lo[k] > top[k - 1] + _EPS:  # the tube rises: flat under its lowest ceiling so far
        y = top[k - 1]
        j = int(np.flatnonzero(hi[:k] <= y + _EPS)[-1])
    else:  # the tube falls: flat on its highest floor so far
        y = bottom[k - 1]
        j = int(np.flatnonzero(lo[:k] >= y - _EPS)[-1])
    out[: j + 1] = y
    i0, y0 = j, y
    while i0 < n - 1:
        d = np.arange(1, n - i0, dtype=float)
        up = (hi[i0 + 1 :] - y0) / d
        down = (lo[i0 + 1 :] - y0) / d
        smax, smin = np.minimum.accumulate(up), np.maximum.accumulate(down)
        bad = np.flatnonzero(smin > smax + _EPS)
        if bad.size:
            k = int(bad[0])  # >= 1: a single frame's own bounds never clash
            if down[k] > smax[k - 1] + _EPS:  # must climb steeper than a ceiling allows: bend under it
                slope, j = smax[k - 1], int(np.flatnonzero(up[:k] <= smax[k - 1] + _EPS)[-1])
            else:  # must fall steeper than a floor allows: bend over it
                slope, j = smin[k - 1], int(np.flatnonzero(down[:k] >= smin[k - 1] - _EPS)[-1])
        else:
            # Free end: flat if it can be; else the gentlest slope to the last frame that forbids flat.
            if smin[-1] <= 0 <= smax[-1]:
                out[i0 + 1 :] = y0
                break
            if smin[-1] > 0:
                slope, j = smin[-1], int(np.flatnonzero(down >= smin[-1] - _EPS)[-1])
            else:
                slope, j = smax[-1], int(np.flatnonzero(up <= smax[-1] + _EPS)[-1])
        out[i0 + 1 : i0 + j + 2] = y0 + slope * d[: j + 1]
        i0, y0 = i0 + j + 1, float(out[i0 + j + 1])
    return np.clip(out, lo, hi)


def _recentre_holds(p: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: np.ndarray, k_settle: int) -> np.ndarray:
    """Move each hold of at least k_settle frames to the target's median within the tube, and re-pull the string."""
    flat = np.abs(np.diff(p)) < 1e-6
    lo2, hi2 = lo.copy(), hi.copy()
    changed = False
    for a, b in _runs(flat):
        first, last = a, b + 1  # diff index a..b flat: frames a..b+1 at one level
        if last - first + 1 < k_settle:
            continue
        level = float(np.median(target[first : last + 1]))
        level = min(max(level, float(lo[first : last + 1].max())), float(hi[first : last + 1].min()))
        if abs(level - p[first]) > 0.5:
            lo2[first : last + 1] = hi2[first : last + 1] = level
            changed = True
    if not changed:
        return p
    return _taut_string(lo2, hi2, float(np.median(target)))

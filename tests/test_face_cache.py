"""The face-detection cache: exact round trip, keys that change with every input, damage treated as a miss."""

from __future__ import annotations

import numpy as np

from clipper.faces.cache import DetectionCache, track_key
from clipper.faces.track import Detection

KEY_ARGS = {"source_sha256": "ab" * 32, "in_frame": 10, "out_frame": 80, "fps": "25", "detector_id": "cf-t0.25"}


def test_round_trip_keeps_every_box_in_its_frame(tmp_path):
    cache = DetectionCache(tmp_path)
    dets = [[Detection(1.5, 2.25, 40.0, 50.0, 0.9)], [], [Detection(0, 0, 5, 5, 0.3), Detection(9, 9, 19, 19, 0.8)], []]
    key = track_key(**KEY_ARGS)
    cache.save(key, dets, [10.0, 20.5, 0.0, 255.0], flashed=(1, 3))
    loaded = cache.load(key)
    assert loaded is not None and loaded.detections == dets and loaded.luma == [10.0, 20.5, 0.0, 255.0]
    assert loaded.flashed == (1, 3)
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.npz"]  # no temporary file left


def test_key_changes_with_source_segment_and_detector():
    base = track_key(**KEY_ARGS)
    for field, value in (
        ("source_sha256", "cd" * 32),
        ("in_frame", 11),
        ("out_frame", 81),
        ("fps", "30000/1001"),
        ("detector_id", "cf-t0.3"),
    ):
        assert track_key(**{**KEY_ARGS, field: value}) != base, field


def test_missing_or_damaged_entry_is_a_miss_and_is_removed(tmp_path):
    cache = DetectionCache(tmp_path)
    assert cache.load("0" * 64) is None
    damaged = tmp_path / f"{'1' * 64}.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    assert cache.load("1" * 64) is None
    assert not damaged.exists()


def test_inconsistent_entry_is_a_miss(tmp_path):
    # An entry whose boxes point past its frames (a bug or tampering) must not be half-used.
    cache = DetectionCache(tmp_path)
    bad = tmp_path / f"{'2' * 64}.npz"
    with bad.open("wb") as f:
        np.savez(f, frames=2, frame_index=np.array([5]), boxes=np.zeros((1, 5)), luma=np.zeros(2))
    assert cache.load("2" * 64) is None
    assert not bad.exists()


def test_a_render_sweeps_old_temporary_files_from_the_cache_and_leaves_fresh_ones(
    tmp_path, write_manifest, render_manifest, monkeypatch
):
    # A worker killed while writing a cache entry leaves its temporary file; the cache may be shared with renders
    # running elsewhere, so only files older than any write can take are removed.
    import os
    import time

    from media import tone_video

    from clipper.analyze import STALE_CACHE_PARTIAL_S

    cache = tmp_path / "cache"
    monkeypatch.setenv("CLIPPER_CACHE_DIR", str(cache))
    old_time = time.time() - STALE_CACHE_PARTIAL_S - 60
    planted = {}
    for sub, name in (("faces", ".partial-x1.npz"), ("sound", ".k.wav.123.partial"), ("loudness", ".k.json.9.partial")):
        (cache / sub).mkdir(parents=True)
        stale, fresh = cache / sub / name, cache / sub / f"{name}.fresh.partial"
        stale.write_bytes(b"x")
        fresh.write_bytes(b"x")
        os.utime(stale, (old_time, old_time))
        planted[stale] = fresh
    keep = cache / "faces" / "entry.npz"  # a real entry is never swept, however old
    keep.write_bytes(b"x")
    os.utime(keep, (old_time, old_time))
    src = tone_video(tmp_path / "src.mp4", seconds=1.0, size=(320, 180))
    render_manifest(write_manifest({"cam": str(src)}, [{"source": "cam", "in": 0, "out": 1}]))
    for stale, fresh in planted.items():
        assert not stale.exists() and fresh.exists()
    assert keep.exists()

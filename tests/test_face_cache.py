"""The face-detection cache: exact round trip, keys that change with every input, damage treated as a miss."""

from __future__ import annotations

from clipper.faces.cache import DetectionCache, track_key
from clipper.faces.track import Detection

KEY_ARGS = {"source_sha256": "ab" * 32, "in_frame": 10, "out_frame": 80, "fps": "25", "detector_id": "cf-t0.25"}


def test_round_trip_keeps_every_box_in_its_frame(tmp_path):
    cache = DetectionCache(tmp_path)
    dets = [[Detection(1.5, 2.25, 40.0, 50.0, 0.9)], [], [Detection(0, 0, 5, 5, 0.3), Detection(9, 9, 19, 19, 0.8)], []]
    key = track_key(**KEY_ARGS)
    cache.save(key, dets)
    assert cache.load(key) == dets
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

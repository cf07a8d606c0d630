"""Sources' content hashes: read once, remembered by the file's identity across runs."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

import clipper.media as media
from clipper.errors import MediaError
from clipper.media import content_hash


def _settled(path, seconds_ago: float = 60) -> None:
    """Give a file an mtime in the past (a file just written is not remembered: its mtime tick may not be over)."""
    t = path.stat().st_mtime_ns - int(seconds_ago * 1e9)
    os.utime(path, ns=(t, t))


def test_a_hash_is_remembered_across_runs_until_the_file_changes(tmp_path, monkeypatch):
    # A two-hour interview is tens of GB: re-read at every preview and batch start it cost a second per GB.
    monkeypatch.setattr(media, "MEMO_MIN_BYTES", 1)
    src = tmp_path / "karimi-interview.mp4"
    src.write_bytes(b"a" * 100_000)
    _settled(src)
    memo = tmp_path / "cache" / "hashes"
    expected = hashlib.sha256(src.read_bytes()).hexdigest()
    assert content_hash(src, memo=memo) == expected
    [record] = memo.iterdir()
    assert b"karimi" not in record.read_bytes() and str(tmp_path).encode() not in record.read_bytes()

    reads = []
    real = media.file_sha256
    monkeypatch.setattr(media, "file_sha256", lambda p, **kw: reads.append(p) or real(p, **kw))
    monkeypatch.setattr(media, "_HASHES", {})  # a new process
    assert content_hash(src, memo=memo) == expected and reads == []

    # Rewritten in place with the same size, its mtime put back (cp -p, rsync -a --inplace, touch -r): the ctime
    # still tells (review: the memo returned the old hash, and the face cache the old pictures' analysis).
    old = src.stat()
    time.sleep(0.01)
    src.write_bytes(b"b" * 100_000)
    os.utime(src, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert src.stat().st_mtime_ns == old.st_mtime_ns and src.stat().st_size == old.st_size
    monkeypatch.setattr(media, "_HASHES", {})
    assert content_hash(src, memo=memo) == hashlib.sha256(b"b" * 100_000).hexdigest() and reads == [src]


def test_small_and_just_written_files_are_not_remembered(tmp_path, monkeypatch):
    memo = tmp_path / "hashes"
    small = tmp_path / "s.en.vtt"
    small.write_bytes(b"WEBVTT\n")
    _settled(small)
    content_hash(small, memo=memo)  # milliseconds to hash again
    monkeypatch.setattr(media, "MEMO_MIN_BYTES", 1)
    fresh = tmp_path / "arriving.mp4"
    fresh.write_bytes(b"x" * 1000)  # its mtime tick may not be over: a write in it would keep the stamp
    content_hash(fresh, memo=memo)
    assert not memo.exists() or list(memo.iterdir()) == []


def test_a_memo_that_does_not_match_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "MEMO_MIN_BYTES", 1)
    src = tmp_path / "a.mp4"
    src.write_bytes(b"a" * 1000)
    _settled(src)
    memo = tmp_path / "hashes"
    content_hash(src, memo=memo)
    [record] = memo.iterdir()
    record.write_text('{"stamp": [0, 0, 0, 0], "sha256": "' + "0" * 64 + '"}')
    monkeypatch.setattr(media, "_HASHES", {})
    assert content_hash(src, memo=memo) == hashlib.sha256(b"a" * 1000).hexdigest()
    record.write_text("not json")
    monkeypatch.setattr(media, "_HASHES", {})
    assert content_hash(src, memo=memo) == hashlib.sha256(b"a" * 1000).hexdigest()


def test_a_file_written_while_it_is_hashed_is_refused(tmp_path, monkeypatch):
    src = tmp_path / "arriving.mp4"
    src.write_bytes(b"a" * 1000)

    def read_while_growing(path, **kw):
        with path.open("ab") as f:
            f.write(b"more")
        return "0" * 64

    monkeypatch.setattr(media, "file_sha256", read_while_growing)
    with pytest.raises(MediaError, match="changed while it was being read"):
        content_hash(src)

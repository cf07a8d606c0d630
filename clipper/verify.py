"""Checks of a rendered file, made on the file itself rather than on our intentions."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from clipper.errors import MediaError, VerifyError
from clipper.ffmpeg import run_ffmpeg
from clipper.graph import LOUDNESS_METER_FILTER, parse_loudness
from clipper.media import probe
from clipper.presets import AUDIO_CHANNELS, AUDIO_RATE, LOUDNESS_LUFS, TRUE_PEAK_DBTP

# Tags an MP4 carries whatever we do; they identify nothing.
ALLOWED_FORMAT_TAGS = {"major_brand", "minor_version", "compatible_brands"}
ALLOWED_STREAM_TAGS = {
    "language": {"und"},
    "handler_name": {"VideoHandler", "SoundHandler"},
    "vendor_id": {"[0][0][0][0]"},
}
LOUDNESS_TOLERANCE_LU = 1.0
# The limiter leaves a margin for AAC's ripple, so the ceiling is checked as it stands.
TRUE_PEAK_TOLERANCE_DB = 0.0


@dataclass
class Expectation:
    """What a rendered variant must be."""

    width: int
    height: int
    fps: Fraction
    frames: int
    max_bytes: int | None = None
    loudness: bool = True  # False when the clip is silent
    # Byte strings that must not occur anywhere in the file (e.g. the sources' file names).
    forbidden: tuple[bytes, ...] = ()


# Tool fingerprints: x264's SEI spells out its version and every setting; Lavf/Lavc name ffmpeg's build.
FINGERPRINTS = (b"x264 - core", b"Lavf", b"Lavc")


@dataclass
class CheckReport:
    """The result of every check on one file."""

    checks: dict[str, object] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, measured: object, expected: object) -> None:
        """Record one check."""
        self.checks[name] = {"ok": ok, "measured": measured, "expected": expected}
        if not ok:
            self.failures.append(f"{name}: measured {measured}, expected {expected}")


def mp4_top_level_boxes(path: Path) -> list[str]:
    """Return the MP4 file's top-level box types in order (to see whether the index is at the front)."""
    boxes = []
    with path.open("rb") as f:
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            size, kind = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
                f.seek(size - 16, 1)
            elif size == 0:
                boxes.append(kind.decode("latin-1"))
                break
            else:
                f.seek(size - 8, 1)
            boxes.append(kind.decode("latin-1"))
    return boxes


def all_tags(path: Path) -> dict[str, dict[str, str]]:
    """Return every metadata tag of the container and of each stream."""
    import av

    with av.open(str(path)) as c:
        tags = {"format": dict(c.metadata)}
        for s in c.streams:
            tags[f"stream{s.index}:{s.type}"] = dict(s.metadata)
    return tags


def foreign_tags(path: Path) -> list[str]:
    """Return every tag that could carry information about the source, the tools or the people."""
    bad = []
    for where, tags in all_tags(path).items():
        for k, v in tags.items():
            if where == "format" and k in ALLOWED_FORMAT_TAGS:
                continue
            if where != "format" and k in ALLOWED_STREAM_TAGS and v in ALLOWED_STREAM_TAGS[k]:
                continue
            bad.append(f"{where} {k}={v!r}")
    return bad


# Compressed media is random-looking: a 4-byte string turns up by chance about once in 4 GB, in 0.3 % of
# 13 MB files (a 1080p render once failed on "Lavc" found inside its video data). Needles shorter than this
# are therefore looked for everywhere but in the media payload (mdat), where they carry no meaning; longer
# ones (x264's "x264 - core" SEI, which lives in the payload, and file names) everywhere.
SHORT_NEEDLE = 6


def find_bytes(path: Path, needles: tuple[bytes, ...], *, chunk: int = 8 << 20) -> list[bytes]:
    """Return which of `needles` occur in the file: long ones anywhere, short ones outside the media payload."""
    short = tuple(n for n in needles if len(n) < SHORT_NEEDLE)
    long_ = tuple(n for n in needles if len(n) >= SHORT_NEEDLE)
    found = set(_find_anywhere(path, long_, chunk=chunk)) | set(_find_outside_mdat(path, short))
    return [n for n in needles if n in found]


def _find_outside_mdat(path: Path, needles: tuple[bytes, ...]) -> list[bytes]:
    """Which needles occur in the file's top-level boxes other than mdat (headers, index, metadata)."""
    if not needles:
        return []
    found: set[bytes] = set()
    with path.open("rb") as f:
        end = path.stat().st_size
        while f.tell() < end:
            start = f.tell()
            head = f.read(8)
            if len(head) < 8:
                found.update(n for n in needles if n in head)
                break
            size, kind = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:
                size = end - start
            if size < 8:  # not a box structure we can walk: search the rest as it is
                rest = head + f.read()
                found.update(n for n in needles if n in rest)
                break
            if kind == b"mdat":
                f.seek(start + size)
                continue
            f.seek(start)
            body = f.read(size)
            found.update(n for n in needles if n in body)
    return [n for n in needles if n in found]


def _find_anywhere(path: Path, needles: tuple[bytes, ...], *, chunk: int = 8 << 20) -> list[bytes]:
    """Which needles occur anywhere in the file (read once, in overlapping chunks)."""
    if not needles:
        return []
    overlap = max(len(n) for n in needles)
    found: set[bytes] = set()
    tail = b""
    with path.open("rb") as f:
        while block := f.read(chunk):
            window = tail + block
            found.update(n for n in needles if n in window)
            tail = window[-overlap:]
    return [n for n in needles if n in found]


def measure_loudness(path: Path) -> tuple[float, float]:
    """Return (integrated loudness LUFS, true peak dBTP) of a file's audio, by ffmpeg's ebur128."""
    err = run_ffmpeg(
        ["-i", str(path), "-vn", "-af", LOUDNESS_METER_FILTER, "-f", "null", "-"], what="loudness measurement"
    )
    measured = parse_loudness(err)
    return measured.input_i, measured.input_tp


def verify_output(path: Path, exp: Expectation) -> CheckReport:
    """Check a rendered MP4 against what its variant must be."""
    import av

    r = CheckReport()
    try:
        facts = probe(path)
    except MediaError as e:
        # An output ffmpeg wrote without a picture (or unreadable): a failed render, not a bad source.
        raise VerifyError(
            f"the render produced no playable video ({e.message})",
            where=path.name.removeprefix(".").removesuffix(".partial"),
            hint="the cut may hold a single frame or a stream ffmpeg could not read; run with --debug and see the log",
        ) from None
    r.check("video_codec", facts.video_codec == "h264", facts.video_codec, "h264")
    r.check(
        "size",
        (facts.display_width, facts.display_height) == (exp.width, exp.height),
        f"{facts.display_width}x{facts.display_height}",
        f"{exp.width}x{exp.height}",
    )
    r.check("pixel_format", facts.pix_fmt == "yuv420p", facts.pix_fmt, "yuv420p")
    r.check("frame_rate", facts.fps == exp.fps, str(facts.fps), str(exp.fps))
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        profile = v.profile
        frames = v.frames
        a = c.streams.audio[0] if c.streams.audio else None
        audio = (a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels, a.profile) if a else None
    r.check("profile", profile == "High", profile, "High")
    # AVColorPrimaries/Transfer/Space 1 is BT.709 in all three; 1 of color_range is limited (TV).
    *colour, colour_range = facts.colour_tags
    r.check(
        "colour",
        tuple(colour) == (1, 1, 1) and colour_range == 1,
        f"{tuple(colour)} range {colour_range}",
        "BT.709 (1, 1, 1), limited",
    )
    r.check("frames", frames == exp.frames, frames, exp.frames)
    expected_s = float(exp.frames / exp.fps)
    r.check(
        "duration_s",
        abs(facts.duration_s - expected_s) <= float(1 / exp.fps) + 1e-6,
        round(facts.duration_s, 4),
        f"{expected_s:.4f} ± 1 frame",
    )
    r.check(
        "audio",
        audio is not None and audio[:3] == ("aac", AUDIO_RATE, AUDIO_CHANNELS) and audio[3] == "LC",
        audio,
        ("aac", AUDIO_RATE, AUDIO_CHANNELS, "LC"),
    )
    boxes = mp4_top_level_boxes(path)
    front = "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")
    r.check("index_at_front", front, boxes, "moov before mdat")
    bad = foreign_tags(path)
    r.check("no_foreign_metadata", not bad, bad, [])
    found = find_bytes(path, FINGERPRINTS + exp.forbidden)
    r.check("no_identifying_bytes", not found, [f.decode("utf-8", "replace") for f in found], [])
    if exp.max_bytes is not None:
        size = path.stat().st_size
        r.check("file_size", size <= exp.max_bytes, size, f"≤ {exp.max_bytes}")
    if exp.loudness:
        i, tp = measure_loudness(path)
        r.check(
            "loudness_lufs",
            abs(i - LOUDNESS_LUFS) <= LOUDNESS_TOLERANCE_LU,
            i,
            f"{LOUDNESS_LUFS} ± {LOUDNESS_TOLERANCE_LU}",
        )
        r.check("true_peak_dbtp", tp <= TRUE_PEAK_DBTP + TRUE_PEAK_TOLERANCE_DB, tp, f"≤ {TRUE_PEAK_DBTP}")
    return r

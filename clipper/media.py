"""What clipper knows about a media file, read with PyAV (imageio-ffmpeg ships no ffprobe)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from clipper.errors import MediaError


@dataclass(frozen=True)
class MediaFacts:
    """A source as the renderer will see it: display geometry after rotation, rate, audio."""

    path: Path
    size_bytes: int
    duration_s: float
    width: int  # coded width, before rotation
    height: int
    rotation: int  # degrees clockwise to display upright (0, 90, 180, 270)
    sar: Fraction  # sample (pixel) aspect ratio
    fps: Fraction  # the rate frame numbers and SMPTE timecodes count in
    variable_rate: bool
    video_codec: str
    pix_fmt: str
    frame_count: int | None
    has_audio: bool
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    format_name: str
    tags: dict[str, str]
    # ffmpeg's input seek counts from the container's start, which AAC priming or an edit list can put
    # before the first video frame; cuts are counted from the video's own start.
    container_start_s: float = 0.0
    video_start_s: float = 0.0
    channel_layout: str | None = None  # ffmpeg's name ("stereo", "5.1"); "30 channels" when it has none
    audio_streams: int = 0  # sound tracks in the file; clipper uses the first
    # How the picture is scanned (see `interlace`): "" progressive; "flagged" the decoder marks interlaced frames
    # (each with its own field order); "tff"/"bff" the stream declares every frame interlaced, this field first.
    interlace: str = ""
    # The picture's colour, read as a player would (see `colour`): its YCbCr matrix as ffmpeg's scale names it (""
    # for RGB pictures, which have none), and "pq"/"hlg" for an HDR transfer, "" for SDR.
    matrix: str = "bt709"
    hdr: str = ""
    primaries: str = ""  # zscale's name for an HDR picture's primaries (bt2020 from phones); "" for SDR
    # The tags as written (FFmpeg's enums: primaries, transfer, matrix, range; 2 is "unspecified" in the first three,
    # 0 in the last), for checking an output says what it is.
    colour_tags: tuple[int, int, int, int] = (2, 2, 2, 0)

    @property
    def display_width(self) -> int:
        """Width as shown: rotation applied, pixels made square."""
        w, h = (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)
        sar = self.sar if self.rotation not in (90, 270) else 1 / self.sar
        return _even(round(w * sar)) if sar != 1 else w

    @property
    def display_height(self) -> int:
        """Height as shown: rotation applied."""
        return self.width if self.rotation in (90, 270) else self.height

    def to_json(self) -> dict[str, object]:
        """Return the facts as JSON-ready data."""
        d = asdict(self)
        d["path"] = str(self.path)
        d["sar"] = str(self.sar)
        d["fps"] = str(self.fps)
        d["display_width"] = self.display_width
        d["display_height"] = self.display_height
        return d


def _sniff_container(path: Path) -> str | None:
    """Name the container a file's first bytes claim to be, if any (to tell damaged from not-video)."""
    with path.open("rb") as f:
        head = f.read(16)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "MP4/MOV"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    return None


def _even(n: int) -> int:
    return n + (n % 2)


def probe(path: Path) -> MediaFacts:
    """Read a media file's streams; raise MediaError with a fix when it is not usable video."""
    import av

    path = Path(path)
    if not path.exists():
        raise MediaError("no such file", where=str(path), hint="check the path in the manifest")
    if path.is_dir():
        raise MediaError("is a folder, not a media file", where=str(path))
    if not os.access(path, os.R_OK):
        raise MediaError("cannot be read (permission denied)", where=str(path), hint="check the file's permissions")
    size = path.stat().st_size
    if size == 0:
        raise MediaError("is empty (0 bytes)", where=str(path), hint="copy the file again")
    try:
        container = av.open(str(path), metadata_errors="replace")
    except av.error.InvalidDataError:
        kind = _sniff_container(path)
        if kind:
            raise MediaError(
                f"is a damaged or truncated {kind} file (its header is there, the rest cannot be read)",
                where=str(path),
                hint="the copy is probably unfinished: copy the file again from the original",
            ) from None
        raise MediaError(
            "is not a readable media file (no known container format)",
            where=str(path),
            hint="re-export it as MP4/MOV/MKV, or check it is the file you meant",
        ) from None
    except av.error.FFmpegError as e:
        raise MediaError(
            f"cannot be opened: {e.strerror or e}",
            where=str(path),
            hint="the file may be truncated or damaged; copy it again",
        ) from None
    with container:
        if not container.streams:
            raise MediaError(
                "contains no streams (an empty or unfinished recording)",
                where=str(path),
                hint="copy the file again or re-export it",
            )
        if not container.streams.video:
            raise MediaError(
                "has no video stream",
                where=str(path),
                hint="name a video file; audio-only sources are not supported",
            )
        v = container.streams.video[0]
        cc = v.codec_context
        if container.format.name.endswith("_pipe") or container.format.name == "image2":
            raise MediaError(
                f"is a still image ({container.format.name.removesuffix('_pipe')}), not a video",
                where=str(path),
                hint="name a video file",
            )
        if not cc.width or not cc.height:
            raise MediaError(
                "video stream has no picture size (damaged or truncated file)",
                where=str(path),
                hint="copy the file again or re-export it",
            )
        average = Fraction(v.average_rate or v.guessed_rate or v.base_rate or 0)
        base = Fraction(v.base_rate or 0)
        if average <= 0:
            raise MediaError(
                "video stream has no frame rate", where=str(path), hint="re-export with a fixed frame rate"
            )
        fps, variable = timeline_rate(average, base)
        duration = _duration_s(container, v)
        if duration <= 0:
            raise MediaError("has no duration (no frames)", where=str(path), hint="copy the file again")
        rotation = 0
        try:
            frame = next(container.decode(v))
            rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
        except StopIteration:
            raise MediaError(
                "has no decodable video frames",
                where=str(path),
                hint="the file is truncated or damaged; copy it again",
            ) from None
        except av.error.FFmpegError as e:
            raise MediaError(
                f"first video frame cannot be decoded: {e.strerror or e}",
                where=str(path),
                hint="the file is truncated or damaged; copy it again",
            ) from None
        # PyAV reports counter-clockwise display rotation as negative degrees; normalise to clockwise.
        rotation = (-rotation) % 360 if rotation else 0
        scan = interlace(int(getattr(cc, "field_order", 0) or 0), bool(getattr(frame, "interlaced_frame", False)))
        matrix, hdr, primaries = colour(frame, cc)
        a = container.streams.audio[0] if container.streams.audio else None
        if a is not None and a.codec_context is None:
            raise MediaError(
                "its sound is in a codec this ffmpeg cannot decode",
                where=str(path),
                hint="re-export the file with its sound as AAC or PCM (or without a sound track)",
            )
        if _ends_early(container, v, duration):
            raise MediaError(
                f"ends before the {duration:.1f} s its header declares: nothing can be read in its last second "
                "(a copy cut off before it finished)",
                where=str(path),
                hint="copy the file again from the original and compare the sizes",
            )
        tags = {str(k): str(val) for k, val in (container.metadata or {}).items()}
        return MediaFacts(
            path=path,
            size_bytes=size,
            duration_s=duration,
            width=cc.width,
            height=cc.height,
            rotation=rotation,
            sar=Fraction(v.sample_aspect_ratio or 1) or Fraction(1),
            fps=fps,
            variable_rate=variable,
            video_codec=cc.name,
            pix_fmt=str(cc.pix_fmt),
            frame_count=int(v.frames) or None,
            has_audio=a is not None,
            audio_codec=a.codec_context.name if a else None,
            sample_rate=a.codec_context.sample_rate if a else None,
            channels=a.codec_context.channels if a else None,
            format_name=container.format.name,
            tags=tags,
            container_start_s=(container.start_time or 0) / 1_000_000,
            video_start_s=float(v.start_time * v.time_base) if v.start_time is not None else 0.0,
            channel_layout=a.codec_context.layout.name if a else None,
            audio_streams=len(container.streams.audio),
            interlace=scan,
            matrix=matrix,
            hdr=hdr,
            primaries=primaries,
            colour_tags=tuple(colour_tag(frame, cc, k) for k in COLOUR_TAGS),  # type: ignore[arg-type]
        )


# FFmpeg's AVColorSpace, as the scale filter's in_color_matrix names it (YCgCo and unknown ones are not named).
_MATRIX = {1: "bt709", 4: "fcc", 5: "bt470", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
_HDR_TRANSFER = {16: "pq", 18: "hlg"}  # AVColorTransferCharacteristic: SMPTE ST 2084, ARIB STD-B67
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 12: "smpte432"}  # as zscale names them


COLOUR_TAGS = ("color_primaries", "color_trc", "colorspace", "color_range")


def colour_tag(frame: object, cc: object, name: str) -> int:
    """One of FFmpeg's colour enums (color_primaries, color_trc, colorspace, color_range) of a stream: its first
    frame's, else its codec context's (PyAV has them on frames from 17 only, on codec contexts from 13)."""
    value = getattr(frame, name, None)
    if value is None or (value == 2 and name != "color_range"):  # 2: unspecified, in the other three enums
        value = getattr(cc, name, None)
    return int(value or 0)


def colour(frame: object, cc: object) -> tuple[str, str, str]:
    """(matrix, hdr, primaries) of a picture as a player shows it, from its first frame (else its stream).

    An untagged YCbCr picture is read as players (mpv) read it: BT.709 from 1280 px wide or above 576 lines (HD,
    1280x536 web video included), BT.601 below (SD).
    """

    def tag(name: str) -> int:
        return colour_tag(frame, cc, name)

    pix_fmt = str(getattr(cc, "pix_fmt", "") or "")
    if pix_fmt.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "pal8", "gray", "ya8", "ya16")):
        matrix = ""  # no chroma to convert
    else:
        width, height = int(getattr(cc, "width", 0) or 0), int(getattr(cc, "height", 0) or 0)
        matrix = _MATRIX.get(tag("colorspace"), "bt709" if width >= 1280 or height > 576 else "bt601")
    hdr = _HDR_TRANSFER.get(tag("color_trc"), "")
    primaries = _PRIMARIES.get(tag("color_primaries"), "bt2020") if hdr else ""
    return matrix, hdr, primaries


# FFmpeg's AVFieldOrder: which field is coded first, which shown first. Shown first is what deinterlacing needs.
_FIELD_SHOWN_FIRST = {2: "tff", 3: "bff", 4: "bff", 5: "tff"}  # TT, BB, TB (bottom shown first), BT (top first)


def interlace(field_order: int, first_frame_interlaced: bool) -> str:
    """How a stream is scanned, for deinterlacing: "" progressive, "flagged" (the decoder marks each interlaced
    frame and its field order: H.264, MPEG-2), or the field shown first ("tff"/"bff") of a stream that declares
    every frame interlaced but whose decoder marks none (some DV and ProRes files)."""
    if first_frame_interlaced:
        return "flagged"
    return _FIELD_SHOWN_FIRST.get(field_order, "")


_STANDARD_RATES = [Fraction(n, d) for n, d in ((24000, 1001), (30000, 1001), (60000, 1001), (120000, 1001))] + [
    Fraction(n) for n in (10, 12, 15, 24, 25, 30, 48, 50, 60, 90, 100, 120)
]


def timeline_rate(average: Fraction, base: Fraction) -> tuple[Fraction, bool]:
    """Return (the rate frames are counted in, whether the source is variable-rate).

    A constant-rate file has one answer. A variable-rate file (phones, screen recordings, files with
    dropped frames) is counted at its nominal rate: the container's base rate when that is a standard
    rate not far above the average (a phone's 120 Hz clock is not its frame rate), else the standard
    rate nearest the average.
    """
    avg = _snap_rate(average)
    if not base or _snap_rate(base) == avg:
        return avg, False
    nominal = _snap_rate(base)
    if nominal in _STANDARD_RATES and nominal <= 2 * average:
        return nominal, True
    return min(_STANDARD_RATES, key=lambda r: abs(r - average)), True


def _snap_rate(rate: Fraction) -> Fraction:
    for std in _STANDARD_RATES:
        if abs(rate - std) / std < Fraction(1, 2000):
            return std
    return rate.limit_denominator(1001)


def _ends_early(container: object, v: object, duration: float) -> bool:
    """True when not one packet of the video stream can be read in the last second of the duration the stream
    declares: the header of an MP4/MOV is written first (or moved to the front), so a copy cut off halfway
    probes as whole and failed only at render time. Streams without a duration of their own (MKV, TS: the
    container's may count a longer sound track) and files that cannot seek are not judged."""
    import av

    if v.duration is None or v.time_base is None or duration <= 1.0:  # type: ignore[attr-defined]
        return False
    start = v.start_time or 0  # type: ignore[attr-defined]
    try:
        # any_frame: the packet at that time, not the keyframe before it (one keyframe may open the whole file).
        container.seek(start + int((duration - 1.0) / v.time_base), stream=v, backward=True, any_frame=True)  # type: ignore[attr-defined]
        return not any(packet.size for packet in itertools.islice(container.demux(v), 64))  # type: ignore[attr-defined]
    except (av.error.FFmpegError, OverflowError, ValueError):
        return False
    finally:
        with contextlib.suppress(av.error.FFmpegError):
            container.seek(start, stream=v, backward=True)  # type: ignore[attr-defined]


def _duration_s(container: object, v: object) -> float:
    """Prefer the video stream's own duration; fall back to the container's."""
    if v.duration is not None and v.time_base is not None:  # type: ignore[attr-defined]
        d = float(v.duration * v.time_base)  # type: ignore[attr-defined]
        if d > 0:
            return d
    if container.duration:  # type: ignore[attr-defined]
        return container.duration / 1_000_000  # type: ignore[attr-defined]
    return 0.0


# Files smaller than this are hashed again each run (subtitles, fonts, a logo: milliseconds), not remembered.
MEMO_MIN_BYTES = 16 << 20
# A file modified this recently may be modified again within its filesystem's mtime tick (1-2 s on FAT, SMB and
# some NFS servers) without its stamp changing: its hash is not remembered across runs (git's "racily clean" rule).
MEMO_SETTLED_S = 3.0


def file_stamp(path: Path) -> list[int]:
    """(inode, size, mtime, ctime) of a file, read through an open descriptor (opening makes NFS revalidate its
    cached attributes). ctime cannot be set back (`cp -p`, `rsync -a --inplace` and `touch -r` restore the mtime of
    a rewritten file, never its ctime); the device number is left out: an NFS client numbers it per mount."""
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def content_hash(path: Path, *, chunk: int = 4 << 20, memo: Path | None = None) -> str:
    """Return the sha256 of a file's bytes, remembered by the file's path and `file_stamp`: in memory, and under
    `memo` (a folder in the cache) across runs, so that a long interview (tens of GB) is read once, not at every
    preview, render and batch start (about a second per GB). A file written while it is read is refused."""
    stamp = file_stamp(path)
    resolved = str(path.resolve())
    key = (resolved, *stamp)
    if key in _HASHES:
        return _HASHES[key]
    record = None if memo is None else memo / f"{hashlib.sha256(resolved.encode()).hexdigest()[:40]}.json"
    if record is not None:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            if data.get("stamp") == stamp and re.fullmatch(r"[0-9a-f]{64}", str(data.get("sha256", ""))):
                _HASHES[key] = data["sha256"]
                return _HASHES[key]
        except (OSError, ValueError, AttributeError):
            pass  # absent, unreadable or of another file: hash it
    started = time.time()
    digest = file_sha256(path, chunk=chunk)
    if file_stamp(path) != stamp:
        # Written to while it was read (a copy still arriving): this hash is of no one state of the file.
        raise MediaError("changed while it was being read", where=str(path), hint="let the copy finish, then run again")
    _HASHES[key] = digest
    settled = started - stamp[2] / 1e9 > MEMO_SETTLED_S
    if record is not None and stamp[1] >= MEMO_MIN_BYTES and settled:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next run a re-read
            record.parent.mkdir(parents=True, exist_ok=True)
            tmp = record.with_name(f".{record.name}.{os.getpid()}.{threading.get_ident()}.partial")
            tmp.write_text(json.dumps({"stamp": stamp, "sha256": digest}), encoding="utf-8")
            tmp.replace(record)
    return digest


def file_sha256(path: Path, *, chunk: int = 4 << 20) -> str:
    """Return the sha256 of a file's bytes, read now (no memo: for files written once, like an output)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_HASHES: dict[tuple[str, int, int, int, int], str] = {}


def facts_json(facts: MediaFacts) -> str:
    """Return the facts as pretty JSON for `clipper probe`."""
    return json.dumps(facts.to_json(), indent=2, default=str)

"""Small test media with known content, and readers that measure it back (helpers, not tests).

Numbered videos carry their frame index as a 5x5 grid of black/white cells centred on a mid-grey
picture. The grid is 5 cells wide, a cell is max(16, ~short side/15) px, so it fits in the central
25% of a 4:3 picture and 19% of a 16:9 one: it survives a centred 9:16 crop, letterboxing, pad-blur,
any uniform scaling that keeps the picture centred, and any quarter-turn rotation. Cell layout, row-major:
the four corners are orientation marks (top-left black, the others white); the remaining 21 cells are
the 12-bit index (MSB first) followed by a 9-bit check derived from it, so cards, blanks and
unrelated pictures read as -1.

Run `python tests/media.py` for a self-check.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable, Container, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

if __package__ in (None, ""):  # run as a script: make `clipper` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipper.ffmpeg import ffmpeg_exe  # noqa: E402

FRAME_CODE_BITS = 12
GRID = 5
GREY = 128
CLICK_FREQ = 1000.0
CLICK_SECONDS = 0.100  # long enough to carry real loudness, onset still sharp
CLICK_AMPLITUDE = 0.5
CLICK_EVERY = 25  # frames

_CORNERS = ((0, 0), (0, GRID - 1), (GRID - 1, 0), (GRID - 1, GRID - 1))
_DATA_CELLS = [(r, c) for r in range(GRID) for c in range(GRID) if (r, c) not in _CORNERS]
_CHECK_BITS = len(_DATA_CELLS) - FRAME_CODE_BITS


def ffmpeg_run(args: list[str] | str) -> None:
    """Run ffmpeg quietly (args as a list, or one space-separated string); raise CalledProcessError on failure."""
    if isinstance(args, str):
        args = args.split()
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args], check=True, capture_output=True)


def _check(index: int) -> int:
    """Return the 9-bit check value stored next to a frame index."""
    return ((index * 2654435761 + 0x5BD1E995) >> 11) & ((1 << _CHECK_BITS) - 1)


def code_cells(index: int) -> np.ndarray:
    """Return the 5x5 bool grid (True = white) that encodes `index`."""
    if not 0 <= index < 1 << FRAME_CODE_BITS:
        raise ValueError(f"frame index {index} does not fit in {FRAME_CODE_BITS} bits")
    cells = np.ones((GRID, GRID), dtype=bool)
    cells[0, 0] = False
    word = (index << _CHECK_BITS) | _check(index)
    for k, (r, c) in enumerate(_DATA_CELLS):
        cells[r, c] = bool((word >> (len(_DATA_CELLS) - 1 - k)) & 1)
    return cells


def _decode_cells(cells: np.ndarray) -> int:
    """Return the index stored in an upright 5x5 grid, or -1 if marks or check do not match."""
    if cells[0, 0] or not (cells[0, -1] and cells[-1, 0] and cells[-1, -1]):
        return -1
    word = 0
    for r, c in _DATA_CELLS:
        word = (word << 1) | int(cells[r, c])
    index = word >> _CHECK_BITS
    return index if word & ((1 << _CHECK_BITS) - 1) == _check(index) else -1


def cell_size(width: int, height: int) -> int:
    """Return the code cell size in px for a source picture (a multiple of 8, at least 16)."""
    return max(16, 8 * round(min(width, height) / 15 / 8))


def code_frame(index: int, width: int, height: int) -> np.ndarray:
    """Return a grey uint8 picture with the code of `index` centred on it."""
    img = np.full((height, width), GREY, dtype=np.uint8)
    s = cell_size(width, height)
    x0, y0 = round(width / 2 - GRID * s / 2), round(height / 2 - GRID * s / 2)
    cells = np.where(code_cells(index), 255, 0).astype(np.uint8)
    img[y0 : y0 + GRID * s, x0 : x0 + GRID * s] = np.kron(cells, np.ones((s, s), dtype=np.uint8))
    return img


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int, channels: int) -> None:
    """Write mono float samples (-1..1) as 16-bit PCM, duplicated to `channels`."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.repeat(pcm, channels).tobytes())


def click_track(n_samples: int, onsets: list[int], sample_rate: int) -> np.ndarray:
    """Return silence with a 100 ms 1 kHz sine burst (amplitude 0.5) starting at each onset sample."""
    out = np.zeros(n_samples, dtype=np.float64)
    k = np.arange(round(CLICK_SECONDS * sample_rate))
    burst = CLICK_AMPLITUDE * np.sin(2 * np.pi * CLICK_FREQ * k / sample_rate)
    for start in onsets:
        seg = out[start : start + len(burst)]
        seg[:] = burst[: len(seg)]
    return out


def numbered_video(
    path: Path,
    *,
    frames: int,
    fps: str = "25",
    size: tuple[int, int] = (320, 240),
    audio: bool = True,
    sample_rate: int = 48000,
    rotate: int | None = None,
    vfr: bool = False,
    start_offset_s: float = 0.0,
    channels: int = 2,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write an H.264/AAC video whose frame i shows code i and whose audio clicks at every 25th frame.

    Frame i is at time i/fps; a click starts at sample round(i/fps*sample_rate) for i % 25 == 0.
    rotate: display-matrix rotation (degrees counter-clockwise) added by a `-c copy` remux.
    vfr: every 3rd source frame (i % 3 == 2) is dropped and the others keep their times, so frame
    durations alternate 1/fps, 2/fps and the code still equals round(time*fps).
    start_offset_s: all timestamps shifted by this much (`-output_ts_offset`).
    """
    path = Path(path)
    width, height = size
    rate = Fraction(fps)
    with tempfile.TemporaryDirectory(prefix="clipper-media-") as tmp:
        raw = Path(tmp) / "frames.gray"
        with raw.open("wb") as f:
            for i in range(frames):
                f.write(code_frame(i, width, height).tobytes())
        args = ["-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{width}x{height}", "-framerate", fps]
        args += ["-i", str(raw)]
        if audio:
            wav = Path(tmp) / "clicks.wav"
            n_samples = round(Fraction(frames) / rate * sample_rate)
            onsets = [round(Fraction(i) / rate * sample_rate) for i in range(0, frames, CLICK_EVERY)]
            _write_wav(wav, click_track(n_samples, onsets, sample_rate), sample_rate, channels)
            args += ["-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"]
        if vfr:
            args += ["-vf", "select='not(eq(mod(n,3),2))'", "-fps_mode", "passthrough"]
        # yuv444p allows odd picture sizes (4:2:0 needs even ones).
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", pix_fmt]
        if start_offset_s:
            args += ["-output_ts_offset", f"{start_offset_s:.6f}"]
        if rotate is None:
            ffmpeg_run([*args, str(path)])
        else:
            plain = Path(tmp) / f"plain{path.suffix or '.mp4'}"
            ffmpeg_run([*args, str(plain)])
            ffmpeg_run(["-display_rotation:v:0", str(rotate), "-i", str(plain), "-map", "0", "-c", "copy", str(path)])
    return path


def _gray_frames(path: Path) -> Iterator[tuple[float, int, np.ndarray]]:
    """Yield (time s, display rotation deg, gray uint8 array) for every decoded video frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield (frame.time, frame.rotation, frame.to_ndarray(format="gray"))


def _box_sampler(gray: np.ndarray) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Return f(ys, xs, r) giving the mean of (2r+1)^2 boxes centred at integer points (clamped)."""
    h, w = gray.shape
    integral = np.zeros((h + 1, w + 1), dtype=np.float64)
    integral[1:, 1:] = gray.astype(np.float64).cumsum(0).cumsum(1)

    def sample(ys: np.ndarray, xs: np.ndarray, r: np.ndarray) -> np.ndarray:
        y0, y1 = np.clip(ys - r, 0, h - 1), np.clip(ys + r, 0, h - 1) + 1
        x0, x1 = np.clip(xs - r, 0, w - 1), np.clip(xs + r, 0, w - 1) + 1
        total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        return total / ((y1 - y0) * (x1 - x0))

    return sample


# Probe points in cell units relative to the grid centre: cell centres, points just inside the outer
# edge of each border cell, and points just outside the grid (which must be background grey).
_CENTRES = np.array([(r - 2.0, c - 2.0) for r in range(GRID) for c in range(GRID)])
_BORDER = np.array([p for p in _CENTRES if np.abs(p).max() == 2.0])
_INNER = _BORDER + 0.3 * np.sign(_BORDER) * (np.abs(_BORDER) == 2.0)
_OUTER = _BORDER + 0.75 * np.sign(_BORDER) * (np.abs(_BORDER) == 2.0)


def read_code(gray: np.ndarray) -> tuple[int, int]:
    """Return (index, rotation) of the code centred in a gray picture, or (-1, 0) if none.

    rotation is how far (degrees counter-clockwise) the code appears turned from upright.
    """
    h, w = gray.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = gray[y0 : y0 + side, x0 : x0 + side]
    centre = (side - 1) / 2
    sizes = np.geomspace(3.0, side / 5.6, num=max(2, int(np.log(side / 5.6 / 3.0) / np.log(1.02)) + 1))
    if sizes[-1] < 3.0:
        return -1, 0
    sample = _box_sampler(crop)

    def values(points: np.ndarray, c: np.ndarray) -> np.ndarray:
        ys = np.rint(centre + points[None, :, 0] * c[:, None]).astype(int)
        xs = np.rint(centre + points[None, :, 1] * c[:, None]).astype(int)
        r = np.maximum(0, (0.12 * c).astype(int))[:, None]
        return sample(ys, xs, r)

    score = (
        (np.abs(values(_CENTRES, sizes) - GREY) > 64).sum(1)
        + (np.abs(values(_INNER, sizes) - GREY) > 64).sum(1)
        + (np.abs(values(_OUTER, sizes) - GREY) < 40).sum(1)
    )
    best = score.max()
    if best < 0.85 * (len(_CENTRES) + len(_INNER) + len(_OUTER)):
        return -1, 0
    c = np.median(sizes[score == best])
    cells = values(_CENTRES, np.array([c]))[0].reshape(GRID, GRID)
    if (np.abs(cells - GREY) < 48).any():
        return -1, 0
    seen = cells > GREY
    for quarter in range(4):
        index = _decode_cells(np.rot90(seen, -quarter))
        if index >= 0:
            return index, 90 * quarter
    return -1, 0


def read_frames(path: Path) -> list[tuple[float, int, int]]:
    """Return (time s, index or -1, rotation of the code as seen in the decoded picture) per frame."""
    out = []
    for t, _rotation, gray in _gray_frames(path):
        index, seen = read_code(gray)
        out.append((float(t), index, seen))
    return out


def read_frame_numbers(path: Path) -> list[int]:
    """Return the code index of every decoded frame (-1 where no code is readable)."""
    return [index for _, index, _ in read_frames(path)]


def read_audio(path: Path) -> tuple[np.ndarray, int, float]:
    """Return (samples as float32 (channels, n), sample rate, time of the first sample) of audio stream 0."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks: list[tuple[float, np.ndarray]] = []
        rate = stream.codec_context.sample_rate
        resampler = None
        for frame in container.decode(stream):
            if resampler is None:
                resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=frame.sample_rate)
            for out in resampler.resample(frame):
                chunks.append((float(frame.time if frame.time is not None else 0.0), out.to_ndarray()))
            rate = frame.sample_rate
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), rate, 0.0
    t0 = chunks[0][0]
    starts = [round((t - t0) * rate) for t, _ in chunks]
    n = max(s + a.shape[1] for s, (_, a) in zip(starts, chunks, strict=True))
    samples = np.zeros((chunks[0][1].shape[0], n), dtype=np.float32)
    for s, (_, a) in zip(starts, chunks, strict=True):
        samples[:, s : s + a.shape[1]] = a
    return samples, rate, t0


def click_times(path: Path) -> list[float]:
    """Return onset times (s, on the file's timeline) of the short loud bursts in audio stream 0."""
    samples, rate, t0 = read_audio(path)
    env = np.abs(samples).max(axis=0)
    win = max(1, rate // 1000)  # 1 ms windows
    n_win = len(env) // win
    if n_win == 0:
        return []
    active = env[: n_win * win].reshape(n_win, win).max(axis=1) > 0.1
    times: list[float] = []
    k = 0
    while k < n_win:
        if not active[k]:
            k += 1
            continue
        start = k
        last = k
        while k < n_win and (active[k] or k - last < 20):  # bursts separated by >= 20 ms of quiet
            if active[k]:
                last = k
            k += 1
        lo, hi = max(0, (start - 1) * win), (last + 1) * win
        peak = env[lo:hi].max()
        onset = lo + int(np.argmax(env[lo:hi] > 0.25 * peak))
        times.append(t0 + onset / rate)
    return times


def tone_video(
    path: Path,
    *,
    seconds: float,
    size: tuple[int, int] = (640, 360),
    fps: str = "25",
    freq: float = 440.0,
    level_db: float = -20.0,
    audio: bool = True,
    channels: int = 2,
) -> Path:
    """Write testsrc2 video with a sine of peak level `level_db` dBFS in every channel (RMS is 3 dB lower)."""
    width, height = size
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    if audio:
        amp = 10 ** (level_db / 20)
        expr = "|".join([f"{amp:.9f}*sin(2*PI*{freq}*t)"] * channels)
        args += ["-f", "lavfi", "-i", f"aevalsrc={expr}:s=48000:d={seconds}", "-c:a", "aac", "-b:a", "192k"]
    args += [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-t",
        str(seconds),
    ]
    ffmpeg_run([*args, str(path)])
    return Path(path)


# --- bad media ---------------------------------------------------------------------------------------


def truncated_mp4(path: Path, src: Path) -> Path:
    """Write the first 30% of the bytes of a valid MP4 (an unfinished copy)."""
    data = Path(src).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * 0.3)])
    return Path(path)


def text_as_mp4(path: Path) -> Path:
    """Write a text file named .mp4."""
    Path(path).write_text("this is not a video\n" * 20, encoding="utf-8")
    return Path(path)


def audio_only(path: Path, seconds: float = 2.0) -> Path:
    """Write an MP4 with only an AAC audio stream."""
    ffmpeg_run(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:a",
            "aac",
            str(path),
        ]
    )
    return Path(path)


def empty_file(path: Path) -> Path:
    """Write a zero-byte file."""
    Path(path).write_bytes(b"")
    return Path(path)


def zero_duration_video(path: Path) -> Path:
    """Write an MP4 from a zero-frame encode: ffmpeg 9 leaves a valid moov with no streams, no duration."""
    ffmpeg_run(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "0", "-c:v", "libx264", str(path)])
    return Path(path)


def image_as_mp4(path: Path) -> Path:
    """Write a PNG image under an .mp4 name."""
    ffmpeg_run(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240",
            "-frames:v",
            "1",
            "-c:v",
            "png",
            "-f",
            "image2",
            str(path),
        ]
    )
    return Path(path)


# --- self-check (run by hand) ------------------------------------------------------------------------


def _self_check() -> None:
    """Make numbered videos, read them back, print what PyAV reports; raise AssertionError on mismatch."""
    with tempfile.TemporaryDirectory(prefix="clipper-media-check-") as tmp:
        d = Path(tmp)
        for fps in ("25", "30000/1001"):
            rate = Fraction(fps)
            p = numbered_video(d / "n.mp4", frames=60, fps=fps)
            got = read_frames(p)
            assert [i for _, i, _ in got] == list(range(60)), [i for _, i, _ in got]
            assert all(abs(t - i / rate) < 1e-3 for t, i, _ in got)
            clicks = click_times(p)
            want = [float(i / rate) for i in range(0, 60, CLICK_EVERY)]
            assert len(clicks) == len(want) and all(abs(a - b) < 1e-3 for a, b in zip(clicks, want, strict=True))
            print(f"fps {fps}: 60 frames read back; clicks {[round(c, 5) for c in clicks]} (want {want})")

        p = numbered_video(d / "r.mp4", frames=10, rotate=90)
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            f = next(c.decode(s))
            print(
                f"rotate=90: stream {s.codec_context.width}x{s.codec_context.height}"
                f" metadata={dict(s.metadata)}"
                f" has side_data attr={hasattr(s, 'side_data')}; frame {f.width}x{f.height}"
                f" rotation={f.rotation} side_data={[sd.type.name for sd in f.side_data]}"
            )
        print("  raw decode codes (index, seen rotation):", [(i, r) for _, i, r in read_frames(p)][:3])
        ffmpeg_run(["-i", str(p), "-c:v", "libx264", "-crf", "18", "-an", str(d / "auto.mp4")])
        with av.open(str(d / "auto.mp4")) as c:
            f = next(c.decode(video=0))
            print(f"  ffmpeg transcode (autorotate): {f.width}x{f.height} rotation={f.rotation};"
                  f" codes {[(i, r) for _, i, r in read_frames(d / 'auto.mp4')][:3]}")  # fmt: skip

        p = numbered_video(d / "v.mp4", frames=30, vfr=True)
        got = read_frames(p)
        print("vfr: ", [(round(t, 3), i) for t, i, _ in got][:8])
        assert [i for _, i, _ in got] == [i for i in range(30) if i % 3 != 2]
        assert all(abs(t - i / 25) < 1e-3 for t, i, _ in got)

        p = numbered_video(d / "o.mp4", frames=30, start_offset_s=3.5)
        got = read_frames(p)
        with av.open(str(p)) as c:
            print(f"offset 3.5: container.start_time={c.start_time}"
                  f" video start={c.streams.video[0].start_time}"
                  f" first frame t={got[0][0]:.4f} clicks={click_times(p)}")  # fmt: skip
        assert [i for _, i, _ in got] == list(range(30))

        src = numbered_video(d / "src.mp4", frames=50)
        crop = "crop=ih*9/16:ih,scale=1080:1920"
        letterbox = "scale=360:-2,pad=360:640:(ow-iw)/2:(oh-ih)/2"
        blur = (
            "split[a][b];[a]scale=720:1280:force_original_aspect_ratio=increase,crop=720:1280,boxblur=20[bg];"
            "[b]scale=720:-2[fg];[bg][fg]overlay=(W-w)/2:(H-h)/2"
        )
        small = "crop=ih*9/16:ih,scale=144:256"
        for name, vf in (("crop", crop), ("letterbox", letterbox), ("blur", blur), ("small", small)):
            out = d / f"{name}.mp4"
            ffmpeg_run(["-i", str(src), "-vf", vf, "-c:v", "libx264", "-crf", "23", "-c:a", "copy", str(out)])
            got = read_frame_numbers(out)
            assert got == list(range(50)), (name, got)
            print(f"reframe {name}: 50/50 codes read")

        tone = tone_video(d / "t.mp4", seconds=1.0)
        assert read_frame_numbers(tone) == [-1] * 25
        print("tone_video: 25 frames, all -1 (no code)")
        bad = {
            "truncated": truncated_mp4(d / "tr.mp4", src),
            "text": text_as_mp4(d / "tx.mp4"),
            "audio_only": audio_only(d / "ao.mp4"),
            "empty": empty_file(d / "e.mp4"),
            "zero_duration": zero_duration_video(d / "z.mp4"),
            "image": image_as_mp4(d / "i.mp4"),
        }
        for name, p in bad.items():
            try:
                with av.open(str(p)) as c:
                    kinds = [s.type for s in c.streams]
                    print(f"bad {name}: PyAV opens it: format={c.format.name} streams={kinds} duration={c.duration}")
            except av.FFmpegError as e:
                print(f"bad {name}: PyAV raises {type(e).__name__}: {e}")
    print("self-check OK")


if __name__ == "__main__":
    _self_check()


def face_video(
    path: Path,
    *,
    frames: int = 50,
    fps: str = "25",
    size: tuple[int, int] = (640, 360),
    face_px: int = 90,
    dark: range = range(0),
    audio: bool = True,
    shown: Container[int] | None = None,
) -> tuple[Path, list[tuple[int, int, int, int]]]:
    """Write a video of the astronaut's head (a real face, public domain) gliding left to right over a grey
    background; frames in `dark` are dimmed to near black, and only frames in `shown` (default: all) show the head.
    Returns the path and the face box (x, y, w, h) in every frame, in the picture's pixels."""
    from PIL import Image
    from skimage import data as skimage_data

    path = Path(path)
    width, height = size
    head = skimage_data.astronaut()[0:300, 100:380]  # face roughly at rows 20..230, cols 40..230 of this crop
    scale = face_px / 190
    sprite = np.asarray(Image.fromarray(head).resize((max(1, round(280 * scale)), max(1, round(300 * scale)))))
    sh, sw = sprite.shape[:2]
    boxes = []
    with tempfile.TemporaryDirectory(prefix="clipper-media-") as tmp:
        raw = Path(tmp) / "frames.rgb"
        with raw.open("wb") as f:
            for i in range(frames):
                frame = np.full((height, width, 3), 128, np.uint8)
                x = round((width - sw) * i / max(1, frames - 1))
                y = (height - sh) // 2
                if shown is None or i in shown:
                    frame[y : y + sh, x : x + sw] = sprite
                if i in dark:
                    frame = (frame.astype(np.float32) * 0.05).astype(np.uint8)
                boxes.append((x + round(40 * scale), y + round(20 * scale), round(190 * scale), round(210 * scale)))
                f.write(frame.tobytes())
        args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", fps, "-i", str(raw)]
        if audio:
            wav = Path(tmp) / "clicks.wav"
            n_samples = round(Fraction(frames) / Fraction(fps) * 48000)
            _write_wav(wav, click_track(n_samples, [0], 48000), 48000, 2)
            args += ["-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"]
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        ffmpeg_run([*args, "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", pix_fmt, str(path)])
    return path, boxes


# The astronaut's head as cropped for the still pictures below, and her face's box in it (cheek to cheek, brow to
# chin: what CenterFace's box spans), x, y, w, h.
_HEAD_ROWS, _HEAD_COLS = slice(10, 250), slice(120, 330)
FACE_IN_HEAD = (62, 48, 88, 120)


def head_sprite(scale: float, resample: int) -> np.ndarray:
    """The astronaut's head (210x240 px at scale 1) scaled, as RGB; her face's box is FACE_IN_HEAD times `scale`."""
    from PIL import Image
    from skimage import data as skimage_data

    head = skimage_data.astronaut()[_HEAD_ROWS, _HEAD_COLS]
    return np.asarray(Image.fromarray(head).resize((max(1, round(210 * scale)), max(1, round(240 * scale))), resample))


def _face_box(x: int, y: int, scale: float) -> tuple[int, int, int, int]:
    fx, fy, fw, fh = FACE_IN_HEAD
    return (x + round(fx * scale), y + round(fy * scale), round(fw * scale), round(fh * scale))


def faces_still_video(
    path: Path,
    *,
    size: tuple[int, int],
    face_px: Sequence[int],
    frames: int = 20,
    fps: str = "25",
    background: str | None = None,
) -> tuple[Path, list[tuple[int, int, int, int]]]:
    """Write a still video of the astronaut's head with the face (cheek to cheek, what a detector's box spans) at
    each width given, spread over a grey picture (or one of scikit-image's pictures, stretched: `background`, e.g.
    "brick"): a wide shot with small faces. Returns the path and each face's box (x, y, w, h) in the picture's
    pixels."""
    from PIL import Image
    from skimage import data as skimage_data

    path = Path(path)
    width, height = size
    frame = np.full((height, width, 3), 128, np.uint8)
    if background:
        picture = np.asarray(getattr(skimage_data, background)())
        if picture.ndim == 2:
            picture = np.stack([picture] * 3, axis=-1)
        frame = np.array(Image.fromarray(picture[..., :3]).resize((width, height), Image.BILINEAR))
    boxes = []
    for k, px in enumerate(face_px):
        scale = px / FACE_IN_HEAD[2]
        sprite = head_sprite(scale, Image.LANCZOS)
        sh, sw = sprite.shape[:2]
        x, y = round(width * (k + 1) / (len(face_px) + 1)) - sw // 2, height // 3 + (k % 2) * height // 3
        frame[y : y + sh, x : x + sw] = sprite
        boxes.append(_face_box(x, y, scale))
    return still_video(path, frame, frames=frames, fps=fps), boxes


def rgb_frames(path: Path) -> list[np.ndarray]:
    """Every decoded frame of a video as an H×W×3 RGB array."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def player_rgb(path: Path, index: int = 0) -> np.ndarray:
    """Frame `index` as a player shows an H.264 file tagged BT.709 (limited range, BT.709 matrix), computed from
    the planes here (a reader's own YUV-to-RGB choice would hide a matrix mismatch); and its colour tags."""
    with av.open(str(path)) as container:
        frame = next(f for i, f in enumerate(container.decode(video=0)) if i == index)
        planes = frame.to_ndarray(format="yuv420p").astype(np.float64)
    h, w = frame.height, frame.width
    y = planes[:h]
    u = planes[h : h + h // 4].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    v = planes[h + h // 4 :].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    kr, kb = 0.2126, 0.0722
    luma, cb, cr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r, b = luma + 2 * (1 - kr) * cr, luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], axis=-1) * 255, 0, 255)


def colour_tags(path: Path) -> tuple[str, str, str]:
    """A video's (primaries, transfer, matrix) tags as ffmpeg names them ("unknown" when untagged)."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    names = {1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 16: "smpte2084", 18: "arib-std-b67"}
    return tuple(names.get(int(x), str(x)) for x in (frame.color_primaries, frame.color_trc, frame.colorspace))


def red_and_grey_video(
    path: Path, *, size: tuple[int, int], transfer: str | None = None, tag: str | None = None, rgb: bool = False
) -> Path:
    """Write a 1 s video whose left half is red (200, 30, 30) and right half grey (128): SDR coded with the matrix
    players assume for its size, or tagged `tag` ("smpte170m", "bt709"); or, with `transfer` ("smpte2084" for PQ,
    "arib-std-b67" for HLG), HDR as a phone writes it (BT.2020, 10-bit HEVC, SDR white at 203 nits); or, `rgb`,
    in RGB (PNG frames in a QuickTime file, as screen recordings and some editors export)."""
    width, height = size
    matrix = tag or ("bt709" if height >= 720 else "smpte170m")
    scale_matrix = {"smpte170m": "bt601", "bt709": "bt709"}[matrix]
    half = f"s={width // 2}x{height}:r=25:d=1"
    source = f"color=c=0xc81e1e:{half}[l];color=c=0x808080:{half}[r];[l][r]hstack"
    if rgb:
        ffmpeg_run(["-f", "lavfi", "-i", source, "-vf", "format=rgb24", "-c:v", "png", str(path)])
        return Path(path)
    if transfer is None:
        vf = f"scale=out_color_matrix={scale_matrix}:out_range=tv,format=yuv420p"
        if not tag:
            vf += ",setparams=colorspace=unknown:color_primaries=unknown:color_trc=unknown"
        tags = ["-colorspace", matrix, "-color_primaries", matrix, "-color_trc", matrix] if tag else []
        ffmpeg_run(["-f", "lavfi", "-i", source, "-vf", vf, "-c:v", "libx264", "-crf", "10", *tags, str(path)])
        return Path(path)
    vf = (
        "format=gbrp,setparams=color_primaries=bt709:color_trc=bt709:colorspace=gbr:range=pc,"
        "zscale=t=linear:npl=100,format=gbrpf32le,"
        f"zscale=p=bt2020:t={transfer}:m=bt2020nc:r=tv:npl=203,format=yuv420p10le"
    )
    x265 = f"colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc:log-level=error"
    args = ["-f", "lavfi", "-i", source, "-vf", vf, "-c:v", "libx265", "-crf", "10", "-x265-params", x265]
    ffmpeg_run([*args, "-tag:v", "hvc1", str(path)])
    return Path(path)


def closeup_picture(size: tuple[int, int], face_frac: float) -> np.ndarray:
    """An RGB picture of the astronaut's face `face_frac` times the picture's height (chin to forehead, what a
    detector's box spans), centred on grey: above 1, an extreme close-up whose face runs off the frame."""
    from PIL import Image

    width, height = size
    fx, fy, fw, fh = FACE_IN_HEAD
    k = face_frac * height / fh
    sprite = head_sprite(k, Image.BILINEAR)
    frame = np.full((height, width, 3), 128, np.uint8)
    # The face's centre on the picture's.
    x0, y0 = round(width / 2 - (fx + fw / 2) * k), round(height / 2 - (fy + fh / 2) * k)
    sx, sy, dx, dy = max(0, -x0), max(0, -y0), max(0, x0), max(0, y0)
    w, h = min(sprite.shape[1] - sx, width - dx), min(sprite.shape[0] - sy, height - dy)
    frame[dy : dy + h, dx : dx + w] = sprite[sy : sy + h, sx : sx + w]
    return frame


def still_video(path: Path, picture: np.ndarray, frames: int = 20, fps: str = "25") -> Path:
    """Write an H.264 video showing one RGB picture (even-sized) in every frame."""
    height, width = picture.shape[:2]
    with tempfile.TemporaryDirectory(prefix="clipper-media-") as tmp:
        raw = Path(tmp) / "frames.rgb"
        raw.write_bytes(np.ascontiguousarray(picture).tobytes() * frames)
        args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", fps, "-i", str(raw)]
        ffmpeg_run([*args, "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", str(path)])
    return Path(path)


def shadow_picture(face_px: int = 240, brightness: float = 0.02) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 1280x720 RGB picture of a dark room (level 12) with a bright window (level 240) and the astronaut's face,
    `face_px` wide, at `brightness` of its own (a backlit "silhouette" interview); and the face's box (x, y, w, h).
    The picture's mean is about 50: not a frame too dark to trust."""
    from PIL import Image

    k = face_px / FACE_IN_HEAD[2]
    sprite = head_sprite(k, Image.BILINEAR)
    frame = np.full((720, 1280, 3), 12, np.uint8)
    frame[80:640, 900:1200] = 240
    x, y = 300, 30
    frame[y : y + sprite.shape[0], x : x + sprite.shape[1]] = (sprite * brightness).astype(np.uint8)
    return frame, _face_box(x, y, k)

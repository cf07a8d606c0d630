"""A synthetic "interview" for demos and tests: a real face moving over a backdrop, speech-like audio."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from clipper.errors import FfmpegError
from clipper.ffmpeg import ffmpeg_exe, format_cmd, hint_for

SEED = 20240601
PEAK_DBFS = -12.0

# (F1, F2, F3) in Hz of a few vowels (adult male averages).
_VOWELS: tuple[tuple[float, float, float], ...] = (
    (730.0, 1090.0, 2440.0),  # a
    (530.0, 1840.0, 2480.0),  # e
    (270.0, 2290.0, 3010.0),  # i
    (570.0, 840.0, 2410.0),  # o
    (300.0, 870.0, 2240.0),  # u
    (660.0, 1720.0, 2410.0),  # ae
    (490.0, 1350.0, 1690.0),  # er
)
_BANDWIDTHS = (80.0, 110.0, 160.0)


def _speech_plan(seconds: float, rng: np.random.Generator) -> list[tuple[float, float, int, float, bool]]:
    """Return syllables as (start s, duration s, vowel index, peak 0..1, has fricative onset)."""
    plan: list[tuple[float, float, int, float, bool]] = []
    t = 0.35
    while t < seconds - 0.5:
        n_syl = int(rng.integers(5, 13))
        for k in range(n_syl):
            dur = float(rng.uniform(0.17, 0.30))
            if t + dur > seconds - 0.25:
                break
            stressed = k % 3 == 0
            peak = 1.0 if stressed else float(rng.uniform(0.55, 0.85))
            plan.append((t, dur, int(rng.integers(len(_VOWELS))), peak, bool(rng.random() < 0.35)))
            t += dur
        t += float(rng.uniform(0.35, 0.8))  # pause between "sentences"
    return plan


def _raised_cosine_ramp(n: int) -> np.ndarray:
    """Return n samples rising smoothly from 0 to 1."""
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))


def synth_speech(seconds: float, sample_rate: int, *, seed: int = SEED) -> np.ndarray:
    """Return deterministic mono speech-like audio (float32, peak PEAK_DBFS) of the given length."""
    from scipy.signal import butter, lfilter, sosfilt

    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = round(seconds * sr)
    plan = _speech_plan(seconds, rng)

    block = max(1, sr // 200)  # 5 ms control rate for formants and pitch
    n_blocks = -(-n // block)
    t_blk = np.arange(n_blocks) * block / sr

    # Formant targets per control block: glide from the previous vowel over the first 40% of a syllable.
    formants = np.empty((n_blocks, 3))
    formants[:] = _VOWELS[0]
    prev = np.array(_VOWELS[0])
    envelope = np.zeros(n, dtype=np.float64)
    fric = np.zeros(n, dtype=np.float64)
    accent = np.zeros(n_blocks)
    for start, dur, vowel, peak, has_fric in plan:
        target = np.array(_VOWELS[vowel])
        b0, b1 = int(start * sr) // block, min(n_blocks, int((start + dur) * sr) // block + 1)
        glide = max(1, int(0.4 * (b1 - b0)))
        w = np.clip((np.arange(b1 - b0) + 1) / glide, 0.0, 1.0)[:, None]
        formants[b0:b1] = prev + (target - prev) * w
        formants[b1:] = target
        prev = target
        if peak >= 1.0:
            accent[b0:b1] = np.sin(np.linspace(0, np.pi, b1 - b0)) * 12.0
        # Amplitude: a short consonant dip, then a vowel nucleus with smooth attack and release.
        s0 = int(start * sr)
        gap = int(rng.uniform(0.03, 0.06) * sr)
        v0, v1 = s0 + gap, min(n, int((start + dur) * sr))
        if v1 - v0 < 8:
            continue
        att, rel = min(int(0.025 * sr), (v1 - v0) // 3), min(int(0.05 * sr), (v1 - v0) // 3)
        env = np.full(v1 - v0, peak)
        env[:att] *= _raised_cosine_ramp(att)
        env[len(env) - rel :] *= _raised_cosine_ramp(rel)[::-1]
        envelope[v0:v1] = np.maximum(envelope[v0:v1], env)
        if has_fric:
            f1 = min(n, s0 + gap + int(0.01 * sr))
            f_env = np.sin(np.linspace(0, np.pi, f1 - s0)) * 0.35 * peak
            fric[s0:f1] = np.maximum(fric[s0:f1], f_env)
    envelope += 0.06 * envelope.max() * (envelope > 0)  # breathy floor inside syllables

    # Pitch: per-sentence declination 150 -> 112 Hz, accents on stressed syllables, slow wobble.
    f0_blk = np.full(n_blocks, 130.0)
    sentence_start = 0.0
    starts = [p[0] for p in plan]
    for i, s in enumerate(starts):
        if i == 0 or s - (starts[i - 1] + plan[i - 1][1]) > 0.2:
            sentence_start = s
        b0 = int(s * sr) // block
        f0_blk[b0:] = 152.0 - 9.0 * (s - sentence_start)
    f0_blk = np.clip(f0_blk, 108.0, 160.0) + accent + 2.5 * np.sin(2 * np.pi * 0.7 * t_blk)
    kernel = np.hanning(41)
    f0_blk = np.convolve(np.pad(f0_blk, 20, mode="edge"), kernel / kernel.sum(), mode="valid")
    f0 = np.interp(np.arange(n) / sr, t_blk, f0_blk)
    f0 *= 1.0 + 0.004 * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1))  # jitter

    # Voiced source: band-limited harmonic series with a glottal-like 1/k^1.1 roll-off.
    phase = 2 * np.pi * np.cumsum(f0) / sr
    source = np.zeros(n)
    n_harm = int(0.45 * sr / 170.0)
    for k in range(1, min(n_harm, 40) + 1):
        source += np.sin(k * phase) / k**1.1
    source = source * envelope + 0.015 * rng.standard_normal(n) * envelope

    # Vocal tract: cascade of three 2-pole resonators whose formants move at the control rate.
    out = np.empty(n)
    states = [np.zeros(2) for _ in range(3)]
    for b in range(n_blocks):
        seg = source[b * block : (b + 1) * block]
        for j in range(3):
            r = np.exp(-np.pi * _BANDWIDTHS[j] / sr)
            a1, a2 = -2 * r * np.cos(2 * np.pi * formants[b, j] / sr), r * r
            seg, states[j] = lfilter([1 + a1 + a2], [1.0, a1, a2], seg, zi=states[j])
        out[b * block : (b + 1) * block] = seg

    # Fricatives: high-passed noise at some syllable onsets; a faint room tone everywhere.
    hp = butter(4, 3000.0, btype="highpass", fs=sr, output="sos")
    noise = sosfilt(hp, rng.standard_normal(n))
    out = out / np.abs(out).max() + noise / np.abs(noise).max() * fric
    out += 0.0015 * rng.standard_normal(n)
    out *= 10 ** (PEAK_DBFS / 20) / np.abs(out).max()
    return out.astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples in -1..1 (shape (n,) or (n, channels)) as a 16-bit PCM WAV."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def _face_sprite(height: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (premultiplied RGB float32, 1 - alpha float32) of the astronaut's head and shoulders."""
    from skimage import data
    from skimage.transform import resize

    crop = data.astronaut()[0:300, 100:380]
    width = round(crop.shape[1] * height / crop.shape[0])
    rgb = resize(crop, (height, width), anti_aliasing=True, preserve_range=True).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    # Feathered ellipse around head and shoulders so the photo's backdrop blends into ours.
    r = np.hypot((yy - 0.58 * height) / (0.60 * height), (xx - 0.5 * width) / (0.52 * width))
    alpha = np.clip((1.0 - r) / 0.18, 0.0, 1.0) * np.clip((height - 1 - yy) / (0.12 * height), 0.0, 1.0)
    alpha = alpha.astype(np.float32)[:, :, None]
    return rgb * alpha, 1.0 - alpha


def _backgrounds(width: int, height: int, rng: np.random.Generator, count: int = 4) -> list[np.ndarray]:
    """Return a few uint8 variants of a soft studio gradient with a little grain."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    top, bottom = np.array([58, 72, 98], np.float32), np.array([128, 140, 150], np.float32)
    base = top + (bottom - top) * (0.65 * v + 0.35 * u)[:, :, None]
    light = np.exp(-(((u - 0.7) / 0.45) ** 2 + ((v - 0.35) / 0.5) ** 2))[:, :, None]
    base += 28.0 * light
    out = []
    for _ in range(count):
        grain = rng.normal(0.0, 2.5, size=(height, width, 1)).astype(np.float32)
        out.append(np.clip(base + grain, 0, 255).astype(np.uint8))
    return out


def _frames(
    seconds: float, width: int, height: int, fps: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames one at a time (memory stays flat in duration)."""
    backgrounds = _backgrounds(width, height, rng)
    premult, inv_alpha = _face_sprite(max(16, round(0.4 * height)))
    h, w = inv_alpha.shape[:2]
    cx, cy = (width - w) / 2, (height - h) / 2
    for i in range(round(seconds * fps)):
        t = i / fps
        # Slow Lissajous path kept inside the frame.
        x = round(cx + 0.75 * cx * np.sin(2 * np.pi * t / 12.0))
        y = round(cy + 0.7 * cy * np.sin(2 * np.pi * t / 8.0 + 0.7))
        frame = backgrounds[i % len(backgrounds)].copy()
        region = frame[y : y + h, x : x + w]
        region[:] = (region * inv_alpha + premult).astype(np.uint8)
        yield frame


def make_demo_interview(
    path: Path,
    *,
    seconds: float = 24.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    sample_rate: int = 48000,
) -> Path:
    """Write a synthetic interview MP4 (moving real face, speech-like audio) to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    rng = np.random.default_rng(SEED)
    try:
        with tempfile.TemporaryDirectory(prefix="clipper-demo-") as tmp:
            wav = Path(tmp) / "speech.wav"
            speech = synth_speech(seconds, sample_rate)
            # Dual mono written as stereo: ffmpeg's mono->stereo upmix would lower the peak by 3 dB.
            write_wav(wav, np.stack([speech, speech], axis=1), sample_rate)
            log_path = Path(tmp) / "ffmpeg.log"
            cmd = [
                ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(fps),
                "-i", "pipe:0",
                "-i", str(wav),
                "-map", "0:v:0", "-map", "1:a:0",
                "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", str(2 * fps),
                "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                "-color_range", "tv",
                "-c:a", "aac", "-b:a", "128k",
                "-movflags", "+faststart", "-f", "mp4", str(partial),
            ]  # fmt: skip
            with (
                log_path.open("wb") as log_file,
                subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log_file
                ) as proc,
            ):
                try:
                    assert proc.stdin is not None
                    try:
                        for frame in _frames(seconds, width, height, fps, rng):
                            proc.stdin.write(frame.data)
                        proc.stdin.close()
                    except BrokenPipeError:  # ffmpeg died; its log says why
                        with contextlib.suppress(BrokenPipeError):
                            proc.stdin.close()
                    rc = proc.wait()
                except BaseException:
                    proc.kill()
                    proc.wait()
                    raise
            if rc != 0:
                stderr = log_path.read_text(errors="replace")
                tail = "\n".join(stderr.strip().splitlines()[-6:])
                raise FfmpegError(
                    f"demo video failed (ffmpeg exit {rc}):\n{tail}\n{format_cmd(cmd)}", hint=hint_for(stderr)
                )
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def main() -> None:
    """Command line: python -m clipper.demo OUT.mp4 [--seconds N]."""
    parser = argparse.ArgumentParser(prog="python -m clipper.demo", description=main.__doc__)
    parser.add_argument("path", type=Path, help="where to write the MP4")
    parser.add_argument("--seconds", type=float, default=24.0, help="duration (default 24)")
    args = parser.parse_args()
    print(make_demo_interview(args.path, seconds=args.seconds))


if __name__ == "__main__":
    main()

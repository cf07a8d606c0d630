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
from typing import NamedTuple

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


class _Syllable(NamedTuple):
    start: int  # first sample (consonant onset)
    vowel_start: int  # first sample of the voiced nucleus
    end: int  # one past the last sample
    vowel: int  # index into _VOWELS
    peak: float  # 0..1
    fricative: bool  # a noise burst before the vowel


def _speech_plan(seconds: float, sample_rate: int, rng: np.random.Generator) -> list[_Syllable]:
    """Return syllables (~4/s) grouped in "sentences" of 5-12 separated by 0.35-0.8 s pauses."""
    plan: list[_Syllable] = []
    t = 0.35
    while t < seconds - 0.5:
        n_syl = int(rng.integers(5, 13))
        for k in range(n_syl):
            dur = float(rng.uniform(0.17, 0.30))
            if t + dur > seconds - 0.25:
                break
            peak = 1.0 if k % 3 == 0 else float(rng.uniform(0.55, 0.85))
            gap = float(rng.uniform(0.03, 0.06))
            s0, s1 = int(t * sample_rate), int((t + dur) * sample_rate)
            vowel, fric = int(rng.integers(len(_VOWELS))), bool(rng.random() < 0.35)
            plan.append(_Syllable(s0, s0 + int(gap * sample_rate), s1, vowel, peak, fric))
            t += dur
        t += float(rng.uniform(0.35, 0.8))  # pause between "sentences"
    return plan


def _ramp(n: int) -> np.ndarray:
    """Return n samples rising smoothly (raised cosine) from 0 to 1."""
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))


def _envelopes(plan: list[_Syllable], c0: int, c1: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (voicing, fricative) amplitude envelopes for samples c0..c1."""
    voiced, fric = np.zeros(c1 - c0), np.zeros(c1 - c0)
    for syl in plan:
        if syl.end <= c0 or syl.start >= c1:
            continue
        v0, v1 = syl.vowel_start, syl.end
        if v1 - v0 >= 8:
            att, rel = min(int(0.025 * sr), (v1 - v0) // 3), min(int(0.05 * sr), (v1 - v0) // 3)
            env = np.full(v1 - v0, syl.peak * 1.06)  # small breathy floor included
            env[:att] *= _ramp(att)
            env[len(env) - rel :] *= _ramp(rel)[::-1]
            lo, hi = max(v0, c0), min(v1, c1)
            if lo < hi:
                voiced[lo - c0 : hi - c0] = np.maximum(voiced[lo - c0 : hi - c0], env[lo - v0 : hi - v0])
        if syl.fricative:
            f0, f1 = syl.start, syl.vowel_start + int(0.01 * sr)
            env = np.sin(np.linspace(0, np.pi, f1 - f0)) * 0.35 * syl.peak
            lo, hi = max(f0, c0), min(f1, c1)
            if lo < hi:
                fric[lo - c0 : hi - c0] = np.maximum(fric[lo - c0 : hi - c0], env[lo - f0 : hi - f0])
    return voiced, fric


def synth_speech(seconds: float, sample_rate: int, *, seed: int = SEED) -> np.ndarray:
    """Return deterministic mono speech-like audio (float32, peak PEAK_DBFS) of the given length.

    Synthesized in 10 s chunks, so working memory beyond the 4-byte-per-sample result stays flat.
    """
    from scipy.signal import butter, lfilter, sosfilt, sosfilt_zi

    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = round(seconds * sr)
    plan = _speech_plan(seconds, sr, rng)

    # Control rate (5 ms blocks): formant tracks and pitch contour for the whole duration (small).
    block = max(1, sr // 200)
    n_blocks = -(-n // block)
    t_blk = np.arange(n_blocks) * block / sr
    formants = np.empty((n_blocks, 3))
    formants[:] = _VOWELS[0]
    accent = np.zeros(n_blocks)
    f0_blk = np.full(n_blocks, 130.0)
    prev, sentence_start, last_end = np.array(_VOWELS[0]), 0, -sr
    for syl in plan:
        target = np.array(_VOWELS[syl.vowel])
        b0, b1 = syl.start // block, min(n_blocks, syl.end // block + 1)
        glide = max(1, int(0.4 * (b1 - b0)))  # coarticulation: glide from the previous vowel
        w = np.clip((np.arange(b1 - b0) + 1) / glide, 0.0, 1.0)[:, None]
        formants[b0:b1] = prev + (target - prev) * w
        formants[b1:] = target
        prev = target
        if syl.peak >= 1.0:
            accent[b0:b1] = np.sin(np.linspace(0, np.pi, b1 - b0)) * 10.0
        if syl.start - last_end > 0.2 * sr:
            sentence_start = syl.start
        f0_blk[b0:] = 146.0 - 9.0 * (syl.start - sentence_start) / sr  # declination within a sentence
        last_end = syl.end
    f0_blk = np.clip(f0_blk, 108.0, 160.0) + accent + 2.5 * np.sin(2 * np.pi * 0.7 * t_blk)
    f0_blk += 1.5 * rng.standard_normal(n_blocks)  # jitter
    kernel = np.hanning(41)
    f0_blk = np.convolve(np.pad(f0_blk, 20, mode="edge"), kernel / kernel.sum(), mode="valid")

    hp = butter(4, 3000.0, btype="highpass", fs=sr, output="sos")
    hp_state = sosfilt_zi(hp) * 0.0
    states = [np.zeros(2) for _ in range(3)]
    phase0 = 0.0
    voice_gain = 0.0
    out = np.empty(n, dtype=np.float32)
    chunk = 2000 * block
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        voiced, fric = _envelopes(plan, c0, c1, sr)
        # Voiced source: band-limited harmonic series with a glottal-like 1/k^1.1 roll-off.
        f0 = np.interp(np.arange(c0, c1) / sr, t_blk, f0_blk)
        phase = phase0 + 2 * np.pi * np.cumsum(f0) / sr
        phase0 = float(phase[-1])
        source = np.zeros(c1 - c0)
        for k in range(1, min(int(0.45 * sr / 170.0), 40) + 1):
            source += np.sin(k * phase) / k**1.1
        source = (source + 0.015 * rng.standard_normal(c1 - c0)) * voiced
        # Vocal tract: cascade of three 2-pole resonators whose formants move at the control rate.
        for b in range(c0 // block, -(-c1 // block)):
            lo, hi = b * block - c0, min(c1, (b + 1) * block) - c0
            seg = source[lo:hi]
            for j in range(3):
                r = np.exp(-np.pi * _BANDWIDTHS[j] / sr)
                a1, a2 = -2 * r * np.cos(2 * np.pi * formants[b, j] / sr), r * r
                seg, states[j] = lfilter([1 + a1 + a2], [1.0, a1, a2], seg, zi=states[j])
            source[lo:hi] = seg
        if voice_gain == 0.0:
            voice_gain = 1.0 / max(float(np.abs(source).max()), 1e-9)
        # Fricatives: high-passed noise at some syllable onsets; a faint room tone everywhere.
        noise, hp_state = sosfilt(hp, rng.standard_normal(c1 - c0), zi=hp_state)
        out[c0:c1] = source * voice_gain + noise / 4.5 * fric + 0.0015 * rng.standard_normal(c1 - c0)
    out *= np.float32(10 ** (PEAK_DBFS / 20) / max(float(np.abs(out).max()), 1e-9))
    return out


def write_wav(path: Path, samples: np.ndarray, sample_rate: int, *, channels: int = 1) -> None:
    """Write mono float samples in -1..1 as a 16-bit PCM WAV, the same signal in each of `channels`."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        for c0 in range(0, len(samples), 1 << 20):
            pcm = np.clip(np.round(samples[c0 : c0 + (1 << 20)] * 32767.0), -32768, 32767).astype("<i2")
            w.writeframes(np.repeat(pcm, channels).tobytes())


def _face_sprite(height: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (premultiplied RGB float32, 1 - alpha float32) of the astronaut's head and shoulders."""
    try:
        from skimage import data
        from skimage.transform import resize
    except ImportError:
        from clipper.errors import ClipperError

        raise ClipperError(
            "the demo footage needs scikit-image (its astronaut photo is the demo's face)",
            hint="pip install 'clipper[demo]' (make demo installs it)",
        ) from None

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


def _frames(seconds: float, width: int, height: int, fps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
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
            # Dual mono written as stereo: ffmpeg's mono->stereo upmix would lower the peak by 3 dB.
            write_wav(wav, synth_speech(seconds, sample_rate), sample_rate, channels=2)
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
                subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log_file) as proc,
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

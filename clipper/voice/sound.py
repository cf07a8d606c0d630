"""The clip's sound, rewritten before it is encoded: the voice changed, the joins faded, the bleeps laid over.

Each cut's audio is decoded at the sources' own sample rate as mono (a voice left whole in one channel of a
stereo pair would defeat the change), changed cut by cut so no analysis window spans a join, joined with short
fades against clicks, and bleeped. The result is one WAV shared by every variant of the clip and kept in the
cache: it is what every output carries instead of the sources' sound, and it is measured for loudness in its
place. Anything that goes wrong raises VoiceError and no output is made: there is no fallback to the
original sound.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from clipper import __version__
from clipper.ffmpeg import read_samples
from clipper.graph import JOIN_FADE_S, segment_sound_cmd
from clipper.plan import RenderPlan, SegmentPlan, Span
from clipper.voice import VoiceError

log = logging.getLogger(__name__)

# The sound under a bleep fades out just before it and back in just after it (never inside it), over this long.
BLEEP_FADE_S = 0.010
# The tone: the broadcast censor's 1 kHz sine, well below full scale, with its own fades inside the bleep.
BLEEP_TONE_HZ = 1000.0
BLEEP_TONE_DBFS = -14.0
# voice.spans: the changed voice is mixed in over this long just outside each span, so the span itself carries
# none of the original voice; the method also hears this much context on each side (its analysis windows).
SPAN_EDGE_S = 0.010
SPAN_CONTEXT_S = 0.050
# Rates the voice methods and the linkability check are built for.
MIN_RATE, MAX_RATE = 8_000, 96_000
DECISION_RATE = 16_000  # the voice gate's rate: how a cut's channels are mixed is decided there, once
SOUND_VERSION = 2  # bump when the processing changes what a cached WAV would contain


@dataclass(frozen=True)
class SoundReport:
    """What the sound step did, for the sidecar (numbers only: no parameter of the voice is ever published)."""

    rate: int
    seconds: float
    voice_seconds: float  # how much of the clip had its voice changed
    voice_method: str | None
    voice_strength: str | None
    bleeps: tuple[Span, ...]
    transform_seconds: float  # time the voice method took (0 when cached)

    def to_json(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {
            "rate": self.rate,
            "seconds": round(self.seconds, 3),
            "voice_changed_seconds": round(self.voice_seconds, 3),
            "method": self.voice_method,
            "strength": self.voice_strength,
            "bleeps": [[round(float(a), 3), round(float(b), 3)] for a, b in self.bleeps],
        }


def sound_rate(plan: RenderPlan) -> int:
    """The rate the clip's sound is processed at: the highest of its sources' for a voice change (48 kHz when none
    has audio); the output's 48 kHz for bleeps alone, which work at any rate."""
    from clipper.presets import AUDIO_RATE

    if plan.voice is None:
        return AUDIO_RATE
    rates = [s.sample_rate for s in plan.segments if s.has_audio and s.sample_rate]
    rate = max(rates) if rates else AUDIO_RATE
    if not MIN_RATE <= rate <= MAX_RATE:
        raise VoiceError(
            f"the sources' audio is sampled at {rate} Hz; the voice step works from {MIN_RATE} to {MAX_RATE} Hz",
            hint="re-export the interview's audio at 48 kHz",
        )
    return rate


def _voice_seed(plan: RenderPlan, secret: bytes | None) -> bytes | None:
    if plan.voice is None:
        return None
    from clipper.voice.secret import load_secret, speaker_seed

    return speaker_seed(secret if secret is not None else load_secret(), plan.voice.speaker)


def sound_key(plan: RenderPlan, source_hashes: dict[str, str], seed: bytes | None) -> str:
    """What determines the rewritten sound: the cuts (by content), the voice, the bleeps and this clipper."""
    parts: list[object] = [__version__, SOUND_VERSION, str(plan.fps), sound_rate(plan)]
    for s in plan.segments:
        parts.append([source_hashes[s.source], s.in_frame, s.out_frame, str(s.src_fps), s.out_frames, s.has_audio])
    if plan.voice is not None:
        assert seed is not None
        spans = None if plan.voice.spans is None else [[str(a), str(b)] for a, b in plan.voice.spans]
        # The seed enters through a one-way MAC, so the cache's file names say nothing about it.
        tag = hmac.new(seed, b"clipper sound cache", hashlib.sha256).hexdigest()
        from clipper.voice.methods import preset_fingerprint  # scipy: imported when needed

        preset = preset_fingerprint(plan.voice.method, plan.voice.strength)
        parts.append([plan.voice.method, plan.voice.strength, preset, tag, spans])
    parts.append([[b.sound, [[str(a), str(z)] for a, z in b.spans]] for b in plan.bleeps])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def cached_sound(
    plan: RenderPlan, cache: Path, source_hashes: dict[str, str], *, secret: bytes | None = None
) -> tuple[Path, SoundReport]:
    """The clip's rewritten sound as a WAV in `cache` (made once, then shared by every variant and run)."""
    seed = _voice_seed(plan, secret)
    key = sound_key(plan, source_hashes, seed)
    path = cache / "sound" / f"{key}.wav"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            report = SoundReport(
                rate=int(data["rate"]),
                seconds=float(data["seconds"]),
                voice_seconds=float(data["voice_seconds"]),
                voice_method=data["voice_method"],
                voice_strength=data["voice_strength"],
                bleeps=tuple((Fraction(a), Fraction(b)) for a, b in data["bleeps"]),
                transform_seconds=0.0,
            )
            return path, report
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: make it again
    samples, report = build_sound(plan, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    meta_tmp = meta.with_name(f".{meta.name}.{os.getpid()}.partial")
    try:
        write_wav(tmp, samples, report.rate)
        tmp.replace(path)
        meta_tmp.write_text(
            json.dumps(
                {
                    "rate": report.rate,
                    "seconds": report.seconds,
                    "voice_seconds": report.voice_seconds,
                    "voice_method": report.voice_method,
                    "voice_strength": report.voice_strength,
                    "bleeps": [[str(a), str(b)] for a, b in report.bleeps],
                }
            ),
            encoding="utf-8",
        )
        meta_tmp.replace(meta)
    finally:  # a failed write (disk full) leaves no temporary file behind
        tmp.unlink(missing_ok=True)
        meta_tmp.unlink(missing_ok=True)
    return path, report


def build_sound(plan: RenderPlan, seed: bytes | None) -> tuple[np.ndarray, SoundReport]:
    """Decode, change, join and bleep the clip's sound; return mono float32 samples and what was done."""
    rate = sound_rate(plan)
    params = None
    if plan.voice is not None:
        from clipper.voice.methods import params_for

        assert seed is not None
        params = params_for(plan.voice.method, plan.voice.strength, seed)
    pieces: list[np.ndarray] = []
    spent = 0.0
    changed = 0
    for seg in plan.segments:
        x = decode_segment(seg, plan.fps, rate)
        if params is not None:
            assert plan.voice is not None
            started = time.process_time()
            x, n = change_voice(x, rate, params, _spans_in(seg, plan.fps, plan.voice.spans))
            spent += time.process_time() - started
            changed += n
        pieces.append(fade_ends(x, rate))
    clip = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    bleeps = sorted((span, b.sound) for b in plan.bleeps for span in b.spans)
    clip = apply_bleeps(clip, rate, bleeps)
    if not np.all(np.isfinite(clip)):
        raise VoiceError("the voice step produced invalid samples", hint="report this clip; nothing was published")
    report = SoundReport(
        rate=rate,
        seconds=len(clip) / rate,
        voice_seconds=changed / rate,
        voice_method=plan.voice.method if plan.voice else None,
        voice_strength=plan.voice.strength if plan.voice else None,
        bleeps=tuple(span for span, _ in bleeps),
        transform_seconds=spent,
    )
    if plan.voice is not None and not changed and len(clip):
        # The plan refuses spans outside every cut; should nothing have been changed anyway, the clip would carry
        # the voice as recorded.
        raise VoiceError("the voice was to be changed but no part of the clip was", hint="report this manifest")
    if plan.voice is not None and changed:
        log.info("voice: %.1f s changed at %.1f× realtime", changed / rate, changed / rate / max(spent, 1e-6))
    return clip, report


def decode_segment(seg: SegmentPlan, fps: Fraction, rate: int) -> np.ndarray:
    """One cut's sound as mono float32 at `rate`, exactly as long as the cut: its two channels' sum, or their
    difference when they cancel (see inverted_channels)."""
    left, right = _decode_stereo(seg, fps, rate)
    # At the decision rate (the gate's original) this decode is the one the decision is made on: not decoded twice.
    inverted = cancels(left, right) if rate == DECISION_RATE else inverted_channels(seg, fps)
    return to_mono(left, right, inverted)


def to_mono(left: np.ndarray, right: np.ndarray, inverted: bool) -> np.ndarray:
    """Two channels as one: their sum, or their difference when they are inverted copies."""
    return ((left - right) / 2 if inverted else (left + right) / 2).astype(np.float32)


def _decode_stereo(seg: SegmentPlan, fps: Fraction, rate: int) -> tuple[np.ndarray, np.ndarray]:
    x = read_samples(segment_sound_cmd(seg, fps, rate), what=f"reading the sound of {seg.source}")
    want = round(Fraction(seg.out_frames) / fps * rate)
    if len(x) != 2 * want:
        raise VoiceError(
            f"the sound of {seg.source} came out {len(x) // 2} samples long, expected {want}",
            hint="the source may be damaged near this cut; re-export it",
        )
    return x[0::2], x[1::2]


@functools.lru_cache(maxsize=64)
def inverted_channels(seg: SegmentPlan, fps: Fraction) -> bool:
    """True when the cut's channels are inverted copies (a miswired microphone), which sum to silence.

    Decided once per cut, at one rate, so that the sound that is changed and the original the voice gate compares
    it with are mixed alike (content above 8 kHz would tip a decision made at each one's own rate differently).
    """
    left, right = _decode_stereo(seg, fps, DECISION_RATE)
    return cancels(left, right)


def cancels(left: np.ndarray, right: np.ndarray) -> bool:
    """True when the difference of the channels holds 10 times the energy of their sum."""
    mid, side = (left + right) / 2, (left - right) / 2
    return float(np.dot(side, side)) > 10 * float(np.dot(mid, mid))


def _spans_in(seg: SegmentPlan, fps: Fraction, spans: Sequence[Span] | None) -> list[Span] | None:
    """Voice spans as seconds within one cut (None: all of it)."""
    if spans is None:
        return None
    c0 = Fraction(seg.clip_start_frame) / fps
    c1 = c0 + Fraction(seg.out_frames) / fps
    return [(max(a, c0) - c0, min(b, c1) - c0) for a, b in spans if a < c1 and b > c0]


def change_voice(x: np.ndarray, rate: int, params: object, spans: Sequence[Span] | None) -> tuple[np.ndarray, int]:
    """The cut with its voice changed over `spans` (seconds within it; None: all); returns (samples, changed)."""
    from clipper.voice.methods import transform

    def run(piece: np.ndarray) -> np.ndarray:
        try:
            y = transform(piece, rate, params)  # type: ignore[arg-type]
        except VoiceError:
            raise
        except Exception as e:  # any failure of the method stops the job: never the original voice
            raise VoiceError(
                f"the voice method failed ({type(e).__name__}: {e})", hint="report this clip; nothing was published"
            ) from e
        y = np.asarray(y, dtype=np.float32)
        if y.shape != piece.shape or not np.all(np.isfinite(y)):
            raise VoiceError(
                "the voice method returned unusable samples", hint="report this clip; nothing was published"
            )
        return y

    if len(x) == 0:
        return x, 0
    if spans is None:
        return run(x), len(x)
    out = x.copy()
    edge = max(1, round(SPAN_EDGE_S * rate))
    ctx = round(SPAN_CONTEXT_S * rate)
    changed = 0
    for i0, i1 in _merged_runs(spans, rate, len(x), 2 * max(ctx, edge)):
        w0, w1 = max(0, i0 - max(ctx, edge)), min(len(x), i1 + max(ctx, edge))
        y = run(x[w0:w1])
        w = np.zeros(w1 - w0, dtype=np.float32)
        w[i0 - w0 : i1 - w0] = 1.0
        # Ramps lie outside [i0, i1): inside the span there is only the changed voice.
        up = np.sin(0.5 * np.pi * (np.arange(1, edge + 1) / edge)) ** 2
        lo = max(w0, i0 - edge)
        w[lo - w0 : i0 - w0] = np.maximum(w[lo - w0 : i0 - w0], up[edge - (i0 - lo) :])
        hi = min(w1, i1 + edge)
        w[i1 - w0 : hi - w0] = np.maximum(w[i1 - w0 : hi - w0], up[::-1][: hi - i1])
        out[w0:w1] = out[w0:w1] * (1 - w) + y * w
        changed += i1 - i0
    return out, changed


def _merged_runs(spans: Sequence[Span], rate: int, n: int, gap: int) -> list[tuple[int, int]]:
    """Spans as sample runs [i0, i1), sorted, with runs less than `gap` samples apart joined into one.

    Each run is changed in a window reaching beyond it (context for the method, the blend's ramps); two windows
    that overlap would each write the other's run back as the original voice. Joined, the short stretch between
    them is changed too: in doubt, more.
    """
    runs: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        i0, i1 = max(0, math.floor(a * rate)), min(n, math.ceil(b * rate))
        if i1 <= i0:
            continue
        if runs and i0 - runs[-1][1] < gap:
            runs[-1] = (runs[-1][0], max(runs[-1][1], i1))
        else:
            runs.append((i0, i1))
    return runs


def fade_ends(x: np.ndarray, rate: int) -> np.ndarray:
    """The cut with a short half-cosine fade in and out, so joins between cuts do not click."""
    n = min(len(x) // 2, max(1, round(JOIN_FADE_S * rate)))
    if n == 0:
        return x
    ramp = (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


def apply_bleeps(x: np.ndarray, rate: int, bleeps: Sequence[tuple[Span, str]]) -> np.ndarray:
    """The sound with every (span, tone|silence) replaced: none of the original remains inside a span."""
    if not bleeps:
        return x
    fade = max(1, round(BLEEP_FADE_S * rate))
    ramp = np.sin(0.5 * np.pi * np.arange(fade) / fade) ** 2
    tone_fade = max(1, round(0.005 * rate))
    keep = np.ones(len(x))
    tone = np.zeros(len(x))
    for (a, b), sound in bleeps:
        i0, i1 = max(0, math.floor(a * rate)), min(len(x), math.ceil(b * rate))
        if i1 <= i0:
            continue
        keep[i0:i1] = 0.0
        lo, hi = max(0, i0 - fade), min(len(x), i1 + fade)
        keep[lo:i0] = np.minimum(keep[lo:i0], ramp[::-1][fade - (i0 - lo) :])  # reaches 0 at i0 even when cut short
        keep[i1:hi] = np.minimum(keep[i1:hi], ramp[: hi - i1])
        if sound == "tone":
            n = i1 - i0
            f = min(n // 2, tone_fade)
            env = np.ones(n)
            if f:
                env[:f] = np.sin(0.5 * np.pi * np.arange(f) / f) ** 2
                env[n - f :] = env[:f][::-1]
            tone[i0:i1] = np.maximum(tone[i0:i1], env)
    # One continuous sine under every tone bleep: overlapping bleeps never add up or restart its phase.
    sine = 10 ** (BLEEP_TONE_DBFS / 20) * np.sin(2 * np.pi * BLEEP_TONE_HZ * np.arange(len(x)) / rate)
    return (x * keep + sine * tone).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write mono float32 samples as a WAV file."""
    from scipy.io import wavfile

    wavfile.write(path, rate, np.asarray(samples, dtype=np.float32))

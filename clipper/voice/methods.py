"""Voice changes: McAdams (LPC pole angles) and a WORLD vocoder that moves a voice toward a secret pseudo-voice.

Both are pure functions of (samples, rate, parameters). Parameters come from `params_for(method, strength, seed)`:
the seed is one speaker's HMAC of the team's secret (voice/secret.py), so a person sounds the same in every clip,
and nothing published holds a number. Speech is processed in its band up to 8 kHz at 16 kHz and resampled back:
above 8 kHz there is little of the words and much of the person (and WORLD at 48 kHz is 3× slower).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, signal

from clipper.voice import VoiceError

METHODS = ("mcadams", "vocoder")
STRENGTHS = ("light", "medium", "strong")
WORK_RATE = 16_000
MIN_RATE, MAX_RATE = 8_000, 96_000
# A generic speaker's articulation: the standard deviation over voiced frames of cepstral coefficient k (k = 1..24,
# log-spectrum nepers) is about A·k^-P: a power law fitted to the mean profile of the ten LibriSpeech readers in
# shared/corpus (a smooth two-number curve, so no reader's own profile is the target).
DYN_TERMS = 24
GENERIC_DYN_A, GENERIC_DYN_P = 0.72, 0.56
CHUNK_S = 20.0  # WORLD runs on chunks this long (bounded memory), joined with a 50 ms cross-fade
OVERLAP_S = 0.05

# Presets, per strength. mcadams: pole-angle exponent α drawn per speaker in [lo, hi]. vocoder: F0 moved to a
# per-speaker target mean (Hz range) with only `keep` of its contour, the spectral envelope's long-term shape
# replaced by a per-speaker one (`env` = its spread in nepers; 0: the speaker's own kept) and warped along
# frequency by a per-speaker factor whose log magnitude lies in [warp_lo, warp_hi] (direction drawn too).
PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "mcadams": {
        "light": {"alpha_lo": 0.88, "alpha_hi": 0.92},
        "medium": {"alpha_lo": 0.82, "alpha_hi": 0.88},
        "strong": {"alpha_lo": 0.74, "alpha_hi": 0.82},
    },
    "vocoder": {
        "light": {"keep": 0.8, "env": 0.0, "warp_lo": 0.04, "warp_hi": 0.08, "f0_lo": 0.0, "f0_hi": 0.0, "dyn": 0.0},
        "medium": {
            "keep": 0.5,
            "env": 0.4,
            "warp_lo": 0.06,
            "warp_hi": 0.12,
            "f0_lo": 100.0,
            "f0_hi": 230.0,
            "dyn": 0.0,
        },
        "strong": {
            "keep": 0.3,
            "env": 1.0,
            "warp_lo": 0.12,
            "warp_hi": 0.22,
            "f0_lo": 90.0,
            "f0_hi": 250.0,
            "dyn": 1.0,
        },
    },
}


def preset_fingerprint(method: str, strength: str) -> str:
    """Names what a method and strength do today (its preset numbers): caches and batch identities include it, so
    retuning a preset re-renders the clips made with the old numbers instead of reusing their sound."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps([method, PRESETS[method][strength]], sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class VoiceParams:
    """Fully resolved numbers for one speaker (never published)."""

    method: str
    strength: str
    values: tuple[tuple[str, float], ...]

    def get(self, name: str) -> float:
        """One value by name."""
        return dict(self.values)[name]


def params_for(method: str, strength: str, seed: bytes) -> VoiceParams:
    """Resolve a preset for one speaker: seed is 32 bytes (an HMAC of the team's secret and the pseudonym)."""
    if method not in METHODS:
        raise VoiceError(f"unknown voice method {method!r}", hint=f"use one of: {', '.join(METHODS)}")
    if strength not in STRENGTHS:
        raise VoiceError(f"unknown voice strength {strength!r}", hint=f"use one of: {', '.join(STRENGTHS)}")
    if len(seed) < 16:
        raise VoiceError("the voice seed is too short", hint="derive it with clipper.voice.secret.speaker_seed")
    rng = np.random.default_rng(int.from_bytes(seed[:16], "little"))
    p = PRESETS[method][strength]
    if method == "mcadams":
        values = {"alpha": float(rng.uniform(p["alpha_lo"], p["alpha_hi"]))}
    else:
        sign = 1.0 if rng.random() < 0.5 else -1.0
        values = {
            "keep": p["keep"],
            "warp": float(math.exp(sign * rng.uniform(p["warp_lo"], p["warp_hi"]))),
            "f0_target": float(math.exp(rng.uniform(math.log(p["f0_lo"]), math.log(p["f0_hi"]))))
            if p["f0_hi"]
            else 0.0,
            "f0_ratio": float(math.exp(sign * rng.uniform(0.08, 0.16))),  # light: a relative shift instead
            "dyn": p["dyn"],
        }
        # The target envelope: a smooth random curve of 8 cosine terms, its spread set by the strength.
        coeffs = rng.normal(0.0, p["env"], 8) / np.arange(1, 9) if p["env"] else np.zeros(8)
        values |= {f"env{i}": float(c) for i, c in enumerate(coeffs)}
    return VoiceParams(method, strength, tuple(sorted(values.items())))


def transform(samples: np.ndarray, sr: int, params: VoiceParams) -> np.ndarray:
    """Return the anonymized voice: mono float32 in, same length and rate out."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise VoiceError("the voice step takes mono sound", hint="report this: the sound step mixes to mono first")
    if not MIN_RATE <= sr <= MAX_RATE:
        raise VoiceError(
            f"sample rate {sr} Hz is outside {MIN_RATE}–{MAX_RATE} Hz", hint="re-export the audio at 48 kHz"
        )
    if len(x) == 0:
        raise VoiceError("no sound to change", hint="a cut must be at least one frame long")
    if not np.all(np.isfinite(x)):
        raise VoiceError("the sound has invalid samples (NaN or infinity)", hint="re-export the interview's audio")
    if params.method not in METHODS:
        raise VoiceError(f"unknown voice method {params.method!r}", hint=f"use one of: {', '.join(METHODS)}")
    work = signal.resample_poly(x, WORK_RATE, sr) if sr != WORK_RATE else x
    if len(work) < WORK_RATE // 20:  # under 50 ms: too short to analyse; nothing of a voice survives silence
        return np.zeros(len(x), dtype=np.float32)
    fn = _mcadams if params.method == "mcadams" else _vocoder
    y = _chunked(work, lambda c: fn(c, WORK_RATE, params))
    if sr != WORK_RATE:
        y = signal.resample_poly(y, sr, WORK_RATE)
    y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    if not np.all(np.isfinite(y)):
        # Never pass on a broken change (and never fall back to the original voice): stop the job.
        raise VoiceError(f"the {params.method} voice change produced invalid samples", hint="report this sound")
    peak = float(np.abs(y).max()) if len(y) else 0.0
    if peak > 0.999:
        y *= 0.999 / peak
    return y.astype(np.float32)


def _chunked(x: np.ndarray, fn: object) -> np.ndarray:
    """Apply fn to chunks of CHUNK_S with OVERLAP_S cross-faded overlaps (bounded memory on long cuts)."""
    n, hop, ov = len(x), int(CHUNK_S * WORK_RATE), int(OVERLAP_S * WORK_RATE)
    if n <= hop + ov:
        return fn(x)  # type: ignore[operator]
    out = np.zeros(n)
    fade = np.sin(0.5 * np.pi * (np.arange(ov) + 0.5) / ov) ** 2
    start = 0
    while start < n:
        end = min(n, start + hop + ov)
        y = fn(x[start:end])  # type: ignore[operator]
        if start > 0:
            y[:ov] *= fade
            out[start : start + ov] *= fade[::-1]
        out[start:end] += y
        start += hop
        if end == n:
            break
    return out


def _mcadams(x: np.ndarray, sr: int, params: VoiceParams, order: int = 20) -> np.ndarray:
    """VoicePrivacy's McAdams baseline: per 20 ms frame, LPC poles' angles raised to α, residual re-filtered."""
    alpha = params.get("alpha")
    wl, hop = int(0.02 * sr), int(0.01 * sr)
    win = np.hanning(wl)
    win = np.sqrt(win / (win.sum() / hop))  # analysis × synthesis windows overlap-add to one
    n = 1 + max(0, (len(x) - wl) // hop)
    padded = np.pad(x, (0, (n - 1) * hop + 2 * wl - len(x)))
    y = np.zeros(len(padded))
    dither = 1e-9 * np.random.default_rng(0).standard_normal(wl)  # silence has no poles
    for m in range(n):
        frame = padded[m * hop : m * hop + wl] * win + dither
        r = np.correlate(frame, frame, "full")[wl - 1 : wl + order]
        r[0] *= 1 + 1e-9
        try:
            a = np.concatenate(([1.0], linalg.solve_toeplitz(r[:order], -r[1 : order + 1])))
        except linalg.LinAlgError:
            continue
        poles = np.roots(a)
        ang = np.angle(poles)
        complex_ = np.abs(poles.imag) > 1e-12
        new = np.abs(poles) * np.exp(1j * np.where(complex_, np.sign(ang) * np.abs(ang) ** alpha, ang))
        a_new = np.real(np.poly(new))
        residual = signal.lfilter(a, [1.0], frame)
        y[m * hop : m * hop + wl] += signal.lfilter([1.0], a_new, residual) * win
    return y[: len(x)]


def _vocoder(x: np.ndarray, sr: int, params: VoiceParams, period_ms: float = 5.0) -> np.ndarray:
    """WORLD analysis/resynthesis toward the speaker's pseudo-voice (see PRESETS)."""
    import pyworld

    f0, t = pyworld.dio(x, sr, f0_floor=60.0, f0_ceil=500.0, frame_period=period_ms)
    f0 = pyworld.stonemask(x, f0, t, sr)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    voiced = f0 > 0
    logf0 = np.log(np.where(voiced, f0, 1.0))
    mean = float(logf0[voiced].mean()) if voiced.any() else math.log(120.0)
    keep = params.get("keep")
    target = params.get("f0_target")
    centre = math.log(target) if target else mean + math.log(params.get("f0_ratio"))
    f0_new = np.where(voiced, np.exp(centre + keep * (logf0 - mean)), 0.0)

    bins = sp.shape[1]
    freqs = np.arange(bins) / (bins - 1) * sr / 2
    log_sp = np.log(sp + 1e-20)
    energy = sp.sum(axis=1)
    loud = voiced & (energy > 1e-8 * energy.max())  # the frames that carry the voice
    dyn = params.get("dyn")
    if dyn and loud.sum() > 1:
        # How far each cepstral coefficient moves over time is part of a person's articulation: scale every
        # coefficient's movement (voiced frames) to a generic speaker's, mixing `dyn` of the generic in.
        k = np.arange(1, DYN_TERMS + 1)
        cep = np.fft.irfft(log_sp, axis=1)
        mid = cep[loud][:, k].mean(axis=0)
        spread = cep[loud][:, k].std(axis=0) + 1e-9
        # Bounded: a held vowel barely moves, and amplifying what little it does only makes noise.
        scale = (1 - dyn) + dyn * np.clip((GENERIC_DYN_A * k**-GENERIC_DYN_P) / spread, 0.25, 2.0)
        cep[:, k] = mid + (cep[:, k] - mid) * scale
        cep[:, -k] = cep[:, k]  # a real, even cepstrum: mirrored terms
        log_sp = np.fft.rfft(cep, axis=1).real[:, :bins]
    coeffs = np.array([params.get(f"env{i}") for i in range(8)])
    if np.any(coeffs):
        # Replace the long-term envelope (the speaker's vocal tract and channel, on average) by the target one.
        lt = log_sp[loud].mean(axis=0) if loud.any() else log_sp.mean(axis=0)
        cep = np.fft.irfft(lt)
        cep[30:-30] = 0.0  # keep its smooth shape only
        smooth = np.fft.rfft(cep).real[:bins]
        log_sp = log_sp - smooth + smooth.mean()
        q = freqs / freqs[-1] * np.pi
        shape = 2 * (coeffs[None, :] * np.cos(np.arange(1, 9)[None, :] * q[:, None])).sum(axis=1)
        log_sp = log_sp + np.clip(shape, -1.4, 1.4)[None, :]
    # Formant shift: output frequency f takes the envelope at f / warp.
    src = np.clip(freqs / params.get("warp"), 0, sr / 2)
    pos = src / (sr / 2) * (bins - 1)
    i0 = np.clip(np.floor(pos).astype(int), 0, bins - 2)
    frac = pos - i0
    log_sp = log_sp[:, i0] * (1 - frac) + log_sp[:, i0 + 1] * frac
    y = pyworld.synthesize(f0_new, np.ascontiguousarray(np.exp(log_sp)), ap, sr, period_ms)
    y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    rms_in, rms_out = float(np.sqrt(np.mean(x**2))), float(np.sqrt(np.mean(y**2)))
    return y * (rms_in / rms_out) if rms_out > 1e-12 else y

"""Voice methods on real signals: what they change (pitch, formants), what they keep, and how they refuse."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.demo import synth_speech
from clipper.voice import VoiceError
from clipper.voice.methods import CHUNK_S, METHODS, STRENGTHS, params_for, transform

SEED_A, SEED_B = bytes(range(32)), bytes(range(1, 33))


def _f0(x: np.ndarray, sr: int) -> float:
    import pyworld

    f0, _ = pyworld.dio(x.astype(np.float64), sr, f0_floor=60.0, f0_ceil=500.0)
    return float(np.median(f0[f0 > 0]))


def _vowel(sr: int, f0: float = 120.0, seconds: float = 1.5) -> np.ndarray:
    """A glottal pulse train through three formant resonators: a steady /a/."""
    from scipy import signal

    n = int(seconds * sr)
    x = np.zeros(n)
    x[:: int(sr / f0)] = 1.0
    for freq, bw in ((700, 80), (1220, 90), (2600, 120)):
        r = np.exp(-np.pi * bw / sr)
        x = signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / sr), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _centroid(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / sr)
    band = f < 4000
    return float((spec[band] * f[band]).sum() / spec[band].sum())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sr", [16_000, 48_000])
def test_every_method_keeps_length_and_rate_and_changes_the_sound(method, sr):
    x = synth_speech(3.0, sr)
    y = transform(x, sr, params_for(method, "strong", SEED_A))
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    assert np.corrcoef(x, y)[0, 1] < 0.9  # not the input passed through
    assert np.array_equal(y, transform(x, sr, params_for(method, "strong", SEED_A)))  # deterministic


def test_a_speaker_keeps_their_parameters_and_two_speakers_differ():
    for method in METHODS:
        for strength in STRENGTHS:
            assert params_for(method, strength, SEED_A) == params_for(method, strength, SEED_A)
            assert params_for(method, strength, SEED_A) != params_for(method, strength, SEED_B)


def test_the_vocoder_moves_pitch_to_the_speakers_target():
    sr = 16_000
    x = _vowel(sr, f0=120.0)
    p = params_for("vocoder", "strong", SEED_A)
    got = _f0(transform(x, sr, p), sr)
    assert got == pytest.approx(p.get("f0_target"), rel=0.06), (got, p.get("f0_target"))


def test_formants_move_with_the_warp():
    sr = 16_000
    x = _vowel(sr)
    for seed in (SEED_A, SEED_B, bytes(32)):
        p = params_for("vocoder", "light", seed)  # light keeps the speaker's envelope: the warp alone moves it
        moved = _centroid(transform(x, sr, p), sr) / _centroid(x, sr)
        assert (moved > 1.02) if p.get("warp") > 1 else (moved < 0.98), (p.get("warp"), moved)


def test_mcadams_raises_low_formants_for_alpha_below_one():
    # A pole at angle θ < 1 rad (below sr/2π: 2.5 kHz at 16 kHz) moves to θ^α > θ: this vowel's formants go up.
    sr = 16_000
    x = _vowel(sr)
    p = params_for("mcadams", "strong", SEED_A)
    assert p.get("alpha") < 1
    y = transform(x, sr, p)
    assert _centroid(y, sr) > _centroid(x, sr) * 1.05


@pytest.mark.parametrize("method", METHODS)
def test_silence_stays_silent_and_short_cuts_work(method):
    sr = 48_000
    silent = np.zeros(sr, np.float32)
    assert np.abs(transform(silent, sr, params_for(method, "strong", SEED_A))).max() < 1e-3
    short = synth_speech(0.05, sr)
    assert transform(short, sr, params_for(method, "strong", SEED_A)).shape == short.shape


def test_long_cuts_are_processed_in_chunks_without_clicks():
    sr = 16_000
    x = synth_speech(CHUNK_S * 2 + 3, sr)
    y = transform(x, sr, params_for("vocoder", "strong", SEED_A))
    assert y.shape == x.shape
    jumps = np.abs(np.diff(y))
    for k in (1, 2):
        at = int(CHUNK_S * k * sr)
        near = jumps[at - 800 : at + 800].max()
        assert near <= np.percentile(jumps, 99.99) * 1.5, k


@pytest.mark.parametrize(
    ("samples", "sr", "message"),
    [
        (np.array([0.0, np.nan, 0.0] * 1000, np.float32), 16_000, "invalid samples"),
        (np.zeros(1000, np.float32), 4_000, "outside"),
        (np.zeros(0, np.float32), 16_000, "no sound"),
    ],
)
def test_unusable_input_is_refused(samples, sr, message):
    with pytest.raises(VoiceError, match=message):
        transform(samples, sr, params_for("vocoder", "strong", SEED_A))


def test_unknown_method_or_strength_is_refused():
    with pytest.raises(VoiceError, match="unknown voice method"):
        params_for("pitchshift", "strong", SEED_A)
    with pytest.raises(VoiceError, match="unknown voice strength"):
        params_for("vocoder", "max", SEED_A)


def test_a_change_that_yields_invalid_samples_stops_the_job(monkeypatch):
    # Found when a held vowel (no spectral movement) made the strong vocoder divide by ~0: NaN must never pass.
    import pyworld

    monkeypatch.setattr(pyworld, "synthesize", lambda f0, sp, ap, sr, period: np.full(len(f0) * 80, np.nan))
    with pytest.raises(VoiceError, match="invalid samples"):
        transform(_vowel(16_000), 16_000, params_for("vocoder", "strong", SEED_A))

"""The sound step: bleeps that leave nothing of the original, joins without clicks, spans mapped onto the clip."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from clipper.plan import SegmentPlan, clip_spans
from clipper.voice.sound import BLEEP_FADE_S, BLEEP_TONE_HZ, apply_bleeps, change_voice, fade_ends

RATE = 48_000


def _band_db(x: np.ndarray, rate: int, freq: float, width: float = 30.0) -> float:
    """Energy (dB) of x within ±width Hz of freq, Hann-windowed."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    band = spec[(f > freq - width) & (f < freq + width)].sum()
    return 10 * np.log10(band + 1e-30)


def _speechlike(n: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    partials = (220.0, 660.0, 1870.0, 3150.0)
    x = sum(0.2 * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(partials))
    return (x + 0.01 * np.random.default_rng(1).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("sound", ["tone", "silence"])
def test_bleep_leaves_nothing_of_the_original(sound: str) -> None:
    x = _speechlike(RATE * 2, RATE)
    span = (Fraction(1, 2), Fraction(13, 10))
    y = apply_bleeps(x, RATE, [(span, sound)])
    inside = y[int(0.5 * RATE) : int(1.3 * RATE)]
    before = x[int(0.5 * RATE) : int(1.3 * RATE)]
    for f in (220.0, 660.0, 1870.0, 3150.0):
        # Numerically nothing: the original's partials are > 120 dB below where they were.
        assert _band_db(inside, RATE, f) < _band_db(before, RATE, f) - 120, f
    if sound == "tone":
        assert _band_db(inside, RATE, BLEEP_TONE_HZ) > _band_db(before, RATE, BLEEP_TONE_HZ) + 40
    else:
        assert np.abs(inside).max() == 0
    # Outside the bleep and its fades, the sound is untouched.
    fade = round(BLEEP_FADE_S * RATE)
    assert np.array_equal(y[: int(0.5 * RATE) - fade], x[: int(0.5 * RATE) - fade])
    assert np.array_equal(y[int(1.3 * RATE) + fade + 1 :], x[int(1.3 * RATE) + fade + 1 :])


def test_bleep_edges_do_not_click() -> None:
    x = _speechlike(RATE, RATE)
    y = apply_bleeps(
        x, RATE, [((Fraction(3, 10), Fraction(6, 10)), "tone"), ((Fraction(1, 2), Fraction(7, 10)), "tone")]
    )
    # A click is a jump between neighbouring samples far above what the sound itself does.
    steady = np.abs(np.diff(x)).max()
    assert np.abs(np.diff(y)).max() <= steady * 1.05


def test_joined_cuts_do_not_click() -> None:
    t = np.arange(RATE // 2) / RATE
    a = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    b = (0.5 * np.cos(2 * np.pi * 440 * t)).astype(np.float32)  # starts at its peak: a hard cut would click
    hard = np.concatenate([a, b])
    soft = np.concatenate([fade_ends(a, RATE), fade_ends(b, RATE)])
    steady = np.abs(np.diff(a)).max()
    assert np.abs(np.diff(hard)).max() > 10 * steady  # the test can fail: a hard join does click
    assert np.abs(np.diff(soft)).max() <= steady * 1.05


def _seg(index: int, in_frame: int, out_frame: int, clip_start: int, source: str = "a") -> SegmentPlan:
    return SegmentPlan(
        index=index,
        source=source,
        path=Path("x.mp4"),
        src_fps=Fraction(25),
        in_frame=in_frame,
        out_frame=out_frame,
        out_frames=out_frame - in_frame,
        clip_start_frame=clip_start,
        has_audio=True,
        display_width=640,
        display_height=360,
        sar=Fraction(1),
    )


def test_source_times_land_on_every_cut_that_plays_them() -> None:
    # Cuts: source 2-4 s at clip 0-2 s, then source 10-12 s at clip 2-4 s, then source 3-5 s again at clip 4-6 s.
    segs = [_seg(0, 50, 100, 0), _seg(1, 250, 300, 50), _seg(2, 75, 125, 100)]
    fps = Fraction(25)
    assert clip_spans(segs, fps, Fraction(3), Fraction(7, 2), "a") == (
        (Fraction(1), Fraction(3, 2)),
        (Fraction(4), Fraction(9, 2)),
    )
    # Across a join: source 3.5-4 s (end of cut 1) and 4-4.5 s (cut 3) meet at clip 4 s... they don't here;
    # but a span covering source 11.5-13 s is clamped to the end of cut 2.
    assert clip_spans(segs, fps, Fraction(23, 2), Fraction(13), "a") == ((Fraction(7, 2), Fraction(4)),)
    assert clip_spans(segs, fps, Fraction(6), Fraction(9), "a") == ()  # between cuts: nowhere
    assert clip_spans(segs, fps, Fraction(6), Fraction(9), "other") == ()
    # Clip-timed: clamped to the clip.
    assert clip_spans(segs, fps, Fraction(5), Fraction(9), None) == ((Fraction(5), Fraction(6)),)


def test_pieces_meeting_at_a_join_are_one_span() -> None:
    segs = [_seg(0, 50, 100, 0), _seg(1, 100, 150, 50)]  # two cuts that continue each other
    assert clip_spans(segs, Fraction(25), Fraction(3), Fraction(5), "a") == ((Fraction(1), Fraction(3)),)


@pytest.mark.parametrize(
    "spans",
    [
        [(0, 2), (2, 4), (4, 6)],  # touching, as spans cut from subtitle cues are
        [(1, 5), (2, 3)],  # one inside another
        [(1, Fraction(2)), (Fraction(2) + Fraction(3, 100), 3)],  # 30 ms apart: their context windows overlap
        [(Fraction(k * 12, 100), Fraction((k + 1) * 12, 100)) for k in range(50)],  # fifty short spans in a row
    ],
    ids=["touching", "nested", "30-ms-apart", "fifty-short"],
)
def test_no_sample_of_the_original_voice_is_left_inside_any_span(spans, monkeypatch) -> None:
    monkeypatch.setattr("clipper.voice.methods.transform", lambda piece, sr, params: np.full_like(piece, 0.123))
    x = _speechlike(RATE * 7, RATE)
    y, changed = change_voice(x, RATE, object(), [(Fraction(a), Fraction(b)) for a, b in spans])
    inside = np.zeros(len(x), bool)
    for a, b in spans:
        inside[int(a * RATE) : int(b * RATE)] = True
    assert np.all(y[inside] == np.float32(0.123)), f"{np.count_nonzero(y[inside] != np.float32(0.123))} samples"
    assert changed >= np.count_nonzero(inside)


def test_a_bleep_right_after_the_clip_starts_does_not_click() -> None:
    x = _speechlike(RATE, RATE)
    y = apply_bleeps(x, RATE, [((Fraction(4, 1000), Fraction(3, 10)), "silence")])
    steady = np.abs(np.diff(x)).max()
    assert np.abs(np.diff(y)).max() <= steady * 1.05


def test_channels_that_cancel_are_told_from_ordinary_stereo() -> None:
    from clipper.voice.sound import cancels

    x = _speechlike(RATE, RATE)
    assert cancels(x, -x)  # inverted copies: the sum would be silence
    assert not cancels(x, x)
    wide = 0.3 * _speechlike(RATE, RATE)[::-1].copy()
    assert not cancels(x, wide)  # ordinary stereo: the usual sum

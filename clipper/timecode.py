"""Timecodes as editors write them: seconds, HH:MM:SS.mmm, and SMPTE HH:MM:SS:FF (';' for drop-frame)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

FORMS = "seconds (12.5), HH:MM:SS.mmm (00:01:12.500) or SMPTE HH:MM:SS:FF (00:01:12:12)"
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")
_SMPTE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2})$")


@dataclass(frozen=True)
class Timecode:
    """A point in time as written; seconds are exact, SMPTE frames wait for the source's frame rate."""

    text: str
    seconds: Fraction | None = None  # set for seconds and clock forms
    smpte: tuple[int, int, int, int] | None = None  # hh, mm, ss, ff
    drop_frame: bool = False

    def to_seconds(self, fps: Fraction | None) -> Fraction:
        """Return the time in seconds; SMPTE needs the frame rate it counts frames in."""
        if self.seconds is not None:
            return self.seconds
        if fps is None:
            raise ValueError(f"SMPTE timecode {self.text!r} needs the source's frame rate")
        return Fraction(self.to_frame(fps)) / fps

    def to_frame(self, fps: Fraction) -> int:
        """Return the frame index at `fps`; a time in seconds snaps to the nearest frame boundary."""
        if self.seconds is not None:
            return math.floor(self.seconds * fps + Fraction(1, 2))
        assert self.smpte is not None
        hh, mm, ss, ff = self.smpte
        nominal = math.ceil(fps)  # 30 for 29.97, 25 for 25
        if ff >= nominal:
            raise ValueError(f"frame field {ff} in {self.text!r} must be below {nominal} at {float(fps):.3f} fps")
        frames = ((hh * 60 + mm) * 60 + ss) * nominal + ff
        if self.drop_frame:
            if nominal not in (30, 60):
                raise ValueError(f"drop-frame timecode {self.text!r} only exists at 29.97 or 59.94 fps")
            drop = nominal // 15  # 2 frames a minute at 29.97, 4 at 59.94
            total_minutes = hh * 60 + mm
            if ss == 0 and ff < drop and mm % 10 != 0:
                raise ValueError(f"{self.text!r} names a frame number that drop-frame timecode skips")
            frames -= drop * (total_minutes - total_minutes // 10)
        return frames

    def __str__(self) -> str:
        return self.text


# No recording is this long; a larger number is a typo (or 1e308) and would make absurd frame numbers downstream.
MAX_SECONDS = 1000 * 3600


def _in_range(text: str, seconds: Fraction | float) -> None:
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text} is more than 1000 hours: a timecode is {FORMS}")


def parse_timecode(value: object) -> Timecode:
    """Parse seconds (number or string), HH:MM:SS.mmm / MM:SS.mmm, or SMPTE HH:MM:SS:FF / HH:MM:SS;FF."""
    if isinstance(value, bool):
        raise ValueError(f"a timecode is {FORMS}, not true/false")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value} is not a time of 0 seconds or more: a timecode is {FORMS}")
        _in_range(str(value), value)
        return Timecode(text=str(value), seconds=Fraction(str(value)))
    if not isinstance(value, str):
        what = "nothing" if value is None else f"a {type(value).__name__}"
        raise ValueError(f"got {what}: a timecode is {FORMS}")
    text = value.strip()
    if len(text) > 32:  # no timecode is this long
        raise ValueError(f"{text[:32]!r}… is not a timecode: write {FORMS}")
    try:  # screened as a float first: Fraction("1e10000000") computes the exact number, for seconds
        approx: float | None = float(text)
    except ValueError:
        approx = None
    if approx is not None:
        _in_range(repr(text), approx)
    try:
        secs = Fraction(text)
    except (ValueError, ZeroDivisionError):
        secs = None
    if secs is not None and "/" not in text:
        if secs < 0:
            raise ValueError(f"{text!r} is not a time of 0 seconds or more: a timecode is {FORMS}")
        _in_range(repr(text), secs)
        return Timecode(text=text, seconds=secs)
    if m := _SMPTE.match(text):
        hh, mm, ss, sep, ff = m.groups()
        _check_clock(text, int(mm), int(ss))
        return Timecode(text=text, smpte=(int(hh), int(mm), int(ss), int(ff)), drop_frame=sep == ";")
    if m := _CLOCK.match(text):
        hh, mm, ss = m.groups()
        ss_frac = Fraction(ss)
        _check_clock(text, int(mm), int(ss_frac))
        _in_range(repr(text), int(hh or 0) * 3600 + int(mm) * 60 + ss_frac)
        return Timecode(text=text, seconds=int(hh or 0) * 3600 + int(mm) * 60 + ss_frac)
    raise ValueError(f"{text!r} is not a timecode: write {FORMS}")


def _check_clock(text: str, minutes: int, seconds: int) -> None:
    if minutes >= 60 or seconds >= 60:
        raise ValueError(f"{text!r}: minutes and seconds must be below 60")


def format_clock(seconds: float | Fraction) -> str:
    """Format seconds as HH:MM:SS.mmm."""
    ms = round(float(seconds) * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"

"""Platform presets: one table, read by the planner, the renderer, the verifier and the README."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Preset:
    """What a platform accepts: frame geometry, longest clip, largest file."""

    name: str
    width: int
    height: int
    max_seconds: float | None = None
    max_bytes: int | None = None

    @property
    def aspect(self) -> Fraction:
        """Width over height."""
        return Fraction(self.width, self.height)


MB = 1_000_000

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("youtube", 1920, 1080),
        Preset("youtube-shorts", 1080, 1920, max_seconds=180),
        Preset("tiktok", 1080, 1920, max_seconds=600),
        Preset("instagram-reels", 1080, 1920, max_seconds=180),
        Preset("instagram-feed", 1080, 1350, max_seconds=60),
        Preset("facebook", 1080, 1920),
        Preset("x", 1280, 720, max_seconds=140, max_bytes=512 * MB),
        Preset("telegram", 1280, 720),
        Preset("whatsapp-status", 720, 1280, max_seconds=60, max_bytes=16 * MB),
    )
}

# Shared by every preset.
MAX_FPS = Fraction(30)
GOP_SECONDS = 2
AUDIO_RATE = 48_000
AUDIO_CHANNELS = 2
AUDIO_BITRATE = 160_000
LOUDNESS_LUFS = -14.0
TRUE_PEAK_DBTP = -1.0
LOUDNESS_RANGE_LU = 11.0
# Preview: small and fast, for a look, never for publishing.
PREVIEW_HEIGHT = 360


def output_fps(source_fps: Fraction) -> Fraction:
    """Keep the source rate up to 30 fps; above it, divide by the smallest whole factor (60→30, 50→25)."""
    if source_fps <= MAX_FPS:
        return source_fps
    k = 2
    while source_fps / k > MAX_FPS:
        k += 1
    return source_fps / k

"""Burned-in captions: the files libass reads for one variant, and the check that it drew only with our font.

libass finds fonts two ways: the folder ffmpeg's `fontsdir` names (we put exactly one font file there), and
fontconfig, which on most machines would offer every system font as a silent substitute. Every ffmpeg clipper
starts gets FONTCONFIG_FILE pointing at a configuration with no font folders (ffmpeg.fontconfig_file), so a
character the font lacks draws as a box and libass logs a warning; the render then fails on that warning
(check_font_log). Glyph coverage is checked before rendering too (render.plan_captions): this is the second line.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from clipper.captions.fonts import CaptionFont
from clipper.captions.layout import CaptionStyle, LaidOutCue, ass_document
from clipper.errors import ClipperError

# What libass logs when it had to draw a character without a font for it (at ffmpeg's default log level).
FONT_FAILURES = ("failed to find any fallback", "Glyph 0x")


@dataclass(frozen=True)
class BurnFiles:
    """What the subtitles filter reads for one variant: the ASS script and a folder holding only its font."""

    ass: Path
    fonts_dir: Path
    font_family: str


def write_burn_files(
    cues: list[LaidOutCue], font: CaptionFont, style: CaptionStyle, fps: Fraction, language: str, work: Path
) -> BurnFiles:
    """Write the ASS script and the one-font folder for a variant into `work` (a private temporary folder)."""
    return write_ass_files(ass_document(cues, font, style, fps, language), font, work, "captions")


def write_ass_files(script: str, font: CaptionFont, work: Path, name: str) -> BurnFiles:
    """Write an ASS script and a folder holding only its font into `work`: what the subtitles filter reads."""
    work.mkdir(parents=True, exist_ok=True)
    fonts_dir = work / "fonts"
    if fonts_dir.exists():
        shutil.rmtree(fonts_dir)
    fonts_dir.mkdir()
    shutil.copyfile(font.path, fonts_dir / (name + font.path.suffix.lower()))
    ass = work / f"{name}.ass"
    ass.write_text(script, encoding="utf-8")
    return BurnFiles(ass, fonts_dir, font.family)


def check_font_log(stderr: str, *, what: str) -> None:
    """Raise if ffmpeg's log shows libass drawing a character no caption font has (a box, or nothing)."""
    bad = [line.strip() for line in stderr.splitlines() if any(m in line for m in FONT_FAILURES)]
    if bad:
        raise ClipperError(
            f"{what}: the captions contain characters their font cannot draw ({bad[0]})",
            hint="run `clipper lint` on the subtitle file to find the characters, and name a font that has them "
            "(subtitles: {LANG: {file: ..., font: fonts/your-font.ttf}})",
        )

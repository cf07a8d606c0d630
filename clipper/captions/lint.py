"""Caption lint: reading speed, line length and count, durations, gaps, overlaps, empty cues, glyph coverage.

Every issue names file:line (the cue's timing line), a stable rule id, the measured value against the limit,
and what to do. Glyph coverage needs the font that will draw the text, so the caller passes a function
that returns the characters its font cannot draw.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from clipper.captions.read import Cue, SubtitleFile, read_subtitles

__all__ = ["BLOCKING", "RULES", "LintIssue", "LintRules", "count_chars", "lint_cues", "lint_files"]

# Stable rule ids, in the order issues of one cue are reported.
RULES = (
    "dropped",
    "empty",
    "cps",
    "line-length",
    "lines",
    "duration-short",
    "duration-long",
    "overlap",
    "gap",
    "glyphs",
    "encoding",
)
# Findings a render stops on (render.prepare checks the same): a cue that would vanish from the captions, a
# character the font cannot draw, a U+FFFD where the file held a NUL byte or text in another encoding.
BLOCKING = frozenset({"dropped", "glyphs", "encoding"})
_EPS = 0.0005  # timestamps have millisecond precision: 0.833 s counts as 5/6 s


@dataclass(frozen=True)
class LintRules:
    """Limits the lint checks against (defaults: common broadcast/streaming caption guidelines)."""

    max_cps: float = 17.0
    max_chars_per_line: int = 42
    max_lines: int = 2
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    min_gap_frames: int = 2


@dataclass(frozen=True)
class LintIssue:
    """One finding: where, which rule, and a message with the value, the limit and the fix."""

    path: Path
    line: int
    rule: str
    message: str
    blocking: bool = False  # a render of a manifest using this file would stop on it

    def __str__(self) -> str:
        stops = " (a render stops on this)" if self.blocking else ""
        return f"{self.path}:{self.line}: {self.rule}: {self.message}{stops}"


def _invisible(ch: str) -> bool:
    return unicodedata.combining(ch) != 0 or unicodedata.category(ch) in ("Mn", "Me", "Cf")


def count_chars(text: str) -> int:
    """Characters as a reader sees them: combining marks and invisible format characters do not count."""
    return sum(1 for ch in unicodedata.normalize("NFC", text) if not _invisible(ch))


def _visible(lines: tuple[str, ...]) -> bool:
    return any(not ch.isspace() and not _invisible(ch) for line in lines for ch in line)


def _codepoints(chars: Iterable[str]) -> str:
    return ", ".join(f"U+{ord(ch):04X} {ch!r}" for ch in sorted(chars))


def _cue_issues(cue: Cue, rules: LintRules, missing_glyphs: Callable[[str], set[str]] | None) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    duration = cue.end - cue.start
    if not _visible(cue.lines):
        found.append(("empty", f"cue has no visible text ({duration:.3f} s on screen); remove the cue or add its text"))
        return found
    chars = count_chars("".join(cue.lines))
    cps = chars / duration
    if cps > rules.max_cps + 1e-9:
        found.append(
            (
                "cps",
                f"{cps:.1f} characters per second (limit {rules.max_cps:g}): {chars} characters in {duration:.3f} s; "
                f"split the cue or shorten the text (or show it for at least {chars / rules.max_cps:.2f} s)",
            )
        )
    for number, text in enumerate(cue.lines, 1):
        if (n := count_chars(text)) > rules.max_chars_per_line:
            found.append(
                (
                    "line-length",
                    f"text line {number} of the cue has {n} characters (limit {rules.max_chars_per_line}); "
                    "break the line earlier or shorten the text",
                )
            )
    if len(cue.lines) > rules.max_lines:
        found.append(
            (
                "lines",
                f"cue has {len(cue.lines)} lines (limit {rules.max_lines}); split the cue in two or join short lines",
            )
        )
    if duration < rules.min_duration - _EPS:
        found.append(
            (
                "duration-short",
                f"cue lasts {duration:.3f} s (minimum {rules.min_duration:.3f} s); "
                "lengthen it or merge it with a neighbouring cue",
            )
        )
    if duration > rules.max_duration + _EPS:
        found.append(
            (
                "duration-long",
                f"cue lasts {duration:.3f} s (maximum {rules.max_duration:g} s); split the cue or shorten it",
            )
        )
    if any("\ufffd" in line for line in cue.lines):
        found.append(
            (
                "encoding",
                "the text holds U+FFFD '\ufffd' (a NUL byte, or text in another encoding); fix the text and save "
                "the file as UTF-8",
            )
        )
    if missing_glyphs is not None and (missing := missing_glyphs("".join(cue.lines).replace("\ufffd", ""))):
        found.append(
            (
                "glyphs",
                f"the font has no glyph for {_codepoints(missing)}; use a font that covers this script "
                "or replace the characters",
            )
        )
    return found


def lint_cues(
    sub: SubtitleFile,
    *,
    fps: float = 25.0,
    rules: LintRules = LintRules(),
    missing_glyphs: Callable[[str], set[str]] | None = None,
) -> list[LintIssue]:
    """Check a read subtitle file's cues against the rules; issues sorted by line, then rule."""
    found: list[tuple[int, str, str]] = [
        (w.line, "dropped", f"{w.message}; {w.hint}" if w.hint else w.message) for w in sub.warnings
    ]
    # A skipped cue that would never have been on screen (it ends when it starts) loses nothing: not blocking.
    harmless = {w.line for w in sub.warnings if not w.shown}
    for cue in sub.cues:
        found.extend((cue.line, rule, message) for rule, message in _cue_issues(cue, rules, missing_glyphs))
    min_gap = rules.min_gap_frames / fps
    ordered = sorted(sub.cues, key=lambda c: (c.start, c.end, c.line))
    latest: Cue | None = None  # of the cues so far, the one that ends last
    for cue in ordered:
        if latest is not None:
            gap = cue.start - latest.end
            if gap < -_EPS / 2:
                found.append(
                    (
                        cue.line,
                        "overlap",
                        f"cue starts at {cue.start:.3f} s, {-gap:.3f} s before the cue at line {latest.line} ends "
                        f"({latest.end:.3f} s); end that cue earlier or start this one later",
                    )
                )
            elif _EPS / 2 < gap < min_gap - _EPS:
                found.append(
                    (
                        latest.line,
                        "gap",
                        f"gap of {gap:.3f} s to the next cue (line {cue.line}) is under {rules.min_gap_frames} frames "
                        f"at {fps:g} fps ({min_gap:.3f} s); close the gap or widen it to at least {min_gap:.3f} s",
                    )
                )
        if latest is None or cue.end > latest.end:
            latest = cue
    found.sort(key=lambda f: (f[0], RULES.index(f[1])))
    return [
        LintIssue(
            sub.path, line, rule, message, blocking=rule in BLOCKING and not (rule == "dropped" and line in harmless)
        )
        for line, rule, message in found
    ]


def lint_files(
    paths: Iterable[Path],
    *,
    strict: bool = False,
    fps: float = 25.0,
    rules: LintRules = LintRules(),
    missing_glyphs: Callable[[str], set[str]] | None = None,
) -> list[LintIssue]:
    """Read and lint each file; a file that cannot be read raises SubtitleError."""
    issues: list[LintIssue] = []
    for path in paths:
        sub = read_subtitles(Path(path), strict=strict)
        issues.extend(lint_cues(sub, fps=fps, rules=rules, missing_glyphs=missing_glyphs))
    return issues

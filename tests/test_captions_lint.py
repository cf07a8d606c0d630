"""Caption lint: each rule found in a file that breaks only that rule; a clean file passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.captions.lint import RULES, LintIssue, LintRules, count_chars, lint_cues, lint_files
from clipper.captions.read import SubtitleError, read_subtitles

CLEAN = """WEBVTT

00:00:01.000 --> 00:00:03.000
Hello there.

00:00:03.500 --> 00:00:06.000
This is a clean cue,
on two lines.

00:00:06.000 --> 00:00:06.833
Next!
"""

# rule -> (file content, line of the issue); each file breaks exactly that rule
VIOLATIONS = {
    "cps": ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nThirty characters in one sec.\n", 3),
    "line-length": ("WEBVTT\n\n00:00:01.000 --> 00:00:07.000\nThis single line has more than forty-two chars.\n", 3),
    "lines": ("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\none\ntwo\nthree\n", 3),
    "duration-short": ("WEBVTT\n\n00:00:01.000 --> 00:00:01.500\nHi\n", 3),
    "duration-long": ("WEBVTT\n\n00:00:01.000 --> 00:00:09.000\nHello\n", 3),
    "gap": ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nFirst\n\n00:00:03.040 --> 00:00:05.000\nSecond\n", 3),
    "overlap": ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nFirst\n\n00:00:02.500 --> 00:00:05.000\nSecond\n", 6),
    "empty": ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<i> </i>\n", 3),
    "dropped": ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nFine\n\n00:00:05.000 --> 00:00:04.000\nBackwards\n", 6),
    "encoding": ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nCaf\ufffd\n", 3),
}


def write(tmp_path: Path, content: str, name: str = "t.vtt") -> Path:
    """Write a UTF-8 file into tmp_path."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def lint(tmp_path: Path, content: str, name: str = "t.vtt", **kwargs: object) -> list[LintIssue]:
    """Write content and lint it."""
    return lint_cues(read_subtitles(write(tmp_path, content, name)), **kwargs)  # type: ignore[arg-type]


def test_clean_file_has_no_issues(tmp_path: Path) -> None:
    assert lint(tmp_path, CLEAN) == []
    assert lint(tmp_path, CLEAN, missing_glyphs=lambda text: set()) == []


@pytest.mark.parametrize("rule", VIOLATIONS)
def test_each_rule_is_found_alone(tmp_path: Path, rule: str) -> None:
    content, line = VIOLATIONS[rule]
    issues = lint(tmp_path, content)
    assert [(i.rule, i.line) for i in issues] == [(rule, line)]
    assert issues[0].path == tmp_path / "t.vtt"
    assert str(issues[0]).startswith(f"{tmp_path / 't.vtt'}:{line}: {rule}: ")


def test_every_rule_has_a_violation_test() -> None:
    assert set(VIOLATIONS) | {"glyphs"} == set(RULES)


def test_messages_give_value_limit_and_fix(tmp_path: Path) -> None:
    by_rule = {rule: lint(tmp_path, content)[0].message for rule, (content, _) in VIOLATIONS.items()}
    assert by_rule["cps"].startswith("29.0 characters per second (limit 17): 29 characters in 1.000 s")
    assert "split the cue or shorten the text" in by_rule["cps"]
    assert by_rule["line-length"].startswith("text line 1 of the cue has 47 characters (limit 42)")
    assert by_rule["lines"].startswith("cue has 3 lines (limit 2)")
    assert by_rule["duration-short"].startswith("cue lasts 0.500 s (minimum 0.833 s)")
    assert by_rule["duration-long"].startswith("cue lasts 8.000 s (maximum 7 s)")
    assert by_rule["gap"].startswith("gap of 0.040 s to the next cue (line 6) is under 2 frames at 25 fps (0.080 s)")
    assert by_rule["overlap"].startswith("cue starts at 2.500 s, 0.500 s before the cue at line 3 ends (3.000 s)")
    assert by_rule["empty"].startswith("cue has no visible text")
    assert "cue dropped" in by_rule["dropped"] and "end time must be later" in by_rule["dropped"]


def test_glyphs_rule_reports_missing_characters(tmp_path: Path) -> None:
    content = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nПривет, мир\n\n00:00:04.000 --> 00:00:06.000\nHello\n"
    seen: list[str] = []

    def latin_only(text: str) -> set[str]:
        seen.append(text)
        return {ch for ch in text if ord(ch) > 0x24F}

    issues = lint(tmp_path, content, missing_glyphs=latin_only)
    assert [(i.rule, i.line) for i in issues] == [("glyphs", 3)]
    assert issues[0].message.startswith("the font has no glyph for U+041F 'П', U+0432 'в'")  # sorted
    assert "U+0020" not in issues[0].message
    assert seen == ["Привет, мир", "Hello"]
    assert lint(tmp_path, content) == []  # without a font check, no glyph rule


def test_glyph_message_lists_sorted_code_points(tmp_path: Path) -> None:
    content = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nmi\n"
    issues = lint(tmp_path, content, missing_glyphs=lambda text: {"m", "i"})
    assert issues[0].message.startswith("the font has no glyph for U+0069 'i', U+006D 'm';")


def test_limits_are_configurable(tmp_path: Path) -> None:
    assert [i.rule for i in lint(tmp_path, CLEAN, rules=LintRules(max_cps=6.5))] == ["cps"]
    assert [i.rule for i in lint(tmp_path, CLEAN, rules=LintRules(max_chars_per_line=15))] == ["line-length"]
    assert [i.rule for i in lint(tmp_path, CLEAN, rules=LintRules(max_lines=1))] == ["lines"]
    assert [i.rule for i in lint(tmp_path, CLEAN, rules=LintRules(min_duration=1.0))] == ["duration-short"]
    assert [i.rule for i in lint(tmp_path, CLEAN, rules=LintRules(max_duration=2.0))] == ["duration-long"]


def test_gap_depends_on_the_frame_rate(tmp_path: Path) -> None:
    content = VIOLATIONS["gap"][0]
    assert [i.rule for i in lint(tmp_path, content, fps=25.0)] == ["gap"]
    assert lint(tmp_path, content, fps=60.0) == []  # 2 frames at 60 fps = 0.033 s
    exact = content.replace("00:00:03.040", "00:00:03.080")  # exactly 2 frames at 25 fps
    assert lint(tmp_path, exact) == []


def test_overlap_with_an_earlier_long_cue(tmp_path: Path) -> None:
    content = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:07.000\nLong cue\n\n00:00:02.000 --> 00:00:03.000\nInside\n\n"
        "00:00:04.000 --> 00:00:05.000\nAlso inside\n"
    )
    issues = lint(tmp_path, content)
    assert [(i.rule, i.line) for i in issues] == [("overlap", 6), ("overlap", 9)]
    assert "before the cue at line 3 ends" in issues[1].message


def test_srt_file_and_sorting(tmp_path: Path) -> None:
    content = (
        "1\n00:00:01,000 --> 00:00:01,500\nA line that is much too long to be read in time here\n\n"
        "2\n00:00:01,400 --> 00:00:02,000\nok\n"
    )
    issues = lint(tmp_path, content, name="t.srt")
    assert [(i.rule, i.line) for i in issues] == [
        ("cps", 2),
        ("line-length", 2),
        ("duration-short", 2),
        ("duration-short", 6),
        ("overlap", 6),
    ]


def test_character_count_ignores_combining_marks_and_format_characters() -> None:
    assert count_chars("مَرْحَبًا") == 5
    assert count_chars("\u200fabc\u200e") == 3
    assert count_chars("e\u0301") == 1


def test_lint_files_reads_each_file_and_propagates_errors(tmp_path: Path) -> None:
    clean = write(tmp_path, CLEAN, "clean.vtt")
    bad = write(tmp_path, VIOLATIONS["cps"][0], "fast.vtt")
    issues = lint_files([clean, bad])
    assert [(i.path.name, i.rule) for i in issues] == [("fast.vtt", "cps")]
    dropped = write(tmp_path, VIOLATIONS["dropped"][0], "dropped.vtt")
    assert [i.rule for i in lint_files([dropped])] == ["dropped"]
    with pytest.raises(SubtitleError) as info:
        lint_files([dropped], strict=True)
    assert info.value.where == f"{dropped}:6"
    broken = write(tmp_path, "not subtitles\n", "broken.vtt")
    with pytest.raises(SubtitleError):
        lint_files([clean, broken])


@pytest.mark.parametrize("rule", [*VIOLATIONS, "glyphs"])
def test_findings_a_render_stops_on_are_marked_blocking(tmp_path: Path, rule: str) -> None:
    content, _ = VIOLATIONS.get(rule, (CLEAN, 0))
    missing = (lambda text: {"?"} if "Hello" in text else set()) if rule == "glyphs" else None
    issues = [i for i in lint(tmp_path, content, missing_glyphs=missing) if i.rule == rule]
    assert issues
    assert all(i.blocking == (rule in ("dropped", "glyphs", "encoding")) for i in issues)
    assert all(str(i).endswith("(a render stops on this)") == i.blocking for i in issues)


def test_a_skipped_cue_that_would_never_show_is_not_blocking(tmp_path: Path) -> None:
    zero = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nFine\n\n00:00:04.000 --> 00:00:04.000\nNever shown\n"
    issues = lint(tmp_path, zero)
    assert [(i.rule, i.blocking) for i in issues] == [("dropped", False)]

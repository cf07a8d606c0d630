"""Every .vtt/.srt file of ../shared/corpus/subtitles either loads as a conforming parser reads it or is
rejected with a located error; never a traceback, never markup on screen.

Expectations come from beside the files (vtt.js: ``<stem>.json`` for the cue count, ``<stem>-proc.json``
for the displayed text) or from the table below (W3C web-platform-tests), never from a copy of the corpus.
Report: test-artifacts/subtitle-corpus.md.
"""

from __future__ import annotations

import json
import re
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS

from clipper.captions.read import SubtitleError, SubtitleFile, read_subtitles

SUBTITLES = CORPUS / "subtitles"
FILES = (
    sorted(p for p in SUBTITLES.rglob("*") if p.suffix in (".vtt", ".srt") and p.is_file())
    if SUBTITLES.is_dir()
    else []
)
pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not FILES, reason="../shared/corpus/subtitles is not beside this checkout"),
]

# W3C web-platform-tests, file parsing: cue counts (and cue texts where asserted) transcribed from the
# `assert_equals(cues.length, N)` / `cues[i].text` lines of web-platform-tests/wpt
# @2a5828b795abe89e88afbe0812d547f1e4e7bfbf:webvtt/parsing/file-parsing/support/<name>.test, whose inputs the
# corpus's vtt_generated/<name>.vtt were generated from. stylesheets-newlines and stylesheets-none assert only
# on style sheets; their counts follow from the spec's block algorithm (the second has no cue at all).
WPT_COUNTS = {
    "arrows.vtt": 6,
    "ids.vtt": 5,
    "newlines.vtt": 4,
    "nulls.vtt": 7,
    "regions-id.vtt": 4,
    "regions-old.vtt": 2,
    "regions-regionanchor.vtt": 20,
    "regions-scroll.vtt": 6,
    "regions-viewportanchor.vtt": 20,
    "settings-align.vtt": 13,
    "settings-line.vtt": 36,
    "settings-multiple.vtt": 2,
    "settings-position.vtt": 22,
    "settings-region.vtt": 9,
    "settings-size.vtt": 16,
    "settings-vertical.vtt": 8,
    "signature-no-newline.vtt": 0,
    "stylesheets-newlines.vtt": 2,
    "stylesheets-none.vtt": 0,
    "timings-negative.vtt": 4,
    "timings-omitted-hours.vtt": 3,
    "timings-too-long.vtt": 2,
    "timings-too-short.vtt": 2,
    "whitespace-chars.vtt": 3,
}
WPT_TEXTS = {
    "newlines.vtt": ["text1", "text2", "text3", "text4"],
    "nulls.vtt": ["text1", "text2", "\ufffdtext\ufffd3", "text4", "text5", "text6", "text7"],
    "settings-multiple.vtt": ["text1", "text2"],
    "timings-negative.vtt": ["text1", "text2", "text3", "text4"],
    "timings-omitted-hours.vtt": ["text1", "text2", "text3"],
    "timings-too-long.vtt": ["text1", "text2"],
    "timings-too-short.vtt": ["text1", "text2"],
    "whitespace-chars.vtt": ["   text1", "text2", "text3"],
}

_WPT = "webvtt_wpt/file-parsing/vtt_generated/"
_VTTJS = "webvtt_vttjs/"
_OUTDATED = "vtt.js (2019) predates the current spec"
# Files where clipper knowingly differs from the stored expectation: path -> reason. Each one must still
# differ (the list is checked both ways), so it cannot go stale.
KNOWN_DEVIATIONS = {
    _WPT + "nulls.vtt": "corpus generation caveat (SOURCES.md): the .test's '\\03' became U+0003 instead of "
    "NUL + '3', so cue 2's asserted text cannot appear; the count (7) and the other texts match",
    _WPT + "newlines.vtt": "the corpus input was generated from newlines.test @2a5828b, whose input has no blank lines "
    "between cues, so by the spec cue 0 is 'text1\\nlf'; upstream fixed the input in @414e670; count (4) matches",
    _WPT + "timings-negative.vtt": "deliberate: cues ending before or when they start are dropped with a warning "
    "(the spec keeps them but never shows them); all 4 are such cues, so the file is rejected",
    _VTTJS + "integration/arrows.vtt": "deliberate: its only cue is 00:00.000 --> 00:00.000, dropped as never visible",
    _VTTJS
    + "cue-times/max-spots-over-sixty.vtt": "deliberate: its only cue has start == end, dropped as never visible",
    _VTTJS + "cue-times/min-top-digits.vtt": f"{_OUTDATED}: '000:00.000' has a 3-digit first field, so it is hours "
    "and ':ss' is required; WPT timings-too-long.test lists it as invalid",
    _VTTJS + "cue-times/minimum-spots-over-sixty.vtt": f"{_OUTDATED}: '120:00.000' has a first field > 59, so it is "
    "hours and ':ss' is required (spec: collect a WebVTT timestamp)",
    _VTTJS + "file-layout/header-no-new-line.vtt": f"{_OUTDATED}: the header ends before a '-->' line, so the cue "
    "counts (WPT header-timings.html asserts 1 cue)",
    _VTTJS + "integration/id.vtt": f"{_OUTDATED}: a cue after a bare '-->' line counts (WPT arrows.test), 5 not 4",
    _VTTJS + "cuetext/escape-characters/incorrect.vtt": "deliberate: '&nbsp', '&lt', '&gt' without ';' are decoded "
    "as the current spec's HTML character references do; vtt.js keeps them literal",
}
MIN_MATCHING = 232  # measured; raise it when the reader gets better, never lower it silently

# Markup that must never reach the screen, and the files whose cue text really says it.
GARBAGE = re.compile(r"-->|</?[A-Za-z][\w.]*[ >]|&(?:[A-Za-z]+|#\d+|#x[\dA-Fa-f]+);|\{\\|[\ufeff\0]")
INTENDED_LITERALS = {
    _VTTJS + "cuetext/escape-characters/incorrect.vtt": "'&nbs;', '&g;' are not character references",
}


@dataclass
class Outcome:
    """What happened to one corpus file."""

    rel: str
    status: str  # loaded | rejected | traceback
    detail: str
    sub: SubtitleFile | None
    expected: dict[str, Any] | None
    problems: list[str]


def _dom_text(node: dict[str, Any]) -> str:
    """textContent of a vtt.js processed node, without ruby annotations (clipper draws base text only)."""
    if node.get("localName") == "rt":
        return ""
    if "data" in node:
        return str(node["data"])
    return "".join(_dom_text(child) for child in node.get("childNodes", []))


def _expected(path: Path) -> dict[str, Any] | None:
    rel = path.relative_to(SUBTITLES).as_posix()
    if rel.startswith(_WPT):
        name = path.name
        return {"count": WPT_COUNTS[name], "texts": WPT_TEXTS.get(name), "source": "wpt .test"}
    if not rel.startswith(_VTTJS):
        return None
    parsed, proc = path.with_name(path.stem + ".json"), path.with_name(path.stem + "-proc.json")
    expected: dict[str, Any] = {"source": "vtt.js json"}
    if parsed.is_file():
        expected["count"] = len(json.loads(parsed.read_text(encoding="utf-8"))["cues"])
    if proc.is_file() and (nodes := json.loads(proc.read_text(encoding="utf-8"))) is not None:
        expected["texts"] = [_dom_text(node) for node in nodes]
        expected.setdefault("count", len(nodes))
        expected["source"] += " + proc"
    return expected if "count" in expected else None


def _check(sub: SubtitleFile | None, expected: dict[str, Any]) -> list[str]:
    if sub is None:
        return [] if expected["count"] == 0 else [f"rejected, expected {expected['count']} cues"]
    if len(sub.cues) != expected["count"]:
        return [f"{len(sub.cues)} cues, expected {expected['count']}"]
    texts = expected.get("texts")
    if texts is None:
        return []
    return [
        f"cue {i} text {got!r}, expected {want!r}"
        for i, (cue, want) in enumerate(zip(sub.cues, texts, strict=True))
        if (got := "\n".join(cue.lines)) != want
    ]


def _run(path: Path) -> Outcome:
    rel = path.relative_to(SUBTITLES).as_posix()
    expected = _expected(path)
    sub: SubtitleFile | None = None
    try:
        sub = read_subtitles(path)
        status, detail = "loaded", f"{len(sub.cues)} cues, {len(sub.warnings)} warnings"
    except SubtitleError as error:
        status, detail = "rejected", error.render().replace(str(SUBTITLES) + "/", "").replace("\n", " ")
    except Exception:  # noqa: BLE001 - the point is to count them
        status, detail = "traceback", traceback.format_exc()
    problems = _check(sub, expected) if expected is not None and status != "traceback" else []
    return Outcome(rel, status, detail, sub, expected, problems)


def test_subtitle_corpus(artifacts: Path) -> None:
    assert {p.name for p in FILES if p.parent.as_posix().endswith(_WPT.rstrip("/"))} == set(WPT_COUNTS)
    outcomes = [_run(path) for path in FILES]
    counts: Counter[str] = Counter({"tracebacks": 0, "MISMATCHES": 0})
    for o in outcomes:
        if o.status == "traceback":
            counts["tracebacks"] += 1
        elif o.problems:
            counts["known deviations" if o.rel in KNOWN_DEVIATIONS else "MISMATCHES"] += 1
        elif o.expected is None:
            counts[f"{o.status} without expectation"] += 1
        elif o.status == "loaded":
            counts["loaded and matching"] += 1
        else:
            counts["rejected as expected (0 cues)"] += 1
        if o.status == "rejected":
            counts["rejected with error (all)"] += 1
    garbage = {
        o.rel: sorted({m for cue in o.sub.cues for line in cue.lines for m in GARBAGE.findall(line)})
        for o in outcomes
        if o.sub is not None and any(GARBAGE.search(line) for cue in o.sub.cues for line in cue.lines)
    }
    matching = counts["loaded and matching"] + counts["rejected as expected (0 cues)"]

    report = ["# Subtitle corpus run", "", f"{len(outcomes)} files (.vtt, .srt) under `{SUBTITLES}`.", ""]
    report += ["| outcome | files |", "|---|---|"]
    report += [f"| {name} | {n} |" for name, n in sorted(counts.items())]
    report += [f"| matching an expectation (loaded or rejected) | {matching} |", ""]
    report += ["## Known deviations (reported, by decision)", ""]
    for o in outcomes:
        if o.rel in KNOWN_DEVIATIONS:
            state = "; ".join(o.problems) or "NO LONGER DIFFERS"
            report.append(f"- `{o.rel}`: {state}. Why: {KNOWN_DEVIATIONS[o.rel]}")
    report += ["", "## Mismatches and tracebacks", ""]
    report += [
        f"- `{o.rel}` ({o.status}): {'; '.join(o.problems) or o.detail}"
        for o in outcomes
        if o.status == "traceback" or (o.problems and o.rel not in KNOWN_DEVIATIONS)
    ] or ["none"]
    report += ["", "## Markup-like text in loaded cues", ""]
    report += [f"- `{rel}`: {found} ({INTENDED_LITERALS.get(rel, 'UNEXPECTED')})" for rel, found in garbage.items()]
    report += ["", "## Every file", "", "| file | outcome | expectation | detail |", "|---|---|---|---|"]
    for o in outcomes:
        exp = "—" if o.expected is None else f"{o.expected['count']} cues ({o.expected['source']})"
        report.append(f"| `{o.rel}` | {o.status} | {exp} | {o.detail.splitlines()[-1] if o.detail else ''} |")
    text = "\n".join(report) + "\n"
    (artifacts / "subtitle-corpus.md").write_text(text, encoding="utf-8")
    print("\n".join(report[: report.index("## Every file")]))

    assert counts["tracebacks"] == 0, [o.detail for o in outcomes if o.status == "traceback"]
    assert counts["MISMATCHES"] == 0, [(o.rel, o.problems) for o in outcomes if o.problems]
    deviating = {o.rel for o in outcomes if o.problems}
    assert deviating == set(KNOWN_DEVIATIONS), "KNOWN_DEVIATIONS is out of date"
    assert set(garbage) <= set(INTENDED_LITERALS), garbage
    assert matching >= MIN_MATCHING

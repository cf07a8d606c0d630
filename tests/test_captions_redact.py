"""The redaction hook: caption words under a bleep become a marker, nothing else changes."""

from __future__ import annotations

from clipper.captions.redact import MARKER, redact
from clipper.captions.timing import TimedCue

CUE = TimedCue(100, 200, ("I was in Raqqa", "with Abu Omar then"), 7)


def test_words_under_a_bleep_are_replaced_and_the_rest_kept():
    # 32 characters over 100 frames: "Abu Omar" sits at characters 19–27 of the cue, frames ~159–184.
    [cue] = redact([CUE], [(165, 175)])
    assert cue.lines[0] == "I was in Raqqa"
    assert cue.lines[1] == f"with {MARKER} then"
    assert (cue.start, cue.end, cue.line) == (100, 200, 7)


def test_a_bleep_outside_the_cue_changes_nothing_and_one_over_all_leaves_markers_only():
    assert redact([CUE], [(0, 100), (200, 300)]) == [CUE]
    [cue] = redact([CUE], [(90, 210)])
    assert cue.lines == (MARKER, MARKER)


def test_in_doubt_a_word_touching_the_bleep_by_one_frame_is_redacted():
    # "Raqqa" ends at character 14 of 32: frame ~143.75; a bleep starting at frame 144 still takes it.
    [cue] = redact([CUE], [(144, 146)])
    assert "Raqqa" not in cue.lines[0]

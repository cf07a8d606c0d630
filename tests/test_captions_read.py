"""Reading WebVTT and SubRip: encodings, line endings, markup, SRT quirks, errors with file:line, fuzzing."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pytest

from clipper.captions.read import Cue, SubtitleError, SubtitleFile, read_subtitles
from clipper.errors import ClipperError

VTT = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nПривет, мир\nمرحبا\n\n00:00:03.000 --> 00:00:04.000\nsecond\n"
SRT = "1\n00:00:01,000 --> 00:00:02,500\nПривет, мир\nمرحبا\n\n2\n00:00:03,000 --> 00:00:04,000\nsecond\n"
EXPECTED = (
    Cue(1.0, 2.5, ("Привет, мир", "مرحبا"), 4),
    Cue(3.0, 4.0, ("second",), 8),
)
SRT_EXPECTED = (Cue(1.0, 2.5, ("Привет, мир", "مرحبا"), 2), Cue(3.0, 4.0, ("second",), 7))

ENCODINGS = {
    "utf-8": lambda s: s.encode("utf-8"),
    "utf-8-bom": lambda s: codecs.BOM_UTF8 + s.encode("utf-8"),
    "utf-16-le-bom": lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"),
    "utf-16-be-bom": lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"),
    "utf-32-le-bom": lambda s: codecs.BOM_UTF32_LE + s.encode("utf-32-le"),
    "utf-32-be-bom": lambda s: codecs.BOM_UTF32_BE + s.encode("utf-32-be"),
    "utf-16-le": lambda s: s.encode("utf-16-le"),
    "utf-16-be": lambda s: s.encode("utf-16-be"),
}
NEWLINES = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """Write content (text as UTF-8) into tmp_path/name and return the path."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_text(tmp_path: Path, content: str, name: str = "t.vtt", strict: bool = False) -> SubtitleFile:
    """Write content and read it back."""
    return read_subtitles(write(tmp_path, name, content), strict=strict)


def texts(sub: SubtitleFile) -> list[tuple[str, ...]]:
    """The lines of every cue."""
    return [cue.lines for cue in sub.cues]


def raises(tmp_path: Path, content: str | bytes, name: str = "t.vtt", strict: bool = False) -> SubtitleError:
    """Read content that must be rejected; return the error."""
    path = write(tmp_path, name, content)
    with pytest.raises(SubtitleError) as info:
        read_subtitles(path, strict=strict)
    return info.value


# --- encodings and line endings -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("newline", NEWLINES)
@pytest.mark.parametrize("fmt", ["vtt", "srt"])
def test_encodings_and_line_endings(tmp_path: Path, encoding: str, newline: str, fmt: str) -> None:
    text = (VTT if fmt == "vtt" else SRT).replace("\n", NEWLINES[newline])
    sub = read_subtitles(write(tmp_path, f"t.{fmt}", ENCODINGS[encoding](text)))
    assert sub.format == fmt
    assert sub.cues == (EXPECTED if fmt == "vtt" else SRT_EXPECTED)
    assert sub.warnings == ()
    assert sub.path == tmp_path / f"t.{fmt}"


def test_no_final_newline_and_mixed_line_endings(tmp_path: Path) -> None:
    sub = read_text(tmp_path, "WEBVTT\r\n\r00:00.000 --> 00:01.000\r\na\nb\r\r\n00:02.000 --> 00:03.000\nc")
    assert texts(sub) == [("a", "b"), ("c",)]
    assert [c.line for c in sub.cues] == [3, 7]


# --- WebVTT markup ------------------------------------------------------------------------------------------


def test_tags_are_dropped_and_their_text_kept(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path,
        "WEBVTT\n\n00:00.000 --> 00:02.000\n"
        "<v Roger Bingham>We are</v> <c.loud.x>in</c> <b>New</b> <i>York</i> <u>City</u> <lang en-US>now</lang>\n"
        "<00:00:01.000>and <00:01.500>then\n",
    )
    assert texts(sub) == [("We are in New York City now", "and then")]


def test_character_references_are_decoded(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path, "WEBVTT\n\n00:00.000 --> 00:02.000\n&amp; &lt;b&gt; a&nbsp;b &lrm;x&rlm; &#1605; &#x41;\n"
    )
    assert texts(sub) == [("& <b> a\u00a0b \u200ex\u200f \u0645 A",)]


def test_unclosed_tag_swallows_the_rest_of_the_cue(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path, "WEBVTT\n\n00:00.000 --> 00:02.000\nThis is </c awesome!\n\n00:03.000 --> 00:04.000\nx<v Bob\n"
    )
    assert texts(sub) == [("This is ",), ("x",)]


def test_ruby_annotations_are_dropped(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path,
        "WEBVTT\n\n00:00.000 --> 00:02.000\n<ruby>漢<rt>kan</rt>字<rt>ji</rt></ruby>です\n\n"
        "00:03.000 --> 00:04.000\n<ruby>No <rt>way!</ruby> ok\n\n"
        "00:05.000 --> 00:06.000\n<rt>not inside ruby: shown</rt>\n",
    )
    assert texts(sub) == [("漢字です",), ("No  ok",), ("not inside ruby: shown",)]


def test_settings_ids_notes_styles_regions_are_not_text(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path,
        "WEBVTT - a title\nKind: captions\n\nREGION\nid:fred width:40%\n\nSTYLE\n::cue { color: red }\n\n"
        "NOTE a comment\n-- still the comment\n\n"
        "intro\n00:00:01.000 --> 00:00:02.000 align:start line:0 position:10%,line-left size:50% vertical:rl\nA\n\n"
        "00:00:03.000 --> 00:00:04.000 bogus:value line:abc\nB\n",
    )
    assert sub.cues == (Cue(1.0, 2.0, ("A",), 14), Cue(3.0, 4.0, ("B",), 17))
    assert sub.warnings == ()


def test_nul_becomes_replacement_character(tmp_path: Path) -> None:
    sub = read_text(tmp_path, "WEBVTT\n\n00:00.000 --> 00:01.000\na\0b\n")
    assert texts(sub) == [("a\ufffdb",)]


def test_header_without_blank_line_before_first_cue(tmp_path: Path) -> None:
    # the spec ends the header before a '-->' line (WPT header-timings)
    assert texts(read_text(tmp_path, "WEBVTT\n00:00.000 --> 00:01.000\ntext\n")) == [("text",)]


def test_timestamps_per_spec(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path,
        "WEBVTT\n\n00:00.000 --> 00:01.000\na\n\n123:00:00.000 --> 123:00:01.500\nb\n\n"
        "00:00:0.000 --> 00:00:01.000\nbad: one-digit seconds\n\n00:00.00 --> 00:01.000\nbad: two fraction digits\n\n"
        "00:60.000 --> 01:00.000\nbad: 60 seconds\n",
    )
    assert [(c.start, c.end) for c in sub.cues] == [(0.0, 1.0), (442800.0, 442801.5)]
    assert [w.line for w in sub.warnings] == [9, 12, 15]
    assert all("cue skipped" in w.message for w in sub.warnings)


def test_a_cue_after_a_bad_block_still_counts(tmp_path: Path) -> None:
    sub = read_text(tmp_path, "WEBVTT\n\nstray text\n\n00:00.000 --> 00:01.000\nok\n")
    assert texts(sub) == [("ok",)]
    assert sub.warnings[0].line == 3
    assert "without a cue timing line" in sub.warnings[0].message


# --- SubRip quirks ------------------------------------------------------------------------------------------


def test_srt_markup(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path,
        '1\n00:00:01,000 --> 00:00:02,000\n<font color="#ff0000">red</font> <b>bold</b> <i>it</i>\n\n'
        "2\n00:00:03,000 --> 00:00:04,000\n{\\an8}top\\Nsecond\\hline\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\n2<3,5>1,4<6 shown {Y:i}\n",
        name="t.srt",
    )
    assert texts(sub) == [("red bold it",), ("top", "second\u00a0line"), ("2<3,5>1,4<6 shown",)]


def test_srt_without_indexes_blank_lines_and_with_dot_and_coordinates(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path,
        "00:00:01.000 --> 00:00:02.000  X1:10 X2:20 Y1:5 Y2:9\none\n2\n00:00:03,5 --> 00:00:04,000\ntwo\n"
        "00:00:05,000 --> 00:00:06,000\nthree\n",
        name="t.srt",
    )
    assert sub.cues == (Cue(1.0, 2.0, ("one",), 1), Cue(3.5, 4.0, ("two",), 4), Cue(5.0, 6.0, ("three",), 6))


def test_srt_block_without_timing_is_skipped_not_merged(tmp_path: Path) -> None:
    content = "1\n00:00:01,000 --> 00:00:02,000\none\n\n2\nCaption text #2\n\n3\n00:00:03,000 --> 00:00:04,000\nthree\n"
    sub = read_text(tmp_path, content, name="t.srt")
    assert texts(sub) == [("one",), ("three",)]
    assert [w.line for w in sub.warnings] == [5]
    assert "no timing line" in sub.warnings[0].message
    error = raises(tmp_path, content, name="t.srt", strict=True)
    assert error.where == f"{tmp_path / 't.srt'}:5"
    assert "00:00:01,000 --> 00:00:02,500" in error.hint


def test_srt_requires_milliseconds_and_valid_minutes(tmp_path: Path) -> None:
    sub = read_text(
        tmp_path,
        "1\n00:00:01 --> 00:00:10\nno ms\n\n2\n00:61:00,000 --> 00:62:00,000\nbad minutes\n\n"
        "3\n00:00:03,000 --> 00:00:04,000\nok\n",
        name="t.srt",
    )
    assert texts(sub) == [("ok",)]
    assert [w.line for w in sub.warnings] == [2, 6]
    assert "hh:mm:ss,mmm" in sub.warnings[0].message


def test_srt_empty_text_cue_is_kept(tmp_path: Path) -> None:
    sub = read_text(tmp_path, "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\nx\n", name="t.srt")
    assert texts(sub) == [(), ("x",)]


# --- format sniffing ----------------------------------------------------------------------------------------


def test_format_is_sniffed_from_content(tmp_path: Path) -> None:
    assert read_text(tmp_path, VTT, name="really-vtt.srt").format == "vtt"
    assert read_text(tmp_path, SRT, name="subs.txt").format == "srt"
    assert read_text(tmp_path, VTT, name="subs").format == "vtt"


def test_vtt_file_with_srt_content_is_rejected(tmp_path: Path) -> None:
    error = raises(tmp_path, SRT, name="captions.de.vtt")
    assert "SubRip" in error.message
    assert error.where == f"{tmp_path / 'captions.de.vtt'}:1"
    assert "rename the file to .srt" in error.hint


# --- errors -------------------------------------------------------------------------------------------------


def test_error_is_a_clipper_error_with_exit_code_2(tmp_path: Path) -> None:
    error = raises(tmp_path, "WEBVTTX\n\n00:00.000 --> 00:01.000\na\n")
    assert isinstance(error, ClipperError)
    assert error.exit_code == 2
    assert "first line must be 'WEBVTT'" in error.message
    assert error.where.endswith("t.vtt:1")
    assert error.render().startswith(f"{tmp_path / 't.vtt'}:1: not a WebVTT file")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    data = "WEBVTT\n\n00:00.000 --> 00:01.000\nÜber\n".encode("cp1252")
    error = raises(tmp_path, data)
    assert error.message == "not valid UTF-8 at line 4 (byte 0xdc)"
    assert error.where == f"{tmp_path / 't.vtt'}:4"
    assert "save the file as UTF-8" in error.hint


def test_broken_utf16_names_the_line(tmp_path: Path) -> None:
    data = codecs.BOM_UTF16_LE + "1\r\n00:00:01,000 --> 00:00:02,000\r\n".encode("utf-16-le") + b"\x00\xdc"
    error = raises(tmp_path, data, name="t.srt")
    assert error.message.startswith("not valid UTF-16 at line 3")
    assert error.where.endswith(":3")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.vtt", "", "empty file: no 'WEBVTT' signature"),
        ("t.srt", "\n \n", "empty file: no cues"),
        ("t.txt", "just some notes\n", "not a subtitle file"),
        ("t.vtt", "\nWEBVTT\n", "not a WebVTT file"),
        ("t.vtt", "00:00:01.000 --> 00:00:02.000\nHello\n", "the 'WEBVTT' first line is missing"),
        ("t.vtt", "1\n00:00:01,000 --> 00:00:02,000\nHello\n", "it holds SubRip (.srt) cues"),
        ("t.srt", "1\r\r\n00:00:01,000 --> 00:00:02,000\r\r\nHello\r\r\n", "line ends are CR CR LF"),
        ("t.vtt", "WEBVTT\r\r\n\r\r\n00:00:01.000 --> 00:00:02.000\r\r\nHello\r\r\n", "line ends are CR CR LF"),
    ],
)
def test_empty_and_unknown_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    error = raises(tmp_path, content, name=name)
    assert message in error.message
    assert error.where.endswith(f"{name}:1")
    assert error.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SubtitleError) as info:
        read_subtitles(tmp_path / "nope.vtt")
    assert info.value.where == str(tmp_path / "nope.vtt")
    assert "cannot read" in info.value.message


def test_bad_timing_warns_or_raises_in_strict_mode(tmp_path: Path) -> None:
    content = "WEBVTT\n\n00:00.000 --> 00:01.000\nok\n\n00:00:07.000 --> 00:00:1d.890\nbad\n"
    sub = read_text(tmp_path, content)
    assert texts(sub) == [("ok",)]
    assert [w.line for w in sub.warnings] == [6]
    assert "end time is not a valid WebVTT timestamp" in sub.warnings[0].message
    error = raises(tmp_path, content, strict=True)
    assert error.where.endswith("t.vtt:6")
    assert "end time is not a valid WebVTT timestamp" in error.message
    assert error.hint == "each cue needs a timing line like 00:00:01.000 --> 00:00:02.500"


@pytest.mark.parametrize("fmt", ["vtt", "srt"])
def test_cue_ending_before_it_starts_is_dropped_or_an_error(tmp_path: Path, fmt: str) -> None:
    sep = "." if fmt == "vtt" else ","
    head = "WEBVTT\n\n" if fmt == "vtt" else ""
    content = (
        f"{head}00:00:01{sep}000 --> 00:00:02{sep}000\nok\n\n"
        f"00:00:05{sep}000 --> 00:00:04{sep}000\nbackwards\n\n00:00:06{sep}000 --> 00:00:06{sep}000\nzero\n"
    )
    sub = read_text(tmp_path, content, name=f"t.{fmt}")
    assert texts(sub) == [("ok",)]
    line = 6 if fmt == "vtt" else 4
    assert [w.line for w in sub.warnings] == [line, line + 3]
    assert sub.warnings[0].message == "cue ends at 00:00:04.000, before it starts (00:00:05.000); cue dropped"
    assert "when it starts" in sub.warnings[1].message
    error = raises(tmp_path, content, name=f"t.{fmt}", strict=True)
    assert error.where.endswith(f"t.{fmt}:{line}")
    assert "end time must be later than the start time" in error.hint


def test_file_without_any_usable_cue_is_an_error(tmp_path: Path) -> None:
    error = raises(tmp_path, "WEBVTT\n\n\n00:00:00.00 --> 00:00:01.000\nshort fraction\n")
    assert error.message.startswith("no usable cue in the file; first problem: start time is not a valid")
    assert error.where.endswith(":4")


def test_vtt_with_only_a_header_has_no_cues(tmp_path: Path) -> None:
    sub = read_text(tmp_path, "WEBVTT\n\nNOTE nothing yet\n")
    assert sub.cues == () and sub.warnings == ()


def test_huge_numbers_are_not_a_crash(tmp_path: Path) -> None:
    huge = "9" * 5000
    sub = read_text(tmp_path, f"WEBVTT\n\n{huge}:00:00.000 --> {huge}:00:01.000\nx\n\n00:00.000 --> 00:01.000\nok\n")
    assert texts(sub) == [("ok",)]
    sub = read_text(
        tmp_path, f"1\n{huge}:00:00,000 --> 00:00:01,{huge}\nx\n\n2\n00:00:01,000 --> 00:00:02,000\nok\n", "t.srt"
    )
    assert texts(sub) == [("ok",)]


# --- fuzz ---------------------------------------------------------------------------------------------------

FUZZ_SEEDS = (
    "WEBVTT\n\nNOTE n\n\nid\n00:00:01.000 --> 00:00:02.000 align:start\n<v A>Hi &amp; <ruby>x<rt>y</ruby>\n\n"
    "00:02.000 --> 00:03.500\nline\n",
    "1\n00:00:01,000 --> 00:00:02,000\n<i>Hi</i> {\\an8}\\Nthere\n\n2\n00:00:03,000 --> 00:00:04,000\nok\n",
)
FUZZ_TOKENS = [b"-->", b"\n", b"\r", b"\0", b"<", b">", b"&", b":", b".", b",", b"9" * 30, b"\xff", b"\xfe", b"WEBVTT"]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:  # flip a byte
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a token
            out[at:at] = rng.choice(FUZZ_TOKENS)
        elif op == 2:  # truncate
            del out[at:]
        elif op == 3:  # delete a span
            del out[at : at + rng.randint(1, 8)]
        else:  # random bytes
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    return bytes(out)


def test_fuzz_never_raises_anything_but_subtitle_error(tmp_path: Path) -> None:
    rng = random.Random(20240905)
    outcomes = {"loaded": 0, "rejected": 0}
    for i in range(300):
        seed = FUZZ_SEEDS[i % 2]
        encode = rng.choice([lambda s: s.encode("utf-8"), lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le")])
        path = write(tmp_path, f"f{i}.{rng.choice(['vtt', 'srt', 'txt'])}", _mutate(rng, encode(seed)))
        try:
            sub = read_subtitles(path, strict=rng.random() < 0.3)
        except SubtitleError as error:
            assert error.where.startswith(str(path)) and error.message and error.hint
            outcomes["rejected"] += 1
        else:
            assert all(c.end > c.start and all("\n" not in line for line in c.lines) for c in sub.cues)
            outcomes["loaded"] += 1
    assert outcomes["loaded"] > 50 and outcomes["rejected"] > 50


def test_random_bytes_are_rejected_cleanly(tmp_path: Path) -> None:
    rng = random.Random(7)
    for i in range(50):
        path = write(tmp_path, f"r{i}.vtt", bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))))
        with pytest.raises(SubtitleError):
            read_subtitles(path)


def test_sidecars_written_for_the_clip_read_back_as_the_same_text(tmp_path):
    """What the VTT and SRT sidecars say is what was burned: markup characters, an arrow, blank lines."""
    from fractions import Fraction

    from clipper.captions.timing import TimedCue
    from clipper.render import write_caption_sidecars

    cues = [
        TimedCue(0, 25, ("Prices: 5 < 6 & 7 > 2",), 3),
        TimedCue(25, 50, ("Aleppo --> Gaziantep", "", "I <3 you"), 7),  # a line left blank by markup alone
        TimedCue(50, 60, ("",), 9),  # nothing to show: not written
        TimedCue(60, 90, ("He said <nothing> at all", "&amp; is not an entity here"), 11),
    ]
    vtt, srt = tmp_path / "c.vtt", tmp_path / "c.srt"
    write_caption_sidecars(cues, Fraction(25), vtt=vtt, srt=srt)
    want = [
        ((0.0, 1.0), ("Prices: 5 < 6 & 7 > 2",)),
        ((1.0, 2.0), ("Aleppo --> Gaziantep", "I <3 you")),
        ((2.4, 3.6), ("He said <nothing> at all", "&amp; is not an entity here")),
    ]
    got_vtt = [((c.start, c.end), c.lines) for c in read_subtitles(vtt, strict=True).cues]
    assert got_vtt == want
    # SubRip has no escapes: its readers take text as it is, and an arrow for a timing line, so it gets "→".
    srt_text = srt.read_text(encoding="utf-8")
    assert "5 < 6 & 7 > 2" in srt_text and "<nothing>" in srt_text and "Aleppo → Gaziantep" in srt_text
    assert [c.start for c in read_subtitles(srt, strict=True).cues] == [0.0, 1.0, 2.4]


@pytest.mark.parametrize("language", ["en", "ar", "ja"])
def test_a_line_left_empty_by_markup_lays_out_without_it(language):
    """`{\\an8}` or `<v Mary>` alone on a line reads as an empty line: it is measured as nothing, then dropped
    (HarfBuzz gives no positions for empty text, and the width sum crashed the render)."""
    from clipper.captions.fonts import font_for
    from clipper.captions.layout import lay_out, style_for

    font = font_for(language)
    assert font.width("", 40) == 0.0
    lines, _ = lay_out(["", "Top text"], font, style_for(1280, 720), where="t.srt:2")
    assert lines == ("Top text",)


def test_ass_override_blocks_left_in_a_webvtt_file_are_not_drawn(tmp_path):
    """Converters carry `{\\an8}` over from SRT/ASS into .vtt files; read literally, it was burned into the caption."""
    path = tmp_path / "c.en.vtt"
    path.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n{\\an8}Top text {\\i1}here\n", encoding="utf-8")
    [cue] = read_subtitles(path).cues
    assert cue.lines == ("Top text here",)

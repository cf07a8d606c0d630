"""Read WebVTT and SubRip files into plain-text cues, with file:line errors.

WebVTT follows the W3C "WebVTT: The Web Video Text Tracks Format" parser algorithm (the file parsing
steps, "collect a WebVTT block", timestamps, cue settings, and the cue text tokenizer reduced to what
plain text needs), so a file gives the cues a conforming parser gives. SubRip has no spec; it is read the
way common players read it (blank-line separated blocks, optional index, ``hh:mm:ss,mmm`` timings).

We do not read with webvtt-py (no longer a dependency; see docs/ARCHITECTURE.md): measured on the W3C and vtt.js
corpora, 0.6.0 accepts timestamps the spec rejects (9 extra "invalid" cues in WPT timings-too-short, 4 extra
"FAIL" cues in nulls), treats vertical tab as whitespace, leaves ``&amp;`` and unclosed tags as raw text on
screen, rejects whole files in strict mode where the spec skips one cue, and its errors never name a line.

Deliberate choices:

* Encodings: UTF-8 with or without BOM, UTF-16 and UTF-32 with a BOM, and without one when the file has NUL
  bytes and reads as UTF-16/32 with a timing arrow or signature in it (UTF-8 subtitles never do).
  Undecodable bytes are an error naming the line (the spec would show U+FFFD instead).
* Cue text becomes the plain lines to draw: tags are dropped, character references decoded, ruby ``<rt>``
  annotations dropped (burned-in captions show the base text), cue settings parsed and dropped, NUL becomes
  U+FFFD; ASS override blocks (``{\\an8}``) that converters leave in WebVTT files are dropped too. SRT
  ``<font>``/``<b>``/``{\\an8}`` markup is dropped, ``\\N`` breaks the line, ``\\h`` is a no-break space.
* A block a conforming parser skips (bad timing line, stray text) becomes a warning; so does a cue that
  ends before or when it starts (the spec keeps it, but it is never visible). ``strict=True`` raises instead.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clipper.errors import ClipperError

__all__ = ["Cue", "SubtitleError", "SubtitleFile", "SubtitleWarning", "read_subtitles"]

TIMING_HINT = "each cue needs a timing line like 00:00:01.000 --> 00:00:02.500"
SRT_TIMING_HINT = "each SubRip cue needs a timing line like 00:00:01,000 --> 00:00:02,500"
_MAX_HOUR_DIGITS = 6  # the spec allows any number; a million hours is no interview, and int() of 4300+ digits fails


class SubtitleError(ClipperError):
    """A subtitle file that cannot be read as written; exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Cue:
    """One cue: times in seconds, the plain text lines to draw, the 1-based line of its timing line."""

    start: float
    end: float
    lines: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class SubtitleWarning:
    """Something the reader skipped or dropped, at a 1-based line of the file."""

    line: int
    message: str
    hint: str = ""
    shown: bool = True  # the skipped text would have been on screen (a zero-length cue never is)


@dataclass(frozen=True)
class SubtitleFile:
    """A subtitle file as read: its format, usable cues, and what was skipped."""

    path: Path
    format: Literal["vtt", "srt"]
    cues: tuple[Cue, ...]
    warnings: tuple[SubtitleWarning, ...]

    @property
    def text(self) -> str:
        """Every cue's text, lines joined by spaces."""
        return " ".join(line for cue in self.cues for line in cue.lines)


def _error(path: Path, line: int, message: str, hint: str) -> SubtitleError:
    return SubtitleError(message, where=f"{path}:{line}", hint=hint)


# ---------------------------------------------------------------------------------------------------------
# Bytes to lines
# ---------------------------------------------------------------------------------------------------------

_BOMS = (  # UTF-32 first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _sniff_bomless(data: bytes) -> str:
    """UTF-16/32 without a BOM: NUL bytes, and decoding that way shows a timing arrow or the signature."""
    head = data[:4000]
    if b"\0" not in head:
        return "utf-8"
    for encoding, unit in (("utf-32-le", 4), ("utf-32-be", 4), ("utf-16-le", 2), ("utf-16-be", 2)):
        text = head[: len(head) - len(head) % unit].decode(encoding, errors="replace")
        if "\0" not in text and ("-->" in text or text.startswith("WEBVTT")):
            return encoding
    return "utf-8"


def _count_lines(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n") + 1


def _decode(data: bytes, path: Path) -> str:
    bom, encoding = next(((b, e) for b, e in _BOMS if data.startswith(b)), (b"", _sniff_bomless(data)))
    body = data[len(bom) :]
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        unit = 1 if encoding == "utf-8" else 4 if "32" in encoding else 2
        before = body[: exc.start - exc.start % unit].decode(encoding, errors="replace")
        name = encoding.upper().removesuffix("-LE").removesuffix("-BE")
        raise _error(
            path,
            _count_lines(before),
            f"not valid {name} at line {_count_lines(before)} (byte 0x{body[exc.start]:02x})",
            "save the file as UTF-8 (in most editors: Save As, encoding UTF-8)",
        ) from None


def _split_lines(text: str) -> list[str]:
    """NUL -> U+FFFD, CRLF/CR -> LF, then split; a final line terminator does not add a line."""
    lines = text.replace("\0", "\ufffd").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


# ---------------------------------------------------------------------------------------------------------
# WebVTT timestamps, timing lines and cue settings
# ---------------------------------------------------------------------------------------------------------

_WS = " \t\n\f\r"  # the spec's ASCII whitespace: NOT vertical tab
_TIMESTAMP = re.compile(r"(\d+):(\d{2})(?::(\d{2}))?\.(\d{3})", re.ASCII)


def _parse_timestamp(s: str, pos: int) -> tuple[int, int] | None:
    """Collect a WebVTT timestamp at pos: (milliseconds, end position), or None."""
    m = _TIMESTAMP.match(s, pos)
    if not m:
        return None
    first, second, third, frac = m.groups()
    if third is None:  # mm:ss.ttt; a first field of 3+ digits or > 59 would be hours, and then :ss is required
        if len(first) != 2 or int(first) > 59:
            return None
        hours, minutes, seconds = 0, int(first), int(second)
    else:
        if len(first) > _MAX_HOUR_DIGITS:
            return None
        hours, minutes, seconds = int(first), int(second), int(third)
    if minutes > 59 or seconds > 59:
        return None
    end = m.end()
    if end < len(s) and s[end].isascii() and s[end].isdigit():
        return None  # too many fraction digits ("00:00:00.0000")
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + int(frac), end


def _skip_ws(s: str, pos: int) -> int:
    while pos < len(s) and s[pos] in _WS:
        pos += 1
    return pos


def _parse_timings(line: str) -> tuple[int, int, str] | str:
    """(start ms, end ms, settings text), or what is wrong."""
    pos = _skip_ws(line, 0)
    start = _parse_timestamp(line, pos)
    if start is None:
        return "start time is not a valid WebVTT timestamp ([hh:]mm:ss.ttt)"
    pos = _skip_ws(line, start[1])
    if not line.startswith("-->", pos):
        return "expected '-->' after the start time"
    pos = _skip_ws(line, pos + 3)
    end = _parse_timestamp(line, pos)
    if end is None:
        return "end time is not a valid WebVTT timestamp ([hh:]mm:ss.ttt)"
    return start[0], end[0], line[end[1] :]


_PERCENT = re.compile(r"\d+(?:\.\d+)?%", re.ASCII)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
_SETTING_ALIGNS = {"line": ("start", "center", "end"), "position": ("line-left", "center", "line-right")}


def _is_percent(v: str) -> bool:
    return bool(_PERCENT.fullmatch(v)) and float(v[:-1]) <= 100


def _valid_setting(name: str, value: str) -> str | None:
    """The setting's value if the spec accepts it, else None (the spec then ignores the setting)."""
    head, _, tail = value.partition(",")
    if name in ("line", "position"):
        if not (_is_percent(head) or (name == "line" and _NUMBER.fullmatch(head))):
            return None
        return value if tail in _SETTING_ALIGNS[name] else head
    accepted = {
        "vertical": value in ("rl", "lr"),
        "size": _is_percent(value),
        "align": value in ("start", "center", "end", "left", "right"),
        "region": True,
    }
    return value if accepted.get(name, False) else None


def _parse_settings(text: str) -> dict[str, str]:
    """The cue settings with valid values. They are validated, then dropped: burned-in placement is ours."""
    out: dict[str, str] = {}
    for token in re.split(r"[ \t\n\f\r]+", text):
        name, sep, value = token.partition(":")
        if sep and name and value and (valid := _valid_setting(name, value)) is not None:
            out[name] = valid
    return out


# ---------------------------------------------------------------------------------------------------------
# WebVTT cue text to plain text
# ---------------------------------------------------------------------------------------------------------

_CUE_TAGS = ("c", "i", "b", "u", "ruby", "rt", "v", "lang")


def _vtt_plain(text: str) -> str:
    """Cue text to plain text: the spec's tokenizer and tree building, keeping only what is drawn.

    A tag runs to the next ``>`` (or the end of the cue when unclosed); timestamp tags and unknown tags
    vanish; text inside ``<rt>`` (ruby annotation, only when inside ``<ruby>``) is dropped.
    """
    parts: list[str] = []
    stack: list[str] = []
    in_rt = 0  # depth of open <rt> elements
    pos = 0
    while pos < len(text):
        lt = text.find("<", pos)
        data = text[pos:] if lt < 0 else text[pos:lt]
        if data and not in_rt:
            parts.append(html.unescape(data))
        if lt < 0:
            break
        gt = text.find(">", lt + 1)
        tag = text[lt + 1 :] if gt < 0 else text[lt + 1 : gt]
        pos = len(text) if gt < 0 else gt + 1
        closing = tag.startswith("/")
        name = re.split(r"[ \t\n\f\r.]", tag[1:] if closing else tag, maxsplit=1)[0]
        if not closing:
            if name in _CUE_TAGS and (name != "rt" or (stack and stack[-1] == "ruby")):
                stack.append(name)
                in_rt += name == "rt"
        elif stack and stack[-1] == name:
            in_rt -= stack.pop() == "rt"
        elif name == "ruby" and stack[-2:] == ["ruby", "rt"]:
            del stack[-2:]
            in_rt -= 1
    return "".join(parts)


# ASS override blocks ({\an8}, {\i1}) are plain text to a WebVTT parser, but subtitle converters carry them over from
# SRT/ASS files and no editor means them to be read: drawn, "{\an8}" sat in front of the caption (QA sweep).
_VTT_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")


def _vtt_lines(text: str) -> list[str]:
    plain = _VTT_ASS_OVERRIDE.sub("", _vtt_plain(text))
    return plain.split("\n") if plain else []


# ---------------------------------------------------------------------------------------------------------
# WebVTT file and blocks ("WebVTT parser algorithm", "collect a WebVTT block")
# ---------------------------------------------------------------------------------------------------------

_Timing = tuple[int, int, int]  # start ms, end ms, line


def _parse_vtt(lines: list[str], path: Path) -> tuple[list[tuple[_Timing, str]], list[SubtitleWarning]]:
    """Raw cues ((start, end, line), cue text) and warnings; raises on a missing signature."""
    if not lines:
        raise _error(path, 1, "empty file: no 'WEBVTT' signature", "a WebVTT file starts with a line 'WEBVTT'")
    first = lines[0]
    if not (first == "WEBVTT" or (first.startswith("WEBVTT") and first[6] in " \t")):
        raise _error(
            path,
            1,
            f"not a WebVTT file: the first line must be 'WEBVTT' (found {first[:40]!r})",
            "make the first line exactly 'WEBVTT' (optionally followed by a space and a title), then a blank line",
        )
    n = len(lines)
    cues: list[tuple[_Timing, str]] = []
    warnings: list[SubtitleWarning] = []
    seen_cue = False

    def collect_block(i: int, in_header: bool) -> tuple[tuple[_Timing, str] | None, int]:
        nonlocal seen_cue
        start, line_count, prev, buffer = i, 0, i, ""
        seen_arrow = False
        timing: _Timing | None = None
        while True:
            line, line_no = lines[i], i + 1
            i += 1
            line_count += 1
            if "-->" in line:
                if not in_header and (line_count == 1 or (line_count == 2 and not seen_arrow)):
                    seen_arrow, prev = True, i
                    parsed = _parse_timings(line)
                    if isinstance(parsed, str):
                        timing = None
                        warnings.append(
                            SubtitleWarning(line_no, f"{parsed}: {line.strip()[:60]!r}; cue skipped", TIMING_HINT)
                        )
                    else:
                        _parse_settings(parsed[2])  # validated and dropped (the spec ignores invalid ones)
                        timing, buffer, seen_cue = (parsed[0], parsed[1], line_no), "", True
                else:  # a later '-->' line starts the next block
                    return (None if timing is None else (timing, buffer)), prev
            elif line == "":
                break
            else:
                if not in_header and line_count == 2 and not seen_cue and timing is None:
                    for keyword in ("STYLE", "REGION"):  # style sheets and regions are dropped
                        if buffer.startswith(keyword) and not buffer[len(keyword) :].strip(_WS):
                            buffer = ""
                buffer = f"{buffer}\n{line}" if buffer else line
                prev = i
            if i >= n:
                break
        if not seen_arrow and not in_header:
            head = lines[start]
            is_note = head.startswith("NOTE") and head[4:5] in ("", " ", "\t")
            if not is_note and not head.startswith(("STYLE", "REGION")):
                warnings.append(
                    SubtitleWarning(
                        start + 1, f"text without a cue timing line (it would be left out): {head[:40]!r}", TIMING_HINT
                    )
                )
        return (None if timing is None else (timing, buffer)), i

    i = 1
    if i < n and lines[i] != "":
        _, i = collect_block(i, in_header=True)
    while i < n:
        if lines[i] == "":
            i += 1
            continue
        cue, i = collect_block(i, in_header=False)
        if cue is not None:
            cues.append(cue)
    return cues, warnings


# ---------------------------------------------------------------------------------------------------------
# SubRip
# ---------------------------------------------------------------------------------------------------------

_SRT_TIME = r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"[ \t]*{_SRT_TIME}[ \t]*-->[ \t]*{_SRT_TIME}(?:[ \t].*)?$", re.ASCII)  # may end in X1:…
_SRT_TAG = re.compile(r"</?[A-Za-z][^<>]*>")  # <i>, </font>, <font color=..>; not "2<3,5>1"
_SRT_OVERRIDE = re.compile(r"\{\\[^{}]*\}|\{[A-Za-z]:[^{}]*\}")  # {\an8}, {\i1}, {Y:i}
_SRT_INDEX = re.compile(r"[ \t]*\d+[ \t]*")


def _srt_ms(h: str, m: str, s: str, frac: str) -> int | None:
    if len(h) > _MAX_HOUR_DIGITS or int(m) > 59 or int(s) > 59:
        return None
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(frac.ljust(3, "0"))


def _srt_plain(line: str) -> list[str]:
    """Drop HTML-like and ASS override tags; \\N (and \\n) break the line, \\h is a no-break space."""
    text = html.unescape(_SRT_OVERRIDE.sub("", _SRT_TAG.sub("", line))).replace("\\h", "\u00a0")
    return [part.strip(" \t") for part in re.split(r"\\[Nn]", text)]


def _srt_timing(line: str) -> tuple[int, int] | None:
    m = _SRT_TIMING.match(line)
    if not m:
        return None
    g = m.groups()
    start, end = _srt_ms(*g[:4]), _srt_ms(*g[4:])
    return None if start is None or end is None else (start, end)


def _parse_srt(lines: list[str]) -> tuple[list[tuple[_Timing, list[str]]], list[SubtitleWarning]]:
    """Raw cues ((start, end, line), plain lines) and warnings."""
    cues: list[tuple[_Timing, list[str]]] = []
    warnings: list[SubtitleWarning] = []
    i, n = 0, len(lines)
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        block_start = j = i  # the timing line is the block's first or second line
        if _srt_timing(lines[j]) is None and j + 1 < n and lines[j + 1].strip() and _srt_timing(lines[j + 1]):
            j += 1
        timing = _srt_timing(lines[j])
        if timing is None:
            while i < n and lines[i].strip():
                i += 1
            arrow = next((x for x in range(block_start, i) if "-->" in lines[x]), None)
            if arrow is not None:
                msg = f"timing line is not hh:mm:ss,mmm --> hh:mm:ss,mmm: {lines[arrow].strip()[:60]!r}; block skipped"
                warnings.append(SubtitleWarning(arrow + 1, msg, SRT_TIMING_HINT))
            else:
                msg = f"block {lines[block_start].strip()[:40]!r} has no timing line; block skipped"
                warnings.append(SubtitleWarning(block_start + 1, msg, SRT_TIMING_HINT))
            continue
        k = j + 1
        text: list[str] = []
        while k < n and lines[k].strip():
            # a missing blank line: a timing line, or "<index>\n<timing>", starts the next cue
            if _srt_timing(lines[k]) or (k + 1 < n and _SRT_INDEX.fullmatch(lines[k]) and _srt_timing(lines[k + 1])):
                break
            text.extend(_srt_plain(lines[k]))
            k += 1
        cues.append(((timing[0], timing[1], j + 1), text))
        i = k
    return cues, warnings


# ---------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------


def _looks_like_srt(lines: list[str]) -> bool:
    """The first non-blank line is an SRT timing line, or an index followed by one."""
    body = [line for line in lines[:50] if line.strip()][:2]
    if not body:
        return False
    return _srt_timing(body[0]) is not None or (
        len(body) == 2 and _SRT_INDEX.fullmatch(body[0]) is not None and _srt_timing(body[1]) is not None
    )


def _sniff_format(lines: list[str], path: Path) -> Literal["vtt", "srt"]:
    suffix = path.suffix.lower()
    if lines and lines[0].startswith("WEBVTT"):
        return "vtt"
    if _looks_like_srt(lines):
        if suffix == ".vtt":
            timing = next(line for line in lines if "-->" in line)
            if "," not in timing.split("-->")[0]:  # WebVTT timings ('.' before the milliseconds): only the header lacks
                raise _error(
                    path,
                    1,
                    "not a WebVTT file: the 'WEBVTT' first line is missing",
                    "add a line 'WEBVTT' and a blank line at the top of the file",
                )
            raise _error(
                path,
                1,
                "not a WebVTT file: it holds SubRip (.srt) cues and has no 'WEBVTT' first line",
                "rename the file to .srt, or convert it: add 'WEBVTT' and a blank line at the top and write "
                "timings with '.' before the milliseconds",
            )
        return "srt"
    if suffix in (".srt", ".vtt"):
        return "srt" if suffix == ".srt" else "vtt"
    if any("-->" in line for line in lines):
        return "srt"
    raise _error(
        path,
        1,
        "not a subtitle file: no 'WEBVTT' first line and no SubRip timing line",
        "use a WebVTT (.vtt) or SubRip (.srt) file",
    )


def read_subtitles(path: Path, *, strict: bool = False) -> SubtitleFile:
    """Read a WebVTT or SubRip file into plain-text cues; raise SubtitleError naming file:line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubtitleError(
            f"cannot read the subtitle file: {exc.strerror or exc}", where=str(path), hint="check the path"
        ) from None
    text = _decode(data, path).removeprefix("\ufeff")
    if text.count("\r\r\n") * 2 > text.count("\n"):
        # Windows line ends converted to Windows line ends again: read as written (CR and CRLF each end a line),
        # every line would be followed by a blank one and every cue's text cut from its timing line.
        raise _error(
            path,
            1,
            "line ends are CR CR LF (Windows line ends converted twice): each line reads as followed by a blank one",
            "save the file again with LF or CRLF line ends (your editor's line-ending setting, or dos2unix)",
        )
    lines = _split_lines(text)
    fmt = _sniff_format(lines, path)
    raw: list[tuple[_Timing, list[str]]]
    if fmt == "vtt":
        vtt, warnings = _parse_vtt(lines, path)
        raw = [(timing, _vtt_lines(text)) for timing, text in vtt]
    else:
        if not any(line.strip() for line in lines):
            raise _error(path, 1, "empty file: no cues", SRT_TIMING_HINT)
        raw, warnings = _parse_srt(lines)
    cues: list[Cue] = []
    for (start, end, line), text in raw:
        if end <= start:
            warnings.append(
                SubtitleWarning(
                    line,
                    f"cue ends at {_clock(end)}, {'when' if end == start else 'before'} it starts ({_clock(start)}); "
                    "cue dropped",
                    "fix the timing line: the end time must be later than the start time",
                    shown=end < start,  # a cue ending when it starts shows nothing: skipping it loses nothing
                )
            )
            continue
        cues.append(Cue(start / 1000, end / 1000, tuple(text), line))
    warnings.sort(key=lambda w: w.line)
    if strict and warnings:
        raise _error(path, warnings[0].line, warnings[0].message, warnings[0].hint)
    if not cues and warnings:
        first = warnings[0]
        raise _error(path, first.line, f"no usable cue in the file; first problem: {first.message}", first.hint)
    return SubtitleFile(path, fmt, tuple(cues), tuple(warnings))


def _clock(ms: int) -> str:
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"

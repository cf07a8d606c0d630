"""Burned-in captions as a viewer sees them: drawn inside the platform's safe zone in every script, Arabic in the
right order, on the right frames of a cut clip, with matching VTT/SRT sidecars."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import ffmpeg_run, rgb_frames
from PIL import Image

from clipper.captions.burn import write_burn_files
from clipper.captions.fonts import font_for, is_rtl, script_of, with_script
from clipper.captions.layout import LaidOutCue, ass_document, lay_out, style_for
from clipper.captions.read import SubtitleError, read_subtitles
from clipper.ffmpeg import ffmpeg_env, ffmpeg_exe

TEXTS = {
    "en": "They promised us paradise. What they gave us was war, fear and the death of our friends.",
    "ar": "قال إنهم وعدونا بالجنة، لكنهم أعطونا الحرب والخوف وموت أصدقائنا في عام 2014.",
    "ru": "Они обещали нам рай. А дали войну, страх и смерть наших друзей.",
    "ja": "彼らは私たちに天国を約束しました。でも与えられたのは戦争と恐怖でした。",
}


def draw(lang: str, lines_in: list[str], size: tuple[int, int], work: Path, *, alignment: int = 2) -> np.ndarray:
    """Render one frame of black with the cue drawn by libass, as clipper would; return it as grey levels."""
    w, h = size
    lang = with_script(lang, script_of(lang, " ".join(lines_in)))  # as the plan decides it for the whole file
    font, style = font_for(lang), style_for(w, h)
    lines, em = lay_out(lines_in, font, style, where="test")
    files = write_burn_files([LaidOutCue(0, 5, lines, em, 1)], font, style, Fraction(25), lang, work)
    if alignment != 2:
        files.ass.write_text(
            ass_document([LaidOutCue(0, 5, lines, em, 1)], font, style, Fraction(25), lang, alignment=alignment)
        )
    png = work / "frame.png"
    r = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-y", "-f", "lavfi", "-i", f"color=c=black:s={w}x{h}:r=25:d=0.2"]
        + ["-vf", f"subtitles=filename={files.ass}:fontsdir={files.fonts_dir}", "-frames:v", "1", str(png)],
        capture_output=True,
        text=True,
        env=ffmpeg_env(),
    )
    assert r.returncode == 0, r.stderr
    assert "fallback" not in r.stderr and "Glyph 0x" not in r.stderr, r.stderr
    return np.asarray(Image.open(png).convert("L")).astype(int)


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)], ids=["landscape", "portrait"])
@pytest.mark.parametrize("lang", list(TEXTS))
def test_captions_are_drawn_inside_the_safe_zone_only(tmp_path, artifacts, lang, size):
    grey = draw(lang, [TEXTS[lang]], size, tmp_path)
    Image.fromarray(grey.astype(np.uint8)).save(artifacts / f"caption-{lang}-{size[0]}x{size[1]}.png")
    style = style_for(*size)
    ys, xs = np.nonzero(grey > 200)  # the white glyphs (the outline is black on black)
    assert len(xs) > 500, "no caption text drawn"
    assert xs.min() >= style.left and xs.max() < size[0] - style.right, (xs.min(), xs.max())
    assert ys.min() >= style.top and ys.max() < size[1] - style.bottom, (ys.min(), ys.max())
    # Bottom-centred: the text sits in the lower part of the zone, around the middle.
    assert abs((xs.min() + xs.max()) / 2 - size[0] / 2) < size[0] * 0.05
    assert ys.max() > size[1] - style.bottom - 0.2 * style.zone_height


def _changed_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.nonzero((np.abs(a - b) > 60).any(axis=0))[0]


@pytest.mark.parametrize(
    "lines",
    [
        ["قال المتحدث إن المفاوضات ستستمر", "حتى نهاية الأسبوع المقبل في العاصمة."],  # a wrapped second line
        ["ISIS وعدتنا بالجنة في عام 2014."],  # starts with a Latin word, ends with a number and a stop
    ],
    ids=["wrapped", "latin-first"],
)
@pytest.mark.parametrize("lang", ["ar", "ku"])  # Kurdish in Arabic letters (Sorani) under the code 'ku'
def test_arabic_full_stop_is_drawn_at_the_left_end(tmp_path, artifacts, lines, lang):
    # Right-aligned (where an Arabic line starts), the same cue with and without its final full stop: if the stop
    # is at the left end, only columns left of the stop-less text change; drawn at the wrong end, the line moves.
    with_stop = draw(lang, lines, (1280, 720), tmp_path / "a", alignment=3)
    without = draw(lang, [*lines[:-1], lines[-1].rstrip(".")], (1280, 720), tmp_path / "b", alignment=3)
    Image.fromarray(with_stop.astype(np.uint8)).save(artifacts / f"caption-{lang}-full-stop-{len(lines)}-lines.png")
    rows = np.nonzero((without > 50).any(axis=1))[0]
    last_line = rows[rows > rows.max() - 40]  # the bottom line holds the stop
    a, b = with_stop[last_line.min() : last_line.max() + 1], without[last_line.min() : last_line.max() + 1]
    changed = _changed_columns(a, b)
    ink = np.nonzero((b > 50).any(axis=0))[0]
    assert changed.size > 0, "the full stop was not drawn"
    assert changed.max() < ink.min(), f"full stop not at the left end: changed {changed.min()}–{changed.max()}, "
    f"text {ink.min()}–{ink.max()}"


def _grey_clip(path: Path, seconds: float) -> Path:
    ffmpeg_run(
        ["-f", "lavfi", "-i", f"color=c=0x404040:s=320x240:r=25:d={seconds}"]
        + ["-f", "lavfi", "-i", f"sine=f=300:sample_rate=48000:d={seconds}"]
        + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)]
    )
    return path


def _caption_frames(path: Path) -> list[int]:
    return [i for i, f in enumerate(rgb_frames(path)) if (f.min(axis=2) > 200).sum() > 30]


def test_source_timed_cues_land_on_the_right_frames_of_a_cut_clip(tmp_path, write_manifest, render_manifest):
    _grey_clip(tmp_path / "src.mp4", 10)
    (tmp_path / "subs.en.vtt").write_text(
        "WEBVTT\n\n"
        "00:00:00.200 --> 00:00:00.900\nbefore the first cut\n\n"  # outside every cut: dropped
        "00:00:02.500 --> 00:00:05.500\nstraddles two cuts\n\n"  # clamped to [2.5, 3) and [5, 5.5), joined
        "00:00:08.200 --> 00:00:09.000\ninside the third cut\n",
        encoding="utf-8",
    )
    doc = write_manifest(
        {"cam": "src.mp4"},
        [
            {"source": "cam", "in": 1, "out": 3},
            {"source": "cam", "in": 5, "out": 6},
            {"source": "cam", "in": 8, "out": 9.5},
        ],
        cards={"intro": {"text": "x", "seconds": 1, "color": "#ff0000", "background": "#000000"}},
    )
    text = doc.read_text().replace("outputs:", "subtitles:\n  en: subs.en.vtt\noutputs:")
    doc.write_text(text)
    [r] = render_manifest(doc)
    # intro 25 frames; cut 1 = clip 0–49 (source 1–3 s), cut 2 = 50–74 (5–6 s), cut 3 = 75–111 (8–9.5 s).
    expected = set(range(25 + 38, 25 + 63)) | set(range(25 + 80, 25 + 100))
    seen = set(_caption_frames(r.path))
    assert seen ^ expected <= {25 + 37, 25 + 38, 25 + 62, 25 + 63, 25 + 79, 25 + 80, 25 + 99, 25 + 100}, sorted(
        seen ^ expected
    )
    assert len(seen) >= len(expected) - 4
    vtt = read_subtitles(r.path.with_suffix(".vtt"))
    srt = read_subtitles(r.path.with_suffix(".srt"))
    assert (
        [c.lines for c in vtt.cues]
        == [c.lines for c in srt.cues]
        == [("straddles two cuts",), ("inside the third cut",)]
    )
    assert [(c.start, c.end) for c in vtt.cues] == [(2.52, 3.52), (4.2, 5.0)]
    side = json.loads(r.sidecar.read_text())["captions"]
    assert side["cues"] == 2 and side["cues_outside_the_cuts"] == 1


def _clip_with_subtitles(tmp_path: Path, write_manifest, name: str, text: str) -> Path:
    """A 3 s grey clip whose manifest burns `text` (saved as `name`, UTF-8) as its English captions."""
    _grey_clip(tmp_path / "src.mp4", 3)
    (tmp_path / name).write_text(text, encoding="utf-8")
    doc = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 3}])
    doc.write_text(doc.read_text().replace("outputs:", f"subtitles:\n  en: {name}\noutputs:"))
    return doc


@pytest.mark.parametrize(
    ("name", "text", "line", "says"),
    [
        pytest.param(
            "subs.en.vtt", "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nsnow ☃ man\n", 3, "U+2603", id="no-glyph"
        ),
        # The parser makes a NUL into U+FFFD (as the WebVTT spec says), which was burned in as "�" (QA sweep).
        pytest.param(
            "subs.en.vtt",
            "WEBVTT\n\n00:00:00.500 --> 00:00:01.000\nfine\n\n00:00:01.000 --> 00:00:02.000\nnul\x00byte\n",
            6,
            "U+FFFD",
            id="nul-byte",
        ),
        # A broken timing line made the reader skip the cue (as a conforming parser does): the render published
        # without it and exited 0, validate only warned (QA sweep).
        pytest.param(
            "subs.en.srt",
            "1\n00:00:00,500 --> 00:00:01,000\nfine\n\n2\n00:00:01,0x0 --> 00:00:02,000\nlost line\n",
            6,
            "skipped",
            id="skipped-cue",
        ),
    ],
)
def test_a_caption_that_cannot_be_shown_as_written_stops_the_render_at_its_line(
    tmp_path, write_manifest, render_manifest, name, text, line, says
):
    doc = _clip_with_subtitles(tmp_path, write_manifest, name, text)
    with pytest.raises(SubtitleError) as e:
        render_manifest(doc)
    assert e.value.where.endswith(f"{name}:{line}") and says in e.value.message
    assert not (tmp_path / "out" / "clip").exists() or not list((tmp_path / "out" / "clip").glob("*.mp4"))


def test_a_zero_length_cue_is_skipped_without_stopping_the_render(tmp_path, write_manifest, render_manifest):
    # It shows nothing, so skipping it loses nothing; exported SRT files carry them (found in review).
    srt = "1\n00:00:00,500 --> 00:00:01,000\nfine\n\n2\n00:00:01,500 --> 00:00:01,500\nnever shown\n"
    [result] = render_manifest(_clip_with_subtitles(tmp_path, write_manifest, "subs.en.srt", srt))
    assert "fine" in result.path.with_suffix(".vtt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("lang", "text", "script", "rtl"),
    [
        ("ku", "Ez ji Kobanê me. Em çûn sûkê.", "latin", False),  # Kurmanji
        ("ku", "من خەڵکی کۆبانێم. چووینە بازاڕ.", "arabic", True),  # Sorani under the same code
        ("ckb", "من خەڵکی کۆبانێم.", "arabic", True),
        ("ku-Arab", "Ez ji Kobanê me.", "arabic", True),  # a script subtag wins over the text
        ("az-Arab", "", "arabic", True),
        ("sr-Latn", "Ja sam iz Beograda.", "latin", False),
        ("ar", "ISIS ISIS ISIS في عام", "arabic", True),  # a one-script language keeps its script whatever the text
        ("en", "", "latin", False),
        ("dv-Thaa", "", "latin", True),  # a script without a bundled font keeps its direction
        ("ur-Aran", "", "arabic", True),
        ("ar-EG", "", "arabic", True),  # a region, not a script
    ],
)
def test_the_script_of_captions_follows_a_subtag_then_the_text_of_two_script_languages(lang, text, script, rtl):
    assert script_of(lang, text) == script
    tagged = with_script(lang, script_of(lang, text))
    assert script_of(tagged) == script and is_rtl(tagged) == rtl


def test_a_cue_that_cannot_fit_stops_validate_before_any_analysis(tmp_path, write_manifest):
    from clipper.errors import ClipperError
    from clipper.render import prepare

    doc = _clip_with_subtitles(tmp_path, write_manifest, "long.en.vtt", LONG_VTT)
    with pytest.raises(ClipperError, match="a caption needs .* lines, more than fit") as info:
        prepare(doc)  # what validate runs; rendering would have analysed faces first
    assert info.value.where == f"{tmp_path / 'long.en.vtt'}:3"


LONG_VTT = "WEBVTT\n\n00:00:00.300 --> 00:00:01.500\n" + "word " * 400 + "\n"

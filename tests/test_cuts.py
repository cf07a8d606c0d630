"""Frame-exact cuts with audio in sync, across rates, variable-rate, rotated, odd-sized and silent sources."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from media import click_times, ffmpeg_run, numbered_video, read_frame_numbers, read_frames

from clipper.media import probe

pytestmark = pytest.mark.slow


def _codes_without_cards(codes: list[int], intro: int) -> list[int]:
    return codes[intro:]


def test_three_segments_land_on_exact_frames_with_intro(tmp_path, write_manifest, render_manifest):
    src = numbered_video(tmp_path / "src.mp4", frames=200, fps="25")
    m = write_manifest(
        {"cam": "src.mp4"},
        [
            {"source": "cam", "in": 0.4, "out": 1.2},  # frames 10..29
            {"source": "cam", "in": "00:00:02:03", "out": "00:00:03:00"},  # SMPTE: 53..74
            {"source": "cam", "in": "00:00:05.000", "out": "00:00:06.000"},  # 125..149
        ],
        cards={"intro": {"text": "intro", "seconds": 1}},
    )
    [result] = render_manifest(m)
    codes = read_frame_numbers(result.path)
    assert codes[:25] == [-1] * 25, "the intro card shows no source frame"
    expected = list(range(10, 30)) + list(range(53, 75)) + list(range(125, 150))
    assert _codes_without_cards(codes, 25) == expected
    assert src.exists()


def test_audio_stays_in_sync_across_every_segment(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=300, fps="25")
    m = write_manifest(
        {"cam": "src.mp4"},
        [
            {"source": "cam", "in": 0.6, "out": 1.4},  # frames 15..34: the click of frame 25
            {"source": "cam", "in": 4.0, "out": 4.8},  # 100..119: starts on a click
            {"source": "cam", "in": 7.48, "out": 8.2},  # 187..204: the click of frame 200
        ],
        cards={"intro": {"text": "intro", "seconds": 0.6}},
    )
    [result] = render_manifest(m)
    frames = read_frames(result.path)
    frame_of_click = {code: t for t, code, _ in frames if code >= 0 and code % 25 == 0}
    assert sorted(frame_of_click) == [25, 100, 200]
    clicks = click_times(result.path)
    assert len(clicks) == 3, clicks
    one_frame = 1 / 25
    for click, code in zip(clicks, sorted(frame_of_click), strict=True):
        assert abs(click - frame_of_click[code]) <= one_frame, (code, click, frame_of_click[code])


@pytest.mark.parametrize("fps", ["30000/1001", "24"])
def test_cuts_exact_at_other_rates(tmp_path, write_manifest, render_manifest, fps):
    numbered_video(tmp_path / "src.mp4", frames=150, fps=fps, audio=False)
    m = write_manifest(
        {"cam": "src.mp4"},
        [{"source": "cam", "in": "00:00:01:07", "out": "00:00:02:00"}, {"source": "cam", "in": 3.5, "out": 4.5}],
    )
    [result] = render_manifest(m)
    rate = Fraction(fps)
    nominal = -(-rate.numerator // rate.denominator)
    first = list(range(nominal + 7, 2 * nominal))
    lo, hi = (int(Fraction(7, 2) * rate + Fraction(1, 2)), int(Fraction(9, 2) * rate + Fraction(1, 2)))
    assert read_frame_numbers(result.path) == first + list(range(lo, hi))
    with av.open(str(result.path)) as c:
        assert Fraction(c.streams.video[0].average_rate) == rate


def test_sixty_fps_becomes_thirty_keeping_every_other_frame(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=180, fps="60", audio=False)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 1.0, "out": 2.0}])
    [result] = render_manifest(m)
    assert read_frame_numbers(result.path) == list(range(60, 120, 2))


def test_variable_rate_source_becomes_constant_rate(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=150, fps="25", vfr=True, audio=False)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 1.0, "out": 4.0}])
    [result] = render_manifest(m)
    frames = read_frames(result.path)
    assert len(frames) == 75
    for k in range(1, len(frames)):
        assert frames[k][0] - frames[k - 1][0] == pytest.approx(1 / 25, abs=1e-3)
    codes = [c for _, c, _ in frames]
    assert all(c >= 0 for c in codes)
    # Every shown frame is the source frame on screen at that moment (the latest one at or before it).
    for k, code in enumerate(codes):
        wanted = 25 + k
        shown = wanted if wanted % 3 != 2 else wanted - 1
        assert abs(code - shown) <= 1, (k, code, shown)


def test_rotated_source_is_shown_upright(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=50, fps="25", size=(320, 240), rotate=90, audio=False)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 1}], platforms=["whatsapp-status"])
    [result] = render_manifest(m)
    frames = read_frames(result.path)
    assert [c for _, c, _ in frames] == list(range(25))
    # The code was drawn upright and the file tagged "display turned 90°": the rendered picture shows
    # it turned by exactly that much, i.e. the display rotation was applied to the pixels.
    assert {seen for _, _, seen in frames} == {90}
    with av.open(str(result.path)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (720, 1280)


@pytest.mark.parametrize("scan", ["coded", "declared"])
def test_interlaced_source_keeps_frame_exact_cuts(tmp_path, write_manifest, render_manifest, scan):
    """Deinterlacing is frame for frame: cuts land on the same frames. "coded": x264 coded it as fields, the decoder
    flags every frame; "declared": the container says top field first and the decoder flags nothing."""
    plain = numbered_video(tmp_path / "plain.mp4", frames=75, fps="25", audio=False)
    if scan == "coded":
        src = tmp_path / "src.mp4"
        interlaced = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-flags", "+ildct+ilme"]
        ffmpeg_run(["-i", str(plain), *interlaced, "-x264-params", "tff=1", str(src)])
    else:
        src = tmp_path / "src.mkv"
        ffmpeg_run(["-i", str(plain), "-c:v", "copy", "-field_order", "tt", str(src)])
    assert probe(src).interlace == {"coded": "flagged", "declared": "tff"}[scan]
    m = write_manifest(
        {"cam": src.name}, [{"source": "cam", "in": 0.4, "out": 2.0}, {"source": "cam", "in": 2.6, "out": 3}]
    )
    [result] = render_manifest(m)
    assert read_frame_numbers(result.path) == list(range(10, 50)) + list(range(65, 75))


def test_odd_sized_source_renders(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=50, fps="25", size=(321, 241), audio=False, pix_fmt="yuv444p")
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0.2, "out": 1.2}])
    [result] = render_manifest(m)
    assert read_frame_numbers(result.path) == list(range(5, 30))


def test_source_without_audio_gets_silence(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=50, fps="25", audio=False)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 2}])
    [result] = render_manifest(m)
    with av.open(str(result.path)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.sample_rate == 48000
        peak = max(float(abs(f.to_ndarray()).max()) for f in c.decode(a))
    assert peak < 1e-4


def test_source_with_late_start_timestamps(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=100, fps="25", start_offset_s=10.0)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 1, "out": 2}])
    [result] = render_manifest(m)
    assert read_frame_numbers(result.path) == list(range(25, 50))


def test_segments_from_two_sources_with_different_rates(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "a.mp4", frames=75, fps="25")
    numbered_video(tmp_path / "b.mp4", frames=90, fps="30")
    m = write_manifest(
        {"a": "a.mp4", "b": "b.mp4"},
        [{"source": "a", "in": 1, "out": 2}, {"source": "b", "in": 1, "out": 2}],
    )
    [result] = render_manifest(m)
    codes = read_frame_numbers(result.path)
    # Output runs at 30 fps (the highest source rate): the 25 fps cut is 30 frames long.
    assert len(codes) == 60
    assert codes[30:] == list(range(30, 60))
    assert sorted(set(codes[:30])) == list(range(25, 50))


def test_numbered_video_reader_sees_its_own_source(tmp_path: Path):
    path = numbered_video(tmp_path / "n.mp4", frames=30, fps="25")
    assert read_frame_numbers(path) == list(range(30))


@pytest.mark.parametrize("reframe", ["pad-blur", "letterbox"])
def test_a_source_of_one_frame_renders_that_frame(tmp_path, write_manifest, render_manifest, reframe):
    # pad-blur's background (sampled 5 times a second) came out empty for a one-frame source, and the render
    # failed with "has no video stream" naming its temporary file (found by a QA sweep).
    numbered_video(tmp_path / "still.mp4", frames=1, size=(320, 320), audio=False)
    m = write_manifest({"cam": "still.mp4"}, [{"source": "cam", "in": 0, "out": 0.04}], platforms=["tiktok"])
    m.write_text(m.read_text().replace("outputs:\n", f"outputs:\n  reframe: {reframe}\n"))
    [result] = render_manifest(m)
    assert read_frame_numbers(result.path) == [0]


def test_a_picture_size_change_midway_keeps_the_cut_and_its_masks(tmp_path, write_manifest, render_manifest):
    # A video call or DVR recording: 320x180 for 2 s, then 640x360, one stream. The filter graph was rebuilt at
    # the change: the cut came out as frames of the second part only, and masks were placed for the first size
    # (QA sweep). A magenta marker sits under the region in both parts; the parts differ in colour.
    from media import ffmpeg_run

    for name, (w, h), colour in (("a", (320, 180), "red"), ("b", (640, 360), "blue")):
        box = f"drawbox=x={w // 10}:y={h // 10}:w={w // 5}:h={h // 5}:color=magenta:t=fill"
        ffmpeg_run(
            ["-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r=25:d=2", "-f", "lavfi", "-i", "sine=d=2"]
            + ["-vf", box, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
            + (["-output_ts_offset", "2"] if name == "b" else [])
            + ["-f", "mpegts", str(tmp_path / f"{name}.ts")]
        )
    ffmpeg_run(["-i", f"concat:{tmp_path / 'a.ts'}|{tmp_path / 'b.ts'}", "-c", "copy", str(tmp_path / "src.ts")])
    m = write_manifest(
        {"cam": "src.ts"},
        [{"source": "cam", "in": 0, "out": 3}],
        regions=[{"box": [0.1, 0.1, 0.2, 0.2], "mode": "solid"}],
    )
    [r] = render_manifest(m)
    frames = [f.to_ndarray(format="rgb24").astype(int) for f in av.open(str(r.path)).decode(video=0)]
    assert len(frames) == 75
    reds = [k for k, f in enumerate(frames) if f[..., 0].mean() > f[..., 2].mean()]
    assert 45 <= len(reds) <= 52 and reds == list(range(len(reds))), reds  # 2 s of the first part, then the second
    for k, f in enumerate(frames):
        magenta = (f[..., 0] > 150) & (f[..., 2] > 150) & (f[..., 1] < 100)
        assert magenta.sum() == 0, f"frame {k}: {magenta.sum()} marker pixels unmasked"

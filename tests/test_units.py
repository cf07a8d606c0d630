"""Pure rules, checked without rendering: timecodes, presets, rates, masks, encode settings, argv, manifest schema."""

from __future__ import annotations

import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from conftest import manifest_text
from media import numbered_video
from pydantic import ValidationError

from clipper.graph import EncodeSettings, mask_block_px, region_pixels, render_cmd
from clipper.manifest import Region, json_schema, load_manifest
from clipper.media import timeline_rate
from clipper.plan import Variant, _capped_bitrate, _preview_size, plan_clip
from clipper.presets import MB, PRESETS, PREVIEW_HEIGHT, output_fps
from clipper.render import probe_sources
from clipper.timecode import format_clock, parse_timecode

REPO = Path(__file__).resolve().parents[1]
NTSC = Fraction(30000, 1001)
NTSC_60 = Fraction(60000, 1001)


# ------------------------------------------------------------------------------------------- timecode


@pytest.mark.parametrize(
    ("written", "fps", "frame"),
    [
        (12, Fraction(25), 300),  # int seconds
        (12.4, Fraction(25), 310),  # float seconds
        ("12.5", Fraction(30), 375),  # seconds as text
        ("01:02:03.040", Fraction(25), 93076),  # HH:MM:SS.mmm
        ("01:12.400", Fraction(25), 1810),  # MM:SS.mmm
        ("00:00:02:03", Fraction(25), 53),  # SMPTE at 25
        ("00:01:00:15", NTSC, 1815),  # non-drop SMPTE at 29.97 counts 30 labels a second
        ("01:00:00;00", NTSC, 107892),  # drop-frame: one hour is 107892 frames
        ("00:01:00;02", NTSC, 1800),  # the first label after the minute's two skipped ones
        ("00:10:00;00", NTSC, 17982),  # every tenth minute keeps its labels
        ("00:01:00;04", NTSC_60, 3600),  # 59.94 drops four labels a minute
    ],
)
def test_each_written_form_names_the_expected_frame(written, fps, frame):
    assert parse_timecode(written).to_frame(fps) == frame


def test_smpte_seconds_count_at_the_sources_rate():
    tc = parse_timecode("00:00:01:00")
    assert tc.to_seconds(Fraction(25)) == 1
    assert tc.to_seconds(NTSC) == Fraction(1001, 1000)


def test_smpte_without_a_rate_says_it_needs_one():
    with pytest.raises(ValueError, match="frame rate"):
        parse_timecode("00:00:01:00").to_seconds(None)


def test_clock_and_seconds_forms_are_exact_fractions():
    assert parse_timecode("00:41:12.400").seconds == Fraction(24724, 10)
    assert parse_timecode(3725.5).seconds == Fraction(7451, 2)
    assert parse_timecode(0.1).seconds == Fraction(1, 10)  # not the binary float 0.1000000000000000055…


@pytest.mark.parametrize("value", [1e308, "1e400", "1e10000000", 3_600_001, "1000:00:00.001", "99999:00:00"])
def test_times_beyond_a_thousand_hours_are_typos_not_frames(value):
    with pytest.raises(ValueError, match="more than 1000 hours"):
        parse_timecode(value)
    assert parse_timecode("999:59:59.999").seconds < 3_600_000


@pytest.mark.parametrize("label", ["00:01:00;00", "00:01:00;01", "00:02:00;01", "01:01:00;00"])
def test_drop_frame_labels_that_are_skipped_are_errors(label):
    with pytest.raises(ValueError, match="skips"):
        parse_timecode(label).to_frame(NTSC)


def test_drop_frame_at_a_rate_without_drop_frame_is_an_error():
    with pytest.raises(ValueError, match="29.97 or 59.94"):
        parse_timecode("00:00:01;00").to_frame(Fraction(25))


@pytest.mark.parametrize(
    ("label", "fps"),
    [("00:00:01:25", Fraction(25)), ("00:00:01:30", NTSC), ("00:00:01;30", NTSC), ("00:00:01:24", Fraction(24))],
)
def test_frame_field_at_or_above_the_nominal_rate_is_an_error(label, fps):
    with pytest.raises(ValueError, match="must be below"):
        parse_timecode(label).to_frame(fps)


def test_last_frame_label_of_a_second_is_accepted():
    assert parse_timecode("00:00:01:24").to_frame(Fraction(25)) == 49
    assert parse_timecode("00:00:01:29").to_frame(NTSC) == 59


@pytest.mark.parametrize("value", [-1, -0.5, "-1.5", float("inf"), float("nan")])
def test_negative_or_infinite_seconds_are_rejected_asking_for_seconds_of_zero_or_more(value):
    with pytest.raises(ValueError, match="0 seconds or more"):
        parse_timecode(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_rejected_naming_seconds_and_clock_time(value):
    with pytest.raises(ValueError) as e:
        parse_timecode(value)
    assert "seconds" in str(e.value) and "HH:MM:SS.mmm" in str(e.value) and "SMPTE" in str(e.value)


@pytest.mark.parametrize("value", ["abc", "", "1/2", "-00:00:01", "1:2:3:4:5", "00:00:01:2", "12 s", "1,5"])
def test_garbage_is_rejected_naming_every_accepted_form(value):
    with pytest.raises(ValueError) as e:
        parse_timecode(value)
    message = str(e.value)
    for form in ("seconds (12.5)", "HH:MM:SS.mmm", "SMPTE HH:MM:SS:FF"):
        assert form in message, message


@pytest.mark.parametrize("value", ["00:60:00.000", "00:00:60", "00:61:00:00", "00:00:75:00"])
def test_minutes_or_seconds_of_60_or_more_are_errors(value):
    with pytest.raises(ValueError, match="below 60"):
        parse_timecode(value)


@pytest.mark.parametrize(
    ("seconds", "frame"),
    [(1.02, 26), (1.019, 25), (1.0199, 25), (1.021, 26), (0.019, 0), (0.021, 1), ("1.040", 26)],
)
def test_seconds_snap_to_the_nearest_frame_boundary(seconds, frame):
    assert parse_timecode(seconds).to_frame(Fraction(25)) == frame


@pytest.mark.parametrize("seconds", ["0", "0.04", "59.999", "3725.5", "36000.001", "86399.999"])
def test_format_clock_round_trips_through_the_parser(seconds):
    exact = Fraction(seconds)
    text = format_clock(exact)
    assert re.fullmatch(r"\d{2,}:\d{2}:\d{2}\.\d{3}", text), text
    assert parse_timecode(text).seconds == exact


def test_format_clock_spells_hours_minutes_seconds_and_milliseconds():
    assert format_clock(3725.5) == "01:02:05.500"
    assert format_clock(Fraction(1001, 1000)) == "00:00:01.001"


# -------------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    ("source", "output"),
    [
        (Fraction(25), Fraction(25)),
        (NTSC, NTSC),
        (Fraction(60), Fraction(30)),
        (Fraction(50), Fraction(25)),
        (NTSC_60, NTSC),
        (Fraction(120), Fraction(30)),
        (Fraction(48), Fraction(24)),
        (Fraction(24), Fraction(24)),
    ],
)
def test_output_rate_keeps_up_to_30_and_divides_by_the_smallest_whole_factor(source, output):
    assert output_fps(source) == output


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_has_an_even_frame_size(name):
    p = PRESETS[name]
    assert p.width % 2 == 0 and p.height % 2 == 0, (p.width, p.height)


def _readme_presets() -> dict[str, tuple[int, int, float | None, int | None]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Platform presets", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header == ["platform", "size", "longest", "largest file"], header
    assert set(rows[1].replace("|", "").strip()) <= {"-", ":", " "}, rows[1]
    table = {}
    for row in rows[2:]:
        name, size, longest, largest = (c.strip() for c in row.strip("|").split("|"))
        w, h = (int(n) for n in size.split("x"))
        seconds = None if longest == "—" else float(longest.removesuffix(" s"))
        nbytes = None if largest == "—" else int(largest.removesuffix(" MB")) * MB
        table[name] = (w, h, seconds, nbytes)
    return table


def test_readme_preset_table_matches_the_presets_in_code():
    in_code = {p.name: (p.width, p.height, p.max_seconds, p.max_bytes) for p in PRESETS.values()}
    in_readme = _readme_presets()
    assert list(in_readme) == list(in_code), "README lists other platforms (or in another order) than presets.py"
    assert in_readme == in_code, "README's preset table drifted from clipper/presets.py"


# ------------------------------------------------------------------------------------------ frame rate


@pytest.mark.parametrize("rate", [Fraction(25), NTSC, Fraction(24000, 1001), Fraction(60)])
def test_a_constant_rate_file_counts_at_its_own_rate(rate):
    assert timeline_rate(rate, rate) == (rate, False)


def test_an_average_a_hair_off_a_standard_rate_is_that_rate_and_constant():
    assert timeline_rate(Fraction(2997, 100), NTSC) == (NTSC, False)


def test_variable_rate_with_dropped_frames_counts_at_the_base_rate():
    assert timeline_rate(Fraction("17.24"), Fraction(25)) == (Fraction(25), True)


def test_a_phones_120_hz_clock_is_not_taken_as_its_frame_rate():
    rate, variable = timeline_rate(Fraction("29.8"), Fraction(120))
    assert variable
    assert 29 < rate <= 30


# --------------------------------------------------------------------------------------- region masks


def test_region_pixels_round_outward():
    # 0.25*101 = 25.25 → 25; 0.75*101 = 75.75 → 76: the box grows, never shrinks.
    assert region_pixels((0.25, 0.25, 0.5, 0.5), 101, 101) == (25, 25, 51, 51)
    x, y, w, h = region_pixels((0.62, 0.10, 0.20, 0.25), 1920, 1080)
    assert x <= 0.62 * 1920 and y <= 0.10 * 1080
    assert x + w >= 0.82 * 1920 and y + h >= 0.35 * 1080


def test_region_pixels_clamp_to_the_frame():
    assert region_pixels((0.5, 0.5, 0.50009, 0.50009), 101, 99) == (50, 49, 51, 50)
    assert region_pixels((0, 0, 1, 1), 320, 240) == (0, 0, 320, 240)


def test_every_box_the_manifest_accepts_maps_inside_the_frame():
    # A box starting at the frame's edge covers nothing: rejected before any render.
    with pytest.raises(ValidationError, match="past the frame"):
        Region.model_validate({"box": [1.0, 0.2, 0.0001, 0.5]})
    box = Region.model_validate({"box": [0.9999, 0.2, 0.0001, 0.5]}).box
    x, y, w, h = region_pixels(box, 320, 240)
    assert x >= 0 and y >= 0 and w >= 1 and h >= 1
    assert x + w <= 320 and y + h <= 240


def test_mask_blocks_are_never_below_16_px_nor_more_than_3_across():
    for short in range(1, 1500):
        for long_side in (short, short + 7, 3 * short):
            block = mask_block_px(long_side, short)
            assert block >= 16, (long_side, short, block)
            assert short / block <= 3, (long_side, short, block)
            assert mask_block_px(short, long_side) == block
    assert mask_block_px(40, 40) == 16
    assert mask_block_px(300, 1000) == 100
    assert mask_block_px(640, 80) == 27  # a line of text boxed tightly: under 3 blocks tall


# ------------------------------------------------------------------------------------ encode settings


def _variant(platform: str, *, preview: bool = False, bitrate: int | None = None) -> Variant:
    p = PRESETS[platform]
    w, h = _preview_size(p) if preview else (p.width, p.height)
    return Variant("en", platform, w, h, f"c.en.{platform}.mp4", p.max_bytes, bitrate, preview=preview)


def test_previews_encode_superfast_without_a_ceiling():
    s = EncodeSettings.for_variant(_variant("youtube", preview=True))
    assert s.preset == "superfast"
    assert s.max_bitrate is None
    assert EncodeSettings.for_variant(_variant("youtube")).preset != "superfast"


def test_a_size_capped_variant_takes_the_lower_of_its_size_bitrate_and_the_pixel_ceiling():
    assert EncodeSettings.for_variant(_variant("whatsapp-status", bitrate=1_760_000)).max_bitrate == 1_760_000
    # x at 1280x720: the size cap allows 61 Mb/s for a minute, the frame size only 5.3 Mb/s.
    assert EncodeSettings.for_variant(_variant("x", bitrate=61_280_000)).max_bitrate == 5_333_333


def test_a_re_encode_after_a_size_overshoot_scales_the_ceiling_by_the_overshoot_and_10_percent_more():
    first = EncodeSettings.for_variant(_variant("whatsapp-status", bitrate=1_760_000))
    retry = first.shrunk_to(measured_bytes=20 * MB, cap_bytes=16 * MB)
    assert retry.max_bitrate == pytest.approx(1_760_000 * 16 / 20 * 0.9, abs=1)
    assert (retry.preset, retry.crf) == (first.preset, first.crf)
    again = retry.shrunk_to(measured_bytes=16 * MB + 1, cap_bytes=16 * MB)
    assert again.max_bitrate < retry.max_bitrate * 0.9 + 1


def test_an_uncapped_variant_gets_the_pixel_ceiling():
    assert EncodeSettings.for_variant(_variant("youtube")).max_bitrate == 12_000_000


def test_the_ceiling_scales_with_pixel_count():
    full_hd = EncodeSettings.for_variant(_variant("youtube")).max_bitrate
    hd = EncodeSettings.for_variant(_variant("telegram")).max_bitrate
    portrait = EncodeSettings.for_variant(_variant("tiktok")).max_bitrate
    assert full_hd == 12_000_000
    assert portrait == full_hd  # same pixels, turned
    assert hd == pytest.approx(full_hd * (1280 * 720) / (1920 * 1080), abs=1)


# ---------------------------------------------------------------------------------------------- plan


def test_whatsapp_bitrate_fits_16_mb_with_headroom_at_30_and_60_seconds():
    p = PRESETS["whatsapp-status"]
    assert _capped_bitrate(p, 30) == 3_680_000  # 16 MB * 8 * 0.9 / 30 s - 160 kb/s audio
    assert _capped_bitrate(p, 60) == 1_760_000
    for seconds in (30, 60):
        total_bytes = (_capped_bitrate(p, seconds) + 160_000) * seconds / 8
        assert total_bytes <= 0.9 * 16 * MB


def test_uncapped_platforms_have_no_size_bitrate():
    assert _capped_bitrate(PRESETS["youtube"], 30) is None


@pytest.mark.parametrize("name", list(PRESETS))
def test_preview_size_keeps_aspect_with_even_sides_and_a_360_short_side(name):
    p = PRESETS[name]
    w, h = _preview_size(p)
    assert min(w, h) == PREVIEW_HEIGHT == 360
    assert w % 2 == 0 and h % 2 == 0
    assert abs(w / h - p.width / p.height) < 2 / min(w, h)
    assert (w > h) == (p.width > p.height)


# ---------------------------------------------------------------------------------------- render argv


def _values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


TITLE = "Zebra Quartz Title — محمد"
SOURCE_NAME = "defector 07 secret-interview.mp4"
CARD_TEXT = "Unmistakable Card Words"


@pytest.fixture(scope="module")
def small_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return numbered_video(tmp_path_factory.mktemp("units") / "src.mp4", frames=55, fps="25", size=(160, 120))


@pytest.fixture
def argv(tmp_path, write_manifest, small_source):
    shutil.copy(small_source, tmp_path / SOURCE_NAME)
    path = write_manifest(
        {"cam": SOURCE_NAME},
        [{"source": "cam", "in": 0.4, "out": 1.2}, {"source": "cam", "in": "00:00:01:10", "out": 2.0}],
        regions=[{"box": [0.1, 0.1, 0.3, 0.3], "mode": "pixelate"}],
        cards={"intro": {"text": CARD_TEXT, "seconds": 1}},
        name="secret-manifest-name.yaml",
    )
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["title"] = TITLE
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    lm = load_manifest(path)
    plan = plan_clip(lm, probe_sources(lm))
    [variant] = plan.variants
    return render_cmd(
        plan,
        variant,
        tmp_path / "out" / ".clip.partial",
        cards={"intro": tmp_path / "intro.png"},
        gain=None,
        settings=EncodeSettings.for_variant(variant),
    )


def test_render_argv_strips_metadata_and_sets_the_delivery_format(argv):
    for flag, value in [
        ("-map_metadata", "-1"),
        ("-map_chapters", "-1"),
        ("-movflags", "+faststart"),
        ("-fflags", "+bitexact"),
        ("-bsf:v", "filter_units=remove_types=6"),
        ("-profile:v", "high"),
        ("-pix_fmt", "yuv420p"),
        ("-c:v", "libx264"),
        ("-c:a", "aac"),
        ("-ar", "48000"),
        ("-ac", "2"),
        ("-g", "50"),  # a GOP of 2 s at 25 fps
        ("-r", "25"),
    ]:
        assert _values(argv, flag) == [value], (flag, _values(argv, flag))


def test_render_argv_keeps_names_out_of_the_filter_graph(argv, tmp_path):
    [graph] = _values(argv, "-filter_complex")
    for secret in (TITLE, "Zebra", SOURCE_NAME, "defector", "secret-manifest-name", CARD_TEXT, str(tmp_path)):
        assert secret not in graph, secret
    assert not any(TITLE in a or CARD_TEXT in a for a in argv)
    source = str(tmp_path / SOURCE_NAME)
    uses = [i for i, a in enumerate(argv) if SOURCE_NAME in a]
    assert uses, "the source is an input"
    assert all(argv[i] == source and argv[i - 1] == "-i" for i in uses), [argv[i - 1 : i + 1] for i in uses]
    assert len(uses) == 2  # once per segment
    *inputs, output = [i for i, a in enumerate(argv) if str(tmp_path) in a]
    assert all(argv[i - 1] == "-i" for i in inputs), [argv[i - 1 : i + 1] for i in inputs]
    assert output == len(argv) - 1


# ------------------------------------------------------------------------------------------ manifest


def test_json_schema_matches_the_committed_file():
    committed = json.loads((REPO / "manifests" / "clipper.schema.json").read_text(encoding="utf-8"))
    assert json_schema() == committed, "manifests/clipper.schema.json is stale: run `make schema`"


YAML_12 = """\
clipper: 1
id: scalars
title: yes
topics: [on, off, no]
sources:
  main: src.mp4
segments:
  - {source: main, in: 01:02:05:12, out: 01:02:20:00}
  - {source: main, in: 1:30, out: 3725.5}
anonymize:
  faces: {mode: none, reason: "no person in frame at all"}
  voice: {mode: none, reason: "only a sine tone, nobody speaks"}
outputs:
  platforms: [telegram]
  languages: [no, en]
"""


def test_yaml_scalars_read_as_yaml_1_2(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(YAML_12, encoding="utf-8")
    m = load_manifest(path).manifest
    assert m.outputs.languages == ["no", "en"]
    assert m.title == "yes"
    assert m.topics == ["on", "off", "no"]
    first, second = m.segments
    assert first.in_.smpte == (1, 2, 5, 12) and first.in_.seconds is None
    assert first.out.smpte == (1, 2, 20, 0)
    assert second.in_.seconds == 90  # MM:SS, not a base-60 integer
    assert second.out.seconds == Fraction(7451, 2)


def _with_segment(tmp_path: Path, segment: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(YAML_12.replace("  - {source: main, in: 1:30, out: 3725.5}\n", segment), encoding="utf-8")
    return path


def test_a_leading_zero_in_seconds_is_decimal_not_a_crash(tmp_path):
    m = load_manifest(_with_segment(tmp_path, "  - {source: main, in: 08, out: 09}\n")).manifest
    assert m.segments[1].in_.seconds == 8


def test_a_leading_zero_in_seconds_is_not_octal(tmp_path):
    m = load_manifest(_with_segment(tmp_path, "  - {source: main, in: 010, out: 012}\n")).manifest
    assert m.segments[1].in_.seconds == 10


def test_equal_inputs_stay_separate_in_the_graph(tmp_path):
    # The same cut twice and two equal silences: ffmpeg-python would merge equal nodes and refuse the graph.
    numbered_video(tmp_path / "src.mp4", frames=50, audio=False)
    (tmp_path / "m.yaml").write_text(
        manifest_text(
            {"cam": "src.mp4"},
            [{"source": "cam", "in": 0, "out": 1}, {"source": "cam", "in": 0, "out": 1}],
            cards={"intro": {"text": "a", "seconds": 1}, "outro": {"text": "a", "seconds": 1}},
        )
    )
    from clipper.render import prepare

    plan = prepare(tmp_path / "m.yaml")
    argv = render_cmd(
        plan,
        plan.variants[0],
        tmp_path / "o.mp4",
        cards={"intro": tmp_path / "i.png", "outro": tmp_path / "o.png"},
        gain=None,
        settings=EncodeSettings(),
    )
    assert argv.count(str(tmp_path / "src.mp4")) == 2
    assert sum("anullsrc" in a for a in argv) == 4  # two cuts without sound + two cards


def test_find_bytes_sees_needles_across_chunk_boundaries(tmp_path):
    from clipper.verify import find_bytes

    p = tmp_path / "f.bin"
    p.write_bytes(b"\0" * 10 + b"x264 - core" + b"\0" * 5 + b"secret-name")
    assert find_bytes(p, (b"x264 - core", b"secret-name", b"absent"), chunk=12) == [b"x264 - core", b"secret-name"]


def test_keyframed_region_box_is_linear_between_keyframes_and_held_outside():
    from clipper.plan import RegionPlan

    fps = Fraction(10)
    keys = (
        (Fraction(1), (0.0, 0.0, 0.1, 0.1)),
        (Fraction(2), (0.5, 0.2, 0.3, 0.1)),
        (Fraction(4), (0.5, 0.2, 0.3, 0.1)),
    )
    r = RegionPlan(box=(0.0, 0.0, 0.1, 0.1), mode="solid", start_frame=0, end_frame=100, keyframes=keys)
    assert r.box_at(0, fps) == (0.0, 0.0, 0.1, 0.1)
    # Frame 15 lasts 1.45-1.55 s: the box covers the path over all of it.
    assert r.box_at(15, fps) == pytest.approx((0.225, 0.09, 0.26, 0.12))
    assert r.box_at(30, fps) == pytest.approx((0.5, 0.2, 0.3, 0.1))
    assert r.box_at(99, fps) == pytest.approx((0.5, 0.2, 0.3, 0.1))


def test_a_keyframed_box_covers_a_thing_moving_on_its_path_at_every_frame_whatever_the_keyframe_times():
    # Keyframes read off a player fall between frames: rounded to frames, the box trailed the thing by 16 px at
    # 833 px/s (QA sweep). The thing is where the path says at the frame's own time.
    from clipper.plan import RegionPlan

    fps = Fraction(25)
    keys = ((Fraction(1, 2), (0.1, 0.4, 0.05, 0.1)), (Fraction(17, 10), (0.8, 0.4, 0.05, 0.1)))
    r = RegionPlan(box=keys[0][1], mode="solid", start_frame=0, end_frame=75, keyframes=keys)
    for n in range(75):
        t = Fraction(n) / fps
        u = min(1.0, max(0.0, float((t - keys[0][0]) / (keys[1][0] - keys[0][0]))))
        thing = 0.1 + 0.7 * u  # its x at the frame's time
        x, y, w, h = r.box_at(n, fps)
        assert x <= thing + 1e-12 and thing + 0.05 <= x + w + 1e-12, (n, thing, (x, w))


def test_short_fingerprints_count_outside_the_media_payload_only(tmp_path):
    # A 1080p render once failed on "Lavc" found by chance inside its compressed video data.
    import struct

    from clipper.verify import FINGERPRINTS, find_bytes

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(body), kind) + body

    p = tmp_path / "f.mp4"
    p.write_bytes(box(b"ftyp", b"isom") + box(b"mdat", b"\x00Lavc\x01random x264 - core") + box(b"moov", b"udta Lavf"))
    assert find_bytes(p, FINGERPRINTS) == [b"x264 - core", b"Lavf"]
    p.write_bytes(box(b"ftyp", b"isom") + box(b"mdat", b"\x00Lavc\x01") + box(b"moov", b"clean"))
    assert find_bytes(p, FINGERPRINTS) == []


def test_ffmpeg_logs_drop_every_tag_even_one_holding_a_line_separator():
    # str.splitlines breaks at U+2028 inside a title, which ended the dropped block early (found in review).
    from clipper.ffmpeg import without_tags

    log = (
        "Input #0, mov,mp4, from 'x.mp4':\n  Metadata:\n    title           : Interview\u2028with Abu X\n"
        "    location        : +34.5203+069.1776/\n  Duration: 00:00:03.00, start: 0.000000\n"
        "  Stream #0:0: Video: h264\n      Metadata:\n        handler_name    : Abu X camera\nOutput #0\n"
    )
    kept = without_tags(log)
    for secret in ("Abu X", "+34.5203", "Interview"):
        assert secret not in kept
    assert "Duration: 00:00:03.00" in kept and "Stream #0:0: Video: h264" in kept and kept.endswith("Output #0\n")


# ------------------------------------------------------------------------------------------- analysis width


@pytest.mark.parametrize(
    ("display_width", "floor", "expected"),
    [
        (640, 14, 448),  # a floor below the smallest face: scaled by floor / 20
        (1920, 14, 1344),
        (1920, 15, 1440),
        (1921, 14, 1345),  # rounded up: the smallest face never lands below the floor
        (3840, 14, 2688),
        (640, 20, 640),  # the floor measured in front of texture: every source at its own width
        (1280, 20, 1280),
        (3840, 20, 3840),
        (1280, 24, 1280),  # never scaled up
    ],
)
def test_analysis_width_sees_the_smallest_face_at_the_detectors_floor(display_width, floor, expected):
    from clipper.analyze import SMALLEST_FACE_PX, frame_width

    width = frame_width(display_width, floor)
    assert width == expected
    assert SMALLEST_FACE_PX * width / display_width >= floor - 1e-9 or width == display_width


@pytest.mark.parametrize("display_width", [1280, 1371, 1920, 3840])
def test_every_source_is_analysed_at_its_own_width_for_the_smallest_face(display_width):
    """The detector's floor, measured in front of texture, is the smallest face itself (20 px): no downscaling."""
    from clipper.analyze import DETECTOR_FLOOR_PX, SMALLEST_FACE_PX, frame_width
    from clipper.faces.detect import CenterFace

    assert DETECTOR_FLOOR_PX == SMALLEST_FACE_PX
    for prec in ("f32", "bf16"):
        assert frame_width(display_width, CenterFace(precision=prec).floor_px) == display_width
    assert frame_width(display_width) == display_width


def test_the_plan_notes_what_an_editor_rarely_means_and_the_identity_ignores_notes(tmp_path, small_source):
    from dataclasses import replace

    from clipper.batch.jobs import render_identity

    shutil.copy(small_source, tmp_path / "src.mp4")
    path = tmp_path / "clip.yaml"
    doc = yaml.safe_load(
        manifest_text(
            {"cam": "src.mp4"}, [{"source": "cam", "in": 0.2, "out": 1.2}, {"source": "cam", "in": 1.0, "out": 2.0}]
        )
    )
    (tmp_path / "clip.fr.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nBonjour\n", encoding="utf-8")
    (tmp_path / "clip.en.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHello\n", encoding="utf-8")
    doc["subtitles"] = {"en": "clip.en.vtt", "fr": "clip.fr.vtt"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    lm = load_manifest(path)
    plan = plan_clip(lm, probe_sources(lm))
    repeat, french = sorted(plan.notes)
    assert f"{path}:" in french and "subtitles.fr: 'fr' is not among outputs.languages" in french
    assert "hint: add fr to outputs.languages, or remove this entry" in french
    assert "segments.1: shows 00:00:01.000-00:00:01.200 of 'cam' again (segments.0 shows it too)" in repeat, repeat

    apart = yaml.safe_load(path.read_text(encoding="utf-8"))
    apart["segments"][1]["in"] = 1.2
    apart["outputs"]["languages"] = ["en", "fr"]
    path.write_text(yaml.safe_dump(apart, sort_keys=False, allow_unicode=True), encoding="utf-8")
    lm = load_manifest(path)
    assert plan_clip(lm, probe_sources(lm)).notes == ()
    del apart["subtitles"]
    path.write_text(yaml.safe_dump(apart, sort_keys=False, allow_unicode=True), encoding="utf-8")
    lm = load_manifest(path)
    [same] = plan_clip(lm, probe_sources(lm)).notes
    assert "outputs.languages: 2 languages but no subtitles: every language's output is the same clip" in same
    [variant] = [v for v in plan.variants if v.language == "en"]
    one = replace(plan, variants=(variant,))
    assert render_identity(one, {}, None) == render_identity(replace(one, notes=()), {}, None)


def test_a_source_with_several_sound_tracks_gets_a_note(tmp_path):
    from media import ffmpeg_run

    ffmpeg_run(
        ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2", "-f", "lavfi", "-i", "sine=f=300:d=2"]
        + ["-f", "lavfi", "-i", "sine=f=500:d=2", "-map", "0:v", "-map", "1:a", "-map", "2:a"]
        + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(tmp_path / "two.mp4")]
    )
    path = tmp_path / "clip.yaml"
    path.write_text(manifest_text({"cam": "two.mp4"}, [{"source": "cam", "in": 0, "out": 1}]), encoding="utf-8")
    lm = load_manifest(path)
    [note] = plan_clip(lm, probe_sources(lm)).notes
    assert "sources.cam: the file has 2 sound tracks; only the first is used" in note

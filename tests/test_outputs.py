"""What a viewer (and an adversary) would find in the published files: format, sound, metadata, masks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import ffmpeg_run, numbered_video, read_frame_numbers, tone_video
from PIL import Image

from clipper.errors import VerifyError
from clipper.presets import PRESETS
from clipper.render import Progress, prepare, render
from clipper.verify import foreign_tags, measure_loudness, mp4_top_level_boxes

pytestmark = pytest.mark.slow


def _frames_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def assert_publishable(
    path: Path, width: int, height: int, fps: Fraction, frames: int, *, silent: bool = False
) -> None:
    """Every check a platform upload needs, read from the file itself (silent: the source had no sound)."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (width, height)
        assert v.codec_context.name == "h264" and v.profile == "High"
        assert v.codec_context.pix_fmt == "yuv420p"
        assert Fraction(v.average_rate) == fps
        decoded = sum(1 for _ in c.decode(v))
        assert decoded == frames
        duration = float(v.duration * v.time_base)
        assert abs(duration - frames / fps) <= 1 / fps
        assert a.codec_context.name == "aac" and a.profile == "LC"
        assert (a.codec_context.sample_rate, a.codec_context.channels) == (48000, 2)
    lufs, peak = measure_loudness(path)
    if silent:
        assert peak < -90, peak  # digital silence, not noise lifted to -14 LUFS
    else:
        assert abs(lufs - -14.0) <= 1.0, lufs
        assert peak <= -1.0, peak
    boxes = mp4_top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    assert foreign_tags(path) == []


def test_every_platform_gets_a_publishable_file(tmp_path, write_manifest, render_manifest):
    tone_video(tmp_path / "src.mp4", seconds=4, size=(640, 360), level_db=-30)
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (64, 32), (255, 0, 0, 200)).save(logo)
    m = write_manifest(
        {"cam": "src.mp4"},
        [{"source": "cam", "in": 0.5, "out": 2.0}, {"source": "cam", "in": 2.5, "out": 3.5}],
        platforms=list(PRESETS),
        cards={"intro": {"text": "A former member speaks", "seconds": 1}, "logo": {"file": "logo.png"}},
        regions=[{"box": [0.1, 0.1, 0.2, 0.2], "mode": "pixelate"}],
    )
    results = render_manifest(m)
    assert sorted(r.variant.platform for r in results) == sorted(PRESETS)
    for r in results:
        preset = PRESETS[r.variant.platform]
        assert r.path.name == f"clip.en.{preset.name}.mp4"
        assert_publishable(
            r.path, preset.width, preset.height, Fraction(25), 25 + 37 + 25
        )  # 0.5 s snaps to frame 13: 13..49
        assert r.sidecar.exists()
    leftovers = [p.name for p in (tmp_path / "out" / "clip").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_quiet_speech_with_peaks_reaches_target_without_clipping(tmp_path, write_manifest, render_manifest):
    # Loud peaks over quiet sound: a plain gain would push the peaks over -1 dBTP; the limiter must not.
    sr = 48000
    t = np.arange(sr * 6) / sr
    bed = 0.02 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    bed[sr * 2 : sr * 2 + 2400] += 0.9 * np.sin(2 * np.pi * 900 * t[:2400])
    raw = tmp_path / "a.f32"
    np.stack([bed, bed], axis=1).astype("<f4").tofile(raw)
    ffmpeg_run(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=25:d=6",
            "-f",
            "f32le",
            "-ar",
            str(sr),
            "-ac",
            "2",
            "-i",
            str(raw),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(tmp_path / "src.mp4"),
        ]
    )
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 6}])
    [r] = render_manifest(m)
    lufs, peak = measure_loudness(r.path)
    assert abs(lufs - -14.0) <= 1.0 and peak <= -1.0, (lufs, peak)


@pytest.mark.parametrize(
    ("source", "lufs", "peak"),
    [
        ("aevalsrc=0.1*sin(2*PI*997*t)|0.1*sin(2*PI*997*t):s=48000", -20.0, -20.0),  # -20 dBFS sine in both channels
        ("anullsrc=r=48000:cl=stereo", None, None),  # digital silence: nothing to normalize
    ],
    ids=["tone", "silence"],
)
def test_the_loudness_meter_reads_a_known_level_and_silence(source, lufs, peak):
    from clipper.ffmpeg import run_ffmpeg
    from clipper.graph import LOUDNESS_METER_FILTER, parse_loudness

    graph = f"{source},atrim=duration=4,{LOUDNESS_METER_FILTER}"
    measured = parse_loudness(run_ffmpeg(["-f", "lavfi", "-i", graph, "-f", "null", "-"], what="meter test"))
    if lufs is None:
        # ebur128 reads silence as the absolute gate, -70.0 LUFS: it must count as silent (no +56 dB gain on it).
        assert measured.silent, measured
    else:
        assert not measured.silent
        assert abs(measured.input_i - lufs) <= 0.3 and abs(measured.input_tp - peak) <= 0.3, measured


def test_second_variant_reuses_the_loudness_measurement(tmp_path, write_manifest, render_manifest, monkeypatch):
    import clipper.render

    tone_video(tmp_path / "src.mp4", seconds=3, size=(320, 240), level_db=-30)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 2}], platforms=["telegram", "tiktok"])
    [first] = render_manifest(m, platforms=["telegram"])
    measured = json.loads(first.sidecar.read_text())["loudness"]
    assert measured["passes"]

    def must_not_measure(*args, **kwargs):
        raise AssertionError("measured again although the clip's audio did not change")

    monkeypatch.setattr(clipper.render, "measure_loudness", must_not_measure)
    [second] = render_manifest(m, platforms=["tiktok"])
    assert json.loads(second.sidecar.read_text())["loudness"] == measured
    lufs, _ = measure_loudness(second.path)
    assert abs(lufs - -14.0) <= 1.0

    # Another cut is another clip: measured afresh.
    m2 = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0.5, "out": 2}], name="other.yaml")
    with pytest.raises(AssertionError, match="measured again"):
        render_manifest(m2)


@pytest.mark.parametrize("faces", [None, {"mode": "pixelate"}], ids=["plain", "masked-pipe"])
def test_source_metadata_never_reaches_the_output(tmp_path, write_manifest, render_manifest, faces):
    secret = "Abu-Example-Raqqa"
    src = tmp_path / f"{secret}-interview.mp4"
    chapters = tmp_path / "meta.txt"
    chapters.write_text(
        ";FFMETADATA1\ntitle=" + secret + "\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=2000\ntitle=" + secret + "\n"
    )
    ffmpeg_run(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=25:d=3",
            "-f",
            "lavfi",
            "-i",
            "sine=d=3",
            "-i",
            str(chapters),
            "-map",
            "0",
            "-map",
            "1",
            "-map_metadata",
            "2",
            "-map_chapters",
            "2",
            "-metadata",
            "location=+36.3566+043.1640/",
            "-metadata",
            "creation_time=2019-03-01T10:00:00Z",
            "-metadata",
            f"comment={secret}",
            "-metadata",
            "make=Apple",
            "-metadata",
            "model=iPhone 12",
            "-metadata:s:v",
            f"handler_name={secret}",
            "-metadata:s:a",
            "language=ara",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(src),
        ]
    )
    m = write_manifest(
        {"cam": src.name}, [{"source": "cam", "in": 0, "out": 2}], platforms=["telegram", "tiktok"], faces=faces
    )
    legacy = tmp_path / "out" / "clip" / ".logs"  # where earlier versions kept the logs, tags and all
    legacy.mkdir(parents=True)
    (legacy / "clip.en.telegram.mp4.log").write_text(f"location: +36.3566+043.1640/ {secret}")
    for r in render_manifest(m):
        assert foreign_tags(r.path) == []
        with av.open(str(r.path)) as c:
            assert not c.metadata.get("title") and not c.metadata.get("location")
            assert [s.metadata.get("language") for s in c.streams] == ["und", "und"]
        data = r.path.read_bytes()
        for needle in (secret.encode(), b"iPhone", b"+36.3566", b"2019-03-01", b"x264 - core", b"Lavf", b"Lavc"):
            assert needle not in data, needle
    # Nor any other file of the published folder (ffmpeg's logs, with the source's path and tags, were kept there:
    # found by a QA sweep); the logs beside the caches keep their commands but no tag.
    published = [p for p in (tmp_path / "out" / "clip").rglob("*") if p.is_file()]
    assert published
    for p in published:
        for needle in (secret.encode(), b"iPhone", b"+36.3566", b"2019-03-01"):
            assert needle not in p.read_bytes(), (p, needle)
    logs = list((tmp_path / "out" / ".cache" / "logs" / "clip").glob("*.log"))
    assert len(logs) == 2
    for p in logs:
        text = p.read_text(encoding="utf-8")
        assert "Metadata: (not logged)" in text
        for needle in ("iPhone", "+36.3566", "2019-03-01", "Apple"):
            assert needle not in text, (p, needle)


def test_solid_and_pixelated_regions_hide_what_is_under_them(tmp_path, write_manifest, render_manifest):
    # 16:9 source into a 16:9 platform: the region lands at the same fractions of the output frame.
    tone_video(tmp_path / "src.mp4", seconds=3, size=(640, 360))
    m = write_manifest(
        {"cam": "src.mp4"},
        [{"source": "cam", "in": 0, "out": 2}],
        regions=[
            {"box": [0.05, 0.1, 0.25, 0.3], "mode": "solid"},
            {"box": [0.55, 0.1, 0.4, 0.5], "mode": "pixelate"},
            {"box": [0.05, 0.55, 0.25, 0.4], "mode": "solid", "from": 1.0, "to": 1.5},
        ],
    )
    [r] = render_manifest(m)
    frames = _frames_rgb(r.path)
    h, w = frames[0].shape[:2]  # 1280x720, 2x the source
    for k, f in enumerate(frames):
        solid = f[round(0.1 * h) + 4 : round(0.4 * h) - 4, round(0.05 * w) + 4 : round(0.3 * w) - 4]
        assert solid.max() <= 24, f"frame {k}: solid region not black"
        timed = f[round(0.55 * h) + 4 : round(0.95 * h) - 4, round(0.05 * w) + 4 : round(0.3 * w) - 4]
        in_span = 25 <= k < 38  # [1.0 s, 1.5 s) at 25 fps
        assert (timed.max() <= 24) == in_span, f"frame {k}: timed region masked={timed.max() <= 24}"
    # Pixelated: source blocks are ≥ 32 px (16 px floor × 2 upscale), so each 32x32 tile is nearly flat.
    f = frames[10].astype(int)
    x0, y0, x1, y1 = round(0.55 * w), round(0.1 * h), round(0.95 * w), round(0.6 * h)
    tile_spread = [
        np.ptp(f[y + 6 : y + 26, x + 6 : x + 26], axis=(0, 1)).max()
        for y in range(y0, y1 - 32, 32)
        for x in range(x0, x1 - 32, 32)
    ]
    assert np.median(tile_spread) <= 20, tile_spread
    with av.open(str(tmp_path / "src.mp4")) as c:
        src = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    assert np.ptp(src[36:216, 352:608].astype(int), axis=(0, 1)).max() > 100  # the source had detail there


def test_a_keyframed_region_follows_its_keyframes(tmp_path, write_manifest, render_manifest):
    tone_video(tmp_path / "src.mp4", seconds=3, size=(640, 360))
    m = write_manifest(
        {"cam": "src.mp4"},
        [{"source": "cam", "in": 0, "out": 2}],
        regions=[
            {
                "mode": "solid",
                "keyframes": [
                    {"at": 0.4, "box": [0.0, 0.3, 0.2, 0.3]},
                    {"at": 1.2, "box": [0.6, 0.3, 0.2, 0.3]},
                    {"at": 1.6, "box": [0.6, 0.5, 0.4, 0.5]},
                ],
            }
        ],
    )
    [r] = render_manifest(m)
    frames = _frames_rgb(r.path)
    h, w = frames[0].shape[:2]

    def black(f, box):
        # A moving sharp edge rings more under compression than a still one: judged a little inside it.
        x, y, bw, bh = box
        inner = f[round(y * h) + 6 : round((y + bh) * h) - 6, round(x * w) + 6 : round((x + bw) * w) - 6]
        return inner.mean() <= 12 and np.percentile(inner, 99.5) <= 40

    for k, f in enumerate(frames):
        if k <= 10:  # held at the first keyframe before it
            box = (0.0, 0.3, 0.2, 0.3)
        elif k <= 30:  # 0.4 s → 1.2 s: moving right
            box = (0.6 * (k - 10) / 20, 0.3, 0.2, 0.3)
        elif k <= 40:  # 1.2 s → 1.6 s: growing down and right
            t = (k - 30) / 10
            box = (0.6, 0.3 + 0.2 * t, 0.2 + 0.2 * t, 0.3 + 0.2 * t)
        else:
            box = (0.6, 0.5, 0.4, 0.5)
        assert black(f, box), f"frame {k}: the moving region is not where its keyframes put it"
    assert not black(frames[30], (0.0, 0.3, 0.2, 0.3))  # it moved away: the old place shows picture again
    # The sidecar reports the path, not only the first box (QA sweep).
    [region] = json.loads(r.sidecar.read_text())["regions"]
    assert region["keyframes"] == [
        [0.4, [0.0, 0.3, 0.2, 0.3]],
        [1.2, [0.6, 0.3, 0.2, 0.3]],
        [1.6, [0.6, 0.5, 0.4, 0.5]],
    ]


def test_logo_sits_in_its_corner_over_the_clip_not_the_cards(tmp_path, write_manifest, render_manifest):
    numbered_video(tmp_path / "src.mp4", frames=50, fps="25")
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (100, 50), (255, 0, 0, 255)).save(logo)
    m = write_manifest(
        {"cam": "src.mp4"},
        [{"source": "cam", "in": 0, "out": 1}],
        cards={
            "intro": {"text": "intro", "seconds": 0.5, "background": "#0000ff"},
            "logo": {"file": "logo.png", "corner": "bottom-left", "width": 0.1, "margin": 0.05},
        },
    )
    [r] = render_manifest(m)
    frames = _frames_rgb(r.path)
    intro = round(0.5 * 25)
    h, w = frames[0].shape[:2]
    spot = (h - round(0.05 * h) - 10, round(0.05 * h) + 10)  # inside the logo, bottom-left
    for k, f in enumerate(frames):
        px = f[spot].astype(int)
        is_red = px[0] > 200 and px[1] < 60 and px[2] < 60
        assert is_red == (k >= intro), (k, px)
    assert (frames[0][h // 2, w // 2].astype(int) - [0, 0, 255]).__abs__().max() < 40  # the card's blue


@pytest.mark.parametrize("mode", ["center", "letterbox", "pad-blur"])
def test_reframe_modes_keep_the_picture_centred(tmp_path, write_manifest, render_manifest, mode):
    numbered_video(tmp_path / "src.mp4", frames=25, fps="25", size=(640, 360), audio=False)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 1}], platforms=["tiktok"], reframe=mode)
    [r] = render_manifest(m)
    assert read_frame_numbers(r.path) == list(range(25))
    # No sound, no loudness to check: the sidecar says so instead of leaving the check out unsaid (QA sweep).
    assert json.loads(r.sidecar.read_text())["checks"]["loudness"] == {
        "checked": False,
        "why": "the clip is silent: there is no sound to measure",
    }
    f = _frames_rgb(r.path)[5].astype(int)
    top_band = f[:200]
    if mode == "letterbox":
        assert top_band.max() <= 20  # black bars
    elif mode == "pad-blur":
        assert top_band.max() > 40  # the blurred picture, not black
    else:
        assert (f[:, :40] > 100).mean() > 0.5  # the grey source fills the frame to the edges


def test_size_cap_is_met_by_lowering_the_bitrate(tmp_path, write_manifest):
    # A noisy source and an artificially small cap: the first encode overshoots, a retry meets it.
    ffmpeg_run(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=640x360:r=25:d=4,noise=alls=60:allf=t",
            "-f",
            "lavfi",
            "-i",
            "sine=d=4",
            "-c:v",
            "libx264",
            "-crf",
            "10",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(tmp_path / "src.mp4"),
        ]
    )
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 4}], platforms=["whatsapp-status"])
    plan = prepare(m)
    cap = 600_000
    variant = replace(plan.variants[0], max_bytes=cap, max_video_bitrate=int(cap * 8 * 0.9 / 4 - 160_000) * 2)
    [r] = render(replace(plan, variants=(variant,)), tmp_path / "out")
    assert r.path.stat().st_size <= cap
    assert r.sidecar.read_text().count('"file_size"') == 1


def test_failed_check_publishes_nothing(tmp_path, write_manifest):
    tone_video(tmp_path / "src.mp4", seconds=3)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 3}])
    plan = prepare(m)
    impossible = replace(plan.variants[0], max_bytes=2_000, max_video_bitrate=250_000)
    with pytest.raises(VerifyError, match="file_size"):
        render(replace(plan, variants=(impossible,)), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out" / "clip").iterdir() if p.suffix in (".mp4", ".json")] == []


def _children(pid: int) -> list[int]:
    """Child processes of pid, except multiprocessing's resource tracker: an earlier batch test in this session
    (a spawn pool) starts it once, and it lives as long as the test process by design."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for kid in (task / "children").read_text().split():
            try:
                cmd = Path(f"/proc/{kid}/cmdline").read_bytes()
            except OSError:
                continue  # already gone
            if b"multiprocessing.resource_tracker" not in cmd:
                out.append(int(kid))
    return out


def test_an_exception_mid_render_leaves_no_ffmpeg_running(tmp_path, write_manifest):
    tone_video(tmp_path / "src.mp4", seconds=4)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 4}])

    class Boom(Progress):
        def advance(self, variant, done_s):
            if done_s > 0.5:
                raise RuntimeError("editor pressed stop")

    with pytest.raises(RuntimeError):
        render(prepare(m), tmp_path / "out", progress=Boom())
    assert _children(os.getpid()) == []
    assert list((tmp_path / "out" / "clip").glob("*.mp4")) == []


def _render_caught_mid_encode(tmp_path: Path, write_manifest, **popen: object) -> tuple[Path, subprocess.Popen]:
    """A CLI render of an 8 s 720p clip, returned once its partial output exists (the encode is under way)."""
    tone_video(tmp_path / "src.mp4", seconds=8, size=(1280, 720))
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 8}], platforms=["youtube"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipper.cli", "render", str(m), "--out", str(tmp_path / "out"), "--quiet"], **popen
    )
    work = tmp_path / "out" / ".work"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(work.glob("*/.*.partial")):
        time.sleep(0.05)
    assert proc.poll() is None, "render finished before it could be interrupted"
    return m, proc


def test_a_source_replaced_during_the_render_stops_it(tmp_path, write_manifest):
    # The analysis and the encode each read the source: a copy finishing or a sync tool replacing the file in between
    # would have the masks laid over other pictures (QA audit). The file's identity is checked before publishing.
    from clipper.errors import MediaError

    tone_video(tmp_path / "src.mp4", seconds=2)
    tone_video(tmp_path / "other.mp4", seconds=2, size=(640, 360))
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 1.5}])

    class SwapOnEncode(Progress):
        def start(self, variant, total_s):
            os.replace(tmp_path / "other.mp4", tmp_path / "src.mp4")

    with pytest.raises(MediaError, match="changed while it was being rendered"):
        render(prepare(m), tmp_path / "out", progress=SwapOnEncode())
    assert list((tmp_path / "out" / "clip").iterdir()) == []


def test_killed_render_leaves_nothing_that_looks_finished(tmp_path, write_manifest):
    m, proc = _render_caught_mid_encode(tmp_path, write_manifest, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out, folder = tmp_path / "out", tmp_path / "out" / "clip"
    # Nothing in the folder that gets uploaded, not even hidden: a render killed during its checks had left a
    # complete, playable, unverified file there (QA audit). The partial is in the render's own work folder.
    assert list(folder.iterdir()) == []
    assert list(out.glob(".work/clip.*/.clip.en.youtube.mp4.partial")), "the partial file is named as such"
    # The next render cleans up (its owner is dead: its lock is free) and publishes.
    [r] = render(prepare(m), out)
    assert r.path.exists()
    assert [p.name for p in (out / ".work").iterdir() if p.is_dir()] == []
    assert sorted(p.name for p in folder.iterdir()) == ["clip.en.youtube.json", "clip.en.youtube.mp4"]


def test_two_renders_of_one_id_at_once_each_publish_only_what_they_checked(tmp_path, write_manifest):
    # A second render of the same id deleted the first one's live partial as "stale" and wrote its own under the
    # same name, which the first then hashed and renamed as its own (QA audit: a file that was never verified was
    # published with exit 0, a sidecar naming other bytes). Each render now writes in a work folder of its own.
    m, proc = _render_caught_mid_encode(tmp_path, write_manifest, stderr=subprocess.PIPE, text=True)
    # The second render is of the same id but other content (6 s, not 8): whichever publishes last, the .mp4 and its
    # sidecar must be one render's, the one that checked that file.
    m2 = write_manifest(
        {"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 6}], platforms=["youtube"], name="b.yaml"
    )
    [r] = render(prepare(m2), tmp_path / "out")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    from clipper.media import file_sha256

    side = json.loads(r.sidecar.read_text())
    assert file_sha256(r.path) == side["output_sha256"] and r.path.stat().st_size == side["output_bytes"]
    with av.open(str(r.path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == side["frames"] in (150, 200)
    assert sorted(p.name for p in r.path.parent.iterdir()) == ["clip.en.youtube.json", "clip.en.youtube.mp4"]


def test_a_render_stopped_with_sigterm_stops_its_ffmpeg_and_keeps_nothing(tmp_path, write_manifest):
    # What a service manager or batch scheduler sends. Python used to die at once, and its ffmpeg, reparented,
    # finished an unchecked file that looked complete (found by a QA sweep).
    _, proc = _render_caught_mid_encode(tmp_path, write_manifest, stderr=subprocess.PIPE, text=True)
    ffmpegs = _children(proc.pid)
    assert ffmpegs
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err and "interrupted" in err
    time.sleep(0.5)
    still = [pid for pid in ffmpegs if Path(f"/proc/{pid}").exists()]
    assert still == [], "ffmpeg outlived clipper"
    out = tmp_path / "out"
    assert list((out / "clip").glob("*.mp4")) == [] and list(out.rglob("*.partial")) == []


def test_previews_are_checked_for_metadata_and_length_too(tmp_path, write_manifest):
    # Previews get passed around: the same metadata, fingerprint and length checks apply (not loudness).
    tone_video(tmp_path / "src.mp4", seconds=3)
    m = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 2}], platforms=["tiktok"])
    [r] = render(prepare(m, preview=True), tmp_path / "out")
    checks = json.loads(r.sidecar.read_text())["checks"]
    for name in ("no_foreign_metadata", "no_identifying_bytes", "frames", "index_at_front"):
        assert checks[name]["ok"], name
    assert "loudness_lufs" not in checks and checks["loudness"]["checked"] is False


def test_nothing_published_names_the_manifest_the_sources_or_the_subtitle_file(
    tmp_path, write_manifest, render_manifest
):
    # The sidecar beside each output named the manifest, the sources (by key and by hash of the raw recording), the
    # cut points in the source and the subtitle file: names that are often the person's (QA sweep). They are kept
    # in a provenance record with the logs, under the cache.
    import hashlib

    from media import numbered_video

    src = numbered_video(tmp_path / "karimi-raqqa-raw.mp4", frames=75, fps="25", size=(320, 240))
    (tmp_path / "karimi-raqqa.en.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello\n", encoding="utf-8")
    doc = write_manifest(
        {"karimi_phone": src.name}, [{"source": "karimi_phone", "in": 0.2, "out": 2.6}], name="karimi-raqqa-notes.yaml"
    )
    text = doc.read_text().replace("outputs:", "subtitles:\n  en: karimi-raqqa.en.vtt\noutputs:")
    # The reasons for mode none are the editor's own words: they were published word for word (QA sweep).
    text = text.replace("test pattern, no person in frame", "only Karimi's hands are in frame")
    text = text.replace("synthetic sound, nobody speaks", "Karimi's cousin reads the text")
    doc.write_text(text)
    [r] = render_manifest(doc)
    raw_hash = hashlib.sha256(src.read_bytes()).hexdigest().encode()
    published = [p for p in r.path.parent.rglob("*") if p.is_file()]
    assert {p.suffix for p in published} == {".mp4", ".json", ".vtt", ".srt"}
    for p in published:
        data = p.read_bytes()
        for needle in (b"karimi", b"raqqa", raw_hash, str(tmp_path).encode()):
            assert needle not in data.lower(), (p.name, needle)
    [record] = (tmp_path / "out" / ".cache" / "logs" / "clip").glob("*.provenance.json")
    prov = json.loads(record.read_text())
    assert prov["manifest_file"] == str(doc) and prov["sources"]["karimi_phone"]["sha256"] == raw_hash.decode()
    assert prov["segments"][0]["in_frame"] == 5 and prov["captions_file"].endswith("karimi-raqqa.en.vtt")
    assert prov["output_sha256"] == json.loads(r.sidecar.read_text())["output_sha256"]
    assert prov["opt_out_reasons"] == {
        "faces": "only Karimi's hands are in frame",
        "voice": "Karimi's cousin reads the text",
    }
    assert json.loads(r.sidecar.read_text())["anonymity"]["faces"].startswith("not masked (mode none")


@pytest.mark.parametrize("alpha", [False, True], ids=["opaque", "alpha-0"])
@pytest.mark.parametrize("mode", ["pixelate", "blur"])
def test_a_region_at_odd_pixels_hides_every_pixel_of_its_box(tmp_path, write_manifest, render_manifest, mode, alpha):
    # The README's example box lands on x 793..1049 of a 1280x720 frame: crop and overlay placed the patch on even
    # pixels and the last columns kept the picture (QA sweep). An alpha channel of 0 let the whole box show.
    # A one-pixel checker is the picture: any of it left inside the box is a leak a viewer can see.
    fmt, codec, name = ("yuva420p", "ffv1", "src.mkv") if alpha else ("yuv420p", "libx264", "src.mp4")
    geq = "geq=lum='255*mod(X+Y,2)':cb=128:cr=128" + (":a=0" if alpha else "")
    ffmpeg_run(
        ["-f", "lavfi", "-i", "nullsrc=s=1280x720:r=25:d=1", "-vf", f"format={fmt},{geq}", "-c:v", codec]
        + (["-crf", "0"] if not alpha else [])
        + [str(tmp_path / name)]
    )
    box = [0.62, 0.10, 0.20, 0.25]
    m = write_manifest({"cam": name}, [{"source": "cam", "in": 0, "out": 0.8}], regions=[{"box": box, "mode": mode}])
    [r] = render_manifest(m)
    x0, y0 = int(0.62 * 1280), int(0.10 * 720)
    x1, y1 = -(-int(0.82 * 1280 * 1000) // 1000), -(-int(0.35 * 720 * 1000) // 1000)
    for k, f in enumerate(_frames_rgb(r.path)):
        inside = f[y0:y1, x0:x1, 1].astype(int)
        # Neighbouring pixels of the checker differ by ~255; of a mask, by little (block edges aside).
        step = np.abs(np.diff(inside, axis=0))
        edges = [np.median(step[:, c]) for c in (0, 1, 2, -3, -2, -1)]
        assert max(edges) < 40, f"frame {k}: a column at the box's edge shows the picture: {edges}"
        assert np.median(step) < 40, f"frame {k}: the box shows the picture"


@pytest.mark.parametrize("sound", ["digital-silence", "no-sound-track"])
def test_a_preview_of_a_silent_source_is_made(tmp_path, write_manifest, sound):
    """A preview's sound is brought to loudness like a render's, measured first: the one-pass loudnorm previews used
    turned digital silence into NaN, and the preview failed (ffmpeg exit 234) where the render worked."""
    numbered_video(tmp_path / "src.mp4", frames=50, fps="25", audio=False)
    if sound == "digital-silence":
        args = ["-i", str(tmp_path / "src.mp4"), "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-shortest"]
        ffmpeg_run([*args, "-c:v", "copy", "-c:a", "aac", str(tmp_path / "silent.mp4")])
    name = "silent.mp4" if sound == "digital-silence" else "src.mp4"
    m = write_manifest({"cam": name}, [{"source": "cam", "in": 0, "out": 1.6}])
    [r] = render(prepare(m, preview=True), tmp_path / "out")
    with av.open(str(r.path)) as c:
        samples = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    assert samples.size > 0 and np.isfinite(samples).all() and np.abs(samples).max() < 1e-4

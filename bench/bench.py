"""Speed of clipper as a ratio to the floor: the same encode done by one bare ffmpeg command.

    python bench/bench.py [--seconds 60] [--platforms youtube,tiktok] [--keep DIR] [--reframes] [--repeat N]
                          [--faces | --faces-only] [--face-sizes 720,1080]

Clipper's time is the whole library call a `clipper render --platforms P` makes (probe, plan,
loudness passes, encode, verify, publish), timed per platform. The floor decodes the same
stretch of the same source, fits it into the platform frame with a plain scale+pad letterbox
(clipper's default reframe for a 16:9 source on a 9:16 platform is pad-blur; the floor is the
cheapest honest geometry of the same output size) and encodes with exactly the x264/AAC settings
clipper's EncodeSettings.for_variant picks for that variant. The floor has no loudness pass and no
checks: everything clipper adds on top of a bare encode shows up in the ratio.

The source (testsrc2 with temporal noise, speech-like audio, 1080p25) is generated once per run in a
temporary folder, or once ever in --keep DIR. Nothing is written in the repository.

--faces adds the anonymized render (anonymize.faces: pixelate) of clipper.demo's synthetic interview (a real face
moving over a backdrop) at 720p and 1080p: first with an empty face cache (a fresh CLIPPER_CACHE_DIR), then a
second variant of the same clip with the cache warm, each against its own floor. Clipper's time is split into
stages by wrapping clipper.render's stage functions for the duration of the run (nothing in clipper is edited).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from unittest import mock

import av  # noqa: F401  (imported up front so the first timed probe does not pay for it)
import yaml

import clipper.faces.detect
import clipper.faces.gate
import clipper.masking
import clipper.media
import clipper.render
from clipper.demo import make_demo_interview
from clipper.errors import AnonymityError, VerifyError
from clipper.ffmpeg import ffmpeg_exe
from clipper.graph import EncodeSettings
from clipper.plan import RenderPlan, Variant
from clipper.presets import AUDIO_BITRATE, AUDIO_CHANNELS, AUDIO_RATE, GOP_SECONDS, PRESETS
from clipper.render import plan_loudness, prepare, render
from clipper.verify import Expectation, verify_output

TARGET_RATIO = 1.2
SRC_W, SRC_H, SRC_FPS = 1920, 1080, 25
EDGE_S = 0.5  # the segment leaves this much of the source out at each end
REFRAMES = ("center", "letterbox", "pad-blur")

# Targets from the face-masking issue: an anonymized render (empty face cache) within 2x of its floor at 720p;
# a second variant of the same clip (face cache warm) within 1.1x of its own floor.
FACE_COLD_TARGET = 2.0
FACE_WARM_TARGET = 1.1
FACE_SIZES = {720: (1280, 720), 1080: (1920, 1080)}
# (cold platform, warm platform) per source height: 16:9 like the source, so reframing costs nothing. The warm
# render goes to another output folder, so even the same platform is encoded again.
FACE_PLATFORMS = {720: ("youtube", "telegram"), 1080: ("youtube", "youtube")}

# A voiced buzz (140 Hz and harmonics, a gliding "formant"), syllable-rate envelope, pauses between phrases.
SPEECH_LIKE = (
    "0.22*(sin(2*PI*140*t)+0.5*sin(2*PI*280*t)+0.35*sin(2*PI*(650+250*sin(2*PI*0.7*t))*t))"
    "*(0.55+0.45*sin(2*PI*4.1*t))*gt(sin(2*PI*0.23*t)+0.6,0)"
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_seconds() -> float:
    """CPU time of this process and every child it has waited for (ffmpeg runs are children)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(args: list[str]) -> None:
    """Run ffmpeg with args (without the binary); exit with its log tail on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        sys.exit(f"ffmpeg failed ({proc.returncode}):\n$ {shlex.join(cmd)}\n{proc.stderr[-2000:]}")


# ---------------------------------------------------------------------------------------------- inputs


def make_source(folder: Path, seconds: int) -> Path:
    """Generate (or reuse) a 1080p25 source with moving, noisy pictures and speech-like stereo sound."""
    path = folder / f"bench-source-{SRC_W}x{SRC_H}-{SRC_FPS}fps-{seconds}s.mp4"
    if path.is_file() and path.stat().st_size > 0:
        log(f"source: reusing {path}")
        return path
    log(f"source: generating {seconds} s of {SRC_W}x{SRC_H}@{SRC_FPS} (testsrc2 + noise, libx264 crf 23 veryfast)…")
    tmp = path.with_name(path.name + ".partial.mp4")
    t0 = time.perf_counter()
    run(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={SRC_W}x{SRC_H}:rate={SRC_FPS}:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc='{SPEECH_LIKE}':c=stereo:s={AUDIO_RATE}:d={seconds}",
            "-vf",
            "format=yuv420p,noise=alls=3:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "192k",
            "-shortest",
            "-movflags",
            "+faststart",
            str(tmp),
        ]
    )
    tmp.replace(path)
    log(f"source: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")
    return path


def write_manifest(folder: Path, source: Path, seconds: int, platforms: list[str], reframe: str | None) -> Path:
    """A manifest with one segment (the whole source but EDGE_S at each end), no masks, no cards."""
    ident = "bench" if reframe is None else f"bench-{reframe}"
    outputs: dict[str, object] = {"platforms": platforms, "languages": ["en"]}
    if reframe is not None:
        outputs["reframe"] = reframe
    data = {
        "clipper": 1,
        "id": ident,
        "title": "clipper benchmark",
        "sources": {"src": source.name},
        "segments": [{"source": "src", "in": EDGE_S, "out": seconds - EDGE_S}],
        "anonymize": {
            "faces": {"mode": "none", "reason": "synthetic test pattern, there are no people in it"},
            "voice": {"mode": "none", "reason": "synthetic tones, nobody's voice"},
            "regions": [],
        },
        "outputs": outputs,
    }
    path = source.parent / f"{ident}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- clipper


@dataclass
class ClipperRun:
    total_s: float
    cpu_s: float
    prepare_s: float
    render_s: float
    variant_s: float  # render_seconds from the sidecar: encode + verify + sha256 + publish of the variant
    output: Path
    plan: RenderPlan
    variant: Variant


def run_clipper(manifest: Path, platform: str, out_root: Path) -> ClipperRun:
    """Time prepare() + render() for one platform, as `clipper render --platforms P` would do."""
    # render() hashes each source once per process; forget it so every run pays what a fresh CLI run pays.
    clipper.media._HASHES.clear()
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    plan = prepare(manifest, platforms=[platform])
    t1 = time.perf_counter()
    results = render(plan, out_root)
    t2 = time.perf_counter()
    cpu = cpu_seconds() - c0
    (res,) = results
    return ClipperRun(
        total_s=t2 - t0,
        cpu_s=cpu,
        prepare_s=t1 - t0,
        render_s=t2 - t1,
        variant_s=res.seconds,
        output=res.path,
        plan=plan,
        variant=res.variant,
    )


@dataclass
class Breakdown:
    loudness_s: float
    loudness_passes: int
    source_hash_s: float
    verify_s: float


def breakdown(run_: ClipperRun) -> Breakdown:
    """Time the parts of render() that are not the encode, each called once on its own."""
    t0 = time.perf_counter()
    gain = plan_loudness(run_.plan)  # every measuring pass render() makes before encoding
    t1 = time.perf_counter()
    h = hashlib.sha256()  # what clipper.media.content_hash does, without its in-process cache
    for seg in {s.path for s in run_.plan.segments}:
        with seg.open("rb") as f:
            while block := f.read(4 << 20):
                h.update(block)
    t2 = time.perf_counter()
    v = run_.variant
    expect = Expectation(
        width=v.width, height=v.height, fps=run_.plan.fps, frames=run_.plan.total_frames, max_bytes=v.max_bytes
    )
    report = verify_output(run_.output, expect)
    t3 = time.perf_counter()
    if report.failures:
        log(f"  note: re-verify reported {report.failures}")
    passes = len(gain.measured) if gain else 1
    return Breakdown(loudness_s=t1 - t0, loudness_passes=passes, source_hash_s=t2 - t1, verify_s=t3 - t2)


# ---------------------------------------------------------------------------------------------- floor


def floor_geometry(mode: str, w: int, h: int) -> str:
    """The video filter the floor uses for one reframe mode (plain ffmpeg, same scaler as clipper)."""
    if mode == "center":
        return f"scale={w}:{h}:force_original_aspect_ratio=increase:flags=bicubic,crop={w}:{h}"
    if mode == "letterbox":
        return (
            f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic,"
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black"
        )
    if mode == "pad-blur-graph":  # the same look as clipper's pad-blur, written by hand
        sw, sh = max(2, w // 8 // 2 * 2), max(2, h // 8 // 2 * 2)
        return (
            f"split[fg][bg];[bg]scale={sw}:{sh}:force_original_aspect_ratio=increase:flags=area,crop={sw}:{sh},"
            f"gblur=sigma=6,eq=brightness=-0.08,scale={w}:{h}:flags=bicubic[b];"
            f"[fg]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic[f];"
            "[b][f]overlay=(W-w)/2:(H-h)/2"
        )
    raise ValueError(mode)


def encode_args(plan: RenderPlan, variant: Variant) -> list[str]:
    """x264/AAC options from EncodeSettings.for_variant and the presets clipper reads, nothing else."""
    s = EncodeSettings.for_variant(variant)
    gop = max(1, round(plan.fps * GOP_SECONDS))
    args = ["-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p", "-preset", s.preset, "-crf", str(s.crf)]
    args += ["-g", str(gop), "-keyint_min", str(max(1, gop // 2))]
    if s.max_bitrate:
        args += ["-maxrate", str(s.max_bitrate), "-bufsize", str(s.max_bitrate * 2)]
    args += ["-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-ar", str(AUDIO_RATE), "-ac", str(AUDIO_CHANNELS)]
    return [*args, "-movflags", "+faststart"]


def floor_cmd(source: Path, plan: RenderPlan, variant: Variant, mode: str, out: Path) -> list[str]:
    """One ffmpeg command: decode the segment, fit it to the platform frame, encode like clipper."""
    (seg,) = plan.segments
    duration = Fraction(seg.out_frames) / plan.fps
    geometry = floor_geometry(mode, variant.width, variant.height) + ",setsar=1,format=yuv420p"
    return [
        *("-ss", f"{float(seg.in_s):.6f}", "-t", f"{float(duration):.6f}", "-i", str(source)),
        *("-filter_complex", f"[0:v:0]{geometry}[v]", "-map", "[v]", "-map", "0:a:0"),
        *encode_args(plan, variant),
        str(out),
    ]


@dataclass
class FloorRun:
    total_s: float
    cpu_s: float


def run_floor(args: list[str]) -> FloorRun:
    c0, t0 = cpu_seconds(), time.perf_counter()
    run(args)
    return FloorRun(total_s=time.perf_counter() - t0, cpu_s=cpu_seconds() - c0)


# ---------------------------------------------------------------------------------------------- faces

# (breakdown column, function looked up in clipper.render's namespace while a render runs), in pipeline order.
RENDER_STAGES = (
    ("loudness", "plan_loudness"),  # every loudness measuring pass
    ("src hash", "content_hash"),  # sha256 of each source (cache key and sidecar)
    ("faces", "analyze_faces"),  # decode at the analysis width + CenterFace, or a cache load
    ("encode", "_encode"),  # decode | Python masks | x264, per variant (and per size-cap retry)
    ("verify", "verify_output"),  # probe, frame count, loudness, names
    ("gate", "check_faces"),  # the verify gate: BlazeFace over the rendered file
    ("out hash", "_sha256"),  # sha256 of the output for the sidecar
)
# Parts inside those stages: (label, owner, attribute). Model loads happen inside the first detect call.
SUB_STAGES = (
    ("measure", clipper.render, "measure_loudness"),  # one loudness pass (calls = passes)
    ("faces detect", clipper.faces.detect.CenterFace, "detect"),  # CenterFace inference, per frame
    ("masks", clipper.masking.FrameMasker, "__call__"),  # Python masking of one frame in the encode pipe
    ("gate detect", clipper.faces.gate.BlazeFace, "detect"),  # BlazeFace inference, per checked frame
    ("model load", clipper.faces.detect, "_compile"),  # CenterFace compiled by OpenVINO (once per input size)
    ("model load", clipper.faces.gate, "_interpreter"),  # the gate's LiteRT interpreter (same)
)


@dataclass
class Stage:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    calls: int = 0


def _timed(fn: Callable[..., Any], stage: Stage) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0, t0 = cpu_seconds(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stage.wall_s += time.perf_counter() - t0
            stage.cpu_s += cpu_seconds() - c0
            stage.calls += 1

    return wrapper


@contextlib.contextmanager
def timed_stages() -> Iterator[dict[str, Stage]]:
    """Time clipper.render's stage functions (and the per-frame masks, inside encode) while the block runs."""
    stages = {label: Stage() for label, _ in RENDER_STAGES} | {label: Stage() for label, _, _ in SUB_STAGES}
    with contextlib.ExitStack() as stack:
        for owner, label, name in [(clipper.render, label, name) for label, name in RENDER_STAGES] + [
            (owner, label, name) for label, owner, name in SUB_STAGES
        ]:
            fn = getattr(owner, name, None)
            if fn is None:  # renamed in clipper: that column stays at zero
                log(f"  note: {getattr(owner, '__name__', owner)}.{name} not found; '{label}' is not timed")
                continue
            stack.enter_context(mock.patch.object(owner, name, _timed(fn, stages[label])))
        yield stages


def forget_process_caches() -> None:
    """Drop what an earlier run in this process loaded, so each run pays what a fresh `clipper render` pays
    (module imports excepted): source hashes, the CenterFace session and model hash, the gate's interpreter."""
    clipper.media._HASHES.clear()
    for holder, name in (
        (clipper.faces.detect, "_compiled"),
        (clipper.faces.detect, "_model_sha256"),
        (clipper.faces.gate, "_interpreter"),
    ):
        cached = getattr(holder, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()


def make_face_source(folder: Path, seconds: int, width: int, height: int) -> Path:
    """Generate (or reuse) clipper's demo interview (a moving real face, speech-like audio) at width x height."""
    path = folder / f"bench-faces-{width}x{height}-{SRC_FPS}fps-{seconds}s.mp4"
    if path.is_file() and path.stat().st_size > 0:
        log(f"face source: reusing {path}")
        return path
    log(f"face source: generating {seconds} s of {width}x{height}@{SRC_FPS} (clipper.demo.make_demo_interview)…")
    t0 = time.perf_counter()
    make_demo_interview(path, seconds=seconds, width=width, height=height, fps=SRC_FPS)
    log(f"face source: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")
    return path


def write_face_manifest(source: Path, seconds: int, height: int, platform: str) -> Path:
    """One segment (the whole source but EDGE_S at each end), faces pixelated, no regions, no cards."""
    ident = f"bench-faces-{height}p"
    data = {
        "clipper": 1,
        "id": ident,
        "title": "clipper benchmark, anonymized",
        "sources": {"src": source.name},
        "segments": [{"source": "src", "in": EDGE_S, "out": seconds - EDGE_S}],
        "anonymize": {
            "faces": {"mode": "pixelate"},
            "voice": {"mode": "none", "reason": "synthesized speech-like sound, nobody's voice"},
            "regions": [],
        },
        "outputs": {"platforms": [platform], "languages": ["en"]},
    }
    path = source.parent / f"{ident}-{platform}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class FaceRun:
    total_s: float
    cpu_s: float
    prepare_s: float
    prepare_cpu_s: float
    stages: dict[str, Stage]
    plan: RenderPlan
    variant: Variant
    sidecar: dict[str, Any] | None  # None when the render failed
    error: str | None = None  # why the render's checks stopped it (VerifyError text), when they did
    gate_failed: bool = False  # that error is an AnonymityError: the verify gate found a face
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start and end


def run_face_clipper(manifest: Path, platform: str, out_root: Path, cache_root: Path) -> FaceRun:
    """Time prepare() + render() of an anonymized manifest with CLIPPER_CACHE_DIR=cache_root; stages timed."""
    forget_process_caches()
    load_start = os.getloadavg()[0]
    old = os.environ.get("CLIPPER_CACHE_DIR")
    os.environ["CLIPPER_CACHE_DIR"] = str(cache_root)
    error, sidecar, gate_failed = None, None, False
    try:
        with timed_stages() as stages:
            c0, t0 = cpu_seconds(), time.perf_counter()
            plan = prepare(manifest, platforms=[platform])
            c1, t1 = cpu_seconds(), time.perf_counter()
            try:
                (res,) = render(plan, out_root)
                sidecar = json.loads(res.sidecar.read_text(encoding="utf-8"))
            except VerifyError as e:  # a finding about the output, not a bench failure: reported, not raised
                error, gate_failed = e.render(), isinstance(e, AnonymityError)
            t2 = time.perf_counter()
            cpu = cpu_seconds() - c0
    finally:
        if old is None:
            os.environ.pop("CLIPPER_CACHE_DIR", None)
        else:
            os.environ["CLIPPER_CACHE_DIR"] = old
    (variant,) = plan.variants
    load = (load_start, os.getloadavg()[0])
    return FaceRun(t2 - t0, cpu, t1 - t0, c1 - c0, stages, plan, variant, sidecar, error, gate_failed, load)


def face_target(cold: bool, height: int) -> str:
    target = FACE_COLD_TARGET if cold else FACE_WARM_TARGET
    # The issue sets the cold target at 720p; other sizes are held to it for information.
    return f"{target:.1f}x" if not cold or height == 720 else f"({target:.1f}x)"


def face_verdict(ratio: float, cold: bool) -> str:
    return "ok" if ratio <= (FACE_COLD_TARGET if cold else FACE_WARM_TARGET) else "MISS"


def sidecar_faces(run_: FaceRun) -> str:
    """What the sidecar says about face analysis and the gate, in one line."""
    if run_.sidecar is None:
        return "no sidecar (not published)"
    faces = run_.sidecar.get("faces") or {}
    segs = faces.get("segments", [])
    analysis = sum(float(s.get("analysis_seconds", 0.0)) for s in segs)
    cached = sorted({bool(s.get("from_cache")) for s in segs})
    gate = (run_.sidecar.get("checks") or {}).get("faces") or {}
    return (
        f"faces.analysis_seconds {analysis:.2f} (from_cache {'/'.join(map(str, cached)) or '?'}), "
        f"{faces.get('frames_with_faces_detected', '?')}/{faces.get('frames', '?')} frames with a face detected; "
        f"checks.faces: {gate.get('frames_checked', '?')}/{gate.get('frames', '?')} frames checked at "
        f"{'x'.join(map(str, gate.get('analysis_size', []))) or '?'}, faces_found {gate.get('faces_found', '?')}"
        + (
            f", dismissed_on_closer_look {len(d)}"
            if isinstance(d := gate.get("dismissed_on_closer_look"), list)
            else ""
        )
    )


PART_COLUMNS = (
    "src hash",
    "faces",
    "faces detect",
    "encode",
    "masks",
    "verify",
    "gate",
    "gate detect",
    "model load",
    "out hash",
)

PART_HEAD = ["src hash", "faces", "(detect)", "encode", "(masks)", "verify", "gate", "(detect)", "(models)", "out hash"]


def face_parts(run_: FaceRun, floor_s: float) -> tuple[list[str], list[str]]:
    """Rows of the wall-clock and the CPU breakdown of one run."""
    st = run_.stages
    accounted = run_.prepare_s + sum(st[label].wall_s for label, _ in RENDER_STAGES)
    wall = [f"{run_.prepare_s:.2f}", f"{st['loudness'].wall_s:.2f} ({st['measure'].calls})"]
    wall += [f"{st[k].wall_s:.2f}" for k in PART_COLUMNS]
    wall += [f"{run_.total_s - accounted:.2f}", f"{st['encode'].wall_s / floor_s:.2f}x"]
    cpu = [f"{run_.prepare_cpu_s:.2f}", f"{st['loudness'].cpu_s:.2f}"]
    cpu += [f"{st[k].cpu_s:.2f}" for k in PART_COLUMNS]
    cpu_accounted = run_.prepare_cpu_s + sum(st[label].cpu_s for label, _ in RENDER_STAGES)
    cpu += [f"{run_.cpu_s - cpu_accounted:.2f}", ""]
    return wall, cpu


def bench_faces(work: Path, ns: argparse.Namespace, repeat: int) -> tuple[list[str], list[str]]:
    """Time the anonymized renders (cold and warm face cache) and their floors; return printed lines, findings."""
    cache_parent = work / "face-cache"
    shutil.rmtree(cache_parent, ignore_errors=True)  # every cold run starts from an empty cache
    cache_parent.mkdir()
    floor_dir = work / "floor"
    floor_dir.mkdir(exist_ok=True)
    rows: list[list[str]] = []
    parts_wall: list[list[str]] = []
    parts_cpu: list[list[str]] = []
    notes: list[str] = []
    findings: list[str] = []
    cmds: list[str] = []
    floors: dict[tuple[str, str], FloorRun] = {}

    def floor(source: Path, plan: RenderPlan, variant: Variant) -> FloorRun:
        key = (source.name, variant.platform)
        if key not in floors:
            cmd = floor_cmd(source, plan, variant, "letterbox", floor_dir / f"{source.stem}.{variant.platform}.mp4")
            cmds.append(f"  {source.stem}/{variant.platform}: $ {shlex.join(['ffmpeg', *cmd])}")
            log(f"floor: {source.stem} -> {variant.platform}…")
            floors[key] = min((run_floor(cmd) for _ in range(repeat)), key=lambda r: r.total_s)
            log(f"  {floors[key].total_s:.1f} s wall, {floors[key].cpu_s:.1f} s CPU")
        return floors[key]

    for height in ns.face_sizes:
        width = FACE_SIZES[height][0]
        source = make_face_source(work, ns.seconds, width, height)
        cold_p, warm_p = FACE_PLATFORMS[height]
        cold_runs: list[tuple[FaceRun, Path]] = []
        for _ in range(repeat):
            cache_root = Path(tempfile.mkdtemp(prefix=f"cold-{height}p-", dir=cache_parent))
            log(f"clipper: {height}p source -> {cold_p}, faces pixelate, empty face cache {cache_root}…")
            r = run_face_clipper(
                write_face_manifest(source, ns.seconds, height, cold_p), cold_p, work / "output-faces", cache_root
            )
            log(f"  {r.total_s:.1f} s wall, {r.cpu_s:.1f} s CPU{' — ' + r.error.splitlines()[0] if r.error else ''}")
            cold_runs.append((r, cache_root))
        cold, cache_root = min(cold_runs, key=lambda rc: rc[0].total_s)
        warm_runs = []
        for _ in range(repeat):
            log(f"clipper: {height}p source -> {warm_p} (second variant), face cache warm…")
            r = run_face_clipper(
                write_face_manifest(source, ns.seconds, height, warm_p), warm_p, work / "output-faces-warm", cache_root
            )
            log(f"  {r.total_s:.1f} s wall, {r.cpu_s:.1f} s CPU{' — ' + r.error.splitlines()[0] if r.error else ''}")
            warm_runs.append(r)
        warm = min(warm_runs, key=lambda r: r.total_s)
        for r, is_cold in ((cold, True), (warm, False)):
            f = floor(source, r.plan, r.variant)
            v = r.variant
            temp = "cold" if is_cold else "warm"
            label = f"{v.platform} {v.width}x{v.height}, {temp} cache"
            name = f"{height}p {v.platform} {temp}"
            ratio, cpu_ratio = r.total_s / f.total_s, r.cpu_s / f.cpu_s
            rows.append(
                [
                    f"{width}x{height}",
                    label,
                    *(f"{r.total_s:.2f}", f"{f.total_s:.2f}", f"{ratio:.2f}x", face_target(is_cold, height)),
                    ("FAIL: gate" if r.gate_failed else "FAIL: verify") if r.error else face_verdict(ratio, is_cold),
                    *(f"{r.cpu_s:.1f}", f"{f.cpu_s:.1f}", f"{cpu_ratio:.2f}x"),
                    "-" if r.error else face_verdict(cpu_ratio, is_cold),
                ]
            )
            wall, cpu = face_parts(r, f.total_s)
            parts_wall.append([name, *wall])
            parts_cpu.append([name, *cpu])
            notes.append(f"  {name}: {sidecar_faces(r)}; load {r.load[0]:.1f} -> {r.load[1]:.1f}")
            if r.error:
                kind = "AnonymityError (the verify gate found a face)" if r.gate_failed else "VerifyError"
                findings.append(f"{name} cache, {kind}:\n    " + r.error.replace("\n", "\n    "))

    lines = [
        "",
        f"anonymized render (anonymize.faces: pixelate) of clipper.demo's interview, a {ns.seconds - 2 * EDGE_S:g} s "
        "clip of a generated 25 fps source;",
        "cold = empty face cache (fresh CLIPPER_CACHE_DIR); warm = a second variant of the same clip, cache filled by",
        "the cold run; each against its own floor (the same bare letterbox encode as above, no masks, no checks).",
        f"targets: cold <= {FACE_COLD_TARGET:.1f}x floor at 720p (1080p held to it in brackets, for information); "
        f"warm <= {FACE_WARM_TARGET:.1f}x",
        "",
        table(
            ["source", "render", "clipper s", "floor s", "ratio", "target", "verdict"]
            + ["clipper CPU s", "floor CPU s", "CPU ratio", "CPU verdict"],
            rows,
        ),
        "",
        "where clipper's time goes, measured inside the same runs (stage functions of clipper.render wrapped):",
        "faces = face analysis (decode at the analysis width + CenterFace, or the cache load); encode = decode |",
        "masks | x264 pipe, masks = the Python masking inside it; gate = the verify detector over the output;",
        "other = total minus the columns (publishing, cards, planning the masks' reframe, the pipe's start).",
        "(detect) = the detector's inference alone, per frame, summed (the rest of faces/gate is decoding and",
        "scaling); (models) = loading both detectors' models, in the first (detect); out hash = the output's sha256.",
        "wall seconds:",
        table(["run", "prepare", "loudness", *PART_HEAD, "other", "encode/floor"], parts_wall, text_cols=1),
        "CPU seconds (this process and its ffmpeg children):",
        table(["run", "prepare", "loudness", *PART_HEAD, "other", ""], parts_cpu, text_cols=1),
        "sidecars:",
        *notes,
        "",
        "floor commands (anonymized rows):",
        *cmds,
    ]
    return lines, findings


# ---------------------------------------------------------------------------------------------- report


def verdict(ratio: float) -> str:
    return "ok" if ratio <= TARGET_RATIO else "MISS"


def table(head: list[str], rows: list[list[str]], *, text_cols: int = 2) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(r: list[str]) -> str:
        cells = zip(r, widths, strict=True)
        return "  ".join(c.ljust(w) if i < text_cols else c.rjust(w) for i, (c, w) in enumerate(cells))

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60, help="length of the generated source (default 60)")
    ap.add_argument("--platforms", default="youtube,tiktok", help="comma-separated presets (default youtube,tiktok)")
    ap.add_argument("--keep", type=Path, help="work in DIR and keep the source and outputs (reused next time)")
    ap.add_argument("--reframes", action="store_true", help="also time center, letterbox and pad-blur on tiktok")
    ap.add_argument("--repeat", type=int, default=1, help="run each measurement N times, keep the fastest")
    ap.add_argument("--faces", action="store_true", help="also time the anonymized render (faces pixelated)")
    ap.add_argument("--faces-only", action="store_true", help="time only the anonymized render (implies --faces)")
    ap.add_argument("--face-sizes", default="720,1080", help="source heights for --faces, from 720,1080 (default both)")
    ns = ap.parse_args(argv)
    try:
        ns.face_sizes = [int(x.strip().removesuffix("p")) for x in ns.face_sizes.split(",") if x.strip()]
    except ValueError:
        ns.face_sizes = None
    if not ns.face_sizes or any(h not in FACE_SIZES for h in ns.face_sizes):
        ap.error(f"--face-sizes: choose from {','.join(map(str, FACE_SIZES))}")
    ns.faces = ns.faces or ns.faces_only
    platforms = [p.strip() for p in ns.platforms.split(",") if p.strip()]
    unknown = [p for p in platforms if p not in PRESETS]
    if unknown or not platforms:
        ap.error(f"unknown platform(s) {unknown}; choose from {', '.join(PRESETS)}")
    if ns.seconds < 3:
        ap.error("--seconds must be at least 3")

    if ns.keep:
        ns.keep.mkdir(parents=True, exist_ok=True)
        return bench(ns.keep.resolve(), ns, platforms)
    with tempfile.TemporaryDirectory(prefix="clipper-bench-") as d:
        return bench(Path(d), ns, platforms)


def bench(work: Path, ns: argparse.Namespace, platforms: list[str]) -> int:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    if not ns.faces_only:
        bench_plain(work, ns, platforms)
    findings: list[str] = []
    if ns.faces:
        faces_started = time.perf_counter()
        lines, findings = bench_faces(work, ns, max(1, ns.repeat))
        print("\n".join(lines))
        print(f"(the anonymized rows took {time.perf_counter() - faces_started:.0f} s, source generation included)")
    load_after = os.getloadavg()[0]
    print()
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {load_before:.1f} before, {load_after:.1f} after")
    if max(load_before, load_after) > 0.5 * (os.cpu_count() or 1):
        print("  other processes were busy: wall-clock ratios are noisy; the CPU ratio is the steadier figure")
    print(f"bench wall time: {time.perf_counter() - started:.0f} s")
    if findings:
        print()
        print("FINDING: clipper's checks stopped an anonymized render (nothing was published; timings up to there):")
        for f in findings:
            print(f"  {f}")
    if ns.keep:
        print(f"\nkept in {work}: sources, manifests, clipper outputs (output*/), face caches, floor outputs (floor/)")
    return 0


def bench_plain(work: Path, ns: argparse.Namespace, platforms: list[str]) -> None:
    """The rows without face masking: clipper vs the floor per platform (and per reframe mode)."""
    source = make_source(work, ns.seconds)
    out_root = work / "output"
    floor_dir = work / "floor"
    floor_dir.mkdir(exist_ok=True)
    repeat = max(1, ns.repeat)

    clip_cache: dict[tuple[str, str | None], ClipperRun] = {}
    floor_cache: dict[tuple[str, str], FloorRun] = {}
    floor_cmds: dict[tuple[str, str], list[str]] = {}

    def clip(platform: str, reframe: str | None) -> ClipperRun:
        key = (platform, reframe)
        if key not in clip_cache:
            manifest = write_manifest(work, source, ns.seconds, [platform], reframe)
            log(f"clipper: {platform} (reframe {reframe or 'default'})…")
            runs = [run_clipper(manifest, platform, out_root) for _ in range(repeat)]
            clip_cache[key] = min(runs, key=lambda r: r.total_s)
            log(f"  {clip_cache[key].total_s:.1f} s wall, {clip_cache[key].cpu_s:.1f} s CPU")
        return clip_cache[key]

    def floor(platform: str, mode: str, plan: RenderPlan, variant: Variant) -> FloorRun:
        key = (platform, mode)
        if key not in floor_cache:
            cmd = floor_cmd(source, plan, variant, mode, floor_dir / f"{platform}.{mode}.mp4")
            floor_cmds[key] = cmd
            log(f"floor: {platform} ({mode})…")
            floor_cache[key] = min((run_floor(cmd) for _ in range(repeat)), key=lambda r: r.total_s)
            log(f"  {floor_cache[key].total_s:.1f} s wall, {floor_cache[key].cpu_s:.1f} s CPU")
        return floor_cache[key]

    def row(first: str, second: str, c: ClipperRun, f: FloorRun) -> list[str]:
        ratio = c.total_s / f.total_s
        return [
            *(first, second, f"{c.total_s:.2f}", f"{f.total_s:.2f}", f"{ratio:.2f}x", verdict(ratio)),
            *(f"{c.cpu_s:.1f}", f"{f.cpu_s:.1f}", f"{c.cpu_s / f.cpu_s:.2f}x"),
        ]

    head = ["clipper s", "floor s", "ratio", "target", "clipper CPU s", "floor CPU s", "CPU ratio"]
    rows, parts = [], []
    for p in platforms:
        c = clip(p, None)
        f = floor(p, "letterbox", c.plan, c.variant)
        b = breakdown(c)
        v = c.variant
        same_shape = Fraction(v.width, v.height) == Fraction(SRC_W, SRC_H)
        rows.append(row(p, f"{c.plan.reframe}{' (no-op: same shape)' if same_shape else ''}", c, f))
        encode = c.variant_s - b.verify_s
        other = c.total_s - c.prepare_s - b.loudness_s - b.source_hash_s - c.variant_s
        parts.append(
            [p]
            + [f"{c.prepare_s:.2f}", f"{b.loudness_s:.2f} ({b.loudness_passes})"]
            + [f"{x:.2f}" for x in (b.source_hash_s, encode, b.verify_s, other)]
            + [f"{encode / f.total_s:.2f}x"]
        )

    n = f"{ns.seconds - 2 * EDGE_S:g} s"
    mbps = source.stat().st_size * 8 / ns.seconds / 1e6
    print()
    print(f"clipper vs the bare-ffmpeg floor: a {n} clip of a {SRC_W}x{SRC_H}@{SRC_FPS} source ({mbps:.0f} Mb/s),")
    print("one platform per run; wall clock (time.perf_counter) of prepare() + render(), min of", repeat, "run(s)")
    print(f"target: ratio <= {TARGET_RATIO:.1f}x for an output without face masking (none here: faces opted out)")
    print("floor: one ffmpeg command, same segment, plain scale+pad letterbox to the platform size,")
    print("       x264/AAC options from EncodeSettings.for_variant; no loudness pass, no checks")
    print()
    print(table(["platform", "clipper reframe", *head], rows))
    print()
    print("where clipper's wall time goes: loudness (with its number of measuring passes), source hash and")
    print("verify timed again on their own; encode = the variant's sidecar render_seconds minus verify;")
    print("other = total minus all of these (negative: the load changed between the timings).")
    print("encode/floor compares the encode alone with the floor.")
    parts_head = ["platform", "prepare", "loudness", "src hash", "encode", "verify", "other", "encode/floor"]
    print(table(parts_head, parts, text_cols=1))

    if ns.reframes:
        p = "tiktok"
        rrows = []
        for mode in REFRAMES:
            c = clip(p, None if mode == "pad-blur" and (p, None) in clip_cache else mode)
            floor_mode = "letterbox" if mode == "pad-blur" else mode
            rrows.append(row(mode, floor_mode, c, floor(p, floor_mode, c.plan, c.variant)))
        c = clip_cache.get((p, None)) or clip_cache[(p, "pad-blur")]
        rrows.append(row("pad-blur", "pad-blur-graph", c, floor(p, "pad-blur-graph", c.plan, c.variant)))
        print()
        print(f"reframe modes on {p} ({PRESETS[p].width}x{PRESETS[p].height} from 16:9); the last row's floor is")
        print("clipper's pad-blur filter chain written by hand, so its ratio is overhead without the look's cost:")
        print(table(["reframe", "floor geometry", *head], rrows))

    print()
    print("floor commands:")
    for (p, mode), cmd in floor_cmds.items():
        print(f"  {p}/{mode}: $ {shlex.join(['ffmpeg', *cmd])}")


if __name__ == "__main__":
    sys.exit(main())

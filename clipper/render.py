"""Render stage: probe sources, measure loudness once, encode each variant, verify it, publish it atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from clipper import __version__
from clipper.cards import render_card_png
from clipper.errors import ClipperError, ManifestError, MediaError, VerifyError
from clipper.ffmpeg import run_ffmpeg
from clipper.graph import LIMITER_CEILING_DB, EncodeSettings, Loudness, LoudnessGain, measure_cmd, render_cmd
from clipper.manifest import LoadedManifest, load_manifest
from clipper.media import MediaFacts, content_hash, probe
from clipper.plan import RenderPlan, Variant, plan_clip
from clipper.presets import LOUDNESS_LUFS
from clipper.verify import Expectation, verify_output

log = logging.getLogger("clipper.render")
MAX_SIZE_ATTEMPTS = 3
MAX_LOUDNESS_CORRECTIONS = 2
LOUDNESS_SETTLED_LU = 0.3
PARTIAL = ".partial"


# ------------------------------------------------------------------------------------------ load + plan


def probe_sources(lm: LoadedManifest) -> dict[str, MediaFacts]:
    """Probe every source the manifest names; raise ManifestError pointing at the source's line."""
    facts: dict[str, MediaFacts] = {}
    problems: list[ClipperError] = []
    for name, rel in lm.manifest.sources.items():
        try:
            facts[name] = probe(lm.resolve(rel))
        except MediaError as e:
            problems.append(lm.problem(("sources", name), f"{e.where}: {e.message}", e.hint))
    for kind in ("intro", "outro"):
        card = getattr(lm.manifest.cards, kind)
        if card and card.font and not lm.resolve(card.font).is_file():
            problems.append(
                lm.problem(
                    ("cards", kind, "font"),
                    f"font file not found: {lm.resolve(card.font)}",
                    "name a .ttf/.otf file, relative to the manifest",
                )
            )
    logo = lm.manifest.cards.logo
    if logo:
        problems += _check_logo(lm, lm.resolve(logo.file))
    if problems:
        raise ManifestError(problems)
    return facts


def _check_logo(lm: LoadedManifest, path: Path) -> list[ClipperError]:
    from PIL import Image, UnidentifiedImageError

    loc = ("cards", "logo", "file")
    if not path.is_file():
        return [lm.problem(loc, f"logo file not found: {path}", "name a PNG file, relative to the manifest")]
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                return [lm.problem(loc, f"logo is {im.format}, not PNG", "export the logo as PNG with alpha")]
    except (UnidentifiedImageError, OSError):
        return [lm.problem(loc, f"logo is not a readable image: {path}", "export the logo as PNG with alpha")]
    return []


def prepare(
    manifest_path: Path,
    *,
    platforms: list[str] | None = None,
    languages: list[str] | None = None,
    preview: bool = False,
) -> RenderPlan:
    """Load, probe and plan a manifest; every problem is raised before any rendering starts."""
    lm = load_manifest(manifest_path)
    facts = probe_sources(lm)
    return plan_clip(lm, facts, platforms=platforms, languages=languages, preview=preview)


# ---------------------------------------------------------------------------------------------- render


class Sidecar(BaseModel):
    """What is published beside each output: how it was made and what was checked."""

    clipper_version: str
    manifest_id: str
    manifest_file: str
    manifest_sha256: str
    output_file: str
    output_sha256: str
    output_bytes: int
    language: str
    platform: str
    width: int
    height: int
    fps: str
    frames: int
    duration_s: float
    segments: list[dict[str, object]]
    source_sha256: dict[str, str]
    cards: dict[str, float]
    anonymity: dict[str, str]
    regions: list[dict[str, object]]
    loudness: dict[str, object] | None  # None: the clip is silent
    encode: dict[str, object]
    checks: dict[str, object]
    render_seconds: float


@dataclass
class RenderResult:
    """One published output."""

    variant: Variant
    path: Path
    sidecar: Path
    seconds: float
    bytes: int


class Progress:
    """Callbacks a front end implements to show progress; the default shows nothing."""

    def start(self, variant: Variant, total_s: float) -> None:
        """A variant starts encoding."""

    def advance(self, variant: Variant, done_s: float) -> None:
        """Encoded time of the current variant moved to done_s."""

    def finish(self, result: RenderResult) -> None:
        """A variant is verified and published."""


def output_dir(out_root: Path, plan: RenderPlan) -> Path:
    """Folder of one manifest's outputs."""
    return out_root / plan.manifest_id


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete files and work folders an interrupted render left behind; return what was removed."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and (PARTIAL in p.name or p.name.startswith(".work-")):
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def measure_loudness(plan: RenderPlan, gain: LoudnessGain | None = None) -> Loudness:
    """Measure the clip's loudness (after `gain`, if given), audio only."""
    err = run_ffmpeg(measure_cmd(plan, gain), what="loudness measurement")
    try:
        data = json.loads(err[err.rfind("{") : err.rfind("}") + 1])
        return Loudness(input_i=float(data["input_i"]), input_tp=float(data["input_tp"]))
    except (ValueError, KeyError) as e:
        raise ClipperError(
            f"could not read ffmpeg's loudness measurement ({e})", hint="run with --debug and report the log"
        ) from None


def plan_loudness(plan: RenderPlan) -> LoudnessGain | None:
    """Measure first, then choose the gain (and limiter) that brings the clip to target; None for silence.

    A plain gain is exact when the peaks allow it. Speech often has peaks more than 13 dB above its
    loudness, so the gain would push them over the true-peak ceiling: then a limiter catches them,
    which costs a little loudness, measured and made up in up to two correcting passes.
    """
    first = measure_loudness(plan)
    if first.silent:
        return None
    gain = LoudnessGain(gain_db=LOUDNESS_LUFS - first.input_i, limiter=False, measured=(first,))
    if first.input_tp + gain.gain_db <= LIMITER_CEILING_DB:
        return gain
    gain = LoudnessGain(gain_db=gain.gain_db, limiter=True, measured=(first,))
    for _ in range(MAX_LOUDNESS_CORRECTIONS):
        after = measure_loudness(plan, gain)
        gain = LoudnessGain(gain_db=gain.gain_db, limiter=True, measured=(*gain.measured, after))
        miss = LOUDNESS_LUFS - after.input_i
        if abs(miss) <= LOUDNESS_SETTLED_LU:
            break
        gain = LoudnessGain(gain_db=gain.gain_db + miss, limiter=True, measured=gain.measured)
    return gain


def render(plan: RenderPlan, out_root: Path, *, progress: Progress | None = None) -> list[RenderResult]:
    """Render, verify and publish every variant of the plan; stop at the first failure."""
    progress = progress or Progress()
    folder = output_dir(out_root, plan)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(folder)
    preview = bool(plan.variants) and plan.variants[0].preview
    gain = None if preview else plan_loudness(plan)
    source_hashes = {s.source: content_hash(s.path) for s in plan.segments}
    results = []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".work-") as work_name:
        work = Path(work_name)
        for variant in plan.variants:
            results.append(_render_variant(plan, variant, folder, work, gain, source_hashes, progress))
    return results


def _render_variant(
    plan: RenderPlan,
    variant: Variant,
    folder: Path,
    work: Path,
    gain: LoudnessGain | None,
    source_hashes: dict[str, str],
    progress: Progress,
) -> RenderResult:
    started = time.monotonic()
    cards = {
        c.kind: render_card_png(
            c, variant.width, variant.height, work / f"{c.kind}-{variant.width}x{variant.height}.png"
        )
        for c in (plan.intro, plan.outro)
        if c
    }
    final = folder / variant.filename
    tmp = folder / f".{variant.filename}{PARTIAL}"
    expect = Expectation(
        width=variant.width,
        height=variant.height,
        fps=plan.fps,
        frames=plan.total_frames,
        max_bytes=variant.max_bytes,
        loudness=not variant.preview and gain is not None,
        forbidden=identifying_names(plan),
    )
    try:
        settings = EncodeSettings.for_variant(variant)
        for attempt in range(MAX_SIZE_ATTEMPTS):
            progress.start(variant, plan.duration_s)
            run_ffmpeg(
                render_cmd(plan, variant, tmp, cards=cards, gain=gain, settings=settings),
                what=f"render of {variant.filename}",
                log_path=folder / ".logs" / f"{variant.filename}.log",
                on_progress=lambda s: progress.advance(variant, s),
            )
            # Previews are checked too (they get passed around): everything but loudness, which their
            # one-pass normalization only approximates.
            report = verify_output(tmp, expect)
            if not report.failures:
                break
            if [f for f in report.failures if not f.startswith("file_size")] or attempt == MAX_SIZE_ATTEMPTS - 1:
                raise VerifyError(
                    f"{variant.filename} failed its checks and was not published:\n  " + "\n  ".join(report.failures),
                    where=plan.manifest_path.name,
                    hint="run with --debug; the ffmpeg log is in " + str(folder / ".logs"),
                )
            assert variant.max_bytes is not None
            settings = settings.shrunk_to(tmp.stat().st_size, variant.max_bytes)
            log.info("%s over its size cap; re-encoding at %d b/s", variant.filename, settings.max_bitrate)
        sha = _sha256(tmp)
        size = tmp.stat().st_size
        sidecar = Sidecar(
            clipper_version=__version__,
            manifest_id=plan.manifest_id,
            manifest_file=plan.manifest_path.name,
            manifest_sha256=plan.manifest_sha256,
            output_file=variant.filename,
            output_sha256=sha,
            output_bytes=size,
            language=variant.language,
            platform=variant.platform,
            width=variant.width,
            height=variant.height,
            fps=str(plan.fps),
            frames=plan.total_frames,
            duration_s=round(plan.duration_s, 6),
            segments=[
                {
                    "source": s.source,
                    "in_frame": s.in_frame,
                    "out_frame": s.out_frame,
                    "source_fps": str(s.src_fps),
                    "in_s": round(float(s.in_s), 6),
                    "clip_start_s": round(float((s.clip_start_frame + plan.intro_frames) / plan.fps), 6),
                    "frames": s.out_frames,
                }
                for s in plan.segments
            ],
            source_sha256=source_hashes,
            cards={c.kind: round(float(c.frames / plan.fps), 6) for c in (plan.intro, plan.outro) if c},
            anonymity=plan.anonymity,
            regions=[
                {"box": list(r.box), "mode": r.mode, "frames": [r.start_frame, r.end_frame]} for r in plan.regions
            ],
            loudness=None
            if gain is None
            else {
                "gain_db": round(gain.gain_db, 3),
                "true_peak_limiter": gain.limiter,
                "passes": [{"integrated_lufs": m.input_i, "true_peak_dbtp": m.input_tp} for m in gain.measured],
            },
            encode={"preset": settings.preset, "crf": settings.crf, "max_bitrate": settings.max_bitrate},
            checks=report.checks,
            render_seconds=round(time.monotonic() - started, 3),
        )
        side_final = final.with_suffix(".json")
        side_tmp = folder / f".{side_final.name}{PARTIAL}"
        side_tmp.write_text(sidecar.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, final)
        os.replace(side_tmp, side_final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        (folder / f".{final.with_suffix('.json').name}{PARTIAL}").unlink(missing_ok=True)
        raise
    result = RenderResult(variant=variant, path=final, sidecar=side_final, seconds=sidecar.render_seconds, bytes=size)
    progress.finish(result)
    return result


def identifying_names(plan: RenderPlan) -> tuple[bytes, ...]:
    """File names that must never appear inside an output: the sources' and the manifest's (long enough to
    be specific; a short name like 'a' would match by chance)."""
    names = {s.path.stem for s in plan.segments} | {plan.manifest_path.stem}
    return tuple(sorted(n.encode() for n in names if len(n) >= 6))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 << 20):
            h.update(block)
    return h.hexdigest()

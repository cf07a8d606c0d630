"""Render stage: probe sources, measure loudness once, encode each variant, verify it, publish it atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from clipper import __version__
from clipper.analyze import FaceAnalysis, analyze_faces, cache_dir, cache_root, hash_memo, sweep_cache_partials
from clipper.captions.burn import BurnFiles, check_font_log, write_burn_files
from clipper.captions.fonts import CaptionFont, font_for, with_script
from clipper.captions.layout import LaidOutCue, lay_out, style_for
from clipper.captions.read import SubtitleError, SubtitleFile, read_subtitles
from clipper.captions.timing import TimedCue
from clipper.cards import card_font, card_layout, render_card_png
from clipper.errors import AnonymityError, ClipperError, ManifestError, MediaError, VerifyError
from clipper.faces.cache import DetectionCache
from clipper.faces.detect import FaceDetector
from clipper.faces.gate import confirm_hits, scan_video, select_frames
from clipper.faces.mask import yuv420_frame_bytes
from clipper.faces.track import PixelBox
from clipper.ffmpeg import run_ffmpeg, run_ffmpeg_pipeline
from clipper.graph import (
    LIMITER_CEILING_DB,
    EncodeSettings,
    Loudness,
    LoudnessGain,
    PipeLayout,
    decode_cmd,
    measure_cmd,
    parse_loudness,
    render_cmd,
)
from clipper.manifest import LoadedManifest, load_manifest, windows_path_hint
from clipper.masking import CroppingMasker, FaceReframe, FrameMasker, needs_pipe, plan_face_reframe
from clipper.media import MediaFacts, content_hash, file_sha256, file_stamp, probe
from clipper.plan import CaptionPlan, RenderPlan, Variant, plan_clip
from clipper.presets import LOUDNESS_LUFS
from clipper.review import OverlayMasker
from clipper.verify import Expectation, verify_output
from clipper.voice import VoiceError
from clipper.voice.check import check_voice, original_voice
from clipper.voice.sound import SoundReport, cached_sound
from clipper.workarea import publishing, remove_stale_work, work_area

log = logging.getLogger("clipper.render")
MAX_SIZE_ATTEMPTS = 3
MAX_LOUDNESS_CORRECTIONS = 4
LOUDNESS_SETTLED_LU = 0.3
PARTIAL = ".partial"
# The face gate checks every GATE_EVERY-th output frame where the primary detector's masks are steady, and every
# frame where they are not (see gate_frames). GATE_EVERY is bounded by how long the gate itself can stay blind to
# a face in view: measured on the corpus (bench/mask_calibration.py --part recall --step 1), see ARCHITECTURE.md.
GATE_EVERY = 2
# Every frame this close to a join or a card edge is checked.
GATE_CUT_MARGIN = 2


# ------------------------------------------------------------------------------------------ load + plan


def probe_sources(lm: LoadedManifest) -> dict[str, MediaFacts]:
    """Probe every source the manifest names; raise ManifestError pointing at the source's line."""
    facts: dict[str, MediaFacts] = {}
    problems: list[ClipperError] = []
    for name, rel in lm.manifest.sources.items():
        try:
            facts[name] = probe(lm.resolve(rel))
        except MediaError as e:
            hint = windows_path_hint(rel) if e.message == "no such file" else ""
            where = rel if hint else e.where  # as written: joined to the manifest's folder it read as nonsense
            problems.append(lm.problem(("sources", name), f"{where}: {e.message}", hint or e.hint))
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
    subtitles = read_captions(lm, languages or lm.manifest.outputs.languages)
    plan = plan_clip(lm, facts, platforms=platforms, languages=languages, preview=preview, subtitles=subtitles)
    for card in (plan.intro, plan.outro):
        if card is not None:
            try:
                # A card whose text no font can draw, or that cannot fit a platform's frame, stops here, not after
                # the analysis.
                card_font(card)
                for size in sorted({(v.width, v.height) for v in plan.variants}):
                    card_layout(card, *size)
            except ClipperError as e:
                raise ManifestError([lm.problem(("cards", card.kind, "text"), e.message, e.hint)]) from None
    # A cue that cannot fit a platform's frame stops here too (validate says so), not after the face analysis.
    for lang, width, height in sorted({(v.language, v.width, v.height) for v in plan.variants}):
        if lang in plan.captions:
            lay_out_captions(plan.captions[lang], width, height)
    return plan


def read_captions(lm: LoadedManifest, languages: list[str]) -> dict[str, SubtitleFile]:
    """Read each language's subtitle file and check its font can draw every character; raise on any problem."""
    out: dict[str, SubtitleFile] = {}
    for lang in languages:
        spec = lm.manifest.subtitle_spec(lang)
        if spec is None:
            continue
        sub = read_subtitles(lm.path.parent / spec.file)
        lost = [w for w in sub.warnings if w.shown]
        if lost:
            # A cue the reader had to skip (a broken timing line, a block without one) would be missing from the
            # published captions without a word: the file is fixed first (`clipper lint` lists every such line).
            first = lost[0]
            more = f" (and {len(lost) - 1} more: clipper lint {spec.file})" if len(lost) > 1 else ""
            raise SubtitleError(first.message + more, where=f"{sub.path}:{first.line}", hint=first.hint)
        try:
            font = font_for(lang, lm.path.parent / spec.font if spec.font else None, sub.text)
        except ClipperError as e:
            if spec.font is None:
                raise  # a bundled font: not the editor's to fix
            raise ManifestError([lm.problem(("subtitles", lang, "font"), e.message, e.hint)]) from None
        for cue in sub.cues:
            if any("\ufffd" in line for line in cue.lines):
                # The parser turns a NUL byte (or undecodable text) into U+FFFD, as the WebVTT spec says; on screen
                # it is a "�" in a published caption.
                raise SubtitleError(
                    "a caption holds U+FFFD '\ufffd' (a NUL byte or text in another encoding in the file)",
                    where=f"{sub.path}:{cue.line}",
                    hint="fix the text on this line and save the file as UTF-8",
                )
            missing = font.missing("".join(cue.lines))
            if missing:
                listed = ", ".join(f"U+{ord(c):04X} {c!r}" for c in sorted(missing))
                raise SubtitleError(
                    f"the {lang} caption font ({font.family}) cannot draw {listed}",
                    where=f"{sub.path}:{cue.line}",
                    hint="fix the text (a wrong character or encoding?), or name a font that has it: "
                    f"subtitles: {{{lang}: {{file: {spec.file}, font: fonts/FONT.ttf}}}}",
                )
        out[lang] = sub
    return out


# ---------------------------------------------------------------------------------------------- render


class Sidecar(BaseModel):
    """What is published beside each output: how it was made and what was checked.

    Nothing in it names a file or a person: the folder it sits in is what gets uploaded. Which manifest, sources,
    cut points and subtitle files made the output is kept in a provenance record beside the logs (Provenance).
    """

    clipper_version: str
    manifest_id: str
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
    segments: list[dict[str, object]]  # where each cut lands in the output (not where it comes from)
    cards: dict[str, float]
    anonymity: dict[str, str]
    reframe: dict[str, object]
    faces: dict[str, object] | None  # None: opted out
    regions: list[dict[str, object]]
    loudness: dict[str, object] | None  # None: the clip is silent
    captions: dict[str, object] | None = None  # None: no captions for this language
    sound: dict[str, object] | None = None  # None: the cuts' sound as it is (no voice change, no bleep)
    encode: dict[str, object]
    checks: dict[str, object]
    render_seconds: float
    job_identity: str | None = None  # set by a batch: what the output was made from (see batch/jobs.py)


class Provenance(BaseModel):
    """What made an output, by name: kept with the logs under the cache, never in the published folder (the
    manifest's and the sources' file names are often the person's; a source's hash ties the clip to the raw
    recording)."""

    output_file: str
    output_sha256: str
    manifest_file: str
    manifest_sha256: str
    sources: dict[str, dict[str, str]]  # name -> {path, sha256}
    segments: list[dict[str, object]]  # each cut: its source, frames and time in the source
    captions_file: str | None = None
    opt_out_reasons: dict[str, str] = {}  # why faces or voice are not anonymized, in the editor's words


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

    def analyzing(self, done_frames: int, total_frames: int) -> None:
        """Face analysis reached done_frames of total_frames (cached cuts jump ahead)."""

    def start(self, variant: Variant, total_s: float) -> None:
        """A variant starts encoding."""

    def advance(self, variant: Variant, done_s: float) -> None:
        """Encoded time of the current variant moved to done_s."""

    def finish(self, result: RenderResult) -> None:
        """A variant is verified and published."""


def output_dir(out_root: Path, plan: RenderPlan) -> Path:
    """Folder of one manifest's outputs."""
    return out_root / plan.manifest_id


def withdraw_outputs(folder: Path, variants: Sequence[Variant]) -> None:
    """Remove what was published under these variants' names before they are made again: it came from the manifest
    as it was, and a failure of the new render must not leave it standing (a name removed from a caption, then a
    render that failed: the old file kept the name). The sidecar goes first: it marks an output as published."""
    for variant in variants:
        withdraw_output(folder / variant.filename)


OUTPUT_SUFFIXES = (".json", ".mp4", ".vtt", ".srt")  # an output's files, in the order they are withdrawn


def withdraw_output(final: Path) -> None:
    """Remove one published output (`final` is its .mp4) with its sidecar (first: it marks it as published) and
    caption files."""
    for ext in OUTPUT_SUFFIXES:
        final.with_suffix(ext).unlink(missing_ok=True)


def withdraw_unplannable(
    manifest_path: Path,
    out_root: Path,
    *,
    platforms: list[str] | None = None,
    languages: list[str] | None = None,
    preview: bool = False,
) -> None:
    """Withdraw the outputs a render of this manifest would replace, when the manifest cannot be planned as it is
    now: they show it as it was, and the edit that broke it may be the fix of what they show (nothing, when even
    its id cannot be read)."""
    try:
        m = load_manifest(manifest_path).manifest
    except ClipperError:
        return
    suffix = ".preview" if preview else ""
    folder = out_root / m.id
    for language in languages or m.outputs.languages:
        for platform in platforms or m.outputs.platforms:
            withdraw_output(folder / f"{m.id}.{language}.{platform}{suffix}.mp4")


def log_dir(out_root: Path, plan: RenderPlan) -> Path:
    """Where a clip's ffmpeg logs are kept: beside the caches, never in the folder that is published (a log's
    command line names the source files)."""
    return cache_root(out_root) / "logs" / plan.manifest_id


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the hidden partial files and work folders an interrupted process left in `folder` (a render of an
    earlier version in output/<id>/, a batch report in output/); return what was removed. Renders now write under
    output/.work/ (see clipper.workarea, `remove_stale_work`)."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            # .logs: where ffmpeg's logs were kept before they moved beside the caches (they name the sources).
            if p.name.startswith(".") and (PARTIAL in p.name or p.name.startswith(".work-") or p.name == ".logs"):
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def measure_loudness(plan: RenderPlan, gain: LoudnessGain | None = None, sound: Path | None = None) -> Loudness:
    """Measure the clip's loudness (after `gain`, if given), audio only; `sound` replaces the cuts' audio."""
    err = run_ffmpeg(measure_cmd(plan, gain, sound), what="loudness measurement")
    try:
        return parse_loudness(err)
    except ValueError as e:
        raise ClipperError(
            f"could not read ffmpeg's loudness measurement ({e})", hint="run with --debug and report the log"
        ) from None


def plan_loudness(plan: RenderPlan, sound: Path | None = None) -> LoudnessGain | None:
    """Measure first, then choose the gain (and limiter) that brings the clip to target; None for silence.

    A plain gain is exact when the peaks allow it. Speech often has peaks more than 13 dB above its
    loudness, so the gain would push them over the true-peak ceiling: then a limiter catches them,
    which costs a little loudness, measured and made up in up to two correcting passes.
    """
    first = measure_loudness(plan, sound=sound)
    if first.silent:
        return None
    gain = LoudnessGain(gain_db=LOUDNESS_LUFS - first.input_i, limiter=False, measured=(first,))
    if first.input_tp + gain.gain_db <= LIMITER_CEILING_DB:
        return gain
    gain = LoudnessGain(gain_db=gain.gain_db, limiter=True, measured=(first,))
    tried: list[tuple[float, float]] = []  # (gain, loudness after it)
    for _ in range(MAX_LOUDNESS_CORRECTIONS):
        after = measure_loudness(plan, gain, sound)
        gain = LoudnessGain(gain_db=gain.gain_db, limiter=True, measured=(*gain.measured, after))
        tried.append((gain.gain_db, after.input_i))
        miss = LOUDNESS_LUFS - after.input_i
        if abs(miss) <= LOUDNESS_SETTLED_LU:
            break
        # Into a limiter, a dB of gain buys less than a dB of loudness (peaky sound, e.g. a vocoded voice, buys
        # much less): step by the slope measured between the last two passes (secant), not one for one.
        slope = 1.0
        if len(tried) >= 2 and tried[-1][0] != tried[-2][0]:
            slope = (tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0])
        step = miss / min(1.0, max(slope, 0.2))
        gain = LoudnessGain(gain_db=gain.gain_db + step, limiter=True, measured=gain.measured)
    return gain


def loudness_key(plan: RenderPlan, source_hashes: dict[str, str], sound: Path | None = None) -> str:
    """What determines the loudness passes: the measuring command with each source named by its content hash
    (a rewritten `sound` is named by its cache key, which already says what made it)."""
    argv = measure_cmd(plan, sound=sound)
    paths = {str(s.path): source_hashes[s.source] for s in plan.segments}
    # Input queue sizes only keep ffmpeg-python's inputs distinct (graph._input); they change nothing measured.
    named = [paths.get(a, a) for i, a in enumerate(argv) if "-thread_queue_size" not in argv[max(0, i - 1) : i + 1]]
    return hashlib.sha256(json.dumps([__version__, named]).encode()).hexdigest()


def cached_loudness(
    plan: RenderPlan, cache: Path, source_hashes: dict[str, str], sound: Path | None = None
) -> LoudnessGain | None:
    """plan_loudness, kept in `cache` so later variants of the same clip skip the measuring passes."""
    path = cache / "loudness" / f"{loudness_key(plan, source_hashes, sound)}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("silent"):
            return None
        return LoudnessGain(
            gain_db=float(data["gain_db"]),
            limiter=bool(data["limiter"]),
            measured=tuple(Loudness(float(i), float(tp)) for i, tp in data["measured"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable: measure (a measurement is only ever redone, never guessed)
    gain = plan_loudness(plan, sound)
    data = (
        {"silent": True}
        if gain is None
        else {
            "gain_db": gain.gain_db,
            "limiter": gain.limiter,
            "measured": [[m.input_i, m.input_tp] for m in gain.measured],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)
    return gain


@dataclass(frozen=True)
class SharedWork:
    """What every variant of a clip reuses: source hashes, the rewritten sound, the loudness gain, the faces."""

    source_hashes: dict[str, str]
    sound: PreparedSound | None
    gain: LoudnessGain | None
    faces: FaceAnalysis | None
    source_stamps: dict[Path, list[int]] = field(default_factory=dict)  # see media.file_stamp


def check_sources_unchanged(plan: RenderPlan, stamps: dict[Path, list[int]]) -> None:
    """Raise if a source was replaced or rewritten since its faces were analysed: the masks were placed on the
    pictures that were there then (the analysis and the encode each read the file; a copy finishing, or a sync
    tool replacing it in between, would have the masks laid over other pictures)."""
    for path, stamp in stamps.items():
        try:
            now = file_stamp(path)
        except OSError:
            now = None
        if now != stamp:
            raise MediaError(
                "changed while it was being rendered (replaced, rewritten or removed): the masks were placed on "
                "the pictures it held before; nothing was published",
                where=str(path),
                hint="let the copy or sync finish, then render again",
            )


def shared_work(
    plan: RenderPlan, out_root: Path, *, progress: Progress | None = None, detector: FaceDetector | None = None
) -> SharedWork:
    """Do (or load from the cache) the work shared by every variant of a clip: a batch runs it once per manifest."""
    progress = progress or Progress()
    stamps = {s.path: file_stamp(s.path) for s in plan.segments}  # before the hash: what the hash was taken of
    source_hashes = {s.source: content_hash(s.path, memo=hash_memo(out_root)) for s in plan.segments}
    sweep_cache_partials(cache_root(out_root))
    sound = prepare_sound(plan, cache_root(out_root), source_hashes)
    # Previews too: the measurement is of the sound alone (a fraction of a second a minute), cached for the renders
    # after them, and a guess would not do: one-pass loudnorm turned digital silence into NaN (the preview failed).
    gain = cached_loudness(plan, cache_root(out_root), source_hashes, sound and sound.path)
    faces = None
    if plan.faces is not None:
        # Once per clip, shared by every variant (and by later runs and previews, through the cache).
        faces = analyze_faces(
            plan,
            DetectionCache(cache_dir(out_root)),
            detector=detector,
            source_hashes=source_hashes,
            on_progress=progress.analyzing,
        )
    check_sources_unchanged(plan, stamps)
    return SharedWork(source_hashes, sound, gain, faces, stamps)


def render(
    plan: RenderPlan,
    out_root: Path,
    *,
    progress: Progress | None = None,
    detector: FaceDetector | None = None,
    overlays: bool = False,
    clean: bool = True,
    job_identity: str | None = None,
) -> list[RenderResult]:
    """Render, verify and publish every variant of the plan; stop at the first failure.

    `detector` replaces the default face detector (tests use it to make detection miss on purpose);
    `overlays` draws each face box, track id and score over the masks (for `preview --masks`). A batch passes
    clean=False (its coordinator clears leftovers before any worker starts: a worker must never delete another's
    partial files) and the job's identity, which the sidecar records.
    """
    progress = progress or Progress()
    folder = output_dir(out_root, plan)
    folder.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_stale_partials(folder)
        remove_stale_work(out_root)
    if overlays:
        plan = replace(
            plan, variants=tuple(replace(v, filename=v.filename.replace(".mp4", ".masks.mp4")) for v in plan.variants)
        )
    withdraw_outputs(folder, plan.variants)
    (folder / f"{plan.manifest_id}.voice.wav").unlink(missing_ok=True)  # a voice preview of the manifest as it was
    if not overlays and not all(v.preview for v in plan.variants):
        # output/<id>/ is what gets uploaded: the review sheet and the previews (360p, some with boxes, ids and
        # scores drawn) were for the editor before this render (a batch withdraws them too). A preview leaves them.
        (folder / f"{plan.manifest_id}.review.png").unlink(missing_ok=True)
        for p in folder.glob(f"{plan.manifest_id}.*.preview*.mp4"):
            withdraw_output(p)
    shared = shared_work(plan, out_root, progress=progress, detector=detector)
    results = []
    with work_area(out_root, plan.manifest_id) as work:
        for variant in plan.variants:
            results.append(
                _render_variant(
                    plan,
                    variant,
                    folder,
                    work,
                    shared.gain,
                    shared.source_hashes,
                    progress,
                    shared.faces,
                    overlays,
                    shared.sound,
                    job_identity,
                    shared.source_stamps,
                )
            )
    return results


def render_voice_only(plan: RenderPlan, out_root: Path) -> tuple[Path, str]:
    """Write the clip's sound as every output will carry it (voice changed, bleeps laid, before loudness) to
    <id>.voice.wav for a quick listen; return its path and the voice check's one-line verdict."""
    folder = output_dir(out_root, plan)
    folder.mkdir(parents=True, exist_ok=True)
    source_hashes = {s.source: content_hash(s.path, memo=hash_memo(out_root)) for s in plan.segments}
    final = folder / f"{plan.manifest_id}.voice.wav"
    final.unlink(missing_ok=True)  # made from the manifest as it was: never left standing if this one fails
    with work_area(out_root, plan.manifest_id) as work:
        tmp = work / f".{final.name}{PARTIAL}"
        verdict = _write_voice_only(plan, out_root, source_hashes, tmp, final.name)
        os.replace(tmp, final)
    return final, verdict


def _write_voice_only(plan: RenderPlan, out_root: Path, source_hashes: dict[str, str], tmp: Path, name: str) -> str:
    """Write the voice preview `name` to `tmp`; return the voice check's one-line verdict (raise if it fails)."""
    if not plan.processes_audio:
        from clipper.voice.sound import build_sound, write_wav

        samples, report = build_sound(plan, None)
        write_wav(tmp, samples, report.rate)
        return "voice not changed (anonymize.voice is mode none)"
    sound = prepare_sound(plan, cache_root(out_root), source_hashes)
    assert sound is not None
    if plan.voice is None or sound.original is None:
        shutil.copyfile(sound.path, tmp)
        return "voice not changed"
    from clipper.voice.check import RATE, THRESHOLDS, VoiceVerdict, compared_mask, decode_mono, similarity_of

    changed = decode_mono(sound.path)
    changed = changed[compared_mask(plan, len(changed))]
    sim, note = similarity_of(sound.original, changed)
    v = VoiceVerdict(sim, THRESHOLDS[plan.voice.strength], len(changed) / RATE, note)
    if not v.passed:
        # Not even for a listen: output/<id>/ is what gets uploaded, and this voice leads to the person.
        raise AnonymityError(
            f"{name}: the changed voice is still linkable to the original ({v.line()}); not written",
            where=plan.manifest_path.name,
            hint=_stronger_voice_hint(plan.voice.method, plan.voice.strength),
        )
    shutil.copyfile(sound.path, tmp)
    return v.line()


def _stronger_voice_hint(method: str, strength: str) -> str:
    """What to change when a voice measured linkable: the next setting up, or the other method."""
    if strength != "strong":
        return f"use a stronger setting: anonymize.voice.strength: strong (now {strength})"
    if method != "vocoder":
        return f"use method: vocoder (the stronger method; {method} strong is its strongest setting)"
    return (
        "vocoder strong is already the strongest setting: bleep what stays recognisable (sound: silence), or leave "
        "this clip out, and report it so the method can be tuned"
    )


@dataclass(frozen=True)
class PreparedSound:
    """The clip's rewritten sound (one WAV for every variant) and, when the voice was changed, the original
    voice the gate compares each output against."""

    path: Path
    report: SoundReport
    original: np.ndarray | None


def prepare_sound(plan: RenderPlan, cache: Path, source_hashes: dict[str, str]) -> PreparedSound | None:
    """Change the voice and lay the bleeps once per clip (cached); None when the sound is used as it is."""
    if not plan.processes_audio:
        return None
    from clipper.voice.embed import available as embed_available

    if plan.voice is not None and not embed_available():
        # Fail closed before any work: an output whose voice cannot be measured is never published.
        raise VoiceError(
            "the voice check's speaker encoder is not installed",
            hint="pip install --no-deps resemblyzer==0.1.4 (make setup does this)",
        )
    path, report = cached_sound(plan, cache, source_hashes)
    original = original_voice(plan) if plan.voice is not None else None
    return PreparedSound(path, report, original)


def _encode(
    plan: RenderPlan,
    variant: Variant,
    out: Path,
    *,
    cards: dict[str, Path],
    gain: LoudnessGain | None,
    settings: EncodeSettings,
    faces: FaceAnalysis | None,
    log_path: Path,
    on_progress: Callable[[float], None],
    overlays: bool = False,
    face_reframe: FaceReframe | None = None,
    captions: BurnFiles | None = None,
    sound: Path | None = None,
) -> str:
    """Encode one variant: straight from the sources, or through the masking pipe (faces, moving regions); return
    the encoder's log."""
    what = f"render of {variant.filename}"
    if not needs_pipe(plan) and not overlays:
        return run_ffmpeg(
            render_cmd(plan, variant, out, cards=cards, gain=gain, settings=settings, captions=captions, sound=sound),
            what=what,
            log_path=log_path,
            on_progress=on_progress,
        )
    layout = PipeLayout.for_plan(plan)
    cw, ch = layout.canvas
    masker = (OverlayMasker if overlays else FrameMasker)(plan, layout, faces)
    transform: Callable[[int, np.ndarray], np.ndarray] = masker
    out_layout, reframe = layout, None
    if plan.reframe == "face":
        assert faces is not None and face_reframe is not None
        if face_reframe.fallback:
            reframe = "pad-blur"
        else:
            out_layout = PipeLayout.for_plan(plan, [(p.width, p.height) for p in face_reframe.paths])
            transform = CroppingMasker(masker, face_reframe.paths, out_layout)
            reframe = "center"
    encoder_log: list[str] = []
    frames = run_ffmpeg_pipeline(
        decode_cmd(plan, layout),
        render_cmd(
            plan,
            variant,
            out,
            cards=cards,
            gain=gain,
            settings=settings,
            piped=out_layout,
            reframe=reframe,
            captions=captions,
            sound=sound,
        ),
        frame_bytes=yuv420_frame_bytes(cw, ch),
        transform=transform,
        what=what,
        log_path=log_path,
        on_progress=on_progress,
        encoder_log=encoder_log,
    )
    if frames != plan.clip_frames:
        raise ClipperError(
            f"{what}: {frames} frames went through the masks, expected {plan.clip_frames}",
            hint="the source may be damaged near a cut; re-export it, or move the cut",
        )
    return "".join(encoder_log)


def lay_out_captions(captions: CaptionPlan, width: int, height: int) -> tuple[list[LaidOutCue], CaptionFont, str]:
    """A language's cues laid out for a width×height frame, measured in its font; ClipperError naming the cue's
    file:line when one cannot fit. Returns the cues, the font and the language code as drawn."""
    # Drawn as planned: a two-script language ('ku') in the script of its whole file, as read_captions checked it.
    language = with_script(captions.language, captions.script)
    font = font_for(language, captions.font)
    style = style_for(width, height)
    laid = []
    for cue in captions.cues:
        lines, em = lay_out(cue.lines, font, style, where=f"{captions.file}:{cue.line}")
        laid.append(LaidOutCue(cue.start, cue.end, lines, em, cue.line))
    return laid, font, language


def prepare_captions(plan: RenderPlan, captions: CaptionPlan, variant: Variant, work: Path) -> BurnFiles:
    """Lay out a language's cues for a variant's frame (measured in its font) and write what libass reads."""
    laid, font, language = lay_out_captions(captions, variant.width, variant.height)
    return write_burn_files(laid, font, style_for(variant.width, variant.height), plan.fps, language, work)


def write_caption_sidecars(cues: Sequence[TimedCue], fps: Fraction, *, vtt: Path, srt: Path) -> None:
    """Write the captions as WebVTT and SubRip files timed to the rendered clip (cards included), plain text.

    Written here rather than by webvtt-py, whose writer refuses a cue line holding "-->" (after the encode, a crash)
    and whose SubRip output drops anything between angle brackets ("5 < 6 & 7 > 2" came out as "5  2").
    """

    def clock(frame: int, sep: str) -> str:
        ms = round(Fraction(frame) / fps * 1000)
        h, rest = divmod(ms, 3_600_000)
        m, rest = divmod(rest, 60_000)
        sec, milli = divmod(rest, 1000)
        return f"{h:02d}:{m:02d}:{sec:02d}{sep}{milli:03d}"

    # A blank line would end the cue early in both formats; a cue with no text is not written at all.
    shown = [(c, [line for line in c.lines if line.strip()]) for c in cues]
    shown = [(c, lines) for c, lines in shown if lines]
    vtt_blocks = ["WEBVTT"]
    srt_blocks = []
    for n, (c, lines) in enumerate(shown, 1):
        # WebVTT cue text is markup: &, < and > are written as character references (so "-->" cannot occur).
        text = "\n".join(line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for line in lines)
        vtt_blocks.append(f"{clock(c.start, '.')} --> {clock(c.end, '.')}\n{text}")
        # SubRip has no escapes: text is written as it is, but for an arrow that readers take for a timing line.
        text = "\n".join(line.replace("-->", "→") for line in lines)
        srt_blocks.append(f"{n}\n{clock(c.start, ',')} --> {clock(c.end, ',')}\n{text}")
    vtt.write_text("\n\n".join(vtt_blocks) + "\n", encoding="utf-8")
    srt.write_text("\n\n".join(srt_blocks) + "\n" if srt_blocks else "", encoding="utf-8")


def _render_variant(
    plan: RenderPlan,
    variant: Variant,
    folder: Path,
    work: Path,
    gain: LoudnessGain | None,
    source_hashes: dict[str, str],
    progress: Progress,
    faces: FaceAnalysis | None = None,
    overlays: bool = False,
    sound: PreparedSound | None = None,
    job_identity: str | None = None,
    source_stamps: dict[Path, list[int]] | None = None,
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
    tmp = work / f".{variant.filename}{PARTIAL}"
    logs = log_dir(folder.parent, plan)
    captions = plan.captions.get(variant.language)
    burn = None
    if captions is not None:
        burn = prepare_captions(plan, captions, variant, work / f"captions-{variant.language}-{variant.platform}")
    expect = Expectation(
        width=variant.width,
        height=variant.height,
        fps=plan.fps,
        frames=plan.total_frames,
        max_bytes=variant.max_bytes,
        loudness=not variant.preview and gain is not None,
        forbidden=identifying_names(plan),
    )
    face_reframe = None
    if plan.reframe == "face" and faces is not None:
        face_reframe = plan_face_reframe(plan, faces, Fraction(variant.width, variant.height))
        if face_reframe.fallback:
            log.warning(
                "%s: faces do not fit a %dx%d window (%s); using pad-blur",
                variant.filename,
                variant.width,
                variant.height,
                face_reframe.fallback,
            )
    try:
        settings = EncodeSettings.for_variant(variant)
        for attempt in range(MAX_SIZE_ATTEMPTS):
            progress.start(variant, plan.duration_s)
            log_text = _encode(
                plan,
                variant,
                tmp,
                cards=cards,
                gain=gain,
                settings=settings,
                faces=faces,
                overlays=overlays,
                face_reframe=face_reframe,
                captions=burn,
                sound=sound.path if sound else None,
                log_path=logs / f"{variant.filename}.log",
                on_progress=lambda s: progress.advance(variant, s),
            )
            if burn is not None:  # this encode's own log (the file under a shared cache may be another render's)
                check_font_log(log_text, what=f"render of {variant.filename}")
            # Previews are checked too (they get passed around): everything but loudness (their gain is the render's,
            # measured; a preview is a look, not a file to publish).
            report = verify_output(tmp, expect)
            if not report.failures:
                break
            if [f for f in report.failures if not f.startswith("file_size")] or attempt == MAX_SIZE_ATTEMPTS - 1:
                raise VerifyError(
                    f"{variant.filename} failed its checks and was not published:\n  " + "\n  ".join(report.failures),
                    where=plan.manifest_path.name,
                    hint="run with --debug; the ffmpeg log is in " + str(logs),
                )
            assert variant.max_bytes is not None
            settings = settings.shrunk_to(tmp.stat().st_size, variant.max_bytes)
            log.info("%s over its size cap; re-encoding at %d b/s", variant.filename, settings.max_bitrate)
        check_sources_unchanged(plan, source_stamps or {})
        gate = check_faces(plan, tmp, variant, faces) if plan.faces is not None else None
        voice_check: dict[str, object] = {"checked": False, "why": "voice not changed"}
        if plan.voice is not None:
            assert sound is not None and sound.original is not None
            verdict = check_voice(plan, tmp, sound.original)
            voice_check = verdict.to_json()
            if not verdict.passed:
                raise AnonymityError(
                    f"{variant.filename}: the changed voice is still linkable to the original ({verdict.line()}); "
                    "nothing was published",
                    where=plan.manifest_path.name,
                    hint=_stronger_voice_hint(plan.voice.method, plan.voice.strength),
                )
        sha = file_sha256(tmp)
        size = tmp.stat().st_size
        sidecar = Sidecar(
            clipper_version=__version__,
            manifest_id=plan.manifest_id,
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
                    "clip_start_s": round(float((s.clip_start_frame + plan.intro_frames) / plan.fps), 6),
                    "frames": s.out_frames,
                }
                for s in plan.segments
            ],
            cards={c.kind: round(float(c.frames / plan.fps), 6) for c in (plan.intro, plan.outro) if c},
            anonymity=plan.anonymity,
            reframe=face_reframe.report() if face_reframe else {"mode": plan.reframe},
            faces=None
            if faces is None or plan.faces is None
            else {
                "mode": plan.faces.mode,
                "shape": plan.faces.shape,
                "padding": plan.faces.padding,
                "hold_frames": faces.tracking.hold_frames,
                **faces.report(),
            },
            regions=[
                {
                    "box": list(r.box),
                    "mode": r.mode,
                    "frames": [r.start_frame, r.end_frame],
                    # A moving region: every keyframe (clip seconds, box), not only the first box.
                    **({"keyframes": [[round(float(t), 6), list(b)] for t, b in r.keyframes]} if r.keyframes else {}),
                }
                for r in plan.regions
            ],
            loudness=None
            if gain is None
            else {
                "gain_db": round(gain.gain_db, 3),
                "true_peak_limiter": gain.limiter,
                "passes": [{"integrated_lufs": m.input_i, "true_peak_dbtp": m.input_tp} for m in gain.measured],
            },
            encode={"preset": settings.preset, "crf": settings.crf, "max_bitrate": settings.max_bitrate},
            captions=None
            if captions is None or burn is None
            else {
                "cues": len(captions.cues),
                "cues_outside_the_cuts": captions.dropped,
                "cues_with_bleeped_words": captions.redacted,
                "font": burn.font_family,
                "sidecars": [final.with_suffix(ext).name for ext in (".vtt", ".srt")],
            },
            sound=None if sound is None else sound.report.to_json(),
            checks={
                **report.checks,
                **(
                    {}
                    if expect.loudness
                    else {
                        "loudness": {
                            "checked": False,
                            "why": "a preview: it carries the render's measured gain"
                            if variant.preview
                            else "the clip is silent: there is no sound to measure",
                        }
                    }
                ),
                "faces": gate or {"checked": False, "why": "faces opted out"},
                "voice": voice_check,
            },
            render_seconds=round(time.monotonic() - started, 3),
            job_identity=job_identity,
        )
        side_final = final.with_suffix(".json")
        side_tmp = work / f".{side_final.name}{PARTIAL}"
        side_tmp.write_text(sidecar.model_dump_json(indent=2) + "\n", encoding="utf-8")
        write_provenance(plan, variant, sha, source_hashes, captions, logs)
        texts = {}
        if captions is not None:
            texts = {ext: work / f".{final.with_suffix(ext).name}{PARTIAL}" for ext in (".vtt", ".srt")}
            write_caption_sidecars(captions.cues, plan.fps, vtt=texts[".vtt"], srt=texts[".srt"])
        # The file renamed is the one hashed and checked: it lives in this render's own locked work folder.
        with publishing(folder.parent, plan.manifest_id):
            os.replace(tmp, final)
            for ext, t in texts.items():
                os.replace(t, final.with_suffix(ext))
            os.replace(side_tmp, side_final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for ext in (".json", ".vtt", ".srt"):
            (work / f".{final.with_suffix(ext).name}{PARTIAL}").unlink(missing_ok=True)
        raise
    result = RenderResult(variant=variant, path=final, sidecar=side_final, seconds=sidecar.render_seconds, bytes=size)
    progress.finish(result)
    return result


def write_provenance(
    plan: RenderPlan,
    variant: Variant,
    output_sha256: str,
    source_hashes: dict[str, str],
    captions: CaptionPlan | None,
    logs: Path,
) -> Path:
    """Record what made an output, by name, beside its logs (under the cache, never published)."""
    record = Provenance(
        output_file=variant.filename,
        output_sha256=output_sha256,
        manifest_file=str(plan.manifest_path),
        manifest_sha256=plan.manifest_sha256,
        sources={s.source: {"path": str(s.path), "sha256": source_hashes[s.source]} for s in plan.segments},
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
        captions_file=None if captions is None else str(captions.file),
        opt_out_reasons=plan.opt_out_reasons,
    )
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{Path(variant.filename).stem}.provenance.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")
    tmp.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def gate_every() -> int:
    """GATE_EVERY, or CLIPPER_GATE_EVERY (1 = every frame of every output, for a final check before publishing)."""
    raw = os.environ.get("CLIPPER_GATE_EVERY", "").strip()
    if not raw:
        return GATE_EVERY
    if not raw.isdigit() or not 1 <= int(raw) <= GATE_EVERY:
        # Sparser than the measured bound would let a face the gate sees only now and then slip between checks.
        raise ClipperError(
            f"CLIPPER_GATE_EVERY={raw!r} must be between 1 and {GATE_EVERY}", hint="unset it for the default"
        )
    return int(raw)


def gate_frames(plan: RenderPlan, faces: FaceAnalysis | None = None, every: int | None = None) -> list[int]:
    """Output frames the face gate checks: every `every`-th (default GATE_EVERY), and all frames where a face is
    likelier to slip through: near a join or card edge, where masks are held or the picture is dark (the primary
    detector did not see the face there), and near every frame where the number of masks changes (a face coming
    into view or leaving it, where a track's first or last detection may be late), and every frame the analysis
    looked at because it flashed a picture of its own."""
    every = every or gate_every()
    cuts = [plan.intro_frames + s.clip_start_frame for s in plan.segments] + [plan.intro_frames + plan.clip_frames]
    if faces is None or every == 1:
        return select_frames(plan.total_frames, every=every, cuts=cuts, margin=GATE_CUT_MARGIN)
    # The joins' margins, the first and the last frame; then every k-th frame of the cards from their start, and of
    # each cut from its 2nd frame: the analysis looked at frames 0, 2, 4… of a cut (stride 2), so the gate's samples
    # fall on the frames it skipped, and every frame of a cut is seen by one of the two detectors.
    chosen = set(select_frames(plan.total_frames, every=plan.total_frames + 1, cuts=cuts, margin=GATE_CUT_MARGIN))
    chosen.update(range(0, plan.intro_frames, every))
    chosen.update(range(plan.intro_frames + plan.clip_frames, plan.total_frames, every))
    for start, end in zip(cuts, cuts[1:], strict=False):
        chosen.update(range(start + 1, end, every))
    for s_idx, seg_plan in enumerate(plan.segments):
        # Whatever the stride (CLIPPER_ANALYSIS_STRIDE=3 leaves two frames in three to the gate, which at every 2nd
        # frame saw only one of them: a QA audit published a face shown on such a frame), every frame the analysis
        # did not look at is the gate's.
        analysed = faces.analysed(s_idx)
        first = plan.intro_frames + seg_plan.clip_start_frame
        chosen.update(first + j for j in range(seg_plan.out_frames) if j not in analysed)
    for seg_plan, seg in zip(plan.segments, faces.segments, strict=True):
        # A frame the analysis looked at only because it flashed a picture of its own: the gate's own sampling
        # could skip it as the analysis's stride did, so it is checked, as are its neighbours.
        for j in seg.flashed:
            frame = plan.intro_frames + seg_plan.clip_start_frame + j
            chosen.update(range(max(0, frame - 1), min(plan.total_frames, frame + 2)))
    previous: tuple[int, bool] | None = None
    for clip_frame in range(plan.clip_frames):
        _, mask = faces.mask_at(clip_frame)
        frame = plan.intro_frames + clip_frame
        reasons = set(mask.reason.split("+"))
        # Between two detections a mask is both bridged and held: certain enough. Held alone (before a face's first
        # detection, after its last, across a long gap) or dark: the primary did not see the face there.
        if "dark" in reasons or ("held" in reasons and not reasons & {"detected", "interpolated"}):
            chosen.add(frame)
        # Faces in view, not boxes: a face bridged between two detections carries its interpolated box and both
        # holds (three overlapping boxes) where a detected frame has one, so box counts flicker at any stride > 1.
        state = (faces_in_view(mask.boxes), mask.full_frame)
        if previous is not None and state != previous:
            chosen.update(range(max(0, frame - every), min(plan.total_frames, frame + every)))
        previous = state
    return sorted(chosen)


def faces_in_view(boxes: Sequence[PixelBox]) -> int:
    """How many separate places the boxes mask: groups of boxes that overlap, directly or through others."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (ax, ay, aw, ah) in enumerate(boxes):
        for j in range(i):
            bx, by, bw, bh = boxes[j]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                parent[root(i)] = root(j)
    return len({root(i) for i in range(len(boxes))})


def check_faces(plan: RenderPlan, path: Path, variant: Variant, faces: FaceAnalysis | None) -> dict[str, object]:
    """Run the independent face detector over a rendered file; raise AnonymityError if it finds any face."""
    result = scan_video(path, frames=gate_frames(plan, faces))
    if result.frames_checked == 0:
        raise AnonymityError(f"the face check read no frame of {variant.filename}", where=str(path))
    confirmed, dismissed = confirm_hits(path, result.hits)
    summary = {
        "checked": True,
        "detector": result.detector,
        "frames_checked": result.frames_checked,
        "every": gate_every(),
        "frames": result.frames_decoded,
        "analysis_size": list(result.analysis_size),
        "faces_found": len(confirmed),
        # Candidates the closer look did not confirm, kept so a person can check them (times in the file).
        "dismissed_on_closer_look": [{"time_s": round(h.time_s, 3), "score": round(h.score, 3)} for h in dismissed],
    }
    if confirmed:
        times = sorted({round(h.time_s, 3) for h in confirmed})
        listed = ", ".join(f"{t:.2f} s" for t in times[:12]) + (" …" if len(times) > 12 else "")
        raise AnonymityError(
            f"{variant.filename} was not published: the verify detector found a face in "
            f"{len({h.frame for h in confirmed})} frame(s), at {listed} ({result.summary()})",
            where=plan.manifest_path.name,
            hint="look at those times with `clipper preview --masks`; if a face shows, raise anonymize.faces.padding "
            "or use mode solid; if it is not a person's face (a poster, a printed face), cover it with a region",
        )
    return summary


def identifying_names(plan: RenderPlan) -> tuple[bytes, ...]:
    """File names that must never appear inside an output: the sources' and the manifest's (long enough to
    be specific; a short name like 'a' would match by chance)."""
    names = {s.path.stem for s in plan.segments} | {plan.manifest_path.stem}
    return tuple(sorted(n.encode() for n in names if len(n) >= 6))

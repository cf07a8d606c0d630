"""Jobs as data: manifests → plans → one analysis job per manifest and one render job per variant.

A render job's identity is a hash of everything that decides its output file: the variant's own plan (cuts,
masks, cards, its language's cues, its platform's geometry and bitrate, the voice plan and bleeps, clipper's
version) with every file it names replaced by the file's content hash, the voice secret's effect (a one-way
tag of the speaker's seed), how faces are found (the detector and its settings, but not its precision: a render
on another CPU is masked by the same rule) and RENDER_VERSION. What only other variants use is not in it, so
adding a platform to a manifest leaves the existing variants' identities, and their outputs, alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from clipper.errors import ClipperError
from clipper.plan import RenderPlan

# Bumped whenever clipper's code changes what a published file shows for the same plan: every output made before is
# then made again by the next batch, instead of standing as done. A fix that masks a face the old code missed must
# not leave the old file published (the plan alone did not change: clipper's version is not bumped per commit).
# 2: faces larger than the full-resolution pass sees, faces in shadow, BT.709 and HDR colour, deinterlacing.
RENDER_VERSION = 2


def faces_identity(plan: RenderPlan) -> str | None:
    """How the plan's faces are found: the detector, its settings and the analysis stride (None without faces)."""
    if plan.faces is None:
        return None
    from clipper.analyze import FLASH_THRESHOLD, analysis_stride
    from clipper.faces.detect import CenterFace

    # The f32 identity names the model and every setting but the precision (see the module docstring).
    return f"{CenterFace(precision='f32').id}-stride{analysis_stride()}-flash{FLASH_THRESHOLD}"


@dataclass(frozen=True)
class RenderJob:
    """One output to make: a language on a platform of one manifest."""

    identity: str
    manifest: Path
    manifest_id: str
    language: str
    platform: str
    output: str  # file name inside output/<manifest_id>/
    inputs: dict[str, str]  # every file the output depends on → its sha256

    @property
    def variant(self) -> str:
        """'<language>.<platform>', as people name a variant."""
        return f"{self.language}.{self.platform}"


@dataclass(frozen=True)
class AnalysisJob:
    """The work shared by every variant of one manifest: face detections, the rewritten sound, loudness."""

    manifest: Path
    manifest_id: str
    renders: tuple[str, ...]  # identities of the render jobs that wait for it


@dataclass(frozen=True)
class PlannedManifest:
    """A manifest's jobs, or the error that stops all of them."""

    manifest: Path
    analysis: AnalysisJob | None
    renders: tuple[RenderJob, ...]
    error: ClipperError | None = None
    notes: tuple[str, ...] = ()  # the plan's notes to the editor (RenderPlan.notes)


def _by_content(value: Any, named: dict[str, str]) -> Any:
    """The plan's JSON with every file path replaced by the file's content hash (moving a folder changes nothing)."""
    if isinstance(value, dict):
        return {k: _by_content(v, named) for k, v in value.items()}
    if isinstance(value, list):
        return [_by_content(v, named) for v in value]
    if isinstance(value, str) and value in named:
        return "sha256:" + named[value]
    return value


def render_identity(plan: RenderPlan, hashes: dict[Path, str], voice_tag: str | None) -> str:
    """The identity of a one-variant plan's output (see the module docstring)."""
    assert len(plan.variants) == 1
    data = plan.to_json()
    # What does not decide the output's bytes: where the manifest lives, the hash of all of it (another variant's
    # platform is in there too) and the notes to the editor (they name the manifest's path). Captions of other
    # languages never reach a one-variant plan's output.
    for key in ("manifest_path", "manifest_sha256", "notes"):
        data.pop(key, None)
    lang = plan.variants[0].language
    data["captions"] = {k: v for k, v in data.get("captions", {}).items() if k == lang}
    data = _by_content(data, {str(p): h for p, h in hashes.items()})
    # A retuned voice preset changes the output under the same manifest: the preset's numbers are part of it.
    from clipper.voice.methods import preset_fingerprint  # scipy: imported when needed

    preset = preset_fingerprint(plan.voice.method, plan.voice.strength) if plan.voice is not None else None
    # How the sound is made (SOUND_VERSION) decides the output's bytes too, like clipper's version in the plan.
    from clipper.voice.sound import SOUND_VERSION

    blob = json.dumps(
        [data, voice_tag, preset, SOUND_VERSION, RENDER_VERSION, faces_identity(plan)], sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_paths(plan: RenderPlan) -> set[Path]:
    """Every file a plan reads: sources, subtitle files, fonts, logo."""
    paths = {s.path for s in plan.segments}
    paths |= {c.file for c in plan.captions.values()}
    paths |= {c.font for c in plan.captions.values() if c.font}
    paths |= {c.font for c in (plan.intro, plan.outro) if c and c.font}
    if plan.logo:
        paths.add(plan.logo.path)
    return paths


def voice_tag(plan: RenderPlan) -> str | None:
    """A one-way tag of the speaker's voice seed (the secret changes outputs, so it changes identities)."""
    if plan.voice is None:
        return None
    from clipper.voice.secret import load_secret, speaker_seed

    seed = speaker_seed(load_secret(), plan.voice.speaker)
    return hmac.new(seed, b"clipper job identity", hashlib.sha256).hexdigest()


def plan_jobs(manifest: Path, memo: Path | None = None) -> PlannedManifest:
    """Plan one manifest's jobs; a manifest that cannot be planned yields its error instead (not an exception).
    `memo`: where the files' content hashes are remembered across runs (see media.content_hash)."""
    from clipper.media import content_hash
    from clipper.render import prepare

    try:
        plan = prepare(manifest)
        hashes = {p: content_hash(p, memo=memo) for p in sorted(plan_paths(plan))}
        tag = voice_tag(plan)
    except ClipperError as e:
        return PlannedManifest(manifest, None, (), e)
    renders = []
    for v in plan.variants:
        one = replace(plan, variants=(v,), captions={k: c for k, c in plan.captions.items() if k == v.language})
        renders.append(
            RenderJob(
                identity=render_identity(one, hashes, tag),
                manifest=manifest,
                manifest_id=plan.manifest_id,
                language=v.language,
                platform=v.platform,
                output=v.filename,
                inputs={str(p): h for p, h in hashes.items()},
            )
        )
    analysis = AnalysisJob(manifest, plan.manifest_id, tuple(r.identity for r in renders))
    return PlannedManifest(manifest, analysis, tuple(renders), notes=plan.notes)

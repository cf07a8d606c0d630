"""From a manifest and probed media facts to a RenderPlan: pure data, no I/O, every rule unit-testable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipper import __version__
from clipper.captions.fonts import script_of
from clipper.captions.read import SubtitleFile
from clipper.captions.redact import redact
from clipper.captions.timing import TimedCue, retime
from clipper.errors import ClipperError, ManifestError
from clipper.manifest import Card, LoadedManifest, Manifest, VoiceChange
from clipper.media import MediaFacts
from clipper.presets import AUDIO_BITRATE, PRESETS, PREVIEW_HEIGHT, Preset, output_fps
from clipper.timecode import Timecode, format_clock

# Container overhead and encoder overshoot kept back when a platform caps the file size.
SIZE_CAP_HEADROOM = 0.90
MIN_VIDEO_BITRATE = 250_000


@dataclass(frozen=True)
class SegmentPlan:
    """One cut: source frames [in_frame, out_frame) at the source's rate, placed at clip_start_frame."""

    index: int
    source: str
    path: Path
    src_fps: Fraction
    in_frame: int
    out_frame: int
    out_frames: int  # frames this cut contributes at the clip's rate
    clip_start_frame: int
    has_audio: bool
    display_width: int
    display_height: int
    sar: Fraction
    # Where frame 0 of the video sits relative to the start ffmpeg seeks from (see MediaFacts).
    video_offset_s: Fraction = Fraction(0)
    sample_rate: int | None = None  # the source's audio rate (None: no audio)
    unnamed_channels: int = 0  # channels of a sound with no named layout (ffmpeg cannot downmix it by itself)
    interlace: str = ""  # MediaFacts.interlace: "" progressive, else how its frames are deinterlaced
    matrix: str = "bt709"  # MediaFacts.matrix: the picture's YCbCr matrix ("" for RGB); made BT.709 on decoding
    hdr: str = ""  # MediaFacts.hdr: "pq" or "hlg" for a picture tone-mapped to SDR on decoding
    primaries: str = ""  # MediaFacts.primaries, for an HDR picture

    @property
    def in_s(self) -> Fraction:
        """Source time of the first frame."""
        return self.in_frame / self.src_fps


@dataclass(frozen=True)
class RegionPlan:
    """A box always masked over clip frames [start_frame, end_frame); keyframed boxes move with clip frames."""

    box: tuple[float, float, float, float]
    mode: str
    start_frame: int
    end_frame: int
    keyframes: tuple[tuple[Fraction, tuple[float, float, float, float]], ...] = ()  # (clip seconds, box), in order

    def box_at(self, frame: int, fps: Fraction) -> tuple[float, float, float, float]:
        """The box to mask on a clip frame: covering the path over the frame's whole time (half a frame either side
        of it), linear between keyframes, held before the first and after the last.

        Keyframe times fall between frames as often as not (an editor reads them off a player in milliseconds): a box
        taken at one instant, or at keyframes rounded to frames, trailed a thing moving 833 px/s by 16 px."""
        if not self.keyframes:
            return self.box
        t0, t1 = (frame - Fraction(1, 2)) / fps, (frame + Fraction(1, 2)) / fps
        boxes = [self._box_at_time(t0), self._box_at_time(t1), *(b for t, b in self.keyframes if t0 < t < t1)]
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
        return (x0, y0, x1 - x0, y1 - y0)

    def _box_at_time(self, t: Fraction) -> tuple[float, float, float, float]:
        keys = self.keyframes
        if t <= keys[0][0]:
            return keys[0][1]
        for (t0, b0), (t1, b1) in zip(keys, keys[1:], strict=False):
            if t <= t1:
                u = float((t - t0) / (t1 - t0))
                return tuple(a + (b - a) * u for a, b in zip(b0, b1, strict=True))  # type: ignore[return-value]
        return keys[-1][1]


@dataclass(frozen=True)
class FacePlan:
    """How faces are found and masked: the same for every variant, so their analysis is shared."""

    mode: str  # pixelate | solid | blur
    shape: str  # box | ellipse
    padding: float


@dataclass(frozen=True)
class CardPlan:
    """A text card of a fixed number of frames."""

    kind: str  # intro | outro
    text: str
    frames: int
    color: str
    background: str
    font: Path | None
    text_size: float


@dataclass(frozen=True)
class LogoPlan:
    """A PNG over the clip's segments (not the cards)."""

    path: Path
    corner: str
    width: float
    margin: float
    opacity: float


@dataclass(frozen=True)
class Variant:
    """One output file: a language on a platform."""

    language: str
    platform: str
    width: int
    height: int
    filename: str
    max_bytes: int | None
    max_video_bitrate: int | None  # set when a size cap decides the bitrate
    preview: bool = False


@dataclass(frozen=True)
class CaptionPlan:
    """One language's captions: its cues on the output's frames, and the font to draw them with (None: bundled)."""

    language: str
    file: Path
    font: Path | None
    cues: tuple[TimedCue, ...]
    dropped: int  # cues of the file that fall outside every cut
    redacted: int = 0  # cues with words replaced by the bleep marker
    script: str = "latin"  # the bundled font's script, for the whole file (fonts.script_of: 'ku' is written in two)


Span = tuple[Fraction, Fraction]  # [start, end) in clip seconds: 0 = the first frame after the intro card


@dataclass(frozen=True)
class VoicePlan:
    """How the voice is changed: method and strength; the speaker's pseudonym keys its secret parameters."""

    method: str
    strength: str
    speaker: str
    spans: tuple[Span, ...] | None  # None: the whole clip


@dataclass(frozen=True)
class BleepPlan:
    """A bleep and where it lands in the clip (nowhere when it is outside every cut)."""

    index: int
    reason: str
    sound: str  # tone | silence
    timed_to: str  # a source name, or "clip"
    start: Fraction  # as written, on timed_to's timeline
    end: Fraction
    spans: tuple[Span, ...]
    words: tuple[str, ...] = ()  # replaced in every cue shown under the bleep, wherever a translation puts them


@dataclass(frozen=True)
class RenderPlan:
    """Everything needed to render every variant of one manifest."""

    manifest_id: str
    title: str
    manifest_path: Path
    manifest_sha256: str
    clipper_version: str
    fps: Fraction
    segments: tuple[SegmentPlan, ...]
    regions: tuple[RegionPlan, ...]
    intro: CardPlan | None
    outro: CardPlan | None
    logo: LogoPlan | None
    reframe: str
    anonymity: dict[str, str]  # as every sidecar states it: no free text of the editor's
    faces: FacePlan | None  # None: opted out (the reason is in opt_out_reasons)
    variants: tuple[Variant, ...]
    clip_frames: int  # frames of the segments alone
    steps: tuple[str, ...] = field(default=())
    captions: dict[str, CaptionPlan] = field(default_factory=dict)  # language -> captions (none: no captions)
    voice: VoicePlan | None = None  # None: opted out (the reason is in opt_out_reasons)
    # The reasons given for `mode: none` ("faces" / "voice"): the editor's own words, which may name the person
    # ("narration by Ahmed's cousin"); shown by `plan` and kept in the provenance file, never published.
    opt_out_reasons: dict[str, str] = field(default_factory=dict)
    bleeps: tuple[BleepPlan, ...] = ()
    # Allowed but likely not what the editor meant, each located ("file:line: field: what\n  hint: fix"): shown by
    # validate, plan and render, and logged by a batch; never a reason to stop.
    notes: tuple[str, ...] = ()

    @property
    def processes_audio(self) -> bool:
        """True when the clip's sound is rewritten (voice changed or bleeped) before it is encoded."""
        return self.voice is not None or any(b.spans for b in self.bleeps)

    def bleep_spans(self) -> list[Span]:
        """Every bleeped stretch of the clip, in clip seconds, in order."""
        return sorted(span for b in self.bleeps for span in b.spans)

    @property
    def total_frames(self) -> int:
        """Frames in each output: intro + segments + outro."""
        return self.clip_frames + (self.intro.frames if self.intro else 0) + (self.outro.frames if self.outro else 0)

    @property
    def duration_s(self) -> float:
        """Length of each output in seconds."""
        return float(self.total_frames / self.fps)

    @property
    def intro_frames(self) -> int:
        """Frames before the first segment."""
        return self.intro.frames if self.intro else 0

    def to_json(self) -> dict[str, Any]:
        """Return the plan as JSON-ready data."""

        def conv(o: Any) -> Any:
            if isinstance(o, Fraction):
                return str(o)
            if isinstance(o, Path):
                return str(o)
            if isinstance(o, dict):
                return {k: conv(v) for k, v in o.items()}
            if isinstance(o, list | tuple):
                return [conv(v) for v in o]
            return o

        d = conv(asdict(self))
        d["total_frames"] = self.total_frames
        d["duration_s"] = round(self.duration_s, 6)
        return d


def plan_clip(
    lm: LoadedManifest,
    facts: dict[str, MediaFacts],
    *,
    platforms: list[str] | None = None,
    languages: list[str] | None = None,
    preview: bool = False,
    subtitles: dict[str, SubtitleFile] | None = None,
) -> RenderPlan:
    """Turn a loaded manifest, its sources' facts and its subtitle files (read) into a RenderPlan; raise
    ManifestError on any problem."""
    m = lm.manifest
    problems: list[ClipperError] = []
    used = [seg.source for seg in m.segments]
    fps = output_fps(max(facts[name].fps for name in used))

    segments: list[SegmentPlan] = []
    clip_frame = 0
    for i, seg in enumerate(m.segments):
        f = facts[seg.source]
        in_frame = _frame(lm, ("segments", i, "in"), seg.in_, f.fps, problems)
        out_frame = _frame(lm, ("segments", i, "out"), seg.out, f.fps, problems)
        if in_frame is None or out_frame is None:
            continue
        src_frames = max(1, math.floor(Fraction(str(f.duration_s)) * f.fps + Fraction(1, 2)))
        if out_frame <= in_frame:
            problems.append(
                lm.problem(
                    ("segments", i, "out"),
                    f"'out' ({seg.out}) must come after 'in' ({seg.in_})",
                    "swap them or fix the timecode",
                )
            )
            continue
        if in_frame >= src_frames or out_frame > src_frames:
            bad = "in" if in_frame >= src_frames else "out"
            problems.append(
                lm.problem(
                    ("segments", i, bad),
                    f"'{bad}' ({seg.in_ if bad == 'in' else seg.out} = frame {in_frame if bad == 'in' else out_frame}) "
                    f"is beyond the end of source {seg.source!r} ({format_clock(f.duration_s)}, {src_frames} frames)",
                    f"the last usable 'out' is {format_clock(src_frames / f.fps)}",
                )
            )
            continue
        n_out = out_frame - in_frame if f.fps == fps else max(1, round((out_frame - in_frame) / f.fps * fps))
        segments.append(
            SegmentPlan(
                index=i,
                source=seg.source,
                path=f.path,
                src_fps=f.fps,
                in_frame=in_frame,
                out_frame=out_frame,
                out_frames=n_out,
                clip_start_frame=clip_frame,
                has_audio=f.has_audio,
                display_width=f.display_width,
                display_height=f.display_height,
                sar=f.sar,
                video_offset_s=video_lead(f),
                sample_rate=f.sample_rate,
                unnamed_channels=(f.channels or 0) if (f.channel_layout or "").endswith(" channels") else 0,
                interlace=f.interlace,
                matrix=f.matrix,
                hdr=f.hdr,
                primaries=f.primaries,
            )
        )
        clip_frame += n_out
    clip_frames = clip_frame

    regions: list[RegionPlan] = []
    for i, r in enumerate(m.anonymize.regions):
        # Fail closed at frame edges: a frame that is on screen for any part of [from, to) is masked.
        start = 0 if r.from_ is None else math.floor(r.from_.to_seconds(fps) * fps)
        end = clip_frames if r.to is None else min(clip_frames, math.ceil(r.to.to_seconds(fps) * fps))
        if start >= clip_frames and clip_frames:
            problems.append(
                lm.problem(
                    ("anonymize", "regions", i, "from"),
                    f"starts at {r.from_} but the clip is only {format_clock(clip_frames / fps)} long",
                    "region times are clip times (0 = first frame of the first segment)",
                )
            )
            continue
        keys: list[tuple[Fraction, tuple[float, float, float, float]]] = []
        for k_idx, k in enumerate(r.keyframes or []):
            try:
                keys.append((k.at.to_seconds(fps), k.box))
            except ValueError as e:
                loc = ("anonymize", "regions", i, "keyframes", k_idx, "at")
                problems.append(lm.problem(loc, str(e), "SMPTE frames count at the clip's frame rate"))
        if keys and keys[0][0] * fps >= clip_frames:
            problems.append(
                lm.problem(
                    ("anonymize", "regions", i, "keyframes"),
                    f"every keyframe is after the clip's end ({format_clock(clip_frames / fps)}): the box would stay "
                    "where the first one is, not follow what it should hide",
                    "keyframe times are clip times (0 = first frame of the first segment), not the source's",
                )
            )
            continue
        box = r.box if r.box is not None else (keys[0][1] if keys else (0.0, 0.0, 1.0, 1.0))
        regions.append(
            RegionPlan(box=box, mode=r.mode, start_frame=start, end_frame=max(end, start + 1), keyframes=tuple(keys))
        )

    intro = _card(lm, "intro", m.cards.intro, fps)
    outro = _card(lm, "outro", m.cards.outro, fps)
    logo = None
    if m.cards.logo:
        lg = m.cards.logo
        logo = LogoPlan(
            path=lm.resolve(lg.file), corner=lg.corner, width=lg.width, margin=lg.margin, opacity=lg.opacity
        )

    total_frames = clip_frames + (intro.frames if intro else 0) + (outro.frames if outro else 0)
    duration = total_frames / fps
    chosen_platforms = _choose(lm, "platforms", m.outputs.platforms, platforms, problems)
    chosen_languages = _choose(lm, "languages", m.outputs.languages, languages, problems)
    variants: list[Variant] = []
    for p_idx, name in enumerate(m.outputs.platforms):
        if name not in chosen_platforms:
            continue
        preset = PRESETS[name]
        if preset.max_seconds is not None and duration > preset.max_seconds and not preview:
            problems.append(
                lm.problem(
                    ("outputs", "platforms", p_idx),
                    f"the clip is {float(duration):.2f} s (cards included) but {name} allows at most "
                    f"{preset.max_seconds:g} s",
                    f"shorten the segments or cards by {float(duration) - preset.max_seconds:.2f} s, or drop {name}",
                )
            )
            continue
        bitrate = _capped_bitrate(preset, float(duration))
        if bitrate is not None and bitrate < MIN_VIDEO_BITRATE and not preview:
            problems.append(
                lm.problem(
                    ("outputs", "platforms", p_idx),
                    f"{name} caps files at {preset.max_bytes / 1e6:g} MB; a "
                    f"{float(duration):.1f} s clip would get only {bitrate // 1000} kb/s",
                    "shorten the clip",
                )
            )
            continue
        for lang in m.outputs.languages:
            if lang not in chosen_languages:
                continue
            w, h = _preview_size(preset) if preview else (preset.width, preset.height)
            suffix = ".preview" if preview else ""
            variants.append(
                Variant(
                    language=lang,
                    platform=name,
                    width=w,
                    height=h,
                    filename=f"{m.id}.{lang}.{name}{suffix}.mp4",
                    max_bytes=None if preview else preset.max_bytes,
                    max_video_bitrate=None if preview else bitrate,
                    preview=preview,
                )
            )
    fm = m.anonymize.faces
    faces = FacePlan(mode=fm.mode, shape=fm.shape, padding=fm.padding) if fm.masked else None
    if m.outputs.reframe == "face" and faces is None:
        problems.append(
            lm.problem(
                ("outputs", "reframe"),
                "reframe face follows the tracked faces, but this manifest opts out of face masking",
                "use pad-blur, center or letterbox, or mask faces (anonymize.faces.mode: pixelate)",
            )
        )
    if problems:
        raise ManifestError(problems)
    if preview:
        variants = variants[:1]
    fps_of = {name: facts[name].fps for name in m.sources if name in facts}
    lead_of = {name: video_lead(facts[name]) for name in m.sources if name in facts}

    def on_clip(timed_to: str, a: Timecode, b: Timecode) -> tuple[Fraction, Fraction, tuple[Span, ...]]:
        """A bleep's or voice span's time on the clip. A source's times count from its first video frame, but a
        player counts from the file's start, which is earlier when the sound starts first (AAC priming, an edit
        list): either reading may be what the editor wrote, so a stretch covers both (in doubt, more)."""
        rate = fps if timed_to == "clip" else fps_of[timed_to]
        start, end = a.to_seconds(rate), b.to_seconds(rate)
        lead = lead_of.get(timed_to, Fraction(0))
        start, end = min(start, start - lead), max(end, end - lead)
        return start, end, clip_spans(segments, fps, start, end, None if timed_to == "clip" else timed_to)

    voice = None
    mv = m.anonymize.voice
    if isinstance(mv, VoiceChange):
        spans = None
        if mv.spans:
            tl = _timeline(m, mv.timed_to)
            pieces = [on_clip(tl, sp.from_, sp.to) for sp in mv.spans]
            missed = [
                lm.problem(
                    ("anonymize", "voice", "spans", k),
                    f"this span ({sp.from_.text} to {sp.to.text} on {tl}'s timeline) is outside every cut, so the "
                    "voice would not be changed where it asks",
                    "if those are clip times, add `timed_to: clip` to the voice; else fix or remove the span",
                )
                for k, (sp, (_, _, on)) in enumerate(zip(mv.spans, pieces, strict=True))
                if not on
            ]
            if missed:
                # Fail closed: a span that changes nothing leaves the person's voice as recorded (a bleep outside
                # every cut only goes unused, and is a note).
                raise ManifestError(missed)
            spans = tuple(sorted(p for _, _, on in pieces for p in on))
        voice = VoicePlan(method=mv.method, strength=mv.strength, speaker=mv.speaker, spans=spans)
    bleeps = []
    for i, b in enumerate(m.anonymize.bleeps):
        tl = _timeline(m, b.timed_to)
        start, end, pieces = on_clip(tl, b.from_, b.to)
        bleeps.append(BleepPlan(i, b.reason, b.sound, tl, start, end, pieces, tuple(b.words)))
    reasons = {
        k: str(getattr(v, "reason", "")) for k, v in (("faces", fm), ("voice", mv)) if getattr(v, "mode", "") == "none"
    }
    if voice is None:
        voice_text = "not changed (mode none; its reason is kept in the provenance file, not published)"
    else:
        where = "the whole clip" if voice.spans is None else f"{len(voice.spans)} stretch(es)"
        voice_text = f"changed: {voice.method}, {voice.strength}, over {where}"
    anonymity = {
        "faces": f"masked: {fm.mode}, {fm.shape}, padding {fm.padding:g}"
        if faces
        else "not masked (mode none; its reason is kept in the provenance file, not published)",
        "voice": voice_text,
        "regions": f"{len(regions)} always-masked region(s)",
        "bleeps": f"{sum(1 for b in bleeps if b.spans)} bleep(s) in the clip",
    }
    steps = (
        "cut: " + ", ".join(f"{s.source}[{s.in_frame}:{s.out_frame}]" for s in segments),
        *(
            [
                "analyze faces: detect in every 2nd frame of every segment and its last, and in any frame between that "
                f"shows a picture of its own (cached), track, hold, pad {faces.padding:g}"
            ]
            if faces
            else []
        ),
        *([f"mask faces: {faces.mode} {faces.shape}, on full-resolution frames"] if faces else []),
        *(
            f"mask region {r.mode} {r.box if not r.keyframes else f'moving, {len(r.keyframes)} keyframes'} "
            f"frames {r.start_frame}-{r.end_frame - 1}"
            for r in regions
        ),
        f"reframe: {m.outputs.reframe}",
        *(["logo"] if logo else []),
        *(f"{c.kind} card: {c.frames} frames" for c in (intro, outro) if c),
        *(
            [
                f"voice: {voice.method} {voice.strength} for speaker {voice.speaker!r} (secret parameters), at the "
                "source's sample rate, before loudness"
            ]
            if voice
            else []
        ),
        *(
            f"bleeps.{b.index} ({b.sound}): {b.reason} — "
            + (
                ", ".join(f"{float(a):.3f}-{float(z):.3f} s" for a, z in b.spans) + " of the clip"
                if b.spans
                else f"{b.timed_to} {float(b.start):.3f}-{float(b.end):.3f} s is outside every cut"
            )
            for b in bleeps
        ),
        "loudness: measure, then normalize to -14 LUFS / -1 dBTP",
        "encode: H.264 High yuv420p + AAC-LC 48 kHz stereo, faststart, no metadata",
        "verify: streams, duration, loudness, metadata, index position, size"
        + (", no face found by a second detector" if faces else "")
        + (", voice not linkable to the original (speaker embeddings)" if voice else ""),
    )
    captions: dict[str, CaptionPlan] = {}
    intro_frames = intro.frames if intro else 0
    for lang, sub in (subtitles or {}).items():
        spec = m.subtitle_spec(lang)
        if spec is None:
            continue
        timed_to = spec.timed_to or (next(iter(m.sources)) if len(m.sources) == 1 else None)
        where = dict(
            segments=segments,
            fps=fps,
            intro_frames=intro_frames,
            clip_frames=clip_frames,
            source=None if timed_to == "clip" else timed_to,
        )
        cues = retime(sub.cues, **where)
        # Caption words under a bleep go with its sound. Redacted on the file's own timeline, over each cue's whole
        # time, before the cues are cut to the clip (see captions/redact.py); a frame's margin: in doubt, redact more.
        bleeped = bleeps_on_timeline(bleeps, segments, fps, timed_to or "clip")
        shown = retime(redact(sub.cues, bleeped, margin=1 / float(fps)), **where) if bleeped else cues
        font = lm.path.parent / spec.font if spec.font else None
        captions[lang] = CaptionPlan(
            lang,
            sub.path,
            font,
            tuple(shown),
            len(sub.cues) - len({c.line for c in cues}),
            redacted=sum(1 for a, b in zip(cues, shown, strict=True) if a.lines != b.lines),
            script=script_of(lang, sub.text),
        )

    return RenderPlan(
        manifest_id=m.id,
        title=m.title,
        manifest_path=lm.path,
        manifest_sha256=lm.sha256,
        clipper_version=__version__,
        fps=fps,
        segments=tuple(segments),
        regions=tuple(regions),
        intro=intro,
        outro=outro,
        logo=logo,
        reframe=m.outputs.reframe,
        anonymity=anonymity,
        opt_out_reasons=reasons,
        faces=faces,
        variants=tuple(variants),
        clip_frames=clip_frames,
        steps=steps,
        captions=captions,
        voice=voice,
        bleeps=tuple(bleeps),
        notes=tuple(
            _notes(lm, segments, fps, bleeps, lead_of, {n: facts[n].audio_streams for n in m.sources if n in facts})
        ),
    )


def _notes(
    lm: LoadedManifest,
    segments: Sequence[SegmentPlan],
    fps: Fraction,
    bleeps: Sequence[BleepPlan],
    lead_of: dict[str, Fraction],
    audio_streams: dict[str, int],
) -> list[str]:
    """What the manifest allows but an editor rarely means: each as a located note with its fix."""
    m = lm.manifest
    notes = []
    for name, count in audio_streams.items():
        if count > 1:
            notes.append(
                lm.problem(
                    ("sources", name),
                    f"the file has {count} sound tracks; only the first is used (and changed, and checked)",
                    "if the interview is on another track, re-export the file with that track first",
                ).render()
            )
    timed = {b.timed_to for b in bleeps}
    if isinstance(m.anonymize.voice, VoiceChange) and m.anonymize.voice.spans:
        timed.add(_timeline(m, m.anonymize.voice.timed_to))
    for name, lead in lead_of.items():
        if name in timed and lead * fps >= 1:
            notes.append(
                lm.problem(
                    ("sources", name),
                    f"its picture starts {float(lead):.3f} s after its sound: times on its timeline count from the "
                    f"first frame, a player's from the file's start; bleeps and voice spans timed to it are widened "
                    f"by {float(lead):.3f} s to cover both readings",
                    "check a bleep's times in `clipper preview`; re-export the source to start both together",
                ).render()
            )
    for b in bleeps:
        if not b.spans:
            notes.append(
                lm.problem(
                    ("anonymize", "bleeps", b.index),
                    f"this bleep ({b.timed_to} {float(b.start):.3f}-{float(b.end):.3f} s) is outside every "
                    "cut, so nothing is bleeped for it",
                    "if those are clip times, add `timed_to: clip` to it",
                ).render()
            )
    if not m.subtitles and len(m.outputs.languages) > 1:
        notes.append(
            lm.problem(
                ("outputs", "languages"),
                f"{len(m.outputs.languages)} languages but no subtitles: every language's output is the same clip",
                "add subtitles: {LANG: subtitles/FILE.LANG.vtt} for each language, or list one language",
            ).render()
        )
    for lang in m.subtitles or {}:
        if lang not in m.outputs.languages:
            notes.append(
                lm.problem(
                    ("subtitles", lang),
                    f"{lang!r} is not among outputs.languages, so no {lang} variant is rendered",
                    f"add {lang} to outputs.languages, or remove this entry",
                ).render()
            )
    for i, a in enumerate(segments):
        for b in segments[i + 1 :]:
            lo, hi = max(a.in_frame, b.in_frame), min(a.out_frame, b.out_frame)
            if a.source == b.source and lo < hi:
                notes.append(
                    lm.problem(
                        ("segments", b.index),
                        f"shows {format_clock(lo / a.src_fps)}-{format_clock(hi / a.src_fps)} of {a.source!r} again "
                        f"(segments.{a.index} shows it too)",
                        "fine for a deliberate repeat; otherwise fix the segment's in or out",
                    ).render()
                )
    return notes


def bleeps_on_timeline(
    bleeps: Sequence[BleepPlan], segments: Sequence[SegmentPlan], fps: Fraction, timeline: str
) -> list[tuple[float, float, tuple[str, ...]]]:
    """Each bleep's stretch in seconds of `timeline` (a source's, or "clip"), where a subtitle file timed to it
    says what is spoken then: as written when the bleep is timed to it, else through the cuts that carry both;
    with the bleep's words."""
    out: list[tuple[float, float, tuple[str, ...]]] = []
    for b in bleeps:
        if b.timed_to == timeline:
            out.append((float(b.start), float(b.end), b.words))
            continue
        for a, z in b.spans:
            if timeline == "clip":
                out.append((float(a), float(z), b.words))
                continue
            for seg in segments:
                if seg.source != timeline:
                    continue
                s0 = Fraction(seg.clip_start_frame) / fps
                lo, hi = max(a, s0), min(z, s0 + Fraction(seg.out_frames) / fps)
                if lo < hi:
                    out.append((float(seg.in_s + lo - s0), float(seg.in_s + hi - s0), b.words))
    return out


def video_lead(f: MediaFacts) -> Fraction:
    """How long after the file's start its first video frame comes (sound that starts first: AAC priming, an
    edit list); source times in a manifest count from that frame."""
    return Fraction(str(f.video_start_s)) - Fraction(str(f.container_start_s))


def clip_spans(
    segments: Sequence[SegmentPlan], fps: Fraction, start: Fraction, end: Fraction, source: str | None
) -> tuple[Span, ...]:
    """Where [start, end) of a source's timeline (or of the clip's, source None) falls in the clip, in clip seconds.

    Frame j of a cut plays source time in_s + j/fps and its sound runs on at the same pace, so a source time t
    inside a cut is clip time clip_start + (t - in_s). Pieces that meet across a join are merged."""
    clip_s = Fraction(sum(s.out_frames for s in segments)) / fps
    pieces: list[Span] = []
    if source is None:
        a, b = max(Fraction(0), start), min(clip_s, end)
        pieces = [(a, b)] if a < b else []
    else:
        for seg in segments:
            if seg.source != source:
                continue
            a, b = max(start, seg.in_s), min(end, seg.in_s + Fraction(seg.out_frames) / fps)
            if a < b:
                base = Fraction(seg.clip_start_frame) / fps - seg.in_s
                pieces.append((base + a, base + b))
    merged: list[Span] = []
    for a, b in sorted(pieces):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple(merged)


def _timeline(m: Manifest, timed_to: str | None) -> str:
    return timed_to or next(iter(m.sources))  # the manifest check made sure there is only one source then


def _frame(
    lm: LoadedManifest, loc: tuple[str | int, ...], tc: Timecode, fps: Fraction, problems: list[ClipperError]
) -> int | None:
    try:
        return tc.to_frame(fps)
    except ValueError as e:
        problems.append(lm.problem(loc, str(e), "SMPTE frames count at the source's frame rate"))
        return None


def _card(lm: LoadedManifest, kind: str, card: Card | None, fps: Fraction) -> CardPlan | None:
    if card is None:
        return None
    return CardPlan(
        kind=kind,
        text=card.text,
        frames=max(1, round(Fraction(str(card.seconds)) * fps)),
        color=card.color,
        background=card.background,
        font=lm.resolve(card.font) if card.font else None,
        text_size=card.text_size,
    )


def _choose(
    lm: LoadedManifest, key: str, declared: list[str], wanted: list[str] | None, problems: list[ClipperError]
) -> list[str]:
    if not wanted:
        return list(declared)
    unknown = [w for w in wanted if w not in declared]
    if unknown:
        problems.append(
            lm.problem(
                ("outputs", key),
                f"{', '.join(unknown)} not among this manifest's {key}",
                f"choose from: {', '.join(declared)}",
            )
        )
    return [w for w in wanted if w in declared]


def _capped_bitrate(preset: Preset, duration_s: float) -> int | None:
    """Video bitrate that keeps a size-capped platform's file under its cap, with headroom."""
    if preset.max_bytes is None:
        return None
    total_bits = preset.max_bytes * 8 * SIZE_CAP_HEADROOM
    return int(total_bits / max(duration_s, 0.1) - AUDIO_BITRATE)


def _preview_size(preset: Preset) -> tuple[int, int]:
    scale = Fraction(PREVIEW_HEIGHT, min(preset.width, preset.height))
    return (2 * round(preset.width * scale / 2), 2 * round(preset.height * scale / 2))

"""Manifest v1: the YAML an editor writes, loaded into pydantic models with file:line:column errors."""

from __future__ import annotations

import difflib
import hashlib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from clipper.errors import ClipperError, ManifestError
from clipper.presets import PRESETS
from clipper.timecode import Timecode, parse_timecode

SCHEMA_VERSION = 1

TimecodeField = Annotated[
    Timecode,
    BeforeValidator(parse_timecode),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {
                    "type": "string",
                    "pattern": r"^(\d+(\.\d+)?|(\d+:)?\d{1,2}:\d{1,2}(\.\d+)?|\d{1,2}:\d{2}:\d{2}[:;]\d{2})$",
                },
            ],
            "description": "seconds, HH:MM:SS.mmm, or SMPTE HH:MM:SS:FF (HH:MM:SS;FF drop-frame)",
        }
    ),
]
PlatformName = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class Strict(BaseModel):
    """Every manifest object: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OptOut(Strict):
    """An explicit, reasoned decision not to anonymize a channel."""

    mode: Literal["none"] = Field(description="'none': this channel is not anonymized, for the reason given")
    reason: str = Field(min_length=10, description="why this clip needs no anonymization on this channel")

    @field_validator("reason")
    @classmethod
    def _reason_is_words(cls, v: str) -> str:
        if len(v.split()) < 2:
            raise ValueError("write the reason out in words (at least a short sentence)")
        return v


class TimeSpan(Strict):
    """A stretch of time [from, to), on the timeline named by the owner's timed_to."""

    from_: TimecodeField = Field(alias="from")
    to: TimecodeField

    @model_validator(mode="after")
    def _from_before_to(self) -> TimeSpan:
        if self.from_.seconds is not None and self.to.seconds is not None and self.to.seconds <= self.from_.seconds:
            raise ValueError(f"'to' ({self.to}) must come after 'from' ({self.from_})")
        return self


TIMED_TO = (
    "the source name whose timeline these times follow (default: the only source), or 'clip' "
    "(0 = the clip's first frame after the intro card)"
)


class VoiceChange(Strict):
    """The interviewee's voice changed by a method at a strength; its parameters come from a secret, per speaker."""

    method: Literal["mcadams", "vocoder"] = Field(
        description="vocoder (WORLD: pitch and formants moved toward a secret pseudo-voice) or mcadams (LPC poles)"
    )
    strength: Literal["light", "medium", "strong"] = Field(
        default="strong", description="presets measured by make bench-voice (README: Voice)"
    )
    speaker: str = Field(
        description="a stable pseudonym for the person (never their name): the same pseudonym sounds the same in "
        "every clip; the parameters it selects come from the team's secret, never from the manifest"
    )
    spans: list[TimeSpan] | None = Field(
        default=None, min_length=1, description="only these stretches are changed (default: the whole clip)"
    )
    timed_to: str | None = Field(default=None, description=TIMED_TO)

    @field_validator("speaker")
    @classmethod
    def _speaker_is_a_pseudonym(cls, v: str) -> str:
        if not ID.match(v):
            raise ValueError(
                f"{v!r}: use a pseudonym of lower-case letters, digits, '.', '_' or '-' (e.g. defector-07)"
            )
        return v


def _voice_kind(data: Any) -> str:
    if isinstance(data, dict) and "method" not in data and "mode" in data:
        return "voice-opt-out"
    return "voice-change"


Voice = Annotated[
    Annotated[VoiceChange, Tag("voice-change")] | Annotated[OptOut, Tag("voice-opt-out")],
    Discriminator(_voice_kind),
]


class Bleep(Strict):
    """A stretch of sound replaced entirely (a name, a place); caption words under it become a marker."""

    from_: TimecodeField = Field(alias="from")
    to: TimecodeField
    reason: str = Field(min_length=3, description="what is bleeped and why (listed by clipper plan, never published)")
    sound: Literal["tone", "silence"] = "tone"
    timed_to: str | None = Field(default=None, description=TIMED_TO)
    words: list[str] = Field(
        default_factory=list,
        description="the bleeped words as each caption file writes them (a name in every script used): replaced in "
        "every cue shown while the bleep sounds, wherever a translation puts them",
    )

    @field_validator("words")
    @classmethod
    def _words_not_blank(cls, v: list[str]) -> list[str]:
        if any(not w.strip() for w in v):
            raise ValueError("a bleep's words must not be empty")
        return [w.strip() for w in v]

    @model_validator(mode="after")
    def _from_before_to(self) -> Bleep:
        if self.from_.seconds is not None and self.to.seconds is not None and self.to.seconds <= self.from_.seconds:
            raise ValueError(f"'to' ({self.to}) must come after 'from' ({self.from_})")
        return self


# Face masks reach this far beyond the detected box on every side, as a fraction of its size; an editor may
# ask for more, never less (mask strength was calibrated with it: bench/mask_calibration.py).
FACE_PADDING = 0.5


class FaceMasking(Strict):
    """Faces found in every frame and masked, or an explicit, reasoned opt-out (mode: none)."""

    mode: Literal["pixelate", "solid", "blur", "none"] = Field(
        description="pixelate (default choice), solid, blur, or none with a reason"
    )
    padding: float = Field(
        default=FACE_PADDING,
        ge=FACE_PADDING,
        le=2.0,
        description=f"how far the mask reaches beyond the face, as a fraction of its size (at least {FACE_PADDING})",
    )
    shape: Literal["box", "ellipse"] = Field(
        default="box", description="box, or an ellipse drawn around the padded box (it covers all of it)"
    )
    reason: str | None = Field(
        default=None, min_length=10, description="mode none only: why nobody can be identified by face"
    )

    @field_validator("reason")
    @classmethod
    def _reason_is_words(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) < 2:
            raise ValueError("write the reason out in words (at least a short sentence)")
        return v

    @model_validator(mode="after")
    def _reason_only_with_none(self) -> FaceMasking:
        if self.mode == "none" and self.reason is None:
            raise ValueError(
                'mode none needs a reason: {mode: none, reason: "…why nobody can be identified…"}; '
                "to mask faces use mode pixelate, solid or blur"
            )
        if self.mode != "none" and self.reason is not None:
            raise ValueError(f"'reason' is only for mode none (faces are masked with mode {self.mode}); remove it")
        return self

    @property
    def masked(self) -> bool:
        """True when faces are to be found and masked."""
        return self.mode != "none"


Box = tuple[float, float, float, float]


def _check_box(v: Box) -> Box:
    x, y, w, h = v
    if min(x, y) < 0 or w <= 0 or h <= 0:
        raise ValueError("box is [x, y, width, height] with x, y ≥ 0 and width, height > 0")
    if x >= 1 or y >= 1 or x + w > 1 + 1e-9 or y + h > 1 + 1e-9:  # starts or ends past the frame
        raise ValueError(f"box reaches past the frame (x+width={x + w:g}, y+height={y + h:g}; both ≤ 1)")
    return v


def _box_is_four_numbers(v: Any) -> Any:
    if not isinstance(v, list | tuple) or len(v) != 4:
        got = f"{len(v)} values" if isinstance(v, list | tuple) else repr(v)
        raise ValueError(f"box is [x, y, width, height] (4 fractions of the frame), got {got}")
    return v


BoxField = Annotated[Box, BeforeValidator(_box_is_four_numbers), AfterValidator(_check_box)]


class Keyframe(Strict):
    """Where a moving region's box is at one clip time; between keyframes it moves in a straight line."""

    at: TimecodeField = Field(description="clip time")
    box: BoxField = Field(description="[x, y, width, height] as fractions 0..1")


class Region(Strict):
    """An area always masked, as fractions of the frame: a fixed box, or keyframed boxes for a moving thing."""

    box: BoxField | None = Field(default=None, description="[x, y, width, height] as fractions 0..1")
    keyframes: list[Keyframe] | None = Field(
        default=None,
        min_length=1,
        description="boxes at clip times (two or more), interpolated linearly; held before the first and after the "
        "last",
    )
    from_: TimecodeField | None = Field(default=None, alias="from", description="clip time; default: start")
    to: TimecodeField | None = Field(default=None, description="clip time; default: end")
    mode: Literal["pixelate", "solid", "blur"] = "pixelate"

    @model_validator(mode="after")
    def _box_or_keyframes(self) -> Region:
        if (self.box is None) == (self.keyframes is None):
            raise ValueError(
                "give either box: [x, y, width, height] (a fixed area) or keyframes: [{at: …, box: […]}, …] "
                "(a moving one)" + (", not both" if self.box is not None else "")
            )
        if self.keyframes and len(self.keyframes) == 1:
            raise ValueError(
                "one keyframe is a box that does not move: write box: [x, y, width, height] (with from/to for a time "
                "span), or give two or more keyframes"
            )
        if self.keyframes:
            times = [k.at.seconds for k in self.keyframes]
            if all(t is not None for t in times) and any(b <= a for a, b in zip(times, times[1:], strict=False)):
                raise ValueError("keyframes must be in time order, each later than the one before")
        return self

    @model_validator(mode="after")
    def _from_before_to(self) -> Region:
        both = self.from_ and self.to and self.from_.seconds is not None and self.to.seconds is not None
        if both and self.to.seconds <= self.from_.seconds:  # type: ignore[union-attr,operator]
            raise ValueError(f"'to' ({self.to}) must come after 'from' ({self.from_})")
        return self


class Anonymize(Strict):
    """How identities are protected; faces and voice must be declared, never implied."""

    faces: FaceMasking
    voice: Voice
    regions: list[Region] = Field(default_factory=list)
    bleeps: list[Bleep] = Field(default_factory=list, description="sounds removed, with their caption words")


class Segment(Strict):
    """A stretch of a source: from `in` (included) to `out` (excluded)."""

    source: str
    in_: TimecodeField = Field(alias="in")
    out: TimecodeField

    @model_validator(mode="after")
    def _in_before_out(self) -> Segment:
        if self.in_.seconds is not None and self.out.seconds is not None and self.out.seconds <= self.in_.seconds:
            raise ValueError(f"'out' ({self.out}) must come after 'in' ({self.in_})")
        return self


def _check_colour(v: str) -> str:
    from PIL import ImageColor

    try:
        ImageColor.getrgb(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a colour: use a name (white, black, gold) or #rrggbb") from None
    return v


Colour = Annotated[str, BeforeValidator(_check_colour)]


class Card(Strict):
    """A full-frame text card shown before or after the clip, drawn at each platform's geometry."""

    text: str = Field(min_length=1)
    seconds: float = Field(ge=0.5, le=30)
    color: Colour = "white"
    background: Colour = "black"
    font: str | None = Field(default=None, description="a .ttf/.otf file, relative to the manifest")
    text_size: float = Field(default=0.06, gt=0.01, le=0.2, description="text height as a fraction of frame height")

    @field_validator("text")
    @classmethod
    def _visible(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a card shows its text, and this one is only spaces: write the text, or drop the card")
        for control in ("\u202d", "\u202e"):
            if control in v:
                # An override makes the letters after it drawn in the other order: what the editor typed is not
                # what the viewer reads.
                raise ValueError(f"the text holds U+{ord(control):04X}, which reverses the letters after it: remove it")
        return v


class Logo(Strict):
    """A PNG (with alpha) shown in one corner over the clip, not over the cards."""

    file: str
    corner: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = "top-right"
    width: float = Field(default=0.12, gt=0.01, le=0.5, description="fraction of frame width")
    margin: float = Field(default=0.03, ge=0, le=0.2, description="fraction of the frame's shorter side")
    opacity: float = Field(default=1.0, gt=0, le=1)


class Subtitles(Strict):
    """One language's subtitle file, with how it is timed and (optionally) the font its captions are drawn in."""

    file: str = Field(min_length=1, description="WebVTT or SubRip file, relative to the manifest")
    timed_to: str | None = Field(
        default=None,
        description="the source name whose timeline the cues follow (default: the only source), or 'clip' "
        "for files timed to the clip itself (0 = its first frame after the intro card)",
    )
    font: str | None = Field(default=None, description="a .ttf/.otf file to draw this language's captions with")


def _subtitle_kind(data: Any) -> str:
    return "subtitle-spec" if isinstance(data, dict) else "subtitle-path"


# A path, or {file, timed_to, font}: tagged by shape, so a typo inside the mapping is reported against the mapping
# alone (with its 'did you mean'), not also as "should be a valid string".
SubtitleEntry = Annotated[
    Annotated[str, Tag("subtitle-path")] | Annotated[Subtitles, Tag("subtitle-spec")],
    Discriminator(_subtitle_kind),
]


class Cards(Strict):
    """Intro and outro cards and a logo, all optional."""

    intro: Card | None = None
    outro: Card | None = None
    logo: Logo | None = None


class Outputs(Strict):
    """Which variants to render: every platform × every language."""

    platforms: list[PlatformName] = Field(min_length=1)  # type: ignore[valid-type]
    languages: list[str] = Field(min_length=1, description="language codes, e.g. en, ar, fr-CA")
    reframe: Literal["pad-blur", "center", "letterbox", "face"] = Field(
        default="pad-blur",
        description="how a frame of another shape fills the platform's frame; face follows the (masked) faces",
    )

    @field_validator("platforms", "languages")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"listed twice: {', '.join(dupes)}")
        return v

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, v: list[str]) -> list[str]:
        for lang in v:
            if not LANGUAGE.match(lang):
                raise ValueError(f"{lang!r} is not a language code (use lower-case ISO 639: en, ar, fr, tr, ru, de)")
        return v


class Manifest(Strict):
    """One clip: where it comes from, how it is anonymized, and where it goes."""

    @field_validator("id")
    @classmethod
    def _id_is_a_safe_name(cls, v: str) -> str:
        if not ID.match(v):
            raise ValueError(
                f"{v!r} cannot name files: use lower-case letters, digits, '.', '_' or '-', starting with a "
                "letter or digit, at most 80 characters (e.g. defector-07-market)"
            )
        return v

    clipper: Literal[1] = Field(description="manifest format version")
    id: str = Field(description="lower-case letters, digits, '.', '_', '-'; names the output folder and files")
    title: str = Field(min_length=1)
    topics: list[str] = Field(default_factory=list)
    sources: dict[str, str] = Field(min_length=1, description="name → media file, relative to the manifest")
    segments: list[Segment] = Field(min_length=1)
    anonymize: Anonymize
    subtitles: dict[str, SubtitleEntry] = Field(
        default_factory=dict,
        description="language → subtitle file (timed to the source), or {file, timed_to, font}",
    )

    def subtitle_spec(self, language: str) -> Subtitles | None:
        """The subtitle entry of a language, in its long form; None when it has none."""
        entry = self.subtitles.get(language)
        return Subtitles(file=entry) if isinstance(entry, str) else entry

    cards: Cards = Field(default_factory=Cards)
    outputs: Outputs


# ---------------------------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """YAML 1.2-like scalars: no sexagesimal numbers (01:02:05:12 stays text), no yes/no/on/off booleans."""


_Loader.yaml_implicit_resolvers = {
    k: [
        (tag, rx)
        for tag, rx in v
        if tag
        not in (
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    ]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$"),
    list("-+0123456789."),
)


# YAML 1.1's constructor reads a leading zero as octal (`in: 010` would be 8 s, `in: 08` a crash);
# the resolver above only admits plain decimal digits, read here as decimal.
_Loader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node), 10))


@dataclass
class LoadedManifest:
    """A validated manifest with where it came from, able to point at the line of any field."""

    manifest: Manifest
    path: Path
    root: yaml.Node
    sha256: str
    base_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.base_dir = self.path.parent

    def resolve(self, relative: str) -> Path:
        """Return a path named in the manifest, resolved against the manifest's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def where(self, loc: Sequence[str | int]) -> str:
        """Return 'file:line:column' of the field at `loc`."""
        return _where(self.path, self.root, loc)

    def problem(self, loc: Sequence[str | int], message: str, hint: str = "") -> ClipperError:
        """Return an error located at the field `loc`."""
        return ClipperError(f"{_dotted(loc)}: {message}", where=self.where(loc), hint=hint)


def load_manifest(path: Path) -> LoadedManifest:
    """Load and validate a manifest file; raise ManifestError listing every problem with file:line:column."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError([ClipperError("no such manifest file", where=str(path), hint="check the path")]) from None
    except IsADirectoryError:
        raise ManifestError(
            [ClipperError("is a folder, not a manifest", where=str(path), hint="name a .yaml file")]
        ) from None
    except OSError as e:
        raise ManifestError([ClipperError(f"cannot read: {e.strerror}", where=str(path))]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ManifestError(
            [ClipperError("not UTF-8 text", where=f"{path}:{line}:1", hint="save the manifest as UTF-8")]
        ) from None
    root = _compose(path, text)
    data = _construct(path, root)
    if not isinstance(data, dict):
        raise ManifestError(
            [
                ClipperError(
                    "a manifest is a mapping of keys (clipper, id, title, …)",
                    where=_where(path, root, ()),
                    hint="see manifests/demo.yaml",
                )
            ]
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as e:
        raise ManifestError(_problems(path, root, e)) from None
    loaded = LoadedManifest(manifest=manifest, path=path, root=root, sha256=hashlib.sha256(raw).hexdigest())
    problems = _cross_references(loaded)
    if problems:
        raise ManifestError(problems)
    return loaded


def _cross_references(lm: LoadedManifest) -> list[ClipperError]:
    """Check what one field says about another: segment sources exist, subtitles are usable."""
    m = lm.manifest
    problems = []
    for i, seg in enumerate(m.segments):
        if seg.source not in m.sources:
            close = difflib.get_close_matches(seg.source, list(m.sources), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"sources are: {', '.join(m.sources)}"
            problems.append(lm.problem(("segments", i, "source"), f"no source named {seg.source!r}", hint))
    if m.subtitles:
        for lang in m.outputs.languages:
            if lang not in m.subtitles:
                close = difflib.get_close_matches(lang, [k for k in m.subtitles if k not in m.outputs.languages], 1)
                problems.append(
                    lm.problem(
                        ("outputs", "languages"),
                        f"{lang!r} has no subtitle file" + (f": did you mean {close[0]!r}?" if close else ""),
                        f"add subtitles: {{{lang}: subtitles/FILE.{lang}.vtt}}, or drop {lang!r} from the languages",
                    )
                )
        for lang in m.subtitles:
            spec = m.subtitle_spec(lang)
            assert spec is not None
            where = ("subtitles", lang) if isinstance(m.subtitles[lang], str) else ("subtitles", lang, "file")
            if not (lm.path.parent / spec.file).is_file():
                problems.append(lm.problem(where, *_not_a_file("subtitle", lm.path.parent / spec.file, spec.file)))
            if spec.font is not None and not (lm.path.parent / spec.font).is_file():
                problems.append(
                    lm.problem(("subtitles", lang, "font"), *_not_a_file("font", lm.path.parent / spec.font, spec.font))
                )
            if spec.timed_to is None and len(m.sources) > 1:
                problems.append(
                    lm.problem(
                        where,
                        f"the manifest has {len(m.sources)} sources: say which one this file is timed to",
                        f"write subtitles: {{{lang}: {{file: {spec.file}, timed_to: SOURCE}}}} (or timed_to: clip)",
                    )
                )
            elif spec.timed_to not in (None, "clip") and spec.timed_to not in m.sources:
                problems.append(
                    lm.problem(
                        ("subtitles", lang, "timed_to"),
                        f"no source named {spec.timed_to!r}",
                        f"use 'clip' or one of: {', '.join(m.sources)}",
                    )
                )
    timed: list[tuple[tuple[str | int, ...], str | None]] = [
        (("anonymize", "bleeps", i), b.timed_to) for i, b in enumerate(m.anonymize.bleeps)
    ]
    if isinstance(m.anonymize.voice, VoiceChange) and m.anonymize.voice.spans:
        timed.append((("anonymize", "voice"), m.anonymize.voice.timed_to))
    for loc, timed_to in timed:
        if timed_to is None and len(m.sources) > 1:
            problems.append(
                lm.problem(
                    loc,
                    f"the manifest has {len(m.sources)} sources: say which one these times follow",
                    "add timed_to: SOURCE (or timed_to: clip)",
                )
            )
        elif timed_to not in (None, "clip") and timed_to not in m.sources:
            problems.append(
                lm.problem(
                    (*loc, "timed_to"), f"no source named {timed_to!r}", f"use 'clip' or one of: {', '.join(m.sources)}"
                )
            )
    return problems


def _not_a_file(kind: str, path: Path, written: str) -> tuple[str, str]:
    """(message, hint) for a path the manifest names that is not a readable file."""
    if path.is_dir():
        return f"{kind} path {written} is a folder, not a file", f"name the {kind} file inside it"
    return f"no such {kind} file: {written}", windows_path_hint(written) or "paths are relative to the manifest"


def windows_path_hint(written: str) -> str:
    """A hint for a path written the Windows way (backslashes, a drive letter), which names nothing here; or ''."""
    if "\\" in written or re.match(r"^[A-Za-z]:[\\/]", written):
        return (
            "this is a Windows path: write it with forward slashes (/), relative to the manifest, for a file on this "
            "machine (e.g. footage/interview.mp4)"
        )
    return ""


def _compose(path: Path, text: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = f"YAML syntax: {e.problem or e.context}"
        if e.context and e.problem:
            msg += f" ({e.context})"
        # An unclosed quote or bracket is noticed far below where it opened: point at the opening.
        opened = e.context and e.context.startswith(("while scanning a quoted", "while parsing a flow"))
        if opened and e.context_mark is not None and e.problem_mark is not None:
            msg += f"; opened here and not closed (noticed at line {e.problem_mark.line + 1})"
            mark = e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        hint = "check indentation, colons and quotes on this line"
        if "'\\t'" in msg:
            hint = "indent with spaces: YAML does not allow tabs for indentation"
        elif "another document" in msg:
            hint = "a manifest is one YAML document: remove this '---' and what follows, or split it into two files"
        raise ManifestError([ClipperError(msg, where=where, hint=hint)]) from None
    except yaml.YAMLError as e:
        # The reader's own errors (a character YAML may not hold): most often a file saved as UTF-16 without a BOM.
        hint = "save the manifest as UTF-8" if "#x0000" in str(e) else None
        raise ManifestError([ClipperError(f"YAML: {e}", where=str(path), hint=hint)]) from None
    if root is None:
        raise ManifestError(
            [ClipperError("the manifest is empty", where=f"{path}:1:1", hint="start from manifests/demo.yaml")]
        )
    _reject_duplicate_keys(path, root)
    return root


def _reject_duplicate_keys(path: Path, node: yaml.Node, inside: frozenset[int] = frozenset()) -> None:
    if id(node) in inside:
        # `a: &x [*x]`: an alias inside what it names would nest forever.
        raise ManifestError(
            [
                ClipperError(
                    "a YAML alias refers to a list or mapping that contains it (it would nest forever)",
                    where=f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}",
                    hint="write the values out, or point the alias (*name) at something outside its own anchor",
                )
            ]
        )
    inside = inside | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else None
            if k is not None and k in seen:
                first = seen[k].start_mark.line + 1
                raise ManifestError(
                    [
                        ClipperError(
                            f"key {k!r} appears twice (first on line {first})",
                            where=f"{path}:{key.start_mark.line + 1}:{key.start_mark.column + 1}",
                            hint="keep one; YAML would silently use the last",
                        )
                    ]
                )
            if k is not None:
                seen[k] = key
            _reject_duplicate_keys(path, value, inside)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(path, item, inside)


def _construct(path: Path, root: yaml.Node) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ManifestError([ClipperError(f"YAML: {e.problem}", where=where)]) from None
    finally:
        loader.dispose()


def _node_at(root: yaml.Node, loc: Sequence[str | int]) -> tuple[yaml.Node, bool]:
    """Return the deepest node on `loc` and whether the whole path was found."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node = value
                    break
            else:
                return node, False
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node, False
    return node, True


def _key_node(root: yaml.Node, loc: Sequence[str | int]) -> yaml.Node | None:
    parent, found = _node_at(root, loc[:-1])
    if found and isinstance(parent, yaml.MappingNode):
        for key, _ in parent.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(loc[-1]):
                return key
    return None


def _where(path: Path, root: yaml.Node, loc: Sequence[str | int]) -> str:
    node, _ = _node_at(root, loc)
    mark = node.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _dotted(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """Return the manifest model class that owns the mapping at `loc`, for 'did you mean' hints."""
    tp: Any = Manifest
    for part in loc:
        tp = _strip(tp)
        origin = typing.get_origin(tp)
        if isinstance(part, int):
            if origin in (list, tuple) and typing.get_args(tp):
                tp = typing.get_args(tp)[0]
                continue
            return None
        if origin is dict:
            tp = typing.get_args(tp)[1]
            continue
        if origin in (typing.Union, types.UnionType):
            # A choice of models (voice: a change or an opt-out): the one that has this key.
            owners = [m for m in map(_strip, typing.get_args(tp)) if isinstance(m, type) and issubclass(m, BaseModel)]
            tp = next((m for m in owners if part in _keys_of(m)), tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            by_alias = {(f.alias or n): f for n, f in tp.model_fields.items()}
            if part not in by_alias:
                return None
            tp = by_alias[part].annotation
        else:
            return None
    tp = _strip(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _strip(tp: Any) -> Any:
    """Strip Optional[...] and Annotated[...] off a type."""
    while True:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(_strip(a), type) and issubclass(_strip(a), BaseModel)]
            if len(args) != 1 and len(models) != 1:
                return tp
            tp = args[0] if len(args) == 1 else models[0]  # a path or a mapping: keys belong to the mapping
        elif origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        else:
            return tp


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


_FRIENDLY = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown key",
}

_HINTS_BY_FIELD = {
    "faces": "declare face anonymization explicitly, e.g. faces: {mode: pixelate} "
    '(or faces: {mode: none, reason: "no person in frame"})',
    "voice": "declare voice anonymization explicitly, e.g. voice: {method: vocoder, strength: strong, "
    'speaker: defector-07} (or voice: {mode: none, reason: "no one speaks"})',
    "speaker": "name the person by a stable pseudonym, e.g. speaker: defector-07",
    "anonymize": "every manifest declares anonymize.faces and anonymize.voice",
    "clipper": "start the manifest with 'clipper: 1'",
    "outputs": "e.g. outputs: {platforms: [youtube, tiktok], languages: [en]}",
    "platforms": f"platforms are: {', '.join(PRESETS)}",
}


_BOUNDS = {
    "greater_than_equal": "{value!r} is too small: at least {limit}",
    "greater_than": "{value!r} is too small: more than {limit}",
    "less_than_equal": "{value!r} is too large: at most {limit}",
    "less_than": "{value!r} is too large: less than {limit}",
    "string_too_short": "too short: at least {limit} characters",
    "string_too_long": "too long: at most {limit} characters",
}
_LIMIT_KEYS = ("ge", "gt", "le", "lt", "min_length", "max_length")


def _described(loc: Sequence[str | int]) -> str:
    """What the field at `loc` is for (its schema description), as a hint."""
    model = _model_at(loc[:-1]) if loc and isinstance(loc[-1], str) else None
    if model is None:
        return ""
    by_alias = {(f.alias or n): f for n, f in model.model_fields.items()}
    info = by_alias.get(str(loc[-1]))
    return f"{loc[-1]}: {info.description}" if info and info.description else ""


def _problems(path: Path, root: yaml.Node, err: ValidationError) -> list[ClipperError]:
    out: list[ClipperError] = []
    for e in err.errors(include_url=False):
        loc = tuple(
            p
            for p in e["loc"]
            if not (
                isinstance(p, str)
                and (
                    p.startswith("function-")
                    or p in ("tagged-union", "voice-change", "voice-opt-out", "subtitle-path", "subtitle-spec")
                )
            )
        )
        kind = e["type"]
        msg = _FRIENDLY.get(kind, e["msg"])
        if kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        hint = ""
        field_name = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            allowed = _keys_of(model) if model else []
            close = difflib.get_close_matches(field_name, allowed, n=1, cutoff=0.6)
            msg = f"unknown key {field_name!r}"
            hint = (
                f"did you mean {close[0]!r}?" if close else (f"allowed here: {', '.join(allowed)}" if allowed else "")
            )
            if field_name == "timed_to" and "spans" in loc:
                hint = "a span's times are on the timeline its owner names: write timed_to once, beside spans"
            key = _key_node(root, loc)
            mark = key.start_mark if key else _node_at(root, loc)[0].start_mark
            out.append(
                ClipperError(f"{_dotted(loc)}: {msg}", where=f"{path}:{mark.line + 1}:{mark.column + 1}", hint=hint)
            )
            continue
        if kind == "literal_error":
            expected = str(e.get("ctx", {}).get("expected", ""))
            quoted = re.findall(r"'([^']*)'", expected)  # text choices are quoted; number choices are not
            options = quoted or [expected]
            close = difflib.get_close_matches(str(e.get("input")), options, n=1)
            msg = f"{e.get('input')!r} is not one of: {', '.join(options)}"
            hint = f"did you mean {close[0]!r}?" if close else ""
            if isinstance(e.get("input"), str) and not quoted:
                # clipper: "1": the allowed value is a number, and quotes made the text '1'.
                hint = f"write {e.get('input')} without quotes (a number, not text)"
        if kind == "missing":
            msg = f"required field {field_name!r} is missing"
            hint = _HINTS_BY_FIELD.get(field_name, "")
        if kind in _BOUNDS:
            # pydantic's "Input should be greater than or equal to 0.5": say the value, the limit, and what it is for.
            limit = next((v for k, v in (e.get("ctx") or {}).items() if k in _LIMIT_KEYS), "?")
            msg = _BOUNDS[kind].format(value=e.get("input"), limit=limit)
        if kind in _BOUNDS or kind in ("too_short", "too_long"):
            hint = hint or _HINTS_BY_FIELD.get(field_name, "") or _described(loc)
        if not hint and loc and isinstance(loc[-1], int) and len(loc) >= 2:
            hint = _HINTS_BY_FIELD.get(str(loc[-2]), "")
        if not hint:
            hint = _HINTS_BY_FIELD.get(field_name, "") if kind != "value_error" else ""
        out.append(ClipperError(f"{_dotted(loc)}: {msg}", where=_where(path, root, loc), hint=hint))
    return out


def json_schema() -> dict[str, Any]:
    """Return the manifest's JSON Schema (for editors' YAML plugins)."""
    schema = Manifest.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "clipper manifest v1"
    return schema

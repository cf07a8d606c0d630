"""Caption fonts: one openly licensed font per script, found inside installed pip packages, never on the system.

Each language maps to a script and each script to a font package (see FONT_PACKAGES). Files are located with
importlib.util.find_spec, which finds a package without importing it. libass is later pointed at a folder holding
only these files, with fontconfig given no folders at all (see burn.py), so it can neither substitute a system
font nor fall back silently: coverage is checked here, before rendering, against the font's own character map.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from clipper.errors import ClipperError

# script -> (package, file glob inside it, pip name for the hint)
FONT_PACKAGES: dict[str, tuple[str, str, str]] = {
    "latin": ("fontpkg_noto_sans", "files/NotoSans[[]*.ttf", "fontpkg-noto-sans"),  # also Cyrillic, Greek
    "arabic": ("fontpkg_noto_sans_arabic", "files/NotoSansArabic[[]*.ttf", "fontpkg-noto-sans-arabic"),
    "hebrew": ("fontpkg_heebo", "files/Heebo[[]*.ttf", "fontpkg-heebo"),
    "japanese": ("pylopdf_fonts_jp", "NotoSansJP-Regular.otf", "pylopdf-fonts-jp"),
}
# Languages written in a script other than Latin/Cyrillic/Greek (ISO 639-1/-3 base codes).
SCRIPT_OF_LANGUAGE: dict[str, str] = {
    **dict.fromkeys(("ar", "fa", "ur", "ps", "ckb", "ku", "sd", "ug"), "arabic"),
    **dict.fromkeys(("he", "yi"), "hebrew"),
    "ja": "japanese",
}
# Arabic letters are small for their em (Noto Sans Arabic's x-height is ~70 % of Noto Sans's at one size): drawn
# this much larger, a line of Arabic reads as big as a line of Latin beside it.
SCRIPT_SCALE = {"arabic": 1.25}
RTL_LANGUAGES = frozenset({"ar", "fa", "ur", "ps", "ckb", "sd", "ug", "he", "yi", "dv"})
# ISO 15924 script subtags (BCP 47: ku-Latn, az-Arab, sr-Cyrl) -> the bundled font's script; a subtag wins.
SCRIPT_SUBTAGS: dict[str, str] = {
    **dict.fromkeys(("latn", "cyrl", "grek"), "latin"),
    **dict.fromkeys(("arab", "aran"), "arabic"),
    "hebr": "hebrew",
    **dict.fromkeys(("jpan", "hira", "kana", "hani", "hrkt"), "japanese"),
}
# Scripts written right to left (a subtag among these makes any language's captions right to left).
RTL_SUBTAGS = frozenset({"arab", "aran", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg", "mand", "samr"})
# Languages commonly written in two scripts: 'ku' is Kurmanji in Latin letters (Turkey, Syria) as often as
# Sorani in Arabic letters (Iraq, Iran); without a subtag, the text itself decides.
TWO_SCRIPT_LANGUAGES = frozenset({"ku", "az", "uz", "tk", "pa", "ms"})


def base_language(language: str) -> str:
    """The language part of a code: 'fr-CA' -> 'fr'."""
    return language.split("-", 1)[0].lower()


def _script_subtag(language: str) -> str | None:
    for part in language.split("-")[1:]:
        if len(part) == 4 and part.isalpha():
            return part.lower()
    return None


def text_script(text: str) -> str:
    """The bundled-font script most of the text's letters belong to ('latin' when it has none of the others)."""
    counts = {"arabic": 0, "hebrew": 0, "japanese": 0, "latin": 0}
    for ch in text:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        if name.startswith("ARABIC"):
            counts["arabic"] += 1
        elif name.startswith("HEBREW"):
            counts["hebrew"] += 1
        elif name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
            counts["japanese"] += 1
        else:
            counts["latin"] += 1
    return max(counts, key=lambda k: (counts[k], k == "latin"))


def script_of(language: str, text: str = "") -> str:
    """The script a language's captions are drawn in ('latin' for Latin, Cyrillic and Greek): the code's script
    subtag, else, for a language written in two scripts, that of its text, else the language's usual one."""
    subtag = _script_subtag(language)
    if subtag in SCRIPT_SUBTAGS:
        return SCRIPT_SUBTAGS[subtag]
    base = base_language(language)
    if base in TWO_SCRIPT_LANGUAGES and text:
        return text_script(text)
    return SCRIPT_OF_LANGUAGE.get(base, "latin")


def with_script(language: str, script: str) -> str:
    """The code as its captions are drawn: a two-script language gets the subtag of the script its file is in
    ('ku' + arabic -> 'ku-Arab'); any other code is returned as it is."""
    if _script_subtag(language) is not None or base_language(language) not in TWO_SCRIPT_LANGUAGES:
        return language
    return f"{language}-{dict(arabic='Arab', hebrew='Hebr', japanese='Jpan').get(script, 'Latn')}"


def is_rtl(language: str, text: str = "") -> bool:
    """True for captions written right to left (the script subtag's, the language's, or as script_of decides for a
    two-script language's text)."""
    subtag = _script_subtag(language)
    if subtag is not None and (subtag in SCRIPT_SUBTAGS or subtag in RTL_SUBTAGS):
        return subtag in RTL_SUBTAGS
    if base_language(language) in TWO_SCRIPT_LANGUAGES:
        return script_of(language, text) in ("arabic", "hebrew")
    return base_language(language) in RTL_LANGUAGES


def _invisible(ch: str) -> bool:
    # Format controls (bidi marks, ZWJ/ZWNJ, BOM) and variation selectors are never looked up as glyphs by libass.
    return unicodedata.category(ch) == "Cf" or "\ufe00" <= ch <= "\ufe0f" or ch in "\n\r\t"


@dataclass(frozen=True)
class CaptionFont:
    """A font file as libass will use it: the family name it is known by, its metrics and its character map."""

    path: Path
    family: str
    upem: int
    win_height: int  # OS/2 usWinAscent + usWinDescent: libass sizes text so that this spans the ASS Fontsize
    codepoints: frozenset[int]
    scale: float = 1.0  # drawn this much larger than the common em, so scripts look equally big (see SCRIPT_SCALE)

    def ass_size(self, em_px: float) -> float:
        """The ASS Fontsize that draws this font's em at em_px pixels (fonts differ by up to 60 % at equal size)."""
        return em_px * self.scale * self.win_height / self.upem

    def missing(self, text: str) -> set[str]:
        """Characters of `text` this font cannot draw (invisible format controls excepted)."""
        return {c for c in text if not _invisible(c) and ord(c) not in self.codepoints}

    def width(self, text: str, em_px: float) -> float:
        """Advance width in pixels of `text` shaped as one run (HarfBuzz: Arabic joins, ligatures) at em_px."""
        import uharfbuzz as hb

        if not text:
            return 0.0  # a line that held only markup (`{\an8}`, `<v Mary>`): HarfBuzz has no positions for it
        buf = hb.Buffer()
        buf.add_str(text)
        buf.guess_segment_properties()
        hb.shape(_hb_font(self.path), buf, {})
        return sum(p.x_advance for p in buf.glyph_positions or ()) * em_px * self.scale / self.upem

    def clusters(self, text: str) -> list[str]:
        """`text` cut into what a line may never split: a letter with its marks, an emoji sequence, a flag
        (HarfBuzz's grapheme clusters, as shaped in this font)."""
        import uharfbuzz as hb

        if not text:
            return []
        buf = hb.Buffer()
        buf.add_codepoints([ord(c) for c in text])  # clusters are then code point indices
        buf.guess_segment_properties()
        hb.shape(_hb_font(self.path), buf, {})
        starts = sorted({info.cluster for info in buf.glyph_infos} | {0})
        return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


@functools.cache
def _hb_font(path: Path):  # noqa: ANN202 (uharfbuzz has no type stubs)
    import uharfbuzz as hb

    font = hb.Font(hb.Face(hb.Blob.from_file_path(str(path))))
    return font


@functools.cache
def load_font(path: Path) -> CaptionFont:
    """Read a .ttf/.otf file's name, metrics and character map; raise ClipperError if it is not a usable font."""
    import uharfbuzz as hb

    try:
        face = hb.Face(hb.Blob.from_file_path(str(path)))
        family = face.get_name(hb.OTNameIdPredefined.FONT_FAMILY)
        os2 = face.reference_table("OS/2").data
        win_ascent, win_descent = struct.unpack(">HH", bytes(os2[74:78]))
        upem = face.upem
        codepoints = frozenset(face.unicodes)
    except Exception as e:  # uharfbuzz raises plain exceptions on unreadable files
        raise ClipperError(f"cannot read font {path} ({e})", hint="name a TrueType or OpenType file") from None
    if not family or not codepoints or upem <= 0 or win_ascent + win_descent <= 0:
        raise ClipperError(
            f"{path} is not a usable font (no family name, character map or vertical metrics)",
            hint="name a TrueType or OpenType font file (.ttf, .otf)",
        )
    return CaptionFont(Path(path), family, upem, win_ascent + win_descent, codepoints)


def bundled_font(script: str) -> CaptionFont:
    """The font clipper installs for a script; raise ClipperError if its package is missing."""
    package, pattern, pip_name = FONT_PACKAGES[script]
    spec = importlib.util.find_spec(package)
    files = (
        sorted(Path(next(iter(spec.submodule_search_locations))).glob(pattern))
        if spec and spec.submodule_search_locations
        else []
    )
    if not files:
        raise ClipperError(
            f"the caption font for {script} script is not installed (package {pip_name})",
            hint=f"reinstall clipper (pip install .), or pip install {pip_name}",
        )
    return dataclasses.replace(load_font(files[0]), scale=SCRIPT_SCALE.get(script, 1.0))


def font_for(language: str, override: Path | None = None, text: str = "") -> CaptionFont:
    """The font a language's captions (`text`) are drawn in: the manifest's override, or the bundled one for
    their script."""
    return load_font(override) if override is not None else bundled_font(script_of(language, text))

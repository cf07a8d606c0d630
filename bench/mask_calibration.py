"""Mask strength against the verify gate: which masks leave nothing a face detector can find, on real footage.

    python bench/mask_calibration.py [--step N] [--clips akiyo,asl] [--part recall|masks|all] [--all-settings]

For every clip of ../shared/corpus/video (skipped when absent): decode, detect with CenterFace (threshold 0.25, as
the renderer does), plan masks with clipper.faces.track.plan_masks, draw them with clipper.faces.mask.apply_masks
under each candidate setting, then run the gate (BlazeFace full-range, clipper.faces.gate) and CenterFace itself on
the masked frames. The product rule is that a render fails when the gate finds a face anywhere, inside a mask too.
Every picture is looked at twice: as it is ("native") and as a 1080x1920 pad-blur render shows it ("9:16": fitted
into a 9:16 frame over a blurred copy of itself, as graph.py does), where faces are small to the gate.

Part "recall" (unmasked frames): how often the gate finds the faces that are there (recall, all faces found), how
long it can go blind on a visible face, false positives (foreman's faceless frames, the printed skull in the ASL
clip, boxes no CenterFace box confirms) at thresholds 0.4-0.7, for 0, 1 and 2 tile levels.

Part "masks": per candidate setting, frames where the gate or CenterFace (0.25) still fires on the masked picture
("in" = inside a mask, "out" = elsewhere), frames where a face the gate saw unmasked is not fully covered, and the
highest gate score left inside a mask (the margin). mask.py's constants are patched here, never edited.

Result (2 CPU cores, ~6 min with the defaults; 502 frames evaluated, step 3): with clipper's masks before this
calibration (pixelate, 5 blocks, padding 0.35) the gate found faces inside masks in 32 frames native and 162 in
9:16 at 0.5 (15/87 at 0.6); ellipses are worse (83/191) and solid black fires on head silhouettes (34 native).
Pixelate 3 blocks, box, padding 0.5 leaves 0 at 0.6 in every view (max score 0.45 native, 0.54 9:16), and no face
the gate saw unmasked is left < 95 % covered. Outside masks at 0.6 only the ASL clip's skull print fires (2 native,
9 9:16 frames of 77); at 0.5 necklines, concrete and the skull fire in 36 9:16 frames, hence the gate's 0.6.

Footage is read in place, nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageFilter

from clipper.faces import mask as maskmod
from clipper.faces.detect import CenterFace
from clipper.faces.gate import DEFAULT_THRESHOLD, BlazeFace
from clipper.faces.gate import tiles as gate_tiles
from clipper.faces.track import Detection, FrameMask, TrackingSettings, plan_masks

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "video"
THRESHOLDS = (0.4, 0.5, 0.6, 0.7)
GATE_THRESHOLD = DEFAULT_THRESHOLD  # the gate's own threshold: per-clip cells are counted at it
SEEN_THRESHOLD = 0.5  # faces the gate sees on unmasked frames, whose coverage by the masks is checked
PORTRAIT = (540, 960)  # 9:16 at half of 1080x1920: the gate looks at 192x341 (tiles 1) or 384x683 (tiles 2)


@dataclass(frozen=True)
class Clip:
    """One corpus clip and what is known to be in it."""

    name: str
    file: str
    faces: int  # people in view
    face_present: Callable[[int], bool] = lambda i: True  # frames where every face is fully in view
    no_face: Callable[[int], bool] = lambda i: False  # frames where there is no face at all
    # A box centre at (x, y) as fractions of the frame that is not a real face (the printed skull).
    not_a_face: Callable[[float, float], bool] = lambda x, y: False


CLIPS = (
    Clip("akiyo", "akiyo_cif_single_anchor.mp4", 1),
    Clip("foreman", "foreman_cif_head_motion.mp4", 1, lambda i: i < 170, lambda i: i >= 195),
    Clip("mother_daughter", "mother_daughter_cif_two_people.mp4", 2),
    Clip("headpose", "intel_head-pose-face-detection-female-and-male_lossless444.mp4", 2),
    Clip("walking", "intel_face-demographics-walking-and-pause_lossless444.mp4", 3),
    # The signer's face is in the top middle; the skull print is on the T-shirt below it.
    Clip(
        "asl", "intel_asl_again_640x480_signer.mkv", 1, not_a_face=lambda x, y: y > 180 / 480 or not 230 < x * 640 < 420
    ),
    Clip("zhling", "micro/zhling_720p_webcam_19frames.mp4", 1),
    Clip("cisco", "micro/CiscoVT2people_320x192_12fps_lossless.mp4", 2),
)


@dataclass(frozen=True)
class MaskSetting:
    """One candidate: how the mask is drawn and how far it reaches."""

    mode: str = "pixelate"  # or "solid", "blur"; "grey" = solid mid-grey (emulated here, not in mask.py)
    blocks: int = 5  # mask.MAX_BLOCKS_ACROSS
    shape: str = "box"
    padding: float = 0.35  # TrackingSettings.padding
    flatten: float | None = None  # luma contrast kept inside the mask (1 = all, 0 = flat); None: not applied

    @property
    def label(self) -> str:
        """Short name for the table."""
        what = {"pixelate": f"pix{self.blocks}", "blur": f"blur{self.blocks}"}.get(self.mode, self.mode)
        extra = f" flat{self.flatten:g}" if self.flatten is not None else ""
        return f"{what} {self.shape} pad{self.padding:g}{extra}"


def candidates(every: bool) -> list[MaskSetting]:
    """The sweep: pixelate 5..1 blocks x shape x padding, luma flattening, solid black or grey, blur."""
    short = [
        MaskSetting("pixelate", 5, "box"),  # clipper's setting before this calibration
        MaskSetting("pixelate", 5, "ellipse"),
        MaskSetting("pixelate", 3, "box"),
        MaskSetting("pixelate", 3, "box", 0.5),
        MaskSetting("pixelate", 3, "box", 0.5, flatten=0.25),
        MaskSetting("pixelate", 2, "box"),
        MaskSetting("pixelate", 2, "box", 0.5),
        MaskSetting("pixelate", 1, "box"),  # one block: the region's mean colour
        MaskSetting("solid", 5, "box"),
        MaskSetting("grey", 5, "box"),
        MaskSetting("blur", 3, "box"),
        MaskSetting("blur", 2, "box"),
    ]
    if not every:
        return short
    out = [MaskSetting("pixelate", b, shape) for b in (5, 4, 3, 2) for shape in ("box", "ellipse")]
    out += [MaskSetting("pixelate", b, shape, 0.5) for b in (4, 3, 2) for shape in ("box", "ellipse")]
    out += [MaskSetting("pixelate", b, "box", flatten=a) for b in (5, 4, 3, 2) for a in (0.5, 0.25, 0.0)]
    out += [MaskSetting("pixelate", 3, "ellipse", flatten=0.25), MaskSetting("pixelate", 3, "box", 0.5, 0.25)]
    out += [MaskSetting("pixelate", 1, shape) for shape in ("box", "ellipse")]
    out += [MaskSetting("solid", 5, shape) for shape in ("box", "ellipse")] + [MaskSetting("grey", 5, "box")]
    out += [MaskSetting("blur", b, "box") for b in (5, 4, 3, 2)] + [MaskSetting("blur", 3, "ellipse")]
    out += [MaskSetting("blur", b, "box", 0.5) for b in (3, 2)]
    return out


# ------------------------------------------------------------------------------------------- pictures


def decode(path: Path) -> list[np.ndarray]:
    """Every frame of the first video stream as RGB."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)]


def luma(rgb: np.ndarray) -> float:
    """Mean BT.601 luma, 0..255 (what plan_masks compares to dark_luma)."""
    return float((rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).mean())


@dataclass(frozen=True)
class Portrait:
    """Where a frame lands in a 9:16 pad-blur picture: scale and offset of the sharp copy."""

    scale: float
    x: int
    y: int
    w: int
    h: int


def portrait_geometry(width: int, height: int) -> Portrait:
    """The sharp copy's place in a PORTRAIT frame (fitted, centred, like graph.py's pad-blur)."""
    ow, oh = PORTRAIT
    s = min(ow / width, oh / height)
    w, h = round(width * s) // 2 * 2, round(height * s) // 2 * 2
    return Portrait(s, (ow - w) // 2, (oh - h) // 2, w, h)


def pad_blur(rgb: np.ndarray) -> np.ndarray:
    """The frame as a 9:16 pad-blur render shows it: fitted over a blurred, darkened, enlarged copy of itself."""
    ow, oh = PORTRAIT
    g = portrait_geometry(rgb.shape[1], rgb.shape[0])
    img = Image.fromarray(rgb)
    # graph.py: 1/8 size (area), crop, gblur sigma 6, brightness -0.08, bilinear back up.
    sw, sh = ow // 8, oh // 8
    cover = max(sw / rgb.shape[1], sh / rgb.shape[0])
    small = img.resize((math.ceil(rgb.shape[1] * cover), math.ceil(rgb.shape[0] * cover)), Image.Resampling.BOX)
    left, top = (small.width - sw) // 2, (small.height - sh) // 2
    small = small.crop((left, top, left + sw, top + sh)).filter(ImageFilter.GaussianBlur(6))
    bg = np.asarray(small.resize((ow, oh), Image.Resampling.BILINEAR), np.float32) - 0.08 * 255
    out = bg.clip(0, 255).astype(np.uint8)
    out[g.y : g.y + g.h, g.x : g.x + g.w] = np.asarray(img.resize((g.w, g.h), Image.Resampling.BICUBIC))
    return out


def coverage(shape: tuple[int, int], m: FrameMask, mask_shape: str) -> np.ndarray:
    """Boolean picture of what the masks cover in one frame."""
    h, w = shape
    out = np.zeros((h, w), bool)
    if m.full_frame:
        out[:] = True
        return out
    for x, y, bw, bh in m.boxes:
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x1 <= x0 or y1 <= y0:
            continue
        if mask_shape == "ellipse":
            out[y0:y1, x0:x1] |= maskmod._ellipse(bw, bh)[y0 - y : y1 - y, x0 - x : x1 - x]
        else:
            out[y0:y1, x0:x1] = True
    return out


def flatten_luma(rgb: np.ndarray, covered: np.ndarray, keep: float) -> None:
    """Pull luma inside the covered area toward its mean (keep = contrast kept), hue and mean untouched; in place."""
    if not covered.any():
        return
    px = rgb[covered].astype(np.float32)
    y = px @ np.array([0.299, 0.587, 0.114], np.float32)
    px += ((keep - 1) * (y - y.mean()))[:, None]
    rgb[covered] = px.round().clip(0, 255).astype(np.uint8)


@contextlib.contextmanager
def blocks_across(n: int) -> Iterator[None]:
    """mask.MAX_BLOCKS_ACROSS set to n for the duration (read by block_px at call time)."""
    old = maskmod.MAX_BLOCKS_ACROSS
    maskmod.MAX_BLOCKS_ACROSS = n
    try:
        yield
    finally:
        maskmod.MAX_BLOCKS_ACROSS = old


def draw(rgb: np.ndarray, m: FrameMask, s: MaskSetting) -> np.ndarray:
    """A masked copy of the frame under setting s."""
    out = rgb.copy()
    if s.mode == "grey":
        out[coverage(rgb.shape[:2], m, s.shape)] = 128
        return out
    with blocks_across(s.blocks):
        maskmod.apply_masks(out, m.boxes, mode=s.mode, shape=s.shape, full_frame=m.full_frame)  # type: ignore[arg-type]
    if s.flatten is not None:
        for box in m.boxes if not m.full_frame else [(0, 0, rgb.shape[1], rgb.shape[0])]:
            one = FrameMask(m.frame, (box,), False, m.reason)
            flatten_luma(out, coverage(rgb.shape[:2], one, s.shape), s.flatten)
    return out


# ------------------------------------------------------------------------------------------- measuring


@dataclass
class ClipData:
    """A decoded clip, CenterFace's detections on it, and the frames evaluated."""

    clip: Clip
    frames: list[np.ndarray]
    centerface: list[list[Detection]]
    luma: list[float]
    sample: list[int]
    seen: dict[int, list[Detection]] = field(default_factory=dict)  # the gate's faces, unmasked, SEEN_THRESHOLD

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.frames[0].shape[1], self.frames[0].shape[0]


def load(clip: Clip, step: int, cf: CenterFace) -> ClipData | None:
    """Decode a clip and detect faces in every frame (tracking needs them all); None when the file is absent."""
    path = CORPUS / clip.file
    if not path.is_file():
        return None
    frames = decode(path)
    dets = [cf.detect(f) for f in frames]
    # Short clips are evaluated whole; long ones every `step`-th frame (tracking still saw every frame).
    sample = list(range(0, len(frames), step if len(frames) > 100 else 1))
    return ClipData(clip, frames, dets, [luma(f) for f in frames], sample)


def centre(d: Detection) -> tuple[float, float]:
    """Box centre."""
    return (d.x0 + d.x1) / 2, (d.y0 + d.y1) / 2


# Gate boxes per view, in source pixels; None stands for a box in pad-blur's blurred bands (no source pixel).
Found = list[Detection | None]
VIEWS = ("native", "9:16 t0", "9:16 t1", "9:16 t2")


def gate_views(rgb: np.ndarray, levels: int = 1) -> dict[str, Found]:
    """The gate (threshold 0.4) on the picture and on its 9:16 pad-blur render, per tile level, in source pixels.

    A tiles=N detector's boxes are those of levels 0..N together: each level is run separately here and united,
    which counts the same frames as BlazeFace(tiles=N).detect would (NMS aside).
    """
    h, w = rgb.shape[:2]
    native = BlazeFace(threshold=min(THRESHOLDS), tiles=1)
    out: dict[str, Found] = {"native": list(native.detect(rgb))}
    g = portrait_geometry(w, h)
    pic = pad_blur(rgb)
    by_level = _levels(pic, levels)
    for level in range(levels + 1):
        boxes = [d for lv in range(level + 1) for d in by_level[lv]]
        out[f"9:16 t{level}"] = [_to_source(d, g) for d in boxes]
    return out


def _levels(pic: np.ndarray, levels: int) -> list[list[Detection]]:
    """Boxes found on the whole picture (level 0) and on each level's tiles, in the picture's pixels."""
    one = BlazeFace(threshold=min(THRESHOLDS), tiles=0)
    h, w = pic.shape[:2]
    out: list[list[Detection]] = [one.detect(pic)] + [[] for _ in range(levels)]
    for x, y, side in gate_tiles(w, h, levels):
        level = round(min(w, h) / side)
        for d in one.detect(np.ascontiguousarray(pic[y : y + side, x : x + side])):
            out[level].append(Detection(d.x0 + x, d.y0 + y, d.x1 + x, d.y1 + y, d.score))
    return out


def _to_source(d: Detection, g: Portrait) -> Detection | None:
    cx, cy = centre(d)
    if not (g.x <= cx < g.x + g.w and g.y <= cy < g.y + g.h):
        return None
    f = [(d.x0 - g.x) / g.scale, (d.y0 - g.y) / g.scale, (d.x1 - g.x) / g.scale, (d.y1 - g.y) / g.scale]
    return Detection(*f, score=d.score)


def above(found: Found, thr: float) -> Found:
    """The boxes scoring above thr (band boxes carry no score here, so they are kept at every threshold >= 0.4)."""
    return [d for d in found if d is None or d.score > thr]


def confirmed(d: Detection, refs: list[Detection], grow: float = 0.5) -> bool:
    """The box's centre lies in some reference box grown by `grow` of its size on each side."""
    cx, cy = centre(d)
    for r in refs:
        w, h = r.x1 - r.x0, r.y1 - r.y0
        if r.x0 - grow * w <= cx <= r.x1 + grow * w and r.y0 - grow * h <= cy <= r.y1 + grow * h:
            return True
    return False


def longest_run(flags: list[bool]) -> int:
    """Longest run of True."""
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def recall_part(data: list[ClipData]) -> None:
    """The gate on unmasked frames: recall, blind runs, false positives, per view, tile level and threshold."""
    print("\n## Gate on UNMASKED frames: recall and false positives\n")
    print("cell = recall / all-faces rate, b = longest run of evaluated frames blind to a face in view, fp = frames")
    print("with a box on a known non-face (foreman's faceless frames, ASL skull), in pad-blur's bands, or unconfirmed")
    print("by CenterFace (centre outside every CenterFace box grown 50 %). 'native' = tiles 1 (only 16:9 is tiled).\n")
    per_view: dict[str, list[list[tuple[int, Found]]]] = {v: [] for v in VIEWS}
    for d in data:
        rows: dict[str, list[tuple[int, Found]]] = {v: [] for v in VIEWS}
        for i in d.sample:
            found = gate_views(d.frames[i], levels=2)
            for v in VIEWS:
                rows[v].append((i, found[v]))
        for v in VIEWS:
            per_view[v].append(rows[v])
        d.seen = {i: [x for x in f if x is not None and x.score > SEEN_THRESHOLD] for i, f in rows["native"]}
    print(f"{'view':8} {'thr':>4} | " + " ".join(f"{d.clip.name[:16]:>16}" for d in data))
    for v in VIEWS:
        for thr in THRESHOLDS:
            cells = [
                _recall_cell(d, [(i, above(f, thr)) for i, f in rows])
                for d, rows in zip(data, per_view[v], strict=True)
            ]
            print(f"{v:8} {thr:>4} | " + " ".join(f"{c:>16}" for c in cells), flush=True)


def _recall_cell(d: ClipData, rows: list[tuple[int, Found]]) -> str:
    c = d.clip
    w, h = d.size
    present = hit = every = fp = 0
    blind: list[bool] = []
    for i, found in rows:
        boxes = [x for x in found if x is not None]
        real = [x for x in boxes if not c.not_a_face(centre(x)[0] / w, centre(x)[1] / h)]
        wrong = len(found) > len(real) or (c.no_face(i) and bool(boxes))
        fp += bool(wrong or any(not confirmed(x, d.centerface[i]) for x in boxes))
        if c.face_present(i):
            present += 1
            hit += bool(real)
            every += len(real) >= c.faces
            blind.append(not real)
    return f"{hit / present:.2f}/{every / present:.2f} b{longest_run(blind)} fp{fp}"


MASK_VIEWS = ("native", "9:16 t0", "9:16 t1")


@dataclass
class Tally:
    """Frames where something still fires on masked pictures, for one setting on one clip."""

    frames: int = 0
    inside: dict[tuple[str, float], int] = field(default_factory=dict)  # (view, threshold) -> frames
    outside: dict[tuple[str, float], int] = field(default_factory=dict)
    cf_in: int = 0
    cf_out: int = 0
    uncovered: int = 0
    max_in: dict[str, float] = field(default_factory=dict)  # view -> highest gate score inside a mask

    def add(self, key: tuple[str, float], into: dict[tuple[str, float], int], hit: bool) -> None:
        """Count one frame."""
        into[key] = into.get(key, 0) + hit


def masks_part(data: list[ClipData], settings: list[MaskSetting]) -> None:
    """Each setting on each clip: what the gate and CenterFace still find on masked frames."""
    cf = CenterFace(threshold=0.25, width=640)
    plans: dict[tuple[str, float], list[FrameMask]] = {}
    names = " ".join(f"{d.clip.name[:15]:>15}" for d in data)
    totals = f"{'in@.5':>9} {'in@.6':>9} {'out@.5':>6} {'out@.6':>6} {'cf':>3} {'u':>2} {'max':>9}"
    print(f"{'setting':30} | {names} | {totals}")
    print(f"{'frames evaluated':30} | " + " ".join(f"{len(d.sample):>15}" for d in data))
    for s in settings:
        tallies = []
        for d in data:
            key = (d.clip.name, s.padding)
            if key not in plans:
                w, h = d.size
                plans[key] = plan_masks(d.centerface, w, h, TrackingSettings(padding=s.padding), luma=d.luma)
            tallies.append(_tally(d, plans[key], s, cf))
        print(_row(s, tallies), flush=True)


def _tally(d: ClipData, plan: list[FrameMask], s: MaskSetting, cf: CenterFace) -> Tally:
    t = Tally()
    for i in d.sample:
        cov = coverage(d.frames[i].shape[:2], plan[i], s.shape)
        masked = draw(d.frames[i], plan[i], s)
        t.frames += 1

        def inside(x: Detection | None, cov: np.ndarray = cov) -> bool:
            if x is None:
                return False
            cx, cy = centre(x)
            return bool(cov[min(max(0, int(cy)), cov.shape[0] - 1), min(max(0, int(cx)), cov.shape[1] - 1)])

        for view, found in gate_views(masked).items():
            t.max_in[view] = max([t.max_in.get(view, 0.0), *(x.score for x in found if x and inside(x))])
            for thr in sorted({0.5, 0.6, GATE_THRESHOLD}):
                hits = above(found, thr)
                t.add((view, thr), t.inside, any(inside(x) for x in hits))
                t.add((view, thr), t.outside, any(not inside(x) for x in hits))
        cfh = cf.detect(masked)
        t.cf_in += any(inside(x) for x in cfh)
        t.cf_out += any(not inside(x) for x in cfh)
        t.uncovered += any(_covered_fraction(x, cov) < 0.95 for x in d.seen.get(i, []))
    return t


def _covered_fraction(d: Detection, cov: np.ndarray) -> float:
    x0, y0 = max(0, int(d.x0)), max(0, int(d.y0))
    x1, y1 = min(cov.shape[1], math.ceil(d.x1)), min(cov.shape[0], math.ceil(d.y1))
    if x1 <= x0 or y1 <= y0:
        return 1.0
    return float(cov[y0:y1, x0:x1].mean())


def _row(s: MaskSetting, tallies: list[Tally]) -> str:
    def total(into: str, view: str, thr: float) -> int:
        return sum(getattr(t, into).get((view, thr), 0) for t in tallies)

    cells = [
        f"{t.inside.get(('native', GATE_THRESHOLD), 0)}/{t.inside.get(('9:16 t1', GATE_THRESHOLD), 0)}/{t.cf_in}"
        f" {t.uncovered}u"
        for t in tallies
    ]
    at5 = "/".join(str(total("inside", v, 0.5)) for v in MASK_VIEWS)
    at6 = "/".join(str(total("inside", v, 0.6)) for v in MASK_VIEWS)
    out5 = "/".join(str(total("outside", v, 0.5)) for v in ("native", "9:16 t1"))
    out6 = "/".join(str(total("outside", v, 0.6)) for v in ("native", "9:16 t1"))
    worst = "/".join(f"{max(t.max_in.get(v, 0.0) for t in tallies):.2f}" for v in ("native", "9:16 t1"))
    cf = sum(t.cf_in for t in tallies)
    u = sum(t.uncovered for t in tallies)
    return (
        f"{s.label:30} | "
        + " ".join(f"{c:>15}" for c in cells)
        + f" | {at5:>9} {at6:>9} {out5:>6} {out6:>6} {cf:>3} {u:>2} {worst}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the calibration and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", type=int, default=3, help="evaluate every N-th frame of clips over 100 frames (3)")
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all)")
    ap.add_argument("--part", choices=("recall", "masks", "all"), default="all")
    ap.add_argument("--all-settings", action="store_true", help="the whole sweep (44 settings, ~25 min), not 12")
    ns = ap.parse_args(argv)
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}: nothing to calibrate", file=sys.stderr)
        return 0
    wanted = set(filter(None, ns.clips.split(",")))
    t0 = time.perf_counter()
    cf = CenterFace(threshold=0.25, width=640)
    data = []
    for clip in CLIPS:
        if wanted and clip.name not in wanted:
            continue
        d = load(clip, ns.step, cf)
        if d is None:
            print(f"skipped {clip.name}: {clip.file} not in the corpus", file=sys.stderr)
            continue
        data.append(d)
        print(
            f"{clip.name}: {len(d.frames)} frames {d.size[0]}x{d.size[1]}, {len(d.sample)} evaluated", file=sys.stderr
        )
    if not data:
        print("no corpus clip found: nothing to calibrate", file=sys.stderr)
        return 0
    if ns.part in ("recall", "all"):
        recall_part(data)
    else:  # the masks part needs the gate's own boxes on unmasked frames (are real faces covered?)
        gate = BlazeFace(threshold=SEEN_THRESHOLD, tiles=1)
        for d in data:
            d.seen = {i: gate.detect(d.frames[i]) for i in d.sample}
    if ns.part in ("masks", "all"):
        print("\n## Masked frames: frames where a detector still fires\n")
        print("per clip: frames with a box inside a mask: gate native / gate 9:16 tiles 1 (both at the gate's")
        print(f"threshold {GATE_THRESHOLD}) / CenterFace 0.25; u = frames where a face the gate saw unmasked (score >")
        print(
            f"{SEEN_THRESHOLD}) is < 95 % covered. Totals: in@ = frames with a gate box inside a mask, views native /"
        )
        print("9:16 t0 / 9:16 t1, at 0.5 and 0.6; out@ = frames with a gate box outside every mask, native / 9:16 t1")
        print("(the gate's false positives on masked footage); cf = CenterFace inside a mask; max = highest gate score")
        print("left inside a mask, native / 9:16 t1 (the margin below the threshold).\n")
        print(f"mask.MAX_BLOCKS_ACROSS is patched per setting (file value {maskmod.MAX_BLOCKS_ACROSS}).")
        masks_part(data, candidates(ns.all_settings))
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

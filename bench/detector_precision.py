"""Does CenterFace in bf16 find the faces it finds in f32? The measurement behind clipper.faces.detect.PRECISIONS.

Two parts, both run through clipper's own detector (CenterFace(precision=...)):

1. corpus: every frame of every clip in ../shared/corpus/video, at the width clipper analyses it: per frame, the
   number of faces each precision finds; for each f32 face, the best-overlapping bf16 box (IoU) and the score change.
2. small faces: the astronaut and faces found in corpus frames, cut out with half a face of their surroundings,
   scaled to 8-28 px wide and pasted at random places onto a grey picture and seven of scikit-image's pictures
   (coffee, rocket, cat, brick, grass, gravel, Hubble field; 960x540): how many placements each precision finds
   (a box over the face's centre). This also measures the detector's floor (clipper.faces.detect.FLOOR_PX): on
   grey every face is found from 14 px; in front of texture and scenes, only from 22.

Needs a CPU with AVX512_BF16 (where clipper uses bf16). Usage: python bench/detector_precision.py [--placements 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np
from PIL import Image

from clipper.analyze import frame_width
from clipper.faces import detect
from clipper.faces.detect import CenterFace
from clipper.faces.track import Detection, _iou

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "video"
SIZES = (8, 10, 12, 14, 16, 18, 20, 22, 24, 28)


def iou(a: Detection, b: Detection) -> float:
    """Intersection over union of two detections (the tracker's own measure)."""
    return _iou(a.box, b.box)


def clips() -> list[Path]:
    """The corpus's video clips (the GIFs have lossless MP4 twins)."""
    return sorted(p for p in CORPUS.iterdir() if p.suffix in {".mp4", ".mkv"})


def frame_at(path: Path, index: int, width: int | None = None, height: int | None = None) -> np.ndarray:
    """One frame of a clip as RGB, optionally scaled."""
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f.reformat(width=width, height=height, format="rgb24").to_ndarray()
    raise ValueError(f"{path} has no frame {index}")


def corpus_part(f32: CenterFace, bf16: CenterFace) -> None:
    """Per-frame agreement of the two precisions on the corpus."""
    ious: list[float] = []
    score_change: list[float] = []
    print("clip                                                frames  with faces f32/bf16  frames whose count differs")
    for path in clips():
        frames = with_f32 = with_bf16 = differ = 0
        with av.open(str(path)) as c:
            for fr in c.decode(video=0):
                w = frame_width(fr.width, bf16.floor_px)
                rgb = fr.reformat(width=w, height=round(fr.height * w / fr.width), format="rgb24").to_ndarray()
                a, b = f32.detect(rgb), bf16.detect(rgb)
                frames += 1
                with_f32 += bool(a)
                with_bf16 += bool(b)
                differ += len(a) != len(b)
                for d in a:
                    best = max(b, key=lambda e: iou(d, e), default=None)
                    if best is not None and iou(d, best) > 0.3:
                        ious.append(iou(d, best))
                        score_change.append(best.score - d.score)
                    else:
                        score_change.append(-d.score)
        print(f"{path.name:50s} {frames:6d}  {with_f32:8d}/{with_bf16:<8d}  {differ:6d}")
    i, s = np.array(ious), np.array(score_change)
    print(
        f"matched boxes {i.size}: IoU min {i.min():.3f}, 1st pct {np.percentile(i, 1):.3f}, median {np.median(i):.3f}"
    )
    print(f"score bf16 - f32: min {s.min():+.4f}, median {np.median(s):+.4f}, max {s.max():+.4f}")


def sample_faces() -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Face pictures with their box (x, y, w, h): the astronaut, and the strongest faces of a few corpus frames."""
    from skimage import data as skd

    faces = [(skd.astronaut(), (165, 40, 120, 150))]
    full = CenterFace(precision="f32")
    for name, index, count in [
        ("akiyo_cif_single_anchor.mp4", 10, 1),
        ("foreman_cif_head_motion.mp4", 10, 1),
        ("mother_daughter_cif_two_people.mp4", 10, 2),
    ]:
        path = CORPUS / name
        if not path.exists():
            continue
        rgb = frame_at(path, index)
        for d in sorted(full.detect(rgb), key=lambda d: -d.score)[:count]:
            faces.append((rgb, (int(d.x0), int(d.y0), int(d.x1 - d.x0), int(d.y1 - d.y0))))
    return faces


def scenes() -> list[np.ndarray]:
    """Pictures without faces, 960x540: scikit-image's coffee, rocket, cat, brick, grass, gravel and Hubble field."""
    from skimage import data as skd

    out = []
    for name in ("coffee", "rocket", "chelsea", "brick", "grass", "gravel", "hubble_deep_field"):
        a = np.asarray(getattr(skd, name)())
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        out.append(np.asarray(Image.fromarray(a[..., :3]).resize((960, 540), Image.Resampling.BILINEAR)))
    return out


def small_faces_part(f32: CenterFace, bf16: CenterFace, placements: int) -> None:
    """How many placements of each face, at each size, each precision finds."""
    rng = np.random.default_rng(7)
    backgrounds = [np.full((540, 960, 3), 128, np.uint8)] + scenes()
    print(f"\nfaces found, f32/bf16, of {placements * len(backgrounds)} placements per size (face width in px):")
    print("face  " + " ".join(f"{px:>7d}" for px in SIZES))
    totals = [0, 0]
    by_size: dict[int, tuple[int, int]] = {}
    for n, (img, (x, y, w, h)) in enumerate(sample_faces()):
        x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
        x1, y1 = min(img.shape[1], x + w + w // 2), min(img.shape[0], y + h + h // 2)
        crop = Image.fromarray(np.ascontiguousarray(img[y0:y1, x0:x1]))
        cells = []
        for px in SIZES:
            s = px / w
            small = np.asarray(
                crop.resize((max(1, round(crop.width * s)), max(1, round(crop.height * s))), Image.Resampling.BILINEAR)
            )
            found = [0, 0]
            for bg in backgrounds:
                for _ in range(placements):
                    X = int(rng.integers(0, 960 - small.shape[1]))
                    Y = int(rng.integers(0, 540 - small.shape[0]))
                    frame = bg.copy()
                    frame[Y : Y + small.shape[0], X : X + small.shape[1]] = small
                    cx, cy = X + (x - x0 + w / 2) * s, Y + (y - y0 + h / 2) * s
                    for k, det in enumerate((f32, bf16)):
                        found[k] += any(d.x0 <= cx <= d.x1 and d.y0 <= cy <= d.y1 for d in det.detect(frame))
            totals[0] += found[0]
            totals[1] += found[1]
            by_size[px] = (by_size.get(px, (0, 0))[0] + found[0], by_size.get(px, (0, 0))[1] + found[1])
            cells.append(f"{found[0]:>3d}/{found[1]:<3d}")
        print(f"{n:4d}  " + " ".join(cells))
    print(f"all sizes and faces: f32 {totals[0]}, bf16 {totals[1]}")
    print("per size, all faces (f32/bf16): " + ", ".join(f"{px}: {a}/{b}" for px, (a, b) in by_size.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=4, help="random places per face, size and background")
    args = parser.parse_args()
    if not detect._native_bf16():
        print("this CPU has no AVX512_BF16: clipper runs CenterFace in f32 here, there is nothing to compare")
        return 0
    if not CORPUS.is_dir():
        print(f"the corpus is not at {CORPUS}")
        return 1
    f32, bf16 = CenterFace(precision="f32", threads=2), CenterFace(precision="bf16", threads=2)
    corpus_part(f32, bf16)
    small_faces_part(f32, bf16, args.placements)
    return 0


if __name__ == "__main__":
    sys.exit(main())

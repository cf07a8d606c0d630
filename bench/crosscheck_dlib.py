"""Cross-check of the corpus renders with a third face detector: dlib's HOG frontal-face detector.

    python bench/crosscheck_dlib.py [--dlib-python PATH] [--out DIR] [--upsample 1,0]
                                       [--source-every N] [--control-every N] [--jobs N] [--fresh]
                                                  [--clips NAME,...]

What it measures, for every clip of ../shared/corpus/video (the same list as tests/conftest.py's CORPUS_CLIPS):

1. Recall on the unmasked source: the share of source frames (every --source-every-th) in which dlib finds at
   least one face. It shows dlib is a meaningful detector on this footage (a detector that finds nothing in
   the source proves nothing by finding nothing in the output).
2. The check: the clip rendered as tests/test_corpus_faces.py renders it (anonymize.faces pixelate, platforms
   telegram and tiktok, the editor's region over the printed skull on the ASL clip), then dlib run on every
   frame of each published output. Each detection is listed with its frame, box (output pixels), score, how
   much of it lies under a face mask or a region, and whether it sits in pad-blur's blurred bands; a PNG of
   the frame with the box drawn is kept under DIR/hits for a person to judge (real face leaking, face seen
   through a mask, or a false positive such as the printed skull or on-screen text).
   Control (--control-every): the unmasked source scaled to the picture size it has in each output, so recall
   is also measured at the scale the faces have in the outputs (not only at the source's own size).
3. Cost: milliseconds per frame of the detector alone (decode excluded), per upsample level and frame size.

dlib is not a dependency of clipper. Detection runs in a subprocess of an interpreter that can `import dlib`
(this one if it can, else the one given by --dlib-python), e.g. a separate venv:

    python3 -m venv DLIB_VENV && DLIB_VENV/bin/pip install dlib-bin numpy
    python bench/crosscheck_dlib.py --dlib-python DLIB_VENV/bin/python

That subprocess is this same file run with --worker: it needs only numpy and dlib, and reads frames as gray
from the ffmpeg bundled with imageio-ffmpeg (path passed by the parent). Renders are kept in --out (default
clipper-crosscheck-dlib in the temporary folder) and reused on the next run while their sidecar matches the
manifest and the
clipper version; detector results are kept in DIR/detections while the video file is unchanged (--fresh
redoes both). Skips with exit 0 when ../shared/corpus is not beside the checkout. Prints markdown tables and
writes them to DIR/crosscheck-dlib.md, with every detection's details in DIR/crosscheck-dlib.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
CORPUS_VIDEO = CORPUS / "video"
SUFFIXES = (".mp4", ".mkv", ".gif")
PLATFORMS = ("telegram", "tiktok")
# As in tests/test_corpus_faces.py: the ASL signer's T-shirt carries a printed skull an editor covers.
EDITOR_REGIONS: dict[str, list[dict[str, Any]]] = {
    "intel_asl_again_640x480_signer.mkv": [{"box": [0.37, 0.37, 0.26, 0.40], "mode": "pixelate"}],
}
OPT_OUT = {"voice": {"mode": "none", "reason": "corpus footage, voices kept for the cross-check"}}
DEFAULT_OUT = Path(tempfile.gettempdir()) / "clipper-crosscheck-dlib"
INSTALL_HINT = "pip install dlib-bin into this venv or pass --dlib-python PATH"


# --------------------------------------------------------------------------------------------- worker side


def _worker(ffmpeg: str, video: str, width: int, height: int, every: int, upsample: list[int]) -> dict[str, Any]:
    """Run dlib's HOG frontal detector over every `every`-th frame of `video` decoded as gray at width×height."""
    import dlib  # only here: the parent never imports it
    import numpy as np

    detector = dlib.get_frontal_face_detector()
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", video, "-an", "-sn"]
    cmd += ["-vf", f"scale={width}:{height}", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    size = width * height
    hits: dict[str, list[list[float]]] = {str(u): [] for u in upsample}
    with_face: dict[str, int] = {str(u): 0 for u in upsample}
    seconds: dict[str, float] = {str(u): 0.0 for u in upsample}
    frames = checked = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while True:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            index = frames
            frames += 1
            if index % every:
                continue
            checked += 1
            gray = np.frombuffer(buf, np.uint8).reshape(height, width)
            for u in upsample:
                started = time.perf_counter()
                rects, scores, kinds = detector.run(gray, u, 0.0)
                seconds[str(u)] += time.perf_counter() - started
                with_face[str(u)] += bool(rects)
                for r, s, k in zip(rects, scores, kinds, strict=True):
                    hits[str(u)].append([index, r.left(), r.top(), r.right(), r.bottom(), round(s, 3), k])
    if proc.returncode:
        raise SystemExit(f"ffmpeg failed on {video} (exit {proc.returncode})")
    return {
        "video": video,
        "size": [width, height],
        "frames": frames,
        "checked": checked,
        "frames_with_face": with_face,
        "seconds": seconds,
        "hits": hits,
    }


# --------------------------------------------------------------------------------------------- parent side


@dataclass
class Job:
    """One video for the detector: a source (recall) or a published output (the check)."""

    clip: str
    variant: str  # "source", a platform (its output), or "control:<platform>" (the source at its picture size)
    path: Path
    width: int
    height: int
    every: int
    result: dict[str, Any] = field(default_factory=dict)
    cached: bool = False


@dataclass
class Clip:
    """A corpus clip and what was rendered from it."""

    path: Path
    manifest: Path
    outputs: dict[str, Path] = field(default_factory=dict)  # platform -> mp4
    render_seconds: float = 0.0
    reused: bool = False


def corpus_clips() -> list[Path]:
    """The corpus videos, found the way tests/conftest.py finds them."""
    if not CORPUS_VIDEO.is_dir():
        return []
    return sorted(p for p in CORPUS_VIDEO.rglob("*") if p.suffix in SUFFIXES)


def manifest_yaml(clip: Path, duration_s: float) -> str:
    """The manifest tests/test_corpus_faces.py renders for a clip: faces pixelated, telegram and tiktok."""
    import yaml

    anonymize: dict[str, Any] = {**OPT_OUT, "faces": {"mode": "pixelate"}}
    if clip.name in EDITOR_REGIONS:
        anonymize["regions"] = EDITOR_REGIONS[clip.name]
    slug = "".join(c if c.isalnum() or c in "._-" else "-" for c in clip.stem.lower())
    doc = {
        "clipper": 1,
        "id": slug,
        "title": f"dlib cross-check: {clip.name}",
        "sources": {"cam": str(clip)},
        "segments": [{"source": "cam", "in": 0, "out": round(duration_s, 3)}],
        "anonymize": anonymize,
        "outputs": {"platforms": list(PLATFORMS), "languages": ["en"]},
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def render_clip(clip: Path, out: Path, *, fresh: bool) -> Clip:
    """Render (or reuse a matching earlier render of) one corpus clip; the verify gate runs as in a real render."""
    from clipper.media import probe
    from clipper.render import output_dir, prepare, render

    manifests = out / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    m = manifests / f"{clip.stem}.yaml"
    text = manifest_yaml(clip, probe(clip).duration_s)
    if not m.is_file() or m.read_text(encoding="utf-8") != text:
        m.write_text(text, encoding="utf-8")
    plan = prepare(m)
    folder = output_dir(out / "renders", plan)
    item = Clip(path=clip, manifest=m)
    previous = {}
    for v in plan.variants:
        side = (folder / v.filename).with_suffix(".json")
        if side.is_file() and (folder / v.filename).is_file():
            previous[v.platform] = (folder / v.filename, json.loads(side.read_text()))
    if not fresh and len(previous) == len(plan.variants):
        ok = all(
            s["manifest_sha256"] == plan.manifest_sha256
            and s["clipper_version"] == plan.clipper_version
            and s["output_sha256"] == _sha256(p)
            for p, s in previous.values()
        )
        if ok:
            item.outputs = {k: p for k, (p, _) in previous.items()}
            item.render_seconds = sum(s["render_seconds"] for _, s in previous.values())
            item.reused = True
            return item
    started = time.monotonic()
    results = render(plan, out / "renders")  # raises AnonymityError if the verify gate finds a face
    item.render_seconds = time.monotonic() - started
    item.outputs = {r.variant.platform: r.path for r in results}
    return item


def dlib_python(requested: str | None) -> str | None:
    """An interpreter that can import dlib and numpy: the requested one, else this one; None if neither."""
    python = requested or sys.executable
    ok = subprocess.run([python, "-c", "import dlib, numpy"], capture_output=True).returncode == 0
    return python if ok else None


def run_job(job: Job, python: str, ffmpeg: str, upsample: list[int], cache: Path | None, dlib_version: str) -> Job:
    """Run the detector on one video in a worker subprocess, or load its result from `cache` (keyed by the
    file's size and mtime, the frame size, stride, upsample levels and dlib's version)."""
    st = job.path.stat()
    key_text = json.dumps([str(job.path), st.st_size, st.st_mtime_ns, job.width, job.height, job.every, upsample])
    key = hashlib.sha256(f"{key_text} dlib {dlib_version}".encode()).hexdigest()[:20]
    cached = cache / f"{key}.json" if cache is not None else None
    if cached is not None and cached.is_file():
        job.result = json.loads(cached.read_text())
        job.cached = True
        return job
    cmd = [python, str(Path(__file__).resolve()), "--worker", "--ffmpeg", ffmpeg, "--video", str(job.path)]
    cmd += ["--size", f"{job.width}x{job.height}", "--every", str(job.every)]
    cmd += ["--upsample", ",".join(map(str, upsample))]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"dlib worker failed on {job.path}:\n{done.stderr}")
    job.result = json.loads(done.stdout)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(done.stdout)
    return job


def _raster(w: int, h: int, boxes: list[tuple[float, float, float, float]]) -> Any:
    """Boolean W×H picture, True inside any (x, y, w, h) box."""
    import numpy as np

    a = np.zeros((h, w), dtype=bool)
    for x, y, bw, bh in boxes:
        x0, y0 = max(0, int(x)), max(0, int(y))
        x1, y1 = min(w, int(round(x + bw))), min(h, int(round(y + bh)))
        if x1 > x0 and y1 > y0:
            a[y0:y1, x0:x1] = True
    return a


@dataclass
class Geometry:
    """Where the source picture sits in an output frame (fitted, centred: letterbox or pad-blur)."""

    out_w: int
    out_h: int
    pic_w: int
    pic_h: int

    def fitted(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) of the picture in the output, as clipper's _reframe fits it."""
        scale = min(Fraction(self.out_w, self.pic_w), Fraction(self.out_h, self.pic_h))
        fw, fh = int(self.pic_w * scale) // 2 * 2, int(self.pic_h * scale) // 2 * 2
        return ((self.out_w - fw) // 2, (self.out_h - fh) // 2, fw, fh)

    def to_output(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A box in source-picture pixels mapped into output pixels."""
        fx, fy, fw, fh = self.fitted()
        sx, sy = fw / self.pic_w, fh / self.pic_h
        x, y, w, h = box
        return (fx + x * sx, fy + y * sy, w * sx, h * sy)


def classify_hits(clip: Clip, job: Job, upsample: int, out: Path, ffmpeg: str) -> list[dict[str, Any]]:
    """Place every detection of an output against the masks clipper drew, and keep a PNG of its frame."""
    from clipper.analyze import analyze_faces, cache_dir
    from clipper.faces.cache import DetectionCache
    from clipper.render import prepare

    hits = job.result["hits"][str(upsample)]
    if not hits:
        return []
    plan = prepare(clip.manifest)
    # Same cache as the render, so this is a lookup, not a second analysis.
    faces = analyze_faces(plan, DetectionCache(cache_dir(out / "renders")))
    seg = plan.segments[0]
    geo = Geometry(job.width, job.height, seg.display_width, seg.display_height)
    fx, fy, fw, fh = geo.fitted()
    rows = []
    shots = out / "hits"
    shots.mkdir(parents=True, exist_ok=True)
    for frame, left, top, right, bottom, score, kind in hits:
        frame = int(frame)
        _, mask = faces.mask_at(frame - plan.intro_frames)
        boxes = [geo.to_output(b) for b in mask.boxes]
        if mask.full_frame:
            boxes = [(fx, fy, fw, fh)]
        regions = [
            geo.to_output((r.box[0] * seg.display_width, r.box[1] * seg.display_height,
                           r.box[2] * seg.display_width, r.box[3] * seg.display_height))
            for r in plan.regions
            if r.start_frame <= frame < r.end_frame
        ]  # fmt: skip
        covered = _raster(job.width, job.height, boxes + regions)
        x0, y0 = max(0, int(left)), max(0, int(top))
        x1, y1 = min(job.width, int(right)), min(job.height, int(bottom))
        area = max(1, (x1 - x0) * (y1 - y0))
        under = float(covered[y0:y1, x0:x1].sum()) / area
        cx, cy = (left + right) / 2, (top + bottom) / 2
        in_band = not (fx <= cx < fx + fw and fy <= cy < fy + fh)
        where = "pad-blur band" if in_band else ("under a mask" if under >= 0.5 else "outside masks")
        png = shots / f"{job.path.stem}_u{upsample}_f{frame:04d}_{left}_{top}.png"
        draw = f"select=eq(n\\,{frame}),drawbox=x={left}:y={top}:w={right - left}:h={bottom - top}:color=red:t=4"
        subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(job.path)]
            + ["-vf", draw, "-frames:v", "1", str(png)],
            check=True,
        )
        rows.append(
            {
                "frame": frame,
                "box_ltrb": [left, top, right, bottom],
                "score": score,
                "subdetector": kind,
                "under_mask": round(under, 2),
                "where": where,
                "png": str(png),
            }
        )
    return rows


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}%" if d else "–"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dlib-python", help="interpreter with dlib and numpy (default: this one)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"renders, PNGs, report (default {DEFAULT_OUT})")
    parser.add_argument("--upsample", default="1,0", help="dlib upsample levels; the first one is the verdict's")
    parser.add_argument("--source-every", type=int, default=1, help="recall on every Nth source frame (default 1)")
    parser.add_argument(
        "--control-every",
        type=int,
        default=5,
        help="recall on every Nth source frame scaled to each platform's picture size (default 5; 0: skip)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="detector subprocesses at once (default 2)")
    parser.add_argument("--fresh", action="store_true", help="render again even if matching outputs exist")
    parser.add_argument("--clips", help="comma-separated clip names (default: the whole corpus)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ffmpeg", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--every", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    upsample = [int(u) for u in args.upsample.split(",")]

    if args.worker:
        w, h = (int(v) for v in args.size.split("x"))
        print(json.dumps(_worker(args.ffmpeg, args.video, w, h, args.every, upsample)))
        return 0

    clips = corpus_clips()
    if not clips:
        print(f"skipped: no corpus videos under {CORPUS_VIDEO} (../shared/corpus is not beside this checkout)")
        return 0
    if args.clips:
        wanted = set(args.clips.split(","))
        clips = [c for c in clips if c.name in wanted]
        if not clips:
            print(f"no corpus clip is named {args.clips!r}", file=sys.stderr)
            return 2
    python = dlib_python(args.dlib_python)
    if python is None:
        print(f"dlib is not importable by {args.dlib_python or sys.executable}: {INSTALL_HINT}", file=sys.stderr)
        return 2

    from clipper.ffmpeg import ffmpeg_exe
    from clipper.media import probe

    ffmpeg = ffmpeg_exe()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([python, "-c", "import dlib; print(dlib.__version__)"], capture_output=True, text=True)
    dlib_version = version.stdout.strip()
    print(f"dlib {dlib_version} via {python}; upsample {upsample}; outputs in {out}", flush=True)

    rendered: dict[str, Clip] = {}
    for clip in clips:
        item = render_clip(clip, out, fresh=args.fresh)
        rendered[clip.name] = item
        how = "reused" if item.reused else "rendered"
        print(f"{how} {clip.name} ({item.render_seconds:.0f} s)", flush=True)

    jobs: list[Job] = []
    for clip in clips:
        facts = probe(clip)
        jobs.append(Job(clip.name, "source", clip, facts.display_width, facts.display_height, args.source_every))
        for platform, path in rendered[clip.name].outputs.items():
            side = json.loads(path.with_suffix(".json").read_text())
            jobs.append(Job(clip.name, platform, path, side["width"], side["height"], 1))
            if args.control_every:
                geo = Geometry(side["width"], side["height"], facts.display_width, facts.display_height)
                _, _, fw, fh = geo.fitted()
                jobs.append(Job(clip.name, f"control:{platform}", clip, fw, fh, args.control_every))
    # Biggest first, so the pool does not end on one long job.
    order = sorted(jobs, key=lambda j: -j.width * j.height * (probe(j.path).frame_count or 1) / j.every)
    started = time.monotonic()
    cache = None if args.fresh else out / "detections"
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_job, j, python, ffmpeg, upsample, cache, dlib_version) for j in order]
        for future in as_completed(futures):
            job = future.result()
            r = job.result
            note = " (cached)" if job.cached else ""
            print(f"  {job.clip} {job.variant} {job.width}x{job.height}: {r['checked']} frames checked, frames with a "
                  f"face by upsample {r['frames_with_face']}{note}", flush=True)  # fmt: skip
    print(f"detection took {time.monotonic() - started:.0f} s wall", flush=True)

    main_u = upsample[0]
    table = [
        "| clip | variant | frames | dlib faces in source frames % | dlib detections in output | verdict |",
        "|---|---|---|---|---|---|",
    ]
    details: dict[str, Any] = {"dlib": dlib_version, "upsample": upsample, "clips": {}}
    for clip in clips:
        src = next(j for j in jobs if j.clip == clip.name and j.variant == "source")
        s = src.result
        recall = " / ".join(f"u{u}: {_pct(s['frames_with_face'][str(u)], s['checked'])}" for u in upsample)
        entry: dict[str, Any] = {"source": {k: s[k] for k in ("size", "frames", "checked", "frames_with_face")}}
        for platform in PLATFORMS:
            job = next((j for j in jobs if j.clip == clip.name and j.variant == platform), None)
            if job is None:
                continue
            r = job.result
            counts = " / ".join(f"u{u}: {len(r['hits'][str(u)])}" for u in upsample)
            placed = {u: classify_hits(rendered[clip.name], job, u, out, ffmpeg) for u in upsample}
            main_hits = placed[main_u]
            if not main_hits:
                verdict = "pass: no face found"
            else:
                kinds = sorted({h["where"] for h in main_hits})
                verdict = f"{len(main_hits)} to judge ({', '.join(kinds)}; PNGs in {out / 'hits'})"
            table.append(f"| {clip.name} | {platform} | {r['frames']} | {recall} | {counts} | {verdict} |")
            entry[platform] = {
                "path": str(job.path),
                "size": r["size"],
                "frames": r["frames"],
                "frames_with_face": r["frames_with_face"],
                "hits": {str(u): placed[u] for u in upsample},
            }
        details["clips"][clip.name] = entry
    control = [j for j in jobs if j.variant.startswith("control:")]
    if control:
        table += [
            "",
            f"Control: the unmasked source scaled to the picture size it has in each output (every {args.control_every}"
            "th frame), so dlib's recall is shown at the scale of the faces it was asked to find in the outputs.",
            "",
            "| clip | variant | picture size | frames checked | dlib faces in frames % |",
            "|---|---|---|---|---|",
        ]
        for j in control:
            r = j.result
            recall = " / ".join(f"u{u}: {_pct(r['frames_with_face'][str(u)], r['checked'])}" for u in upsample)
            table.append(f"| {j.clip} | {j.variant} | {j.width}x{j.height} | {r['checked']} | {recall} |")
            details["clips"][j.clip][j.variant] = {k: r[k] for k in ("size", "frames", "checked", "frames_with_face")}
    # Cost: detector seconds per frame by frame size and upsample level (every job, pooled; one pass counted once).
    seen: dict[str, tuple[float, int]] = {}
    for j in jobs:
        for u in upsample:
            k = f"{j.width}x{j.height} upsample {u}"
            t, n = seen.get(k, (0.0, 0))
            seen[k] = (t + j.result["seconds"][str(u)], n + j.result["checked"])
    lines = ["", "| frame size | upsample | frames | ms per frame |", "|---|---|---|---|"]
    for k, (t, n) in sorted(seen.items()):
        size, _, u = k.partition(" upsample ")
        lines.append(f"| {size} | {u} | {n} | {1000 * t / max(1, n):.0f} |")
    details["cost_ms_per_frame"] = {k: round(1000 * t / max(1, n), 1) for k, (t, n) in seen.items()}
    report = "\n".join(table + lines) + "\n"
    print()
    print(report)
    (out / "crosscheck-dlib.md").write_text(report, encoding="utf-8")
    (out / "crosscheck-dlib.json").write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

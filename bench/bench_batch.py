"""Batch speed: `clipper batch` against the same manifests rendered one by one with `clipper render`.

Three manifests cut from the demo interview (a real face, masked; speech-like sound), each 2 languages × 2
platforms = 12 outputs. Each way starts from an empty output folder and cache. The batch should cost about what
the single renders cost together (the same analysis once per manifest, the same encodes) plus a little for the
ledger; with more workers than one it may cost less on a machine with cores to spare.

    python bench/bench_batch.py [--keep DIR] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CUTS = [(1.0, 9.0), (6.0, 14.0), (12.0, 20.0)]


def write_manifests(folder: Path, footage: Path) -> Path:
    """Three manifests over one footage file."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(CUTS):
        (folder / f"bench{i}.yaml").write_text(
            f"""clipper: 1
id: bench{i}
title: batch bench {i}
sources: {{interview: {footage}}}
segments: [{{source: interview, in: {a}, out: {b}}}]
anonymize:
  faces: {{mode: pixelate}}
  voice: {{mode: none, reason: "demo footage, synthesized sound"}}
outputs: {{platforms: [telegram, tiktok], languages: [en, fr]}}
""",
            encoding="utf-8",
        )
    return folder


def timed(cmd: list[str]) -> float:
    """Run a command; return its wall time."""
    started = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    """Print the batch's wall time against the sum of single renders."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="work in DIR (the footage is reused next time)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to time (default 1,2)")
    ns = ap.parse_args(argv)
    from clipper.demo import make_demo_interview

    work = ns.keep or Path(tempfile.mkdtemp(prefix="clipper-bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    footage = work / "footage.mp4"
    if not footage.exists():
        make_demo_interview(footage)
    manifests = write_manifests(work / "manifests", footage)
    clipper = [sys.executable, "-m", "clipper.cli"]

    singles = work / "singles"
    shutil.rmtree(singles, ignore_errors=True)
    single_s = sum(
        timed([*clipper, "render", str(m), "--out", str(singles), "-q"]) for m in sorted(manifests.iterdir())
    )
    rows = [("3 × `clipper render`, one after another", single_s, 1.0)]
    for n in (int(x) for x in ns.workers.split(",")):
        out = work / f"batch-{n}"
        shutil.rmtree(out, ignore_errors=True)
        t = timed([*clipper, "batch", str(manifests), "--out", str(out), "--workers", str(n), "-q"])
        rows.append((f"`clipper batch`, {n} worker(s)", t, t / single_s))
        again = timed([*clipper, "batch", str(manifests), "--out", str(out), "--workers", str(n), "-q"])
        rows.append((f"`clipper batch` again, {n} worker(s) (all done)", again, again / single_s))
    print("\n12 outputs (3 manifests × 2 languages × 2 platforms), faces masked, empty cache each way\n")
    print("| how | wall | against single renders |\n|---|---|---|")
    for name, t, ratio in rows:
        print(f"| {name} | {t:.1f} s | {ratio:.2f}× |")
    if ns.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

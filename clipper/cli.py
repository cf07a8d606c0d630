"""`clipper …`: a thin command line over the library; the only place that prints and picks exit codes."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from clipper import __version__
from clipper.errors import ClipperError, ManifestError

if TYPE_CHECKING:
    from clipper.captions.lint import LintIssue
    from clipper.plan import RenderPlan


def _cmd_validate(args: argparse.Namespace) -> int:
    from clipper.render import prepare

    failed = 0
    for path in args.files:
        try:
            plan = prepare(Path(path))
        except ClipperError as e:
            if args.debug:
                raise
            failed += 1
            _err(e)
            continue
        if not args.quiet:
            print(f"{path}: ok — {len(plan.variants)} output(s), {plan.duration_s:.2f} s each")
        _warn_notes(plan)
        # Subtitle lint runs as warnings (errors with --strict-captions): a slow cue is not a broken manifest.
        issues, elsewhere = lint_plan(plan)
        for issue in issues:
            print(f"{issue}", file=sys.stderr)
        for file, count in elsewhere.items():
            print(
                f"{file}: {count} more finding(s) in cues outside the cuts (clipper lint lists them)", file=sys.stderr
            )
        if issues and args.strict_captions:
            failed += 1
    return 2 if failed else 0


def lint_plan(plan: RenderPlan) -> tuple[list[LintIssue], dict[Path, int]]:
    """Lint each caption file a plan uses, with its language's font for the glyph check: the findings in the cues
    the clip shows, or that a render stops on; and per file, how many style findings were in cues it does not show
    (a whole interview's subtitle file buried the few that matter: QA sweep)."""
    from clipper.captions.fonts import font_for, with_script
    from clipper.captions.lint import lint_files

    out: list[LintIssue] = []
    elsewhere: dict[Path, int] = {}
    for lang, cap in plan.captions.items():
        font = font_for(with_script(lang, cap.script), cap.font)
        shown = {c.line for c in cap.cues}
        for issue in lint_files([cap.file], fps=float(plan.fps), missing_glyphs=font.missing):
            if issue.blocking or issue.line in shown:
                out.append(issue)
            else:
                elsewhere[cap.file] = elsewhere.get(cap.file, 0) + 1
    return out, elsewhere


def _cmd_lint(args: argparse.Namespace) -> int:
    from clipper.captions.fonts import font_for
    from clipper.captions.lint import lint_files
    from clipper.captions.read import read_subtitles
    from clipper.errors import ClipperError

    problems = 0
    for path in args.files:
        lang = args.lang or _language_in_name(Path(path))
        try:
            missing = font_for(lang, text=read_subtitles(Path(path)).text).missing if lang else None
            issues = lint_files([Path(path)], strict=args.strict, fps=args.fps, missing_glyphs=missing)
        except ClipperError as e:
            # A file that cannot be read at all is a finding like any other: the rest are still linted.
            print(e.render(), file=sys.stderr)
            problems += 1
            continue
        for issue in issues:
            print(f"{issue}")
        problems += sum(1 for issue in issues if issue.blocking or args.strict)
        if not args.quiet and not issues:
            print(f"{path}: ok" + ("" if lang else " (no language: glyphs not checked; pass --lang)"))
    # Style findings are advice; a finding a render would stop on fails the lint too, as it fails validate.
    return 1 if problems else 0


def _language_in_name(path: Path) -> str | None:
    """'interview.ar.vtt' -> 'ar'."""
    parts = path.name.split(".")
    return parts[-2] if len(parts) >= 3 and 2 <= len(parts[-2]) <= 3 and parts[-2].isalpha() else None


def _cmd_schema(args: argparse.Namespace) -> int:
    from clipper.manifest import json_schema

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from clipper.render import prepare

    plan = prepare(Path(args.file), platforms=args.platform, languages=args.lang)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
        return 0
    from clipper.report import print_plan

    print_plan(plan)
    _warn_notes(plan)
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from clipper.media import facts_json, probe

    facts = [probe(Path(path)) for path in args.media]
    if len(facts) == 1:
        print(facts_json(facts[0]))
    else:
        print(json.dumps([f.to_json() for f in facts], indent=2, default=str))
    return 0


def _cmd_render(args: argparse.Namespace, *, preview: bool = False) -> int:
    from clipper.render import prepare, render, withdraw_unplannable
    from clipper.report import RichProgress, print_summary

    try:
        plan = prepare(Path(args.file), platforms=args.platform, languages=args.lang, preview=preview)
    except ClipperError:
        if not getattr(args, "voice_only", False):
            withdraw_unplannable(
                Path(args.file), Path(args.out), platforms=args.platform, languages=args.lang, preview=preview
            )
        raise
    if getattr(args, "voice_only", False):
        from clipper.render import render_voice_only

        path, verdict = render_voice_only(plan, Path(args.out))
        print(f"wrote {path} — {verdict}")
        return 0
    _warn_notes(plan)
    masks = bool(getattr(args, "masks", False))
    if masks and plan.faces is None:
        raise ClipperError(
            "--masks draws the face tracks, but this manifest opts out of face masking",
            where=args.file,
            hint="drop --masks, or set anonymize.faces.mode to pixelate, solid or blur",
        )
    with RichProgress(quiet=args.quiet) as progress:
        results = render(plan, Path(args.out), progress=progress, overlays=masks)
    if not args.quiet:
        print_summary(results)
        _warn_dark(results)
    return 0


def _warn_notes(plan: RenderPlan) -> None:
    """Print what the manifest allows but an editor rarely means (a bleep outside every cut, …) as warnings."""
    for note in plan.notes:
        print(f"warning: {note}", file=sys.stderr)


def _warn_dark(results: list) -> None:
    """Say when frames were masked whole for being too dark: safe, but maybe not what the editor wanted."""
    if not results:
        return
    faces = json.loads(results[0].sidecar.read_text(encoding="utf-8")).get("faces") or {}
    dark, frames = faces.get("frames_masked_whole_dark", 0), faces.get("frames", 0)
    if dark:
        print(
            f"warning: {dark} of {frames} frames were masked whole, too dark to trust the face detector"
            " (mean brightness under 16 of 255); brighten the source if that is not what you want",
            file=sys.stderr,
        )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every sub-command."""
    p = argparse.ArgumentParser(prog="clipper", description="Anonymized, subtitled clips from long interviews.")
    p.add_argument("--version", action="version", version=f"clipper {__version__}")
    p.add_argument("--debug", action="store_true", help="log every ffmpeg command and show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("validate", help="check manifests and the files they name, without rendering")
    s.add_argument("files", nargs="+")
    s.add_argument("--quiet", "-q", action="store_true")
    s.add_argument("--strict-captions", action="store_true", help="subtitle lint findings fail validation")
    s.set_defaults(func=_cmd_validate)

    s = sub.add_parser("lint", help="check subtitle files: reading speed, line length, timing, glyphs in the font")
    s.add_argument("files", nargs="+")
    s.add_argument("--lang", help="language of the files (default: from names like x.ar.vtt); picks the font")
    s.add_argument("--fps", type=float, default=25.0, help="frame rate for the minimum gap (default 25)")
    s.add_argument(
        "--strict", action="store_true", help="exit 1 on any finding (without it, only on findings a render stops on)"
    )
    s.add_argument("--quiet", "-q", action="store_true")
    s.set_defaults(func=_cmd_lint)

    s = sub.add_parser("schema", help="write the manifest JSON Schema (for editors' YAML plugins)")
    s.add_argument("--out", default="manifests/clipper.schema.json")
    s.set_defaults(func=_cmd_schema)

    for name, helptext in (
        ("render", "render every variant of a manifest"),
        ("preview", "render one variant small and fast, for a look"),
        ("plan", "print the render plan: cuts with frame numbers, variants, steps"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("file")
        s.add_argument("--platform", action="append", help="only this platform (repeatable)")
        s.add_argument("--lang", action="append", help="only this language (repeatable)")
        if name == "plan":
            s.add_argument("--json", action="store_true", help="print the plan as JSON")
            s.set_defaults(func=_cmd_plan)
        else:
            s.add_argument("--out", default="output", help="output root folder (default: output)")
            s.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
            if name == "preview":
                s.add_argument("--masks", action="store_true", help="draw each face box, track id and score")
                s.add_argument("--voice-only", action="store_true", help="write just the clip's anonymized sound (WAV)")
            s.set_defaults(func=(lambda a: _cmd_render(a, preview=True)) if name == "preview" else _cmd_render)

    s = sub.add_parser("review", help="write a contact sheet of the frames whose face masks need a human look")
    s.add_argument("file")
    s.add_argument("--out", default="output", help="output root folder (default: output)")
    s.set_defaults(func=_cmd_review)

    s = sub.add_parser("batch", help="render every variant of many manifests, resumably (or: batch status [DIR])")
    s.add_argument("paths", nargs="+", help="manifests or folders of manifests; `status [DIR]` reads the ledger")
    s.add_argument("--out", default="output", help="output root folder (default: output)")
    s.add_argument("--workers", type=int, help="parallel jobs (default: from cores and memory)")
    s.add_argument("--dask", metavar="ADDRESS", help="run the jobs on a Dask cluster (tcp://host:8786), or 'local'")
    s.add_argument("--max-hours", type=float, help="stop taking new jobs after this long; run again to go on")
    s.add_argument("--retry-failed", action="store_true", help="queue failed jobs again (after a fix)")
    s.add_argument("--quiet", "-q", action="store_true")
    s.set_defaults(func=_cmd_batch)

    s = sub.add_parser("voicecheck", help="how linkable a rendered voice is to the original (speaker embeddings)")
    s.add_argument("original", help="a recording of the original voice (any audio or video file)")
    s.add_argument("rendered", help="the rendered clip (or any recording) to compare")
    s.add_argument(
        "--strength",
        default="strong",
        choices=("light", "medium", "strong"),
        help="whose threshold to judge by (default: strong)",
    )
    s.set_defaults(func=_cmd_voicecheck)

    s = sub.add_parser("probe", help="print what clipper knows about media files")
    s.add_argument("media", nargs="+")
    s.set_defaults(func=_cmd_probe)

    s = sub.add_parser("demo", help="generate the demo interview footage (footage/demo-interview.mp4)")
    s.add_argument("--out", default="footage/demo-interview.mp4")
    s.set_defaults(func=_cmd_demo)
    return p


def _cmd_batch(args: argparse.Namespace) -> int:
    if args.paths and args.paths[0] == "status":
        return _batch_status(Path(args.paths[1]) if len(args.paths) > 1 else Path(args.out))
    from clipper.batch.run import run_batch

    progress = _LineProgress(quiet=args.quiet)
    summary = run_batch(
        [Path(p) for p in args.paths],
        Path(args.out),
        workers=args.workers,
        dask=args.dask,
        max_hours=args.max_hours,
        retry_failed=args.retry_failed,
        progress=progress,
    )
    print(
        f"{summary.total} job(s): {summary.rendered} rendered, {summary.skipped} already done, "
        f"{summary.failed} failed, {summary.problems} manifest(s) not planned"
        + (f", {len(summary.withdrawn)} out-of-date output(s) withdrawn" if summary.withdrawn else "")
        + ("; stopped at --max-hours (run again to go on)" if summary.stopped_early else "")
        + f" — report: {Path(args.out) / 'report.html'}"
    )
    for line in summary.failures:
        print(f"  failed: {line}", file=sys.stderr)
    return 0 if summary.ok else 8


class _LineProgress:
    """One line per job started and finished, with counts and an ETA (works in logs and terminals alike)."""

    def __init__(self, *, quiet: bool) -> None:
        import time

        self.quiet, self.total, self.done, self.t0, self.clock = quiet, 0, 0, time.monotonic(), time.monotonic

    def planned(self, jobs: int, done: int, problems: int) -> None:
        self.total, self.done, self.t0 = jobs, done, self.clock()
        self._say(f"{jobs} job(s), {done} already done, {problems} manifest(s) not planned")

    def started(self, slot: str, what: str) -> None:
        self._say(f"{slot}: {what}")

    def finished(self, slot: str, what: str, ok: bool, message: str, *, retry: bool = False) -> None:
        if not what.startswith("analysis") and not retry:  # a job to be tried again is not finished
            self.done += 1
        elapsed = self.clock() - self.t0
        left = max(0, self.total - self.done)
        eta = f", about {elapsed / max(1, self.done) * left / 60:.0f} min left" if self.done and left else ""
        outcome = "done" if ok else (f"failed, will retry: {message}" if retry else f"FAILED: {message}")
        self._say(f"[{self.done}/{self.total}{eta}] {slot}: {what} {outcome}")

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)


def _batch_status(out_root: Path) -> int:
    from clipper.batch.ledger import Ledger, ledger_path

    path = ledger_path(out_root)
    if not path.is_file():
        raise ClipperError("no batch ledger here", where=str(out_root), hint="name the output folder of a batch")
    from clipper.batch.run import coordinator_running

    ledger = Ledger(path, readonly=True)
    try:
        counts = ledger.counts()
        alive = coordinator_running(out_root)
        if not alive and counts.get("running"):
            # A killed coordinator leaves its rows "running"; the next run takes them back.
            counts["interrupted"] = counts.pop("running")
        print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no jobs")
        if not alive:
            print("  no batch is running on this folder")
        for r in ledger.rows("running"):
            if alive:
                print(f"  running  {r.manifest_id} {r.variant} on {r.worker}")
            else:
                print(f"  interrupted  {r.manifest_id} {r.variant} (on {r.worker}): the next run renders it")
        for r in ledger.rows("failed"):
            print(f"  failed   {r.manifest_id} {r.variant} ({r.failure}): {r.error}")
        for m, e, _ in ledger.problems():
            print(f"  not planned  {m}: {e.splitlines()[0]}")
    finally:
        ledger.close()
    return 0


def _cmd_voicecheck(args: argparse.Namespace) -> int:
    from clipper.errors import MediaError
    from clipper.voice.check import compare_files

    for f in (args.original, args.rendered):
        if Path(f).is_dir():
            raise MediaError("is a folder", where=f, hint="name an audio or video file")
        if not Path(f).is_file():
            raise MediaError("no such file", where=f, hint="name an audio or video file")
    verdict = compare_files(Path(args.original), Path(args.rendered), args.strength)
    print(f"{args.rendered}: {verdict.line()}")
    return 0 if verdict.passed else 6


def _cmd_review(args: argparse.Namespace) -> int:
    from clipper.review import review

    path, frames = review(Path(args.file), Path(args.out))
    print(f"wrote {path} ({frames} frames to check)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from clipper.demo import make_demo_interview

    out = Path(args.out)
    if out.exists():
        print(f"{out} exists; keeping it")
        return 0
    make_demo_interview(out)
    print(f"wrote {out}")
    return 0


def _err(e: ClipperError) -> None:
    # Located errors start with their file:line:column so editors and terminals can jump to them.
    located = isinstance(e, ManifestError) or bool(e.where)
    print(e.render() if located else f"error: {e.render()}", file=sys.stderr)


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is so that every cleanup an interrupt runs runs too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(message)s")
    # A service manager or scheduler stops a render with SIGTERM (a closed terminal sends SIGHUP): without this,
    # Python died at once and its ffmpeg went on writing an unchecked file. Batch workers set their own handler.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, _raise_terminated) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return args.func(args)
    except ClipperError as e:
        if args.debug:
            raise
        _err(e)
        return e.exit_code
    except BrokenPipeError:
        # `clipper plan --json | head`: the reader left; not an error of ours.
        sys.stdout = None  # type: ignore[assignment]
        return 0
    except OSError as e:
        # The file system said no about a named path (--out names a file, no permission, disk full): a clear line.
        # Anything else (a timeout, a dropped connection) is not this kind of problem and keeps its traceback.
        if args.debug or not e.filename:
            raise
        paths = f"{e.filename} → {e.filename2}" if e.filename2 else str(e.filename)
        _err(
            ClipperError(
                f"{paths}: {e.strerror or e}",
                hint="check the path: --out must name a folder (not a file) you can write to, with free space",
            )
        )
        return ClipperError.exit_code
    except sqlite3.OperationalError as e:
        # The batch ledger's database: its disk full, its folder read-only or on a file system without locks.
        if args.debug:
            raise
        ledger = Path(getattr(args, "out", "output")) / ".batch" / "ledger.sqlite"
        _err(
            ClipperError(
                f"the batch ledger ({ledger}) cannot be used: {e}",
                hint="if the disk is full, free space; if the folder is read-only or on a disk without file locks, "
                "use another --out; then run the batch again (finished outputs are kept)",
            )
        )
        return ClipperError.exit_code
    except KeyboardInterrupt as e:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print("interrupted: nothing half-written was kept", file=sys.stderr)
        return 128 + e.signum if isinstance(e, _Terminated) else 130
    finally:
        for signum, handler in previous.items():  # main() called from a program: its own handlers come back
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())

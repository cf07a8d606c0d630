"""What the CLI shows a person: progress bars with ETA, the plan, a summary table (rich)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from clipper import render as render_mod
from clipper.plan import RenderPlan, Variant
from clipper.presets import PRESETS
from clipper.timecode import format_clock

_err = Console(stderr=True)
_out = Console()


class RichProgress(render_mod.Progress):
    """One bar per output with ETA, on stderr; silent with quiet=True."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=_err,
            transient=False,
            disable=quiet,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._bars.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._bars.__exit__(et, e, tb)

    def start(self, variant: Variant, total_s: float) -> None:
        """Add (or reset) the bar of a variant."""
        if variant.filename in self._tasks:
            self._bars.reset(self._tasks[variant.filename], total=total_s)
        else:
            self._tasks[variant.filename] = self._bars.add_task(variant.filename, total=total_s)

    def advance(self, variant: Variant, done_s: float) -> None:
        """Move a variant's bar."""
        self._bars.update(self._tasks[variant.filename], completed=done_s)

    def finish(self, result: render_mod.RenderResult) -> None:
        """Fill a variant's bar."""
        task = self._tasks[result.variant.filename]
        self._bars.update(task, completed=self._bars.tasks[task].total or 0)


def print_summary(results: list[render_mod.RenderResult]) -> None:
    """Print a table of the published outputs."""
    t = Table(title="rendered", show_lines=False)
    for col in ("output", "size", "MB", "seconds to render"):
        t.add_column(col)
    for r in results:
        t.add_row(str(r.path), f"{r.variant.width}x{r.variant.height}", f"{r.bytes / 1e6:.1f}", f"{r.seconds:.1f}")
    _out.print(t)


def print_plan(plan: RenderPlan) -> None:
    """Print a plan the way an editor reads it."""
    _out.print(f"[bold]{plan.manifest_id}[/bold] — {plan.title}")
    _out.print(f"{plan.duration_s:.3f} s at {plan.fps} fps = {plan.total_frames} frames per output")
    # Plain lines, not a table: they must never be truncated to the terminal's width.
    _out.print("cuts (in frame included, out frame excluded):", highlight=False)
    for s in plan.segments:
        _out.print(
            f"  {s.index:>2}  {s.source} @{float(s.src_fps):g} fps  frames {s.in_frame}–{s.out_frame}  "
            f"({format_clock(s.in_s)}–{format_clock(s.out_frame / s.src_fps)})  {s.out_frames} frames  "
            f"at {format_clock((s.clip_start_frame + plan.intro_frames) / plan.fps)} in the clip",
            highlight=False,
            soft_wrap=True,
        )
    t = Table(title="outputs")
    for col in ("file", "size", "limit"):
        t.add_column(col)
    for v in plan.variants:
        longest = PRESETS[v.platform].max_seconds if v.platform in PRESETS else None
        limits = [f"≤ {longest:g} s" if longest else "", f"≤ {v.max_bytes / 1e6:g} MB" if v.max_bytes else ""]
        t.add_row(v.filename, f"{v.width}x{v.height}", ", ".join(x for x in limits if x))
    _out.print(t)
    _out.print("anonymity: " + "; ".join(f"{k}: {v}" for k, v in plan.anonymity.items()))
    for channel, reason in plan.opt_out_reasons.items():
        _out.print(f"  {channel} not anonymized because: {reason}", markup=False)
    _out.print("steps:")
    for step in plan.steps:
        _out.print(f"  • {step}")

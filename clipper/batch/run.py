"""The batch coordinator: plan every manifest, keep the ledger, hand jobs to workers, retry what may succeed.

One coordinator per output folder (an exclusive lock on output/.batch/coordinator.lock). It alone writes the
ledger. Workers run `analyze_task` (once per manifest: faces, rewritten sound, loudness, all into the shared
cache) and `render_task` (one variant, published atomically by the ordinary render path) and return plain data.

What a crash loses: the jobs in flight. Local workers die with their coordinator (the kernel signals them when it
goes: PR_SET_PDEATHSIG, and they kill their ffmpeg processes), so the next run takes their rows back at once; on
Dask the rows come back when their lease runs out. Before any worker starts, the coordinator deletes the partial
files and work folders interrupted renders left behind. A job is marked done only after its output exists under
its final name, and an output whose sidecar names the job's identity (and whose bytes match it) counts as done
without rendering, so a kill between publishing and writing the ledger never makes the same output twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clipper.batch.jobs import AnalysisJob, PlannedManifest, RenderJob, plan_jobs
from clipper.batch.ledger import Ledger, ledger_path
from clipper.batch.report import thumbs_dir
from clipper.errors import AnonymityError, ClipperError, FfmpegError

log = logging.getLogger("clipper.batch")

MAX_ATTEMPTS = 3  # per job, for transient failures
BACKOFF_S = 5.0  # before the 2nd attempt; doubled for each later one
LEASE_S = 120.0  # a running job whose coordinator stopped renewing it for this long is taken back
POLL_S = 1.0


# ---------------------------------------------------------------------------------------------- workers


def _die_with_parent() -> None:
    """Worker initializer: when the coordinator dies, the kernel sends this worker SIGTERM (Linux
    PR_SET_PDEATHSIG), and the worker kills its ffmpeg processes and exits, so nothing of a crashed run goes on
    rendering (or publishing) while the next run redoes its jobs."""
    from clipper.ffmpeg import kill_all

    def on_term(signum: int, frame: object) -> None:
        kill_all()
        os._exit(1)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before the call took effect
            os._exit(1)


def _failure(e: BaseException) -> dict[str, Any]:
    """An exception as plain data, with the kind of failure that decides whether it is retried."""
    if isinstance(e, AnonymityError):
        kind = "anonymity"  # never retried blindly: the same inputs would leak the same way
    elif isinstance(e, FfmpegError | MemoryError | OSError):
        kind = "transient"  # a killed ffmpeg, memory, a full disk: may succeed later
    elif isinstance(e, ClipperError):
        kind = "permanent"  # the manifest, the media or a check said no; retrying changes nothing
    else:
        kind = "transient"  # unexpected: retried a bounded number of times, then reported
    hint = getattr(e, "hint", "") or ("report this with the ledger row" if not isinstance(e, ClipperError) else "")
    message = e.render() if isinstance(e, ClipperError) else f"{type(e).__name__}: {e}"
    return {"ok": False, "failure": kind, "error": message, "fix": hint}


def analyze_task(manifest: str, out_root: str) -> dict[str, Any]:
    """Worker: the work shared by every variant of one manifest, into the cache."""
    from clipper.render import prepare, shared_work

    started = time.monotonic()
    try:
        shared_work(prepare(Path(manifest)), Path(out_root))
    except BaseException as e:  # noqa: BLE001 - reported as data; the coordinator decides
        return _failure(e) | {"seconds": time.monotonic() - started}
    return {"ok": True, "seconds": time.monotonic() - started}


def render_task(manifest: str, out_root: str, language: str, platform: str, identity: str) -> dict[str, Any]:
    """Worker: render and publish one variant; refuse if the manifest changed since the job was planned."""
    from dataclasses import replace

    from clipper.analyze import hash_memo
    from clipper.batch.jobs import plan_paths, render_identity, voice_tag
    from clipper.media import content_hash
    from clipper.render import prepare, render

    started = time.monotonic()
    try:
        plan = prepare(Path(manifest), platforms=[platform], languages=[language])
        hashes = {p: content_hash(p, memo=hash_memo(Path(out_root))) for p in sorted(plan_paths(plan))}
        one = replace(plan, captions={k: c for k, c in plan.captions.items() if k == language})
        if render_identity(one, hashes, voice_tag(plan)) != identity:
            raise ClipperError(
                "the manifest or one of its files changed after the batch planned this job",
                where=manifest,
                hint="run the batch again: it plans the new version",
            )
        [result] = render(plan, Path(out_root), clean=False, job_identity=identity)
    except BaseException as e:  # noqa: BLE001 - reported as data; the coordinator decides
        return _failure(e) | {"seconds": time.monotonic() - started}
    return {
        "ok": True,
        "seconds": time.monotonic() - started,
        # The sidecar holds the hash render took of the published file: not read back and hashed again here.
        "sha256": json.loads(result.sidecar.read_text(encoding="utf-8"))["output_sha256"],
        "bytes": result.bytes,
    }


# ---------------------------------------------------------------------------------------------- executors


class LocalExecutor:
    """A process pool on this machine, rebuilt when a worker dies (out of memory, killed)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        import multiprocessing

        # spawn: workers are the coordinator's own children (so PDEATHSIG ties them to it; a forkserver would outlive
        # it and keep them rendering) and start clean, not as a copy of its sqlite connection.
        return ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_die_with_parent
        )

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Future[dict[str, Any]]:
        """Start fn(*args) on a worker."""
        try:
            return self.pool.submit(fn, *args)
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new()
            return self.pool.submit(fn, *args)

    def wait(self, futures: set[Any], timeout: float) -> set[Any]:
        """The futures that finished within timeout."""
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done)

    @staticmethod
    def outcome(future: Any) -> dict[str, Any]:
        """A finished future's result; a lost worker is a transient failure."""
        try:
            return future.result()
        except BrokenProcessPool as e:
            return {"ok": False, "failure": "transient", "error": f"a worker died ({e})", "fix": "", "seconds": None}

    def close(self) -> None:
        """Stop the workers."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """Stop the workers now, mid-job (an interrupted batch): each kills its ffmpeg and exits, publishing nothing."""
        for process in list(getattr(self.pool, "_processes", {}).values()):  # no public handle before Python 3.14
            with contextlib.suppress(OSError):
                process.terminate()  # SIGTERM: _die_with_parent's handler
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """The same jobs on a Dask distributed cluster: an existing scheduler's address, or 'local' for a LocalCluster
    of processes on this machine. Workers need the same clipper and the same paths to sources, cache and output
    (shared storage): jobs carry paths, not bytes."""

    name = "dask"

    def __init__(self, address: str, workers: int | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ClipperError(
                "--dask needs dask.distributed", hint="pip install 'clipper[dask]' (make setup installs it)"
            ) from None
        self.cluster = None
        if address == "local":
            self.cluster = LocalCluster(
                n_workers=workers or default_workers(), threads_per_worker=1, processes=True, dashboard_address=None
            )
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(address, timeout="30s")
            except OSError as e:
                raise ClipperError(
                    f"cannot reach the Dask scheduler at {address} ({e})",
                    hint="start one with `dask scheduler` and workers with `dask worker ADDRESS` (README: Batch)",
                ) from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {}))) if workers is None else workers

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Any:
        """Start fn(*args) on a worker; pure=False: a retry is a new task, never a cached result."""
        return self.client.submit(fn, *args, pure=False, retries=0)

    def wait(self, futures: set[Any], timeout: float) -> set[Any]:
        """The futures that finished within timeout."""
        from distributed import wait as dask_wait
        from distributed.client import TimeoutError as DaskTimeout

        try:
            done, _ = dask_wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except (DaskTimeout, TimeoutError):
            return set()
        return set(done)

    @staticmethod
    def outcome(future: Any) -> dict[str, Any]:
        """A finished future's result; a lost worker (KilledWorker) is a transient failure."""
        try:
            return future.result()
        except Exception as e:  # noqa: BLE001 - the worker, not the job, failed
            return {"ok": False, "failure": "transient", "error": f"worker lost ({type(e).__name__}: {e})", "fix": "",
                    "seconds": None}  # fmt: skip

    def close(self) -> None:
        """Disconnect (and stop the LocalCluster if this executor started it)."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def default_workers() -> int:
    """Workers for this machine: one per two cores (x264 and the detectors use two threads each), at least one,
    and no more than memory allows at ~3 GB per worker."""
    cores = os.cpu_count() or 1
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = 8.0
    return max(1, min(max(1, cores // 2), int(mem_gb // 3)))


# ---------------------------------------------------------------------------------------------- coordinator


@dataclass
class BatchProgress:
    """Callbacks a front end implements to show the batch; the default shows nothing."""

    def planned(self, jobs: int, done: int, problems: int) -> None:
        """Planning finished: jobs in this batch, of which already done, and manifests that failed to plan."""

    def started(self, slot: str, what: str) -> None:
        """A worker slot took a job."""

    def finished(self, slot: str, what: str, ok: bool, message: str, *, retry: bool = False) -> None:
        """A job ended (`retry`: it failed and will be tried again, so it is not finished yet)."""


@dataclass
class BatchSummary:
    """What a run did."""

    total: int = 0
    rendered: int = 0
    skipped: int = 0  # already done before this run
    failed: int = 0
    problems: int = 0  # manifests that could not be planned
    stopped_early: bool = False
    failures: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)  # published outputs no manifest asks for any more

    @property
    def ok(self) -> bool:
        """True when every job of the batch is done."""
        return self.failed == 0 and self.problems == 0 and not self.stopped_early


def find_manifests(paths: list[Path]) -> list[Path]:
    """Manifest files named, or found (*.yaml, *.yml) directly inside the folders named, in order."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise ClipperError("no such manifest or folder", where=str(p), hint="name manifests or their folder")
    if not found:
        raise ClipperError("no manifests found", where=", ".join(map(str, paths)), hint="name *.yaml files or a folder")
    # A manifest named twice (`batch m.yaml dir/` with m.yaml in dir/) is one manifest, not two sharing an id.
    return list(dict.fromkeys(f.resolve() for f in found))


class CoordinatorLock:
    """One coordinator per output folder: an exclusive flock, released by the kernel when its holder dies."""

    def __init__(self, out_root: Path) -> None:
        path = out_root / ".batch" / "coordinator.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise ClipperError(
                "another batch is already running on this output folder",
                where=str(out_root),
                hint="watch it with `clipper batch status`, or wait for it to finish",
            ) from None

    def release(self) -> None:
        """Let the next coordinator in."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def coordinator_running(out_root: Path) -> bool:
    """True while a coordinator holds this output folder's lock (a killed one holds nothing)."""
    path = out_root / ".batch" / "coordinator.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor releases a lock taken through it
    return False


def run_batch(
    paths: list[Path],
    out_root: Path,
    *,
    executor: Any | None = None,
    dask: str | None = None,
    workers: int | None = None,
    max_hours: float | None = None,
    retry_failed: bool = False,
    progress: BatchProgress | None = None,
) -> BatchSummary:
    """Render every variant of every manifest not already done; return what happened (see the module doc).

    `dask`: a scheduler address, or 'local' for a LocalCluster; default: a local process pool."""
    from clipper.analyze import hash_memo
    from clipper.render import remove_stale_partials
    from clipper.workarea import remove_stale_work

    progress = progress or BatchProgress()
    out_root = out_root.resolve()
    manifests = find_manifests(paths)
    lock = CoordinatorLock(out_root)
    try:
        ledger = Ledger(ledger_path(out_root))
    except BaseException:  # a full disk, a read-only folder: the next coordinator must still get in
        lock.release()
        raise
    summary = BatchSummary()
    own_executor = executor is None
    run_id = 0
    try:
        last = ledger.last_run()
        # The previous coordinator is dead (we hold its lock). Its local workers died with it; Dask workers may
        # still be busy, and their rows come back when their leases run out.
        ledger.reclaim(now=time.time(), immediately=last is None or last["executor"] == "local")
        # Also the report's and the thumbnails' own temporary files: a coordinator killed while writing them
        # leaves them behind like a worker's partial render.
        folders = [out_root, thumbs_dir(out_root)]
        folders += [p for p in out_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        for folder in folders:
            for leftover in remove_stale_partials(folder):
                log.info("removed %s, left by an interrupted render", leftover)
        for leftover in remove_stale_work(out_root):
            log.info("removed %s, left by an interrupted render", leftover)
        if retry_failed:
            ledger.requeue_failed()

        planned = _refuse_shared_ids([plan_jobs(m, hash_memo(out_root)) for m in manifests])
        problems = [(str(p.manifest), p.error.render(), p.error.hint) for p in planned if p.error]
        for note in (n for p in planned for n in p.notes):
            log.warning("warning: %s", note)
        ledger.set_problems(problems)
        jobs = [j for p in planned for j in p.renders]
        summary.withdrawn = withdraw_superseded(ledger, planned, out_root)
        ledger.add(jobs)
        _reconcile(ledger, jobs, out_root)
        rows = {r.identity: r for r in ledger.rows()}
        summary.total = len(jobs)
        summary.problems = len(problems)
        summary.skipped = sum(1 for j in jobs if rows[j.identity].status == "done")
        progress.planned(len(jobs), summary.skipped, len(problems))

        if executor is None:
            executor = DaskExecutor(dask, workers) if dask else LocalExecutor(workers or default_workers())
        run_id = ledger.begin_run(executor.name)
        deadline = None if max_hours is None else time.time() + max_hours * 3600
        summary.stopped_early = _drive(ledger, planned, executor, out_root, deadline, progress, summary)
        ledger.end_run(run_id, "stopped" if summary.stopped_early else "finished")
        rows = {r.identity: r for r in ledger.rows()}
        summary.failed = sum(1 for j in jobs if rows[j.identity].status == "failed")
        summary.failures = [
            f"{j.manifest_id} {j.variant}: {rows[j.identity].error}"
            for j in jobs
            if rows[j.identity].status == "failed"
        ]
        from clipper.batch.report import write_report

        write_report(ledger, out_root, [j.identity for j in jobs], withdrawn=summary.withdrawn)
        return summary
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            # Ctrl-C, SIGTERM or SIGHUP: the workers ignore SIGINT and are not sent the others, so they would finish
            # (and publish) their jobs while the coordinator waited; they are stopped instead. A second signal must
            # not cut this cleanup short.
            if threading.current_thread() is threading.main_thread():
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_IGN)
            if own_executor and hasattr(executor, "stop"):
                executor.stop()
                # The workers are gone: what they were writing goes too, so that "nothing half-written was kept"
                # is true when the command returns, not only after the next run's clean-up.
                for folder in [out_root, *(p for p in out_root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
                    with contextlib.suppress(OSError):
                        remove_stale_partials(folder)
                with contextlib.suppress(OSError):
                    remove_stale_work(out_root)
        if run_id:
            ledger.end_run(run_id, "interrupted")
        raise
    finally:
        if own_executor and executor is not None:
            executor.close()
        ledger.close()
        lock.release()


def _refuse_shared_ids(planned: list[PlannedManifest]) -> list[PlannedManifest]:
    """Manifests that share an id would publish into one folder, each overwriting the other's outputs: neither is
    rendered, and both are reported."""
    by_id: dict[str, list[PlannedManifest]] = {}
    for p in planned:
        if p.analysis is not None:
            by_id.setdefault(p.analysis.manifest_id, []).append(p)
    out = []
    for p in planned:
        same = [q.manifest for q in by_id.get(p.analysis.manifest_id, []) if q is not p] if p.analysis else []
        if not same:
            out.append(p)
            continue
        error = ClipperError(
            f"its id {p.analysis.manifest_id!r} is also the id of {', '.join(str(m) for m in same)}: both would "
            f"publish into {p.analysis.manifest_id}/ and overwrite each other",
            where=str(p.manifest),
            hint="give each manifest its own id",
        )
        out.append(PlannedManifest(p.manifest, None, (), error))
    return out


def withdraw_superseded(ledger: Ledger, planned: list[PlannedManifest], out_root: Path) -> list[str]:
    """Remove published outputs of the batch's manifests that none of their current jobs made; return them.

    Withdrawn: an output whose sidecar names no current job (a language or platform dropped, the manifest edited, a
    render or preview made outside the batch), the pieces of an output whose sidecar is gone (an interrupted
    publish or withdrawal), a voice preview, a review sheet, outputs left where a manifest's id used to be, and every
    output of a manifest that cannot be planned now (it may be the fix of what they show). An output left from before
    a fix would stay published if the fix then failed (a name dropped from a caption, then a cue too long to draw: the
    old file, name and all, stayed under its final name). The ledger forgets the rows of jobs no longer wanted.
    """
    from clipper.render import OUTPUT_SUFFIXES, withdraw_output

    current = {j.identity for p in planned for j in p.renders}
    current_stems = {(j.manifest_id, Path(j.output).stem) for p in planned for j in p.renders}
    stale: set[Path] = set()  # folder / stem of each output to withdraw
    for manifest_id in sorted({p.analysis.manifest_id for p in planned if p.analysis is not None}):
        folder = out_root / manifest_id
        if not folder.is_dir():
            continue
        pieces = (
            q for q in folder.iterdir() if q.is_file() and not q.name.startswith(".") and q.suffix in OUTPUT_SUFFIXES
        )
        for stem in sorted({q.stem for q in pieces}):
            meta = _sidecar_json(folder / f"{stem}.json")
            if meta is not None:
                if meta.get("manifest_id") == manifest_id and meta.get("job_identity") not in current:
                    stale.add(folder / stem)
            elif (manifest_id, stem) not in current_stems:
                stale.add(folder / stem)
        for kept in (f"{manifest_id}.voice.wav", f"{manifest_id}.review.png"):
            # `preview --voice-only` and `review`, of the manifest as it was then: a look, not an output.
            if (folder / kept).is_file():
                (folder / kept).unlink()
                stale.add(folder / kept)
    in_batch = {str(p.manifest) for p in planned}
    old_rows = [r for r in ledger.rows() if r.manifest in in_batch and r.identity not in current]
    for r in old_rows:  # where the manifest's id used to be; a manifest that cannot be planned now
        folder = out_root / r.manifest_id
        meta = _sidecar_json(folder / f"{Path(r.output).stem}.json")
        if meta is not None and meta.get("job_identity") == r.identity:
            stale.add(folder / Path(r.output).stem)
    withdrawn = []
    for piece in sorted(stale):
        looked_at = piece.name.endswith((".wav", ".png"))  # a voice preview or a review sheet: went above
        if not looked_at:
            withdraw_output(piece.with_name(piece.name + ".mp4"))
        name = piece.name if looked_at else piece.name + ".mp4"
        withdrawn.append(f"{piece.parent.relative_to(out_root)}/{name}")
        log.warning("withdrew %s: no manifest of this batch asks for it as it is now", withdrawn[-1])
    ledger.forget([r.identity for r in old_rows])
    return withdrawn


def _sidecar_json(path: Path) -> dict[str, Any] | None:
    """A clipper sidecar's data, or None when `path` is not one."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "output_sha256" in meta and "manifest_id" in meta else None


def _reconcile(ledger: Ledger, jobs: list[RenderJob], out_root: Path) -> None:
    """Bring rows in line with the files: a published output of this identity is done; a done job whose output
    is gone or altered is pending again."""
    from clipper.analyze import hash_memo
    from clipper.media import content_hash

    for job in jobs:
        row = ledger.get(job.identity)
        assert row is not None
        out = out_root / job.manifest_id / job.output
        meta = _sidecar_json(out.with_suffix(".json")) if out.is_file() else None
        published = None
        try:
            if meta is not None and meta.get("job_identity") == job.identity:
                published = meta if meta["output_sha256"] == content_hash(out, memo=hash_memo(out_root)) else None
        except (ClipperError, OSError):
            published = None  # replaced or removed right now (a render outside the batch): not this job's output
        if row.status == "done" and published is None:
            ledger.fail(job.identity, failure="transient", error="its output is missing or changed", fix="",
                        retry_at=0.0, seconds=None)  # fmt: skip
        elif row.status != "done" and published is not None:
            ledger.done(
                job.identity,
                seconds=float(published.get("render_seconds") or 0.0),
                sha256=published["output_sha256"],
                size=int(published["output_bytes"]),
            )


def _drive(
    ledger: Ledger,
    planned: list[PlannedManifest],
    executor: Any,
    out_root: Path,
    deadline: float | None,
    progress: BatchProgress,
    summary: BatchSummary,
) -> bool:
    """Run every pending job of the planned manifests; return True if stopped early by the deadline."""
    by_identity = {j.identity: j for p in planned for j in p.renders}
    analyses: dict[str, AnalysisJob] = {str(p.manifest): p.analysis for p in planned if p.analysis}
    analysed: set[str] = set()
    in_flight: dict[Any, tuple[str, str, float]] = {}  # future -> (kind, key, started)
    slots = [f"worker-{i + 1}" for i in range(getattr(executor, "workers", 2))]
    slot_of: dict[Any, str] = {}
    host = socket.gethostname()
    stopped = False
    last_renew = time.time()
    while True:
        now = time.time()
        pending = [r for r in ledger.rows("pending") if r.identity in by_identity]
        ready = [r for r in pending if (r.not_before or 0) <= now]
        busy_manifests = {key for kind, key, _ in in_flight.values() if kind == "analysis"}
        taking = deadline is None or now < deadline
        if not taking and (ready or pending):
            stopped = True
        while taking and ready and len(in_flight) < len(slots):
            row = ready.pop(0)
            job = by_identity[row.identity]
            key = str(job.manifest)
            slot = next(s for s in slots if s not in slot_of.values())
            if key not in analysed:
                if key in busy_manifests:
                    continue  # its analysis is running; the render waits for it
                fut = executor.submit(analyze_task, key, str(out_root))
                in_flight[fut] = ("analysis", key, now)
                busy_manifests.add(key)
                slot_of[fut] = slot
                progress.started(slot, f"analysis {job.manifest_id}")
                continue
            ledger.start(row.identity, f"{host}/{executor.name}/{slot}", LEASE_S)
            fut = executor.submit(render_task, key, str(out_root), job.language, job.platform, job.identity)
            in_flight[fut] = ("render", job.identity, now)
            slot_of[fut] = slot
            progress.started(slot, f"{job.manifest_id} {job.variant}")
        if not in_flight:
            if not ready and not [r for r in ledger.rows("pending") if r.identity in by_identity] or not taking:
                return stopped
            time.sleep(POLL_S)  # retries waiting for their backoff
            continue
        for fut in executor.wait(set(in_flight), POLL_S):
            kind, key, _ = in_flight.pop(fut)
            slot = slot_of.pop(fut)
            out = executor.outcome(fut)
            if kind == "analysis":
                _analysis_done(ledger, analyses[key], by_identity, out, analysed, progress, slot)
            else:
                _render_done(ledger, by_identity[key], out, summary, progress, slot)
        if time.time() - last_renew > LEASE_S / 4:
            ledger.renew([k for kind, k, _ in in_flight.values() if kind == "render"], LEASE_S)
            last_renew = time.time()


def _analysis_done(
    ledger: Ledger,
    analysis: AnalysisJob,
    by_identity: dict[str, RenderJob],
    out: dict[str, Any],
    analysed: set[str],
    progress: BatchProgress,
    slot: str,
) -> None:
    key = str(analysis.manifest)
    progress.finished(slot, f"analysis {analysis.manifest_id}", out["ok"], out.get("error", ""))
    if out.get("seconds") is not None:
        ledger.analysed(key, float(out["seconds"]))
    if out["ok"]:
        analysed.add(key)
        return
    # The shared work failed: every render of the manifest fails the same way (transient ones retry later).
    for identity in analysis.renders:
        row = ledger.get(identity)
        if row and row.status == "pending":
            _record_failure(ledger, row.identity, row.attempts + 1, out, count_attempt=True)


def _render_done(
    ledger: Ledger, job: RenderJob, out: dict[str, Any], summary: BatchSummary, progress: BatchProgress, slot: str
) -> None:
    if out["ok"]:
        ledger.done(job.identity, seconds=out["seconds"], sha256=out["sha256"], size=out["bytes"])
        summary.rendered += 1
        progress.finished(slot, f"{job.manifest_id} {job.variant}", True, "")
        return
    row = ledger.get(job.identity)
    assert row is not None
    retry = _record_failure(ledger, job.identity, row.attempts, out)
    progress.finished(slot, f"{job.manifest_id} {job.variant}", False, out["error"], retry=retry)


def _record_failure(
    ledger: Ledger, identity: str, attempts: int, out: dict[str, Any], *, count_attempt: bool = False
) -> bool:
    """Record a failed attempt; return True when the job will be tried again."""
    retry = out["failure"] == "transient" and attempts < MAX_ATTEMPTS
    # Jittered exponential backoff: a crowd of jobs that failed together does not return together.
    retry_at = time.time() + BACKOFF_S * 2 ** max(0, attempts - 1) * random.uniform(0.8, 1.2) if retry else None
    ledger.fail(
        identity,
        failure=out["failure"],
        error=out["error"],
        fix=out.get("fix", ""),
        retry_at=retry_at,
        seconds=out.get("seconds"),
        count_attempt=count_attempt,
    )
    return retry

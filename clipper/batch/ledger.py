"""The batch ledger: one SQLite row per render job, written only by the coordinating process.

SQLite in WAL mode under output/ (`.batch/ledger.sqlite`): `clipper batch status` reads it from another
terminal while the batch writes, and every change is one short transaction, so a kill at any moment leaves the
last committed state. A job is `pending` until the coordinator hands it to a worker (`running`, with the
worker's name and a lease the coordinator renews while it waits), then `done` (only after its output was
published under its final name) or `failed` (with the kind of failure, the error and its fix).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from clipper.batch.jobs import RenderJob

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    identity      TEXT PRIMARY KEY,
    manifest      TEXT NOT NULL,
    manifest_id   TEXT NOT NULL,
    language      TEXT NOT NULL,
    platform      TEXT NOT NULL,
    output        TEXT NOT NULL,
    inputs        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    worker        TEXT,
    lease_until   REAL,
    queued_at     REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    seconds       REAL,
    output_sha256 TEXT,
    output_bytes  INTEGER,
    failure       TEXT CHECK (failure IS NULL OR failure IN ('transient', 'permanent', 'anonymity')),
    error         TEXT,
    fix           TEXT,
    not_before    REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    executor    TEXT NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL,
    state       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS analyses (
    manifest    TEXT PRIMARY KEY,
    seconds     REAL NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (
    manifest TEXT PRIMARY KEY,
    error    TEXT NOT NULL,
    fix      TEXT,
    seen_at  REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Row:
    """One job as the ledger has it."""

    identity: str
    manifest: str
    manifest_id: str
    language: str
    platform: str
    output: str
    inputs: dict[str, str]
    status: str
    attempts: int
    worker: str | None
    lease_until: float | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    seconds: float | None
    output_sha256: str | None
    output_bytes: int | None
    failure: str | None
    error: str | None
    fix: str | None
    not_before: float | None

    @property
    def variant(self) -> str:
        """'<language>.<platform>'."""
        return f"{self.language}.{self.platform}"


COLUMNS = tuple(f.name for f in fields(Row))


def ledger_path(out_root: Path) -> Path:
    """Where a batch writing into out_root keeps its ledger."""
    return out_root / ".batch" / "ledger.sqlite"


class Ledger:
    """The ledger of one output folder."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a job marked done survives a power cut
            self.db.executescript(SCHEMA)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ----------------------------------------------------------------------------------------- reading

    def rows(self, status: str | None = None) -> list[Row]:
        """Every job (of one status), failures first, then by manifest and variant."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM jobs"
        args: tuple[object, ...] = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        sql += " ORDER BY status = 'failed' DESC, manifest_id, language, platform"
        return [_row(r) for r in self.db.execute(sql, args)]

    def get(self, identity: str) -> Row | None:
        """One job by identity."""
        r = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE identity = ?", (identity,)).fetchone()
        return _row(r) if r else None

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        return {s: n for s, n in self.db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")}

    def analysis_seconds(self) -> dict[str, float]:
        """Seconds the shared analysis took, per manifest path (summed over runs that redid it)."""
        return {m: float(t) for m, t in self.db.execute("SELECT manifest, seconds FROM analyses")}

    def problems(self) -> list[tuple[str, str, str | None]]:
        """Manifests that could not be planned: (manifest, error, fix)."""
        return [tuple(r) for r in self.db.execute("SELECT manifest, error, fix FROM problems ORDER BY manifest")]

    # ----------------------------------------------------------------------------------------- writing

    def add(self, jobs: list[RenderJob]) -> int:
        """Record jobs not seen before as pending; return how many were new."""
        now = time.time()
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO jobs (identity, manifest, manifest_id, language, platform, output, inputs, "
                "status, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                [
                    (
                        j.identity,
                        str(j.manifest),
                        j.manifest_id,
                        j.language,
                        j.platform,
                        j.output,
                        json.dumps(j.inputs),
                        now,
                    )
                    for j in jobs
                ],
            )
            return db.total_changes - before

    def set_problems(self, problems: list[tuple[str, str, str]]) -> None:
        """Replace the list of manifests that could not be planned."""
        with self.transaction() as db:
            db.execute("DELETE FROM problems")
            db.executemany(
                "INSERT INTO problems (manifest, error, fix, seen_at) VALUES (?, ?, ?, ?)",
                [(m, e, f, time.time()) for m, e, f in problems],
            )

    def forget(self, identities: list[str]) -> None:
        """Drop the rows of jobs no manifest asks for any more (their outputs were withdrawn)."""
        with self.transaction() as db:
            db.executemany("DELETE FROM jobs WHERE identity = ?", [(i,) for i in identities])

    def analysed(self, manifest: str, seconds: float) -> None:
        """A manifest's shared analysis finished in `seconds` (added to what earlier runs spent on it)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO analyses (manifest, seconds, finished_at) VALUES (?, ?, ?) ON CONFLICT(manifest) "
                "DO UPDATE SET seconds = seconds + excluded.seconds, finished_at = excluded.finished_at",
                (manifest, seconds, time.time()),
            )

    def start(self, identity: str, worker: str, lease_s: float) -> None:
        """A worker took the job."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, started_at = ?, "
                "attempts = attempts + 1, failure = NULL, error = NULL, fix = NULL WHERE identity = ?",
                (worker, now + lease_s, now, identity),
            )

    def renew(self, identities: list[str], lease_s: float) -> None:
        """Extend the leases of jobs still running."""
        if not identities:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE jobs SET lease_until = ? WHERE identity = ? AND status = 'running'",
                [(time.time() + lease_s, i) for i in identities],
            )

    def done(self, identity: str, *, seconds: float, sha256: str, size: int) -> None:
        """The job's output is published."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'done', finished_at = ?, seconds = ?, output_sha256 = ?, output_bytes = ?, "
                "lease_until = NULL, failure = NULL, error = NULL, fix = NULL, not_before = NULL WHERE identity = ?",
                (time.time(), seconds, sha256, size, identity),
            )

    def fail(
        self,
        identity: str,
        *,
        failure: str,
        error: str,
        fix: str,
        retry_at: float | None,
        seconds: float | None,
        count_attempt: bool = False,
    ) -> None:
        """The attempt failed: back to pending (to be retried at retry_at) or failed for good. count_attempt: the
        job never started (its shared analysis failed), so the attempt is counted here."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, seconds = ?, failure = ?, error = ?, fix = ?, "
                f"lease_until = NULL, not_before = ?{', attempts = attempts + 1' if count_attempt else ''} "
                "WHERE identity = ?",
                (
                    "pending" if retry_at is not None else "failed",
                    time.time(),
                    seconds,
                    failure,
                    error,
                    fix,
                    retry_at,
                    identity,
                ),
            )

    def reclaim(self, *, now: float, immediately: bool) -> list[str]:
        """Take back running jobs whose worker is gone (lease expired, or all at once when the previous
        coordinator and its workers are known dead); return their identities."""
        with self.transaction() as db:
            cond = "status = 'running'" + ("" if immediately else " AND (lease_until IS NULL OR lease_until < ?)")
            args = () if immediately else (now,)
            taken = [r[0] for r in db.execute(f"SELECT identity FROM jobs WHERE {cond}", args)]
            db.executemany(
                "UPDATE jobs SET status = 'pending', worker = NULL, lease_until = NULL WHERE identity = ?",
                [(i,) for i in taken],
            )
        return taken

    def requeue_failed(self) -> int:
        """`--retry-failed`: every failed job back to pending, its attempts counted afresh."""
        with self.transaction() as db:
            before = db.total_changes
            db.execute("UPDATE jobs SET status = 'pending', attempts = 0, not_before = NULL WHERE status = 'failed'")
            return db.total_changes - before

    def begin_run(self, executor: str) -> int:
        """Record this coordinator's run."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (host, pid, executor, started_at, state) VALUES (?, ?, ?, ?, 'running')",
                (socket.gethostname(), os.getpid(), executor, time.time()),
            )
            return int(cur.lastrowid or 0)

    def end_run(self, run_id: int, state: str) -> None:
        """Record how this coordinator's run ended."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished_at = ?, state = ? WHERE id = ?", (time.time(), state, run_id))

    def last_run(self) -> sqlite3.Row | None:
        """The previous coordinator's run, if any."""
        return self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()


def _row(r: sqlite3.Row) -> Row:
    d = dict(zip(COLUMNS, tuple(r), strict=True))
    d["inputs"] = json.loads(d["inputs"])
    return Row(**d)

"""Where a render writes before it publishes: a private folder per process under <out>/.work/, beside the folders that
get uploaded and never inside them, locked by its owner for as long as it lives.

Two things went wrong when partial files sat in output/<id>/ under fixed names (QA audit): a render killed during its
checks (SIGKILL, the OOM killer) left a complete, playable, unverified file in the folder that gets uploaded; and a
second render of the same id deleted the first one's live partial as "stale" and renamed its own half-written bytes
under the first one's verified name. Here every process writes under a name of its own, a folder is removed only
when its owner is dead (its lock can be taken), and one output's files are renamed into place under a lock, so that
an .mp4 and its sidecar always come from the same render.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

WORK = ".work"
LOCK = "lock"
# A work folder without its lock is being made (for microseconds) or removed by its owner; one that stays so longer
# was left by a process that died in between.
UNLOCKED_GRACE_S = 60.0
# Another machine's folder (Dask workers writing to shared storage) is judged by age only: its lock may not be
# visible from here (NFS mounted nolock or local_lock), and no render runs a day.
OTHER_HOST_GRACE_S = 24 * 3600.0


def _host() -> str:
    """This machine, as work folders are named: a short hash of its name (the name itself may say whose it is)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


@contextlib.contextmanager
def work_area(out_root: Path, name: str) -> Iterator[Path]:
    """A new private folder under out_root/.work/ (named after `name`), locked while the block runs, then removed."""
    root = Path(out_root) / WORK
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}.{_host()}.", dir=root))
    # Locked under a name the sweep ignores, then renamed into place: a sweep that finds `lock` finds it held.
    fd = os.open(path / ".lock-new", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(path / ".lock-new", path / LOCK)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def remove_stale_work(out_root: Path) -> list[Path]:
    """Remove the work folders under out_root/.work/ whose owners are gone; return them. Safe at any time: a live
    owner holds its folder's lock. Another machine's folders go only after OTHER_HOST_GRACE_S."""
    root = Path(out_root) / WORK
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    host = _host()
    for path in root.iterdir():
        if not path.is_dir() or path.is_symlink():
            continue
        if path.name.split(".")[-2:-1] != [host]:
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > OTHER_HOST_GRACE_S:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            continue
        try:
            fd = os.open(path / LOCK, os.O_RDWR)
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > UNLOCKED_GRACE_S:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            continue
        except OSError:
            continue  # not ours to open (another user's render): not ours to remove
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # its owner is alive
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def publishing(out_root: Path, name: str) -> Iterator[None]:
    """Held while one render renames an output's files into out_root/<name>/: two renders of the same id publish one
    after the other, never interleaved."""
    root = Path(out_root) / WORK
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f"{name}.publish", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

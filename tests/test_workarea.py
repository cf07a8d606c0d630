"""Render work folders: private to each process, outside the folder that gets uploaded, removed only when their
owner is dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from clipper.workarea import OTHER_HOST_GRACE_S, WORK, _host, remove_stale_work, work_area

HOLD = """
import os, signal, sys, time
from pathlib import Path
from clipper.workarea import work_area
with work_area(Path(sys.argv[1]), "clip") as work:
    (work / ".clip.mp4.partial").write_bytes(b"x")
    print(work, flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
"""


def _holder(out: Path, how: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), how], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_live_owners_work_folder_survives_a_sweep_and_a_dead_owners_goes(tmp_path):
    out = tmp_path / "out"
    live, live_dir = _holder(out, "live")
    dead, dead_dir = _holder(out, "die")
    dead.wait()
    try:
        assert dead.returncode == -signal.SIGKILL and dead_dir.is_dir()
        with work_area(out, "clip") as mine:
            assert remove_stale_work(out) == [dead_dir]
            assert live_dir.is_dir() and mine.is_dir() and not dead_dir.exists()
            assert live_dir.parent == mine.parent == out / WORK and live_dir != mine
        assert not mine.exists()  # removed by its owner on the way out
    finally:
        live.kill()
        live.wait()
    assert remove_stale_work(out) == [live_dir]


def test_a_work_folder_without_its_lock_is_left_while_it_may_be_in_the_making(tmp_path):
    out = tmp_path / "out"
    young = out / WORK / f"clip.{_host()}.young"
    young.mkdir(parents=True)
    assert remove_stale_work(out) == [] and young.is_dir()
    os.utime(young, (0, 0))  # an owner that died between making its folder and locking it, long ago
    assert remove_stale_work(out) == [young]


def test_another_machines_work_folder_is_judged_by_age_alone(tmp_path):
    # Its lock may not be visible from here (NFS mounted nolock): a free lock is no proof its owner is gone (review).
    out = tmp_path / "out"
    theirs = out / WORK / "clip.0123abcd.x1y2z3"
    theirs.mkdir(parents=True)
    (theirs / "lock").touch()  # unlocked, as seen from here
    assert remove_stale_work(out) == [] and theirs.is_dir()
    old = time.time() - OTHER_HOST_GRACE_S - 60
    os.utime(theirs, (old, old))
    assert remove_stale_work(out) == [theirs]


def test_publishing_one_id_waits_for_the_render_publishing_it(tmp_path):
    # Two renders of one id rename their .mp4, captions and sidecar one after the other, never interleaved.
    import threading

    from clipper.workarea import publishing

    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait()
        with publishing(tmp_path / "out", "clip"):
            order.append("second")

    t = threading.Thread(target=second)
    t.start()
    with publishing(tmp_path / "out", "clip"):
        inside.set()
        time.sleep(0.3)  # the other render is waiting now, or would have been inside
        order.append("first")
    t.join(timeout=10)
    assert order == ["first", "second"]
    with publishing(tmp_path / "out", "other"):  # another id is not held up
        pass

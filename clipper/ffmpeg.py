"""The one place that runs ffmpeg: locating the binary, running commands, turning failures into errors."""

from __future__ import annotations

import functools
import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from clipper.errors import FfmpegError

log = logging.getLogger("clipper.ffmpeg")

# Known ffmpeg stderr phrases mapped to a fix an editor can act on.
_HINTS: tuple[tuple[str, str], ...] = (
    (
        "Invalid data found when processing input",
        "the file is not a readable video; re-export it or check the path",
    ),
    ("moov atom not found", "the file is truncated (an unfinished copy or recording); copy it again"),
    ("No such file or directory", "check the path"),
    ("Permission denied", "check the file's permissions"),
    ("No space left on device", "free disk space and re-run"),
    ("Cannot allocate memory", "close other programs or render fewer variants at once"),
)


@functools.cache
def ffmpeg_exe() -> str:
    """Return the path of the ffmpeg binary bundled by imageio-ffmpeg."""
    override = os.environ.get("CLIPPER_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def hint_for(stderr: str) -> str:
    """Return a fix-it hint for a known ffmpeg failure, or a generic one."""
    for phrase, hint in _HINTS:
        if phrase in stderr:
            return hint
    return "run with --debug to see the full ffmpeg command and log"


def format_cmd(args: Sequence[str]) -> str:
    """Return a shell-quoted command line for logs."""
    return "$ " + shlex.join(str(a) for a in args)


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    log_path: Path | None = None,
    on_progress: Callable[[float], None] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run ffmpeg with `args` (without the binary); return its stderr; raise FfmpegError on failure.

    With on_progress, ffmpeg's `-progress pipe:1` output is parsed and the encoded time in seconds
    is passed to the callback as it advances.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y"]
    if on_progress is not None:
        cmd += ["-progress", "pipe:1", "-nostats"]
    cmd += [str(a) for a in args]
    log.debug(format_cmd(cmd))
    stderr_chunks: list[str] = []
    # One owner per process: opened here, always waited for, killed on any exception.
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE if on_progress else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        text=True,
        errors="replace",
    ) as proc:
        try:
            if on_progress is not None:
                import threading

                def _drain() -> None:
                    assert proc.stderr is not None
                    stderr_chunks.append(proc.stderr.read())

                t = threading.Thread(target=_drain, daemon=True)
                t.start()
                assert proc.stdout is not None
                for line in proc.stdout:
                    key, _, value = line.strip().partition("=")
                    if key == "out_time_us" and value.lstrip("-").isdigit():
                        on_progress(max(0, int(value)) / 1e6)
                t.join()
            else:
                assert proc.stderr is not None
                stderr_chunks.append(proc.stderr.read())
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    stderr = "".join(stderr_chunks)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(format_cmd(cmd) + "\n\n" + stderr, encoding="utf-8")
    if rc != 0:
        tail = "\n".join(stderr.strip().splitlines()[-6:])
        raise FfmpegError(f"{what} failed (ffmpeg exit {rc}):\n{tail}", hint=hint_for(stderr))
    return stderr

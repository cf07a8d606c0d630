"""The one place that runs ffmpeg: locating the binary, running commands, turning failures into errors."""

from __future__ import annotations

import functools
import logging
import os
import shlex
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

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


# Every ffmpeg started here, so a dying batch worker can take them with it (weak: finished ones just vanish).
LIVE: weakref.WeakSet[subprocess.Popen[Any]] = weakref.WeakSet()


@functools.cache
def ffmpeg_exe() -> str:
    """Return the path of the ffmpeg binary bundled by imageio-ffmpeg."""
    override = os.environ.get("CLIPPER_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


FONTCONFIG_TEMPLATE = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<!-- clipper: no font folders at all, so libass can never substitute a system font for a caption's -->
<fontconfig><cachedir>{cache}</cachedir></fontconfig>
"""


def fontconfig_file() -> Path:
    """A fontconfig configuration that names no fonts (created once per user in the temporary folder)."""
    folder = Path(tempfile.gettempdir()) / f"clipper-fontconfig-{os.getuid() if hasattr(os, 'getuid') else 0}"
    path = folder / "fonts.conf"
    text = FONTCONFIG_TEMPLATE.format(cache=folder / "cache")
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".fonts.conf.{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


def ffmpeg_env() -> dict[str, str]:
    """The environment every ffmpeg clipper starts runs in: fontconfig sees no fonts (see fontconfig_file)."""
    return {**os.environ, "FONTCONFIG_FILE": str(fontconfig_file())}


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
        env=ffmpeg_env(),
        text=True,
        errors="replace",
    ) as proc:
        LIVE.add(proc)
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
        log_path.write_text(format_cmd(cmd) + "\n\n" + without_tags(stderr), encoding="utf-8")
    if rc != 0:
        raise _failure(what, rc, stderr)
    return stderr


def without_tags(stderr: str) -> str:
    """ffmpeg's log without the tags it prints for each input and output (a source's GPS position, title, camera,
    creation time, chapter names): every line indented under a "Metadata:" line."""
    out: list[str] = []
    under: int | None = None  # indent of the "Metadata:" line whose block is being dropped
    # Split at "\n" only: str.splitlines also breaks at U+2028, U+0085 and others, which ffmpeg leaves inside a
    # tag's value, so a title holding one would end the dropped block early and log the tags after it.
    for line in stderr.split("\n"):
        indent = len(line) - len(line.lstrip(" "))
        if under is not None and line.strip() and indent > under:
            continue
        under = None
        if line.strip() == "Metadata:":
            under = indent
            line += " (not logged)"
        out.append(line)
    return "\n".join(out)


def _read_exact(stream: IO[bytes], buf: memoryview) -> int:
    """Fill buf from stream; return the bytes read (less than len(buf) only at end of stream)."""
    got = 0
    while got < len(buf):
        n = stream.readinto(buf[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def _failure(what: str, rc: int, stderr: str) -> FfmpegError:
    tail = "\n".join(without_tags(stderr).strip().split("\n")[-6:])
    return FfmpegError(f"{what} failed (ffmpeg exit {rc}):\n{tail}", hint=hint_for(stderr))


def _start(args: Sequence[str], *, stdin: bool, stdout: bool, progress: bool = False) -> subprocess.Popen[bytes]:
    cmd = [ffmpeg_exe(), "-hide_banner", "-y"]
    if progress:
        cmd += ["-progress", "pipe:1", "-nostats"]
    if not stdin:
        cmd.append("-nostdin")
    cmd += [str(a) for a in args]
    log.debug(format_cmd(cmd))
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE if (stdout or progress) else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ffmpeg_env(),
    )
    LIVE.add(proc)
    return proc


def kill_all() -> None:
    """Kill every ffmpeg this process started that may still run (a batch worker whose coordinator died)."""
    for proc in list(LIVE):
        if proc.returncode is None:
            proc.kill()


def _drain(stream: IO[bytes], into: list[bytes]) -> threading.Thread:
    t = threading.Thread(target=lambda: into.append(stream.read()), daemon=True)
    t.start()
    return t


def read_frames(args: Sequence[str], frame_bytes: int, *, what: str) -> Iterator[np.ndarray]:
    """Run ffmpeg writing raw frames to stdout; yield each frame as a uint8 array (the same buffer, reused).

    The process is killed if the consumer stops early or fails; a failing ffmpeg raises FfmpegError.
    """
    proc = _start(args, stdin=False, stdout=True)
    err: list[bytes] = []
    assert proc.stdout is not None and proc.stderr is not None
    drain = _drain(proc.stderr, err)
    buf = np.empty(frame_bytes, dtype=np.uint8)
    view = memoryview(buf)
    try:
        while True:
            got = _read_exact(proc.stdout, view)
            if got == 0:
                break
            if got < frame_bytes:
                raise FfmpegError(f"{what}: ffmpeg ended inside a frame ({got} of {frame_bytes} bytes)")
            yield buf
        rc = proc.wait()
        drain.join()
        if rc != 0:
            raise _failure(what, rc, b"".join(err).decode(errors="replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def run_ffmpeg_pipeline(
    source_args: Sequence[str],
    sink_args: Sequence[str],
    *,
    frame_bytes: int,
    transform: Callable[[int, np.ndarray], np.ndarray | memoryview | bytes],
    what: str,
    log_path: Path | None = None,
    on_progress: Callable[[float], None] | None = None,
    encoder_log: list[str] | None = None,
) -> int:
    """Decode raw frames with one ffmpeg, pass each through `transform(index, frame)`, encode with another.

    Frames travel only through pipes, never through a file. Both processes are killed on any failure,
    including one raised by `transform`; the number of frames passed on is returned (and the encoder's stderr
    appended to `encoder_log`, if given).
    """
    sink = _start(sink_args, stdin=True, stdout=False, progress=on_progress is not None)
    sink_err: list[bytes] = []
    assert sink.stderr is not None and sink.stdin is not None
    threads = [_drain(sink.stderr, sink_err)]
    if on_progress is not None:
        assert sink.stdout is not None
        out = sink.stdout

        def _progress() -> None:
            for raw in out:
                key, _, value = raw.decode(errors="replace").strip().partition("=")
                if key == "out_time_us" and value.lstrip("-").isdigit():
                    on_progress(max(0, int(value)) / 1e6)

        t = threading.Thread(target=_progress, daemon=True)
        t.start()
        threads.append(t)
    count = 0
    try:
        try:
            for count, frame in enumerate(read_frames(source_args, frame_bytes, what=f"{what} (decoding)"), 1):
                sink.stdin.write(transform(count - 1, frame))
            sink.stdin.close()
        except BrokenPipeError:
            pass  # the encoder stopped reading: its exit code and log say why, below
        rc = sink.wait()
        for t in threads:
            t.join()
    except BaseException:
        sink.kill()
        sink.wait()
        raise
    stderr = b"".join(sink_err).decode(errors="replace")
    if encoder_log is not None:
        encoder_log.append(stderr)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(
            format_cmd([ffmpeg_exe(), *map(str, source_args)])
            + "\n| (masks)\n"
            + format_cmd([ffmpeg_exe(), *map(str, sink_args)])
            + "\n\n"
            + without_tags(stderr),
            encoding="utf-8",
        )
    if rc != 0:
        raise _failure(what, rc, stderr)
    return count


def read_samples(args: Sequence[str], *, what: str) -> np.ndarray:
    """Run ffmpeg writing raw float32 samples (f32le) to stdout; return them; FfmpegError if it fails."""
    proc = _start(args, stdin=False, stdout=True)
    err: list[bytes] = []
    assert proc.stdout is not None and proc.stderr is not None
    drain = _drain(proc.stderr, err)
    try:
        data = proc.stdout.read()
        rc = proc.wait()
        drain.join()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    if rc != 0:
        raise _failure(what, rc, b"".join(err).decode(errors="replace"))
    if len(data) % 4:
        raise FfmpegError(f"{what}: ffmpeg ended inside a sample ({len(data)} bytes)")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)

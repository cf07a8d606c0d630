"""One family of errors: each says where the problem is and how to fix it; only the CLI prints them."""

from __future__ import annotations


class ClipperError(Exception):
    """Base of every error clipper raises on purpose; carries a location and a fix."""

    exit_code = 1

    def __init__(self, message: str, *, where: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def render(self) -> str:
        """Return the one-screen text the CLI prints."""
        head = f"{self.where}: {self.message}" if self.where else self.message
        return head + (f"\n  hint: {self.hint}" if self.hint else "")


class ManifestError(ClipperError):
    """A manifest that cannot be used as written; exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[ClipperError]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))

    def render(self) -> str:
        """Return every problem, one per paragraph."""
        return "\n".join(p.render() for p in self.problems)


class MediaError(ClipperError):
    """A source file that cannot be read as video/audio."""

    exit_code = 3


class FfmpegError(ClipperError):
    """ffmpeg failed while rendering."""

    exit_code = 4


class VerifyError(ClipperError):
    """A rendered file failed a check; it has been removed."""

    exit_code = 5


class AnonymityError(VerifyError):
    """A rendered file showed something identifying (a face the gate found); it has been removed."""

    exit_code = 6

"""Voice: changing the interviewee's voice, bleeping words, and measuring how linkable the result still is."""

from __future__ import annotations

from clipper.errors import ClipperError


class VoiceError(ClipperError):
    """The voice step cannot run or cannot guarantee its result; the job stops (never the original voice)."""

    exit_code = 7

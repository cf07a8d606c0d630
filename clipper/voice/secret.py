"""The team's voice secret: it turns a speaker's pseudonym into that person's voice parameters.

The parameters must be the same in every clip of one person (so a series sounds like one voice) yet impossible
to read from anything published: manifests, sidecars and outputs name only the pseudonym. The secret lives in
one file outside the project (`$CLIPPER_VOICE_SECRET`, else ~/.config/clipper/voice-secret), readable by its
owner only; every machine of a batch needs the same file. A machine that has none gets a new random one, so a
missing secret never weakens a voice, it only makes it sound different from the same person's earlier clips.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from clipper.voice import VoiceError

log = logging.getLogger(__name__)

ENV = "CLIPPER_VOICE_SECRET"
SECRET_BYTES = 32
# Versioned so a future change of the derivation is a deliberate re-voicing, never an accident.
DOMAIN = b"clipper voice parameters v1\0"


def secret_path() -> Path:
    """Where the voice secret is read from: $CLIPPER_VOICE_SECRET, else the user's clipper config folder."""
    explicit = os.environ.get(ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME", "").strip() or Path.home() / ".config")
    return config / "clipper" / "voice-secret"


def load_secret(*, create: bool = True) -> bytes:
    """The secret's bytes; made (random, owner-only) when absent and `create`; VoiceError when unusable."""
    path = secret_path()
    if not path.exists():
        if not create or os.environ.get(ENV, "").strip():
            # A named file that is missing is a mistake (a wrong path on a batch worker), not a first run.
            raise VoiceError(
                f"no voice secret at {path}",
                hint=f"copy the team's secret file there, or unset {ENV} to use (or create) the default one",
            )
        _create(path)
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as e:
        raise VoiceError(
            f"cannot read the voice secret {path}: {e.strerror}", hint="check its owner and mode"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VoiceError(
            f"the voice secret {path} can be read by other users (mode {stat.S_IMODE(mode):o})",
            hint=f"chmod 600 {path}",
        )
    key = raw.strip()
    if len(key) < SECRET_BYTES:
        raise VoiceError(
            f"the voice secret {path} is too short ({len(key)} bytes, at least {SECRET_BYTES})",
            hint=f"delete it to have a new one made, or restore the team's copy (make one: head -c {SECRET_BYTES} "
            f"/dev/urandom | xxd -p -c {2 * SECRET_BYTES})",
        )
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first: use theirs
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(SECRET_BYTES) + "\n")
    log.warning("made a new voice secret at %s: keep it safe and give every machine of the team the same file", path)


def speaker_seed(secret: bytes, speaker: str) -> bytes:
    """32 bytes that decide one speaker's voice parameters: HMAC-SHA256 of the pseudonym under the secret."""
    return hmac.new(secret, DOMAIN + speaker.encode("utf-8"), hashlib.sha256).digest()

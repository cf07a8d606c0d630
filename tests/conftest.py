"""Shared fixtures: writing manifests, rendering them through the library, and reading outputs back."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

OPT_OUT = {
    "faces": {"mode": "none", "reason": "test pattern, no person in frame"},
    "voice": {"mode": "none", "reason": "synthetic sound, nobody speaks"},
}
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CORPUS_VIDEO = CORPUS / "video"
CORPUS_CLIPS = (
    sorted(p for p in CORPUS_VIDEO.rglob("*") if p.suffix in (".mp4", ".mkv", ".gif")) if CORPUS_VIDEO.is_dir() else []
)
# Marks of every test over the corpus's videos: they skip cleanly in a clone without ../shared.
CORPUS_VIDEO_MARKS = [
    pytest.mark.corpus,
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS_CLIPS, reason="../shared/corpus/video is not beside this checkout"),
]


def manifest_text(
    sources: dict[str, str],
    segments: list[dict[str, Any]],
    *,
    platforms: list[str] | None = None,
    regions: list[dict[str, Any]] | None = None,
    cards: dict[str, Any] | None = None,
    reframe: str | None = None,
    faces: dict[str, Any] | None = None,
    id: str = "clip",
) -> str:
    """Return the YAML of a valid manifest with opt-outs declared."""
    doc: dict[str, Any] = {
        "clipper": 1,
        "id": id,
        "title": "test clip",
        "sources": sources,
        "segments": segments,
        "anonymize": {**OPT_OUT, **({"faces": faces} if faces else {}), **({"regions": regions} if regions else {})},
        "outputs": {"platforms": platforms or ["telegram"], "languages": ["en"]},
    }
    if cards:
        doc["cards"] = cards
    if reframe:
        doc["outputs"]["reframe"] = reframe
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@pytest.fixture
def write_manifest(tmp_path: Path) -> Callable[..., Path]:
    """Write a manifest into tmp_path and return its path."""

    def _write(*args: Any, name: str = "clip.yaml", **kwargs: Any) -> Path:
        path = tmp_path / name
        path.write_text(manifest_text(*args, **kwargs), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def render_manifest(tmp_path: Path) -> Callable[..., list[Any]]:
    """Render a manifest through the library API into tmp_path/out; return the RenderResults."""
    from clipper.render import prepare, render

    def _render(path: Path, **kwargs: Any) -> list[Any]:
        preview = kwargs.pop("preview", False)
        detector = kwargs.pop("detector", None)
        plan = prepare(path, preview=preview, **kwargs)
        return render(plan, tmp_path / "out", detector=detector)

    return _render


@pytest.fixture(autouse=True, scope="session")
def _voice_secret(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A voice secret for the whole run (subprocesses inherit it): tests never touch the user's own."""
    path = tmp_path_factory.mktemp("voice-secret") / "secret"
    path.write_text("5e" * 32 + "\n")
    path.chmod(0o600)
    old = os.environ.get("CLIPPER_VOICE_SECRET")
    os.environ["CLIPPER_VOICE_SECRET"] = str(path)
    yield path
    if old is None:
        os.environ.pop("CLIPPER_VOICE_SECRET", None)
    else:
        os.environ["CLIPPER_VOICE_SECRET"] = old


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for renders and frames kept for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

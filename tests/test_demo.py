"""The bundled demo footage and manifests: every manifest in manifests/ validates against real footage."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from clipper.demo import make_demo_interview
from clipper.faces.detect import CenterFace

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((REPO / "manifests").rglob("*.yaml"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of manifests/ and subtitles/ beside freshly generated footage/, as `make demo` lays them out."""
    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "manifests", root / "manifests")
    shutil.copytree(REPO / "subtitles", root / "subtitles")
    make_demo_interview(root / "footage" / "demo-interview.mp4")
    return root


def test_demo_footage_has_a_face_sized_picture_and_sound(demo_tree: Path):
    with av.open(str(demo_tree / "footage" / "demo-interview.mp4")) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        assert float(v.duration * v.time_base) == pytest.approx(24, abs=0.05)
        assert a.codec_context.sample_rate == 48000


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: str(p.relative_to(REPO / "manifests")))
def test_bundled_manifest_validates(demo_tree: Path, manifest: Path):
    path = demo_tree / manifest.relative_to(REPO)
    r = subprocess.run(
        [sys.executable, "-m", "clipper.cli", "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_demo_preview_renders_in_seconds(demo_tree: Path):
    out = demo_tree / "output"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "clipper.cli",
            "preview",
            str(demo_tree / "manifests" / "demo.yaml"),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    [preview] = list((out / "demo").glob("*.preview.mp4"))
    with av.open(str(preview)) as c:
        assert c.streams.video[0].codec_context.height == 360
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    # The astronaut's face is in every frame of the footage, and in none of the preview's.
    detector = CenterFace()
    assert not [i for i, f in enumerate(frames[::5]) if detector.detect(f)]
    with av.open(str(demo_tree / "footage" / "demo-interview.mp4")) as c:
        source = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % 50 == 0]
    assert all(detector.detect(f) for f in source)


def test_the_demo_without_scikit_image_says_what_to_install(monkeypatch, tmp_path):
    # A plain `pip install .` has no scikit-image: the demo ended in a traceback (QA sweep).
    import sys

    from clipper.demo import make_demo_interview
    from clipper.errors import ClipperError

    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage now raises ImportError
    with pytest.raises(ClipperError, match="needs scikit-image") as raised:
        make_demo_interview(tmp_path / "demo.mp4")
    assert "clipper[demo]" in raised.value.hint
    assert not list(tmp_path.iterdir())

"""Rendered clips with a changed voice and bleeps: what a listener hears and a viewer reads, and failing closed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from media import _write_wav, ffmpeg_run, read_audio, rgb_frames
from test_captions_render import draw

from clipper.demo import synth_speech
from clipper.errors import ClipperError
from clipper.voice import VoiceError

pytestmark = pytest.mark.slow
PARTIALS = (220.0, 660.0, 1870.0, 3150.0)
WORD = "Abdulrahmanovich"  # long, so the marker that replaces it changes the line's drawn width a lot


@pytest.fixture(autouse=True)
def _secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own voice secret (never the user's)."""
    path = tmp_path / "voice-secret"
    path.write_text("ab" * 32 + "\n")
    path.chmod(0o600)
    monkeypatch.setenv("CLIPPER_VOICE_SECRET", str(path))
    return path


def _clip(path: Path, samples: np.ndarray, rate: int = 48_000) -> Path:
    """A grey 320x240 video carrying `samples` (mono, duplicated to stereo) as its sound."""
    wav = path.with_suffix(".wav")
    _write_wav(wav, samples, rate, 2)
    seconds = len(samples) / rate
    ffmpeg_run(
        ["-f", "lavfi", "-i", f"color=c=0x404040:s=320x240:r=25:d={seconds}", "-i", str(wav)]
        + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-shortest", str(path)]
    )
    return path


def _partials(seconds: float, rate: int = 48_000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return sum(0.15 * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(PARTIALS)).astype(np.float32)


def _band_db(x: np.ndarray, rate: int, freq: float, width: float = 25.0) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return float(10 * np.log10(spec[(f > freq - width) & (f < freq + width)].sum() + 1e-30))


def _with(doc: Path, anonymize_extra: str, subtitles: str = "") -> Path:
    text = doc.read_text()
    text = text.replace("  voice:", anonymize_extra + "\n  voice:", 1) if anonymize_extra else text
    if subtitles:
        text = text.replace("outputs:", f"subtitles:\n  en: {subtitles}\noutputs:")
    doc.write_text(text)
    return doc


def test_a_bleep_removes_the_sound_and_the_caption_word(tmp_path, write_manifest, render_manifest, artifacts):
    _clip(tmp_path / "src.mp4", _partials(8.0))
    # The word sits in the middle of the cue; the cue runs 2-5 s of the source, the bleep covers 3.2-3.8 s.
    (tmp_path / "subs.en.vtt").write_text(
        f"WEBVTT\n\n00:00:02.000 --> 00:00:05.000\nThen {WORD} said go\n", encoding="utf-8"
    )
    doc = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 1, "out": 6}])
    _with(doc, '  bleeps: [{from: 3.2, to: 3.8, reason: "his real name", sound: tone}]', "subs.en.vtt")
    [r] = render_manifest(doc)

    # Sound: the clip starts at source 1 s, so the bleep is at clip 2.2-2.8 s.
    samples, rate, _ = read_audio(r.path)
    mono = samples.mean(axis=0)
    inside = mono[round(2.25 * rate) : round(2.75 * rate)]
    before = mono[round(1.0 * rate) : round(1.5 * rate)]
    for f in PARTIALS:
        # Gone: what is left at the original's frequencies is the encoder's noise floor, > 50 dB down.
        assert _band_db(inside, rate, f) < _band_db(before, rate, f) - 50, f
    assert _band_db(inside, rate, 1000.0) > _band_db(before, rate, 1000.0) + 30  # the tone is there

    # Sidecar captions: the marker, never the word.
    vtt = r.path.with_suffix(".vtt").read_text(encoding="utf-8")
    assert WORD not in vtt and "[…]" in vtt, vtt
    side = json.loads(r.sidecar.read_text())
    assert side["captions"]["cues_with_bleeped_words"] == 1
    assert side["sound"]["bleeps"] == [[2.2, 2.8]]
    assert "his real name" not in r.sidecar.read_text()  # the reason is for editors, never published

    # Burned captions: the drawn line is the redacted one, not the original.
    frame = rgb_frames(r.path)[round(1.5 * 25)].min(axis=2).astype(int)
    h, w = frame.shape
    redacted_line = vtt.strip().splitlines()[-1]
    want = draw("en", [redacted_line], (w, h), tmp_path / "want")
    orig = draw("en", [f"Then {WORD} said go"], (w, h), tmp_path / "orig")
    ink = frame > 200
    assert ink.sum() > 100, "no caption drawn"
    miss_want = np.logical_xor(ink, want > 200).sum()
    miss_orig = np.logical_xor(ink, orig > 200).sum()
    from PIL import Image

    Image.fromarray(frame.astype(np.uint8)).save(artifacts / "bleep-caption.png")
    assert miss_want < 0.3 * miss_orig, (miss_want, miss_orig)


@pytest.mark.parametrize("cut_in", [0.0, 5.0, 3.0], ids=["whole-cue", "cut-inside-the-cue", "cut-before-word"])
def test_a_bleeped_word_is_redacted_where_it_is_spoken_even_in_a_cue_cut_short(tmp_path, write_manifest, cut_in):
    """A cue from 2-8 s shows all its words over whatever part of it the cut keeps; the words are placed over the
    cue's whole time, so the redacted word is the one spoken under the bleep (a QA sweep published it when the
    words were spread over the kept part only)."""
    from clipper.render import prepare

    _clip(tmp_path / "src.mp4", _partials(10.0))
    text = "We crossed the river that night and then Mahmoud took us on to the camp"
    (tmp_path / "subs.en.vtt").write_text(f"WEBVTT\n\n00:00:02.000 --> 00:00:08.000\n{text}\n", encoding="utf-8")
    doc = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": cut_in, "out": 10}])
    # "Mahmoud" is characters 41-48 of 72 over 6 s: 5.4-6.0 s of the source.
    _with(doc, '  bleeps: [{from: 5.5, to: 6.0, reason: "a friend\'s name", sound: tone}]', "subs.en.vtt")
    plan = prepare(doc)
    [cue] = plan.captions["en"].cues
    assert cue.lines == ("We crossed the river that night and then […] took us on to the camp",), cue.lines
    assert plan.captions["en"].redacted == 1


@pytest.mark.parametrize("words", [[], ["Ahmed", "أحمد"]], ids=["timing-only", "words-named"])
def test_a_translation_that_moves_the_bleeped_name_loses_it_when_the_bleep_names_it(tmp_path, write_manifest, words):
    """Arabic puts "Ahmed" at the end of its cue, English at the start: placed by timing alone, the Arabic redacts
    the wrong words (a QA sweep published أحمد). A bleep's `words` are replaced wherever a cue under it has them."""
    from clipper.render import prepare

    _clip(tmp_path / "src.mp4", _partials(5.0))
    (tmp_path / "s.en.vtt").write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nAhmed, my brother, was taken from the market in 2014.\n",
        encoding="utf-8",
    )
    (tmp_path / "s.ar.vtt").write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nفي عام 2014 أخذوا أخي وأحمد من السوق.\n", encoding="utf-8"
    )
    doc = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 5}])
    data = yaml.safe_load(doc.read_text())
    data["anonymize"]["bleeps"] = [{"from": 1.0, "to": 1.5, "reason": "his brother's name", "words": words}]
    data["subtitles"] = {"en": "s.en.vtt", "ar": "s.ar.vtt"}
    data["outputs"]["languages"] = ["en", "ar"]
    doc.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    plan = prepare(doc)
    [en], [ar] = plan.captions["en"].cues, plan.captions["ar"].cues
    assert "Ahmed" not in " ".join(en.lines)
    if not words:
        assert "أحمد" in " ".join(ar.lines)  # the limit of timing alone, which `words` is for
        return
    assert "أحمد" not in " ".join(ar.lines) and "السوق" in " ".join(ar.lines), ar.lines


def test_clipper_plan_lists_each_bleep_with_its_reason(tmp_path, write_manifest):
    _clip(tmp_path / "src.mp4", _partials(4.0))
    doc = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0.6, "out": 3}])
    _with(
        doc,
        '  bleeps:\n    - {from: 1, to: 1.5, reason: "the name of his town"}\n'
        '    - {from: 3.5, to: 3.9, reason: "a cousin, cut anyway", sound: silence}',
    )
    r = subprocess.run(
        [sys.executable, "-m", "clipper.cli", "plan", str(doc)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr
    assert "bleeps.0 (tone): the name of his town — 0.400-0.900 s of the clip" in r.stdout, r.stdout
    assert "bleeps.1 (silence): a cousin, cut anyway — cam 3.500-3.900 s is outside every cut" in r.stdout
    # Allowed, but said where an editor looks: clip times written without `timed_to: clip` look just like this.
    v = subprocess.run([sys.executable, "-m", "clipper.cli", "validate", str(doc)], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    assert "anonymize.bleeps.1: this bleep (cam 3.500-3.900 s) is outside every cut" in v.stderr, v.stderr
    assert "timed_to: clip" in v.stderr and "bleeps.0" not in v.stderr


def _voice(doc: Path, extra: str = "") -> Path:
    """Change the manifest's voice to vocoder/strong for speaker test-speaker (plus `extra` keys, YAML flow)."""
    data = yaml.safe_load(doc.read_text())
    data["anonymize"]["voice"] = yaml.safe_load(
        "{method: vocoder, strength: strong, speaker: test-speaker" + extra + "}"
    )
    doc.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return doc


def test_a_broken_voice_method_publishes_nothing(tmp_path, write_manifest, render_manifest, monkeypatch):
    _clip(tmp_path / "src.mp4", synth_speech(4.0, 48_000))
    doc = _voice(write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 3}]))

    def broken(samples, sr, params):
        raise RuntimeError("simulated failure inside the method")

    monkeypatch.setattr("clipper.voice.methods.transform", broken)
    with pytest.raises(VoiceError, match="the voice method failed"):
        render_manifest(doc)
    out = tmp_path / "out"
    assert not [p for p in out.rglob("*") if p.is_file() and not p.is_relative_to(out / ".cache")], list(out.rglob("*"))


def test_an_unusable_secret_stops_the_render_with_a_clear_error(tmp_path, write_manifest, _secret):
    _clip(tmp_path / "src.mp4", synth_speech(3.0, 48_000))
    doc = _voice(write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 2}]))
    _secret.chmod(0o644)
    r = subprocess.run(
        [sys.executable, "-m", "clipper.cli", "render", str(doc), "--out", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CLIPPER_VOICE_SECRET": str(_secret)},
    )
    assert r.returncode == VoiceError.exit_code, r.stderr
    assert "can be read by other users" in r.stderr and "chmod 600" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "out").rglob("*.mp4"))
    assert stat.S_IMODE(_secret.stat().st_mode) == 0o644  # never "fixed" behind the user's back


def test_a_missing_named_secret_is_an_error_not_a_new_secret(tmp_path, write_manifest, monkeypatch):
    _clip(tmp_path / "src.mp4", synth_speech(3.0, 48_000))
    doc = _voice(write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 2}]))
    monkeypatch.setenv("CLIPPER_VOICE_SECRET", str(tmp_path / "nowhere" / "secret"))
    from clipper.render import prepare, render

    with pytest.raises(ClipperError, match="no voice secret"):
        render(prepare(doc), tmp_path / "out")
    assert not (tmp_path / "nowhere").exists()


def _hf_bursts(mono: np.ndarray, rate: int, at: list[float]) -> tuple[list[float], float]:
    """Energy above 4 kHz (dB) in 10 ms around each time in `at`, and the loudest such window elsewhere."""
    spec_hp = np.fft.rfft(mono)
    spec_hp[np.fft.rfftfreq(len(mono), 1 / rate) < 4000] = 0
    hp = np.fft.irfft(spec_hp, len(mono))
    win = rate // 100
    energy = [10 * np.log10(np.sum(hp[i : i + win] ** 2) + 1e-20) for i in range(0, len(hp) - win, win)]
    near = [max(energy[max(0, round(t * 100) - 1) : round(t * 100) + 2]) for t in at]
    excluded = {k for t in at for k in range(round(t * 100) - 2, round(t * 100) + 3)}
    elsewhere = max(e for k, e in enumerate(energy) if k not in excluded and 5 < k < len(energy) - 5)
    return near, elsewhere


@pytest.mark.parametrize("voice", [False, True], ids=["sound-as-is", "voice-changed"])
def test_joins_between_cuts_do_not_click(tmp_path, write_manifest, render_manifest, voice):
    rate = 48_000
    t = np.arange(6 * rate) / rate
    # A steady low hum with no energy above 4 kHz: a click at a join is the only thing that would put some there.
    hum = (0.3 * np.sin(2 * np.pi * 150 * t) + 0.2 * np.sin(2 * np.pi * 310 * t)).astype(np.float32)
    src = synth_speech(6.0, rate) * 0.8 + hum * 0.5 if voice else hum
    _clip(tmp_path / "src.mp4", src.astype(np.float32))
    # Cut points chosen mid-cycle, so the waveform jumps at every join.
    doc = write_manifest(
        {"cam": "src.mp4"}, [{"source": "cam", "in": 0.5, "out": 1.5}, {"source": "cam", "in": 3.12, "out": 4.12}]
    )
    if voice:
        _voice(doc)
    [r] = render_manifest(doc)
    samples, got_rate, _ = read_audio(r.path)
    near, elsewhere = _hf_bursts(samples.mean(axis=0), got_rate, [1.0])
    assert near[0] <= elsewhere + 6, (near, elsewhere)


def test_a_changed_voice_is_measured_and_recorded(tmp_path, write_manifest, render_manifest):
    _clip(tmp_path / "src.mp4", synth_speech(8.0, 48_000))
    doc = _voice(write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0.5, "out": 7.5}]))
    [r] = render_manifest(doc)
    side = json.loads(r.sidecar.read_text())
    voice = side["checks"]["voice"]
    assert voice["checked"] and voice["passed"], voice
    assert voice["similarity"] is not None and voice["similarity"] <= voice["threshold"]
    assert side["sound"]["method"] == "vocoder" and side["sound"]["strength"] == "strong"
    assert side["sound"]["voice_changed_seconds"] == pytest.approx(7.0, abs=0.05)
    assert "test-speaker" not in r.sidecar.read_text()  # the pseudonym keys the secret: never published
    assert side["checks"]["loudness_lufs"]["ok"] and side["checks"]["true_peak_dbtp"]["ok"]  # normalized as ever


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_voice_spans_change_only_their_stretches(tmp_path, write_manifest, render_manifest):
    _clip(tmp_path / "src.mp4", synth_speech(8.0, 48_000))
    plain = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 8}], name="plain.yaml", id="plain")
    spans = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 8}], name="spans.yaml", id="spans")
    _voice(spans, ", spans: [{from: 2, to: 5}]")
    [a] = render_manifest(plain)
    [b] = render_manifest(spans)
    xa, rate, _ = read_audio(a.path)
    xb, _, _ = read_audio(b.path)
    xa, xb = xa.mean(axis=0), xb.mean(axis=0)
    xb *= _rms(xa[: 2 * rate]) / max(_rms(xb[: 2 * rate]), 1e-9)  # loudness normalization differs a little

    def diff(lo: float, hi: float) -> float:
        i, j = round(lo * rate), round(hi * rate)
        return _rms(xa[i:j] - xb[i:j]) / max(_rms(xa[i:j]), 1e-9)

    assert diff(0.2, 1.9) < 0.1 and diff(5.1, 7.8) < 0.1  # outside the span: the same sound
    assert diff(2.0, 5.0) > 0.5  # inside: another voice
    side = json.loads(b.sidecar.read_text())
    assert side["sound"]["voice_changed_seconds"] == pytest.approx(3.0, abs=0.01)


def test_retuning_a_preset_changes_the_sound_cache_key_and_the_batch_identity(tmp_path, write_manifest, monkeypatch):
    # The key named the strength, not its numbers: clips cached before a preset was strengthened kept the old
    # voice, and a batch counted them as done (found in review).
    from clipper.batch.jobs import render_identity
    from clipper.render import prepare
    from clipper.voice import methods
    from clipper.voice.sound import sound_key

    _clip(tmp_path / "src.mp4", _partials(1.0))
    plan = prepare(_voice(write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 1}])))
    hashes = {"cam": "00" * 32}
    seed = b"s" * 32
    before = sound_key(plan, hashes, seed), render_identity(plan, {}, "tag")
    strong = dict(methods.PRESETS["vocoder"]["strong"], warp_hi=0.3)
    monkeypatch.setitem(methods.PRESETS["vocoder"], "strong", strong)
    after = sound_key(plan, hashes, seed), render_identity(plan, {}, "tag")
    assert before[0] != after[0] and before[1] != after[1]


def test_voice_spans_outside_every_cut_stop_the_job_instead_of_leaving_the_voice(tmp_path, write_manifest):
    from clipper.errors import ManifestError
    from clipper.render import prepare

    _clip(tmp_path / "src.mp4", synth_speech(12.0, 48_000))
    # Clip times written without `timed_to: clip`: on the source's timeline they miss the one cut (5-11 s).
    doc = _voice(
        write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 5, "out": 11}]), ", spans: [{from: 0, to: 4.5}]"
    )
    with pytest.raises(ManifestError) as info:
        prepare(doc)
    [problem] = info.value.problems
    assert "anonymize.voice.spans.0: this span (0 to 4.5 on cam's timeline) is outside every cut" in problem.message
    assert "timed_to: clip" in problem.hint
    _voice(doc, ", spans: [{from: 0, to: 4.5}], timed_to: clip")
    assert prepare(doc).voice.spans == ((0, 4.5),)


def test_a_voice_only_preview_that_measures_linkable_is_not_written(tmp_path, write_manifest, monkeypatch):
    from clipper.errors import AnonymityError
    from clipper.render import prepare, render_voice_only

    _clip(tmp_path / "src.mp4", synth_speech(6.0, 48_000))
    doc = _voice(write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 6}]))
    monkeypatch.setattr("clipper.voice.methods.transform", lambda samples, sr, params: samples)  # changes nothing
    with pytest.raises(AnonymityError, match="still linkable to the original .* not written"):
        render_voice_only(prepare(doc), tmp_path / "out")
    assert not list((tmp_path / "out").glob("*/*.wav")) and not list((tmp_path / "out").glob("*/.*partial*"))


def test_a_bleep_written_in_player_time_covers_the_word_when_the_picture_starts_late(
    tmp_path, write_manifest, render_manifest
):
    # The picture starts 0.3 s after the sound (an edit list): a player shows file time, clipper counts from the
    # first frame. A name (a 3 kHz marker) at file time 2.0-2.5 s, bleeped as a player shows it, must be gone.
    rate = 48_000
    x = 0.3 * _partials(6.0, rate)
    t = np.arange(len(x)) / rate
    x[(t >= 2.0) & (t < 2.5)] += 0.4 * np.sin(2 * np.pi * 3000 * t[(t >= 2.0) & (t < 2.5)])
    _write_wav(tmp_path / "sound.wav", x, rate, 2)
    ffmpeg_run(
        [
            "-itsoffset",
            "0.3",
            "-f",
            "lavfi",
            "-i",
            "color=c=0x404040:s=320x240:r=25:d=5.6",
            "-i",
            str(tmp_path / "sound.wav"),
        ]
        + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", str(tmp_path / "src.mp4")]
    )
    doc = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 5}])
    _with(doc, '  bleeps:\n    - {from: 2.0, to: 2.5, reason: "a name, timed in a player", sound: silence}')
    [r] = render_manifest(doc)
    y, got_rate, _ = read_audio(r.path)
    y = y.mean(axis=0)

    def marker_db(lo: float, hi: float) -> float:
        return _band_db(y[round(lo * got_rate) : round(hi * got_rate)], got_rate, 3000.0)

    # The word is at clip time 1.7-2.2 s (file time minus the picture's 0.3 s lead).
    assert marker_db(1.6, 2.3) < marker_db(3.0, 3.7) + 10, (marker_db(1.6, 2.3), marker_db(3.0, 3.7))
    side = json.loads(r.sidecar.read_text())
    [[a, b]] = side["sound"]["bleeps"]
    assert a <= 1.7 and b >= 2.5  # both readings: as a player shows it, and from the first frame


@pytest.mark.parametrize(("name", "codec"), [("src.mp4", "aac"), ("src.avi", "pcm_s16le")])  # AVI: "2 channels"
def test_a_source_with_inverted_channels_keeps_its_speaker_and_is_measured(
    tmp_path, write_manifest, render_manifest, name, codec
):
    # A miswired microphone: right = -left. Summed to mono it is silence; the clip would lose its speaker and the
    # voice gate would have nothing to measure. PCM in AVI has no named layout: it must not be summed either.
    _write_wav(tmp_path / "same.wav", synth_speech(6.0, 48_000), 48_000, 2)
    ffmpeg_run(
        ["-f", "lavfi", "-i", "color=c=0x404040:s=320x240:r=25:d=6", "-i", str(tmp_path / "same.wav")]
        + ["-af", "pan=stereo|c0=c0|c1=-1*c1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", codec]
        + ["-shortest", str(tmp_path / name)]
    )
    doc = _voice(write_manifest({"cam": name}, [{"source": "cam", "in": 0.5, "out": 5.5}]))
    [r] = render_manifest(doc)
    side = json.loads(r.sidecar.read_text())
    assert side["checks"]["voice"]["similarity"] is not None, side["checks"]["voice"]
    y, _, _ = read_audio(r.path)
    assert _rms(y.mean(axis=0)) > 0.02  # speech at a normal level, not silence


def test_a_sound_of_nine_unnamed_channels_is_mixed_not_refused(tmp_path, write_manifest, render_manifest):
    # ffmpeg names layouts up to 8 channels and some larger ones; "9 channels" it cannot downmix by itself.
    merge = "asplit=9" + "".join(f"[a{i}]" for i in range(9)) + ";" + "".join(f"[a{i}]" for i in range(9))
    ffmpeg_run(
        ["-f", "lavfi", "-i", "color=c=0x404040:s=320x240:r=25:d=4", "-f", "lavfi", "-i", "sine=f=440:d=4"]
        + ["-filter_complex", f"[1:a]{merge}amerge=inputs=9[a]", "-map", "0:v", "-map", "[a]"]
        + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", str(tmp_path / "src.mkv")]
    )
    doc = write_manifest({"cam": "src.mkv"}, [{"source": "cam", "in": 0.5, "out": 3.5}])
    _with(doc, '  bleeps:\n    - {from: 1, to: 1.5, reason: "a name"}')
    [r] = render_manifest(doc)
    y, rate, _ = read_audio(r.path)
    assert _band_db(y.mean(axis=0)[: rate // 2], rate, 440.0) > _band_db(y.mean(axis=0)[: rate // 2], rate, 2000.0) + 30


def test_bleeps_alone_work_at_any_sample_rate(tmp_path, write_manifest, render_manifest):
    # The voice methods need 8-96 kHz; a bleep does not, and a 7350 Hz source was refused for "the voice step".
    _clip(tmp_path / "src.mp4", 0.5 * _partials(4.0, 7350), rate=7350)
    doc = write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 3}])
    _with(doc, '  bleeps:\n    - {from: 1, to: 1.5, reason: "a name", sound: silence}')
    [r] = render_manifest(doc)
    y, rate, _ = read_audio(r.path)
    y = y.mean(axis=0)
    assert _rms(y[round(1.1 * rate) : round(1.4 * rate)]) < 1e-3 < _rms(y[round(0.2 * rate) : round(0.8 * rate)])


def test_a_render_that_fails_does_not_leave_the_previous_output_standing(
    tmp_path, write_manifest, render_manifest, monkeypatch
):
    _clip(tmp_path / "src.mp4", synth_speech(4.0, 48_000))
    doc = _voice(write_manifest({"cam": "src.mp4"}, [{"source": "cam", "in": 0, "out": 3}]))
    [first] = render_manifest(doc)
    # The manifest is edited (a name bleeped), and the new render fails: what stood under the output's name came
    # from the manifest before the edit and must not stay published as if it were current (QA sweep).
    _with(doc, '  bleeps:\n    - {from: 1, to: 1.4, reason: "his name"}')

    def broken(samples, sr, params):
        raise RuntimeError("simulated failure inside the method")

    monkeypatch.setattr("clipper.voice.methods.transform", broken)
    with pytest.raises(VoiceError):
        render_manifest(doc)
    assert not [p.name for p in first.path.parent.iterdir() if not p.name.startswith(".")]


def test_the_changed_sound_and_the_gates_original_are_mixed_alike(tmp_path, write_manifest):
    # Whether a cut's channels are summed or differenced was decided at each decode's own rate: hiss above 8 kHz in
    # the difference tipped the 48 kHz decode (the one changed) one way and the gate's 16 kHz original the other.
    from clipper.render import prepare
    from clipper.voice.sound import decode_segment

    rate, seconds = 48_000, 3.0
    t = np.arange(round(seconds * rate)) / rate
    mid = 0.05 * np.sin(2 * np.pi * 300 * t)
    hiss = np.random.default_rng(3).standard_normal(len(t))
    spec = np.fft.rfft(hiss)
    spec[np.fft.rfftfreq(len(t), 1 / rate) < 10_000] = 0  # only above 10 kHz: gone at 16 kHz
    side = 0.1 * np.sin(2 * np.pi * 500 * t) + 0.5 * np.fft.irfft(spec, len(t)) / np.std(np.fft.irfft(spec, len(t)))
    pcm = np.clip(np.stack([mid + side, mid - side], axis=1) * 32767, -32768, 32767).astype("<i2")
    import wave

    with wave.open(str(tmp_path / "pair.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(rate), w.writeframes(pcm.tobytes())
    ffmpeg_run(
        ["-f", "lavfi", "-i", f"color=c=0x404040:s=320x240:r=25:d={seconds}", "-i", str(tmp_path / "pair.wav")]
        + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "flac", "-shortest", str(tmp_path / "src.mkv")]
    )
    plan = prepare(write_manifest({"cam": "src.mkv"}, [{"source": "cam", "in": 0, "out": 2.8}]))
    [seg] = plan.segments

    def louder_of_300_and_500(x: np.ndarray, r: int) -> int:
        return 300 if _band_db(x, r, 300.0) > _band_db(x, r, 500.0) else 500

    assert louder_of_300_and_500(decode_segment(seg, plan.fps, 48_000), 48_000) == louder_of_300_and_500(
        decode_segment(seg, plan.fps, 16_000), 16_000
    )


def test_voicecheck_hears_a_file_whose_channels_cancel(tmp_path):
    # `clipper voicecheck` mixed files with ffmpeg's downmix: inverted copies read as silence, "not measurable",
    # exit 0, for a file that is the original voice itself.
    _write_wav(tmp_path / "same.wav", synth_speech(6.0, 48_000), 48_000, 2)
    ffmpeg_run(
        ["-i", str(tmp_path / "same.wav"), "-af", "pan=stereo|c0=c0|c1=-1*c1", "-c:a", "pcm_s16le"]
        + [str(tmp_path / "inverted.wav")]
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "clipper.cli",
            "voicecheck",
            str(tmp_path / "inverted.wav"),
            str(tmp_path / "inverted.wav"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 6 and "LINKABLE" in r.stdout, (r.stdout, r.stderr)

"""Voice anonymization measured: speaker-verification EER for two attackers, word error rate, speed.

On ../shared/corpus/speech/librispeech_test-other (10 speakers × 3 utterances, 16 kHz), for each method × strength:
- EER ignorant: enrolment on each original utterance, trials on every anonymized utterance of another recording
  (same-speaker pairs are targets, the rest non-targets; an utterance is never compared with itself);
- EER lazy-informed: both sides anonymized with the same method and strength under two different team secrets
  (so every speaker's parameters differ between enrolment and trial), same pairing;
- both EERs are means over three team secrets (ignorant: each secret; lazy-informed: A-B, B-C, C-A), since one
  secret's draw of ten pseudo-voices moves an EER by a few points;
- WER: pocketsphinx (its English model ships in the wheel) on the anonymized utterance against its own transcript
  of the original (so the original's WER is 0 by definition);
- speed: × realtime on one core (OMP_NUM_THREADS=1), the method alone, at 16 kHz and on 48 kHz input;
- similarity of each anonymized utterance to its own original (what the voice gate measures): mean and max.
The attacker is Resemblyzer's GE2E encoder (clipper/voice/embed.py), as in the issue's reference points.

    python bench/bench_voice.py [--methods mcadams,vocoder] [--strengths light,medium,strong] [--json FILE]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: the speed column is one core's

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

RATE = 16_000
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def load(path: Path, rate: int = RATE) -> np.ndarray:
    """A file's sound as mono float32 at `rate`."""
    from clipper.ffmpeg import ffmpeg_exe

    r = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(r.stdout, "<f4").astype(np.float32)


def eer(targets: np.ndarray, nontargets: np.ndarray) -> float:
    """Equal error rate (%) from target and non-target scores."""
    scores = np.sort(np.concatenate([targets, nontargets]))
    frr = np.array([(targets < t).mean() for t in scores])
    far = np.array([(nontargets >= t).mean() for t in scores])
    i = int(np.argmin(np.abs(frr - far)))
    return float(100 * (frr[i] + far[i]) / 2)


def pair_scores(enrol: np.ndarray, trial: np.ndarray, speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Target and non-target cosine scores of every enrolment × trial utterance pair (never an utterance with
    itself)."""
    scores = enrol @ trial.T
    same = speakers[:, None] == speakers[None, :]
    other_utt = ~np.eye(len(speakers), dtype=bool)
    return scores[same & other_utt], scores[~same]


def transcribe(x: np.ndarray) -> list[str]:
    """pocketsphinx's words for 16 kHz mono speech."""
    from pocketsphinx import Decoder

    d = Decoder(samprate=RATE, loglevel="FATAL")
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()
    hyp = d.hyp()
    return hyp.hypstr.split() if hyp else []


def wer(ref: list[str], hyp: list[str]) -> float:
    """Word error rate (%): edit distance over the reference's length."""
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
            prev, d[j] = d[j], cur
    return 100.0 * d[len(hyp)] / max(1, len(ref))


def main(argv: list[str] | None = None) -> int:
    """Print the table (and write it as JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--methods", default="mcadams,vocoder")
    ap.add_argument("--strengths", default="light,medium,strong")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-wer", action="store_true", help="skip the recognizer (the slowest column)")
    ns = ap.parse_args(argv)
    from clipper.voice.check import embed_changed_voice
    from clipper.voice.embed import embed
    from clipper.voice.methods import params_for, transform
    from clipper.voice.secret import speaker_seed

    files = sorted((ns.corpus / "speech" / "librispeech_test-other").glob("*/*.flac"))
    if not files:
        print(f"no corpus at {ns.corpus}/speech/librispeech_test-other", file=sys.stderr)
        return 2
    speakers = np.array([f.parent.name for f in files])
    originals = [load(f) for f in files]
    seconds = sum(len(x) for x in originals) / RATE
    e_orig = np.stack([embed(x, RATE) for x in originals])
    words = None if ns.no_wer else [transcribe(x) for x in originals]
    secrets = [f"bench-secret-{c}".encode() * 3 for c in "ABC"]
    rows = [
        {
            "method": "untouched",
            "strength": "",
            "eer_ignorant": eer(*pair_scores(e_orig, e_orig, speakers)),
            "eer_lazy_informed": eer(*pair_scores(e_orig, e_orig, speakers)),
            "eer_ignorant_each": [],
            "eer_lazy_informed_each": [],
            "wer": 0.0,
            "xrt_16k": None,
            "xrt_48k": None,
            "own_sim_mean": 1.0,
            "own_sim_max": 1.0,
        }
    ]
    x48 = load(files[0], 48_000)
    for method in ns.methods.split(","):
        for strength in ns.strengths.split(","):
            anon = []
            spent = 0.0
            for secret in secrets:
                out = []
                for spk, x in zip(speakers, originals, strict=True):
                    p = params_for(method, strength, speaker_seed(secret, str(spk)))
                    t = time.process_time()
                    out.append(transform(x, RATE, p))
                    spent += time.process_time() - t
                anon.append(out)
            # As the voice gate does: a changed voice the VAD hears little of is embedded whole, never skipped.
            embeddings = [np.stack([embed_changed_voice(y)[0] for y in ys]) for ys in anon]
            own = np.concatenate([np.sum(e_orig * e, axis=1) for e in embeddings])
            p48 = params_for(method, strength, speaker_seed(secrets[0], "x"))
            t = time.process_time()
            transform(x48, 48_000, p48)
            xrt48 = len(x48) / 48_000 / (time.process_time() - t)
            # Ignorant: originals against each secret's changed voices. Lazy-informed: two secrets against each
            # other (A-B, B-C, C-A), so every speaker's parameters differ between enrolment and trial.
            ignorant = [eer(*pair_scores(e_orig, e, speakers)) for e in embeddings]
            n = len(embeddings)
            lazy = [eer(*pair_scores(embeddings[i], embeddings[(i + 1) % n], speakers)) for i in range(n)]
            row = {
                "method": method,
                "strength": strength,
                "eer_ignorant": float(np.mean(ignorant)),
                "eer_lazy_informed": float(np.mean(lazy)),
                "eer_ignorant_each": ignorant,
                "eer_lazy_informed_each": lazy,
                "wer": None
                if words is None
                else float(np.mean([wer(w, transcribe(y)) for w, y in zip(words, anon[0], strict=True)])),
                "xrt_16k": len(secrets) * seconds / spent,
                "xrt_48k": xrt48,
                "own_sim_mean": float(own.mean()),
                "own_sim_max": float(own.max()),
            }
            rows.append(row)
            print(f"  {method} {strength}: done", file=sys.stderr, flush=True)
    n_t, n_n = (len(a) for a in pair_scores(e_orig, e_orig, speakers))
    print(f"\n{len(files)} utterances, {len(set(speakers))} speakers, {seconds:.0f} s; {n_t} target and {n_n} "
          "non-target pairs per attacker; GE2E (Resemblyzer) attacker\n")  # fmt: skip
    print("| method | strength | EER ignorant | EER lazy-informed | WER | × realtime 16 kHz | × realtime 48 kHz "
          "| similarity to own original (mean / max) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")

    def fmt(v: float | None, spec: str) -> str:
        return "—" if v is None else format(v, spec)

    for r in rows:
        print(
            f"| {r['method']} | {r['strength']} | {r['eer_ignorant']:.1f} % | {r['eer_lazy_informed']:.1f} % | "
            f"{fmt(r['wer'], '.1f')} % | {fmt(r['xrt_16k'], '.0f')}× | {fmt(r['xrt_48k'], '.0f')}× | "
            f"{r['own_sim_mean']:.3f} / {r['own_sim_max']:.3f} |"
        )
    if ns.json:
        ns.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

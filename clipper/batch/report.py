"""The morning report: output/report.json and a self-contained output/report.html, failures first.

Every job of the batch with its status, time, size, verify results (faces, voice, metadata) and, for a published
output, a strip of thumbnails decoded from the rendered file (never from a source: the report shows only anonymized
pictures). Strips are one ffmpeg run per output, cached in output/.batch/thumbs/ by job identity and output hash, and
embedded as data: URIs, so the page opens from disk, offline, and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipper.batch.ledger import Ledger, Row, ledger_path

log = logging.getLogger("clipper.batch")

# Order of rows: anonymity failures head the report, then other failures and manifests that could not be planned,
# then jobs still running or waiting, then the finished ones.
RANK = {"anonymity": 0, "failed": 1, "not planned": 2, "running": 3, "pending": 4, "done": 5}

THUMBS = 5  # frames per strip, evenly spaced over the output
THUMB_PX = 160  # long side of each frame
THUMB_QUALITY = 7  # ffmpeg's mjpeg -q:v (2 best … 31 worst): 4–6 KB per strip of real footage, 12 KB of a test chart
THUMB_GAP = 2  # white pixels between frames, so they read as separate pictures


def rank(status: str, failure: str | None) -> int:
    """Where a row goes in the report (lower first)."""
    if status == "failed" and failure == "anonymity":
        return RANK["anonymity"]
    return RANK.get(status, len(RANK))


# ---------------------------------------------------------------------------------------------- thumbnails


def thumbs_dir(out_root: Path) -> Path:
    """Where strips are cached, beside the ledger."""
    return ledger_path(out_root).parent / "thumbs"


def thumbnail_frames(frames: int, n: int = THUMBS, *, skip: tuple[int, int] = (0, 0)) -> list[int]:
    """n frame numbers evenly spaced over an output of `frames` frames, leaving out skip = (first, last) frames (the
    intro and outro cards) when enough remain: the middles of n equal stretches; fewer when the output is shorter."""
    start, end = skip[0], frames - skip[1]
    if end - start < n:
        start, end = 0, frames
    return sorted({min(end - 1, start + (end - start) * (2 * i + 1) // (2 * n)) for i in range(n)}) if end > 0 else []


def _scaled(v: Any) -> Any:
    """THUMB_PX on the long side, square pixels, full range (JPEG's; the outputs are limited range)."""
    v = v.filter(
        "scale", THUMB_PX, THUMB_PX, force_original_aspect_ratio="decrease", force_divisible_by=2, out_range="pc"
    )
    return v.filter("setsar", 1)


def thumbnail_cmd(video: Path, dest: Path, *, frames: int, fps: float, skip: tuple[int, int] = (0, 0)) -> list[str]:
    """ffmpeg arguments (without the binary) for one JPEG of THUMBS frames of `video` side by side (see
    thumbnail_frames for `skip`).

    A short output is decoded once, picking frames by number. A longer one is opened once per thumbnail with an
    input seek to the frame after the keyframe that starts the pick's GOP (on the GOP_SECONDS grid the encoder uses;
    a scene cut can move a keyframe, then more of the GOP is decoded), so the cost does not grow with the output's
    length. When that frame would fall in the intro card or on another thumbnail's, the pick itself is taken."""
    import ffmpeg

    from clipper.presets import GOP_SECONDS

    picks = thumbnail_frames(frames, skip=skip)
    if not picks:
        raise ValueError(f"{video.name} has no frames")
    if frames / fps < THUMBS * GOP_SECONDS:
        v = ffmpeg.input(str(video)).video
        v = v.filter("select", "+".join(f"eq(n,{n})" for n in picks))
        strip = _scaled(v).filter("tile", f"{len(picks)}x1", padding=THUMB_GAP, color="white")
    else:
        gop = round(fps * GOP_SECONDS)
        lo = skip[0] if frames - skip[0] - skip[1] >= THUMBS else 0
        targets: list[int] = []
        for n in picks:
            cheap = n // gop * gop + 1
            targets.append(cheap if cheap >= lo and cheap not in targets else n)
        inputs = [
            # Seeking half a frame before the target: ffmpeg's accurate seek then starts at exactly that frame.
            _scaled(ffmpeg.input(str(video), ss=f"{(t - 0.5) / fps:.6f}", threads=1).video.filter("trim", end_frame=1))
            for t in targets
        ]
        gapped = [v.filter("pad", f"iw+{THUMB_GAP}", "ih", 0, 0, color="white") for v in inputs[:-1]]
        strip = ffmpeg.filter([*gapped, inputs[-1]], "hstack", inputs=len(inputs)) if len(inputs) > 1 else inputs[0]
    # bitexact: no "Lavc…" comment in the JPEG (the same tool fingerprint the outputs are kept free of).
    opts = {"vframes": 1, "q:v": THUMB_QUALITY, "pix_fmt": "yuvj420p", "f": "image2", "update": 1, "flags": "+bitexact"}
    return ffmpeg.output(strip, str(dest), **opts).compile(cmd="ffmpeg")[1:]


def thumbnail_strip(video: Path, dest: Path, *, frames: int, fps: float, skip: tuple[int, int] = (0, 0)) -> Path:
    """Decode a strip of THUMBS frames from a rendered file into dest (atomically); return dest."""
    from clipper.ffmpeg import run_ffmpeg

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.{threading.get_ident()}.partial.jpg")
    try:
        run_ffmpeg(thumbnail_cmd(video, tmp, frames=frames, fps=fps, skip=skip), what=f"thumbnails of {video.name}")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


@dataclass(frozen=True)
class _Thumb:
    path: Path | None
    error: str | None = None
    seconds: float = 0.0  # time spent decoding (0 when cached)


def _cached_thumbnail(row: Row, meta: dict[str, Any], out_root: Path) -> _Thumb:
    """The row's strip from the cache, or decoded now from its output; an older strip of the same job goes."""
    folder = thumbs_dir(out_root)
    dest = folder / f"{row.identity}-{(row.output_sha256 or 'unknown')[:16]}.jpg"
    if dest.is_file():
        return _Thumb(dest)
    for old in folder.glob(f"{row.identity}-*.jpg"):
        old.unlink(missing_ok=True)
    video = out_root / row.manifest_id / row.output
    started = time.monotonic()
    try:
        fps = float(Fraction(str(meta["fps"])))
        cards = meta.get("cards") or {}
        skip = (round(float(cards.get("intro", 0)) * fps), round(float(cards.get("outro", 0)) * fps))
        thumbnail_strip(video, dest, frames=int(meta["frames"]), fps=fps, skip=skip)
    except Exception as e:  # noqa: BLE001 - a missing strip never stops the report
        log.warning("no thumbnails for %s: %s", video, e)
        return _Thumb(None, str(e).splitlines()[0] if str(e) else type(e).__name__)
    return _Thumb(dest, seconds=time.monotonic() - started)


# ---------------------------------------------------------------------------------------------- data


def _sidecar(row: Row, out_root: Path) -> dict[str, Any] | None:
    """The published sidecar of a done job, if it is this job's (a later job of the same variant replaces it)."""
    if row.status != "done":
        return None
    side = out_root / row.manifest_id / Path(row.output).with_suffix(".json")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("job_identity") not in (None, row.identity):
        return None
    return meta


def _faces_check(meta: dict[str, Any]) -> dict[str, Any]:
    gate = (meta.get("checks") or {}).get("faces") or {}
    masked = meta.get("faces") or {}
    declared = (meta.get("anonymity") or {}).get("faces", "")
    if not gate.get("checked"):
        return {"ok": None, "summary": declared or gate.get("why") or "not checked", "gate": gate}
    found = int(gate.get("faces_found") or 0)
    faces = "no face" if found == 0 else f"{found} face{'s' * (found > 1)}"
    text = f"{faces} in {gate.get('frames_checked', '?')} of {gate.get('frames', '?')} frames checked"
    dismissed = len(gate.get("dismissed_on_closer_look") or [])
    if dismissed:
        text += f" ({dismissed} candidate(s) dismissed on a closer look)"
    if masked:
        seen = masked.get("frames_with_faces_detected", "?")
        text += f"; {masked.get('mode', 'mask')} over the faces found in {seen} frames"
    return {"ok": found == 0, "summary": text, "gate": gate}


def _voice_check(meta: dict[str, Any]) -> dict[str, Any]:
    check = (meta.get("checks") or {}).get("voice") or {}
    declared = (meta.get("anonymity") or {}).get("voice", "")
    if not check.get("checked"):
        return {"ok": None, "summary": declared or check.get("why") or "not changed", "gate": check}
    sim, threshold = check.get("similarity"), check.get("threshold")
    if sim is None:
        text = f"not measurable: {check.get('note', '')}".strip()
    else:
        verdict = "not linkable" if check.get("passed") else "LINKABLE"
        text = f"similarity {sim:.3f} vs threshold {threshold}: {verdict}"
    return {"ok": bool(check.get("passed")), "summary": text, "gate": check}


def _metadata_check(meta: dict[str, Any]) -> dict[str, Any]:
    checks = meta.get("checks") or {}
    parts = {k: checks.get(k) or {} for k in ("no_foreign_metadata", "no_identifying_bytes")}
    bad = [f"{k}: {v.get('measured')}" for k, v in parts.items() if not v.get("ok")]
    return {"ok": not bad, "summary": "; ".join(bad) or "no tags, no identifying bytes", "detail": parts}


def _file_check(meta: dict[str, Any]) -> dict[str, Any]:
    checks = meta.get("checks") or {}
    graded = {k: v for k, v in checks.items() if isinstance(v, dict) and "ok" in v}
    failed = sorted(k for k, v in graded.items() if not v["ok"])
    return {
        "ok": not failed,
        "summary": f"{len(graded) - len(failed)} of {len(graded)} checks passed",
        "failed": failed,
    }


def _analysis_seconds(ledger: Ledger, rows: list[Row]) -> dict[str, float] | None:
    """Seconds of shared analysis per manifest id, when the ledger records them (`analysis_seconds()`: manifest path
    or id → seconds); None when it does not."""
    get = getattr(ledger, "analysis_seconds", None)
    if not callable(get):
        return None
    ids = {r.manifest: r.manifest_id for r in rows}
    out: dict[str, float] = {}
    for key, seconds in dict(get()).items():
        mid = ids.get(str(key), str(key))
        out[mid] = out.get(mid, 0.0) + float(seconds or 0.0)
    return out


def _time(ledger: Ledger, rows: list[Row], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the night's time went: render seconds (every job's last attempt) and analysis, per manifest."""
    analysis = _analysis_seconds(ledger, rows)
    by: dict[str, dict[str, Any]] = {}
    for r, j in zip(rows, jobs, strict=True):
        m = by.setdefault(
            r.manifest_id, {"jobs": 0, "render_seconds": 0.0, "analysis_seconds": None, "output_seconds": 0.0}
        )
        m["jobs"] += 1
        m["render_seconds"] += r.seconds or 0.0
        m["output_seconds"] += j["duration_s"] or 0.0
    for mid, m in by.items():
        if analysis is not None:
            m["analysis_seconds"] = round(analysis.get(mid, 0.0), 1)
        m["render_seconds"] = round(m["render_seconds"], 1)
        m["output_seconds"] = round(m["output_seconds"], 1)
    wall = None
    last = ledger.last_run()
    if last is not None:
        wall = round((last["finished_at"] or time.time()) - last["started_at"], 1)
    return {
        "render_seconds": round(sum(r.seconds or 0.0 for r in rows), 1),
        "analysis_seconds": None if analysis is None else round(sum(analysis.get(m, 0.0) for m in by), 1),
        "wall_seconds_last_run": wall,
        "by_manifest": dict(
            sorted(by.items(), key=lambda kv: -kv[1]["render_seconds"] - (kv[1]["analysis_seconds"] or 0))
        ),
    }


def report_data(ledger: Ledger, out_root: Path, identities: list[str] | None = None) -> dict[str, Any]:
    """Every job of the batch (or of the ledger) with its outcome, checks and thumbnails, failures first."""
    rows = ledger.rows()
    if identities is not None:
        wanted = set(identities)
        rows = [r for r in rows if r.identity in wanted]
    rows.sort(key=lambda r: (rank(r.status, r.failure), r.manifest_id, r.language, r.platform))
    metas = [_sidecar(r, out_root) for r in rows]
    todo = [(r, m) for r, m in zip(rows, metas, strict=True) if m is not None]
    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:  # each runs one short ffmpeg
        made = pool.map(lambda rm: _cached_thumbnail(rm[0], rm[1], out_root), todo)
        strips = dict(zip([r.identity for r, _ in todo], made, strict=True))
    jobs = [_job(r, m, strips.get(r.identity), out_root) for r, m in zip(rows, metas, strict=True)]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    decoded = [s for s in strips.values() if s.seconds]
    return {
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "out_root": str(out_root),
        "counts": counts,
        "anonymity_failures": sum(1 for r in rows if rank(r.status, r.failure) == RANK["anonymity"]),
        "problems": [{"manifest": m, "error": e, "fix": f} for m, e, f in ledger.problems()],
        "time": _time(ledger, rows, jobs),
        "thumbnails": {
            "decoded": len(decoded),
            "cached": len(strips) - len(decoded),
            "decode_seconds": round(sum(s.seconds for s in decoded), 2),
        },
        "jobs": jobs,
    }


def _job(r: Row, meta: dict[str, Any] | None, thumb: _Thumb | None, out_root: Path) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    if meta is not None:
        checks = {
            "faces": _faces_check(meta),
            "voice": _voice_check(meta),
            "metadata": _metadata_check(meta),
            "file": _file_check(meta),
        }
    return {
        "identity": r.identity,
        "manifest": r.manifest,
        "manifest_id": r.manifest_id,
        "variant": r.variant,
        "output": f"{r.manifest_id}/{r.output}",
        "status": r.status,
        "failure": r.failure,
        "error": r.error,
        "fix": r.fix,
        "attempts": r.attempts,
        "seconds": None if r.seconds is None else round(r.seconds, 1),
        "bytes": r.output_bytes,
        "sha256": r.output_sha256,
        "duration_s": None if meta is None else meta.get("duration_s"),
        "size": None if meta is None else f"{meta.get('width')}x{meta.get('height')}",
        "checks": checks,
        "thumbnail": None if thumb is None or thumb.path is None else str(thumb.path.relative_to(out_root)),
        "thumbnail_error": None if thumb is None else thumb.error,
    }


def write_report(
    ledger: Ledger, out_root: Path, identities: list[str] | None = None, *, withdrawn: list[str] | None = None
) -> tuple[Path, Path]:
    """Write report.json and report.html into out_root atomically; return their paths."""
    data = report_data(ledger, out_root, identities)
    data["withdrawn"] = withdrawn or []
    paths = (out_root / "report.json", out_root / "report.html")
    texts = (json.dumps(data, indent=2, ensure_ascii=False) + "\n", render_html(data, out_root))
    for path, text in zip(paths, texts, strict=True):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths


# ---------------------------------------------------------------------------------------------- HTML

CSS = """
:root { --ink: #1d2430; --muted: #5f6b7a; --line: #e3e7ed; --bg: #f6f7f9; --card: #fff;
  --bad: #b42318; --bad-bg: #fef3f2; --worst: #7a0916; --warn: #a15c07; --warn-bg: #fffaeb;
  --ok: #067647; --ok-bg: #ecfdf3; --accent: #2e5aac; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 "Inter", "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 28px 32px 48px; }
header { display: flex; align-items: baseline; justify-content: space-between; gap: 16px; flex-wrap: wrap; }
h1 { font-size: 22px; margin: 0; letter-spacing: -0.01em; }
h2 { font-size: 15px; margin: 28px 0 10px; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); }
.meta { color: var(--muted); font-size: 13px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(136px, 1fr)); gap: 10px; margin-top: 18px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .n { font-size: 23px; font-weight: 650; line-height: 1.15; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.card .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.05em; }
.card.bad { border-color: #f4c7c3; background: var(--bad-bg); } .card.bad .n { color: var(--bad); }
.card.worst { border-color: var(--worst); background: var(--worst); color: #fff; }
.card.worst .l { color: #ffd9dc; }
.card.ok .n { color: var(--ok); } .card.warn .n { color: var(--warn); }
.alert { margin-top: 18px; padding: 12px 16px; border-radius: 10px; background: var(--worst); color: #fff;
  font-weight: 600; }
table { border-collapse: separate; border-spacing: 0; width: 100%; background: var(--card);
  border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted);
  background: #fafbfc; font-weight: 600; }
th, td { padding: 10px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
tbody tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { height: 8px; border-radius: 4px; background: #edf0f4; min-width: 160px; overflow: hidden; display: flex; }
.bar i { display: block; height: 100%; } .bar i.r { background: var(--accent); } .bar i.a { background: #8fb0e8; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 12px; }
tr.failed td:first-child { box-shadow: inset 4px 0 var(--bad); } tr.failed { background: var(--bad-bg); }
tr.anonymity td:first-child { box-shadow: inset 6px 0 var(--worst); } tr.anonymity { background: #fde4e6; }
tr.pending td:first-child, tr.running td:first-child { box-shadow: inset 4px 0 var(--warn); }
tr.pending, tr.running { background: var(--warn-bg); }
.badge { display: inline-block; padding: 2px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  white-space: nowrap; }
.b-done { background: var(--ok-bg); color: var(--ok); } .b-failed { background: #fee4e2; color: var(--bad); }
.b-anonymity { background: var(--worst); color: #fff; }
.b-pending, .b-running { background: #fef0c7; color: var(--warn); }
.b-not-planned { background: #fee4e2; color: var(--bad); }
.sub { color: var(--muted); font-size: 12px; }
.name { font-weight: 600; } .file { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; color: var(--muted);
  overflow-wrap: anywhere; }
col.c-status { width: 112px; } col.c-output { width: 230px; } col.c-frames { width: 384px; }
col.c-facts { width: 96px; } col.c-render { width: 76px; }
img.strip { display: block; max-width: 360px; max-height: 96px; border-radius: 4px; background: #000;
  transition: transform 0.15s; transform-origin: left center; }
img.strip:hover { transform: scale(2); position: relative; z-index: 2; box-shadow: 0 6px 24px rgba(0,0,0,.35); }
.nothumb { color: var(--muted); font-size: 12px; font-style: italic; }
ul.checks { list-style: none; margin: 0; padding: 0; font-size: 13px; }
ul.checks li { display: grid; grid-template-columns: 16px 72px 1fr; margin: 1px 0; }
ul.checks b { font-weight: 600; }
.ok { color: var(--ok); } .no { color: var(--bad); font-weight: 600; } .na { color: var(--muted); }
.error { white-space: pre-wrap; word-break: break-word; margin: 0; font: 12.5px/1.45 ui-monospace, "DejaVu Sans Mono",
  monospace; color: #55160c; }
.fix { margin-top: 6px; } .fix b { color: var(--ink); }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
"""


def _secs(s: float | None) -> str:
    if s is None:
        return "—"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    h, rest = divmod(int(round(s)), 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{rest // 60} min {rest % 60:02d} s"


def _bytes(n: int | None) -> str:
    if not n:
        return "—"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def _mark(ok: bool | None) -> str:
    marks = {True: '<span class="ok">✓</span>', False: '<span class="no">✗</span>', None: '<span class="na">–</span>'}
    return marks[ok]


def _error_cell(error: str | None, fix: str | None, prefix: str = "") -> str:
    e = html.escape
    text = error or ""
    if fix and text.endswith(f"\n  hint: {fix}"):
        text = text[: -len(f"\n  hint: {fix}")]  # the fix is shown below, once
    out = f'<pre class="error">{e(prefix)}{e(text)}</pre>'
    if fix:
        out += f'<div class="fix"><b>Fix:</b> {e(fix)}</div>'
    return out


def _thumb_html(j: dict[str, Any], out_root: Path | None) -> str:
    e = html.escape
    if j["thumbnail"] and out_root is not None:
        try:
            data = (out_root / j["thumbnail"]).read_bytes()
        except OSError as err:
            return f'<span class="nothumb">no thumbnails: {e(str(err))}</span>'
        uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        alt = f"{THUMBS} frames of {j['output']}"
        return f'<img class="strip" alt="{e(alt)}" src="{uri}">'
    if j["thumbnail_error"]:
        return f'<span class="nothumb">no thumbnails: {e(j["thumbnail_error"])}</span>'
    return '<span class="nothumb">no output</span>'


def _job_row(j: dict[str, Any], out_root: Path | None) -> str:
    e = html.escape
    anonymity = j["status"] == "failed" and j["failure"] == "anonymity"
    cls = "failed anonymity" if anonymity else j["status"]
    if anonymity:
        badge = '<span class="badge b-anonymity">⚠ anonymity</span>'
    else:
        badge = f'<span class="badge b-{e(j["status"])}">{e(j["status"])}</span>'
    if j["failure"] and not anonymity:
        badge += f'<div class="sub">{e(j["failure"])}</div>'
    if j["attempts"] and j["attempts"] > 1:
        badge += f'<div class="sub">{j["attempts"]} attempts</div>'
    name = f'<div class="name">{e(j["manifest_id"])} · {e(j["variant"])}</div><div class="file">{e(j["output"])}</div>'
    if j["error"]:
        prefix = "last attempt failed, will be retried: " if j["status"] == "pending" else ""
        body = f'<td colspan="2">{_error_cell(j["error"], j["fix"], prefix)}</td>'
    else:
        c = j["checks"]
        if c:
            items = "".join(
                f"<li>{_mark(c[k]['ok'])}<b>{label}</b><span>{e(c[k]['summary'])}</span></li>"
                for k, label in (("faces", "faces"), ("voice", "voice"), ("metadata", "metadata"), ("file", "file"))
            )
            checks = f'<ul class="checks">{items}</ul>'
        else:
            checks = '<span class="na">—</span>'
        body = f"<td>{_thumb_html(j, out_root)}</td><td>{checks}</td>"
    facts = "—"
    if j["duration_s"] is not None:
        facts = _secs(j["duration_s"])
        facts += f'<div class="sub">{_bytes(j["bytes"])}</div><div class="sub">{e(j["size"] or "")}</div>'

    return (
        f'<tr class="{cls}"><td>{badge}</td><td>{name}</td>{body}'
        f'<td class="num">{facts}</td><td class="num">{_secs(j["seconds"])}</td></tr>'
    )


def _withdrawn_html(withdrawn: list[str]) -> str:
    """The outputs this run removed because no manifest asks for them as they were any more."""
    if not withdrawn:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in withdrawn)
    return (
        f'<h2>Withdrawn ({len(withdrawn)})</h2><p class="meta">Published before, removed now: their manifest '
        "no longer asks for them as they were (a language or platform dropped, the manifest edited).</p>"
        f"<ul>{items}</ul>"
    )


def _problem_row(p: dict[str, Any]) -> str:
    e = html.escape
    path = Path(p["manifest"])
    name = f'<div class="name">{e(path.name)}</div><div class="file">in {e(path.parent.name)}/</div>'
    return (
        f'<tr class="failed problem"><td><span class="badge b-not-planned">not planned</span></td><td>{name}</td>'
        f'<td colspan="2">{_error_cell(p["error"], p["fix"])}</td><td class="num">—</td><td class="num">—</td></tr>'
    )


def _time_table(t: dict[str, Any]) -> str:
    e = html.escape
    by = t["by_manifest"]
    if not by:
        return ""
    has_analysis = t["analysis_seconds"] is not None
    most = max((m["render_seconds"] + (m["analysis_seconds"] or 0)) for m in by.values()) or 1.0
    rows = []
    for mid, m in by.items():
        a, r = m["analysis_seconds"] or 0.0, m["render_seconds"]
        bar = f'<div class="bar"><i class="a" style="width:{100 * a / most:.1f}%"></i>'
        bar += f'<i class="r" style="width:{100 * r / most:.1f}%"></i></div>'
        speed = f"{(a + r) / m['output_seconds']:.1f}×" if m["output_seconds"] else "—"
        rows.append(
            f'<tr><td class="name">{e(mid)}</td><td class="num">{m["jobs"]}</td>'
            + (f'<td class="num">{_secs(m["analysis_seconds"])}</td>' if has_analysis else "")
            + f'<td class="num">{_secs(r)}</td><td class="num">{_secs(m["output_seconds"])}</td>'
            f'<td class="num">{speed}</td><td style="width:40%">{bar}</td></tr>'
        )
    head = "<th>manifest</th><th class='num'>jobs</th>" + ("<th class='num'>analysis</th>" if has_analysis else "")
    head += "<th class='num'>renders</th><th class='num'>output</th><th class='num'>time per output second</th><th>"
    head += '<span class="legend">' + ('<i style="background:#8fb0e8"></i>analysis' if has_analysis else "")
    head += '<i style="background:var(--accent)"></i>renders</span></th>'
    note = (
        ""
        if has_analysis
        else '<p class="sub">Shared analysis (faces, sound, loudness) is not recorded in this ledger; '
        "render times include only each job's own work.</p>"
    )
    return f'<table id="time"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{note}'


def render_html(data: dict[str, Any], out_root: Path | None = None) -> str:
    """The report as one HTML page with no outside resources (it opens from disk, offline); strips are read from
    out_root (their paths in `data` are relative to it) and embedded as data: URIs."""
    e = html.escape
    counts, t = data["counts"], data["time"]
    try:
        when = f"{datetime.fromisoformat(data['generated_at']):%Y-%m-%d %H:%M (UTC%z)}"
    except (ValueError, TypeError):
        when = str(data["generated_at"])
    anon = data.get("anonymity_failures", 0)
    failed = counts.get("failed", 0) - anon
    waiting = counts.get("pending", 0) + counts.get("running", 0)
    cards = [
        ("worst" if anon else "ok", anon, "anonymity failures"),
        ("bad" if failed else "ok", failed, "other failures"),
        ("bad" if data["problems"] else "ok", len(data["problems"]), "manifests not planned"),
        ("warn" if waiting else "", waiting, "waiting / running"),
        ("ok", counts.get("done", 0), "done"),
        ("", _secs(t["render_seconds"]), "render time (all workers)"),
    ]
    if t.get("analysis_seconds") is not None:
        cards.append(("", _secs(t["analysis_seconds"]), "analysis time"))
    if t.get("wall_seconds_last_run") is not None:
        cards.append(("", _secs(t["wall_seconds_last_run"]), "wall clock (last run)"))
    total_bytes = sum(j["bytes"] or 0 for j in data["jobs"] if j["status"] == "done")
    cards.append(("", _bytes(total_bytes), "published"))
    card_html = "".join(
        f'<div class="card {c}"><div class="n">{e(str(n))}</div><div class="l">{e(label)}</div></div>'
        for c, n, label in cards
    )
    alert = ""
    if anon:
        alert = (
            f'<div class="alert">⚠ {anon} output(s) failed the anonymity gate (a face or a linkable voice was found); '
            "nothing of them was published. They head the table below.</div>"
        )
    jobs = data["jobs"]
    ranked = [(rank(j["status"], j["failure"]), 0, _job_row(j, out_root)) for j in jobs]
    ranked += [(RANK["not planned"], 1, _problem_row(p)) for p in data["problems"]]
    ranked.sort(key=lambda x: (x[0], x[1]))  # stable: jobs keep their order within a rank
    rows = "\n".join(r for _, _, r in ranked) or '<tr><td colspan="6" class="na">no jobs</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clipper batch report — {e(when)}</title>
<style>{CSS}</style></head>
<body><main>
<header><h1>clipper batch report</h1>
<div class="meta">{e(data.get("out_root", ""))} · {e(when)}</div></header>
{alert}
<section class="cards">{card_html}</section>
<h2>Where the time went</h2>
{_time_table(t)}
<h2>Jobs ({len(jobs)} outputs{f", {len(data['problems'])} manifest(s) not planned" if data["problems"] else ""})</h2>
<table id="jobs"><colgroup><col class="c-status"><col class="c-output"><col class="c-frames"><col>
<col class="c-facts"><col class="c-render"></colgroup>
<thead><tr><th>status</th><th>output</th><th>frames of the rendered file</th><th>verify</th>
<th class="num">length · size</th><th class="num">render</th></tr></thead>
<tbody>
{rows}
</tbody></table>
{_withdrawn_html(data.get("withdrawn") or [])}
<footer>Thumbnails are decoded from the published (anonymized) outputs only. Every output's sidecar beside it lists
every check in full; report.json holds this table as data.</footer>
</main></body></html>
"""

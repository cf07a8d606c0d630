"""The morning report: output/report.json and a self-contained output/report.html, failures first."""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import Any

from clipper.batch.ledger import Ledger, Row

ORDER = {"failed": 0, "running": 1, "pending": 2, "done": 3}


def report_data(ledger: Ledger, out_root: Path, identities: list[str] | None = None) -> dict[str, Any]:
    """Every job of the batch (or of the ledger) with its outcome and checks, failures first."""
    rows = ledger.rows()
    if identities is not None:
        wanted = set(identities)
        rows = [r for r in rows if r.identity in wanted]
    rows.sort(
        key=lambda r: (ORDER.get(r.status, 9), {"anonymity": 0}.get(r.failure or "", 1), r.manifest_id, r.variant)
    )
    jobs = [_job(r, out_root) for r in rows]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()),
        "counts": counts,
        "problems": [{"manifest": m, "error": e, "fix": f} for m, e, f in ledger.problems()],
        "time": {
            "render_seconds": round(sum(r.seconds or 0 for r in rows if r.status == "done"), 1),
            "by_manifest": _time_by_manifest(rows),
        },
        "jobs": jobs,
    }


def _time_by_manifest(rows: list[Row]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        out[r.manifest_id] = round(out.get(r.manifest_id, 0.0) + (r.seconds or 0.0), 1)
    return out


def _job(r: Row, out_root: Path) -> dict[str, Any]:
    side = out_root / r.manifest_id / Path(r.output).with_suffix(".json")
    checks: dict[str, Any] = {}
    if r.status == "done" and side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
            c = meta.get("checks", {})
            checks = {
                "faces": c.get("faces"),
                "voice": c.get("voice"),
                "metadata": c.get("tags") or c.get("metadata"),
            }
        except (OSError, ValueError):
            checks = {}
    return {
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
        "checks": checks,
    }


def write_report(ledger: Ledger, out_root: Path, identities: list[str] | None = None) -> tuple[Path, Path]:
    """Write report.json and report.html into out_root atomically; return their paths."""
    data = report_data(ledger, out_root, identities)
    paths = (out_root / "report.json", out_root / "report.html")
    texts = (json.dumps(data, indent=2, ensure_ascii=False) + "\n", render_html(data))
    for path, text in zip(paths, texts, strict=True):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths


def render_html(data: dict[str, Any]) -> str:
    """The report as one HTML page with no outside resources (it opens from disk, offline)."""
    e = html.escape
    counts = ", ".join(f"{n} {s}" for s, n in sorted(data["counts"].items(), key=lambda kv: ORDER.get(kv[0], 9)))
    rows = []
    for p in data["problems"]:
        rows.append(
            f'<tr class="failed"><td>{e(Path(p["manifest"]).name)}</td><td>—</td><td>not planned</td>'
            f"<td>{e(p['error'])}<br><b>fix:</b> {e(p['fix'] or '')}</td><td></td><td></td></tr>"
        )
    for j in data["jobs"]:
        why = ""
        if j["error"]:
            why = f"{e(j['failure'] or '')}: {e(j['error'])}" + (f"<br><b>fix:</b> {e(j['fix'])}" if j["fix"] else "")
        elif j["checks"]:
            faces = j["checks"].get("faces") or {}
            voice = j["checks"].get("voice") or {}
            why = e(
                f"faces: {'checked' if faces.get('checked', True) else 'not checked'}; "
                f"voice: {voice.get('similarity', 'not changed') if voice.get('checked') else 'not changed'}"
            )
        size = f"{j['bytes'] / 1e6:.1f} MB" if j["bytes"] else ""
        secs = f"{j['seconds']:.1f} s" if j["seconds"] is not None else ""
        rows.append(
            f'<tr class="{e(j["status"])}"><td>{e(j["manifest_id"])}</td><td>{e(j["variant"])}</td>'
            f"<td>{e(j['status'])}</td><td>{why}</td><td>{secs}</td><td>{size}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clipper batch report</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left; vertical-align: top; }}
tr.failed {{ background: #fde8e8; }} tr.pending, tr.running {{ background: #fff8e1; }}
</style></head>
<body>
<h1>clipper batch report</h1>
<p>{e(data["generated_at"])} — {e(counts) or "no jobs"}; {data["time"]["render_seconds"]} s of rendering.</p>
<table id="jobs"><thead><tr><th>manifest</th><th>variant</th><th>status</th><th>why / checks</th>
<th>time</th><th>size</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""

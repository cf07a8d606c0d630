"""For a person to check the masks: boxes, track ids and scores drawn on (masked) frames, and a contact sheet."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clipper.analyze import FaceAnalysis, analyze_faces, cache_dir
from clipper.faces.detect import FaceDetector
from clipper.faces.mask import yuv420_frame_bytes, yuv420_planes
from clipper.faces.track import associate
from clipper.ffmpeg import read_frames
from clipper.graph import PipeLayout, decode_cmd
from clipper.masking import FrameMasker
from clipper.plan import RenderPlan
from clipper.workarea import work_area

# Overlay colours (Y, U, V, limited range) by why a frame is masked.
_YUV = {
    "detected": (145, 54, 34),  # green
    "interpolated": (210, 16, 146),  # yellow
    "held": (170, 40, 180),  # orange
    "dark": (81, 90, 240),  # red
}
SHEET_COLUMNS = 6
THUMB_WIDTH = 320
MAX_LOWEST = 12  # frames with the least confident detections on the sheet
MAX_SHEET_FRAMES = 60


@functools.cache
def _font(px: int) -> ImageFont.FreeTypeFont:
    from clipper.cards import default_font

    return ImageFont.truetype(str(default_font()), px)


@functools.cache
def _label(text: str, px: int) -> np.ndarray:
    """A white-on-black text bitmap (luma values) for drawing into a frame."""
    font = _font(px)
    x0, y0, x1, y1 = font.getbbox(text)
    img = Image.new("L", (x1 - x0 + 6, y1 - y0 + 6), 16)
    ImageDraw.Draw(img).text((3 - x0, 3 - y0), text, fill=235, font=font)
    return np.asarray(img)


def _rect(buf: np.ndarray, w: int, h: int, box: tuple[int, int, int, int], colour: tuple[int, int, int], t: int):
    """Outline box (x, y, w, h) in a yuv420p frame, t px thick."""
    y_p, u_p, v_p = yuv420_planes(buf, w, h)
    x, y, bw, bh = box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
    if x1 <= x0 or y1 <= y0:
        return
    for plane, value, k in ((y_p, colour[0], 1), (u_p, colour[1], 2), (v_p, colour[2], 2)):
        a0, b0, a1, b1 = x0 // k, y0 // k, max(x0 // k + 1, x1 // k), max(y0 // k + 1, y1 // k)
        tk = max(1, t // k)
        plane[b0 : b0 + tk, a0:a1] = value
        plane[max(b0, b1 - tk) : b1, a0:a1] = value
        plane[b0:b1, a0 : a0 + tk] = value
        plane[b0:b1, max(a0, a1 - tk) : a1] = value


def _text(buf: np.ndarray, w: int, h: int, x: int, y: int, text: str, px: int) -> None:
    y_p, _, _ = yuv420_planes(buf, w, h)
    bmp = _label(text, px)
    x, y = max(0, min(x, w - 1)), max(0, min(y, h - 1))
    th, tw = min(bmp.shape[0], h - y), min(bmp.shape[1], w - x)
    y_p[y : y + th, x : x + tw, 0] = bmp[:th, :tw]


@dataclass
class OverlayMasker(FrameMasker):
    """The masks, then what produced them drawn on top: mask boxes coloured by reason, detections with ids.

    `view`, when set (by a face-following crop), gives the part (x, y, w, h) of each frame that will be shown:
    labels are kept inside it (drawn at the frame's corner, they were cropped away).
    """

    view: Callable[[int], tuple[int, int, int, int]] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        # Track ids per (segment, frame, detection) for the labels, from the same association the masks used.
        self._ids: dict[tuple[int, int, int], int] = {}
        if self.faces is not None:
            for s_idx, seg in enumerate(self.faces.segments):
                for track in associate(seg.detections, self.faces.tracking):
                    for f, det in zip(track.frames, track.boxes, strict=True):
                        self._ids[(s_idx, f, seg.detections[f].index(det))] = track.id
        self._analysed = [self.faces.analysed(i) for i in range(len(self.faces.segments))] if self.faces else []

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Mask clip frame `index`, then draw its boxes, ids and scores."""
        super().__call__(index, frame)
        if self.faces is None:
            return frame
        cw, ch = self.layout.canvas
        s_idx, m = self.faces.mask_at(index)
        start = self.plan.segments[s_idx].clip_start_frame
        pw, ph = self.layout.pictures[s_idx]
        thick = max(2, round(min(pw, ph) / 180)) // 2 * 2
        px = max(12, round(ph / 30))
        parts = m.reason.split("+")
        kind = "dark" if m.full_frame else next((k for k in ("held", "interpolated", "detected") if k in parts), "")
        reason = m.reason
        if index - start not in self._analysed[s_idx] and "interpolated" in parts and not m.full_frame:
            # A frame the stride skipped, between two looks: bridged by design, not a face the detector lost (its
            # "held" boxes are the neighbours' holds; the sidecar and the review sheet count no hold here).
            kind, reason = "interpolated", "between analysed frames"
        for box in m.boxes:
            _rect(frame, cw, ch, box, _YUV.get(kind, _YUV["detected"]), thick)
        if m.full_frame:
            _rect(frame, cw, ch, (0, 0, pw, ph), _YUV["dark"], 4 * thick)
        vx, vy, vw, vh = self.view(index) if self.view is not None else (0, 0, pw, ph)
        dets = self.faces.segments[s_idx].detections[index - start]
        for d_idx, d in enumerate(dets):
            x0, y0, x1, y1 = (round(v) for v in d.box)
            _rect(frame, cw, ch, (x0, y0, x1 - x0, y1 - y0), (235, 128, 128), max(2, thick // 2))
            tid = self._ids.get((s_idx, index - start, d_idx), -1)
            label = f"#{tid} {d.score:.2f}"
            # Inside what is shown: a label starting past the view's right edge is moved back into it.
            lx = min(max(x0, vx), vx + max(0, vw - _label(label, px).shape[1]))
            _text(frame, cw, ch, lx, min(y1 + thick, vy + vh - px), label, px)
        _text(frame, cw, ch, vx + thick, vy + thick, f"{index} {reason}", px)
        return frame


def yuv420_to_rgb(buf: np.ndarray, w: int, h: int) -> np.ndarray:
    """An RGB image of one raw yuv420p (limited range, BT.709: what the decoder now delivers) frame."""
    y_p, u_p, v_p = yuv420_planes(buf, w, h)
    y = (y_p[:, :, 0].astype(np.float32) - 16) * (255 / 219)
    u = np.repeat(np.repeat(u_p[:, :, 0], 2, axis=0), 2, axis=1)[:h, :w].astype(np.float32) - 128
    v = np.repeat(np.repeat(v_p[:, :, 0], 2, axis=0), 2, axis=1)[:h, :w].astype(np.float32) - 128
    u, v = u * (255 / 224), v * (255 / 224)
    rgb = np.stack([y + 1.5748 * v, y - 0.187324 * u - 0.468124 * v, y + 1.8556 * u], axis=2)
    return rgb.clip(0, 255).astype(np.uint8)


def review_frames(faces: FaceAnalysis, plan: RenderPlan) -> list[tuple[int, str]]:
    """(clip frame, why it is on the sheet): each dark/hold/bridge stretch, and the least confident detections.

    Stretches are opened only by frames the detector looked at (frames a stride skipped are bridged by design).
    When there are more than fit, dark stretches come first, then the longest holds and bridges, then the
    lowest scores: a long hold matters more than many short ones.
    """
    stretches: list[tuple[int, int, int, str, list[int]]] = []  # (priority, -length, first, label, frames to show)
    scored = []
    for s_idx, seg in enumerate(faces.segments):
        start = plan.segments[s_idx].clip_start_frame
        for f, dets in enumerate(seg.detections):
            if dets:
                scored.append((min(d.score for d in dets), start + f))
        for first, last, kind in faces.coverage(s_idx)["stretches"]:
            a, b = start + first, start + last
            label = f"{kind} {a}-{b}" if b > a else f"{kind} {a}"
            stretches.append((0 if kind == "dark" else 1, -(b - a), a, label, sorted({a, (a + b) // 2, b})))
    picks: dict[int, str] = {}
    for _, _, _, label, frames in sorted(stretches):
        if len(picks) + len(frames) > MAX_SHEET_FRAMES - min(MAX_LOWEST, len(scored)):
            break
        for f in frames:
            picks.setdefault(f, label)
    for score, f in sorted(scored)[:MAX_LOWEST]:
        if len(picks) >= MAX_SHEET_FRAMES:
            break
        picks.setdefault(f, f"score {score:.2f}")
    return sorted(picks.items())


def contact_sheet(plan: RenderPlan, faces: FaceAnalysis, out: Path) -> tuple[Path, int, list[int]]:
    """Write a PNG of the frames a person should check, masked and annotated; return it, its frame count and the
    frames left black because the verify detector found a face in them.

    `out` is out_root/<id>/<name>.png (the sheet is written in out_root/.work/ first). Frames are decoded and masked
    in memory like a render, then looked at by the render's verify detector: the sheet
    never shows a face a render would refuse to publish (a QA audit found a face the analysis had missed, on a held
    frame, bare on the sheet, which nothing had checked).
    """
    from clipper.faces.gate import faces_in_picture

    picks = dict(review_frames(faces, plan))
    withheld: list[int] = []
    layout = PipeLayout.for_plan(plan)
    cw, ch = layout.canvas
    masker = OverlayMasker(plan, layout, faces)
    thumbs: list[tuple[int, str, Image.Image]] = []
    if picks:
        last = max(picks)
        for i, frame in enumerate(read_frames(decode_cmd(plan, layout), yuv420_frame_bytes(cw, ch), what="review")):
            if i > last:
                break
            if i in picks:
                masker(i, frame)
                s_idx, _ = faces.mask_at(i)
                pw, ph = layout.pictures[s_idx]
                rgb = np.ascontiguousarray(yuv420_to_rgb(frame, cw, ch)[:ph, :pw])
                why = picks[i]
                if faces_in_picture(rgb):
                    withheld.append(i)
                    rgb = np.zeros_like(rgb)
                    why = f"{why}: FACE FOUND, not shown"
                img = Image.fromarray(rgb)
                img.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
                thumbs.append((i, why, img))
    cell_h = max((t.height for _, _, t in thumbs), default=THUMB_WIDTH * 9 // 16) + 22
    cols = max(1, min(SHEET_COLUMNS, len(thumbs)))
    rows = max(1, -(-len(thumbs) // cols))
    sheet = Image.new("RGB", (cols * (THUMB_WIDTH + 8) + 8, rows * cell_h + 40), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    title = f"{plan.manifest_id}: {len(thumbs)} frames to check" if thumbs else f"{plan.manifest_id}: no faces found"
    draw.text((8, 8), title, fill=(240, 240, 240), font=_font(18))
    for k, (i, why, img) in enumerate(thumbs):
        x, y = 8 + (k % cols) * (THUMB_WIDTH + 8), 40 + (k // cols) * cell_h
        sheet.paste(img, (x, y))
        t = i / plan.fps
        colour = (255, 80, 80) if i in withheld else (220, 220, 220)
        draw.text((x, y + img.height + 3), f"{i} ({float(t):.2f} s) {why}", fill=colour, font=_font(13))
    out.parent.mkdir(parents=True, exist_ok=True)
    with work_area(out.parent.parent, plan.manifest_id) as work:
        tmp = work / f".{out.name}.partial"
        sheet.save(tmp, format="PNG")
        os.replace(tmp, out)
    return out, len(thumbs), withheld


def review(manifest: Path, out_root: Path, *, detector: FaceDetector | None = None) -> tuple[Path, int]:
    """Analyze a manifest's faces (or reuse the cache) and write its contact sheet under out_root/<id>/; raise
    AnonymityError, once the sheet is written, when the verify detector found a face in any of its frames."""
    from clipper.errors import AnonymityError, ClipperError
    from clipper.faces.cache import DetectionCache
    from clipper.render import prepare

    plan = prepare(manifest)
    if plan.faces is None:
        raise ClipperError(
            "this manifest opts out of face masking: there are no face tracks to review",
            where=str(manifest),
            hint="set anonymize.faces.mode to pixelate, solid or blur",
        )
    faces = analyze_faces(plan, DetectionCache(cache_dir(out_root)), detector=detector)
    sheet, count, withheld = contact_sheet(
        plan, faces, Path(out_root) / plan.manifest_id / f"{plan.manifest_id}.review.png"
    )
    if withheld:
        times = ", ".join(f"{float(f / plan.fps):.2f} s" for f in withheld[:12]) + (" …" if len(withheld) > 12 else "")
        raise AnonymityError(
            f"the verify detector found a face in {len(withheld)} frame(s) of the sheet, "
            f"at {times}: black on the sheet ({sheet}); a render whose gate looks at those frames stops there",
            where=str(manifest),
            hint="look at those times with `clipper preview --masks`; if a face shows, raise anonymize.faces.padding, "
            "use mode solid or CLIPPER_ANALYSIS_STRIDE=1; if it is not a person's face, cover it with a region",
        )
    return sheet, count

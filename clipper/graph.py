"""ffmpeg commands as data: pure functions from a RenderPlan to argv lists (built with ffmpeg-python)."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg

from clipper.captions.burn import BurnFiles
from clipper.plan import LogoPlan, RegionPlan, RenderPlan, SegmentPlan, Variant
from clipper.presets import (
    AUDIO_BITRATE,
    AUDIO_CHANNELS,
    AUDIO_RATE,
    GOP_SECONDS,
    TRUE_PEAK_DBTP,
)

# A region mask never shows detail finer than this many blocks across its shorter side (3: a line of text boxed
# tightly, 60 px letters in an 80 px box, kept its word shapes and digits at 5, measured by a QA sweep)…
MASK_BLOCKS_ACROSS = 3
# …and its blocks are never smaller than this, however small the region.
MASK_MIN_BLOCK_PX = 16
# A pixelated or blurred region patch is at least this big on each side (twice over); smaller ones are solid.
MIN_PATCH_PX = 4
# x264 quantizer offset for pad-blur's background bands (0 = as important as the picture, 1 = least).
PAD_BAND_QOFFSET = 0.3
# How often pad-blur's blurred background is refreshed (frames a second).
PAD_BLUR_FPS = 5
# At most this many frames are repeated at a source's end when its stream is shorter than its header says.
END_PAD_FRAMES = 3
# Each cut's sound fades in and out over this long (half a sine), so joins do not click.
JOIN_FADE_S = 0.005
# Read a little past each cut so trims, not the demuxer, decide the last frame and sample.
READ_MARGIN_S = 1.0


@dataclass(frozen=True)
class Loudness:
    """One loudness measurement of the clip's audio: integrated loudness (LUFS) and true peak (dBTP)."""

    input_i: float
    input_tp: float

    @property
    def silent(self) -> bool:
        """True when there is nothing to normalize (digital silence, or nothing above the absolute gate)."""
        # ebur128 reports -70.0 LUFS, the absolute gate itself, when every block was gated out.
        return not math.isfinite(self.input_i) or self.input_i <= ABSOLUTE_GATE_LUFS


# EBU R128 / BS.1770 metering: ffmpeg's ebur128 filter, true peak by 4x oversampling. It measures what loudnorm's
# analysis does at a seventh of the CPU (loudnorm resamples everything to 192 kHz first), and it is the meter
# the verify stage checks outputs with, so a clip is planned and checked by the same measure.
LOUDNESS_METER = {"peak": "true", "framelog": "quiet"}
LOUDNESS_METER_FILTER = "ebur128=" + ":".join(f"{k}={v}" for k, v in LOUDNESS_METER.items())  # for -af
ABSOLUTE_GATE_LUFS = -70.0
_METER_I = re.compile(r"^\s*I:\s+(-?[\d.]+|-inf) LUFS", re.M)
_METER_TP = re.compile(r"^\s*Peak:\s+(-?[\d.]+|-inf) dBFS", re.M)


def parse_loudness(stderr: str) -> Loudness:
    """The integrated loudness and true peak from the summary ffmpeg's ebur128 filter prints at its end."""
    summary = stderr[stderr.rfind("Summary:") :]
    i, tp = _METER_I.search(summary), _METER_TP.search(summary)
    if "Summary:" not in stderr or not i or not tp:
        raise ValueError("ffmpeg's ebur128 filter printed no summary")
    return Loudness(input_i=float(i.group(1)), input_tp=float(tp.group(1)))


@dataclass(frozen=True)
class LoudnessGain:
    """How the clip's audio is brought to target: a fixed gain, and a true-peak limiter when peaks need it."""

    gain_db: float
    limiter: bool
    measured: tuple[Loudness, ...]  # every pass: the source, then the result of each correction


# The limiter works at 4x the sample rate so that it catches inter-sample (true) peaks, and stops a
# little under the target so AAC encoding's ripple stays below it.
LIMITER_RATE = 4 * AUDIO_RATE
LIMITER_CEILING_DB = TRUE_PEAK_DBTP - 1.0


def _apply_gain(audio, gain: LoudnessGain):
    audio = audio.filter("volume", f"{gain.gain_db:.3f}dB", precision="double")
    if gain.limiter:
        audio = audio.filter("aresample", LIMITER_RATE).filter(
            "alimiter",
            limit=f"{10 ** (LIMITER_CEILING_DB / 20):.6f}",
            attack=1,
            release=60,
            level="disabled",
            latency=1,
        )
    return audio


@dataclass(frozen=True)
class EncodeSettings:
    """x264/AAC choices: publish quality by default, fastest for previews."""

    preset: str = "fast"
    crf: int = 20
    max_bitrate: int | None = None  # bits/s; a ceiling that keeps peaks (and capped files) in bounds

    @classmethod
    def for_variant(cls, v: Variant) -> EncodeSettings:
        """Settings for one variant: a quality target under a bitrate ceiling scaled to the frame size."""
        if v.preview:
            return cls(preset="superfast", crf=28)  # ultrafast drops CABAC: not High profile
        ceiling = int(12_000_000 * v.width * v.height / (1920 * 1080))
        if v.max_video_bitrate is not None:
            ceiling = min(ceiling, v.max_video_bitrate)
        return cls(max_bitrate=ceiling)

    def shrunk_to(self, measured_bytes: int, cap_bytes: int) -> EncodeSettings:
        """Settings for a re-encode after a file came out `measured_bytes` against a cap of `cap_bytes`."""
        assert self.max_bitrate is not None
        # Scale by the overshoot, then 10 % more: x264's rate control lands near, not under, its ceiling.
        return replace(self, max_bitrate=int(self.max_bitrate * cap_bytes / measured_bytes * 0.9))


_input_serial = itertools.count()


def _input(spec: str, **opts: object) -> ffmpeg.nodes.FilterableStream:
    """An ffmpeg input that is never merged with another.

    ffmpeg-python identifies nodes by their arguments, so two equal inputs (the same cut used twice,
    two silences of one length) would become one node feeding two places, which it rejects. A distinct,
    harmless queue size keeps each input its own.
    """
    return ffmpeg.input(spec, thread_queue_size=512 + next(_input_serial) % 4096, **opts)


def _segment_inputs(
    seg: SegmentPlan, *, video: bool, audio: bool = True, rate: int = AUDIO_RATE
) -> tuple[ffmpeg.nodes.FilterableStream, int]:
    """Open one cut's source, seeking half a frame before its first frame; return (input, lead samples at rate)."""
    # Seeking to the middle of the frame before the cut keeps the cut frame-exact whatever the
    # container's timestamp rounding: the first frame ffmpeg keeps is exactly `in_frame`.
    first_frame_s = seg.video_offset_s + seg.in_s
    seek = max(Fraction(0), first_frame_s - Fraction(1, 2) / seg.src_fps)
    duration = (seg.out_frame - seg.in_frame) / seg.src_fps
    opts: dict[str, object] = {"t": f"{float(duration + READ_MARGIN_S + (first_frame_s - seek)):.6f}"}
    if seek > 0:
        opts["ss"] = f"{float(seek):.6f}"
    if video:
        # A picture size change midway would rebuild the filter graph, restarting its frame counts (the cut came
        # out as frames of the wrong part, masks misplaced: QA sweep); instead, each frame is scaled to the size.
        opts["reinit_filter"] = 0
    if not video:
        opts["vn"] = None
    if not audio:
        opts["an"] = None
    stream = _input(str(seg.path), **opts)
    # Audio samples between the seek point and the first frame's time are dropped by count.
    lead_samples = round((first_frame_s - seek) * rate)
    return stream, lead_samples


def _segment_audio(
    stream: ffmpeg.nodes.FilterableStream | None,
    seg: SegmentPlan,
    lead: int,
    fps: Fraction,
    *,
    rate: int = AUDIO_RATE,
    layout: str = "stereo",
):
    if stream is None or not seg.has_audio:
        return _silence(seg.out_frames, fps, rate=rate, layout=layout)  # no audio: exact-length silence
    samples = round(Fraction(seg.out_frames) / fps * rate)
    # first_pts=0 pads with silence when the audio starts after the seek point, so counting samples
    # from the seek point stays true.
    a = stream.audio
    if seg.unnamed_channels > 2:  # ffmpeg takes an unnamed pair as stereo (and must: inverted_channels needs both)
        # ffmpeg downmixes only named layouts ("9 channels" fails): every channel in equal parts ('<' makes pan
        # scale the gains to sum 1; ffmpeg-python would escape an '=').
        mix = "+".join(f"c{i}" for i in range(seg.unnamed_channels))
        a = a.filter("pan", "|".join([layout] + [f"c{k}<{mix}" for k in range(2 if layout == "stereo" else 1)]))
    a = a.filter("aresample", rate, first_pts=0)
    a = a.filter("aformat", sample_fmts="fltp", sample_rates=rate, channel_layouts=layout)
    if lead:
        a = a.filter("atrim", start_sample=lead)
    a = a.filter("asetpts", "PTS-STARTPTS").filter("apad")
    a = a.filter("atrim", end_sample=samples).filter("asetpts", "PTS-STARTPTS")
    # A hard cut between two waveforms clicks: a few milliseconds of fade at each end of every cut.
    fade = min(samples // 2, max(1, round(JOIN_FADE_S * rate)))
    a = a.filter("afade", t="in", start_sample=0, nb_samples=fade, curve="hsin")
    return a.filter("afade", t="out", start_sample=samples - fade, nb_samples=fade, curve="hsin")


def _silence(frames: int, fps: Fraction, *, rate: int = AUDIO_RATE, layout: str = "stereo"):
    samples = round(Fraction(frames) / fps * rate)
    a = _input(f"anullsrc=r={rate}:cl={layout}", f="lavfi", t=f"{samples / rate + 0.1:.6f}")
    return a.filter("atrim", end_sample=samples).filter("asetpts", "PTS-STARTPTS")


def segment_sound_cmd(seg: SegmentPlan, fps: Fraction, rate: int) -> list[str]:
    """argv (without the binary) writing one cut's sound to stdout: stereo float32 (interleaved) at `rate`,
    exactly its length."""
    stream, lead = _segment_inputs(seg, video=False, rate=rate) if seg.has_audio else (None, 0)
    a = _segment_audio(stream, seg, lead, fps, rate=rate, layout="stereo")
    return ffmpeg.output(a, "-", f="f32le", acodec="pcm_f32le").compile(cmd="ffmpeg")[1:]


def region_pixels(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Return the pixel box (x, y, w, h) covering a fractional box, rounded outward (mask more, never less)."""
    fx, fy, fw, fh = box
    x0, y0 = min(width - 1, math.floor(fx * width)), min(height - 1, math.floor(fy * height))
    x1, y1 = min(width, math.ceil((fx + fw) * width)), min(height, math.ceil((fy + fh) * height))
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def mask_block_px(w: int, h: int) -> int:
    """Block size for a pixelated mask: at most MASK_BLOCKS_ACROSS blocks across, never below the floor."""
    return max(MASK_MIN_BLOCK_PX, math.ceil(min(w, h) / MASK_BLOCKS_ACROSS))


def _apply_region(v, region: RegionPlan, seg: SegmentPlan, width: int, height: int):
    """Mask one region over the frames of this cut it covers; a no-op when it covers none."""
    first = max(region.start_frame, seg.clip_start_frame) - seg.clip_start_frame
    last = min(region.end_frame, seg.clip_start_frame + seg.out_frames) - seg.clip_start_frame - 1
    if last < first:
        return v
    enable = f"between(n,{first},{last})"
    x, y, w, h = region_pixels(region.box, width, height)
    if region.mode == "solid" or min(w, h) < 2 * MIN_PATCH_PX:
        # Too small to pixelate (crop would round it to nothing): covered solid. Fail closed.
        return v.filter("drawbox", x=x, y=y, w=w, h=h, color="black", t="fill", enable=enable)
    split = v.filter_multi_output("split")
    main, copy = split.stream(0), split.stream(1)
    # crop and overlay place 4:2:0 pictures on even pixels only: a box at an odd x or of odd width lost its last
    # column or two to the rounding, and the original showed there (QA sweep). The patch is cut on even pixels
    # around the box, and the box is first filled black, so a pixel the patch does not reach shows black, never
    # the picture; an alpha channel in the source (which overlay would blend the patch by) shows black too.
    ex, ey = x - x % 2, y - y % 2
    ew, eh = min(width - ex, w + (x - ex) + 1) // 2 * 2, min(height - ey, h + (y - ey) + 1) // 2 * 2
    main = main.filter("drawbox", x=x, y=y, w=w, h=h, color="black", t="fill", enable=enable)
    patch = copy.filter("crop", ew, eh, ex, ey).filter("format", "yuv420p")
    x, y, w, h = ex, ey, ew, eh
    block = mask_block_px(w, h)
    if region.mode == "pixelate":
        patch = patch.filter("pixelize", width=block, height=block, mode="avg")
    else:  # blur: shrink to a few blocks across, then smooth back up — identity cannot survive it
        patch = patch.filter("scale", max(2, w // block), max(2, h // block), flags="area")
        patch = patch.filter("scale", w, h, flags="bicubic").filter("gblur", sigma=max(2, block / 3))
    # eof_action stays "repeat": were the mask branch ever to end first, the last mask keeps covering
    # (fail closed); "pass" would let the picture through unmasked.
    return ffmpeg.overlay(main, patch, x=x, y=y, enable=enable, eof_action="repeat")


def _reframe(v, mode: str, src_w: int, src_h: int, out_w: int, out_h: int, fps: Fraction):
    """Fit a frame of the source's shape into the platform's frame."""
    if mode == "center":
        v = v.filter("scale", out_w, out_h, force_original_aspect_ratio="increase", flags="bicubic")
        return v.filter("crop", out_w, out_h)
    fg_needed = Fraction(src_w, src_h) != Fraction(out_w, out_h)
    if mode == "letterbox" or not fg_needed:
        v = v.filter(
            "scale",
            out_w,
            out_h,
            force_original_aspect_ratio="decrease",
            force_divisible_by=2,
            flags="bicubic",
        )
        return v.filter("pad", out_w, out_h, "(ow-iw)/2", "(oh-ih)/2", color="black")
    # pad-blur: the whole picture over a blurred, enlarged copy of itself. The copy is made at 1/8 size
    # and PAD_BLUR_FPS frames a second, blurred, scaled up, then repeated back to the clip's rate: under
    # that much blur a step 5 times a second is invisible, and it costs a fifth of the filtering and
    # lets x264 skip most of the bands. The picture (the overlay) decides the clip's length: the
    # background is padded by cloning so it can never end first.
    split = v.filter_multi_output("split")
    fg, bg = split.stream(0), split.stream(1)
    small_w, small_h = max(2, out_w // 8 // 2 * 2), max(2, out_h // 8 // 2 * 2)
    # eof_action=pass: a cut of one frame (a one-frame source) still gets its background; rounding alone made
    # none, and the overlay then ended the picture before it began (found by a QA sweep).
    bg = bg.filter("fps", fps=PAD_BLUR_FPS, round="down", eof_action="pass")
    bg = bg.filter("scale", small_w, small_h, force_original_aspect_ratio="increase", flags="area")
    bg = bg.filter("crop", small_w, small_h).filter("gblur", sigma=6)
    bg = bg.filter("eq", brightness=-0.08).filter("scale", out_w, out_h, flags="bilinear")
    bg = bg.filter("fps", fps=str(fps)).filter("tpad", stop_mode="clone", stop_duration=2)
    fg = fg.filter("scale", out_w, out_h, force_original_aspect_ratio="decrease", force_divisible_by=2, flags="bicubic")
    v = ffmpeg.overlay(bg, fg, x="(W-w)/2", y="(H-h)/2", shortest=1)
    # The blurred bands are moving picture that x264 would spend a quarter more bits on; tell it they
    # matter less (measured: +24 % size over letterbox without, +14 % with, no visible difference).
    for x, y, w, h in pad_bands(src_w, src_h, out_w, out_h):
        v = v.filter("addroi", x=x, y=y, w=w, h=h, qoffset=PAD_BAND_QOFFSET)
    return v


def pad_bands(src_w: int, src_h: int, out_w: int, out_h: int) -> list[tuple[int, int, int, int]]:
    """The two bands (x, y, w, h) a fitted picture leaves uncovered in the output frame."""
    scale = min(Fraction(out_w, src_w), Fraction(out_h, src_h))
    fg_w, fg_h = int(src_w * scale) // 2 * 2, int(src_h * scale) // 2 * 2
    if fg_w < out_w - 1:
        band = (out_w - fg_w) // 2
        return [(0, 0, band, out_h), (out_w - band, 0, band, out_h)] if band > 0 else []
    band = (out_h - fg_h) // 2
    return [(0, 0, out_w, band), (0, out_h - band, out_w, band)] if band > 0 else []


def _segment_picture(stream, seg: SegmentPlan, plan: RenderPlan):
    """One cut's frames at the clip's rate, square pixels, full resolution: what analysis and masks see."""
    v = stream.video
    if seg.interlace:
        # An interlaced frame holds two moments, a line apart: shown as it is, anything moving is combed, and
        # scaling blends the two. Each frame becomes one progressive frame (bwdif, frame for frame: counts and cut
        # points unchanged) before anything looks at it, so masks are placed on, and drawn over, the same picture.
        v = v.filter("bwdif", **deinterlace_options(seg.interlace))
    v = v.filter("setpts", "PTS-STARTPTS")
    # Constant rate before anything is counted: variable-rate sources get frames repeated or dropped here.
    v = v.filter("fps", fps=str(plan.fps))
    # A container's duration can promise a frame or two more than its stream delivers (MKV rounds it): a cut
    # to the very end would then come out short. The last frame is repeated a few times, the trim decides.
    v = v.filter("tpad", stop_mode="clone", stop=END_PAD_FRAMES)
    v = v.filter("trim", end_frame=seg.out_frames).filter("setpts", "PTS-STARTPTS")
    if seg.hdr:
        v = _tone_mapped(v, seg)  # BT.709 from here
    # Every frame at the probed display size: square pixels, and a stream whose picture size changes midway (a
    # video call, a DVR recording) keeps the size its masks were placed for (the input does not rebuild this
    # graph then: reinit_filter 0). A no-op for frames already that size. And BT.709, what every output is (and
    # says it is): an SD picture's BT.601 colours would shift on players (a red 200,30,30 shown as 213,46,28); a
    # no-op for BT.709 pictures; RGB ones are converted to YUV later, with BT.709's matrix too.
    v = v.filter(
        "scale",
        seg.display_width,
        seg.display_height,
        flags="bicubic",
        in_color_matrix="bt709" if seg.hdr else (seg.matrix or "auto"),
        out_color_matrix="bt709",
    )
    return v.filter("setsar", 1)


# HDR to SDR (a phone's HLG, HDR10's PQ): shown as it is, an HDR picture comes out grey and washed out on every
# SDR screen. Linear light (100 nits as 1.0), BT.709 primaries, Hable's curve for highlights (desaturating
# nothing), then BT.709's transfer and matrix, limited range.
def _tone_mapped(v, seg: SegmentPlan):
    transfer_in = {"pq": "smpte2084", "hlg": "arib-std-b67"}[seg.hdr]
    matrix_in = {"bt2020": "2020_ncl", "bt709": "709", "smpte170m": "170m", "bt470": "470bg"}.get(
        seg.matrix, "2020_ncl"
    )
    v = v.filter("zscale", tin=transfer_in, pin=seg.primaries or "bt2020", min=matrix_in, t="linear", npl=100)
    v = v.filter("format", "gbrpf32le").filter("zscale", p="bt709")
    v = v.filter("tonemap", tonemap="hable", desat=0)
    return v.filter("zscale", t="bt709", m="bt709", r="tv").filter("format", "yuv420p")


def deinterlace_options(interlace: str) -> dict[str, str]:
    """bwdif's options for a source scanned as MediaFacts.interlace says (frame for frame, never field rate)."""
    if interlace == "flagged":
        # The decoder marks each interlaced frame and its field order; progressive frames among them pass as they are.
        return {"mode": "send_frame", "parity": "auto", "deint": "interlaced"}
    if interlace in ("tff", "bff"):
        return {"mode": "send_frame", "parity": interlace, "deint": "all"}
    raise ValueError(f"unknown interlace {interlace!r}")


def _masked_regions(v, seg: SegmentPlan, plan: RenderPlan):
    # Masks on the full-resolution picture, before reframing, so every platform inherits them.
    # Keyframed (moving) regions are drawn in the masking pipe instead (render.py), frame by frame.
    for region in plan.regions:
        if not region.keyframes:
            v = _apply_region(v, region, seg, seg.display_width, seg.display_height)
    return v


def _segment_video(stream, seg: SegmentPlan, plan: RenderPlan, variant: Variant):
    v = _masked_regions(_segment_picture(stream, seg, plan), seg, plan)
    v = _reframe(v, plan.reframe, seg.display_width, seg.display_height, variant.width, variant.height, plan.fps)
    return _to_output_format(v)


def analysis_size(width: int, height: int, max_width: int | None) -> tuple[int, int]:
    """Frame size the face detector sees: the picture scaled down to max_width (aspect kept), never up."""
    if not max_width or width <= max_width:
        return width, height
    return max_width, max(2, round(height * max_width / width))


def analysis_cmd(plan: RenderPlan, seg: SegmentPlan, max_width: int | None) -> tuple[list[str], int, int]:
    """argv writing one cut's frames as raw RGB to stdout, frame for frame the ones rendered; and their size."""
    stream, _ = _segment_inputs(seg, video=True, audio=False)
    v = _segment_picture(stream, seg, plan)
    w, h = analysis_size(seg.display_width, seg.display_height, max_width)
    if (w, h) != (seg.display_width, seg.display_height):
        # Scaled in planar YUV, then converted to RGB unscaled: two of swscale's fast paths. Asked for at once,
        # the scaling conversion to packed RGB takes a slow path: 2.9 against 1.9 s of CPU for 30 s of 720p.
        v = v.filter("scale", w, h, flags="area").filter("format", "yuv420p")
    v = v.filter("format", "rgb24")
    args = ffmpeg.output(v, "pipe:1", f="rawvideo", pix_fmt="rgb24").compile(cmd="ffmpeg")[1:]
    return ["-loglevel", "error", *args], w, h


@dataclass(frozen=True)
class PipeLayout:
    """Raw frames between decoder and encoder: every cut's picture at the top left of one canvas."""

    canvas: tuple[int, int]
    pictures: tuple[tuple[int, int], ...]  # (width, height) per segment

    @classmethod
    def for_plan(cls, plan: RenderPlan, pictures: list[tuple[int, int]] | None = None) -> PipeLayout:
        """The layout for a plan's cuts at full resolution, or at the given per-cut picture sizes."""
        sizes = pictures or [(s.display_width, s.display_height) for s in plan.segments]
        w, h = max(p[0] for p in sizes), max(p[1] for p in sizes)
        return cls(canvas=(w + w % 2, h + h % 2), pictures=tuple(sizes))


def decode_cmd(plan: RenderPlan, layout: PipeLayout) -> list[str]:
    """argv writing the clip's cuts as raw yuv420p (limited range) to stdout, regions masked, at full size."""
    cw, ch = layout.canvas
    parts = []
    for seg in plan.segments:
        stream, _ = _segment_inputs(seg, video=True, audio=False)
        v = _masked_regions(_segment_picture(stream, seg, plan), seg, plan)
        v = v.filter("scale", out_range="tv", out_color_matrix="bt709").filter("format", "yuv420p")
        if (seg.display_width, seg.display_height) != (cw, ch):
            v = v.filter("pad", cw, ch, 0, 0, color="black")
        parts.append(v)
    v = parts[0] if len(parts) == 1 else ffmpeg.concat(*parts, v=1, a=0)
    args = ffmpeg.output(v, "pipe:1", f="rawvideo", pix_fmt="yuv420p").compile(cmd="ffmpeg")[1:]
    return ["-loglevel", "error", *args]


def _piped_video(plan: RenderPlan, variant: Variant, layout: PipeLayout, reframe: str):
    """The clip's (masked) cuts read back from stdin, each cut taken off the canvas and reframed."""
    cw, ch = layout.canvas
    src = _input("pipe:0", f="rawvideo", pix_fmt="yuv420p", s=f"{cw}x{ch}", framerate=str(plan.fps))
    # Raw frames carry no colour: they are the decoder's BT.709 limited-range pictures (_segment_picture).
    v = src.video.filter("setparams", **BT709)
    n = len(plan.segments)
    splits = v.filter_multi_output("split", n) if n > 1 else None
    parts = []
    for i, (seg, (pw, ph)) in enumerate(zip(plan.segments, layout.pictures, strict=True)):
        part = splits.stream(i) if splits is not None else v
        if n > 1:
            first = seg.clip_start_frame
            part = part.filter("trim", start_frame=first, end_frame=first + seg.out_frames)
            part = part.filter("setpts", "PTS-STARTPTS")
        if (pw, ph) != (cw, ch):
            part = part.filter("crop", pw, ph, 0, 0)
        part = _reframe(part.filter("setsar", 1), reframe, pw, ph, variant.width, variant.height, plan.fps)
        parts.append(_to_output_format(part))
    return parts[0] if n == 1 else ffmpeg.concat(*parts, v=1, a=0)


# What every output is, and is tagged as: BT.709 primaries, transfer and matrix, limited range.
BT709 = {"color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709", "range": "tv"}


def _to_output_format(v):
    """Square pixels, 4:2:0, BT.709, limited (TV) range: full-range sources (JPEG-style yuvj, GIF, PNG) are
    converted, since players and platforms assume limited range for H.264 unless told otherwise; RGB pictures
    (cards) are converted with BT.709's matrix (scale's default is BT.601: a red card came out orange)."""
    v = v.filter("setsar", 1).filter("scale", out_range="tv", out_color_matrix="bt709").filter("format", "yuv420p")
    return v.filter("setparams", **BT709)


def _card_video(png: Path, frames: int, fps: Fraction):
    v = _input(str(png), loop=1, framerate=str(fps), t=f"{float(frames / fps) + 1:.6f}")
    v = v.filter("trim", end_frame=frames).filter("setpts", "PTS-STARTPTS")
    return _to_output_format(v)


def _logo(v, logo: LogoPlan, out_w: int, out_h: int):
    lw = max(2, round(logo.width * out_w) // 2 * 2)
    m = round(logo.margin * min(out_w, out_h))
    img = _input(str(logo.path), loop=1).filter("scale", lw, -1, flags="bicubic").filter("format", "rgba")
    if logo.opacity < 1:
        img = img.filter("colorchannelmixer", aa=logo.opacity)
    # Converted here, BT.709 and limited range like the clip: left to the overlay, its conversion shifted the whole
    # picture by more than a level.
    img = img.filter("scale", out_range="tv", out_color_matrix="bt709").filter("format", "yuva420p")
    x = f"{m}" if logo.corner.endswith("left") else f"W-w-{m}"
    y = f"{m}" if logo.corner.startswith("top") else f"H-h-{m}"
    return ffmpeg.overlay(v, img, x=x, y=y, shortest=1, format="auto")


def _clip_audio(plan: RenderPlan, inputs: list[tuple[object, int]], sound: Path | None = None):
    """The clip's sound: the cuts' audio (or the rewritten `sound` of the whole clip), between card silences."""
    parts = []
    if plan.intro:
        parts.append(_silence(plan.intro.frames, plan.fps))
    if sound is not None:
        samples = round(Fraction(plan.clip_frames) / plan.fps * AUDIO_RATE)
        a = _input(str(sound)).audio.filter("aresample", AUDIO_RATE)
        a = a.filter("aformat", sample_fmts="fltp", sample_rates=AUDIO_RATE, channel_layouts="stereo")
        parts.append(a.filter("apad").filter("atrim", end_sample=samples).filter("asetpts", "PTS-STARTPTS"))
    for seg, (stream, lead) in zip(plan.segments, inputs, strict=True):
        if sound is None:
            parts.append(_segment_audio(stream, seg, lead, plan.fps))
    if plan.outro:
        parts.append(_silence(plan.outro.frames, plan.fps))
    return parts[0] if len(parts) == 1 else ffmpeg.concat(*parts, v=0, a=1)


def _audio_inputs(plan: RenderPlan, sound: Path | None) -> list[tuple[object, int]]:
    if sound is not None:
        return [(None, 0) for _ in plan.segments]  # the rewritten sound replaces every cut's audio
    return [_segment_inputs(seg, video=False) if seg.has_audio else (None, 0) for seg in plan.segments]


def measure_cmd(plan: RenderPlan, gain: LoudnessGain | None = None, sound: Path | None = None) -> list[str]:
    """argv (without the binary) that measures the clip's loudness, after `gain` if given; writes nothing."""
    audio = _clip_audio(plan, _audio_inputs(plan, sound), sound)
    if gain is not None:
        audio = _apply_gain(audio, gain).filter("aresample", AUDIO_RATE)
    audio = audio.filter("ebur128", **LOUDNESS_METER)
    return ffmpeg.output(audio, "-", f="null").compile(cmd="ffmpeg")[1:]


def render_cmd(
    plan: RenderPlan,
    variant: Variant,
    out_path: Path,
    *,
    cards: dict[str, Path],
    gain: LoudnessGain | None,
    settings: EncodeSettings,
    piped: PipeLayout | None = None,
    reframe: str | None = None,
    captions: BurnFiles | None = None,
    sound: Path | None = None,
) -> list[str]:
    """argv (without the binary) that renders one variant to out_path.

    With `piped`, the picture of the cuts is read as raw frames from stdin (masked on the way, see
    render.py) and only the sound is read from the sources. With `sound`, the clip's sound is that file (the
    voice changed, bleeps applied) and no audio is read from the sources at all.
    """
    if piped is None:
        if any(r.keyframes for r in plan.regions) or plan.faces is not None:
            # Fail closed: moving regions and faces are masked only in the pipe; never render without it.
            raise ValueError("faces and moving regions are masked in the pipe: render_cmd needs `piped`")
        inputs = [_segment_inputs(seg, video=True, audio=sound is None) for seg in plan.segments]
        parts_v = [
            _segment_video(stream, seg, plan, variant) for seg, (stream, _) in zip(plan.segments, inputs, strict=True)
        ]
        clip_v = parts_v[0] if len(parts_v) == 1 else ffmpeg.concat(*parts_v, v=1, a=0)
    else:
        inputs = _audio_inputs(plan, sound)  # type: ignore[assignment]
        # `reframe` overrides the plan's: a face-following crop arrives already cut to the platform's shape
        # ("center" then only scales it), and a face reframe that falls back uses pad-blur.
        mode = reframe or plan.reframe
        if mode == "face":
            raise ValueError("reframe face is done in the pipe: pass reframe='center' or the fallback")
        clip_v = _piped_video(plan, variant, piped, mode)
    if plan.logo:
        clip_v = _logo(clip_v, plan.logo, variant.width, variant.height)
    video_parts = []
    if plan.intro:
        video_parts.append(_card_video(cards["intro"], plan.intro.frames, plan.fps))
    video_parts.append(clip_v)
    if plan.outro:
        video_parts.append(_card_video(cards["outro"], plan.outro.frames, plan.fps))
    video = video_parts[0] if len(video_parts) == 1 else ffmpeg.concat(*video_parts, v=1, a=0)
    if captions is not None:
        # Last, over the finished picture (cards included: cue times count from the output's first frame).
        video = video.filter("subtitles", filename=str(captions.ass), fontsdir=str(captions.fonts_dir))

    audio = _clip_audio(
        plan,
        [
            (s if seg.has_audio and sound is None else None, lead)
            for seg, (s, lead) in zip(plan.segments, inputs, strict=True)
        ],
        sound,
    )
    if gain is not None:  # None: the clip is silent
        audio = _apply_gain(audio, gain)
    audio = audio.filter("aresample", AUDIO_RATE).filter(
        "aformat", sample_fmts="fltp", sample_rates=AUDIO_RATE, channel_layouts="stereo"
    )
    gop = max(1, round(plan.fps * GOP_SECONDS))
    opts: dict[str, object] = {
        "c:v": "libx264",
        "profile:v": "high",
        "pix_fmt": "yuv420p",
        "preset": settings.preset,
        "crf": settings.crf,
        "g": gop,
        "keyint_min": max(1, gop // 2),
        "flags:v": "+cgop+bitexact",
        "x264-params": "open-gop=0",
        "fps_mode": "cfr",
        "r": str(plan.fps),
        "c:a": "aac",
        "b:a": AUDIO_BITRATE,
        "ar": AUDIO_RATE,
        "ac": AUDIO_CHANNELS,
        "movflags": "+faststart",
        # Said, not left to players' guesses (which differ by picture size).
        "color_primaries": "bt709",
        "color_trc": "bt709",
        "colorspace": "bt709",
        "color_range": "tv",
        # Nothing of the source travels: no global or stream tags, no chapters, no encoder names,
        # and no x264 SEI (it spells out the encoder build and every setting).
        "map_metadata": -1,
        "map_chapters": -1,
        "fflags": "+bitexact",
        "flags:a": "+bitexact",
        "metadata:s:v:0": "encoder=",
        "metadata:s:a:0": "encoder=",
        "bsf:v": "filter_units=remove_types=6",
        "f": "mp4",
    }
    if settings.max_bitrate:
        opts["maxrate"] = settings.max_bitrate
        opts["bufsize"] = settings.max_bitrate * 2
    return ffmpeg.output(video, audio, str(out_path), **opts).compile(cmd="ffmpeg")[1:]

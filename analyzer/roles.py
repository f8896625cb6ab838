"""Mono recordings: split one channel into turns of two speakers.

There is no speaker model on this machine, so the voices are told apart by their sound: each
stretch of speech (split at pauses) gets a spectral and pitch fingerprint, the stretches are
clustered into two voices, and consecutive stretches of one voice are joined into turns. Which
voice is the manager is decided later by the script (the side that says the script), see
:func:`orient_roles`. Roles are always marked as inferred.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from analyzer.audio import SAMPLE_RATE
from analyzer.results import Transcript, Utterance

if TYPE_CHECKING:
    from analyzer.transcription import _Seg

_N_FFT = 512
_HOP = 160
_BANDS = 24


def _mel_filters(n_bands: int) -> np.ndarray:
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + f / 700)

    lo, hi = hz_to_mel(np.array(250.0)), hz_to_mel(np.array(3600.0))
    mels = np.linspace(lo, hi, n_bands + 2)
    hz = 700 * (10 ** (mels / 2595) - 1)
    bins = np.floor((_N_FFT + 1) * hz / SAMPLE_RATE).astype(int)
    fb = np.zeros((n_bands, _N_FFT // 2 + 1))
    for i in range(n_bands):
        a, b, c = bins[i], bins[i + 1], bins[i + 2]
        fb[i, a:b] = (np.arange(a, b) - a) / max(b - a, 1)
        fb[i, b:c] = (c - np.arange(b, c)) / max(c - b, 1)
    return fb


_FB = _mel_filters(_BANDS)


def _fingerprint(x: np.ndarray) -> np.ndarray | None:
    if x.size < _N_FFT * 4:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x, _N_FFT)[::_HOP] * np.hanning(_N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    voiced = energy > np.percentile(energy, 40)
    if voiced.sum() < 5:
        return None
    logmel = np.log(power[voiced] @ _FB.T + 1e-9)
    cep = logmel - logmel.mean(axis=1, keepdims=True)  # level-independent spectral shape
    # pitch: autocorrelation peak between 70 and 400 Hz on the voiced frames
    ac = np.fft.irfft(power[voiced], axis=1)[:, : SAMPLE_RATE // 70]
    lo = SAMPLE_RATE // 400
    lag = lo + np.argmax(ac[:, lo:], axis=1)
    f0 = np.log(SAMPLE_RATE / np.median(lag))
    return np.concatenate([cep.mean(axis=0), cep.std(axis=0) * 0.5, [f0 * 4.0]])


def _two_means(feats: np.ndarray) -> np.ndarray:
    z = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-6)
    d0 = np.linalg.norm(z - z.mean(axis=0), axis=1)
    c = np.stack([z[np.argmax(d0)], z[np.argmax(np.linalg.norm(z - z[np.argmax(d0)], axis=1))]])
    labels = np.zeros(len(z), dtype=int)
    for _ in range(50):
        new = np.argmin(np.linalg.norm(z[:, None, :] - c[None], axis=2), axis=1)
        if (new == labels).all() and _ > 0:
            break
        labels = new
        for k in (0, 1):
            if (labels == k).any():
                c[k] = z[labels == k].mean(axis=0)
    return labels


def split_mono(units: list[_Seg], x: np.ndarray, language: str) -> list[Utterance]:
    """Label each stretch of speech with one of two voices and join them into turns."""
    if not units:
        return []
    feats = [_fingerprint(x[int(u.start * SAMPLE_RATE) : int(u.end * SAMPLE_RATE)]) for u in units]
    ok = [i for i, f in enumerate(feats) if f is not None]
    labels = np.zeros(len(units), dtype=int)
    if len(ok) >= 2:
        lab = _two_means(np.stack([feats[i] for i in ok]))
        for i, lbl in zip(ok, lab, strict=True):
            labels[i] = lbl
        # too short to fingerprint: same voice as the nearest neighbour in time
        for i in range(len(units)):
            if feats[i] is None:
                j = min(ok, key=lambda k: abs(k - i))
                labels[i] = labels[j]
    roles = ("manager", "client")
    out: list[Utterance] = []
    for u, lbl in zip(units, labels, strict=True):
        speaker = roles[int(lbl)]
        conf = float(np.mean([w.probability for w in u.words])) if u.words else None
        if out and out[-1].speaker == speaker and u.start - (out[-1].end or 0) < 1.5:
            prev = out[-1]
            words = prev.words + u.words
            out[-1] = Utterance(
                speaker,  # type: ignore[arg-type]
                f"{prev.text} {u.text}".strip(),
                prev.start,
                u.end,
                words,
                float(np.mean([w.probability for w in words])) if words else conf,
            )
        else:
            out.append(Utterance(speaker, u.text, u.start, u.end, u.words, conf))  # type: ignore[arg-type]
    return out


def swap_roles(transcript: Transcript) -> Transcript:
    flip = {"manager": "client", "client": "manager"}
    return replace(
        transcript,
        utterances=tuple(replace(u, speaker=flip[u.speaker]) for u in transcript.utterances),  # type: ignore[arg-type]
    )


def orient_roles(transcript: Transcript, evidence: Callable[[Transcript], float]) -> Transcript:
    """Of the two ways to assign roles, keep the one whose manager says more of the script."""
    if not transcript.roles_inferred:
        return transcript
    swapped = swap_roles(transcript)
    return swapped if evidence(swapped) > evidence(transcript) else transcript

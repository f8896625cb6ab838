"""Mono recordings: split one channel into turns of two speakers.

Words are told apart by the voice (CAM++ speaker embeddings, :mod:`analyzer.voices`). Without the
speaker model, or when it hears one voice, sentences are told apart by the pitch of the voice
(two clusters); when the two voices are too close in pitch, by what is said: script phrasings
and questions to the other side are the manager's, objections and short answers the client's. Which
voice is the manager is decided later by the script (the side that says the script), see
:func:`orient_roles`. Roles are always marked as inferred.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from analyzer.audio import SAMPLE_RATE
from analyzer.results import Transcript, Utterance
from analyzer.segments import Segment

_PITCH_GAP = 4.0
"""How far apart (in pooled standard deviations) the two pitch clusters must be to be trusted as
two voices; closer than this, the words decide (see benchmarks/mono.py)."""


def _two_means(feats: np.ndarray) -> np.ndarray:
    z = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-6)
    d0 = np.linalg.norm(z - z.mean(axis=0), axis=1)
    c = np.stack([z[np.argmax(d0)], z[np.argmax(np.linalg.norm(z - z[np.argmax(d0)], axis=1))]])
    labels = np.zeros(len(z), dtype=int)
    for it in range(50):
        new = np.argmin(np.linalg.norm(z[:, None, :] - c[None], axis=2), axis=1)
        if it and (new == labels).all():
            break
        labels = new
        for k in (0, 1):
            if (labels == k).any():
                c[k] = z[labels == k].mean(axis=0)
    return labels


def _pitch_track(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitch by subharmonic summation (works on telephone audio, which has no fundamental):
    (frame times s, f0 Hz, speech mask), 20 ms hop."""
    frame, hop, nfft = 640, 320, 4096
    if x.size < frame:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    fr = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop] * np.hanning(frame)
    mag = np.abs(np.fft.rfft(fr, n=nfft, axis=1))
    energy = 10 * np.log10((fr**2).sum(axis=1) + 1e-12)
    cands = np.arange(70.0, 320.0, 2.0)
    score = np.zeros((mag.shape[0], cands.size))
    for k in range(1, 16):
        ok = cands * k < 3500
        idx = np.where(ok, np.round(cands * k * nfft / SAMPLE_RATE).astype(int), 0)
        score += (0.86 ** (k - 1)) * mag[:, idx] * ok
    f0 = cands[np.argmax(score, axis=1)]
    speech = energy > max(np.percentile(energy, 20) + 10.0, energy.max() - 50.0)
    times = (np.arange(f0.size) * hop + frame / 2) / SAMPLE_RATE
    return times, f0, speech


def _sentences(units: list[Segment]) -> list[list]:
    """Words grouped into sentences: cut at . ? ! and at pauses over 0.5 s."""
    out: list[list] = []
    cur: list = []
    for w in (w for u in units for w in u.words):
        if cur and w.start - cur[-1].end > 0.5:
            out.append(cur)
            cur = []
        cur.append(w)
        if w.text.rstrip().endswith((".", "?", "!")):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def split_mono(
    units: list[Segment], x: np.ndarray, language: str, *, content: Callable[[str], float] | None = None,
    by_voice: bool = True,
) -> list[Utterance]:
    """Split one channel into the two speakers' turns.

    By the voice first (:mod:`analyzer.voices`): every word goes to the voice its time leans to, and a
    turn ends where the voice changes, also inside a sentence the recogniser ran together. When
    there is no speaker model or only one voice is heard, each sentence gets the median pitch of its speech; the sentences are clustered into a lower
    and a higher voice. When the two voices are too close to tell apart, the words decide
    instead: ``content(text)`` > 0 means manager-like (script phrasings, questions to the
    client), < 0 client-like, 0 unknown (then the sentence continues the previous turn).
    """
    sentences = _sentences(units)
    if not sentences:
        return [Utterance("manager", u.text, u.start, u.end, u.words, None) for u in units if u.text]
    if by_voice:
        by_words = _split_by_voice(sentences, x)
        if by_words is not None:
            return by_words
    times, f0, speech = _pitch_track(x)
    pitch = []
    for sent in sentences:
        m = (times >= sent[0].start) & (times <= sent[-1].end) & speech
        pitch.append(float(np.median(np.log(f0[m]))) if m.sum() >= 3 else np.nan)
    p = np.array(pitch)
    labels = np.full(len(sentences), -1)
    known = ~np.isnan(p)
    separated = False
    if known.sum() >= 4:
        lab = _two_means(p[known][:, None])
        a, b = p[known][lab == 0], p[known][lab == 1]
        if a.size >= 2 and b.size >= 2:
            gap = abs(a.mean() - b.mean()) / (np.sqrt((a.var() + b.var()) / 2) + 1e-6)
            separated = gap >= _PITCH_GAP
        if separated:
            labels[known] = lab
    if not separated and content is not None:
        # 0: manager, 1: client, by what is said
        for i, sent in enumerate(sentences):
            c = content(" ".join(w.text for w in sent))
            labels[i] = 0 if c > 0 else (1 if c < 0 else -1)
    for i in range(len(labels)):  # unknown: continues the previous turn
        if labels[i] < 0:
            labels[i] = labels[i - 1] if i else 0
    roles = ("manager", "client")
    out: list[Utterance] = []
    for sent, lbl in zip(sentences, labels, strict=True):
        speaker = roles[int(lbl)]
        if out and out[-1].speaker == speaker and sent[0].start - (out[-1].end or 0.0) < 1.5:
            words = list(out[-1].words) + list(sent)
            out[-1] = _utterance(speaker, words)
        else:
            out.append(_utterance(speaker, list(sent)))
    return out


_MIN_RUN = 2
"""Fewer words than this in a row given to the other voice, inside one sentence, stay with the
sentence's voice (a window straddling a turn change blurs a word or two, not a whole reply)."""


def _split_by_voice(sentences: list[list], x: np.ndarray) -> list[Utterance] | None:
    from analyzer.voices import word_voices

    words = [w for sent in sentences for w in sent]
    voices = word_voices(x, [(w.start, w.end) for w in words])
    if voices is None:
        return None
    labels = voices.labels.copy()
    # a run of one word against its neighbours on both sides within a sentence is noise
    k = 0
    for sent in sentences:
        lab = labels[k:k + len(sent)]
        i = 0
        while i < len(lab):
            j = i
            while j < len(lab) and lab[j] == lab[i]:
                j += 1
            if j - i < _MIN_RUN and 0 < i and j < len(lab) and lab[i - 1] == lab[j]:
                lab[i:j] = lab[j]
            i = j
        k += len(sent)
    roles = ("manager", "client")
    out: list[Utterance] = []
    run: list = []
    for w, lbl in zip(words, labels, strict=True):
        if run and (lbl != run[-1][1] or w.start - run[-1][0].end >= 1.5):
            out.append(_utterance(roles[run[0][1]], [r[0] for r in run]))
            run = []
        run.append((w, int(lbl)))
    if run:
        out.append(_utterance(roles[run[0][1]], [r[0] for r in run]))
    return out


def _utterance(speaker: str, words: list) -> Utterance:
    text = " ".join(w.text for w in words).strip()
    conf = float(np.mean([w.probability for w in words]))
    return Utterance(speaker, text, words[0].start, words[-1].end, tuple(words), conf)  # type: ignore[arg-type]


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

"""Speech recognition with faster-whisper, turned into a call timeline with speaker roles.

Stereo: each channel is transcribed on its own and the utterances are merged into one timeline;
which channel is the manager is a setting. Mono: transcribed once, split into turns and the roles
are inferred (see :mod:`analyzer.roles`).

Whisper's known failure modes on calls are guarded against: text "heard" on silence or hold
music, stock subtitle phrases, repetition loops, and the other side's voice leaking into a
channel. Such text is dropped and listed in the transcript's warnings.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection, Iterable

import numpy as np

from analyzer.audio import SAMPLE_RATE, Audio, level_dbfs
from analyzer.errors import ModelNotFoundError
from analyzer.model import HOW_TO, resolve_model
from analyzer.results import Transcript, Utterance, Word
from analyzer.roles import split_mono
from analyzer.segments import Segment
from analyzer.settings import AnalyzerSettings, get_settings

log = logging.getLogger(__name__)

# Phrases Whisper is known to produce on silence, music or noise (learnt from subtitle data).
_HALLUCINATIONS = re.compile(
    r"(субтитр|продолжение следует|спасибо за просмотр|подписывайтесь на канал|dimatorzok|"
    r"редактор субтитров|корректор|thanks? (you )?for watching|subtitles by|amara\.org|"
    r"like and subscribe|please subscribe|www\.|\.com\b|ставьте лайк)",
    re.IGNORECASE,
)
_CROSSTALK_DB = 12.0
"""A stereo utterance this many dB quieter than the other channel at the same time is leakage."""

WHISPER_LANGUAGES = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "en",
    "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy", "id", "is",
    "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn",
    "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk",
    "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz",
    "vi", "yi", "yo", "zh", "yue",
)
"""The language codes a multilingual Whisper model knows. faster-whisper answers them only from a
loaded model (``WhisperModel.supported_languages``), which takes seconds; an option is checked with
this list instead, and tests/test_transcription.py compares the two."""


class Transcriber:
    """Holds one loaded Whisper model; safe to reuse for many calls (one call at a time)."""

    def __init__(self, settings: AnalyzerSettings | None = None, *, model: object | None = None):
        self.settings = settings or get_settings()
        self._model = model
        self._lock = threading.Lock()

    @property
    def model(self):  # noqa: ANN201 - faster_whisper.WhisperModel, imported lazily
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):  # noqa: ANN202
        from faster_whisper import WhisperModel

        s = self.settings
        name = resolve_model(s.model, cache_dir=s.model_cache_dir, allow_download=s.allow_download)
        device = s.device
        compute = s.compute_type
        if compute == "default":
            compute = "float16" if device == "cuda" else "int8"
        try:
            return WhisperModel(
                name,
                device=device,
                compute_type=compute,
                cpu_threads=s.cpu_threads,
                download_root=str(s.model_cache_dir),
                local_files_only=not s.allow_download,
            )
        except Exception as exc:  # noqa: BLE001 - ctranslate2/hub raise many types
            raise ModelNotFoundError(f"cannot load Whisper model {s.model!r} on {device}/{compute}: {exc}. {HOW_TO}") from None

    # -- public --------------------------------------------------------------------------------
    def detect_language(self, audio: Audio, *, manager_channel: str | None = None) -> str:
        return self.detect_language_among(audio, None, manager_channel=manager_channel)[0]

    def detect_language_among(
        self, audio: Audio, candidates: Collection[str] | None, *, manager_channel: str | None = None
    ) -> tuple[str, str | None]:
        """The most probable of the ``candidates`` (the languages there are scripts for; any
        language when None), and a warning when Whisper's own first choice was another one.

        Whisper takes a few seconds of Russian for Ukrainian, Belarusian or Polish now and then
        (3 of 60 real Russian telephone prompts, benchmarks/wer.py); a department's call must not
        fail for want of a Ukrainian script, so it is transcribed in the closest language it has."""
        ch = self._manager_index(audio, manager_channel)
        lang, prob, ranked = self.model.detect_language(audio.channel(ch), vad_filter=self.settings.vad)
        log.debug("detected language %s (p=%.2f)", lang, prob)
        if not candidates or lang in candidates:
            return lang, None
        chosen = next((code for code, _p in ranked if code in candidates), None)
        if chosen is None:
            return lang, None
        return chosen, (f"the recogniser heard {lang} (p={prob:.2f}); transcribed as {chosen}, the most probable "
                        f"language with a script ({', '.join(sorted(candidates))})")

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None = None,
        manager_channel: str | None = None,
        vocabulary: Iterable[str] = (),
        role_hint: Callable[[str], float] | None = None,
    ) -> Transcript:
        """Transcribe a decoded call into a timeline of utterances with speaker roles.

        ``role_hint(text)`` helps split a mono recording: > 0 for manager-like words, < 0 for
        client-like, 0 unknown (see :func:`analyzer.roles.split_mono`).
        """
        vocab = [v for v in vocabulary if v]
        warnings: list[str] = list(audio.warnings)
        if audio.channels == 1:
            lang = language or self.detect_language(audio)
            segs, dropped = self._channel(audio.channel(0), lang, vocab, other=None)
            warnings += dropped
            mono = split_mono(segs, audio.channel(0), lang, content=role_hint, by_voice=self.settings.mono_split == "voice")
            if not mono:
                warnings.append("no speech found in the recording")
            return Transcript(lang, tuple(mono), audio.duration, True, audio.source, 1, tuple(warnings))
        m = self._manager_index(audio, manager_channel)
        sides = {m: "manager", 1 - m: "client"}
        lang = language or self.detect_language(audio, manager_channel=manager_channel)
        utts: list[Utterance] = []
        live = []
        for ch, role in sides.items():
            if level_dbfs(audio.channel(ch)) < -55.0:
                warnings.append(f"the {role}'s channel is silent")
            else:
                live.append(ch)
        per_channel = (
            self._channels_batched(audio, live, lang, vocab)
            if self.settings.batch_size > 0 and live
            else {ch: self._channel(audio.channel(ch), lang, vocab, other=audio.channel(1 - ch)) for ch in live}
        )
        for ch in live:
            role = sides[ch]
            segs, dropped = per_channel[ch]
            warnings += [f"{role}: {d}" for d in dropped]
            utts += [
                Utterance(role, s.text, s.start, s.end, s.words, _confidence(s.words))  # type: ignore[arg-type]
                for s in segs
            ]
        utts = merge_turns(sorted(utts, key=lambda u: (u.start or 0.0, u.speaker)))
        if not utts:
            warnings.append("no speech found in the recording")
        return Transcript(lang, tuple(utts), audio.duration, False, audio.source, audio.channels, tuple(warnings))

    # -- internals -----------------------------------------------------------------------------
    def _manager_index(self, audio: Audio, manager_channel: str | None) -> int:
        if audio.channels == 1:
            return 0
        side = manager_channel or self.settings.manager_channel
        if side not in ("left", "right"):
            raise ValueError(f"manager channel must be 'left' or 'right', not {side!r}")
        return 0 if side == "left" else 1

    def _channels_batched(
        self, audio: Audio, channels: list[int], language: str, vocab: list[str]
    ) -> dict[int, tuple[list[Segment], list[str]]]:
        """Both channels in one batched pass: the speech of each channel is cut out with VAD,
        packed into windows of up to 30 s that never mix channels, and the windows of both
        channels are decoded together; times are mapped back to each channel's own timeline."""
        from faster_whisper import BatchedInferencePipeline
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        s = self.settings
        # 400 ms of padding, as the mono path: cut closer, a turn's first word is lost ("Понимаю" at the
        # start of an answer; tests/test_transcription.py); 600 ms gained nothing over 400
        vad = VadOptions(min_silence_duration_ms=400, speech_pad_ms=400, max_speech_duration_s=29.0)
        pieces: list[tuple[float, float, int, float]] = []  # packed start, packed end, channel, original start
        clips: list[dict[str, float]] = []
        parts: list[np.ndarray] = []
        pos = 0
        for ch in channels:
            x = audio.channel(ch)
            chunk_start, chunk_len = pos, 0
            for ts in get_speech_timestamps(x, vad):
                n = ts["end"] - ts["start"]
                if chunk_len and chunk_len + n > 29.5 * SAMPLE_RATE:
                    clips.append({"start": chunk_start / SAMPLE_RATE, "end": pos / SAMPLE_RATE})
                    chunk_start, chunk_len = pos, 0
                parts.append(x[ts["start"] : ts["end"]])
                pieces.append((pos / SAMPLE_RATE, (pos + n) / SAMPLE_RATE, ch, ts["start"] / SAMPLE_RATE))
                pos += n
                chunk_len += n
            if chunk_len:
                clips.append({"start": chunk_start / SAMPLE_RATE, "end": pos / SAMPLE_RATE})
        out: dict[int, tuple[list[Segment], list[str]]] = {ch: ([], []) for ch in channels}
        if not clips:
            return out
        packed = np.concatenate(parts).astype(np.float32)
        by_channel = {ch: [p for p in pieces if p[2] == ch] for ch in channels}
        clip_channel = [next(p[2] for p in pieces if p[0] >= c["start"] - 1e-6) for c in clips]

        def channel_of(t: float) -> int:
            i = max(0, int(np.searchsorted([c["start"] for c in clips], t + 1e-3, side="right")) - 1)
            return clip_channel[i]

        def where(ch: int, t: float) -> float:
            own = by_channel[ch]
            i = max(0, int(np.searchsorted([p[0] for p in own], t + 1e-3, side="right")) - 1)
            p0, p1, _ch, orig = own[i]
            return orig + (min(max(t, p0), p1) - p0)

        kwargs = self._hint(vocab)
        pipeline = BatchedInferencePipeline(self.model)
        segments, _info = pipeline.transcribe(
            packed,
            language=language,
            beam_size=s.beam_size,
            clip_timestamps=clips,
            batch_size=s.batch_size,
            word_timestamps=True,
            without_timestamps=False,
            # a batched window packs many stretches of speech: Whisper's per-window "no speech"
            # verdict would silently drop all of them, so each stretch is judged on its own below
            compression_ratio_threshold=2.4,
            log_prob_threshold=None,
            no_speech_threshold=None,
            **kwargs,
        )
        activity = {ch: _activity(audio.channel(ch)) for ch in channels}
        for seg in segments:
            if not seg.words:
                continue
            ch = channel_of((float(seg.start) + float(seg.end)) / 2)  # windows never mix channels
            words = []
            for w in seg.words:
                start, end = where(ch, float(w.start)), where(ch, float(w.end))
                if end < start:
                    end = start + min(0.5, float(w.end - w.start))
                words.append(_snap(Word(w.word.strip(), start, end, float(w.probability)), activity[ch]))
            whole = Segment(seg.text.strip(), words[0].start, words[-1].end, tuple(words), seg.avg_logprob, seg.no_speech_prob, seg.compression_ratio)
            # a batched window holds many sentences: judge each stretch of speech on its own
            for unit in segs_to_units([whole]):
                _keep(unit, audio.channel(ch), audio.channel(1 - ch), *out[ch])
        for ch in channels:
            self._fill_gaps(audio.channel(ch), [p for p in pieces if p[2] == ch], out[ch], language, kwargs)
            out[ch][0].sort(key=lambda x: x.start)
        return out

    def _fill_gaps(
        self,
        x: np.ndarray,
        pieces: list[tuple[float, float, int, float]],
        result: tuple[list[Segment], list[str]],
        language: str,
        kwargs: dict,
    ) -> None:
        """Whisper sometimes skips the start of a window and goes on as if nothing was said.
        Any stretch of speech (by VAD) of 1.5 s or more with no recognised word in it is
        transcribed again on its own, so no turn of the call is silently lost."""
        kept, dropped = result
        # what Whisper recognised covers the stretch from a unit's first word to its last (units are
        # cut at pauses): word spans alone, shrunk to their loudest part, covered too little of a
        # recording that is nearly all speech, and its stretches were transcribed twice
        covered = [(seg.start, seg.end) for seg in kept]
        activity = _activity(x)
        for p0, p1, _ch, orig in pieces:
            start, end = orig, orig + (p1 - p0)
            if end - start < 1.5:
                continue
            inside = sum(max(0.0, min(e, end) - max(s_, start)) for s_, e in covered)
            if inside > 0.25 * (end - start):
                continue
            a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
            segments, _ = self.model.transcribe(
                x[a:b], language=language, beam_size=self.settings.beam_size, vad_filter=False,
                word_timestamps=True, condition_on_previous_text=False, **kwargs,
            )
            for seg in segments:
                words = tuple(
                    _snap(Word(w.word.strip(), start + float(w.start), start + float(w.end), float(w.probability)), activity)
                    for w in seg.words or ()
                )
                if not words:
                    continue
                item = Segment(seg.text.strip(), words[0].start, words[-1].end, words, seg.avg_logprob, seg.no_speech_prob, seg.compression_ratio)
                _keep(item, x, None, kept, dropped)
            log.debug("re-transcribed a skipped stretch %.1f-%.1fs", start, end)

    def _hint(self, vocab: list[str]) -> dict[str, str]:
        """The script's vocabulary for Whisper, as the setting says (off by default: see README)."""
        if vocab and self.settings.vocabulary_hint == "hotwords":
            return {"hotwords": ", ".join(vocab)}
        if vocab and self.settings.vocabulary_hint == "prompt":
            return {"initial_prompt": ", ".join(vocab)}
        return {}

    def _channel(self, x: np.ndarray, language: str, vocab: list[str], *, other: np.ndarray | None) -> tuple[list[Segment], list[str]]:
        s = self.settings
        kwargs = self._hint(vocab)
        segments, _info = self.model.transcribe(
            x,
            language=language,
            beam_size=s.beam_size,
            vad_filter=s.vad,
            # 400 ms of padding, faster-whisper's own: with 200 the VAD, late at the very start
            # of a recording, cut the first word ("Please check the number", tests/test_prompts.py)
            vad_parameters={"min_silence_duration_ms": 400, "speech_pad_ms": 400},
            word_timestamps=True,
            condition_on_previous_text=False,
            compression_ratio_threshold=2.4,
            log_prob_threshold=-1.0,
            no_speech_threshold=0.6,
            **kwargs,
        )
        kept: list[Segment] = []
        dropped: list[str] = []
        active = _activity(x)
        for seg in segments:
            words = tuple(
                _snap(Word(w.word.strip(), float(w.start), float(w.end), float(w.probability)), active)
                for w in seg.words or ()
            )
            # word times are tighter than segment times, which Whisper pads: overlaps stay real
            start = words[0].start if words else float(seg.start)
            end = words[-1].end if words else float(seg.end)
            item = Segment(seg.text.strip(), start, end, words, seg.avg_logprob, seg.no_speech_prob, seg.compression_ratio)
            _keep(item, x, other, kept, dropped)
        if s.vad:
            from faster_whisper.vad import VadOptions, get_speech_timestamps

            vad = VadOptions(min_silence_duration_ms=400, speech_pad_ms=400)
            pieces = [(t["start"] / SAMPLE_RATE, t["end"] / SAMPLE_RATE, 0, t["start"] / SAMPLE_RATE) for t in get_speech_timestamps(x, vad)]
            self._fill_gaps(x, pieces, (kept, dropped), language, kwargs)
            kept.sort(key=lambda seg: seg.start)
        return kept, dropped


_FRAME = SAMPLE_RATE // 50  # 20 ms


def _activity(x: np.ndarray) -> np.ndarray:
    """Per 20 ms frame: is this channel speaking? Energy over the channel's own noise floor."""
    n = x.size // _FRAME
    if n == 0:
        return np.zeros(0, dtype=bool)
    rms = np.sqrt(np.mean(x[: n * _FRAME].reshape(n, _FRAME).astype(np.float64) ** 2, axis=1)) + 1e-9
    db = 20 * np.log10(rms)
    floor = np.percentile(db, 20)
    return db > max(floor + 12.0, -50.0)


_SNAP_GAP = 10  # frames of 20 ms


def _snap(word: Word, active: np.ndarray) -> Word:
    """Shrink a word's span to the speech inside it.

    Whisper's word times stretch across pauses, most at the joins of VAD chunks; a word that
    seems to last through the other side's turn would make false overlaps and wrong turns.
    """
    a, b = int(word.start * 50), int(np.ceil(word.end * 50))
    if b - a <= 10 or a >= active.size:  # under 0.2 s: nothing to fix
        return word
    seg = active[a : min(b, active.size)]
    if not seg.any():
        return word
    edges = np.flatnonzero(np.diff(np.concatenate([[0], seg.astype(np.int8), [0]])))
    runs = [list(r) for r in edges.reshape(-1, 2)]
    # a dip under 0.2 s is inside the word (a stop consonant, a breath between syllables), not a
    # pause: without joining them a word shrank to its loudest syllable, and the pieces of a
    # recording that is nearly all speech looked unrecognised (tests/test_prompts.py)
    joined = [runs[0]]
    for r in runs[1:]:
        if r[0] - joined[-1][1] < _SNAP_GAP:
            joined[-1][1] = r[1]
        else:
            joined.append(r)
    # the longest run of speech inside the word
    s, e = max(joined, key=lambda r: r[1] - r[0])
    return Word(word.text, float(a + s) / 50, float(a + e) / 50, word.probability)


def _keep(item: Segment, x: np.ndarray, other: np.ndarray | None, kept: list[Segment], dropped: list[str]) -> None:
    """Guard one recognised stretch: drop it with a reason, or keep it cut into units at pauses."""
    reason = _hallucination(item, x, other)
    if reason:
        dropped.append(f"dropped {item.text[:60]!r} at {item.start:.1f}s: {reason}")
        return
    item = collapse_loops(item)
    if item.text:
        kept.extend(segs_to_units([item]) if item.words else [item])


def _confidence(words: tuple[Word, ...]) -> float | None:
    return float(np.mean([w.probability for w in words])) if words else None


def _hallucination(seg: Segment, x: np.ndarray, other: np.ndarray | None) -> str | None:
    if not seg.text or not re.search(r"\w", seg.text):
        return "no words"
    if _HALLUCINATIONS.search(seg.text):
        return "a phrase Whisper invents on silence or music"
    if seg.no_speech_prob > 0.6 and seg.avg_logprob < -0.8:
        return "probably not speech"
    a, b = int(seg.start * SAMPLE_RATE), int(seg.end * SAMPLE_RATE) + 1
    own = level_dbfs(x[a:b])
    if own < -50.0:
        return "text on silence"
    if other is not None:
        theirs = level_dbfs(other[a:b])
        if theirs - own > _CROSSTALK_DB:
            return "the other side's voice leaking into this channel"
    return None


def collapse_loops(seg: Segment) -> Segment:
    """'да да да да да...' or a sentence repeated over and over: keep the first occurrence."""
    words = seg.words
    if len(words) < 6:
        return seg
    toks = [re.sub(r"\W+", "", w.text.lower()) for w in words]
    for n in range(1, 8):
        i = 0
        while i + 3 * n <= len(toks):
            unit = toks[i : i + n]
            reps = 1
            while toks[i + reps * n : i + (reps + 1) * n] == unit:
                reps += 1
            if reps >= 4 or (n >= 3 and reps >= 3):
                keep = list(words[: i + n]) + list(words[i + reps * n :])
                text = " ".join(w.text for w in keep)
                return collapse_loops(Segment(text, seg.start, seg.end, tuple(keep), seg.avg_logprob, seg.no_speech_prob, seg.compression_ratio))
            i += 1
    return seg


def merge_turns(utts: list[Utterance], *, max_gap: float = 1.5) -> list[Utterance]:
    """Join consecutive pieces of one speaker into a turn while the other side stays silent."""
    out: list[Utterance] = []
    for u in utts:
        prev = out[-1] if out else None
        if prev is not None and prev.speaker == u.speaker and (u.start or 0.0) - (prev.end or 0.0) <= max_gap:
            words = prev.words + u.words
            out[-1] = Utterance(
                u.speaker, f"{prev.text} {u.text}".strip(), prev.start, max(prev.end or 0.0, u.end or 0.0),
                words, _confidence(words),
            )
        else:
            out.append(u)
    return out


def segs_to_units(segs: list[Segment]) -> list[Segment]:
    """Split segments at long pauses between words: on a mono line a pause often means a new turn."""
    out: list[Segment] = []
    for seg in segs:
        cur: list[Word] = []
        for w in seg.words:
            if cur and w.start - cur[-1].end > 0.6:
                out.append(_unit(cur, seg))
                cur = []
            cur.append(w)
        if cur:
            out.append(_unit(cur, seg))
        elif not seg.words:
            out.append(seg)
    return out


def _unit(words: list[Word], seg: Segment) -> Segment:
    text = " ".join(w.text for w in words).strip()
    return Segment(text, words[0].start, words[-1].end, tuple(words), seg.avg_logprob, seg.no_speech_prob, seg.compression_ratio)

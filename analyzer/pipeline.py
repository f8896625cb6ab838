"""From a recording (or a stored transcript) to a :class:`CallReport`.

``Analyzer`` holds the loaded model and the scripts, for batch use by the CLI and the worker::

    analyzer = Analyzer()
    report = analyzer.analyze("call.wav")                  # transcribe + score
    transcript = analyzer.transcribe("call.wav")           # keep this...
    report = analyzer.score(transcript, script="ru_b2b_outbound")  # ...and re-score it later
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

import numpy as np

from analyzer.audio import load_audio
from analyzer.results import CallReport, Transcript
from analyzer.roles import orient_roles
from analyzer.scoring import role_hint, score_transcript
from analyzer.scripts import Script, default_script, load_script, script_languages
from analyzer.settings import AnalyzerSettings, get_settings
from analyzer.thresholds import DEFAULT, Thresholds
from analyzer.transcription import Transcriber

AudioSource = str | Path | BinaryIO | bytes | np.ndarray


class Analyzer:
    def __init__(
        self,
        settings: AnalyzerSettings | None = None,
        *,
        transcriber: Transcriber | None = None,
        thresholds: Thresholds = DEFAULT,
    ):
        self.settings = settings or get_settings()
        self.transcriber = transcriber or Transcriber(self.settings)
        self.thresholds = thresholds

    def script(self, ref: str | Path | Script | None = None, *, language: str | None = None) -> Script:
        """The script to score against: given, from settings, or the language's default."""
        if isinstance(ref, Script):
            return ref
        ref = ref or self.settings.script
        if ref:
            return load_script(ref, extra_dirs=self.settings.scripts_dirs)
        return default_script(language or self.settings.language or "ru", extra_dirs=self.settings.scripts_dirs)

    def transcribe(
        self,
        source: AudioSource,
        *,
        language: str | None = None,
        manager_channel: str | None = None,
        script: str | Path | Script | None = None,
        languages: Collection[str] | None = None,
    ) -> Transcript:
        """``languages``: those a detected language may be (default: the languages of the script library)."""
        audio = load_audio(source, max_duration=self.settings.max_duration)
        language = language or self.settings.language
        chosen: Script | None = None
        if script is not None or self.settings.script:
            chosen = self.script(script)
            language = language or chosen.language
        heard: str | None = None
        if language is None:
            candidates = languages if languages is not None else script_languages(self.settings.scripts_dirs)
            language, heard = self.transcriber.detect_language_among(audio, candidates, manager_channel=manager_channel)
        if chosen is None:
            chosen = self.script(language=language)
        transcript = self.transcriber.transcribe(
            audio,
            language=language,
            manager_channel=manager_channel,
            vocabulary=chosen.vocabulary,
            role_hint=role_hint(chosen, thresholds=self.thresholds),
        )
        if transcript.roles_inferred:
            transcript = orient_roles(transcript, lambda t: _script_evidence(t, chosen, self.thresholds))
        if heard:
            transcript = dataclasses.replace(transcript, warnings=(heard, *transcript.warnings))
        return transcript

    def score(self, transcript: Transcript, *, script: str | Path | Script | None = None) -> CallReport:
        return score_transcript(transcript, self.script(script, language=transcript.language), thresholds=self.thresholds)

    def analyze(
        self,
        source: AudioSource,
        *,
        script: str | Path | Script | None = None,
        language: str | None = None,
        manager_channel: str | None = None,
    ) -> CallReport:
        transcript = self.transcribe(source, language=language, manager_channel=manager_channel, script=script)
        return self.score(transcript, script=script)


def _script_evidence(transcript: Transcript, script: Script, thresholds: Thresholds) -> float:
    report = score_transcript(transcript, script, thresholds=thresholds)
    return sum(s.weight * (s.evidence.similarity if s.evidence else 0.0) for s in report.stages)

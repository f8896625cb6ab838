"""Exceptions raised by the analyzer.

Every error the library raises on purpose derives from :class:`AnalyzerError`, so a caller (the
CLI, the API, a worker) can catch one type and show its message to a person::

    AnalyzerError
    ├── AudioDecodeError        the recording cannot be read as audio (corrupt, empty, not audio)
    ├── ModelNotFoundError      no Whisper model could be found or assembled
    ├── ScriptValidationError   a script file is malformed (names the file and the field)
    ├── ScriptNotFoundError     no script with that id or path
    ├── TranscriptFormatError   a transcript given for scoring is malformed
    └── ...                     the sales package's own: CRM exports and KPI inputs (analyzer/sales/errors.py)

Messages say what was wrong and what to do about it.
"""

from __future__ import annotations


class AnalyzerError(Exception):
    """Base class of every error the analyzer raises on purpose."""

    code = "analyzer_error"


class AudioDecodeError(AnalyzerError):
    """The input could not be decoded as an audio recording."""

    code = "audio_decode_error"


class ModelNotFoundError(AnalyzerError):
    """No speech recognition model could be found, downloaded or assembled."""

    code = "model_not_found"


class ScriptValidationError(AnalyzerError):
    """A script file does not follow the script schema."""

    code = "script_invalid"

    def __init__(self, message: str, *, source: str = "", errors: list[dict] | None = None):
        super().__init__(message)
        self.source = source
        self.errors = errors or []


class ScriptNotFoundError(AnalyzerError):
    """A script id or path names no script."""

    code = "script_not_found"


class TranscriptFormatError(AnalyzerError):
    """A transcript given for scoring does not follow the transcript format."""

    code = "transcript_invalid"

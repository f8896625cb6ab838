"""callqa analyzer: from sales-call recordings to evidence-backed script-compliance reports.

A library: it takes paths, file objects, arrays or transcripts and returns typed results; it
imports nothing from the web layer.
"""

from analyzer.audio import Audio, load_audio
from analyzer.errors import (
    AnalyzerError,
    AudioDecodeError,
    ModelNotFoundError,
    ScriptNotFoundError,
    ScriptValidationError,
    TranscriptFormatError,
)
from analyzer.pipeline import Analyzer
from analyzer.results import (
    CallMetrics,
    CallReport,
    Evidence,
    FillerCount,
    ObjectionResult,
    StageResult,
    Transcript,
    Utterance,
    Word,
    error_report,
)
from analyzer.scoring import score_transcript
from analyzer.scripts import Script, list_scripts, load_script, parse_script
from analyzer.settings import AnalyzerSettings, get_settings
from analyzer.thresholds import Thresholds
from analyzer.transcription import Transcriber

__version__ = "0.1.0"

__all__ = [
    "Analyzer", "AnalyzerError", "AnalyzerSettings", "Audio", "AudioDecodeError", "CallMetrics",
    "CallReport", "Evidence", "FillerCount", "ModelNotFoundError", "ObjectionResult", "Script",
    "ScriptNotFoundError", "ScriptValidationError", "StageResult", "Thresholds", "Transcriber",
    "Transcript", "TranscriptFormatError", "Utterance", "Word", "error_report", "get_settings",
    "list_scripts", "load_audio", "load_script", "parse_script", "score_transcript",
]

"""Transcripts given for scoring: clear errors that name the field."""

from __future__ import annotations

import pytest

from analyzer import Transcript, TranscriptFormatError


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "JSON object"),
        ({"turns": []}, "'language'"),
        ({"language": "ru"}, "'turns'"),
        ({"language": "ru", "turns": ["hello"]}, "turns[0]"),
        ({"language": "ru", "turns": [{"speaker": "boss", "text": "x"}]}, "turns[0].speaker"),
        ({"language": "ru", "turns": [{"speaker": "client"}]}, "turns[0].text"),
        ({"language": "ru", "turns": [{"speaker": "client", "text": "x", "start": "soon"}]}, "turns[0].start"),
        ({"language": "ru", "turns": [{"speaker": "client", "text": "x", "start": 5, "end": 2}]}, "turns[0].end"),
    ],
)
def test_bad_transcript_names_the_field(data, field: str) -> None:
    with pytest.raises(TranscriptFormatError, match=None) as err:
        Transcript.from_dict(data)
    assert field in str(err.value)


def test_round_trip_keeps_words_and_times() -> None:
    data = {
        "language": "ru",
        "turns": [
            {"speaker": "manager", "text": "Добрый день", "start": 0.5, "end": 1.5, "confidence": 0.9,
             "words": [{"text": "Добрый", "start": 0.5, "end": 0.9, "probability": 0.95},
                       {"text": "день", "start": 1.0, "end": 1.5, "probability": 0.85}]},
        ],
    }
    tr = Transcript.from_dict(data)
    again = Transcript.from_dict(tr.to_dict())
    assert again == tr
    assert again.utterances[0].words[1].probability == 0.85
    assert again.duration == 1.5

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def clip_labels() -> dict:
    return json.loads((DATA / "clip_ru.labels.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def analyzer():
    """One analyzer with the real embedded model, shared by the tests that transcribe."""
    from analyzer import Analyzer

    return Analyzer()


@pytest.fixture(scope="session")
def report_schema() -> dict:
    return json.loads((Path(__file__).parent.parent / "analyzer" / "report.schema.json").read_text())

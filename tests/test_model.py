"""Finding the Whisper model: the embedded default is assembled and checked; errors say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import ModelNotFoundError
from analyzer import model as model_mod
from analyzer.model import EMBEDDED_SHA256, embedded_model_dir, resolve_model


def test_embedded_model_is_assembled_once_and_checked(tmp_path: Path) -> None:
    d = embedded_model_dir(tmp_path)
    assert (d / "model.bin").is_file()
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (d / f).is_file()
    assert (d / "model.bin.sha256").read_text().strip() == EMBEDDED_SHA256
    mtime = (d / "model.bin").stat().st_mtime_ns
    assert embedded_model_dir(tmp_path) == d
    assert (d / "model.bin").stat().st_mtime_ns == mtime, "a checked model is not assembled again"


def test_damaged_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_mod, "EMBEDDED_SHA256", "0" * 64)
    with pytest.raises(ModelNotFoundError, match="reinstall"):
        embedded_model_dir(tmp_path)
    assert not (tmp_path / model_mod.EMBEDDED_NAME).exists(), "nothing half-assembled is left behind"


def test_missing_packages_say_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_mod, "_PARTS", ("no_such_package_part1", "no_such_package_part2"))
    with pytest.raises(ModelNotFoundError) as err:
        embedded_model_dir(tmp_path)
    assert "pip install 'callqa[model]'" in str(err.value)
    assert "CALLQA_MODEL" in str(err.value)


def test_size_without_download_or_cache_explains(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("large-v3", cache_dir=tmp_path, allow_download=False)
    assert "CALLQA_ALLOW_DOWNLOAD=1" in str(err.value)
    assert resolve_model("large-v3", cache_dir=tmp_path, allow_download=True) == "large-v3"


def test_local_directory_and_bad_names(tmp_path: Path) -> None:
    d = embedded_model_dir(tmp_path / "cache")
    assert resolve_model(str(d), cache_dir=tmp_path, allow_download=False) == str(d)
    with pytest.raises(ModelNotFoundError, match="no model.bin"):
        resolve_model(str(tmp_path), cache_dir=tmp_path, allow_download=False)
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        resolve_model("gigantic", cache_dir=tmp_path, allow_download=False)

"""Build the learned layer's training corpus and the bundled scripts' models from the labelled sets.

    python -m sample_calls.learn corpus   # analyzer/data/objection_corpus.json.gz from the labelled sets
    python -m sample_calls.learn build    # ...and the bundled scripts' models into analyzer/models/

The corpus comes from ``analyzer.learned.TRAINING_SETS`` (never a blind set) and the banks under
``train/banks/``; run ``build`` after changing either or a bundled script (tests/test_learned.py
fails until then).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import yaml

from analyzer import learned
from analyzer.scripts import BUNDLED_DIR, load_script

HERE = Path(__file__).resolve().parent


def build_corpus() -> learned.Corpus:
    dialogues = [yaml.safe_load(f.read_text(encoding="utf-8")) for folder in learned.TRAINING_SETS
                 for f in sorted((HERE / folder).glob("*.yaml"))]
    banks = HERE / "train" / "banks"
    return learned.corpus_from_dialogues(
        dialogues,
        utterance_banks=[x for f in sorted(banks.glob("utterances_*.yaml")) for x in yaml.safe_load(f.read_text(encoding="utf-8"))],
        response_banks=[x for f in sorted(banks.glob("responses_*.yaml")) for x in yaml.safe_load(f.read_text(encoding="utf-8"))],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sample_calls.learn", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["corpus", "build"])
    args = ap.parse_args(argv)
    built = build_corpus()
    payload = json.dumps(built.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
    learned.DATA_DIR.mkdir(exist_ok=True)
    with gzip.GzipFile(learned.CORPUS_FILE, "wb", mtime=0) as f:  # mtime 0: the same corpus, the same bytes
        f.write(payload)
    print(f"{learned.CORPUS_FILE}: {len(built.utterances)} utterances, {len(built.responses)} answers (corpus {built.digest})")
    if args.what == "build":
        learned.MODELS_DIR.mkdir(exist_ok=True)
        keep = set()
        for path in sorted(BUNDLED_DIR.glob("*.yaml")):
            script = load_script(path)
            model = learned.train(script, built)
            (learned.MODELS_DIR / f"{model.key}.npz").write_bytes(model.to_bytes())
            keep.add(f"{model.key}.npz")
            print(f"{learned.MODELS_DIR / model.key}.npz: {script.id} {script.version}")
        for old in learned.MODELS_DIR.glob("*.npz"):
            if old.name not in keep:
                old.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the learned layer's training corpus and the bundled scripts' models from the labelled sets.

    python -m sample_calls.learn recognise  # render and transcribe the training sets: train/recognised.json.gz
    python -m sample_calls.learn corpus     # analyzer/data/objection_corpus.json.gz from the labelled sets
    python -m sample_calls.learn build      # ...and the bundled scripts' models into analyzer/models/

The corpus comes from ``analyzer.learned.TRAINING_SETS`` (never a blind set), the banks under
``train/banks/`` and the same dialogues as the recogniser heard them (``train/recognised.json.gz``:
each rendered to telephone audio, transcribed with the default settings and its labels moved onto
the recognised turns, :func:`analyzer.learned.recognised_dialogue`; an hour on two cores, so the
result is kept in the repository); run ``build`` after changing any of them or a bundled script
(tests/test_learned.py fails until then).
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
RECOGNISED_FILE = HERE / "train" / "recognised.json.gz"


def training_dialogues() -> list[tuple[str, dict]]:
    """(set, dialogue) of every training set."""
    return [(folder, yaml.safe_load(f.read_text(encoding="utf-8"))) for folder in learned.TRAINING_SETS
            for f in sorted((HERE / folder).glob("*.yaml"))]


def recognise() -> list[dict]:
    """Every training dialogue rendered (kept under build/<set>_audio), transcribed with the default
    settings (kept where ``benchmarks.accuracy --path audio`` keeps them) and relabelled."""
    from analyzer import Analyzer
    from benchmarks.common import audio_dir, transcripts_dir
    from sample_calls.render import render_dialogue

    analyzer = Analyzer()
    cache = transcripts_dir(analyzer.settings)
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for folder, d in training_dialogues():
        where = audio_dir("sample" if folder == "dialogues" else folder)
        wav = where / f"{d['id']}.wav"
        if not wav.is_file() or not wav.with_suffix(".labels.json").is_file():
            render_dialogue(d, where)
        stored = cache / f"{d['id']}.json"
        if not stored.is_file():
            stored.write_text(json.dumps(analyzer.transcribe(wav).to_dict(), ensure_ascii=False), encoding="utf-8")
        transcript = json.loads(stored.read_text(encoding="utf-8"))
        times = json.loads(wav.with_suffix(".labels.json").read_text(encoding="utf-8"))["turns"]
        out.append(learned.recognised_dialogue(d, transcript, times))
        print(f"{d['id']}: {len(out[-1]['turns'])} of {len(d['turns'])} turns heard", flush=True)
    return out


def build_corpus() -> learned.Corpus:
    dialogues = [d for _, d in training_dialogues()]
    if RECOGNISED_FILE.is_file():
        with gzip.open(RECOGNISED_FILE, "rt", encoding="utf-8") as f:
            dialogues += json.load(f)
    banks = HERE / "train" / "banks"
    return learned.corpus_from_dialogues(
        dialogues,
        utterance_banks=[x for f in sorted(banks.glob("utterances_*.yaml")) for x in yaml.safe_load(f.read_text(encoding="utf-8"))],
        response_banks=[x for f in sorted(banks.glob("responses_*.yaml")) for x in yaml.safe_load(f.read_text(encoding="utf-8"))],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sample_calls.learn", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["recognise", "corpus", "build"])
    args = ap.parse_args(argv)
    if args.what == "recognise":
        heard = recognise()
        with gzip.GzipFile(RECOGNISED_FILE, "wb", mtime=0) as f:
            f.write(json.dumps(heard, ensure_ascii=False, separators=(",", ":")).encode())
        print(f"{RECOGNISED_FILE}: {len(heard)} dialogues")
        return 0
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

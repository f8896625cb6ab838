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
from collections.abc import Iterable
from pathlib import Path

import yaml

from analyzer import learned
from analyzer.scripts import BUNDLED_DIR, STANDARD_OBJECTIONS, STANDARD_STAGES, load_script

HERE = Path(__file__).resolve().parent
RECOGNISED_FILE = HERE / "train" / "recognised.json.gz"


def training_dialogues() -> list[tuple[str, dict]]:
    """(set, dialogue) of every training set."""
    return [(folder, yaml.safe_load(f.read_text(encoding="utf-8"))) for folder in learned.TRAINING_SETS
            for f in sorted((HERE / folder).glob("*.yaml"))]


def _audio(folder: str, dialogue: dict) -> Path:
    """Where a training dialogue's rendered audio is kept (``build/<set>_audio``, as ``make sample-audio``)."""
    from benchmarks.common import audio_dir

    return audio_dir("sample" if folder == "dialogues" else folder) / f"{dialogue['id']}.wav"


def heard(folder: str, dialogue: dict, transcripts: Path) -> tuple[dict, dict] | None:
    """(the transcript of a training dialogue's rendered audio, the dialogue in the recogniser's
    words), when both its audio's labels and its transcript are kept; else None."""
    labels = _audio(folder, dialogue).with_suffix(".labels.json")
    stored = transcripts / f"{dialogue['id']}.json"
    if not (labels.is_file() and stored.is_file()):
        return None
    transcript = json.loads(stored.read_text(encoding="utf-8"))
    times = json.loads(labels.read_text(encoding="utf-8"))["turns"]
    return transcript, learned.recognised_dialogue(dialogue, transcript, times)


def recognise() -> list[dict]:
    """Every training dialogue rendered (kept under build/<set>_audio), transcribed with the default
    settings (kept where ``benchmarks.accuracy --path audio`` keeps them) and relabelled."""
    from analyzer import Analyzer
    from benchmarks.common import transcripts_dir
    from sample_calls.render import render_dialogue

    analyzer = Analyzer()
    cache = transcripts_dir(analyzer.settings)
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for folder, d in training_dialogues():
        wav = _audio(folder, d)
        if not wav.is_file() or not wav.with_suffix(".labels.json").is_file():
            render_dialogue(d, wav.parent)
        stored = cache / f"{d['id']}.json"
        if not stored.is_file():
            stored.write_text(json.dumps(analyzer.transcribe(wav).to_dict(), ensure_ascii=False), encoding="utf-8")
        found = heard(folder, d, cache)
        assert found is not None
        out.append(found[1])
        print(f"{d['id']}: {len(out[-1]['turns'])} of {len(d['turns'])} turns heard", flush=True)
    return out


# Who wrote what, as far as the history tells (each batch was written by its own helpers, who never
# saw another batch): cross-validating by writer leaves a whole batch out, its banks included, which
# is what a customer's calls are to the models: someone else's way of talking.
_BATCH_OF_BANK = {"d": "train-1", "e": "train-1", "f": "train-1", "g": "train-2", "h": "train-2", "i": "train-2",
                  "j": "bank-j", "l": "train-3", "m": "train-3", "n": "train-3",
                  "o": "train-4", "p": "train-4", "q": "train-4", "r": "train-5", "s": "train-5", "t": "train-5"}


_BATCHES = ((30, 60, "train-1"), (54, 106, "train-2"), (84, 166, "train-3"), (114, 226, "train-4"))
"""(last English number, last Russian number, batch) of the ``train`` dialogues; later ones: train-5."""


def writer(folder: str, dialogue_id: str) -> str:
    """The batch of writers a training dialogue came from: its set, and for ``train`` the batch."""
    if folder != "train":
        return folder
    number = int(dialogue_id.split("_")[2])
    english = dialogue_id.startswith("tr_en_")
    return next((name for last_en, last_ru, name in _BATCHES if number <= (last_en if english else last_ru)), "train-5")


def problems(dialogue: dict, name: str) -> list[str]:
    """What is wrong with a labelled dialogue against FORMAT.md (a label on the wrong turn teaches the
    models the wrong words): its id, speakers, stage ids, and each objection's type and turns."""
    from sample_calls.render import load_dialogue

    try:
        load_dialogue(dialogue)  # the renderer's check: an id, a language, a speaker and a text in every turn
    except ValueError as e:
        return [f"{name}: {e}"]
    out = [] if dialogue["id"] == name else [f"{name}: id {dialogue['id']!r} is not the file's name"]
    turns = dialogue["turns"]
    speakers = [t["speaker"] for t in turns]
    labels = dialogue.get("labels") or {}
    out += [f"{name}: unknown stage {s!r}" for s in labels.get("stages") or [] if s not in STANDARD_STAGES]
    for o in labels.get("objections") or []:
        turn, answer = o.get("turn"), o.get("response_turn")
        if o.get("type") not in STANDARD_OBJECTIONS:
            out.append(f"{name}: unknown objection type {o.get('type')!r}")
        if not isinstance(turn, int) or not 0 <= turn < len(turns) or speakers[turn] != "client":
            out.append(f"{name}: objection {o.get('type')} at turn {turn}, which is not a client turn")
        if not isinstance(o.get("handled"), bool):
            out.append(f"{name}: objection {o.get('type')} at turn {turn} needs handled: true or false")
        if answer is not None and (not isinstance(answer, int) or not isinstance(turn, int) or not turn < answer < len(turns)
                                   or speakers[answer] != "manager"):
            out.append(f"{name}: objection {o.get('type')} answered at turn {answer}, not a manager turn after it")
    return out


def bank_problems() -> list[str]:
    """What is wrong with the banks' entries: a language, a known type (or none), the texts."""
    utterances, responses = banks()
    out = [f"utterance {u!r}" for u in utterances if u.get("language") not in ("ru", "en")
           or u.get("type") not in (*STANDARD_OBJECTIONS, learned.NONE) or not str(u.get("text") or "").strip()]
    out += [f"answer {r!r}" for r in responses if r.get("language") not in ("ru", "en") or r.get("type") not in STANDARD_OBJECTIONS
            or not isinstance(r.get("handled"), bool) or not str(r.get("response") or "").strip()]
    return out


def banks(without: str | Iterable[str] | None = None) -> tuple[list[dict], list[dict]]:
    """The training banks' utterances and answers (``train/banks/utterances_*.yaml``, ``responses_*.yaml``),
    leaving out the banks of the batches of writers ``without``."""
    folder = HERE / "train" / "banks"
    left_out = {without} if isinstance(without, str) else set(without or ())
    return tuple([x for f in sorted(folder.glob(f"{kind}_*.yaml")) if _BATCH_OF_BANK.get(f.stem.split("_")[-1]) not in left_out
                  for x in yaml.safe_load(f.read_text(encoding="utf-8"))]
                 for kind in ("utterances", "responses"))  # type: ignore[return-value]


def build_corpus() -> learned.Corpus:
    dialogues = [d for _, d in training_dialogues()]
    if RECOGNISED_FILE.is_file():
        with gzip.open(RECOGNISED_FILE, "rt", encoding="utf-8") as f:
            dialogues += json.load(f)
    utterances, responses = banks()
    return learned.corpus_from_dialogues(dialogues, utterance_banks=utterances, response_banks=responses)


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

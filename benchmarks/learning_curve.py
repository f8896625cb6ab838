"""How a script learns from its reviewers: accuracy on a blind set after 0, 10, 25 and 50 of its
calls were reviewed.

    python -m benchmarks.learning_curve [--set blind1] [--path text|audio] [--audio-dir DIR] [--draws 8] [--json]

The blind set plays a company whose quality controllers review some of its calls as the product
lets them: for each objection the machine found in a reviewed call they confirm it (and say whether
it was handled) or mark it not_objection, and they add each objection it missed at its utterance,
by the set's labels (a type the call's labels hold is confirmed, as many times as they hold it;
handled as labelled). Those verdicts become the examples
of a learned version (exactly as ``api/learning/service.py`` builds them from reviews); it scores the
set's other calls. Each point is the mean of ``--draws`` random choices of the reviewed calls. The
audio path re-scores the transcripts ``benchmarks/accuracy.py --path audio`` kept.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from analyzer import Transcript, score_transcript
from analyzer.scripts import default_script
from benchmarks.common import Evaluation, load_dialogues, transcript_dict


def reviews_of(dialogue: dict[str, Any], report: dict[str, Any], turn_of: dict[int, int]) -> list[dict[str, Any]]:
    """The examples a reviewer following the labels gives: each objection the machine found confirmed
    (a labelled one of its type; handled as labelled) or marked not_objection, and each labelled one
    it missed added at its utterance (``turn_of``: the labelled turn's utterance in the transcript)."""
    utterances = report["transcript"] or []
    open_labels = list(dialogue["labels"].get("objections") or [])
    out: list[dict[str, Any]] = []

    def answer(turn: int, type_: str, handled: bool) -> None:
        said = [u["text"] for u in utterances[turn + 1 :] if u.get("speaker") == "manager"][:2]
        if said:
            out.append({"kind": "response", "text": " ".join(said), "label": type_, "handled": handled})

    for o in report["objections"]:
        turn = (o.get("client") or {}).get("turn")
        if not isinstance(turn, int) or not 0 <= turn < len(utterances):
            continue
        gold = next((g for g in open_labels if g["type"] == o["type"]), None)
        if gold is None:
            out.append({"kind": "utterance", "text": utterances[turn]["text"], "label": "none"})
            continue
        open_labels.remove(gold)
        out.append({"kind": "utterance", "text": utterances[turn]["text"], "label": o["type"]})
        answer(turn, o["type"], bool(gold["handled"]))
    for gold in open_labels:  # missed by the machine: the reviewer adds it (type@utterance)
        turn = turn_of.get(gold["turn"])
        if turn is not None and utterances[turn].get("speaker") == "client":
            out.append({"kind": "utterance", "text": utterances[turn]["text"], "label": gold["type"]})
            answer(turn, gold["type"], bool(gold["handled"]))
    return out


def turns_to_utterances(dialogue: dict[str, Any], transcript: Transcript, timings: Path | None) -> dict[int, int]:
    """Each labelled turn's utterance: itself on the text path; on audio the client utterance that
    overlaps the turn's time most (the renderer's ``<id>.labels.json`` holds the turn times)."""
    if timings is None:
        return {i: i for i in range(len(dialogue["turns"]))}
    turns = json.loads(timings.read_text(encoding="utf-8"))["turns"]
    out: dict[int, int] = {}
    for t in turns:
        best, overlap = None, 0.0
        for k, u in enumerate(transcript.utterances):
            if u.speaker != t["speaker"] or u.start is None or u.end is None:
                continue
            o = min(u.end, t["end"]) - max(u.start, t["start"])
            if o > overlap:
                best, overlap = k, o
        if best is not None:
            out[t["index"]] = best
    return out


def learned_script(language: str, examples: list[dict[str, Any]]) -> Any:
    from analyzer.scripts import Example, ResponseExample

    script = default_script(language)
    return script.model_copy(update={
        "examples": [Example(text=e["text"], label=e["label"]) for e in examples if e["kind"] == "utterance"],
        "responses": [ResponseExample(objection_type=e["label"], response=e["text"], handled=e["handled"])
                      for e in examples if e["kind"] == "response"],
    })


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="which", default="blind1")
    ap.add_argument("--path", choices=["text", "audio"], default="text")
    ap.add_argument("--audio-dir", type=Path, default=None, help="audio path: the rendered set, for its turn times")
    ap.add_argument("--transcripts", type=Path, default=None,
                    help="kept audio transcripts (default: build/transcripts/*-lang-detected)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 10, 25, 50])
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    dialogues = load_dialogues(which=args.which)
    folder = args.transcripts or next(iter(sorted(Path("build/transcripts").glob("*-lang-detected"))), None)
    transcripts: dict[str, Transcript] = {}
    for d in dialogues:
        if args.path == "text":
            transcripts[d["id"]] = Transcript.from_dict(transcript_dict(d))
        else:
            assert folder is not None, "transcribe first: python -m benchmarks.accuracy --path audio ..."
            transcripts[d["id"]] = Transcript.from_dict(json.loads((folder / f"{d['id']}.json").read_text(encoding="utf-8")))
    base = {d["id"]: score_transcript(transcripts[d["id"]], default_script(transcripts[d["id"]].language)).to_dict()
            for d in dialogues}
    aligned = {d["id"]: turns_to_utterances(d, transcripts[d["id"]], None if args.path == "text" else
                                            (args.audio_dir or Path(f"build/{args.which}_audio")) / f"{d['id']}.labels.json")
               for d in dialogues}
    rng = random.Random(args.seed)
    points: list[dict[str, Any]] = []
    for size in args.sizes:
        runs = []
        for _ in range(1 if size == 0 else args.draws):
            reviewed = set(rng.sample([d["id"] for d in dialogues], size))
            examples: dict[str, list[dict[str, Any]]] = {"ru": [], "en": []}
            for d in dialogues:
                if d["id"] in reviewed:
                    examples[d["language"]] += reviews_of(d, base[d["id"]], aligned[d["id"]])
            scripts = {lang: learned_script(lang, ex) for lang, ex in examples.items()}
            ev = Evaluation()
            for d in dialogues:
                if d["id"] not in reviewed:
                    t = transcripts[d["id"]]
                    ev.add(d, score_transcript(t, scripts.get(t.language) or default_script(t.language)).to_dict())
            s = ev.summary()
            runs.append({k: s[k]["f1"] for k in ("stages_all", "objection_detection", "unhandled_objections")})
        point = {"reviewed_calls": size, "draws": len(runs),
                 **{k: round(statistics.mean(r[k] for r in runs), 3) for k in runs[0]},
                 **{f"{k}_range": [min(r[k] for r in runs), max(r[k] for r in runs)] for k in runs[0]}}
        points.append(point)
        if not args.json:
            print(f"{size:>3} reviewed calls ({len(runs)} draws): objections F1 {point['objection_detection']:.3f} "
                  f"({point['objection_detection_range'][0]:.2f}-{point['objection_detection_range'][1]:.2f}), unhandled "
                  f"{point['unhandled_objections']:.3f}, stages {point['stages_all']:.3f}", flush=True)
    out = {"set": args.which, "path": args.path, "calls": len(dialogues), "points": points,
           "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

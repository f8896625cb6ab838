"""The learned layer, cross-validated on the labelled training dialogues (never the blind sets).

    python -m benchmarks.learned [--folds 5 | --by writer] [--set NAME ...] [--path text|audio] [--recognised] [--learned-passed 0.6] [--json]

The dialogues of the training sets (``analyzer.learned.TRAINING_SETS``) are split into folds by
dialogue; for each fold the bundled scripts' models are trained on the corpus without that fold's
dialogues (the utterance and answer banks always in) and the fold's dialogues scored with them:
their labelled text (``--path text``) or their rendered audio's transcripts (``--path audio``, kept by
``benchmarks.accuracy --path audio`` or ``python -m sample_calls.learn recognise``). ``--recognised``
adds the training part's dialogues in the recogniser's words (:func:`analyzer.learned.recognised_dialogue`)
to what the models learn from. ``--by writer`` makes each batch of writers a fold
(``sample_calls.learn.writer``: the sample, held-out and fresh sets and each batch of training
dialogues, each with the banks its writers wrote): the models never saw the scored calls' writers,
as they never see a customer's, so this is the figure that predicts a blind set, and the one to
choose by. Reports the same figures as ``benchmarks/accuracy.py`` for the phrase lists alone and
with the learned layer, and the threshold settings used; ``--learned-*`` and ``--handled-*``
override the thresholds, to choose them here and never on a blind set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from typing import Any

from analyzer import Transcript, score_transcript
from analyzer.learned import TRAINING_SETS, corpus_from_dialogues, train
from analyzer.scripts import default_script
from analyzer.settings import AnalyzerSettings
from analyzer.thresholds import DEFAULT
from benchmarks.common import Evaluation, transcript_dict, transcripts_dir
from sample_calls import learn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--by", choices=["dialogue", "writer"], default="dialogue",
                    help="folds of random dialogues, or one fold per batch of writers (its banks left out too)")
    ap.add_argument("--set", dest="sets", nargs="+", default=list(TRAINING_SETS), choices=list(TRAINING_SETS),
                    help="score these sets' dialogues (the models always learn from every training set but the fold)")
    for name in ("learned_passed", "learned_uncertain", "learned_veto", "learned_keep", "handled_sure", "unhandled_sure"):
        ap.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(DEFAULT, name))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--path", choices=["text", "audio"], default="text",
                    help="score the folds' labelled text, or the transcripts of their rendered audio")
    ap.add_argument("--recognised", action="store_true",
                    help="also learn from the training part's dialogues as the recogniser heard them")
    ap.add_argument("--errors", action="store_true", help="list every wrong verdict of the learned layer")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    sets = learn.training_dialogues()
    everything = [d for _, d in sets]
    scored = {d["id"] for folder, d in sets if folder in args.sets}
    transcripts = transcripts_dir(AnalyzerSettings())
    heard = {d["id"]: found for folder, d in sets if (found := learn.heard(folder, d, transcripts)) is not None} \
        if args.path == "audio" or args.recognised else {}
    if args.path == "audio":
        missing = sorted(scored - set(heard))
        if missing:
            print(f"{len(missing)} dialogues have no transcript (e.g. {missing[0]}): python -m sample_calls.learn recognise")
            return 2
    random.Random(args.seed).shuffle(everything)
    if args.by == "writer":
        batch = {d["id"]: learn.writer(folder, d["id"]) for folder, d in sets}
        names = sorted(set(batch.values()))
        folds = [[d for d in everything if batch[d["id"]] == name] for name in names]
    else:
        names = [None] * args.folds
        folds = [everything[k :: args.folds] for k in range(args.folds)]
    per_fold: dict[str, dict[str, Any]] = {}
    learned = dataclasses.replace(DEFAULT, learned_passed=args.learned_passed, learned_uncertain=args.learned_uncertain,
                                  learned_veto=args.learned_veto, learned_keep=args.learned_keep, handled_sure=args.handled_sure,
                                  unhandled_sure=args.unhandled_sure)
    rules_only = dataclasses.replace(DEFAULT, learned=False)
    evaluations = {"phrase lists": Evaluation(), "phrase lists + learned": Evaluation()}
    scripts = {lang: default_script(lang) for lang in ("ru", "en")}
    for k, (name, fold) in enumerate(zip(names, folds, strict=True)):
        held = {d["id"] for d in fold}
        if not held & scored:
            continue
        bank_utterances, bank_responses = learn.banks(without=name)
        fold_ev = Evaluation()
        learn_from = [d for d in everything if d["id"] not in held]
        if args.recognised:
            learn_from += [heard[d["id"]][1] for d in learn_from if d["id"] in heard]
        corpus = corpus_from_dialogues(learn_from, utterance_banks=bank_utterances, response_banks=bank_responses)
        models = {lang: train(script, corpus) for lang, script in scripts.items()}
        for d in (d for d in fold if d["id"] in scored):
            transcript = Transcript.from_dict(heard[d["id"]][0] if args.path == "audio" else transcript_dict(d))
            script = scripts[d["language"]]
            evaluations["phrase lists"].add(d, score_transcript(transcript, script, thresholds=rules_only).to_dict())
            report = score_transcript(transcript, script, thresholds=learned, model=models[d["language"]]).to_dict()
            evaluations["phrase lists + learned"].add(d, report)
            fold_ev.add(d, report)
        if name is not None and fold_ev.summary()["objection_detection"]["f1"] is not None:
            per_fold[name] = {k: fold_ev.summary()[k]["f1"] for k in ("objection_detection", "unhandled_objections")}
        print(f"fold {k + 1}/{len(folds)} done{f' ({name}: {per_fold.get(name)})' if name else ''}", flush=True)
    out: dict[str, Any] = {"dialogues": len(scored), "sets": args.sets, "folds": len(folds), "by": args.by, "path": args.path,
                           "recognised": args.recognised,
                           "thresholds": {k: getattr(learned, k) for k in ("learned_passed", "learned_uncertain", "learned_veto",
                                                                          "learned_keep", "handled_sure", "unhandled_sure")},
                           "per_writer": per_fold, "seconds": round(time.perf_counter() - started, 1)}
    for name, ev in evaluations.items():
        s = ev.summary()
        out[name] = {k: s[k] for k in ("stages_all", "objection_detection", "unhandled_objections", "handled_objections",
                                       "uncertain_share")}
    if args.errors:
        print("\n".join(evaluations["phrase lists + learned"].errors))
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"{out['dialogues']} dialogues of {', '.join(args.sets)}, {len(folds)} folds by {args.by}, {args.path} path"
          f"{', learning from recognised text too' if args.recognised else ''}; {out['thresholds']}")
    for name in evaluations:
        row = out[name]
        figures = "; ".join(f"{k} F1 {row[k]['f1']:.2f} (P {row[k]['precision']:.2f} R {row[k]['recall']:.2f})"
                            for k in ("objection_detection", "unhandled_objections"))
        print(f"  {name:24} {figures}; uncertain {row['uncertain_share']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

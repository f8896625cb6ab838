"""Accuracy on the labelled sample set: precision, recall, F1 per stage, for objection detection and
for handled/unhandled, on the text path (labelled turns scored directly) or the audio path
(rendered telephone audio through Whisper).

    python -m benchmarks.accuracy --path text
    python -m benchmarks.accuracy --path audio --audio-dir build/sample_audio
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from analyzer import Analyzer, Transcript, score_transcript
from analyzer.scripts import default_script
from benchmarks.common import SETS, Evaluation, load_dialogues, transcript_dict, transcripts_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", choices=["text", "audio"], default="text")
    ap.add_argument("--audio-dir", type=Path, default=Path("build/sample_audio"))
    ap.add_argument("--set", dest="which", choices=sorted(SETS), default="sample")
    ap.add_argument("--uncertain-as", choices=["passed", "missed"], default="passed")
    ap.add_argument("--language", choices=["detected", "given"], default="detected",
                    help="audio path: let the recogniser detect each call's language, as `callqa analyze` does "
                    "with default settings (default), or give it the dialogue's")
    ap.add_argument("--only", choices=["ru", "en"], help="only the dialogues of this language")
    ap.add_argument("--errors", action="store_true", help="list every wrong verdict")
    ap.add_argument(
        "--transcripts", type=Path, default=None,
        help="keep audio-path transcripts here and re-score them on later runs (default: build/transcripts/<settings>)",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("ids", nargs="*")
    args = ap.parse_args(argv)
    dialogues = [d for d in load_dialogues(args.ids or None, which=args.which) if args.only in (None, d["language"])]
    ev = Evaluation()
    started = time.perf_counter()
    analyzer = Analyzer() if args.path == "audio" else None
    cache: Path | None = None
    if analyzer is not None:
        cache = args.transcripts or transcripts_dir(analyzer.settings, args.language)
        cache.mkdir(parents=True, exist_ok=True)
    for d in dialogues:
        if args.path == "text":
            report = score_transcript(Transcript.from_dict(transcript_dict(d)), default_script(d["language"])).to_dict()
        else:
            wav = args.audio_dir / f"{d['id']}.wav"
            if not wav.is_file():
                folder = "dialogues" if args.which == "sample" else args.which
                print(f"missing {wav}: render with python -m sample_calls.render sample_calls/{folder}/*.yaml --out {args.audio_dir}",
                      file=sys.stderr)
                return 2
            stored = cache / f"{d['id']}.json"  # type: ignore[operator]
            if stored.is_file():
                transcript = Transcript.from_dict(json.loads(stored.read_text(encoding="utf-8")))
            else:
                language = d["language"] if args.language == "given" else None
                transcript = analyzer.transcribe(wav, language=language)  # type: ignore[union-attr]
                stored.write_text(json.dumps(transcript.to_dict(), ensure_ascii=False), encoding="utf-8")
            report = analyzer.score(transcript).to_dict()  # type: ignore[union-attr]
        ev.add(d, report, uncertain_as=args.uncertain_as)
    summary = {"path": args.path, "set": args.which, "calls": len(dialogues), "only": args.only,
               "language": args.language if args.path == "audio" else "given", "seconds": round(time.perf_counter() - started, 1), **ev.summary()}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        print(f"{args.path} path, {args.which} set, {len(dialogues)} calls, uncertain counted as {args.uncertain_as}")
        for k, v in summary["stages"].items():
            print(f"  stage {k:16} P {v['precision']:.2f} R {v['recall']:.2f} F1 {v['f1']:.2f}")
        for k in ("stages_all", "objection_detection", "unhandled_objections", "handled_objections"):
            v = summary[k]
            print(f"  {k:22} P {v['precision']:.2f} R {v['recall']:.2f} F1 {v['f1']:.2f}  ({v['tp']} tp, {v['fp']} fp, {v['fn']} fn)")
        print(f"  uncertain share {summary['uncertain_share']:.3f}")
    if args.errors:
        print("\n".join(ev.errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

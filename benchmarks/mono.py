"""Mono recordings: how many recognised words get the right speaker role.

    python -m benchmarks.mono [--calls 8]

Renders sample dialogues mixed down to one channel, analyses them, and compares each word's role
with the role of the labelled turn it falls in (words between turns are not counted).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from analyzer import Analyzer
from benchmarks.common import ROOT, load_dialogues


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "mono_audio")
    args = ap.parse_args(argv)
    picked = [d for d in load_dialogues() if d["language"] == "ru"][: args.calls // 2]
    picked += [d for d in load_dialogues() if d["language"] == "en"][: args.calls - len(picked)]
    ids = [d["id"] for d in picked]
    subprocess.run([sys.executable, "-m", "sample_calls.render", *ids, "--out", str(args.out), "--mono"], check=True, capture_output=True)
    analyzer = Analyzer()
    total = right = 0
    for d in picked:
        labels = json.loads((args.out / f"{d['id']}.labels.json").read_text(encoding="utf-8"))
        report = analyzer.analyze(args.out / f"{d['id']}.wav", language=d["language"])
        n = ok = 0
        for u in report.transcript.utterances:
            for w in u.words:
                mid = (w.start + w.end) / 2
                turn = next((t for t in labels["turns"] if t["start"] <= mid <= t["end"]), None)
                if turn is None:
                    continue
                n += 1
                ok += turn["speaker"] == u.speaker
        total += n
        right += ok
        print(f"{d['id']:48} words {n:4}  right role {ok / n if n else 0:.0%}")
    print(f"all: {right / total:.1%} of {total} words with the right role")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

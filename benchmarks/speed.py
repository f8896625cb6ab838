"""Speed on this machine: the analyzer vs bare faster-whisper on the same stereo calls, in one run,
and re-scoring stored transcripts.

    python -m benchmarks.speed [--calls 8] [--beam 1]

Bare faster-whisper decodes each file, splits the channels and transcribes each with the same
model and decoding options (VAD, word timestamps). The analyzer does that plus its guards,
roles, matching and scoring. Audio seconds per wall second are reported for both, with the peak
resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from analyzer import Analyzer, Transcriber, score_transcript
from analyzer.scripts import default_script
from analyzer.settings import get_settings
from benchmarks.common import ROOT, load_dialogues


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--beam", type=int, default=None, help="beam size (default: the setting)")
    ap.add_argument("--audio-dir", type=Path, default=ROOT / "build" / "sample_audio")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    dialogues = [d for d in load_dialogues() if d["language"] == "ru"][: args.calls]
    files = [args.audio_dir / f"{d['id']}.wav" for d in dialogues]
    missing = [d["id"] for d, f in zip(dialogues, files) if not f.is_file()]
    if missing:
        subprocess.run([sys.executable, "-m", "sample_calls.render", *missing, "--out", str(args.audio_dir)], check=True)
    settings = get_settings(**({"beam_size": args.beam} if args.beam else {}))
    transcriber = Transcriber(settings)
    model = transcriber.model  # load once, outside the timings
    analyzer = Analyzer(settings, transcriber=transcriber)

    from faster_whisper import decode_audio

    def bare(f: Path) -> None:
        left, right = decode_audio(str(f), split_stereo=True)
        for ch in (left, right):
            segments, _ = model.transcribe(
                ch, language="ru", beam_size=settings.beam_size, vad_filter=True, word_timestamps=True,
                condition_on_previous_text=False,
            )
            list(segments)

    # warm up both paths on the first file (lazy initialisation of VAD, spaCy, scripts)
    bare(files[0])
    analyzer.analyze(files[0], language="ru")

    audio_seconds = 0.0
    t_bare = t_ours = 0.0
    transcripts = []
    for f in files:
        t0 = time.perf_counter()
        bare(f)
        t1 = time.perf_counter()
        report = analyzer.analyze(f, language="ru")
        t2 = time.perf_counter()
        t_bare += t1 - t0
        t_ours += t2 - t1
        audio_seconds += report.duration or 0.0
        transcripts.append(report.transcript)

    # re-scoring stored transcripts: the sample transcripts from audio plus the labelled texts
    script = default_script("ru")
    batch = transcripts * max(1, 1000 // max(1, len(transcripts)))
    t0 = time.perf_counter()
    for tr in batch:
        score_transcript(tr, script)
    rescore = len(batch) / (time.perf_counter() - t0)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "machine": _machine(),
        "model": settings.model,
        "compute": "int8 cpu",
        "beam_size": settings.beam_size,
        "calls": len(files),
        "audio_seconds": round(audio_seconds, 1),
        "bare_faster_whisper_x_realtime": round(audio_seconds / t_bare, 1),
        "analyzer_x_realtime": round(audio_seconds / t_ours, 1),
        "analyzer_overhead_percent": round(100 * (t_ours - t_bare) / t_bare, 1),
        "rescoring_calls_per_second": round(rescore, 0),
        "peak_memory_mb": round(peak_mb, 0),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k, v in result.items():
            print(f"{k:34} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

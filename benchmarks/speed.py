"""Speed on this machine: the analyzer vs bare faster-whisper on the same stereo calls, in one run,
and re-scoring stored transcripts.

    python -m benchmarks.speed [--calls 8] [--beam 1] [--whole 2]

``--whole N`` (the figure the README leads with) measures as a user meets it: ``callqa analyze
FILES --json`` as one whole process (model load, language detection, everything) against
``benchmarks.bare_whisper`` (bare batched faster-whisper, language not given) on the same files, N
times each, alternating; the in-process comparison below it then uses the detected language too.

Bare faster-whisper decodes each file, splits the channels and transcribes each with the same
model and decoding options (VAD, word timestamps), once with ``WhisperModel.transcribe`` and once
with its ``BatchedInferencePipeline``. The analyzer does that plus its guards, roles, matching and
scoring (batching both channels together when ``CALLQA_BATCH_SIZE`` > 0). Audio seconds per wall
second are reported for each, the analyzer's overhead against bare faster-whisper in the same
mode, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from analyzer import Analyzer, Transcriber, score_transcript
from analyzer.scripts import default_script
from analyzer.settings import get_settings
from benchmarks.common import ROOT, load_dialogues, machine, print_figures


def _whole_process(files: list[Path], settings, overrides: dict, *, runs: int) -> dict:  # noqa: ANN001
    """Wall time of ``callqa analyze`` and of bare batched faster-whisper, each as its own process."""
    import os
    import shutil

    from analyzer.model import resolve_model

    env = {**os.environ, **{f"CALLQA_{k.upper()}": str(v) for k, v in overrides.items()}}
    callqa = shutil.which("callqa", path=str(Path(sys.executable).parent)) or "callqa"
    model_dir = resolve_model(settings.model, cache_dir=settings.model_cache_dir, allow_download=False)
    ours = [callqa, "analyze", *map(str, files), "--json"]
    bare = [sys.executable, "-m", "benchmarks.bare_whisper", model_dir, *map(str, files), "--beam", str(settings.beam_size),
            "--batch", str(settings.batch_size or 8), "--threads", str(settings.cpu_threads)]
    seconds = sum(float(subprocess.run(["soxi", "-D", str(f)], capture_output=True, text=True, check=True).stdout)
                  for f in files)
    t_ours: list[float] = []
    t_bare: list[float] = []
    for _ in range(runs):
        for cmd, times in ((bare, t_bare), (ours, t_ours)):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            times.append(time.perf_counter() - t0)
    return {
        "whole_process_audio_seconds": round(seconds, 1),
        "whole_process_bare_batched_x_realtime": [round(seconds / t, 1) for t in t_bare],
        "whole_process_callqa_x_realtime": [round(seconds / t, 1) for t in t_ours],
        "whole_process_overhead_percent": [round(100 * (o - b) / b, 1) for o, b in zip(t_ours, t_bare, strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--beam", type=int, default=None, help="beam size (default: the setting)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the setting)")
    ap.add_argument("--audio-dir", type=Path, default=ROOT / "build" / "sample_audio")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--whole", type=int, default=2, help="runs of the whole-process comparison (0: skip it)")
    ap.add_argument("--language", default=None, help="give the language in the in-process runs (default: detected)")
    args = ap.parse_args(argv)

    dialogues = [d for d in load_dialogues() if d["language"] == "ru"][: args.calls]
    files = [args.audio_dir / f"{d['id']}.wav" for d in dialogues]
    missing = [d["id"] for d, f in zip(dialogues, files, strict=True) if not f.is_file()]
    if missing:
        subprocess.run([sys.executable, "-m", "sample_calls.render", *missing, "--out", str(args.audio_dir)], check=True)
    overrides: dict = {}
    if args.beam:
        overrides["beam_size"] = args.beam
    if args.batch is not None:
        overrides["batch_size"] = args.batch
    settings = get_settings(**overrides)
    whole = _whole_process(files, settings, overrides, runs=args.whole) if args.whole else {}
    language = args.language
    transcriber = Transcriber(settings)
    model = transcriber.model  # load once, outside the timings
    analyzer = Analyzer(settings, transcriber=transcriber)

    from faster_whisper import BatchedInferencePipeline, decode_audio

    batched = BatchedInferencePipeline(model)

    def bare(f: Path, *, batch: int) -> None:
        """faster-whisper alone: decode, split the channels, transcribe each with the same options."""
        left, right = decode_audio(str(f), split_stereo=True)
        for ch in (left, right):
            if batch:
                segments, _ = batched.transcribe(
                    ch, language=language, beam_size=settings.beam_size, vad_filter=True, word_timestamps=True,
                    batch_size=batch,
                )
            else:
                segments, _ = model.transcribe(
                    ch, language=language, beam_size=settings.beam_size, vad_filter=True, word_timestamps=True,
                    condition_on_previous_text=False,
                )
            list(segments)

    # warm up every path on the first file (lazy initialisation of VAD, spaCy, scripts)
    bare(files[0], batch=0)
    bare(files[0], batch=8)
    analyzer.analyze(files[0], language=language)

    audio_seconds = 0.0
    t_seq = t_batch = t_ours = 0.0
    transcripts = []
    for f in files:  # interleaved, so that any drift of the machine hits all three alike
        t0 = time.perf_counter()
        bare(f, batch=0)
        t1 = time.perf_counter()
        bare(f, batch=8)
        t2 = time.perf_counter()
        report = analyzer.analyze(f, language=language)
        t3 = time.perf_counter()
        t_seq += t1 - t0
        t_batch += t2 - t1
        t_ours += t3 - t2
        audio_seconds += report.duration or 0.0
        transcripts.append(report.transcript)
    t_bare = t_batch if settings.batch_size else t_seq

    # re-scoring stored transcripts: the sample transcripts from audio plus the labelled texts
    script = default_script("ru")
    batch = transcripts * max(1, 1000 // max(1, len(transcripts)))
    t0 = time.perf_counter()
    for tr in batch:
        score_transcript(tr, script)
    rescore = len(batch) / (time.perf_counter() - t0)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "machine": machine(),
        "model": settings.model,
        "compute": "int8 cpu",
        "beam_size": settings.beam_size,
        "batch_size": settings.batch_size,
        "calls": len(files),
        "language": language or "detected",
        "audio_seconds": round(audio_seconds, 1),
        "bare_faster_whisper_x_realtime": round(audio_seconds / t_seq, 1),
        "bare_faster_whisper_batched_x_realtime": round(audio_seconds / t_batch, 1),
        "analyzer_x_realtime": round(audio_seconds / t_ours, 1),
        "analyzer_overhead_percent_vs_same_mode": round(100 * (t_ours - t_bare) / t_bare, 1),
        **whole,
        "rescoring_calls_per_second": round(rescore, 0),
        "peak_memory_mb": round(peak_mb, 0),
    }
    print_figures(result, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

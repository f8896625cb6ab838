"""Bare faster-whisper as a user would run it instead of callqa: one process that loads the model,
then for each stereo file decodes it, splits the channels and transcribes each with the batched
pipeline, language not given (faster-whisper detects it per channel), VAD and word timestamps on,
the same beam and batch as callqa's settings. The yardstick of ``benchmarks.speed --whole``.

    python -m benchmarks.bare_whisper MODEL_DIR FILE... [--beam 5] [--batch 8] [--threads 0]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    model = WhisperModel(args.model, device="cpu", compute_type="int8", cpu_threads=args.threads, local_files_only=True)
    pipeline = BatchedInferencePipeline(model)
    for f in args.files:
        for channel in decode_audio(f, split_stereo=True):
            segments, info = pipeline.transcribe(channel, beam_size=args.beam, vad_filter=True, word_timestamps=True,
                                                 batch_size=args.batch)
            words = sum(len(s.words or []) for s in segments)
            print(f"{f}\t{info.language}\t{words}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Word error rate of callqa's transcript against bare faster-whisper's, on real telephone
recordings of one person (a professional voice, 8 kHz).

    apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-ru-wav
    python -m benchmarks.wer [--set en|ru] [--limit 60] [--language xx] [--show] [--json]

The recordings are Asterisk's core sounds (CC-BY-SA 3.0 / CC-BY 3.0, recorded by people for
telephone use): English by Allison Smith with their texts (``core-sounds-en.txt``), Russian by
IvrvoiceRU, for which Debian ships no texts. The prompts with at least four words in the English
text are taken in name order (the Russian ones with the same names: the same prompts, translated).

callqa: ``Analyzer().analyze(file)``, the transcript's text as the report gives it (a mono
recording, so split into turns; the language detected unless given). Bare: the same model's
``WhisperModel.transcribe`` (VAD on, word timestamps, the same beam), the segments' text joined.
Words: lower case, ё as е, punctuation dropped, compared with rapidfuzz's Levenshtein distance
over word lists. English: each against the text (WER). Russian, without texts: callqa against
bare (how many of bare's words callqa changes or loses, and adds), which finds where our windowing
or guards lose words but cannot say which is right.
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from analyzer import Analyzer
from analyzer.errors import AnalyzerError
from analyzer.settings import get_settings
from benchmarks.common import print_figures

SOUNDS = Path("/usr/share/asterisk/sounds")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
FOLDERS = {"en": "en_US_f_Allison", "ru": "ru_RU_f_IvrvoiceRU"}


def words(text: str) -> list[str]:
    return re.findall(r"[0-9a-zа-я']+", text.lower().replace("ё", "е"))


def prompts(language: str, *, limit: int) -> list[tuple[Path, str | None]]:
    if not TEXTS.is_file():
        raise SystemExit(f"{TEXTS} not found: apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-ru-wav")
    out: list[tuple[Path, str | None]] = []
    for line in gzip.decompress(TEXTS.read_bytes()).decode("utf-8", "replace").splitlines():
        name, sep, said = line.partition(":")
        if not sep or line.startswith(";") or "[" in said or len(words(said)) < 4:
            continue
        wav = SOUNDS / FOLDERS[language] / f"{name.strip()}.wav"
        if wav.is_file():
            out.append((wav, said.strip() if language == "en" else None))
    return sorted(out)[:limit]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="which", choices=list(FOLDERS), default="en")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--language", default=None, help="give the language (default: detected, as a user meets it)")
    ap.add_argument("--show", action="store_true", help="print every prompt where the two transcripts differ")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    items = prompts(args.which, limit=args.limit)
    settings = get_settings()
    analyzer = Analyzer(settings)
    model = analyzer.transcriber.model
    ours_errors = bare_errors = total = lost = added = failed = 0
    for wav, said in items:
        try:
            report = analyzer.analyze(wav, language=args.language)
            ours = words(" ".join(u.text for u in report.transcript.utterances))
        except AnalyzerError as e:  # the user gets no transcript at all: every word lost
            print(f"{wav.stem}: callqa failed: {e}")
            failed += 1
            ours = []
        segments, _ = model.transcribe(str(wav), language=args.language, beam_size=settings.beam_size, vad_filter=True,
                                       word_timestamps=True)
        bare = words(" ".join(s.text for s in segments))
        if said is not None:
            ref = words(said)
            e_ours, e_bare = Levenshtein.distance(ref, ours), Levenshtein.distance(ref, bare)
            ours_errors += e_ours
            bare_errors += e_bare
            total += len(ref)
        else:
            ops = Levenshtein.editops(bare, ours)
            lost += sum(op.tag in ("delete", "replace") for op in ops)
            added += sum(op.tag == "insert" for op in ops)
            total += len(bare)
            e_ours = e_bare = 0
        if args.show and ours != bare:
            print(f"{wav.stem}: {said or ''}\n  callqa ({e_ours}): {' '.join(ours)}\n  bare   ({e_bare}): {' '.join(bare)}")
    result: dict = {"set": args.which, "prompts": len(items), "language": args.language or "detected", "callqa_failed": failed}
    if args.which == "en":
        result |= {"words": total, "wer_callqa": round(ours_errors / total, 3), "wer_bare": round(bare_errors / total, 3)}
    else:
        result |= {"bare_words": total, "changed_or_lost_by_callqa": round(lost / total, 3), "added_by_callqa": round(added / total, 3)}
    print_figures(result, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

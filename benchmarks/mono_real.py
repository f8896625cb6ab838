"""Mono recordings of real, different voices: the share of recognised words given to the right speaker.

    python -m benchmarks.mono_real [DIR ...] [--split voice|pitch ...] [--telephone] [--json]
    python -m benchmarks.mono_real --mix PYANNOTE_TESTS_DATA [--telephone]

Each DIR holds recordings (``NAME.wav`` or ``.flac``) of two people with their gold speaker times (``NAME.rttm``,
the NIST format diarization corpora use). Default: ``tests/data/voices`` (real two-person clips,
see its README). Every file is analysed as a user would (``Analyzer().analyze``, language detected,
roles inferred), each recognised word is given the gold speaker speaking at its middle (words in
overlapped speech or outside the gold turns are not counted; "conversations" counts only the
files where both people speak 5 s or more), and the two labels are matched to
the two roles the way that agrees best: roles themselves (which voice is the manager) are the
script's business, measured by ``benchmarks.mono`` on sample calls. ``--telephone`` first narrows
the audio to 8 kHz, as a telephone line does.

``--mix DIR`` builds more two-person recordings from meetings of several real people: DIR holds
recordings and RTTM files (pyannote-audio's ``tests/data``, fetched from GitHub, MIT); for every
pair of people in one recording, their solo speech (no one else talking) is laid end to end in
its own order with 0.4 s pauses, one mono file a pair, same room and microphone. The recordings in
``tests/data/voices`` are left out of the mixes, which served to choose ``analyzer.voices``' window
and shift; the natural clips are the test.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import wave
from pathlib import Path

from analyzer import Analyzer
from analyzer.settings import get_settings
from benchmarks.common import ROOT, print_figures

DEFAULT = ROOT / "tests" / "data" / "voices"


def read_rttm(path: Path) -> list[tuple[float, float, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            out.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return out


def mixes(src: Path, out: Path, *, skip: set[str]) -> None:
    """Two-person mono mixes of real voices: for every pair of people who speak in one recording of
    ``src``, their solo speech (no one else talking, from all the recordings they speak in, which
    are excerpts of the same meetings) taken in turns, one piece of each, with 0.4 s pauses."""
    import itertools

    import numpy as np

    from analyzer.audio import load_audio

    turns: dict[str, list[tuple[float, float, str]]] = {}
    for rttm in src.glob("*.rttm"):
        for line in rttm.read_text(encoding="utf-8").splitlines():
            f = line.split()
            if f and f[0] == "SPEAKER":
                turns.setdefault(f[1], []).append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    solo: dict[str, list[np.ndarray]] = {}
    pairs: set[tuple[str, str]] = set()
    for uri, spans in sorted(turns.items()):
        wav = src / f"{uri}.wav"
        if uri in skip or not wav.is_file():
            continue
        x = load_audio(wav).channel(0)
        pairs |= set(itertools.combinations(sorted({w for *_, w in spans}), 2))
        for a, b, who in sorted(spans):
            pieces = [(a, b)]
            for c, d, w in spans:
                if w != who and c < b and d > a:
                    pieces = [q for p0, p1 in pieces for q in ((p0, min(p1, c)), (max(p0, d), p1)) if q[1] - q[0] > 0]
            solo.setdefault(who, []).extend(x[int(p0 * 16000):int(p1 * 16000)] for p0, p1 in pieces if p1 - p0 >= 0.4)
    for one, two in sorted(pairs):
        if sum(len(p) for p in solo.get(one, [])) < 3 * 16000 or sum(len(p) for p in solo.get(two, [])) < 3 * 16000:
            continue
        audio, rttm, t = [], [], 0.0
        for a, b in itertools.zip_longest(solo[one], solo[two]):
            for who, piece in ((one, a), (two, b)):
                if piece is None:
                    continue
                rttm.append(f"SPEAKER mix 1 {t:.3f} {len(piece) / 16000:.3f} <NA> <NA> {who} <NA> <NA>")
                audio += [piece, np.zeros(int(0.4 * 16000), dtype=np.float32)]
                t += len(piece) / 16000 + 0.4
        name = f"{one}_{two}"
        with wave.open(str(out / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(np.concatenate(audio), -1, 1) * 32767).astype("<i2").tobytes())
        (out / f"{name}.rttm").write_text("\n".join(rttm) + "\n", encoding="utf-8")


def word_accuracy(utterances, gold: list[tuple[float, float, str]]) -> tuple[int, int]:  # noqa: ANN001
    """(words whose role matches the gold speaker under the better of the two matchings, words counted)."""
    speakers = sorted({s for _, _, s in gold})
    pairs = []
    for u in utterances:
        for w in u.words:
            mid = (w.start + w.end) / 2
            who = {s for a, b, s in gold if a <= mid <= b}
            if len(who) == 1:
                pairs.append((u.speaker, who.pop()))
    if len(speakers) != 2:
        raise SystemExit(f"{len(speakers)} speakers in the gold times; this benchmark is for two")
    a = sum((r == "manager") == (s == speakers[0]) for r, s in pairs)
    return max(a, len(pairs) - a), len(pairs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", type=Path, default=[DEFAULT])
    ap.add_argument("--split", nargs="+", default=["voice", "pitch"], choices=["voice", "pitch"])
    ap.add_argument("--telephone", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--mix", type=Path, default=None, help="build two-person mixes from this folder and measure on them")
    args = ap.parse_args(argv)
    mixed = tempfile.TemporaryDirectory()
    if args.mix:
        mixes(args.mix, Path(mixed.name), skip={f.stem for f in DEFAULT.glob("*.rttm")})
        args.dirs = [Path(mixed.name)]
    files = sorted(f for d in args.dirs for f in d.iterdir()
                   if f.suffix in (".wav", ".flac", ".mp3", ".ogg") and f.with_suffix(".rttm").is_file())
    result: dict = {"files": len(files), "telephone": args.telephone}
    with tempfile.TemporaryDirectory() as tmp:
        if args.telephone:
            narrowed = []
            for f in files:
                out = Path(tmp) / f"{f.stem}.wav"
                subprocess.run(["sox", str(f), "-r", "8000", str(out)], check=True)
                out.with_suffix(".rttm").write_bytes(f.with_suffix(".rttm").read_bytes())
                narrowed.append(out)
            files = narrowed
        for split in args.split:
            analyzer = Analyzer(get_settings(mono_split=split))
            right = total = c_right = c_total = 0
            per_file = {}
            for f in files:
                gold = read_rttm(f.with_suffix(".rttm"))
                report = analyzer.analyze(f)
                ok, n = word_accuracy(report.transcript.utterances, gold)
                per_file[f.stem] = {"accuracy": round(ok / n, 3) if n else None, "words": n}
                right += ok
                total += n
                talk = [sum(b - a for a, b, s in gold if s == who) for who in {s for *_, s in gold}]
                if min(talk) >= 5.0:  # a conversation, not one person's monologue with an interjection
                    c_right += ok
                    c_total += n
            result[split] = {"word_role_accuracy": round(right / total, 3) if total else None, "words": total,
                             "conversations_accuracy": round(c_right / c_total, 3) if c_total else None,
                             "conversations_words": c_total, "per_file": per_file}
    print_figures(result, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

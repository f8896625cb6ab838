"""Render labelled sales-call dialogues (see FORMAT.md) into telephone-quality audio.

Each turn is synthesised with festival's ``text2wave`` (cached), placed on one timeline with
natural gaps and occasional interruptions, the manager on one channel and the client on the
other, then band-limited to 300-3400 Hz at 8 kHz with light noise. Beside every audio file a
``<id>.labels.json`` holds the YAML labels plus per-turn start/end times in seconds.

    python -m sample_calls.render [IDS or YAML paths...] --out DIR [--format wav|ulaw|alaw|mp3|ogg|flac|m4a]
                                  [--mono] [--jobs 2] [--manager-channel left|right] [--ring]

Everything is deterministic: the random generator is seeded from the dialogue id.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

log = logging.getLogger(__name__)

SR = 8000
DIALOGUES_DIR = Path(__file__).resolve().parent / "dialogues"
CACHE_DIR = Path(os.environ.get("CALLQA_TTS_CACHE", "~/.cache/callqa/tts")).expanduser()
BAND = (300, 3400)
SNR_DB = 30.0
# (festival voice, extra sox effects) per (language, speaker). The Russian client reuses the only
# Russian voice, pitched up 3 semitones and slightly slower, so the two sides sound different
# (of -400..+400 cents tried, +300 with tempo 0.95 was best recognised by Whisper).
VOICES = {
    ("ru", "manager"): ("msu_ru_nsh_clunits", ()),
    ("ru", "client"): ("msu_ru_nsh_clunits", ("pitch", "300", "tempo", "0.95")),
    ("en", "manager"): ("kal_diphone", ()),
    ("en", "client"): ("cmu_us_slt_arctic_hts", ()),
}
# format -> (file extension, encoder command with {src} and {dst}); None means write the WAV as is
FORMATS = {
    "wav": (".wav", None),
    "ulaw": (".wav", "sox -D {src} -e u-law -b 8 {dst}"),
    "alaw": (".wav", "sox -D {src} -e a-law -b 8 {dst}"),
    "flac": (".flac", "sox -D {src} {dst}"),
    "mp3": (".mp3", "ffmpeg -nostdin -y -loglevel error -i {src} -c:a libmp3lame -b:a 32k {dst}"),
    "ogg": (".ogg", "ffmpeg -nostdin -y -loglevel error -i {src} -c:a libopus -b:a 24k {dst}"),
    "m4a": (".m4a", "ffmpeg -nostdin -y -loglevel error -i {src} -c:a aac -b:a 32k {dst}"),
}
WORD_SUBS = {"ru": {"%": " процентов", "№": " номер ", "+": " плюс ", "&": " и "},
             "en": {"%": " percent", "#": " number ", "+": " plus ", "&": " and "}}


def sanitise(text: str, lang: str) -> str:
    """Make text safe for festival: its Russian rules choke on «», dashes, ellipses, symbols
    and a space before punctuation (text2wave then exits 0 but writes an empty file)."""
    text = text.replace("…", ",").replace("—", ",").replace("–", ",")
    for sym, word in WORD_SUBS[lang].items():
        text = text.replace(sym, word)
    keep = r"'" if lang == "en" else ""
    text = re.sub(rf"[^\w\s.,!?;:{keep}-]|_", " ", text)        # quotes, brackets, slashes...
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([.,!?;:])", r"\1", text)                 # no space before punctuation
    text = re.sub(r"([.,!?;:])(?:\s*[.,;:])+", r"\1", text)       # ", ," left by a removed dash
    text = re.sub(r"^[\s.,!?;:-]+", "", text).strip()
    text = re.sub(r"[,;:]+$", ".", text)                          # "хорошо…" -> "хорошо."
    if not re.search(r"\w", text):
        raise ValueError("nothing speakable in turn text")
    return text


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def write_wav(path: Path, audio: np.ndarray) -> None:
    """audio: float array, shape (n,) or (n, channels), written as 16-bit PCM at 8 kHz."""
    pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def synth(text: str, lang: str, speaker: str, cache_dir: Path = CACHE_DIR) -> np.ndarray:
    """One turn as float32 mono at 8 kHz, band-limited, peak -3 dBFS, edge silence trimmed."""
    voice, effects = VOICES[(lang, speaker)]
    text = sanitise(text, lang)
    key = hashlib.sha256(f"{voice}|{' '.join(effects)}|{SR}|{BAND}|{text}".encode()).hexdigest()
    cached = cache_dir / key[:2] / f"{key}.wav"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=cache_dir) as tmp:  # same fs for os.replace
            txt, raw, out = Path(tmp, "t.txt"), Path(tmp, "raw.wav"), Path(tmp, "out.wav")
            txt.write_text(text + "\n", encoding="utf-8")
            _run(["text2wave", "-eval", f"(voice_{voice})", str(txt), "-o", str(raw)], "text2wave")
            if not raw.exists() or raw.stat().st_size <= 44:
                raise RuntimeError(f"text2wave ({voice}) wrote an empty file for: {text!r}")
            _run(["sox", "-D", str(raw), "-b", "16", "-c", "1", str(out), *effects,
                  "sinc", f"{BAND[0]}-{BAND[1]}", "rate", str(SR), "gain", "-n", "-3"], "sox")
            os.replace(out, cached)  # atomic, so parallel renders never see half a file; -D: no dither, so repeatable
        log.debug("synthesised %s %s: %s", voice, key[:8], text)
    audio = read_wav(cached)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    if loud.size == 0:
        raise RuntimeError(f"synthesised audio is silent for: {text!r}")
    pad = int(0.02 * SR)
    return audio[max(loud[0] - pad, 0): loud[-1] + pad + 1]


def load_dialogue(src: str | Path | dict) -> dict:
    if isinstance(src, dict):
        d = src
    else:
        path = Path(src)
        if not path.suffix and not path.exists():
            path = DIALOGUES_DIR / f"{src}.yaml"
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(d, dict) or not d.get("id") or d.get("language") not in ("ru", "en"):
        raise ValueError(f"{src}: need an id and language ru|en")
    turns = d.get("turns") or []
    for i, t in enumerate(turns):
        if t.get("speaker") not in ("manager", "client") or not str(t.get("text", "")).strip():
            raise ValueError(f"{d['id']}: turn {i} needs speaker manager|client and text")
    if not turns:
        raise ValueError(f"{d['id']}: no turns")
    return d


def _bandpassed_noise(rng: np.random.Generator, n: int, rms: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spec[(freqs < BAND[0]) | (freqs > BAND[1])] = 0
    noise = np.fft.irfft(spec, n)
    return noise * (rms / (np.sqrt(np.mean(noise ** 2)) + 1e-12))


def render_dialogue(dialogue_path_or_dict, out_dir, *, fmt: str = "wav", mono: bool = False,
                    manager_channel: str = "left", lead_in: float = 1.0, ring: bool = False,
                    cache_dir: str | Path | None = None) -> Path:
    """Render one dialogue to ``out_dir/<id>.<ext>`` plus ``<id>.labels.json``; returns the audio path."""
    if fmt not in FORMATS or manager_channel not in ("left", "right"):
        raise ValueError(f"bad fmt {fmt!r} or manager_channel {manager_channel!r}")
    d = load_dialogue(dialogue_path_or_dict)
    did, lang = str(d["id"]), d["language"]
    seed = int.from_bytes(hashlib.sha256(did.encode()).digest()[:8], "big")
    rnd = random.Random(seed)
    cache = Path(cache_dir or CACHE_DIR)
    clips = [synth(str(t["text"]), lang, t["speaker"], cache) for t in d["turns"]]

    # timeline: gap 0.25-0.9 s, or in ~10% of speaker changes start 0.3-0.6 s before the previous end
    placed, last_end = [], {"manager": 0.0, "client": 0.0}
    for i, (turn, clip) in enumerate(zip(d["turns"], clips, strict=False)):
        dur = len(clip) / SR
        if i == 0:
            start = lead_in
        else:
            prev = placed[-1]
            gap, overlap = rnd.uniform(0.25, 0.9), rnd.uniform(0.3, 0.6)
            if turn["speaker"] != prev["speaker"] and rnd.random() < 0.10:
                start = prev["end"] - min(overlap, 0.5 * (prev["end"] - prev["start"]))
            else:
                start = prev["end"] + gap
            start = max(start, last_end[turn["speaker"]] + 0.25)  # never overlap one's own voice
        start = round(start * SR) / SR
        placed.append({"speaker": turn["speaker"], "text": turn["text"],
                       "start": start, "end": start + dur})
        last_end[turn["speaker"]] = start + dur

    total = int(round((max(p["end"] for p in placed) + 0.5) * SR))
    chan = {"manager": 0 if manager_channel == "left" else 1}
    chan["client"] = 1 - chan["manager"]
    gains = {"manager": 10 ** (-rnd.uniform(1, 3) / 20), "client": 10 ** (-rnd.uniform(1, 5) / 20)}
    audio = np.zeros((total, 2), np.float32)
    for p, clip in zip(placed, clips, strict=False):
        s = int(round(p["start"] * SR))
        audio[s:s + len(clip), chan[p["speaker"]]] += clip * gains[p["speaker"]]
    if ring and lead_in >= 0.5:  # ring-back tone heard on the manager's (caller's) side
        t = np.arange(int((lead_in - 0.3) * SR)) / SR
        tone = np.sin(2 * np.pi * 425 * t) if lang == "ru" else (
            np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)) / 2
        audio[:len(t), chan["manager"]] += 0.1 * tone

    speech = np.concatenate([c * gains[p["speaker"]] for p, c in zip(placed, clips, strict=False)])
    noise_rms = np.sqrt(np.mean(speech ** 2)) * 10 ** (-SNR_DB / 20)
    nrng = np.random.default_rng(seed)
    for c in range(2):
        audio[:, c] += _bandpassed_noise(nrng, total, noise_rms)
    if mono:
        audio = audio.sum(axis=1)
    audio /= max(1.0, float(np.abs(audio).max()) / 0.98)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ext, encoder = FORMATS[fmt]
    dst = out_dir / f"{did}{ext}"
    if encoder is None:
        write_wav(dst, audio)
    else:
        with tempfile.TemporaryDirectory(prefix="callqa-render-") as tmp:
            pcm, enc = Path(tmp, "pcm.wav"), Path(tmp, "enc" + ext)
            write_wav(pcm, audio)
            _run(encoder.format(src=pcm, dst=enc).split(), f"encoding {fmt}")
            dst.write_bytes(enc.read_bytes())

    labels = {
        "id": did, "language": lang, "industry": d.get("industry"), "labels": d.get("labels") or {},
        "manager_channel": "mono" if mono else manager_channel, "channels": 1 if mono else 2,
        "sample_rate": SR, "format": fmt, "audio": dst.name, "duration": round(total / SR, 3),
        "turns": [{"index": i, "speaker": p["speaker"], "text": p["text"],
                   "start": round(p["start"], 3), "end": round(p["end"], 3)} for i, p in enumerate(placed)],
    }
    (out_dir / f"{did}.labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=2) + "\n",
                                                encoding="utf-8")
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sample_calls.render", description=__doc__.split("\n\n")[0])
    ap.add_argument("dialogues", nargs="*", help="dialogue ids or YAML paths (default: all in dialogues/)")
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--format", default="wav", choices=sorted(FORMATS))
    ap.add_argument("--mono", action="store_true", help="mix both sides into one channel")
    ap.add_argument("--jobs", type=int, default=2, help="dialogues rendered in parallel")
    ap.add_argument("--manager-channel", default="left", choices=["left", "right"])
    ap.add_argument("--ring", action="store_true", help="ring-back tone in the 1 s lead-in")
    ap.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    sources = args.dialogues or sorted(DIALOGUES_DIR.glob("*.yaml"))
    if not sources:
        log.error("no dialogues found in %s", DIALOGUES_DIR)
        return 1

    def one(src):
        try:
            path = render_dialogue(src, args.out, fmt=args.format, mono=args.mono,
                                   manager_channel=args.manager_channel, ring=args.ring,
                                   cache_dir=args.cache_dir)
            labels = json.loads(path.with_suffix(".labels.json").read_text(encoding="utf-8"))
            print(f"ok   {path}  {labels['duration']:.1f}s  {len(labels['turns'])} turns", flush=True)
            return True
        except Exception as exc:  # keep rendering the others, report at the end
            log.debug("failed %s", src, exc_info=True)
            print(f"FAIL {src}: {exc}", flush=True)
            return False

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(one, sources))
    if not all(results):
        log.error("%d of %d dialogues failed", results.count(False), len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

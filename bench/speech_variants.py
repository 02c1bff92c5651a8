#!/usr/bin/env python3
"""Fast, noisy and negative clips through `hotline recognize` (issue 9's clip classes).

The Mandarin dev clips of ../shared/speech/dev as they are (the baseline, same run), sped
up 1.3x without changing pitch (sox tempo), and mixed with pink noise at 10 dB SNR (a
street or a crowded room), each through the release binary's `hotline recognize` (the call
path: 20 ms frames, the shipped endpointing, grammar and intent model), counting the
`intent:` line against the manifest's queue. Negative clips (silence, white, pink and
brown noise, mains hum, coughs) must print `intent: none`. The dev clips' texts are in the
intent model's training data: the ratio to the clean baseline measures what speed and
noise cost the recogniser, not generalisation (the corpus test split does that).

Usage: python3 bench/speech_variants.py   (after cargo build --release; about 8 minutes)
"""
import csv
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEV = os.path.join(ROOT, "..", "shared", "speech", "dev")
HOTLINE = os.path.join(ROOT, "target", "release", "hotline")
RATE = ["-r", "8000", "-b", "16", "-c", "1"]


def sox(*args):
    subprocess.run(["sox", *args], check=True, capture_output=True)


def recognize(path):
    out = subprocess.run(
        [HOTLINE, "recognize", path], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    m = re.search(r"^intent:\s+(\S+)", out, re.M)
    return m.group(1) if m else "missing"


def make_variants(work, clips):
    """(class, path, expected intent) for every clip to recognise."""
    runs = []
    for name, queue in clips:
        src = os.path.join(DEV, name)
        runs.append(("clean", src, queue))
        fast = os.path.join(work, "fast-" + name)
        sox(src, fast, "tempo", "-s", "1.3")
        runs.append(("fast", fast, queue))
        noisy = os.path.join(work, "noisy-" + name)
        noise = os.path.join(work, "noise-" + name)
        seconds = float(subprocess.run(["soxi", "-D", src], capture_output=True, text=True).stdout)
        # Pink noise 10 dB below the clip's RMS level.
        rms = float(
            re.search(r"RMS\s+amplitude:\s+([0-9.]+)",
                      subprocess.run(["sox", src, "-n", "stat"], capture_output=True,
                                     text=True).stderr).group(1))
        sox("-n", *RATE, noise, "synth", f"{seconds}", "pinknoise", "vol", f"{rms / 3.162:.5f}")
        sox("-m", src, noise, noisy)
        runs.append(("noisy", noisy, queue))
    negatives = {
        "silence": ["trim", "0", "4"],
        "white": ["synth", "4", "whitenoise", "vol", "0.3"],
        "pink": ["synth", "4", "pinknoise", "vol", "0.5"],
        "brown": ["synth", "4", "brownnoise", "vol", "0.6"],
        "hum": ["synth", "4", "sine", "50", "sine", "150", "vol", "0.3"],
        "cough": ["synth", "0.3", "pinknoise", "vol", "0.9", "fade", "q", "0.02", "0.3", "0.2",
                  "pad", "0.6", "0.4", "repeat", "2"],
        "breath": ["synth", "1.2", "brownnoise", "vol", "0.2", "fade", "h", "0.5", "1.2", "0.6",
                   "pad", "0.5", "1"],
    }
    for name, effect in negatives.items():
        path = os.path.join(work, f"negative-{name}.wav")
        sox("-n", *RATE, path, *effect)
        runs.append(("negative", path, "none"))
    return runs


def main():
    if not os.path.exists(HOTLINE):
        sys.exit("build first: cargo build --release")
    with open(os.path.join(DEV, "manifest.tsv")) as f:
        clips = [(r["file"], r["queue"]) for r in csv.DictReader(f, delimiter="\t")
                 if r["lang"] == "cmn"]
    with tempfile.TemporaryDirectory(prefix="hotline-variants-") as work:
        runs = make_variants(work, clips)
        # Two at a time: each run loads the model and trains the intent model.
        with ThreadPoolExecutor(max_workers=2) as pool:
            got = list(pool.map(lambda r: recognize(r[1]), runs))
    results = {}
    for (kind, path, want), intent in zip(runs, got):
        right, total, misses = results.setdefault(kind, [0, 0, []])
        results[kind][1] += 1
        if intent == want:
            results[kind][0] += 1
        else:
            misses.append(f"{os.path.basename(path)}: {intent}, not {want}")
    base = results["clean"][0] / max(1, results["clean"][1])
    for kind in ["clean", "fast", "noisy", "negative"]:
        right, total, misses = results[kind]
        share = right / max(1, total)
        what = "routed nowhere" if kind == "negative" else "right"
        ratio = "" if kind in ("clean", "negative") else f", {share / base:.2f}x clean"
        print(f"{kind:>8}: {what} {right}/{total} ({100 * share:.1f}%{ratio})")
        for m in misses:
            print(f"          {m}")


if __name__ == "__main__":
    main()

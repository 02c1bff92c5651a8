#!/usr/bin/env python3
"""Speech at hotline load: SIPp callers through the real call path of the shipped 12345
dialplan and speech config (release engine), each pressing 1 for Mandarin and saying a
request from ../shared/speech/dev over the "say what you need" prompt.

Levels: 1 caller at a time (the baseline), then 10 at once, then 50 and 100 arriving over
20 s (each call lasts about 20 s, so nearly all are in the IVR together). For each level:
intent accuracy (the queue each call entered, from the event log, against the clip's
queue), key-menu fallbacks, refusals (`hotline_speech_unavailable_total{reason="busy"}`),
dropped frames, decision latency after the endpoint (p50/p95, from the engine's
`recognised` log lines: the wait for a decoder plus the final decode and classification)
and the same plus the end-of-speech silence, CPU per recognised utterance (the engine's own
utime+stime over the level), and answer -> enter_queue (p50). The last lines give each
level as a ratio of the one-caller baseline, and the knee: the most speakers per core with
no fallback and decision p95 <= 300 ms.

Usage: bench/speech_load.py [--levels 1,10,50,100]   (bench/run-all.sh builds the release binary)
"""
import argparse
import collections
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from procs import cpu_seconds, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "target", "release", "hotline")
SCENARIO = os.path.join(ROOT, "tests", "sipp", "ivr_caller.xml")
DEV = os.environ.get("HOTLINE_SHARED", os.path.join(ROOT, "..", "shared"))
CORES = os.cpu_count() or 1


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Engine:
    def __init__(self, work):
        self.port, self.api = free_port(), free_port()
        shipped = open(os.path.join(ROOT, "hotline.toml")).read()
        acd = shipped[shipped.index("[[acd."):]
        config = os.path.join(work, "hotline.toml")
        self.db = os.path.join(work, "events.sqlite")
        with open(config, "w") as f:
            f.write(f'[sip]\nudp = "127.0.0.1:{self.port}"\ntcp = ""\n\n'
                    f'[media]\nrtp_port_min = 20000\nrtp_port_max = 29999\n\n'
                    f'[prompts]\ncache_dir = "{os.path.join(ROOT, "data", "prompts")}"\n\n'
                    f'[stats]\ndatabase = "{os.path.join(work, "events.sqlite")}"\n\n'
                    f'[api]\nlisten = "127.0.0.1:{self.api}"\nmetrics_open = true\n\n{acd}')
        self.log_path = os.path.join(work, "engine.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([ENGINE, "--config", config, "serve", "--log", "info"], cwd=ROOT,
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        for _ in range(120):
            time.sleep(0.5)
            if self.proc.poll() is not None:
                sys.exit(f"the engine did not start; see {self.log_path}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.api}/metrics", timeout=2)
                return
            except OSError:
                continue
        sys.exit("the engine's API never answered")

    def metric(self, series):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.api}/metrics", timeout=5).read().decode()
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(series))

    def events(self):
        """Every event so far, oldest first, from the engine's SQLite log (WAL: readable while
        the engine writes)."""
        import sqlite3
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return [json.loads(body) for (body,) in db.execute("SELECT body FROM events ORDER BY seq")]
        finally:
            db.close()

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def scenario(work, clip_ulaw):
    """The IVR caller scenario with this clip: 1 = Mandarin, the request over the prompt,
    1 again in case the engine asks to confirm, then hang up."""
    acts = ('  <pause milliseconds="1500"/>\n'
            '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_1.pcap"/></action></nop>\n'
            '  <pause milliseconds="1500"/>\n'
            f'  <nop><action><exec rtp_stream="{clip_ulaw},1,0"/></action></nop>\n'
            '  <pause milliseconds="10000"/>\n'
            '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_1.pcap"/></action></nop>\n'
            '  <pause milliseconds="4000"/>\n')
    text = open(SCENARIO).read().replace("{{CALLED}}", "12345").replace("{{ACTIONS}}", acts)
    path = os.path.join(work, os.path.basename(clip_ulaw) + ".xml")
    with open(path, "w") as f:
        f.write(text)
    return path


def run_level(engine, clips, callers, spread, work):
    """`callers` calls spread over `spread` seconds, clips taken in turn; returns figures."""
    per_clip = collections.Counter(clips[i % len(clips)] for i in range(callers))
    events0 = len(engine.events())
    metrics0 = {m: engine.metric(m) for m in ("hotline_speech_unavailable_total{lang=\"cmn\",reason=\"busy\"}",
                                              "hotline_speech_frames_dropped_total{lang=\"cmn\"}")}
    log0 = os.path.getsize(engine.log_path)
    cpu0 = cpu_seconds(engine.proc.pid)
    procs = []
    for (clip, queue, xml), n in per_clip.items():
        rate = max(n / spread, 0.05) if spread > 0 else n
        cmd = ["sipp", f"127.0.0.1:{engine.port}", "-sf", xml, "-i", "127.0.0.1", "-p", str(free_port()),
               "-mp", str(free_port() & ~1), "-m", str(n), "-l", str(n), "-nostdin",
               "-rp", "1000", "-r", f"{rate:.3f}" if rate >= 1 else "1",
               "-timeout", "180s", "-timeout_error"]
        if 0 < rate < 1:
            cmd[cmd.index("-rp") + 1] = str(int(1000 / rate))
        procs.append((subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), queue))
    pid_queue = {str(p.pid): q for p, q in procs}
    failed = sum(p.wait() != 0 for p, _ in procs)
    time.sleep(2.0)
    cpu = cpu_seconds(engine.proc.pid) - cpu0
    events = engine.events()[events0:]
    want = {}
    answered, queued_at, got = {}, {}, {}
    fallbacks = 0
    for e in events:
        call = e.get("call_id", "")
        pid = call.split("-")[1].split("@")[0] if call.count("-") >= 1 and "@" in call else ""
        if pid in pid_queue:
            want[call] = pid_queue[pid]
        kind = e.get("event")
        ts = e.get("at")
        if kind == "call_offered" and ts:
            answered[call] = ts
        elif kind == "enter_queue":
            got.setdefault(call, e.get("queue"))
            if ts:
                queued_at.setdefault(call, ts)
        elif kind == "dtmf_fallback":
            fallbacks += 1
    right = sum(1 for c, q in want.items() if got.get(c) == q)
    log = open(engine.log_path).read()[log0:]
    decisions = [float(m) for m in re.findall(r"decision_ms=([0-9.]+)", log)]
    silences = [float(m) for m in re.findall(r"silence_ms=([0-9]+)", log)]
    ends = [d + s for d, s in zip(decisions, silences)]
    road = []
    for c, t in queued_at.items():
        if c in answered:
            try:
                road.append(parse_ts(t) - parse_ts(answered[c]))
            except ValueError:
                pass
    return {
        "callers": callers, "calls": len(want), "failed_sipp": failed, "right": right,
        "fallbacks": fallbacks,
        "busy": engine.metric("hotline_speech_unavailable_total{lang=\"cmn\",reason=\"busy\"}") - metrics0[
            "hotline_speech_unavailable_total{lang=\"cmn\",reason=\"busy\"}"],
        "dropped": engine.metric("hotline_speech_frames_dropped_total{lang=\"cmn\"}") - metrics0[
            "hotline_speech_frames_dropped_total{lang=\"cmn\"}"],
        "recognised": len(decisions), "decision_p50": pct(decisions, 0.5), "decision_p95": pct(decisions, 0.95),
        "end_p95": pct(ends, 0.95), "cpu_per_utt_ms": 1000 * cpu / max(len(decisions), 1),
        "road_p50": pct(road, 0.5),
    }


def parse_ts(value):
    """Seconds from an event's `at` (epoch milliseconds)."""
    return float(value) / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="1,10,50,100")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if not os.path.exists(ENGINE):
        sys.exit("build the release binary first: cargo build --release")
    manifest = os.path.join(DEV, "speech", "dev", "manifest.tsv")
    rows = [r for r in csv.DictReader(open(manifest), delimiter="\t") if r["lang"] == "cmn"]
    # One clip per queue, the first of each: ten different requests.
    chosen, seen = [], set()
    for r in rows:
        if r["queue"] not in seen:
            seen.add(r["queue"])
            chosen.append(r)
    work = tempfile.mkdtemp(prefix="hotline-speech-load-")
    clips = []
    for r in chosen[:10]:
        ulaw = os.path.join(work, r["file"])
        subprocess.run(["sox", os.path.join(DEV, "speech", "dev", r["file"]), "-r", "8000", "-c", "1",
                        "-e", "u-law", ulaw], check=True)
        clips.append((r["file"], r["queue"], scenario(work, ulaw)))
    print(f"speech load: {len(clips)} dev clips, {CORES} cores, shipped speech config, work dir {work}")
    engine = Engine(work)
    results = []
    try:
        for n in levels:
            if n == 1:
                # One caller at a time through every clip: the baseline.
                parts = [run_level(engine, [c], 1, 0, work) for c in clips]
                r = {k: (sum(p[k] for p in parts) if k in ("calls", "failed_sipp", "right", "fallbacks", "busy",
                                                          "dropped", "recognised") else
                         sum(p[k] for p in parts) / len(parts)) for k in parts[0]}
                r["callers"] = 1
            else:
                r = run_level(engine, clips, n, 20 if n > 10 else 0, work)
            results.append(r)
            print(f"{r['callers']:>4} in IVR: right {r['right']}/{r['calls']}, fallbacks {r['fallbacks']}, "
                  f"busy {r['busy']:.0f}, dropped frames {r['dropped']:.0f}, decision p50/p95 "
                  f"{r['decision_p50']:.0f}/{r['decision_p95']:.0f} ms (end of speech -> decision p95 "
                  f"{r['end_p95']:.0f} ms), CPU/utterance {r['cpu_per_utt_ms']:.0f} ms, "
                  f"answer -> queue p50 {r['road_p50']:.1f} s, SIPp failures {r['failed_sipp']}")
    finally:
        engine.close()
    base = results[0]
    for r in results[1:]:
        print(f"ratio {r['callers']} vs 1: accuracy {r['right'] / max(r['calls'], 1) / max(base['right'] / max(base['calls'], 1), 1e-9):.2f}x, "
              f"decision p95 {r['decision_p95'] / max(base['decision_p95'], 1e-9):.2f}x, "
              f"CPU/utterance {r['cpu_per_utt_ms'] / max(base['cpu_per_utt_ms'], 1e-9):.2f}x")
    knee = max([r["callers"] for r in results if r["fallbacks"] == 0 and r["decision_p95"] <= 300] or [0])
    print(f"knee: {knee} callers in the IVR ({knee / CORES:.0f} per core) with no fallback and decision p95 <= 300 ms")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""SIP load benchmark: hotline against SIPp's own UAS, measured in the same run.

For each server (the release engine, then `sipp -sn uas`) it drives SIPp callers at
increasing call rates and reports the highest rate with zero failed calls and zero
retransmissions, the INVITE -> 200 OK response time (p50/p99) at 100 calls/s, CPU time per
call (the server process's own utime+stime over the run), peak concurrent calls and RSS per
held call (and whether it is returned after the calls end). The engine runs in two modes:
`signalling` (no prompt) and `rtp` (every call hears a prompt: 50 RTP packets/s each).
The last line gives hotline's figures as ratios of SIPp's.

Usage: bench/sip_load.py [--quick]     (bench/run-all.sh builds the release binary first)
"""
import argparse
import csv
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from procs import cpu_seconds, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "target", "release", "hotline")
SCENARIO = os.path.join(ROOT, "bench", "sipp", "caller.xml")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                return
            time.sleep(0.05)


class Server:
    """hotline (mode signalling|rtp) or SIPp's UAS, listening on a fresh port."""

    def __init__(self, kind, mode, workdir, max_cps=0):
        self.kind, self.mode, self.port, self.api_port = kind, mode, free_port(), free_port()
        self.log = open(os.path.join(workdir, f"{kind}-{mode}.log"), "w")
        if kind == "hotline":
            # rtp: every call hears a 60 s prompt (50 packets/s) until the caller hangs up;
            # signalling: a 0.1 s prompt, then the engine waits for keys the caller never
            # presses until the caller hangs up.
            plans = os.path.join(workdir, f"dialplans-{mode}")
            os.makedirs(plans, exist_ok=True)
            secs = "60" if mode == "rtp" else "0.1"
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", os.path.join(plans, "prompt.wav"),
                            "synth", secs, "sine", "300", "vol", "0.3"], check=True)
            with open(os.path.join(plans, "bench.yaml"), "w") as f:
                f.write("languages: [cmn]\ndefault: true\nprompts:\n  p:\n    cmn: {file: prompt.wav}\n"
                        "steps:\n  start:\n    menu: p\n    timeout: 600s\n    choices: {\"1\": done}\n"
                        "    no_input: done\n    no_match: done\n  done:\n    hangup: done\n")
            config = os.path.join(workdir, f"hotline-{mode}.toml")
            with open(config, "w") as f:
                f.write(f'[sip]\nudp = "127.0.0.1:{self.port}"\ntcp = ""\nmax_calls = 20000\nmax_cps = {max_cps}\n\n'
                        f'[media]\nrtp_port_min = 20000\nrtp_port_max = 59999\n\n'
                        f'[dialplan]\ndirectory = "{plans}"\n\n'
                        f'[stats]\ndatabase = "{os.path.join(workdir, "events-" + mode + ".sqlite")}"\n\n'
                        f'[api]\nlisten = "127.0.0.1:{self.api_port}"\nmetrics_open = true\n')
            cmd = [ENGINE, "--config", config, "serve", "--log", "warn"]
        else:
            cmd = ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(self.port), "-nostdin"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, cwd=ROOT)
        time.sleep(3.0)
        if self.proc.poll() is not None:
            sys.exit(f"{kind} did not start; see {self.log.name}")

    def metric(self, series):
        """A value from hotline's /metrics (0 when absent, and for SIPp's UAS)."""
        import urllib.request
        if self.kind != "hotline":
            return 0
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/metrics", timeout=5).read().decode()
        except OSError:
            return 0
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(series))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def invite_to_200_ms(pcap):
    """INVITE -> 200 OK times in ms, per call, from a loopback capture (SIPp's own RTD
    figures have 1 ms resolution, too coarse here)."""
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "sip", "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "sip.Call-ID", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.method"],
                         capture_output=True, text=True).stdout
    invites, times = {}, []
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 5:
            continue
        t, call, method, status, cseq = float(f[0]), f[1], f[2], f[3], f[4]
        if method == "INVITE" and call not in invites:
            invites[call] = t
        elif status == "200" and cseq == "INVITE" and call in invites:
            times.append(1000 * (t - invites.pop(call)))
    return sorted(times)


def run_callers(server, rate, calls, hold_ms, workdir, tag, capture=False):
    """Runs SIPp callers against `server`; returns a dict of figures."""
    prefix = os.path.join(workdir, f"{server.kind}-{server.mode}-{tag}")
    stat, rtt = prefix + "-stat.csv", None
    limit = max(100, int(rate * (hold_ms / 1000 + 2) * 2))
    cmd = ["sipp", f"127.0.0.1:{server.port}", "-sf", SCENARIO, "-i", "127.0.0.1",
           "-p", str(free_port()), "-mp", str(free_port() & ~1), "-r", str(rate), "-m", str(calls),
           "-l", str(limit), "-d", str(hold_ms), "-nostdin", "-trace_stat", "-stf", stat, "-fd", "1",
           "-trace_rtt", "-rtt_freq", "1", "-timeout", str(int(calls / rate + hold_ms / 1000 + 40)) + "s",
           "-timeout_error", "-max_socket", "60000"]
    pcap = prefix + ".pcap"
    tshark = None
    if capture:
        tshark = subprocess.Popen(["tshark", "-q", "-i", "lo", "-f", f"udp port {server.port}", "-w", pcap],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0)
    shed0 = server.metric("hotline_calls_shed_total")
    cpu0 = cpu_seconds(server.proc.pid)
    sampler = RssSampler(server.proc.pid)
    rss0 = rss_kb(server.proc.pid)
    sampler.start()
    started = time.time()
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    elapsed = time.time() - started
    sampler.stop = True
    sampler.join()
    if tshark:
        time.sleep(0.5)
        tshark.terminate()
        tshark.wait()
    time.sleep(1.0)
    cpu = cpu_seconds(server.proc.pid) - cpu0
    # Transactions outlive their call by up to 64*T1 (RFC 3261 Timer J/L); memory is
    # looked at once they are gone.
    time.sleep(40.0 if tag == "held" else 1.0)
    rss_after = rss_kb(server.proc.pid)
    shed = int(server.metric("hotline_calls_shed_total") - shed0)
    rows = list(csv.DictReader(open(stat), delimiter=";")) if os.path.exists(stat) else []
    last = rows[-1] if rows else {}
    num = lambda row, key: int(float(row.get(key, "0") or 0))
    success = num(last, "SuccessfulCall(C)")
    failed = num(last, "FailedCall(C)")
    retrans = num(last, "Retransmissions(C)")
    peak = max([num(r, "CurrentCall") for r in rows] + [0])
    rtts = []
    for f in glob.glob(os.path.join(workdir, "caller_*_rtt.csv")):
        with open(f) as fh:
            for row in csv.reader(fh, delimiter=";"):
                try:
                    rtts.append(float(row[1]))
                except (ValueError, IndexError):
                    pass
        os.rename(f, prefix + "-rtt.csv")
    if capture:
        rtts = invite_to_200_ms(pcap)
    rtts.sort()
    pct = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))] if rtts else float("nan")
    return dict(rate=rate, calls=calls, success=success, failed=failed, retrans=retrans, shed=shed,
                clean=(out.returncode == 0 and failed == 0 and retrans == 0 and shed == 0 and success == calls),
                p50=pct(0.50), p99=pct(0.99), cpu_ms_per_call=1000 * cpu / max(1, success),
                peak=peak, rss_peak_kb=sampler.peak, rss_before_kb=rss0, rss_after_kb=rss_after,
                elapsed=elapsed)


def measure(kind, mode, rates, seconds, workdir, concurrency, max_cps=0):
    server = Server(kind, mode, workdir, max_cps)
    try:
        r = {}
        # First, on the fresh process: memory per held call, and whether it is returned.
        hold = 8000
        rate = max(50, concurrency // 6)
        held = run_callers(server, rate, concurrency, hold, workdir, "held")
        r["peak_calls"] = held["peak"]
        r["held_clean"] = held["clean"]
        r["rss_per_call_kb"] = (held["rss_peak_kb"] - held["rss_before_kb"]) / max(1, held["peak"])
        r["rss_before_kb"], r["rss_peak_kb"], r["rss_after_kb"] = held["rss_before_kb"], held["rss_peak_kb"], held["rss_after_kb"]
        lat = run_callers(server, 100, 100 * seconds, 1000, workdir, "latency", capture=True)
        r["p50"], r["p99"] = lat["p50"], lat["p99"]
        r["cpu_ms_per_call_100cps"] = lat["cpu_ms_per_call"]
        best, best_run = 0, None
        for rate in rates:
            run = run_callers(server, rate, rate * seconds, 1000, workdir, f"r{rate}")
            print(f"  {kind:8} {mode:10} {rate:5} cps: success {run['success']}/{run['calls']}"
                  f" failed {run['failed']} retrans {run['retrans']} shed {run['shed']} p99 {run['p99']:.2f} ms"
                  f" cpu {run['cpu_ms_per_call']:.3f} ms/call", flush=True)
            if not run["clean"]:
                break
            best, best_run = rate, run
        r["max_clean_cps"] = best
        r["cpu_ms_per_call"] = best_run["cpu_ms_per_call"] if best_run else float("nan")
        if kind == "hotline" and best:
            # Twice the clean rate: the engine should shed with 503 and keep admitted calls clean.
            over = run_callers(server, 2 * best, 2 * best * seconds, 1000, workdir, "overload")
            shed = over["shed"]
            r["overload"] = dict(rate=2 * best, calls=over["calls"], shed=int(shed), failed=over["failed"],
                                 retrans=over["retrans"], p99=over["p99"])
            print(f"  {kind:8} {mode:10} {2 * best:5} cps (2x): {int(shed)} of {over['calls']} shed with 503,"
                  f" admitted calls failed {over['failed']} retrans {over['retrans']}", flush=True)
        return r
    finally:
        server.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rates, shorter runs")
    ap.add_argument("--rates", default="200,400,800,1200,1600,2000,2400,3200")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=2000)
    ap.add_argument("--max-cps", type=int, default=0,
                    help="hotline's [sip] max_cps (0: adaptive shedding only)")
    ap.add_argument("--servers", default="sipp-uas:signalling,hotline:signalling,hotline:rtp",
                    help="which server:mode pairs to measure; the ratios need sipp-uas:signalling")
    args = ap.parse_args()
    rates = [int(x) for x in args.rates.split(",")]
    if args.quick:
        rates, args.seconds, args.concurrency = [200, 800, 1600], 4, 500
    if not os.path.exists(ENGINE):
        sys.exit("build the release engine first (bench/run-all.sh does)")
    workdir = os.path.join(ROOT, "bench", "out", time.strftime("sip-%Y%m%d-%H%M%S"))
    os.makedirs(workdir, exist_ok=True)
    results = {}
    for pair in args.servers.split(","):
        kind, mode = pair.split(":")
        print(f"{kind} ({mode})", flush=True)
        results[(kind, mode)] = measure(kind, mode, rates, args.seconds, workdir, args.concurrency, args.max_cps)
    print()
    print(f"{'server':22} {'max clean cps':>13} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/call':>11}"
          f" {'peak calls':>10} {'KB/call':>8} {'RSS MB idle/peak/after':>26}")
    for (kind, mode), r in results.items():
        print(f"{kind + ' ' + mode:22} {r['max_clean_cps']:13} {r['p50']:7.2f} {r['p99']:7.2f}"
              f" {r['cpu_ms_per_call']:11.3f} {r['peak_calls']:10} {r['rss_per_call_kb']:8.1f}"
              f" {r['rss_before_kb'] / 1024:8.1f}/{r['rss_peak_kb'] / 1024:.1f}/{r['rss_after_kb'] / 1024:.1f}")
    base = results.get(("sipp-uas", "signalling"))
    for mode in ["signalling", "rtp"]:
        h = results.get(("hotline", mode))
        if not (base and h):
            continue
        print(f"RATIO hotline {mode} / sipp-uas: max clean cps {h['max_clean_cps'] / max(1, base['max_clean_cps']):.2f}"
              f", p99 INVITE->200 {h['p99'] / base['p99']:.2f}, cpu/call {h['cpu_ms_per_call'] / base['cpu_ms_per_call']:.2f}"
              f", peak held calls {h['peak_calls'] / max(1, base['peak_calls']):.2f}")
    for mode in ["signalling", "rtp"]:
        o = results.get(("hotline", mode), {}).get("overload")
        if o:
            print(f"OVERLOAD hotline {mode} at {o['rate']} cps: {o['shed']}/{o['calls']} shed with 503;"
                  f" admitted: {o['failed']} failed, {o['retrans']} retransmissions")
    print(f"(raw files in {workdir})")


if __name__ == "__main__":
    main()

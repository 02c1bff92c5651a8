#!/usr/bin/env python3
"""Descriptor exhaustion by idle TCP connections, on the release engine with its default
limits: 5,000 connections that never send a byte, from 16 loopback addresses (more than
the 256 one address may hold, more than the 4,096 in all), while SIPp
places 100 calls over UDP and the API is asked for /metrics. Reports how many connections
the engine refused at accept (per source, in total), whether every call and API request
succeeded meanwhile, and that the idle connections are all closed once their first
message is overdue (`tcp_message_deadline_s`, 20 s).

Usage: bench/tcp_flood.py      (bench/run-all.sh builds the release binary first)
"""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from procs import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "target", "release", "hotline")
CONNECTIONS = 5000
SOURCES = 16


def metric(api, series):
    text = urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=5).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(series))


def main():
    work = tempfile.mkdtemp(prefix="hotline-tcp-flood-")
    port, api = free_port(), free_port()
    config = os.path.join(work, "hotline.toml")
    with open(config, "w") as f:
        f.write(f'[sip]\nudp = "127.0.0.1:{port}"\ntcp = "127.0.0.1:{port}"\n\n'
                f'[stats]\ndatabase = "{os.path.join(work, "events.sqlite")}"\n\n'
                f'[api]\nlisten = "127.0.0.1:{api}"\nmetrics_open = true\n')
    log = open(os.path.join(work, "engine.log"), "w")
    engine = subprocess.Popen([ENGINE, "--config", config, "serve", "--log", "warn"], cwd=ROOT,
                              stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        for _ in range(120):
            time.sleep(0.5)
            try:
                metric(api, "hotline_calls")
                break
            except OSError:
                continue
        else:
            sys.exit(f"the engine did not start; see {work}/engine.log")
        held = []
        started = time.monotonic()
        for i in range(CONNECTIONS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # IP_BIND_ADDRESS_NO_PORT: the port is picked at connect; a bind to port 0
            # would search the ports in use each time (minutes for 5,000).
            s.setsockopt(socket.IPPROTO_IP, 24, 1)
            s.bind((f"127.0.0.{2 + i % SOURCES}", 0))
            s.connect(("127.0.0.1", port))
            held.append(s)
        opening = time.monotonic() - started
        time.sleep(5)
        open_now = metric(api, "hotline_sip_tcp_connections")
        per_source = metric(api, 'hotline_sip_tcp_refused_total{reason="max_per_source"}')
        total = metric(api, 'hotline_sip_tcp_refused_total{reason="max_connections"}')
        sipp = subprocess.run(["sipp", "-sn", "uac", f"127.0.0.1:{port}", "-s", "12345",
                               "-m", "100", "-r", "20", "-d", "1000", "-i", "127.0.0.1",
                               "-p", str(free_port()), "-nostdin", "-timeout", "120s",
                               "-timeout_error", "-trace_stat", "-stf",
                               os.path.join(work, "sipp.csv")],
                              cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        api_ok = all(metric(api, "hotline_calls") >= 0 for _ in range(20))
        time.sleep(22)
        closed = metric(api, 'hotline_sip_tcp_closed_total{reason="message_deadline"}')
        left = metric(api, "hotline_sip_tcp_connections")
        for s in held:
            s.close()
        print(f"{CONNECTIONS} idle connections from {SOURCES} addresses (opened in {opening:.1f} s), 5 s later: "
              f"{int(open_now)} open, refused {int(per_source)} per source and {int(total)} in total")
        print(f"meanwhile 100 SIPp calls over UDP: {'all succeeded' if sipp.returncode == 0 else 'FAILED'}; "
              f"20 API requests: {'all answered' if api_ok else 'FAILED'}")
        print(f"22 s later: {int(closed)} closed at their message deadline, {int(left)} still open")
        if sipp.returncode != 0 or not api_ok or left != 0:
            sys.exit(f"not clean; see {work}")
    finally:
        engine.terminate()
        engine.wait(40)
        log.close()


if __name__ == "__main__":
    main()

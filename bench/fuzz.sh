#!/usr/bin/env bash
# Fuzzes the parsers and state machines that take outside input (fuzz/fuzz_targets: SIP
# parser and TCP framer, the transaction layer, SDP, REGISTER and digest, RTP and RFC 4733
# keys, dialplan and grammar files) for FUZZ_SECONDS each (default 60) with cargo-fuzz on
# the nightly toolchain, seeded from the RFC 4475 messages and the shipped dialplans and
# grammar. Prints execs and findings per target; a crash leaves its input under
# fuzz/artifacts/<target>/ (replay: cargo +nightly fuzz run <target> <file>), to become a
# regression test in the main crate.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
shared="${HOTLINE_SHARED:-../shared}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal

seed() { # target, files...
  local dir="fuzz/corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dir/" ; done
}
seed sip_parse "$shared"/conformance/rfc4475/*.dat
seed sip_framer "$shared"/conformance/rfc4475/*.dat
seed transactions "$shared"/conformance/rfc4475/*.dat
seed register "$shared"/conformance/rfc4475/reg*.dat
seed sdp "$shared"/conformance/rfc4475/sdp01.dat
seed dialplan dialplans/*.yaml
seed grammar grammars/12345/*.yaml
mkdir -p fuzz/corpus/rtp_dtmf

(cd fuzz && cargo +nightly fuzz build -O)
printf '%-14s %12s %10s %s\n' target execs exec/s findings
for target in sip_parse sip_framer transactions sdp register rtp_dtmf dialplan grammar; do
  log="fuzz/out-$target.log"
  status=0
  (cd fuzz && cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" \
     -print_final_stats=1) >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(( execs / seconds ))
  findings=$(ls "fuzz/artifacts/$target" 2>/dev/null | wc -l)
  printf '%-14s %12s %10s %s\n' "$target" "$execs" "$rate" \
    "$findings$([ "$status" -ne 0 ] && echo " (stopped: see $log)")"
done

#!/usr/bin/env bash
# Every benchmark, on a release build: SIP load (hotline against SIPp's own UAS), speech
# accuracy and latency (clean, fast, noisy and negative clips; callers at load), and the
# criterion micro-benchmarks. Results print to the terminal;
# raw files go under bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
python3 bench/sip_load.py "$@"
bench/speech_accuracy.sh
python3 bench/speech_load.py
python3 bench/speech_variants.py
bench/prompt_voices.sh
cargo bench --bench acd_routing --bench stats_fold --bench dialplan_call --bench media_packet
python3 bench/tcp_flood.py
bench/fuzz.sh

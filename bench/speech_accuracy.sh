#!/usr/bin/env bash
# Speech accuracy, latency and memory (issue 4): every clip of ../shared/speech/dev through
# the path a call takes (20 ms frames, the configured endpointing, the shipped grammar), at
# 8 kHz and upsampled to 16 kHz, then at real-time pace for the decision latency; the
# Cantonese text lines through the classifier; language detection; memory per model and
# per active recogniser. Release build; about four minutes on two idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench speech_accuracy -- "$@"

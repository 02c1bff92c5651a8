#!/usr/bin/env bash
# Prompt voices compared by a number (issue 13): every Mandarin prompt of the shipped
# dialplan rendered by each espeak-ng voice at 8 kHz and transcribed by the shipped Mandarin
# recogniser; prints per voice the renderings that fall back to English letters and the
# character error rate. Release build; about a minute. Usage: bench/prompt_voices.sh [VOICE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench prompt_voices -- "$@"

#!/usr/bin/env bash
# One-time (and idempotent) machine set-up for hotline: the Debian packages the engine and
# its tests use, libvosk.so from the PyPI wheel, and the Mandarin Vosk model. A second run
# finds everything in place and changes nothing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/data"
mkdir -p "$data"

say() { printf 'setup: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------
apt_packages=(sip-tester baresip-core linphone-cli kamailio kamailio-tls-modules openssl espeak-ng sox unzip chromium fonts-wqy-microhei tshark)
missing=()
for p in "${apt_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- libvosk.so from the PyPI wheel -----------------------------------------------------
vosk_version=0.3.45
vosk_wheel=vosk-0.3.45-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.whl
vosk_wheel_sha256=25e025093c4399d7278f543568ed8cc5460ac3a4bf48c23673ace1e25d26619f
vosk_dir="$data/vosk"
if [ ! -f "$vosk_dir/libvosk.so" ]; then
  say "fetching libvosk.so from the vosk==$vosk_version wheel"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2010_x86_64 --python-version 3.11 \
    "vosk==$vosk_version" -d "$tmp"
  echo "$vosk_wheel_sha256  $tmp/$vosk_wheel" | sha256sum --check --quiet
  mkdir -p "$vosk_dir"
  unzip -q -j -o "$tmp/$vosk_wheel" vosk/libvosk.so -d "$vosk_dir"
fi

# --- the Mandarin model -----------------------------------------------------------------
# Lookup order (DESIGN.md): $HOTLINE_VOSK_MODEL, an unpacked copy under data/models,
# ../shared/models, then the official download; a zip is always checked before unpacking.
model_name=vosk-model-small-cn-0.22
model_sha256=3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba
model_url="https://alphacephei.com/vosk/models/$model_name.zip"
models="$data/models"
if [ -n "${HOTLINE_VOSK_MODEL:-}" ]; then
  [ -f "$HOTLINE_VOSK_MODEL/am/final.mdl" ] || { say "HOTLINE_VOSK_MODEL=$HOTLINE_VOSK_MODEL is not a Vosk model directory"; exit 1; }
elif [ ! -f "$models/$model_name/am/final.mdl" ]; then
  zip="$root/../shared/models/$model_name.zip"
  if [ ! -f "$zip" ]; then
    say "downloading $model_url"
    mkdir -p "$models"
    zip="$models/$model_name.zip"
    curl -fsSL -o "$zip" "$model_url"
  fi
  say "checking and unpacking $zip"
  echo "$model_sha256  $zip" | sha256sum --check --quiet
  mkdir -p "$models"
  rm -rf "$models/$model_name.partial"
  mkdir "$models/$model_name.partial"
  unzip -q "$zip" -d "$models/$model_name.partial"
  mv "$models/$model_name.partial/$model_name" "$models/$model_name"
  rmdir "$models/$model_name.partial"
fi

# --- Rust components the checks use -----------------------------------------------------
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add clippy rustfmt
fi

say "ready"

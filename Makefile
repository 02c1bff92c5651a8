# The two commands of the README: `make run` starts the engine with its defaults,
# `make test` runs every check CI runs. Both do the machine set-up first (idempotent).
CARGO ?= cargo

.PHONY: setup run build test lint bench

setup:
	scripts/setup.sh

build: setup
	$(CARGO) build --release

run: build
	./target/release/hotline serve

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --features integration -- -D warnings

# Every test: the hermetic ones and the integration binary (real peers, browser, Vosk).
# A plain `cargo test` runs only the hermetic ones.
test: lint
	$(CARGO) test --features integration

bench: setup
	bench/run-all.sh

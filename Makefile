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
	$(CARGO) clippy --all-targets -- -D warnings

test: lint
	$(CARGO) test

bench: setup
	bench/run-all.sh

#!/usr/bin/env bash
# Builds runsc and a static "hello, world" and runs it in the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p runsc
mkdir -p target/demo
gcc -static -O2 -o target/demo/hello tests/conformance/hello.c
exec "${CARGO_TARGET_DIR:-target}/release/runsc" do -- target/demo/hello "$@"

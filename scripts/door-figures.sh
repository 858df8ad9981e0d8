#!/usr/bin/env bash
# The door figures (issue 13), each against a real pi-server on loopback, one JSON line each:
# mutated sessions (pi-net frames in plaintext, TLS records), time to serve a client under
# slow-loris, server CPU spent on a replayed stream, and TLS's cost on the default model.
# Heavy: about 10 minutes on a 2-core machine. Output: target/door-figures.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p server -p pi-bench
out=target/door-figures.jsonl
: >"$out"
bench=./target/release/pi-bench
$bench door mutate --sessions "${PI_MUTATE_SESSIONS:-640}" | tee -a "$out"
$bench door mutate --tls --sessions "${PI_MUTATE_SESSIONS:-640}" | tee -a "$out"
$bench door slowloris | tee -a "$out"
$bench door replay | tee -a "$out"
$bench door tls --runs 7 | tee -a "$out"
echo "figures written to $out"

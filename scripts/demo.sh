#!/usr/bin/env bash
# The main job: builds pi-server and pi-client, serves the embedded default HybReNet on loopback over TLS (a
# throwaway CA made by `pi-server dev-cert`) and runs one private inference of the embedded sample image,
# printing the latency/traffic table.
# Arguments go to pi-client; PI_SERVER_ARGS (e.g. "--he-link-mbps 10000") go to pi-server;
# PI_DEMO_PLAINTEXT=1 runs both sides with --insecure-plaintext instead of TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p server -p client
port=${PI_PORT:-47311}
log=target/pi-server.log
: >"$log"
if [ -n "${PI_DEMO_PLAINTEXT:-}" ]; then
  server_tls=(--insecure-plaintext)
  client_tls=(--insecure-plaintext)
else
  pki=target/demo-pki
  ./target/release/pi-server dev-cert --dir "$pki" --name localhost --name 127.0.0.1 >/dev/null
  server_tls=(--tls-cert "$pki/server.pem" --tls-key "$pki/server.key")
  client_tls=(--tls-ca "$pki/ca.pem")
fi
# shellcheck disable=SC2086
./target/release/pi-server --listen 127.0.0.1:$port "${server_tls[@]}" ${PI_SERVER_ARGS:-} 2> >(tee "$log" >&2) &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  grep -q "listening" "$log" && break
  kill -0 $server 2>/dev/null || { echo "pi-server exited; see $log" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening" "$log" || { echo "pi-server did not start listening within 30 s" >&2; exit 1; }
./target/release/pi-client --connect 127.0.0.1:$port "${client_tls[@]}" --sample --report target/report.json "$@"
echo "report written to target/report.json"

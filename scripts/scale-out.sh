#!/usr/bin/env bash
# Scale-out with existing parts: two pi-server replicas that share one ticket key and a Redis
# replay store, behind HAProxy (round-robin TCP), all on loopback ports chosen free.
#
#   bash scripts/scale-out.sh [--model FILE.onnx] [--input X.npy | (the embedded sample)]
#
# It shows, and checks (exit 1 otherwise):
#   1. material banked through replica A is consumed through replica B;
#   2. two more inferences through HAProxy (round robin: one per replica);
#   3. a replayed ticket (a copy of a used set) is refused by both replicas.
# Then it stops everything it started, by PID. Binaries come from PI_BIN_DIR (default
# target/release; built when missing). Needs redis-server, haproxy, python3 (scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."

model_args=()
input_args=(--sample)
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model_args=(--model "$2"); shift 2 ;;
    --input) input_args=(--input "$2"); shift 2 ;;
    *) echo "scale-out: unknown argument $1" >&2; exit 2 ;;
  esac
done

bin=${PI_BIN_DIR:-target/release}
if [ ! -x "$bin/pi-server" ] || [ ! -x "$bin/pi-client" ]; then
  cargo build --release -p server -p client >&2
fi
for tool in redis-server haproxy python3; do
  command -v "$tool" >/dev/null || { echo "scale-out: $tool missing (bash scripts/setup.sh test)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port what
  for _ in $(seq 1 600); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "scale-out: $2 did not listen on port $1" >&2; exit 1
}
fail() { echo "FAILED: $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done; exit 1; }
# TLS end to end through HAProxy (TCP mode passes the records through): one throwaway CA, one
# server certificate for 127.0.0.1 shared by both replicas.
"$bin/pi-server" dev-cert --dir "$work/pki" --name 127.0.0.1 >/dev/null 2>&1 || fail "dev-cert"
# Banked sets cover garbled ReLU layers: the replicas garble every layer.
tls_server=(--tls-cert "$work/pki/server.pem" --tls-key "$work/pki/server.key" --relu-protocol gc)
client() {
  local sub=$1; shift
  timeout 300 "$bin/pi-client" "$sub" --tls-ca "$work/pki/ca.pem" "$@"
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save "" \
  --appendonly yes --appendfsync always >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" redis-server

key="$work/ticket.key"
replay="redis://127.0.0.1:$redis_port"
port_a=$(free_port)
"$bin/pi-server" "${model_args[@]}" "${tls_server[@]}" --listen "127.0.0.1:$port_a" --ticket-key "$key" \
  --replay-store "$replay" >"$work/replica-a.log" 2>&1 &
pids+=($!)
wait_port "$port_a" "replica A"
port_b=$(free_port)
"$bin/pi-server" "${model_args[@]}" "${tls_server[@]}" --listen "127.0.0.1:$port_b" --ticket-key "$key" \
  --replay-store "$replay" >"$work/replica-b.log" 2>&1 &
pids+=($!)
wait_port "$port_b" "replica B"

lb_port=$(free_port)
cat >"$work/haproxy.cfg" <<EOF
global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
frontend pi
  bind 127.0.0.1:$lb_port
  default_backend replicas
backend replicas
  balance roundrobin
  server a 127.0.0.1:$port_a
  server b 127.0.0.1:$port_b
EOF
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
wait_port "$lb_port" haproxy
echo "redis 127.0.0.1:$redis_port  replica A 127.0.0.1:$port_a  replica B 127.0.0.1:$port_b  haproxy 127.0.0.1:$lb_port"

store="$work/bank"
redeemed() { grep -c 'ticket_redeemed="[0-9a-f]' "$work/replica-$1.log" || true; }

# 1. Banked through A, consumed through B.
client preprocess --connect "127.0.0.1:$port_a" --store "$store" --count 3 --quiet >"$work/pre.out" ||
  fail "preprocess through replica A"
cp "$(ls "$store"/*.pibank | sort | head -n 1)" "$work/used-set"
client infer --connect "127.0.0.1:$port_b" --store "$store" "${input_args[@]}" --quiet >"$work/infer-b.out" ||
  fail "infer through replica B"
[ "$(redeemed b)" = 1 ] && [ "$(redeemed a)" = 0 ] || fail "replica B should have redeemed the ticket"
echo "ok: banked through replica A, consumed through replica B ($(grep prediction "$work/infer-b.out"))"

# 2. Through the load balancer: round robin sends one inference to each replica.
for i in 1 2; do
  client infer --connect "127.0.0.1:$lb_port" --store "$store" "${input_args[@]}" --quiet >"$work/infer-lb$i.out" ||
    fail "infer $i through haproxy"
done
[ "$(redeemed a)" = 1 ] && [ "$(redeemed b)" = 2 ] || fail "round robin should reach both replicas"
echo "ok: two inferences through haproxy, one per replica"

# 3. A replayed ticket is refused by both replicas (the Redis store is shared).
for r in a b; do
  port_var="port_$r"
  cp "$work/used-set" "$store/set-00000000000000000000-replay.pibank"
  if client infer --connect "127.0.0.1:${!port_var}" --store "$store" "${input_args[@]}" --quiet \
    >"$work/replay-$r.out" 2>&1; then
    fail "replica ${r^^} accepted a replayed ticket"
  fi
  grep -q "already used" "$work/replay-$r.out" || fail "replica ${r^^} refused for another reason"
  grep -q "ticket refused" "$work/replica-$r.log" || fail "replica ${r^^} did not log the refusal"
done
echo "ok: a replayed ticket is refused by both replicas"
"$bin/pi-client" status --store "$store"

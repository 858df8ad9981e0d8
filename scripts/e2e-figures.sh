#!/usr/bin/env bash
# The end-to-end figures of the README (issues 12 and 15): the default model and HRN-5x5x3x (m=16,
# thinned, 163,328 ReLUs), one-shot against banked, on loopback and on shaped links (100 Mbit/s +
# 20 ms RTT, 1 Gbit/s + 1 ms; network namespaces, so root), with the server's ReLU protocol `auto`
# and, on loopback, forced to `gc` and `ot`. One JSON line per run (pi-bench e2e), the CPU in each.
# Heavy: about 15 minutes on a 2-core machine. Output: target/e2e-figures.jsonl.
#   PI_E2E_SKIP_HRN5=1  only the default model
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
cargo build --release --locked -p server -p client -p pi-bench -p optimizer
out=target/e2e-figures.jsonl
: >"$out"
bench=./target/release/pi-bench
# Host costs measured once for these runs, not under whatever load the user's cache saw.
export PI_SERVER_HOST_COSTS=target/e2e-figures-host-costs.json
rm -f "$PI_SERVER_HOST_COSTS"
run() {
  echo "pi-bench e2e $*" >&2
  $bench e2e "$@" | tee -a "$out"
}
links=("" "--rate 100mbit --rtt 20ms" "--rate 1gbit --rtt 1ms")
for link in "${links[@]}"; do
  # shellcheck disable=SC2086
  run $link
done
for p in gc ot; do run --server-args "--relu-protocol $p"; done
if [ -z "${PI_E2E_SKIP_HRN5:-}" ]; then
  hrn5=target/hrn5.onnx
  ./target/release/pi-opt build --family hrn --alpha 5 --beta 5 --gamma 3 --base-channels 16 \
    --thin S1,S2,S3,S4 -o "$hrn5" >/dev/null
  for link in "${links[@]}"; do
    # shellcheck disable=SC2086
    run --model "$hrn5" --input client/assets/sample.npy $link
  done
  for p in gc ot; do run --model "$hrn5" --input client/assets/sample.npy --server-args "--relu-protocol $p"; done
fi
python3 - "$out" <<'EOF'
import json, sys
print("| model | link | server | one-shot total | banked online (wait) | banked online bytes up/down | CPU |")
print("|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    v = json.loads(line)
    link = "loopback" if v["link"].get("loopback") else f'{v["link"]["rate"]} + {v["link"]["rtt_ms"]:g} ms'
    b, i = v["banked"], v["inline"]
    print(f'| {v["model"]} | {link} | {v.get("server_args") or "auto"} | {i["total_seconds"]:.3f} s | '
          f'{b["online_seconds"]:.3f} s ({b["wait_seconds"]:.3f} s) | '
          f'{b["bytes_sent"]/1e6:.2f} / {b["bytes_received"]/1e6:.2f} MB | {v["cpu"]} |')
EOF
echo "runs in $out" >&2

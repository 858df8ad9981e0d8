#!/usr/bin/env bash
# The model-zoo table: for every exported model in a directory written by scripts/export-zoo.py
# (NAME.onnx, NAME.input.npy, NAME.sample.npy), in order: does it import (pi-opt check), the
# calibrated fixed-point format (pi-opt calibrate on NAME.input.npy), its counts and estimated cost
# (pi-opt count), then one private inference of NAME.sample.npy with real pi-server and pi-client
# processes over loopback: seconds, traffic, peak memory, and whether the private logits equal the
# fixed-point reference and its top-1 the float top-1.
#
#   bash scripts/zoo-table.sh DIR [NAME...]          # all models in DIR, or the ones named
#   PI_ZOO_SKIP_PRIVATE=1 bash scripts/zoo-table.sh DIR   # import / calibrate / count only
#   PI_ZOO_NICE="nice -n -20" bash scripts/zoo-table.sh DIR NAME  # on a busy shared machine (root)
#   PI_ZOO_RELU=auto bash scripts/zoo-table.sh DIR        # ReLU protocol of pi-server (default gc)
#   PI_ZOO_REUSE_CAL=1 ...          # keep an existing NAME.cal.onnx (no new calibration)
#   PI_ZOO_SERVER_ARGS="--kernel-cache-mib 2048" PI_ZOO_CLIENT_ARGS="--gc-memory-mib 1024" ...
#   PI_ZOO_WARM_MIB=12288 ...       # touch and free this much memory before each client starts
# On a virtual machine whose balloon reports free memory to its host (virtio free page reporting),
# the first touch of memory the host has reclaimed costs ~10 us per 4 KiB page
# instead of ~1.3 us, and which pages a run gets depends on what ran before it: PI_ZOO_WARM_MIB
# makes runs comparable (docs/zoo.md, "Estimate against measurement"). The client's system
# seconds and page faults are recorded next to its CPU seconds either way.
# Server and client talk plain TCP on loopback (--insecure-plaintext): the figures measure the
# protocol, not TLS.
#
# Writes DIR/table/NAME.{check,cal,count,eval,report}.json|txt and prints one markdown row per
# model (also appended to DIR/table/table.md), with the CPU seconds both processes spent on the
# session (the server's counted from the end of its model preparation; less distorted by other
# load than wall time) next to the wall time. Needs jq. Private runs of ImageNet-size models take
# minutes and gigabytes on a small machine; name the models to run.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: zoo-table.sh DIR [NAME...]}
shift
cargo build --release --locked -p optimizer -p server -p client >/dev/null 2>&1 ||
  cargo build --release -p optimizer -p server -p client
bin=target/release
out=$dir/table
mkdir -p "$out"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$dir"/*.onnx; do
    n=$(basename "$f" .onnx)
    case $n in *.cal) continue ;; esac
    names+=("$n")
  done
fi
port=${PI_PORT:-47411}
echo "| model | imports | fa/fw/M/k | ReLUs | comparisons | MACs | est. s | measured s | est. CPU s | CPU s (server+client) | MiB sent+recv | peak RSS MiB (server+client) | private = fixed | top-1 = float |" | tee -a "$out/table.md"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" | tee -a "$out/table.md"
for n in "${names[@]}"; do
  m=$dir/$n.onnx
  if ! $bin/pi-opt check "$m" >"$out/$n.check.txt" 2>&1; then
    why=$(grep -m1 '^  - ' "$out/$n.check.txt" | sed 's/^  - //' | cut -c1-160)
    probs=$(head -1 "$out/$n.check.txt" | grep -o '[0-9]* problem' || true)
    echo "| $n | no ($probs: $why) | | | | | | | | | | |" | tee -a "$out/table.md"
    continue
  fi
  cal=$dir/$n.cal.onnx
  if [ -n "${PI_ZOO_REUSE_CAL:-}" ] && [ -s "$cal" ] && [ -s "$out/$n.cal.json" ]; then
    :
  elif ! $bin/pi-opt calibrate "$m" --data "$dir/$n.input.npy" -o "$cal" --json >"$out/$n.cal.json" 2>"$out/$n.cal.err"; then
    echo "| $n | yes | calibration failed: $(tail -1 "$out/$n.cal.err" | cut -c1-160) | | | | | | | | | |" | tee -a "$out/table.md"
    continue
  fi
  [ -f "$dir/$n.onnx.data" ] && true
  fmt=$(jq -r '"\(.frac_act)/\(.frac_weight)/\(.magnitude_bits)/\(.ring_bits)"' "$out/$n.cal.json")
  $bin/pi-opt count "$cal" --json >"$out/$n.count.json" 2>"$out/$n.count.err"
  relus=$(jq -r .relus "$out/$n.count.json")
  cmps=$(jq -r '.comparisons // 0' "$out/$n.count.json")
  macs=$(jq -r .macs "$out/$n.count.json")
  est=$(jq -r '.cost.total_seconds | . * 100 | round / 100' "$out/$n.count.json")
  est_cpu=$(jq -r '(.plan.cpu_seconds // 0) | . * 100 | round / 100' "$out/$n.count.json")
  if [ -n "${PI_ZOO_SKIP_PRIVATE:-}" ]; then
    echo "| $n | yes | $fmt | $relus | $cmps | $macs | $est | skipped | $est_cpu | | | | | |" | tee -a "$out/table.md"
    continue
  fi
  sample=$dir/$n.sample.npy
  $bin/pi-opt eval "$cal" --input "$sample" --json >"$out/$n.float.json"
  $bin/pi-opt eval "$cal" --input "$sample" --fixed --json >"$out/$n.fixed.json"
  log=$out/$n.server.log
  port=$((port + 1))
  # shellcheck disable=SC2086
  ${PI_ZOO_NICE:-} /usr/bin/time -f "%M %U %S" -o "$out/$n.server.rss" $bin/pi-server --model "$cal" --listen 127.0.0.1:$port --sessions 1 \
    --insecure-plaintext --relu-protocol "${PI_ZOO_RELU:-gc}" ${PI_ZOO_SERVER_ARGS:-} 2>"$log" &
  server=$!
  for _ in $(seq 1 3000); do
    grep -q "listening" "$log" && break
    if ! kill -0 $server 2>/dev/null; then
      sleep 0.5
      grep -q "listening" "$log" || break
    fi
    sleep 0.1
  done
  if ! grep -q "listening" "$log"; then
    echo "| $n | yes | $fmt | $relus | $cmps | $macs | $est | server failed: $(tail -1 "$log" | cut -c1-120) | $est_cpu | | | | | |" | tee -a "$out/table.md"
    kill $server 2>/dev/null
    continue
  fi
  if [ -n "${PI_ZOO_WARM_MIB:-}" ]; then
    # After the server's preparation, so that the client's memory is what was warmed (at most
    # what is available less 1 GiB).
    avail=$(awk '/^MemAvailable:/ {print int($2 / 1024) - 1024}' /proc/meminfo)
    warm=$((PI_ZOO_WARM_MIB < avail ? PI_ZOO_WARM_MIB : avail))
    [ "$warm" -gt 0 ] && python3 -c 'import sys; b = b"\1" * (int(sys.argv[1]) << 20)' "$warm"
  fi
  # The server's CPU ticks so far (loading and preparing the model), to leave out of its figure.
  spid=$(pgrep -P $server -x pi-server)
  ticks0=$(awk '{print $14 + $15}' "/proc/${spid:-0}/stat" 2>/dev/null || echo 0)
  # shellcheck disable=SC2086
  ${PI_ZOO_NICE:-} /usr/bin/time -f "%M %U %S %R" -o "$out/$n.client.rss" $bin/pi-client --connect 127.0.0.1:$port --insecure-plaintext --input "$sample" \
    --report "$out/$n.report.json" --quiet ${PI_ZOO_CLIENT_ARGS:-} >"$out/$n.client.txt" 2>&1
  rc=$?
  wait $server
  if [ $rc -ne 0 ]; then
    kill $server 2>/dev/null
    echo "| $n | yes | $fmt | $relus | $cmps | $macs | $est | client failed: $(tail -1 "$out/$n.client.txt" | cut -c1-120) | $est_cpu | | | | | |" | tee -a "$out/table.md"
    continue
  fi
  r=$out/$n.report.json
  secs=$(jq -r '.total_seconds | . * 100 | round / 100' "$r")
  mib=$(jq -r '(.offline.bytes_sent + .offline.bytes_received + .online.bytes_sent + .online.bytes_received) / 1048576 | round' "$r")
  rss="$(( $(tail -1 "$out/$n.server.rss" | cut -d' ' -f1) / 1024 ))+$(( $(tail -1 "$out/$n.client.rss" | cut -d' ' -f1) / 1024 ))"
  tck=$(getconf CLK_TCK)
  cpu=$(tail -1 "$out/$n.server.rss" | awk -v t0="$ticks0" -v hz="$tck" '{printf "%.2f", $2 + $3 - t0 / hz}')
  ccpu=$(tail -1 "$out/$n.client.rss" | awk '{printf "%.2f", $2 + $3}')
  csys=$(tail -1 "$out/$n.client.rss" | awk '{printf "%.2f", $3}')
  cfaults=$(tail -1 "$out/$n.client.rss" | awk '{print $4}')
  echo "{\"server_cpu_seconds\": $cpu, \"client_cpu_seconds\": $ccpu, \"client_system_seconds\": $csys, \"client_minor_faults\": $cfaults}" >"$out/$n.cpu.json"
  uptime >>"$out/$n.load.txt"
  diff=$(jq -s '[.[0].logits, .[1].logits] | transpose | map(.[0] - .[1] | fabs) | max' "$r" "$out/$n.fixed.json")
  scale=$(jq '[.logits[] | fabs] | max' "$out/$n.fixed.json")
  same=$(jq -rn --argjson d "$diff" --argjson s "$scale" 'if $d == 0 then "bit-exact" elif $d <= 0.02 * $s then "within 2% (local truncation)" else "NO (max diff \($d))" end')
  top=$(jq -rs 'if .[0].prediction == .[1].prediction then "yes" else "NO" end' "$r" "$out/$n.float.json")
  echo "| $n | yes | $fmt | $relus | $cmps | $macs | $est | $secs | $est_cpu | $cpu+$ccpu (client sys $csys) | $mib | $rss | $same | $top |" | tee -a "$out/table.md"
done

#!/usr/bin/env bash
# The HE kernel-path figures of the README on this machine, with its CPU next to each one:
# the 3×3 conv 64→64 on 32×32 (one thread) and the default model end to end (real pi-server and
# pi-client processes over TLS on loopback, one-shot and banked), each with the HE kernels this
# CPU picks (AVX-512 IFMA where present), with PI_HE_NO_IFMA=1 (the portable AVX2 path of CPUs
# without IFMA) and with PI_HE_NO_SIMD=1 (scalar). Runs alternate between paths, so a change in
# the machine's load hits all of them alike; the table gives each path's median and its ratio to
# the first path. About 5 minutes on a 2-core machine. Output: target/figures/{runs.jsonl,table.md}.
#   PI_FIGURES_ROUNDS  rounds of alternating runs (default 3)
#   PI_FIGURES_SKIP_E2E=1  only the conv figures
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
cargo build --release --locked -p server -p client -p pi-bench
dir=target/figures
mkdir -p "$dir"
runs=$dir/runs.jsonl
: >"$runs"
bench=./target/release/pi-bench
rounds=${PI_FIGURES_ROUNDS:-3}
paths=(native avx2 scalar)
env_for() {
  case $1 in
  native) echo "PI_FIGURES_PATH=native" ;;
  avx2) echo "PI_HE_NO_IFMA=1" ;;
  scalar) echo "PI_HE_NO_SIMD=1" ;;
  esac
}
for r in $(seq 1 "$rounds"); do
  for p in "${paths[@]}"; do
    echo "round $r/$rounds: conv 64→64, HE path $p" >&2
    line=$(env "$(env_for "$p")" $bench linear --conv 64,64,32,32,3,1 --threads 1 --check)
    echo "{\"figure\":\"conv\",\"path\":\"$p\",\"run\":$line}" >>"$runs"
  done
  if [ -z "${PI_FIGURES_SKIP_E2E:-}" ]; then
    for p in native avx2; do
      echo "round $r/$rounds: default model end to end, HE path $p" >&2
      # Each path keeps its own host-cost file, measured once, so the planner sees its own kernels.
      line=$(env "$(env_for "$p")" PI_SERVER_HOST_COSTS="$dir/host-costs-$p.json" $bench e2e)
      echo "{\"figure\":\"e2e\",\"path\":\"$p\",\"run\":$line}" >>"$runs"
    done
  fi
done
python3 - "$runs" "$dir/table.md" <<'EOF'
import json, os, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
load = os.getloadavg()[0]
cpu = next((r["run"].get("cpu") for r in runs if r["run"].get("cpu")), "unknown CPU")
flags = open("/proc/cpuinfo").read()
isa = ", ".join(f for f in ("avx512ifma", "avx2", "vaes") if f in flags.split())
out = [f"CPU: {cpu} ({isa}); {os.cpu_count()} cores; load average {load:.1f} at the end", "",
       "| figure | HE kernels | median | ratio to the first | runs |", "|---|---|---|---|---|"]
def med(xs): return statistics.median(xs) if xs else float("nan")
def row(fig, key, label, fmt):
    base = None
    for p in ("native", "avx2", "scalar"):
        rs = [r["run"] for r in runs if r["figure"] == fig and r["path"] == p]
        if not rs: continue
        xs = [key(r) for r in rs]
        kern = rs[0].get("kernels") or {"native": "this CPU's best", "avx2": "PI_HE_NO_IFMA=1", "scalar": "PI_HE_NO_SIMD=1"}[p]
        m = med(xs)
        base = base or m
        out.append(f"| {label} | {p} ({kern}) | {fmt(m)} | ×{m / base:.2f} | {', '.join(fmt(x) for x in xs)} |")
row("conv", lambda r: r["he_seconds"], "HE 3×3 conv 64→64, 32×32, 1 thread", lambda x: f"{x:.3f} s")
row("e2e", lambda r: r["inline"]["total_seconds"], "default model one-shot total (TLS, loopback)", lambda x: f"{x:.3f} s")
row("e2e", lambda r: r["banked"]["online_seconds"], "default model banked online (TLS, loopback)", lambda x: f"{x:.3f} s")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
echo "runs in $runs, table in $dir/table.md" >&2

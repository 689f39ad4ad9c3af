#!/usr/bin/env bash
# Times `authbroker demo` (release build, excluding compilation): the wall time of the whole process, from
# exec to exit, and the duration of each step as the demo reports it (--json). Runs it RUNS times (default
# 20) after one warm-up run and prints the median, 90th percentile, minimum and maximum of each.
#
#   bench/run-demo-bench.sh [RUNS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs="${1:-20}"
cargo build --release -q -p authbroker-cli
bin="${CARGO_TARGET_DIR:-$root/target}/release/authbroker"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" demo --json > /dev/null  # warm-up: page cache, first-run effects
for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  "$bin" demo --json > "$out/run-$i.json"
  end=$(date +%s%N)
  echo $(( (end - start) / 1000 )) > "$out/wall-$i.us"
done
python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]
steps, walls, totals = {}, [], []
order = []
for i in range(1, runs + 1):
    report = json.load(open(f"{out}/run-{i}.json"))
    assert report["ok"], report
    totals.append(report["total_ms"])
    walls.append(int(open(f"{out}/wall-{i}.us").read()) / 1000)
    for s in report["steps"]:
        if s["step"] not in steps:
            order.append(s["step"])
        steps.setdefault(s["step"], []).append(s["ms"])
print(f"{runs} runs of `authbroker demo --json`")
print(f"| {'step':<72} | median ms | p90 ms | min ms | max ms |")
print(f"|{'-'*74}|---:|---:|---:|---:|")
for name in order:
    v = steps[name]
    print(f"| {name:<72} | {statistics.median(v):.1f} | {pct(v, 90):.1f} | {min(v):.1f} | {max(v):.1f} |")
for name, v in [("total as the demo reports it (start to last step)", totals),
                ("**process wall time** (exec to exit, incl. shutdown)", walls)]:
    print(f"| {name:<72} | {statistics.median(v):.1f} | {pct(v, 90):.1f} | {min(v):.1f} | {max(v):.1f} |")
PY

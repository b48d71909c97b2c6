#!/usr/bin/env bash
# Sandbox speed: VM start to the job's first instruction, compile time, and a whole
# `verify --duration 10`, each ROUNDS times (default 3), with the goals next to the numbers.
# Run on a quiet machine: VM timings under TCG follow the host's load closely.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
bin=./target/release/schedgen
cargo build --release --quiet
py=/usr/bin/python3
boot=() vmwall=() comp=() ver=()
for i in $(seq "$rounds"); do
  line=$("$bin" vm run -- true 2>&1 >/dev/null | grep 'VM start to job start')
  boot+=("$(sed -E 's/.*job start ([0-9.]+)s.*/\1/' <<<"$line")")
  vmwall+=("$(sed -E 's/.*wall ([0-9.]+)s.*/\1/' <<<"$line")")
  comp+=("$("$bin" compile bpf-reference/longfirst.bpf.c --json | $py -c 'import json,sys; print(round(json.load(sys.stdin)["seconds"], 3))')")
  ver+=("$("$bin" verify bpf-reference/longfirst.bpf.c --duration 10 --json 2>/dev/null | $py -c 'import json,sys; r=json.load(sys.stdin); print(round(r["total_s"], 2) if r["passed"] else "FAILED")')")
  echo "round $i: VM start to job ${boot[-1]} s (whole vm run ${vmwall[-1]} s) · compile ${comp[-1]} s · verify --duration 10 ${ver[-1]} s"
done
mean() { $py -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print(f"{sum(v)/len(v):.2f}")' "$@"; }
echo "mean VM start to job's first instruction  $(mean "${boot[@]}") s   (goal ≤ 5 s)"
echo "mean compile                              $(mean "${comp[@]}") s   (goal ≤ 2 s)"
echo "mean verify --duration 10 (wall)          $(mean "${ver[@]}") s   (goal ≤ 25 s)"

#!/usr/bin/env bash
# `make bench`: every benchmark, side by side, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
rebar3 compile >/dev/null
ebin="$PWD/_build/default/lib/caravan/ebin"
escript bench/dist_bench.escript "$ebin" "$PWD/bench"
echo
escript bench/dns_bench.escript "$ebin" "$PWD/test"
echo
escript bench/http_bench.escript "$ebin" "$PWD/test" "$PWD/_build/c/parse_bench"
# BASELINE=DIR (a built checkout of an earlier commit, e.g. `git worktree add
# /tmp/c1dd4bb c1dd4bb`, then make and rebar3 compile there): the
# 10,000-instance discover/1 p50 of this tree and of DIR side by side, five
# runs of each alternately (each its own VM and program), medians compared.
if [ -n "${BASELINE:-}" ]; then
  base_ebin="$BASELINE/_build/default/lib/caravan/ebin"
  here=() base=()
  for _ in 1 2 3 4 5; do
    here+=("$(escript bench/http_bench.escript "$ebin" "$PWD/test" discover-p50)")
    base+=("$(escript bench/http_bench.escript "$base_ebin" "$PWD/test" discover-p50)")
  done
  med() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
  h=$(med "${here[@]}") b=$(med "${base[@]}")
  echo
  echo "10,000-instance discover/1 p50, ms (5 runs each, alternately)   median  runs"
  echo "  this tree                                    $h  ${here[*]}"
  echo "  baseline $(git -C "$BASELINE" rev-parse --short HEAD)                             $b  ${base[*]}"
  awk -v h="$h" -v b="$b" 'BEGIN { printf "target: this tree no worse than the baseline: %s (%.2fx)\n", (h <= b ? "met" : "MISSED"), h / b }'
fi
echo
escript bench/cluster_bench.escript "$ebin" "$PWD/test"
echo
escript bench/register_bench.escript "$ebin" "$PWD/test"

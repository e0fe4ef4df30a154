#!/usr/bin/env bash
# `make bench`: every benchmark, side by side, in one run.
#
# BASELINE=DIR make bench (DIR: a built checkout of an earlier commit, e.g.
# `git worktree add /tmp/c1dd4bb c1dd4bb`, then make and rebar3 compile
# there; it is only read): every benchmark escript of THIS tree, run against
# this tree's ebin/priv and DIR's, alternately (here, base, then base, here,
# ... BENCH_ROUNDS rounds, 3 by default; the cluster benchmark, ~4 minutes a
# run, BENCH_CLUSTER_ROUNDS, 1 by default), each run its own VM and C
# program. The escripts print ROW lines (CARAVAN_BENCH_ROWS=1);
# bench/compare.escript prints one table of every row: both medians, the
# ratio, a noise band measured in this run and a verdict, and a last line
# naming any row worse beyond noise. Each run's own output is kept in a log
# folder named at the start. BENCH_ONLY="dns register" runs only those of
# dist, dns, http, cluster, register (to try the plumbing quickly).
set -euo pipefail
[ -z "${BASELINE:-}" ] || BASELINE=$(cd "$BASELINE" && pwd) # as given, from the caller's folder
cd "$(dirname "$0")/.."
rebar3 compile >/dev/null
ebin="$PWD/_build/default/lib/caravan/ebin"
if [ -z "${BASELINE:-}" ]; then
  escript bench/dist_bench.escript "$ebin" "$PWD/bench"
  echo
  escript bench/dns_bench.escript "$ebin" "$PWD/test"
  echo
  escript bench/http_bench.escript "$ebin" "$PWD/test" "$PWD/_build/c/parse_bench"
  echo
  escript bench/cluster_bench.escript "$ebin" "$PWD/test"
  echo
  escript bench/register_bench.escript "$ebin" "$PWD/test"
  exit 0
fi

base_ebin="$BASELINE/_build/default/lib/caravan/ebin"
for f in "$base_ebin/caravan.app" "$BASELINE/priv/caravan_port"; do
  [ -e "$f" ] || { echo "BASELINE=$BASELINE is not built: no $f" >&2; exit 2; }
done
rounds=${BENCH_ROUNDS:-3}
cluster_rounds=${BENCH_CLUSTER_ROUNDS:-1}
base_name=$(git -C "$BASELINE" rev-parse --short HEAD 2>/dev/null || echo "$BASELINE")
logs=$(mktemp -d /tmp/caravan-bench.XXXXXX)
rows="$logs/rows.tsv"
: >"$rows"
echo "make bench against the baseline $base_name ($BASELINE): $rounds rounds" \
     "($cluster_rounds for the cluster benchmark), alternately; logs in $logs"
echo "(parse_bench is left out: it compares this tree's parser with c1dd4bb's inside" \
     "one binary; plain \`make bench' runs it)"
start=$SECONDS

# One benchmark for one side: its output to a log, its ROW lines to $rows.
one() { # side round name escript args...
  local side=$1 round=$2 name=$3 script=$4 dir
  shift 4
  case " ${BENCH_ONLY:-$name} " in *" $name "*) ;; *) return 0 ;; esac
  dir=$ebin
  [ "$side" = base ] && dir=$base_ebin
  local log="$logs/$name-$side-$round.txt" t0=$SECONDS
  if CARAVAN_BENCH_ROWS=1 escript "bench/$script" "$dir" "$@" >"$log" 2>&1; then
    { grep '^ROW' "$log" || true; } | sed "s/^/$side\t/" >>"$rows"
    echo "  round $round $name $side: $((SECONDS - t0)) s"
  else
    echo "  round $round $name $side: FAILED after $((SECONDS - t0)) s (see $log)"
  fi
}

for round in $(seq 1 "$rounds"); do
  # Odd rounds run this tree first, even rounds the baseline first.
  sides="here base"
  [ $((round % 2)) -eq 0 ] && sides="base here"
  for side in $sides; do one "$side" "$round" dist dist_bench.escript "$PWD/bench"; done
  for side in $sides; do one "$side" "$round" dns dns_bench.escript "$PWD/test"; done
  for side in $sides; do one "$side" "$round" http http_bench.escript "$PWD/test" -; done
  if [ "$round" -le "$cluster_rounds" ]; then
    for side in $sides; do one "$side" "$round" cluster cluster_bench.escript "$PWD/test"; done
  fi
  for side in $sides; do one "$side" "$round" register register_bench.escript "$PWD/test"; done
done
escript bench/compare.escript "$rows" "$base_name" | tee "$logs/table.txt"
echo "whole comparison: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"

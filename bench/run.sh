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
echo
escript bench/cluster_bench.escript "$ebin" "$PWD/test"
echo
escript bench/register_bench.escript "$ebin" "$PWD/test"

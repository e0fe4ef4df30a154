#!/usr/bin/env bash
# `make bench`: every benchmark, side by side, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
rebar3 compile >/dev/null
escript bench/dist_bench.escript "$PWD/_build/default/lib/caravan/ebin" "$PWD/bench"

#!/usr/bin/env bash
# `make demo`: installs what is missing, builds, and runs scripts/demo.escript.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -s all
rebar3 compile >/dev/null
exec escript scripts/demo.escript "$PWD/_build/default/lib/caravan/ebin" "$PWD/test/support"

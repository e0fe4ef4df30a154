#!/usr/bin/env bash
# `make check-leaks`: caravan_port under valgrind through a long mixed
# request stream (scripts/check_leaks.escript); fails on any memcheck error
# or definite/indirect leak.
set -euo pipefail
cd "$(dirname "$0")/.."
exec escript scripts/check_leaks.escript "$PWD/priv/caravan_port" "$PWD/test/support"

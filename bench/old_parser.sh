#!/usr/bin/env bash
# bench/old_parser.sh OUT.o CC CFLAGS...: the hand-written JSON parser of
# c1dd4bb (issue 19's base) built from the project's own git history into
# one object beside today's, for parse_bench to time both in one run. Its
# catalog.c, json_split.c and json.c are compiled with their own headers and
# linked into OUT.o, whose only globals are old_consul_health_parse and
# old_json_parse; everything else in it is made local, so nothing clashes
# with today's objects (its undefined symbols, grow(), resolve to today's).
set -euo pipefail
out=$1 cc=$2
shift 2
rev=c1dd4bb
dir=$(dirname "$out")/old_parser
mkdir -p "$dir"
cd "$(dirname "$0")/.."
for f in catalog.c catalog.h json.c json.h json_split.c json_split.h; do
    git show "$rev:port_src/$f" >"$dir/$f.new"
    mv "$dir/$f.new" "$dir/$f"
done
objs=()
for f in catalog json json_split; do
    # The old sources' own headers come first (quoted includes search the
    # source's folder); grow.h and the rest from port_src.
    "$cc" "$@" -Iport_src -c -o "$dir/$f.o" "$dir/$f.c"
    objs+=("$dir/$f.o")
done
ld -r -o "$dir/all.o" "${objs[@]}"
objcopy -G consul_health_parse -G json_parse "$dir/all.o" "$dir/kept.o"
objcopy --redefine-sym consul_health_parse=old_consul_health_parse \
        --redefine-sym json_parse=old_json_parse "$dir/kept.o" "$out"

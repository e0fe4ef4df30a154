#!/usr/bin/env bash
# check-includes.sh [ROOT]: the C program's include graph (ROOT/port_src).
#
#   direction  nothing under dns/, http/ or catalog/ includes ops.h: the core
#              knows the backends, a backend answers through replier.h and
#              backend.h only (core/backend.h says why);
#   cycles     no circle between C files, counted per module (x.c with its
#              x.h and its private x_internal.h): x including y.h while y
#              (y.c or y.h) includes x.h is one.
#
# Headers are included by name ("dns.h"; the Makefile puts every folder on
# -iquote), so a name resolves to the one header of that name in port_src/.
# Prints each violation and "includes: N passed, N failed"; exits 1 on any.
set -u
root=${1:-.}
src=$root/port_src
[ -d "$src" ] || { echo "check-includes: no $src" >&2; exit 2; }

failed=0
passed=0

# FILE<TAB>HEADER for every #include "..." of a C file.
edges=$(find "$src" -name '*.[ch]' | sort | while read -r f; do
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
    while read -r h; do printf '%s\t%s\n' "${f#"$src"/}" "$h"; done
done)

# direction
bad=$(printf '%s\n' "$edges" | awk -F'\t' '$1 ~ /^(dns|http|catalog)\// && $2 ~ /(^|\/)ops\.h$/')
if [ -n "$bad" ]; then
  printf '%s\n' "$bad" | awk -F'\t' '{ printf "check-includes: %s includes %s (only the core may)\n", $1, $2 }'
  failed=$((failed + 1))
else
  passed=$((passed + 1))
fi

# cycles: module pairs "from to" for tsort, names resolved by basename.
headers=$(find "$src" -name '*.h' | sed "s|^$src/||" | sort)
pairs=$(printf '%s\n' "$edges" | while IFS=$'\t' read -r f h; do
  [ -n "$f" ] || continue
  target=$(printf '%s\n' "$headers" | awk -v h="$h" '{ n = split($0, p, "/") } p[n] == h { print; exit }')
  [ -n "$target" ] || continue # a header outside port_src (none today)
  from=${f%.*} to=${target%.*}
  from=${from%_internal} to=${to%_internal} # x_internal.h is x's own, private header
  [ "$from" = "$to" ] || printf '%s %s\n' "$from" "$to"
done | sort -u)
if ! loops=$(printf '%s\n' "$pairs" | tsort 2>&1 >/dev/null) || [ -n "$loops" ]; then
  printf '%s\n' "$loops" | sed -e 's/^tsort: .*loop:$/check-includes: an include cycle through:/' \
    -e 's/^tsort: /check-includes:   /'
  failed=$((failed + 1))
else
  passed=$((passed + 1))
fi

echo "includes: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

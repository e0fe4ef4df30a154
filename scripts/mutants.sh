#!/usr/bin/env bash
# Runs the mutants of test/mutants (all, or those named): each is applied to
# a scratch copy of the project, its suite runs there, and a suite that
# still passes means the mutant was MISSED. Prints one line per mutant and
# "N caught, N missed (caught/total)"; exit 0 only if every mutant was caught.
# Not part of `make test` (each mutant costs a suite run).
#   scripts/mutants.sh [NAME...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
caught=0
missed=0
logs=$root/_build/mutants
mkdir -p "$logs"

field() { sed -n "s/^$1: //p" "$2" | head -1; }

# scratch DIR: the project's files (tracked and new, not ignored), with the
# C build output so the scratch copy does not rebuild it.
scratch() {
  local dir=$1
  git ls-files -z -co --exclude-standard |
    xargs -0 -I{} cp --parents -p {} "$dir/" 2>/dev/null
  mkdir -p "$dir/_build" "$dir/priv"
  [ -d _build/c ] && cp -a _build/c "$dir/_build/"
  [ -f priv/caravan_port ] && cp -p priv/caravan_port "$dir/priv/"
}

run_mutant() {
  local m=$1 name file expr run dir rc
  name=$(basename "$m" .mutant)
  file=$(field file "$m")
  expr=$(field sed "$m")
  run=$(field run "$m")
  dir=$(mktemp -d)
  scratch "$dir"
  cp -p "$dir/$file" "$dir/$file.orig"
  sed -i -e "$expr" "$dir/$file"
  if cmp -s "$dir/$file" "$dir/$file.orig"; then
    echo "ERROR   $name: the sed expression changed nothing in $file"
    rm -rf "$dir"
    missed=$((missed + 1))
    return
  fi
  rm -f "$dir/$file.orig"
  case $run in
    ct\ *) (cd "$dir" && flock /tmp/caravan-ct.lock timeout 900 rebar3 ct --suite "${run#ct }") ;;
    cmd\ *) (cd "$dir" && timeout 900 bash -c "${run#cmd }") ;;
    *) echo "ERROR   $name: unknown run: $run"; false ;;
  esac >"$logs/$name.log" 2>&1
  rc=$?
  # A mutant that does not compile proves nothing about the suites.
  if grep -qE 'Compiling .* failed|make: \*\*\*' "$logs/$name.log"; then
    echo "ERROR   $name: the mutant does not build (log: $logs/$name.log)"
    missed=$((missed + 1))
  elif [ "$rc" -ne 0 ]; then
    echo "caught  $name"
    caught=$((caught + 1))
  else
    echo "MISSED  $name (log: $logs/$name.log)"
    missed=$((missed + 1))
  fi
  rm -rf "$dir"
}

if [ $# -gt 0 ]; then
  for n in "$@"; do run_mutant "test/mutants/$n.mutant"; done
else
  for m in test/mutants/*.mutant; do run_mutant "$m"; done
fi
echo "$caught caught, $missed missed ($caught/$((caught + missed)))"
[ "$missed" -eq 0 ]

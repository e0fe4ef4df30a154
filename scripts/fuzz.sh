#!/usr/bin/env bash
# `fuzz.sh SECONDS TARGET...`: runs each libFuzzer target for SECONDS on a
# working copy of its seed corpus (test/fuzz/corpus/TARGET), prints
# executions and coverage, and fails if any target finds a crash. Crash
# inputs are kept in _build/fuzz/crashes/ to become regression tests.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=$1
shift
status=0
mkdir -p _build/fuzz/crashes
for t in "$@"; do
  work=_build/fuzz/corpus-$t
  mkdir -p "$work"
  cp -n test/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null
  log=_build/fuzz/$t.log
  # -rss_limit_mb bounds memory; -max_len keeps inputs near real sizes;
  # -timeout turns a hang into a finding.
  _build/fuzz/fuzz_"$t" "$work" -max_total_time="$seconds" -max_len=65536 \
    -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix=_build/fuzz/crashes/"$t"- >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz $t: FAILED (exit $rc), see $log"
    grep -E 'ERROR|SUMMARY|artifact' "$log" | head -10
    status=1
  else
    echo "fuzz $t: ${seconds}s, ${execs:-?} executions, ${cov:-no coverage line}, corpus $(ls "$work" | wc -l)"
  fi
done
exit $status

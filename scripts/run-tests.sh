#!/usr/bin/env bash
# Runs test suites and sums them: `run-tests.sh all|c|eunit|ct|dialyzer`.
# Every suite runs even when an earlier one fails; the last line is always
# "N passed, N failed" over everything that ran. Exit status 0 only if
# nothing failed. Logs: _build/test-logs/<suite>.log
set -uo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
logs=_build/test-logs
mkdir -p "$logs"
passed=0
failed=0

count() { # suite passed failed
  printf '%-12s %4d passed, %d failed\n' "$1" "$2" "$3"
  passed=$((passed + $2))
  failed=$((failed + $3))
}

# A stray epmd would make every epmd-less test pass for the wrong reason.
check_no_epmd() {
  local pids
  pids=$(pgrep -x epmd | tr '\n' ' ')
  if [ -n "$pids" ]; then
    echo "FAIL: an epmd is running (pids $pids) $1; tests must run without one"
    count "epmd-$1" 0 1
  else
    count "epmd-$1" 1 0
  fi
}

run_c() {
  if ! make -s all c-tests >"$logs/c-build.log" 2>&1; then
    cat "$logs/c-build.log"
    count c-build 0 1
    return
  fi
  for t in _build/c/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    "$t" >"$logs/$name.log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
    p=${p:-0}
    f=${f:-0}
    # No summary line and a non-zero exit: it crashed; count it as a failure.
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1
      tail -20 "$logs/$name.log"
    fi
    [ "$f" -gt 0 ] && grep -E '^\[  (FAILED|ERROR) \]|Error|error' "$logs/$name.log" | head -20
    count "$name" "$p" "$f"
  done
}

run_eunit() {
  rebar3 eunit >"$logs/eunit.log" 2>&1
  rc=$?
  # EUnit ends with "All N tests passed." or "Failed: F.  Skipped: S.  Passed: P."
  p=$(sed -n 's/^ *All \([0-9]*\) tests\{0,1\} passed.*/\1/p' "$logs/eunit.log" | tail -1)
  if [ -z "$p" ]; then
    p=$(sed -n 's/.*Passed: \([0-9]*\)\..*/\1/p' "$logs/eunit.log" | tail -1)
  fi
  if [ -z "$p" ] && grep -q '^ *Test passed\.' "$logs/eunit.log"; then
    p=1
  fi
  f=$(sed -n 's/^ *Failed: \([0-9]*\)\..*/\1/p' "$logs/eunit.log" | tail -1)
  p=${p:-0}
  f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    tail -30 "$logs/eunit.log"
  elif [ "$f" -gt 0 ]; then
    grep -B2 -A12 -E '\*failed\*|::error' "$logs/eunit.log" | head -80
  fi
  count eunit "$p" "$f"
}

run_ct() {
  local args=()
  [ -n "${CT_SUITES:-}" ] && args+=(--suite "$CT_SUITES")
  rebar3 ct "${args[@]}" >"$logs/ct.log" 2>&1
  rc=$?
  p=$(grep -oE 'Passed [0-9]+ tests|All [0-9]+ tests passed' "$logs/ct.log" | grep -oE '[0-9]+' | tail -1)
  f=$(grep -oE 'Failed [0-9]+ tests' "$logs/ct.log" | grep -oE '[0-9]+' | tail -1)
  p=${p:-0}
  f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  if [ "$f" -gt 0 ]; then
    tail -60 "$logs/ct.log"
  fi
  count ct "$p" "$f"
}

# Dialyzer over erl_src counts as one test: clean or not.
run_dialyzer() {
  if rebar3 dialyzer >"$logs/dialyzer.log" 2>&1; then
    count dialyzer 1 0
  else
    tail -40 "$logs/dialyzer.log"
    count dialyzer 0 1
  fi
}

case $what in
  all)
    check_no_epmd before
    run_c
    run_eunit
    run_ct
    run_dialyzer
    check_no_epmd after
    ;;
  c) run_c ;;
  eunit) run_eunit ;;
  ct) run_ct ;;
  dialyzer) run_dialyzer ;;
  *) echo "usage: $0 all|c|eunit|ct|dialyzer" >&2; exit 2 ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

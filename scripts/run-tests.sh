#!/usr/bin/env bash
# Runs test suites and sums them: `run-tests.sh all|c|eunit|ct|dialyzer|asan|fuzz`.
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
  printf '%-14s %4d passed, %d failed\n' "$1" "$2" "$3"
  passed=$((passed + $2))
  failed=$((failed + $3))
}

# settle SUITE PASSED FAILED EXIT_CODE LOG LINES: counts a suite's result. A
# suite that exited non-zero without reporting a failure crashed or could not
# run: that counts as one failure. On failure the log's last LINES are shown.
settle() {
  local suite=$1 p=${2:-0} f=${3:-0} rc=$4 log=$5 lines=$6
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  if [ "$f" -gt 0 ]; then
    tail -"$lines" "$log"
  fi
  count "$suite" "$p" "$f"
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

# cmocka_suite NAME BINARY: runs one cmocka binary and counts its result.
cmocka_suite() {
  local name=$1 bin=$2
  "$bin" >"$logs/$name.log" 2>&1
  local rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
  settle "$name" "$p" "$f" "$rc" "$logs/$name.log" 30
}

run_c() {
  if ! make -s all c-tests >"$logs/c-build.log" 2>&1; then
    cat "$logs/c-build.log"
    count c-build 0 1
    return
  fi
  for t in _build/c/test_*; do
    [ -x "$t" ] && cmocka_suite "$(basename "$t")" "$t"
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
  [ "${f:-0}" -gt 0 ] && grep -B2 -A12 -E '\*failed\*|::error' "$logs/eunit.log" | head -80
  settle eunit "$p" "$f" "$rc" "$logs/eunit.log" 30
}

run_ct() {
  local args=()
  [ -n "${CT_SUITES:-}" ] && args+=(--suite "$CT_SUITES")
  rebar3 ct "${args[@]}" >"$logs/ct.log" 2>&1
  rc=$?
  p=$(grep -oE 'Passed [0-9]+ tests|All [0-9]+ tests passed' "$logs/ct.log" | grep -oE '[0-9]+' | tail -1)
  f=$(grep -oE 'Failed [0-9]+ tests' "$logs/ct.log" | grep -oE '[0-9]+' | tail -1)
  settle ct "$p" "$f" "$rc" "$logs/ct.log" 60
}

# Dialyzer over erl_src counts as one test: clean or not.
run_dialyzer() {
  rebar3 dialyzer >"$logs/dialyzer.log" 2>&1
  rc=$?
  settle dialyzer $((rc == 0)) 0 "$rc" "$logs/dialyzer.log" 40
}

# The C program built with ASan + UBSan: its cmocka tests, then the suites
# that drive the program itself (EUnit's port tests, the DNS and HTTP
# suites) with it swapped in. Every sanitizer report is written to a file;
# any file at all fails the run, even where the tests themselves passed
# (a UBSan abort looks like a crash the owner recovers from).
run_asan() {
  local reports=_build/asan/reports
  rm -rf "$reports"
  mkdir -p "$reports"
  if ! make -s asan >"$logs/asan-build.log" 2>&1; then
    cat "$logs/asan-build.log"
    count asan-build 0 1
    return
  fi
  export ASAN_OPTIONS="log_path=$PWD/$reports/asan:detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="log_path=$PWD/$reports/ubsan:print_stacktrace=1"
  for t in _build/asan/test_*; do
    [ -x "$t" ] && cmocka_suite "asan-$(basename "$t")" "$t"
  done
  CARAVAN_PORT_PROGRAM=$PWD/_build/asan/caravan_port rebar3 eunit --module caravan_port_tests,caravan_name_tests \
    >"$logs/asan-eunit.log" 2>&1
  rc=$?
  p=$(sed -n 's/^ *All \([0-9]*\) tests\{0,1\} passed.*/\1/p' "$logs/asan-eunit.log" | tail -1)
  f=$(sed -n 's/^ *Failed: \([0-9]*\)\..*/\1/p' "$logs/asan-eunit.log" | tail -1)
  settle asan-eunit "$p" "$f" "$rc" "$logs/asan-eunit.log" 30
  CARAVAN_PORT_PROGRAM=$PWD/_build/asan/caravan_port rebar3 ct --suite caravan_dns_SUITE,caravan_http_SUITE \
    >"$logs/asan-ct.log" 2>&1
  rc=$?
  p=$(grep -oE 'Passed [0-9]+ tests|All [0-9]+ tests passed' "$logs/asan-ct.log" | grep -oE '[0-9]+' | tail -1)
  f=$(grep -oE 'Failed [0-9]+ tests' "$logs/asan-ct.log" | grep -oE '[0-9]+' | tail -1)
  settle asan-ct "$p" "$f" "$rc" "$logs/asan-ct.log" 60
  unset ASAN_OPTIONS UBSAN_OPTIONS
  local found
  found=$(ls "$reports" 2>/dev/null | wc -l)
  if [ "$found" -gt 0 ]; then
    echo "sanitizer reports in $reports:"
    head -40 "$reports"/*
  fi
  settle asan-reports $((found == 0)) "$found" 0 /dev/null 0
}

# libFuzzer smoke run: every parser, FUZZ_SECONDS each (default 30).
run_fuzz() {
  if ! make -s fuzz-build >"$logs/fuzz-build.log" 2>&1; then
    cat "$logs/fuzz-build.log"
    count fuzz-build 0 1
    return
  fi
  scripts/fuzz.sh "${FUZZ_SECONDS:-30}" request dns_msg consul nomad args http_header | tee "$logs/fuzz.log"
  p=$(grep -c ': [0-9]*s, ' "$logs/fuzz.log")
  f=$(grep -c 'FAILED' "$logs/fuzz.log")
  settle fuzz "$p" "$f" 0 "$logs/fuzz.log" 0
}

case $what in
  all)
    check_no_epmd before
    run_c
    run_eunit
    run_ct
    run_dialyzer
    run_asan
    run_fuzz
    check_no_epmd after
    ;;
  c) run_c ;;
  eunit) run_eunit ;;
  ct) run_ct ;;
  dialyzer) run_dialyzer ;;
  asan) run_asan ;;
  fuzz) run_fuzz ;;
  *) echo "usage: $0 all|c|eunit|ct|dialyzer|asan|fuzz" >&2; exit 2 ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

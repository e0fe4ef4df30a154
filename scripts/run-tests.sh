#!/usr/bin/env bash
# Runs test suites and sums them: `run-tests.sh all|runner|includes|c|eunit|ct|elixir|dialyzer|asan|fuzz`.
# Every suite runs even when an earlier one fails; the last line is always
# "N passed, N failed, N skipped" over everything that ran. Skipped cases are
# listed with their reasons before it (never silent). With CI=true a skip
# whose reason test/skip-allowlist.txt does not name fails the run.
# Exit status 0 only if nothing failed. Logs: _build/test-logs/<suite>.log
# RUN_TESTS_ROOT runs the suites of another project (the runner's own test).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/test-skips.sh
. "$here/test-skips.sh"
SKIP_ALLOWLIST=${SKIP_ALLOWLIST:-$here/../test/skip-allowlist.txt}
cd "${RUN_TESTS_ROOT:-$here/..}" || exit 2

what=${1:-all}
logs=_build/test-logs
mkdir -p "$logs"
passed=0
failed=0
skipped=0
# Every skipped case, "WHERE<TAB>REASON" a line (see test-skips.sh).
skips=$logs/skips.tsv
: >"$skips"
# Every failed case, "SUITE: CASE" a line, repeated next to the summary:
# CI shows only the end of the output, and a log tail may not reach the name.
fails=$logs/fails.txt
: >"$fails"

count() { # suite passed failed [skipped]
  local s=${4:-0}
  printf '%-14s %4d passed, %d failed, %d skipped\n' "$1" "$2" "$3" "$s"
  passed=$((passed + $2))
  failed=$((failed + $3))
  skipped=$((skipped + s))
}

# settle SUITE PASSED FAILED EXIT_CODE LOG LINES [SKIPPED]: counts a suite's
# result. A suite that exited non-zero without reporting a failure crashed
# or could not run: that counts as one failure. On failure the log's last
# LINES are shown.
settle() {
  local suite=$1 p=${2:-0} f=${3:-0} rc=$4 log=$5 lines=$6 s=${7:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  if [ "$f" -gt 0 ]; then
    tail -"$lines" "$log"
    local named
    named=$(failed_cases "$log")
    [ "$suite" = asan-reports ] && named=$(cat "$log")
    [ "$suite" = includes ] && named=$(grep "^check-includes:" "$log")
    if [ -n "$named" ]; then
      printf '%s\n' "$named" | sed "s/^/$suite: /" >>"$fails"
    else
      echo "$suite: (no case named; see $log)" >>"$fails"
    fi
  fi
  count "$suite" "$p" "$f" "$s"
}

# failed_cases LOG: the names (and first reason line) of failed cases as
# rebar3 ct ("%%% S ==> C: FAILED" then the reason), cmocka ("[  FAILED  ] C",
# printed twice: listed once) and EUnit ("m: t...*failed*", "*timed out*")
# print them.
failed_cases() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
    reason { print "  " substr($0, 1, 240); reason = 0 }
    /==> .*: FAILED$/ { print; reason = 1; next }
    /^\[  FAILED  \] [A-Za-z_]/ { print }
    /\*failed\*$/ || /\*timed out\*$/ || /context setup failed/ { print }
    /^  [0-9]+\) (test|doctest) / { print }
  ' | awk '!seen[$0]++' | head -40
}

# add_skips SUITE N REASON: N skips the tool reports without a reason of
# its own (EUnit, cmocka), or that no log line explained.
add_skips() {
  local i
  for ((i = 0; i < $2; i++)); do
    printf '%s\t%s\n' "$1" "$3" >>"$skips"
  done
}

# A stray epmd would make every epmd-less test pass for the wrong reason.
check_no_epmd() {
  local pids
  pids=$(pgrep -x epmd | tr '\n' ' ')
  if [ -n "$pids" ]; then
    echo "FAIL: an epmd is running (pids $pids) $1; tests must run without one"
    # Who started it and what holds port 4369: not the code, and stopped by its pid.
    ps -o pid=,ppid=,user=,args= -p "$(echo $pids | tr ' ' ',')" | sed 's/^/  epmd: /'
    ss -Hltnp 'sport = :4369' 2>/dev/null | sed 's/^/  port 4369: /'
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
  # "[  SKIPPED ] N test(s), listed below:" then one "[  SKIPPED ] name" each.
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
  awk -v suite="$name" '
    /^\[  SKIPPED \] [0-9]+ test\(s\), listed below:/ { listing = 1; next }
    listing && /^\[  SKIPPED \] / { printf "%s:%s\tcmocka gives no reason\n", suite, $NF }
  ' "$logs/$name.log" >>"$skips"
  settle "$name" "$p" "$f" "$rc" "$logs/$name.log" 30 "${s:-0}"
}

# The C program's include graph (scripts/check-includes.sh): the direction
# (no ops.h under dns/ http/ catalog/) and no cycle, one case each.
run_includes() {
  scripts/check-includes.sh >"$logs/includes.log" 2>&1
  rc=$?
  p=$(sed -n 's/^includes: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$logs/includes.log")
  f=$(sed -n 's/^includes: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$logs/includes.log")
  settle includes "${p:-0}" "${f:-0}" "$rc" "$logs/includes.log" 20
}

run_c() {
  if ! make -s all c-tests >"$logs/c-build.log" 2>&1; then
    cat "$logs/c-build.log"
    count c-build 0 1
    return
  fi
  # One binary per test/c source: a binary left in _build by a test file
  # since renamed or removed would otherwise go on running, and counting.
  for src in test/c/test_*.c; do
    t=_build/c/$(basename "$src" .c)
    [ -x "$t" ] && cmocka_suite "$(basename "$t")" "$t"
  done
}

run_eunit() {
  rebar3 eunit >"$logs/eunit.log" 2>&1
  rc=$?
  # EUnit ends with "All N tests passed." or "Failed: F.  Skipped: S.  Passed: P."
  p=$(sed -n 's/^ *\(All \)\{0,1\}\([0-9]*\) tests\{0,1\} passed.*/\2/p' "$logs/eunit.log" | tail -1)
  if [ -z "$p" ]; then
    p=$(sed -n 's/.*Passed: \([0-9]*\)\..*/\1/p' "$logs/eunit.log" | tail -1)
  fi
  if [ -z "$p" ] && grep -q '^ *Test passed\.' "$logs/eunit.log"; then
    p=1
  fi
  f=$(sed -n 's/^ *Failed: \([0-9]*\)\..*/\1/p' "$logs/eunit.log" | tail -1)
  [ "${f:-0}" -gt 0 ] && grep -B2 -A12 -E '\*failed\*|::error' "$logs/eunit.log" | head -80
  # EUnit skips only what a failed setup cancels, and names no reason.
  s=$(sed -n 's/.*Skipped: \([0-9]*\)\..*/\1/p' "$logs/eunit.log" | tail -1)
  add_skips eunit "${s:-0}" "EUnit gives no reason (a setup failed)"
  settle eunit "$p" "$f" "$rc" "$logs/eunit.log" 30 "${s:-0}"
}

# ct_suites NAME LOG REBAR3_ARGS...: one `rebar3 ct` run, counted. Passed
# and failed come from rebar3's "Failed N tests. Skipped N (U, A) tests.
# Passed N tests." line; the skipped cases and their reasons from the
# suite.log files CT wrote during this run.
ct_suites() {
  local name=$1 log=$2 marker
  shift 2
  marker=$(mktemp)
  rebar3 ct "$@" >"$log" 2>&1
  rc=$?
  p=$(grep -oE 'Passed [0-9]+ tests|All [0-9]+ tests passed' "$log" | grep -oE '[0-9]+' | tail -1)
  f=$(grep -oE 'Failed [0-9]+ tests' "$log" | grep -oE '[0-9]+' | tail -1)
  s=$(grep -oE 'Skipped [0-9]+ ' "$log" | grep -oE '[0-9]+' | tail -1)
  local found
  found=$(ct_skip_lines _build/test/logs "$marker" | sed "s/^/$name:/" | tee -a "$skips" | wc -l)
  rm -f "$marker"
  s=${s:-0}
  if [ "$found" -lt "$s" ]; then
    add_skips "$name" $((s - found)) "reason not found in the CT logs"
  elif [ "$found" -gt "$s" ]; then
    s=$found
  fi
  settle "$name" "$p" "$f" "$rc" "$log" 60 "$s"
}

run_ct() {
  local args=()
  [ -n "${CT_SUITES:-}" ] && args+=(--suite "$CT_SUITES")
  ct_suites ct "$logs/ct.log" "${args[@]}"
}

# The Elixir tier: test/elixir, a Mix project with caravan as a path
# dependency (manager: :rebar3), run with `mix test`. Offline and with no
# trace outside _build: hex is never asked (HEX_OFFLINE, no hex deps),
# Mix's home and build output live in _build/elixir, rebar3 is Debian's.
# Counts come from ExUnit's summary line: "2 doctests, 6 tests, 1 failure,
# 1 excluded, 1 skipped" (doctests count as tests; passed = the rest).
run_elixir() {
  local log=$logs/elixir.log
  [ -d test/elixir ] || return 0 # another project (RUN_TESTS_ROOT) without the tier
  if ! command -v mix >/dev/null 2>&1; then
    echo "mix is not installed (make deps installs Debian's elixir)" >"$log"
    settle elixir 0 1 1 "$log" 1
    return
  fi
  local root=$PWD
  (cd test/elixir &&
     MIX_ENV=test MIX_HOME="$root/_build/elixir/mix-home" HEX_OFFLINE=1 HEX_HOME="$root/_build/elixir/hex-home" \
     MIX_REBAR3=${MIX_REBAR3:-$(command -v rebar3)} MIX_BUILD_ROOT="$root/_build/elixir/build" \
     timeout 300 mix test --color=false) >"$log" 2>&1
  rc=$?
  local line total f s
  line=$(grep -E '^([0-9]+ doctests?, )?[0-9]+ tests?, [0-9]+ failures?' "$log" | tail -1)
  total=$(( $(echo "$line" | sed -n 's/^\([0-9]*\) doctest.*/\1/p' | head -1) + 0 ))
  total=$((total + $(echo "$line" | sed -n 's/\(^\|.*, \)\([0-9]*\) tests\{0,1\},.*/\2/p' | head -1) + 0))
  f=$(echo "$line" | sed -n 's/.*, \([0-9]*\) failures\{0,1\}.*/\1/p')
  s=$(echo "$line" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
  local x i
  x=$(echo "$line" | sed -n 's/.*, \([0-9]*\) excluded.*/\1/p')
  i=$(echo "$line" | sed -n 's/.*, \([0-9]*\) invalid.*/\1/p')
  f=$(( ${f:-0} + ${i:-0} ))
  s=$(( ${s:-0} + ${x:-0} ))
  add_skips elixir "$s" "ExUnit gives no reason (@tag :skip or excluded)"
  settle elixir $((total - f - s)) "$f" "$rc" "$log" 60 "$s"
}

# The runner's own test (test/runner): its counts and skip policy against
# real CT, EUnit and cmocka output from a fixture project.
run_runner() {
  bash test/runner/run_tests_test.sh >"$logs/runner.log" 2>&1
  rc=$?
  p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$logs/runner.log" | tail -1)
  f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$logs/runner.log" | tail -1)
  settle runner "$p" "$f" "$rc" "$logs/runner.log" 40
}

# Dialyzer over erl_src counts as one test: clean or not.
run_dialyzer() {
  rebar3 dialyzer >"$logs/dialyzer.log" 2>&1
  rc=$?
  settle dialyzer $((rc == 0)) 0 "$rc" "$logs/dialyzer.log" 40
}

# The C program built with ASan + UBSan: its cmocka tests, then the suites
# that drive the program itself (EUnit's port tests, the DNS, HTTP and watch
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
  for src in test/c/test_*.c; do
    t=_build/asan/$(basename "$src" .c)
    [ -x "$t" ] && cmocka_suite "asan-$(basename "$t")" "$t"
  done
  CARAVAN_PORT_PROGRAM=$PWD/_build/asan/caravan_port rebar3 eunit --module caravan_port_tests,caravan_name_tests \
    >"$logs/asan-eunit.log" 2>&1
  rc=$?
  p=$(sed -n 's/^ *\(All \)\{0,1\}\([0-9]*\) tests\{0,1\} passed.*/\2/p' "$logs/asan-eunit.log" | tail -1)
  f=$(sed -n 's/^ *Failed: \([0-9]*\)\..*/\1/p' "$logs/asan-eunit.log" | tail -1)
  settle asan-eunit "$p" "$f" "$rc" "$logs/asan-eunit.log" 30
  CARAVAN_PORT_PROGRAM=$PWD/_build/asan/caravan_port \
    ct_suites asan-ct "$logs/asan-ct.log" --suite caravan_dns_SUITE,caravan_dns_resend_SUITE,caravan_catalog_SUITE,caravan_watch_SUITE,caravan_cancel_SUITE,caravan_register_SUITE,caravan_loader_SUITE
  unset ASAN_OPTIONS UBSAN_OPTIONS
  local found
  found=$(ls "$reports" 2>/dev/null | wc -l)
  if [ "$found" -gt 0 ]; then
    echo "sanitizer reports in $reports:"
    head -40 "$reports"/*
    # The first line of each report (what went wrong) goes to the list of
    # failures next to the summary.
    grep -h -m1 -E 'ERROR: |runtime error' "$reports"/* | head -5 >"$logs/asan-reports.log"
  fi
  settle asan-reports $((found == 0)) "$found" 0 "$logs/asan-reports.log" 0
}

# libFuzzer smoke run: every parser, FUZZ_SECONDS each (default 30).
run_fuzz() {
  if ! make -s fuzz-build >"$logs/fuzz-build.log" 2>&1; then
    cat "$logs/fuzz-build.log"
    count fuzz-build 0 1
    return
  fi
  # Two halves side by side, one per core: every target still runs its full
  # FUZZ_SECONDS on a core of its own, in half the wall time.
  local secs=${FUZZ_SECONDS:-30}
  scripts/fuzz.sh "$secs" request dns_msg consul >"$logs/fuzz-a.log" 2>&1 &
  local a=$!
  scripts/fuzz.sh "$secs" nomad args http_header register >"$logs/fuzz-b.log" 2>&1 &
  local b=$!
  local rc=0
  wait "$a" || rc=1
  wait "$b" || rc=1
  cat "$logs/fuzz-a.log" "$logs/fuzz-b.log" | tee "$logs/fuzz.log"
  p=$(grep -c ': [0-9]*s, ' "$logs/fuzz.log")
  f=$(grep -c 'FAILED' "$logs/fuzz.log")
  settle fuzz "$p" "$f" "$rc" "$logs/fuzz.log" 0
}

case $what in
  all)
    check_no_epmd before
    run_runner
    run_includes
    run_c
    run_eunit
    run_ct
    run_elixir
    run_dialyzer
    run_asan
    run_fuzz
    check_no_epmd after
    ;;
  runner) run_runner ;;
  includes) run_includes ;;
  c) run_c ;;
  eunit) run_eunit ;;
  ct) run_ct ;;
  elixir) run_elixir ;;
  dialyzer) run_dialyzer ;;
  asan) run_asan ;;
  fuzz) run_fuzz ;;
  *) echo "usage: $0 all|runner|includes|c|eunit|ct|elixir|dialyzer|asan|fuzz" >&2; exit 2 ;;
esac

# Skips are listed whatever the mode; in CI an unexplained one fails.
if [ -s "$skips" ]; then
  echo "skipped:"
  sed 's/\t/: /; s/^/  /' "$skips"
  if [ "${CI:-}" = true ]; then
    unexplained=$(unexplained_skips "$skips" | wc -l)
    if [ "$unexplained" -gt 0 ]; then
      echo "FAIL: CI=true and $unexplained skip(s) name no reason in $SKIP_ALLOWLIST:"
      unexplained_skips "$skips" | sed 's/\t/: /; s/^/  /'
      count skip-policy 0 "$unexplained"
    fi
  fi
fi

if [ -s "$fails" ]; then
  echo "failed:"
  sed 's/^/  /' "$fails"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

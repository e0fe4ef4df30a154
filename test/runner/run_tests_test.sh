#!/usr/bin/env bash
# The test runner's own test: scripts/run-tests.sh over test/runner/fake, a
# project whose Common Test, EUnit and cmocka suites pass, fail and skip on
# purpose. Checks the summary line, the listing of skipped cases with their
# reasons, and that CI=true fails on a skip the allowlist does not name.
# Prints "N passed, N failed" over its checks; exit 0 only if all pass.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runner=$here/../../scripts/run-tests.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$here/fake/." "$work/"
# The fixture's sources are kept as *.in: rebar3 eunit in this project
# would otherwise find them under test/ and look for them in the build.
for f in "$work"/test/*.in "$work"/src/*.in; do
  mv "$f" "${f%.in}"
done
ok=0
bad=0

# run NAME CI STEP [VAR=VALUE...]: the runner on the fixture; output in $work/NAME.out.
run() {
  local name=$1 ci=$2 step=$3
  shift 3
  env -u CI ${ci:+CI=$ci} RUN_TESTS_ROOT="$work" "$@" bash "$runner" "$step" \
    >"$work/$name.out" 2>&1
  echo $? >"$work/$name.rc"
}

# check NAME WHAT TEST...: one check, counted.
check() {
  local name=$1 what=$2
  shift 2
  if "$@"; then
    ok=$((ok + 1))
  else
    bad=$((bad + 1))
    echo "FAIL $name: $what"
    sed 's/^/    /' "$work/$name.out"
  fi
}
last_line() { [ "$(tail -1 "$work/$1.out")" = "$2" ]; }
status() { [ "$(cat "$work/$1.rc")" "$2" 0 ]; }
says() { grep -qF -- "$2" "$work/$1.out"; }

# An allowlisted skip passes CI, and is still listed and counted.
run allowed true ct CT_SUITES=fake_allowed_SUITE
check allowed "summary" last_line allowed "1 passed, 0 failed, 1 skipped"
check allowed "exit 0" status allowed -eq
check allowed "reason listed" says allowed "fake_allowed_SUITE:skipped_allowed: ::1 is not configured on lo"

# Skips from a case and from a group's init_per_group, reasons not allowed:
# each is counted and listed, and CI fails once per skip.
run skips true ct CT_SUITES=fake_skips_SUITE
check skips "summary" last_line skips "1 passed, 3 failed, 3 skipped"
check skips "exit non-zero" status skips -ne
check skips "case reason" says skips "fake_skips_SUITE:skipped_case: no reason anyone could act on"
check skips "group reason" says skips "fake_skips_SUITE:in_group_b: mix is not installed"
check skips "CI names the policy" says skips "skip(s) name no reason in"

# A crashed init_per_group: one failure, and its case auto-skipped (outside CI).
run crash "" ct CT_SUITES=fake_crash_SUITE
check crash "summary" last_line crash "1 passed, 1 failed, 1 skipped"
check crash "auto-skip listed" says crash "fake_crash_SUITE:never_runs: auto-skipped:"

# A failed case: counted, and named with its reason next to the summary,
# which is all of the output CI may show.
run fails "" ct CT_SUITES=fake_fails_SUITE
check fails "summary" last_line fails "1 passed, 1 failed, 0 skipped"
check fails "exit non-zero" status fails -ne
check fails "named" says fails "ct: %%% fake_fails_SUITE ==> breaks: FAILED"
check fails "reason" says fails "planted_by_the_runner_test"
check fails "listed after the counts" grep -qxF -- "failed:" <(tail -5 "$work/fails.out")

# cmocka: a skip is counted outside CI, and fails CI (cmocka gives no reason).
# A binary left in _build/c by a test source since renamed or removed is
# not run: it would go on counting (and here failing).
mkdir -p "$work/_build/c"
printf '#!/bin/sh\necho "[  FAILED  ] stale"\nexit 1\n' >"$work/_build/c/test_gone"
chmod +x "$work/_build/c/test_gone"
run cmocka "" c
check cmocka "summary" last_line cmocka "1 passed, 0 failed, 1 skipped"
check cmocka "exit 0" status cmocka -eq
check cmocka "listed" says cmocka "test_fake:skipped: cmocka gives no reason"
run cmocka_ci true c
check cmocka_ci "summary" last_line cmocka_ci "1 passed, 1 failed, 1 skipped"

# EUnit: passes counted, nothing skipped.
run eunit "" eunit
check eunit "summary" last_line eunit "2 passed, 0 failed, 0 skipped"

echo "$ok passed, $bad failed"
[ "$bad" -eq 0 ]

# Skipped tests, for scripts/run-tests.sh (sourced; bash). A skip is never
# silent: every skipped case is listed with its reason, counted in the
# summary, and under CI=true any skip whose reason is not in
# test/skip-allowlist.txt fails the run.
#
# A skip line is "WHERE<TAB>REASON": WHERE names the suite and case
# (caravan_dist_SUITE:ipv6_pair), REASON is the text the test gave.

# ct_skip_lines LOGDIR MARKER: the skipped cases of the Common Test runs
# whose logs under LOGDIR are newer than the file MARKER. CT writes one
# suite.log per suite and run, with a "=case M:F" line and later a
# "=result skipped: R" (a {skip, R} from the case or its init_per_*) or
# "=result auto_skipped: R" (an init_per_* crashed) line per case.
# Configuration functions (init_per_group...) are not cases: CT's
# "Skipped N" does not count them, so neither does this.
ct_skip_lines() {
  local logdir=$1 marker=$2
  [ -d "$logdir" ] || return 0
  find "$logdir" -name suite.log -newer "$marker" -print0 2>/dev/null |
    xargs -0 -r awk '
      /^=case / { c = $2; next }
      /^=result +(auto_)?skipped:/ {
        if (c ~ /:(init|end)_per_(suite|group|testcase)$/ || c ~ /^ct_framework:/) next
        r = $0
        sub(/^=result +/, "", r)
        kind = r; sub(/:.*/, "", kind)
        sub(/^(auto_)?skipped: */, "", r)
        gsub(/^"|"$/, "", r)
        if (kind == "auto_skipped") r = "auto-skipped: " r
        printf "%s\t%s\n", c, r
      }'
}

# skip_allowed REASON: true if REASON starts with an entry of the
# allowlist (extended regular expressions, one a line, each anchored at
# the start of the reason; "#" lines and blank lines are comments).
skip_allowed() {
  local reason=$1 re
  while IFS= read -r re; do
    case $re in ''|'#'*) continue ;; esac
    if printf '%s\n' "$reason" | grep -Eq -- "^($re)"; then
      return 0
    fi
  done <"$SKIP_ALLOWLIST"
  return 1
}

# unexplained_skips FILE: prints the skip lines of FILE whose reason is not
# allowed, one a line.
unexplained_skips() {
  local where reason
  while IFS=$'\t' read -r where reason; do
    skip_allowed "$reason" || printf '%s\t%s\n' "$where" "$reason"
  done <"$1"
}

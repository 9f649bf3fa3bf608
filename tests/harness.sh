# Shared by the bash tests (source it): pass/fail counting and the closing line.
#   ok / bad MESSAGE          count a pass / a failure (printed)
#   check DESCRIPTION CMD...  a pass when CMD succeeds
#   finish                    print "N passed, N failed", remove $t when all passed, exit
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() {
  local what=$1
  shift
  if "$@"; then ok; else bad "$what"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  if [ -n "${t:-}" ]; then
    if [ "$failed" -eq 0 ]; then rm -rf "$t"; else echo "files kept in $t" >&2; fi
  fi
  [ "$failed" -eq 0 ]
  exit
}

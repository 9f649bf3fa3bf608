# Shared by the bash tests (source it): pass/fail counting, checks, the closing line.
#   ok / bad MESSAGE                  count a pass / a failure (printed)
#   check DESCRIPTION CMD...          a pass when CMD succeeds
#   expect STATUS PATTERN -- CMD...   CMD exits with STATUS and prints a line matching PATTERN
#   finish                            print "N passed, N failed", remove $t when all passed, exit
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() {
  local what=$1
  shift
  if "$@"; then ok; else bad "$what"; fi
}
expect() {
  local want=$1 pattern=$2
  shift 3
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [ "$status" -ne "$want" ]; then bad "$* -> exit $status, want $want: $out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then bad "$* -> output lacks /$pattern/: $out"; return; fi
  ok
}
finish() {
  echo "$pass passed, $fail failed"
  if [ -n "${t:-}" ]; then
    if [ "$fail" -eq 0 ]; then rm -rf "$t"; else echo "files kept in $t" >&2; fi
  fi
  [ "$fail" -eq 0 ]
  exit
}

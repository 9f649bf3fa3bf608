#!/usr/bin/env bash
# docs/man/dae-cl.1 against the programs' --help: every option that `dae-cl CMD --help` prints
# (for every CMD that `dae-cl --help` lists) is described in the page's section for CMD, the
# global options in GLOBAL OPTIONS, and likewise for dae-cl-visualize's commands and
# dae-cl-fetch-mnist. Usage: test_man.sh MANPAGE DAE-CL [VISUALIZE] FETCH-MNIST
set -u
man=$1 bin=$2 vis=${3:-} fetch=${4:-}
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

# The text of one section (.SH or .SS title), with roff's \- as - and font escapes removed.
section() {
  awk -v want="$1" '
    /^\.S[HS] / { t = $0; sub(/^\.S[HS] +/, "", t); gsub(/"/, "", t); gsub(/\\-/, "-", t); on = (t == want); next }
    on { print }' "$man" | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g'
}

# Options a --help text prints: lines "  --name ..." or "  -x ...", without --help/-h.
help_options() { grep -oE '^  +-{1,2}[a-zA-Z0-9][a-zA-Z0-9-]*' | tr -d ' ' | grep -vxE -- '--help|-h' | sort -u; }

# described TITLE OPTIONS...: each option appears as a whole word in section TITLE.
described() {
  local title=$1 text
  shift
  text=$(section "$title")
  if [ -z "$text" ]; then
    bad "$man has no section \"$title\""
    return
  fi
  for o in "$@"; do
    if grep -qE -- "(^|[^a-zA-Z0-9-])$o([^a-zA-Z0-9-]|\$)" <<<"$text"; then
      ok
    else
      bad "$man: section \"$title\" does not describe $o"
    fi
  done
}

top=$("$bin" --help) || bad "$bin --help failed"
commands=$(grep -oE '^  [a-z][a-z-]* ' <<<"$top" | tr -d ' ')
[ -n "$commands" ] || bad "no commands found in $bin --help"
described "GLOBAL OPTIONS" $(grep -oE '^  --[a-z-]+' <<<"$top" | tr -d ' ')
for c in $commands; do
  # `devices` takes no options (it lists the devices); every other command prints its help.
  opts=$("$bin" "$c" --help 2>/dev/null | help_options)
  described "dae-cl $c" $opts
done
if [ -n "$vis" ]; then
  for c in grid curves compare; do
    described "dae-cl-visualize $c" $("$vis" "$c" --help | help_options)
  done
fi
if [ -n "$fetch" ]; then
  described "dae-cl-fetch-mnist" $("$fetch" --help | help_options)
fi
finish

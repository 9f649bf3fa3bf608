#!/usr/bin/env bash
# tools/fetch-mnist, offline: small fake files with an overriding checksum file and --from a
# local directory (and a file:// URL). Checks install, the no-op second run, refusal of a
# mismatching download (nothing in DIR touched), refusal to overwrite a foreign file without
# --force, and that no temporary directories are left behind.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_root="${DAECL_SOURCE_ROOT:-$here/..}"
fetch="$src_root/tools/fetch-mnist"
base="${DAECL_TEST_TMP:-/tmp}"
mkdir -p "$base"
t=$(mktemp -d "$base/fetch-mnist.XXXXXX")

passed=0
failed=0
check() { # DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi
}
contains() { grep -qF -- "$2" <<<"$1"; }
no_temp_dirs() { ! compgen -G "$1/.fetch-mnist.*" >/dev/null; }
mtime() { stat -c %y -- "$1"; }

names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

# Fake "MNIST": random bytes; two stored raw, two gzip-compressed (one under the dotted name).
mkdir -p "$t/src" "$t/ref"
for f in "${names[@]}"; do head -c $((1000 + RANDOM % 1000)) /dev/urandom > "$t/ref/$f"; done
(cd "$t/ref" && sha256sum "${names[@]}") > "$t/sums"
cp "$t/ref/train-images-idx3-ubyte" "$t/src/"
gzip -c "$t/ref/train-labels-idx1-ubyte" > "$t/src/train-labels-idx1-ubyte.gz"
cp "$t/ref/t10k-images-idx3-ubyte" "$t/src/t10k-images.idx3-ubyte"
gzip -c "$t/ref/t10k-labels-idx1-ubyte" > "$t/src/t10k-labels-idx1-ubyte.gz"
export DAECL_MNIST_SHA256_FILE="$t/sums"

# 1. Good files install.
out=$("$fetch" --from "$t/src" "$t/out" 2>&1); rc=$?
check "install exits 0 (got $rc: $out)" test $rc -eq 0
for f in "${names[@]}"; do check "$f installed byte-exact" cmp -s "$t/ref/$f" "$t/out/$f"; done
check "no temp dir left after install" no_temp_dirs "$t/out"

# 2. Second run: a no-op that needs no source at all (nonexistent --from).
before=$(for f in "${names[@]}"; do mtime "$t/out/$f"; done)
out=$("$fetch" --from "$t/nowhere" "$t/out" 2>&1); rc=$?
check "second run exits 0 (got $rc: $out)" test $rc -eq 0
check "second run says nothing to do: $out" contains "$out" "nothing to do"
after=$(for f in "${names[@]}"; do mtime "$t/out/$f"; done)
check "second run touched no file" test "$before" = "$after"

# 3. A mismatching download is refused; the pre-existing good file stays as it was, and the
#    other (good) downloads are not installed either.
mkdir -p "$t/bad" "$t/out2"
cp "$t/src/"* "$t/bad/"
printf 'corrupted' >> "$t/bad/t10k-images.idx3-ubyte"
cp -p "$t/ref/train-images-idx3-ubyte" "$t/out2/"
before=$(mtime "$t/out2/train-images-idx3-ubyte")
out=$("$fetch" --from "$t/bad" "$t/out2" 2>&1); rc=$?
check "mismatch exits non-zero" test $rc -ne 0
check "mismatch names the file: $out" contains "$out" "checksum mismatch for t10k-images-idx3-ubyte"
want=$(grep ' t10k-images-idx3-ubyte$' "$t/sums" | cut -d' ' -f1)
got=$(sha256sum < "$t/bad/t10k-images.idx3-ubyte" | cut -d' ' -f1)
check "mismatch gives expected and got: $out" contains "$out" "expected $want, got $got"
check "pre-existing file untouched (content)" cmp -s "$t/ref/train-images-idx3-ubyte" "$t/out2/train-images-idx3-ubyte"
check "pre-existing file untouched (mtime)" test "$before" = "$(mtime "$t/out2/train-images-idx3-ubyte")"
check "good files not installed on mismatch" test ! -e "$t/out2/train-labels-idx1-ubyte"
check "bad file not installed" test ! -e "$t/out2/t10k-images-idx3-ubyte"
check "no temp dir left after mismatch" no_temp_dirs "$t/out2"

# 4. A different file already in DIR under an MNIST name (say Fashion-MNIST) is not overwritten
#    unless --force; with --force it is replaced by the verified file.
mkdir -p "$t/out3"
printf 'my own labels' > "$t/out3/t10k-labels-idx1-ubyte"
out=$("$fetch" --from "$t/src" "$t/out3" 2>&1); rc=$?
check "foreign file: exits non-zero" test $rc -ne 0
check "foreign file: named in message: $out" contains "$out" "$t/out3/t10k-labels-idx1-ubyte: checksum differs"
check "foreign file: kept" test "$(cat "$t/out3/t10k-labels-idx1-ubyte")" = "my own labels"
check "foreign file: nothing else installed" test ! -e "$t/out3/train-images-idx3-ubyte"
out=$("$fetch" --force --from "$t/src" "$t/out3" 2>&1); rc=$?
check "--force exits 0 (got $rc: $out)" test $rc -eq 0
check "--force replaced the file" cmp -s "$t/ref/t10k-labels-idx1-ubyte" "$t/out3/t10k-labels-idx1-ubyte"

# 5. Only the missing file is fetched: delete one, rerun, the others keep their mtimes.
before=$(mtime "$t/out/train-images-idx3-ubyte")
rm "$t/out/t10k-labels-idx1-ubyte"
out=$("$fetch" --from "$t/src" "$t/out" 2>&1); rc=$?
check "refetch one file exits 0 (got $rc: $out)" test $rc -eq 0
check "refetch installed it" cmp -s "$t/ref/t10k-labels-idx1-ubyte" "$t/out/t10k-labels-idx1-ubyte"
check "refetch left the others alone" test "$before" = "$(mtime "$t/out/train-images-idx3-ubyte")"

# 6. A base URL (file://, through curl or wget): .gz first, then the raw name.
if command -v curl >/dev/null 2>&1; then
  out=$("$fetch" --from "file://$t/src" "$t/out4" 2>&1); rc=$?
  # t10k-images is only there under its dotted name, which URLs do not try: must fail cleanly.
  check "URL with a missing file fails: $out" test $rc -ne 0
  check "URL failure names the file: $out" contains "$out" "t10k-images-idx3-ubyte"
  check "URL failure installs nothing" test ! -e "$t/out4/train-images-idx3-ubyte"
  cp "$t/ref/t10k-images-idx3-ubyte" "$t/src/"
  out=$("$fetch" --from "file://$t/src/" "$t/out4" 2>&1); rc=$?
  check "URL install exits 0 (got $rc: $out)" test $rc -eq 0
  for f in "${names[@]}"; do check "URL: $f byte-exact" cmp -s "$t/ref/$f" "$t/out4/$f"; done
  check "no temp dir left after URL install" no_temp_dirs "$t/out4"
fi

# 7. Bad invocations fail with a message.
grep -v t10k-labels "$t/sums" > "$t/sums-short"
out=$(DAECL_MNIST_SHA256_FILE="$t/sums-short" "$fetch" --from "$t/src" "$t/out5" 2>&1); rc=$?
check "incomplete checksum file refused: $out" test $rc -ne 0
check "incomplete checksum file: message: $out" contains "$out" "no checksum for t10k-labels-idx1-ubyte"
out=$("$fetch" --from "$t/nowhere" "$t/out5" 2>&1); rc=$?
check "missing --from dir refused: $out" test $rc -ne 0
check "missing --from dir named: $out" contains "$out" "$t/nowhere"
out=$("$fetch" --bogus 2>&1); rc=$?
check "unknown option is a usage error (exit 2, got $rc): $out" test $rc -eq 2
out=$("$fetch" --from 2>&1); rc=$?
check "--from without a value: exit 2 (got $rc): $out" test $rc -eq 2
out=$("$fetch" --version 2>&1); rc=$?
check "--version: exit 0 and the version (got $rc): $out" test $rc -eq 0 -a "$out" == "fetch-mnist 0.1.0"
out=$("$fetch" --version --bogus 2>&1); rc=$?
check "--version --bogus: exit 2 (got $rc): $out" test $rc -eq 2
out=$("$fetch" --help 2>&1); rc=$?
check "--help works" test $rc -eq 0
check "--help mentions --from" contains "$out" "--from"

if [[ $failed -eq 0 ]]; then rm -rf -- "$t"; else echo "test files kept in $t" >&2; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

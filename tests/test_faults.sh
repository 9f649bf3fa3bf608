#!/usr/bin/env bash
# Fault injection, end to end (issue 11): nothing is lost and every failure is one clear line.
#  - a full filesystem (a small tmpfs mounted here; skipped with a message where mount is not
#    allowed) during a checkpoint save, a sample PNG, a denoise output and the kernel cache:
#    clear error, previous files intact, no partial or temporary file;
#  - read-only and missing output directories; special files (FIFO, /dev/null, directory) as
#    outputs and inputs (refused, never replaced, never blocking);
#  - unusable kernel cache and PoCL cache directories: one warning line, the run still works;
#  - a device allocation that cannot succeed: the size and the limit named, before training;
#  - training that diverges (non-finite loss) in epoch 1 and in a later epoch: a clear error,
#    the last good checkpoint and its log rows intact, no temporaries;
#  - SIGINT during a multi-file denoise: the file in flight finished, summary on stderr, 130,
#    no temporaries; a second SIGINT removes the file in flight.
set -u
build=${DAECL_BUILD_ROOT:?run through meson test}
bin="$build/src/cli/dae-cl"
base=${DAECL_TEST_TMP:-/tmp}
mkdir -p "$base"
t=$(mktemp -d "$base/faults.XXXXXX")
mounts=()
src=${DAECL_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
. "$src/tests/harness.sh" # pass/fail counters, ok, bad, check, expect
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null; done # nested ones first
  if [ "$fail" -eq 0 ]; then rm -rf "$t"; else echo "files kept in $t" >&2; fi
}
trap cleanup EXIT
no_temporaries() { # DIR: no "*.tmp.*" anywhere below
  local left
  left=$(find "$1" -name '*.tmp.*' 2>/dev/null)
  if [ -z "$left" ]; then ok; else bad "temporaries left in $1: $left"; fi
}
# A tmpfs of SIZE at DIR (created); returns 1 where mounting is not allowed.
tmpfs() {
  mkdir -p "$2"
  mount -t tmpfs -o "size=$1" tmpfs "$2" 2>/dev/null || return 1
  mounts+=("$2")
}
# Fill the filesystem holding DIR until at most KEEP bytes are free.
fill() {
  local avail
  avail=$(df --output=avail -B1 "$1" | tail -1)
  if [ "$avail" -gt "$2" ]; then head -c $((avail - $2)) /dev/zero >"$1/.filler" 2>/dev/null; fi
  true
}
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && tail -c 8 "$1" | grep -q IEND; }

# ---- a small synthetic dataset and a trained model -------------------------------------------
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((($1 >> 24) & 255)) $((($1 >> 16) & 255)) $((($1 >> 8) & 255)) $(($1 & 255)); }
idx() { { printf '\x00\x00\x08\x03'; printf "$(be32 "$2")$(be32 28)$(be32 28)"; head -c $(($2 * 784)) /dev/urandom; } >"$1"; }
d="$t/data"
mkdir -p "$d"
idx "$d/train-images-idx3-ubyte" 128
idx "$d/t10k-images-idx3-ubyte" 64
small=(--data "$d" --batch 64 --train-limit 64 --val-limit 64 --quiet)
expect 0 'saved' -- "$bin" train "${small[@]}" --out "$t/run" --epochs 1
[ -s "$t/run/model.dcl" ] || { echo "cannot train; stopping"; exit 1; }
model="$t/run/model.dcl"
png="$t/run/samples/epoch_001.png"
for i in 1 2 3 4 5 6; do cp "$png" "$t/in$i.png"; done

# ---- special files as inputs and outputs ------------------------------------------------------
mkfifo "$t/fifo"
expect 1 'fifo: exists and is a FIFO; refusing' -- "$bin" denoise --model "$model" "$t/in1.png" -o "$t/fifo"
check "FIFO replaced" test -p "$t/fifo"
expect 1 '/dev/null: exists and is a character device' -- "$bin" denoise --model "$model" "$t/in1.png" -o /dev/null
check "/dev/null replaced" test -c /dev/null
expect 1 'is a directory' -- "$bin" denoise --model "$model" "$t/in1.png" -o "$t/data"
expect 1 'fifo: is a FIFO, expected a dae-cl checkpoint' -- timeout 20 "$bin" denoise --model "$t/fifo" "$t/in1.png" -o "$t/x.png"
expect 1 'fifo: is a FIFO, expected a PNG or JPEG file' -- timeout 20 "$bin" denoise --model "$model" "$t/fifo" -o "$t/x.png"
expect 1 'is a directory, expected a dae-cl checkpoint' -- "$bin" denoise --model "$t/run" "$t/in1.png" -o "$t/x.png"
expect 1 'is a FIFO, expected an IDX file' -- timeout 20 bash -c "mkdir -p '$t/fd' && ln -sf '$t/fifo' '$t/fd/train-images-idx3-ubyte' && '$bin' train --data '$t/fd' --out '$t/never' --epochs 1"
head -c $(($(stat -c %s "$model") - 2)) "$model" >"$t/cut.dcl"
expect 1 'CRC-32 is missing' -- "$bin" denoise --model "$t/cut.dcl" "$t/in1.png" -o "$t/x.png"
ln -s "$t/target.png" "$t/link.png"
cp "$t/in1.png" "$t/target.png"
expect 0 '' -- "$bin" denoise --model "$model" "$t/in1.png" -o "$t/link.png" --quiet
check "symlink kept, target replaced" test -L "$t/link.png" -a "$(stat -c %s "$t/target.png")" != "$(stat -c %s "$t/in1.png")"
"$bin" denoise --model "$model" "$t/in1.png" -o - --quiet >"$t/stdout.png" 2>"$t/stdout.err"
check "-o - writes a PNG to standard output" is_png "$t/stdout.png"

# ---- missing and read-only output directories -------------------------------------------------
expect 1 'missing/dir/x.png: cannot create a temporary file beside it: No such file or directory' -- \
  "$bin" denoise --model "$model" "$t/in1.png" -o "$t/missing/dir/x.png"
expect 1 'missing/a/b: cannot create directory' -- "$bin" denoise --model "$model" "$t/in1.png" --out-dir "$t/missing/a/b"

have_mount=1
if tmpfs 4m "$t/ro"; then
  mkdir -p "$t/ro/out" && cp "$t/in1.png" "$t/ro/out/keep.png"
  mount -o remount,ro "$t/ro"
  expect 1 'keep.png: cannot create a temporary file beside it: Read-only file system' -- \
    "$bin" denoise --model "$model" "$t/in1.png" -o "$t/ro/out/keep.png"
  check "read-only: previous output intact" cmp -s "$t/in1.png" "$t/ro/out/keep.png"
  expect 1 'Read-only file system' -- "$bin" train "${small[@]}" --out "$t/ro/run" --epochs 1
  # A read-only kernel cache: one warning, the run works.
  expect 0 'warning: kernel cache .*Read-only file system; kernels are compiled on every run' -- \
    env DAECL_CACHE_DIR="$t/ro/out" "$bin" denoise --model "$model" "$t/in1.png" -o "$t/x.png"
else
  have_mount=0
  echo "note: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN): full-filesystem and read-only cases skipped"
fi

# ---- a full filesystem ----------------------------------------------------------------------
if ((have_mount)); then
  # Checkpoint: epoch 1 done on a roomy tmpfs, then it is filled and epoch 2 cannot be saved.
  tmpfs 2m "$t/full1"
  expect 0 'saved' -- "$bin" train "${small[@]}" --out "$t/full1/run" --epochs 1
  cp "$t/full1/run/model.dcl" "$t/model-before.dcl"
  fill "$t/full1" 65536
  expect 1 'model.dcl: write failed: No space left on device' -- \
    "$bin" train "${small[@]}" --out "$t/full1/run" --epochs 2 --resume
  check "full disk: previous checkpoint intact" cmp -s "$t/model-before.dcl" "$t/full1/run/model.dcl"
  no_temporaries "$t/full1"
  rm -f "$t/full1/.filler"
  expect 0 'in1.png ->' -- "$bin" denoise --model "$t/full1/run/model.dcl" "$t/in1.png" -o "$t/x.png"

  # Sample PNG: the samples directory is its own full tmpfs; the checkpoints still fit.
  tmpfs 2m "$t/full2"
  expect 0 'saved' -- "$bin" train "${small[@]}" --out "$t/full2/run" --epochs 1
  mv "$t/full2/run/samples" "$t/full2/samples-1"
  tmpfs 8k "$t/full2/run/samples"
  fill "$t/full2/run/samples" 0
  expect 1 'epoch_002.png: write failed: No space left on device' -- \
    "$bin" train "${small[@]}" --out "$t/full2/run" --epochs 2 --resume
  no_temporaries "$t/full2"
  check "full disk: no partial sample" test ! -e "$t/full2/run/samples/epoch_002.png"

  # Denoise output: the previous output survives, nothing partial is left.
  tmpfs 64k "$t/full3"
  expect 0 '' -- "$bin" denoise --model "$model" "$t/in1.png" -o "$t/full3/out.png" --quiet
  cp "$t/full3/out.png" "$t/out-before.png"
  fill "$t/full3" 0
  expect 1 'out.png: write failed: No space left on device' -- \
    "$bin" denoise --model "$model" "$t/in2.png" -o "$t/full3/out.png" --noise gaussian:0.3
  check "full disk: previous denoise output intact" cmp -s "$t/out-before.png" "$t/full3/out.png"
  expect 1 'No space left on device' -- "$bin" denoise --model "$model" "$t/in1.png" "$t/in2.png" --out-dir "$t/full3/many"
  no_temporaries "$t/full3"

  # Kernel cache on a full filesystem: the run works, the cache holds no partial entry.
  tmpfs 16k "$t/full4"
  mkdir -p "$t/full4/kernels"
  fill "$t/full4" 0
  expect 0 'warning: kernel cache .*full4/kernels/.*: write failed: No space left on device; kernels will be compiled again next run' -- \
    env DAECL_CACHE_DIR="$t/full4/kernels" DAECL_KERNEL_CACHE_BINARIES=1 "$bin" denoise --model "$model" "$t/in1.png" -o "$t/x.png"
  check "full disk: no partial kernel cache entry" test -z "$(ls -A "$t/full4/kernels")"
fi

# ---- unusable cache directories ----------------------------------------------------------------
touch "$t/afile"
out=$(DAECL_CACHE_DIR="$t/afile/k" "$bin" denoise --model "$model" "$t/in1.png" -o "$t/x.png" 2>&1)
check "unusable DAECL_CACHE_DIR: exit 0 and one warning ($out)" \
  test "$?" -eq 0 -a "$(grep -c 'warning: kernel cache .*afile/k: cannot be created: Not a directory' <<<"$out")" -eq 1
# An unusable POCL_CACHE_DIR: one warning, then a private one under TMPDIR (pre-seeded with the
# warm PoCL cache so this costs no JIT).
mkdir -p "$t/tmpdir"
[ -n "${POCL_CACHE_DIR:-}" ] && [ -d "$POCL_CACHE_DIR" ] && cp -a "$POCL_CACHE_DIR" "$t/tmpdir/dae-cl-pocl-$(id -u)"
expect 0 'warning: PoCL cache POCL_CACHE_DIR=.*afile/p: Not a directory; using .*tmpdir/dae-cl-pocl-' -- \
  env POCL_CACHE_DIR="$t/afile/p" TMPDIR="$t/tmpdir" "$bin" denoise --model "$model" "$t/in1.png" -o "$t/x.png"

# ---- a device allocation that cannot succeed, and divergence ----------------------------------------
# a 128-channel full-size tensor at the largest batch (26 GB): the classic model's largest at
# that batch (its folds write no full-size 32-channel tensor) fits PoCL's 4 GiB allocations
expect 1 'tensor 65536x128x.*MiB\) are more than the device.s largest allocation \(.*MiB\); try a smaller --batch' -- \
  "$bin" train --data "$d" --out "$t/huge" --arch conv:128,conv:1:sigmoid --batch 65536 --epochs 1 --quiet
check "allocation refused before epoch 1" bash -c "! grep -qs '^[0-9]' '$t/huge/metrics.csv'"
expect 1 'nan|non-finite' -- "$bin" train "${small[@]}" --out "$t/nan" --epochs 3 --lr 1e6
no_temporaries "$t/nan"
# NaN in a later epoch: epoch 1 trains normally, the resumed epoch 2 diverges (--lr may change
# on --resume). The checkpoint and the log keep epoch 1, exactly.
expect 0 'saved' -- "$bin" train "${small[@]}" --out "$t/nan2" --epochs 1
cp "$t/nan2/model.dcl" "$t/nan2-before.dcl"
expect 1 'nan|non-finite' -- "$bin" train "${small[@]}" --out "$t/nan2" --epochs 3 --resume --lr 1e6
check "NaN in epoch 2: checkpoint of epoch 1 intact" cmp -s "$t/nan2-before.dcl" "$t/nan2/model.dcl"
check "NaN in epoch 2: the log holds epoch 1 only" test "$(grep -c '^[0-9]' "$t/nan2/metrics.csv")" -eq 1
no_temporaries "$t/nan2"

# ---- SIGINT during a multi-file denoise -------------------------------------------------------
for i in $(seq 1 24); do cp "$t/in$((i % 6 + 1)).png" "$t/many-$i.png"; done
"$bin" denoise --model "$model" "$t"/many-*.png --out-dir "$t/sig" >"$t/sig.out" 2>"$t/sig.err" &
pid=$!
for _ in $(seq 1 200); do [ -n "$(ls "$t/sig" 2>/dev/null)" ] && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
status=$?
check "SIGINT: exit 130 (got $status)" test "$status" -eq 130
check "SIGINT: summary on stderr ($(cat "$t/sig.err"))" grep -qE 'interrupted by SIGINT: [0-9]+ of 24 files written' "$t/sig.err"
no_temporaries "$t/sig"
for f in "$t"/sig/*.png; do check "SIGINT: $f is a whole PNG" is_png "$f"; done
written=$(grep -c ' -> ' "$t/sig.out")
check "SIGINT: every finished file reported ($written on stdout, $(ls "$t/sig" | wc -l) written)" \
  test "$written" -eq "$(ls "$t/sig" | wc -l)"
# SIGTERM twice: the second one ends the run at once and removes the file in flight.
"$bin" denoise --model "$model" "$t"/many-*.png --out-dir "$t/sig2" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -n "$(ls "$t/sig2" 2>/dev/null)" ] && break; sleep 0.05; done
kill -TERM "$pid"; kill -TERM "$pid"
wait "$pid"
status=$?
check "SIGTERM x2: killed or 143 (got $status)" test "$status" -eq 143
no_temporaries "$t/sig2"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

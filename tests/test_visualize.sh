#!/usr/bin/env bash
# dae-cl denoise and tools/visualize end to end. A tiny model is trained on synthetic IDX files
# (one epoch of 256 random images), then:
#  - visualize grid: documented pixel size (W = cols*28*scale + (cols+1)*2, H likewise with 3
#    or 4 rows), the same PNG for the same seed, another for another seed, --n beyond the split;
#  - visualize curves (the run's metrics.csv, and a small hand-written CSV) and compare;
#  - dae-cl denoise on PNGs made here in pure bash (odd sizes, 16-bit): same size out, 16-bit
#    stays 16-bit, --compare, --noise determinism, tiling through --tile; malformed files
#    (truncated, not a PNG, empty, zero width, absurd size, bad CRC) each refused with one line
#    naming the file while a good file of the same call is still written, exit 1; -o with two
#    inputs refused (exit 2); no temporary files left behind.
set -u
build=${DAECL_BUILD_ROOT:?run through meson test}
src=${DAECL_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
bin="$build/src/cli/dae-cl"
vis="$src/tools/visualize"
export DAECL_BUILD_DIR="$build"
base=${DAECL_TEST_TMP:-/tmp}
mkdir -p "$base"
t=$(mktemp -d "$base/visualize.XXXXXX")

source "$src/tests/harness.sh"
# run STATUS COMMAND...: the exit status must be STATUS; output in $out.
run() {
  local want=$1
  shift
  out=$("$@" 2>&1)
  local status=$?
  if [ "$status" -eq "$want" ]; then ok; else bad "$* -> exit $status, want $want: $out"; fi
}

# ---- PNG and IDX files from bash ------------------------------------------------------------
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((($1 >> 24) & 255)) $((($1 >> 16) & 255)) $((($1 >> 8) & 255)) $(($1 & 255)); }
# CRC-32 of a file: gzip's trailer holds the same CRC as PNG (ISO 3309), little-endian.
crc32_be() {
  local h
  h=$(gzip -c <"$1" | tail -c8 | head -c4 | od -An -tx1 | tr -d ' \n')
  printf '\\x%s\\x%s\\x%s\\x%s' "${h:6:2}" "${h:4:2}" "${h:2:2}" "${h:0:2}"
}
# chunk TYPE DATAFILE: length, type, data, CRC of type+data
chunk() {
  local n
  n=$(stat -c %s "$2")
  { printf '%s' "$1"; cat "$2"; } >"$t/.chunk"
  printf "$(be32 "$n")"
  cat "$t/.chunk"
  printf "$(crc32_be "$t/.chunk")"
}
# make_png FILE W H DEPTH(8|16) [IHDR W H override]: a gray gradient, zlib "stored" block.
make_png() {
  local f=$1 w=$2 h=$3 depth=$4 x y v raw="" a=1 b=0 byte bytes=()
  for ((y = 0; y < h; y++)); do
    bytes+=(0)
    for ((x = 0; x < w; x++)); do
      v=$(((x * 37 + y * 91) % 256))
      bytes+=("$v")
      [ "$depth" -eq 16 ] && bytes+=($(((x * 13 + y) % 256)))
    done
  done
  for byte in "${bytes[@]}"; do
    raw+=$(printf '\\x%02x' "$byte")
    a=$(((a + byte) % 65521))
    b=$(((b + a) % 65521))
  done
  local n=${#bytes[@]}
  printf "$(be32 "${5:-$w}")$(be32 "${6:-$h}")\\x$(printf %02x "$depth")\\x00\\x00\\x00\\x00" >"$t/.ihdr"
  { printf '\x78\x01\x01'; printf "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $((n >> 8)))";
    printf "\\x$(printf %02x $((~n & 255)))\\x$(printf %02x $(((~n >> 8) & 255)))";
    printf "$raw"; printf "$(be32 $(((b << 16) | a)))"; } >"$t/.idat"
  : >"$t/.iend"
  { printf '\x89PNG\r\n\x1a\n'; chunk IHDR "$t/.ihdr"; chunk IDAT "$t/.idat"; chunk IEND "$t/.iend"; } >"$f"
}
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }
png_depth() { od -An -tu1 -j24 -N1 "$1" | tr -d ' '; }
# idx FILE N: N random 28x28 images
idx() {
  { printf '\x00\x00\x08\x03'; printf "$(be32 "$2")$(be32 28)$(be32 28)"; head -c $(($2 * 784)) /dev/urandom; } >"$1"
}

# ---- a tiny trained model --------------------------------------------------------------------
d="$t/data"
mkdir -p "$d"
idx "$d/train-images-idx3-ubyte" 256
idx "$d/t10k-images-idx3-ubyte" 64
run 0 "$bin" train --data "$d" --out "$t/run" --epochs 1 --batch 64 --train-limit 256 --val-limit 64 --quiet
model="$t/run/model.dcl"
if [ ! -f "$model" ] || [ ! -f "$t/run/metrics.csv" ]; then
  bad "training left no model.dcl / metrics.csv: $out"
  finish
fi

# ---- visualize grid --------------------------------------------------------------------------
run 0 "$vis" grid --model "$model" --data "$d" --n 5 --scale 2 -o "$t/grid.png"
check "grid 5 columns, scale 2: 5*56+6*2 x 3*56+4*2 (got $(png_size "$t/grid.png"))" test "$(png_size "$t/grid.png")" = 292x176
run 0 "$vis" grid --model "$model" --data "$d" --n 3 --offset 60 --error-row -o "$t/grid4.png"
check "grid with error row: 3*84+4*2 x 4*84+5*2 (got $(png_size "$t/grid4.png"))" test "$(png_size "$t/grid4.png")" = 260x346
run 0 "$vis" --model "$model" --data "$d" --n 5 --scale 2 -o "$t/grid-again.png"
check "grid is deterministic (same seed, same PNG; grid is the default command)" cmp -s "$t/grid.png" "$t/grid-again.png"
run 0 "$vis" grid --model "$model" --data "$d" --n 5 --scale 2 --seed 12345 -o "$t/grid-seed.png"
check "another seed gives other noise" bash -c "! cmp -s '$t/grid.png' '$t/grid-seed.png'"
run 2 "$vis" grid --model "$model" --data "$d" --n 10 --offset 60 -o "$t/never.png"
check "--offset 60 --n 10 of 64 refused by name ($out)" grep -q "has 64 images" <<<"$out"
run 2 "$vis" grid --model "$model" --data "$d" --n 0 -o "$t/never.png"
run 2 "$vis" frobnicate
check "no output for refused grids" test ! -e "$t/never.png"

# ---- visualize curves / compare --------------------------------------------------------------
run 0 "$vis" curves "$t/run" -o "$t/curves.png"
check "curves of the run: 1280x560 (got $(png_size "$t/curves.png"))" test "$(png_size "$t/curves.png")" = 1280x560
mkdir -p "$t/small"
printf 'epoch,train_loss,val_loss,val_psnr\n1,0.30,0.28,12.5\n2,0.20,0.19,15.0\n3,0.15,,\n4,0.12,0.13,17.25\n' >"$t/small/metrics.csv"
run 0 "$vis" curves "$t/small/metrics.csv" -o "$t/curves-small.png"
check "curves from a small CSV: 1280x560" test "$(png_size "$t/curves-small.png")" = 1280x560
run 0 "$vis" compare "$t/run" "$t/small" -o "$t/compare.png"
check "compare: 1280x640 (got $(png_size "$t/compare.png"))" test "$(png_size "$t/compare.png")" = 1280x640
run 1 "$vis" curves "$t/nonexistent" -o "$t/never.png"
run 2 "$vis" compare -o "$t/never.png"

# ---- dae-cl denoise --------------------------------------------------------------------------
make_png "$t/odd.png" 5 3 8
make_png "$t/one.png" 1 1 8
make_png "$t/mid.png" 31 29 8
make_png "$t/deep.png" 7 6 16
check "made a 5x3 PNG" test "$(png_size "$t/odd.png")" = 5x3
for f in odd one mid; do
  run 0 "$bin" denoise --model "$model" "$t/$f.png" -o "$t/$f-out.png"
  check "$f: same size out ($(png_size "$t/$f.png") -> $(png_size "$t/$f-out.png"))" test "$(png_size "$t/$f.png")" = "$(png_size "$t/$f-out.png")"
  check "$f: 8-bit out" test "$(png_depth "$t/$f-out.png")" = 8
done
run 0 "$bin" denoise --model "$model" "$t/deep.png" -o "$t/deep-out.png" --quiet
check "16-bit in, 16-bit out (got $(png_depth "$t/deep-out.png"))" test "$(png_depth "$t/deep-out.png")" = 16
check "16-bit: same size" test "$(png_size "$t/deep-out.png")" = 7x6
check "--quiet prints nothing on success ($out)" test -z "$(grep -v '^device ' <<<"$out")"

# --compare and --noise: OUT-compare.png is noisy input | output, same for the same seed
run 0 "$bin" denoise --model "$model" "$t/mid.png" -o "$t/n1.png" --noise gaussian:0.3 --seed 5 --compare
check "compare written: 2*31+6 x 29+4 (got $(png_size "$t/n1-compare.png"))" test "$(png_size "$t/n1-compare.png")" = 68x33
run 0 "$bin" denoise --model "$model" "$t/mid.png" -o "$t/n2.png" --noise gaussian:0.3 --seed 5 --compare
check "--noise with a seed is deterministic" cmp -s "$t/n1-compare.png" "$t/n2-compare.png"
check "--noise changes the result" bash -c "! cmp -s '$t/n1.png' '$t/mid-out.png'"
run 2 "$bin" denoise --model "$model" "$t/mid.png" -o "$t/never.png" --noise gaussian:99
run 0 "$bin" denoise --model "$model" "$t/grid.png" -o "$t/tiled.png" --tile 64
check "tiled run: same size" test "$(png_size "$t/tiled.png")" = 292x176
check "tiled run says so ($out)" grep -q "windows of 64x64" <<<"$out"

# malformed files next to a good one, in one call
head -c 60 "$t/mid.png" >"$t/trunc.png"
echo "hello, not a picture" >"$t/text.png"
: >"$t/empty.png"
make_png "$t/zerow.png" 5 3 8 0 3
make_png "$t/huge.png" 5 3 8 2147483647 2147483647
cp "$t/odd.png" "$t/badcrc.png"
printf '\x09' | dd of="$t/badcrc.png" bs=1 seek=24 conv=notrunc status=none
bads=(trunc text empty zerow huge badcrc nonexistent)
args=()
for f in "${bads[@]}"; do args+=("$t/$f.png"); done
run 1 "$bin" denoise --model "$model" "$t/mid.png" "${args[@]}" --out-dir "$t/outdir"
check "the good file is written although others fail" test -f "$t/outdir/mid.png"
for f in "${bads[@]}"; do
  n=$(grep -c "^dae-cl denoise: $t/$f.png: " <<<"$out")
  check "$f.png: one error line naming it (got $n in: $out)" test "$n" -eq 1
  check "$f.png: no output" test ! -e "$t/outdir/$f.png"
done
check "one line per bad file plus a summary ($out)" test "$(grep -c . <<<"$(grep -v '^device \|^.*mid.png -> ' <<<"$out")")" -eq $((${#bads[@]} + 1))
check "no temporary files left" test -z "$(find "$t/outdir" -name '*.tmp.*')"

# usage errors: exit 2, one line
run 2 "$bin" denoise --model "$model" "$t/mid.png" "$t/odd.png" -o "$t/never.png"
check "-o with two inputs: one line ($out)" test "$(grep -c . <<<"$out")" -eq 1
check "-o with two inputs: says --out-dir" grep -q -- "--out-dir" <<<"$out"
run 2 "$bin" denoise --model "$model" "$t/mid.png"
run 2 "$bin" denoise "$t/mid.png" -o "$t/never.png"
run 1 "$bin" denoise --model "$t/nonexistent.dcl" "$t/mid.png" -o "$t/never.png"
check "missing model named ($out)" grep -q "nonexistent.dcl" <<<"$out"
check "nothing written by refused calls" test ! -e "$t/never.png"
# the output may not replace the input
cp "$t/odd.png" "$t/self.png"
run 1 "$bin" denoise --model "$model" "$t/self.png" --out-dir "$t"
check "input kept when the output would overwrite it" cmp -s "$t/odd.png" "$t/self.png"

finish

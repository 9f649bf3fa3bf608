#!/usr/bin/env bash
# tools/study end to end at its --quick size on real MNIST (data/mnist, as tools/check fetches):
#  - usage: --help, --version, bad options and values (exit 2, one line), --full --dry-run's
#    list of runs and its time estimate;
#  - a study stopped by Ctrl-C in the middle of a run, then run again: the runs finished before
#    the stop are skipped ("skipped: done", checkpoint unchanged), the stopped one resumes
#    (`dae-cl train --resume`) and completes, the rest train;
#  - every table, compare plot and grid of the results file is written.
set -u
build=${DAECL_BUILD_ROOT:?run through meson test}
src=${DAECL_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
study="$src/tools/study"
export DAECL_BUILD_DIR="$build"
base=${DAECL_TEST_TMP:-/tmp}
mkdir -p "$base"
t=$(mktemp -d "$base/study.XXXXXX")
source "$src/tests/harness.sh"
data="$src/data/mnist"
if [ ! -f "$data/train-images-idx3-ubyte" ]; then
  echo "SKIP: $data has no MNIST (tools/fetch-mnist)"
  exit 77
fi

expect 0 'usage: .*study' -- "$study" --help
expect 0 '^study 0\.' -- "$study" --version
expect 2 "^tools/study: unknown option '--bogus'" -- "$study" --bogus
expect 2 "unknown experiment 'speed'" -- "$study" speed
expect 2 '--seeds: expected 1 to 99' -- "$study" --seeds 0
expect 2 '--out needs a value' -- "$study" --out
expect 0 'estimated time left: [0-9]+ s' -- "$study" --full --dry-run --out "$t/full"
dry=$("$study" --full --dry-run --out "$t/full")
grep -qE 'classic-adadelta1-b128-e100-fixed-s1 +100 epochs' <<<"$dry" && grep -qE 'unet-adam1e-3-b128-e30-fresh-s1 +30 epochs' <<<"$dry" &&
  grep -q 'shared with batch' <<<"$dry" && ok || bad "--full --dry-run: $dry"
[ ! -e "$t/full" ] && ok || bad "--dry-run created the study folder"

# A study stopped in its second run: Ctrl-C to the study's process group once that run has
# finished its first epoch (of two).
out="$t/quick"
first="$out/runs/classic-adam1e-3-b128-e2-fresh-s1"
second="$out/runs/classic-adam1e-3-b128-e2-fixed-s1"
setsid "$study" --quick --data "$data" --out "$out" >"$t/stopped.log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
  [ "$(wc -l <"$second/metrics.csv" 2>/dev/null || echo 0)" -ge 2 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -INT -- "-$pid" 2>/dev/null
wait "$pid"
status=$?
[ "$status" -ne 0 ] && ok || bad "the stopped study exited 0: $(cat "$t/stopped.log")"
[ -f "$first/model.dcl" ] && [ -f "$first/eval.json" ] && ok || bad "the first run did not finish: $(cat "$t/stopped.log")"
[ ! -e "$out/STUDY.md" ] && ok || bad "a stopped study wrote STUDY.md"
sum_first=$(md5sum <"$first/model.dcl")
eval_first=$(md5sum <"$first/eval.json")

"$study" --quick --data "$data" --out "$out" >"$t/rerun.log" 2>&1
status=$?
[ "$status" -eq 0 ] && ok || bad "the study run again exited $status: $(cat "$t/rerun.log")"
grep -q 'classic-adam1e-3-b128-e2-fresh seed 1: skipped: done (2 epochs)' "$t/rerun.log" && ok ||
  bad "the finished run was not skipped: $(cat "$t/rerun.log")"
grep -qE 'classic-adam1e-3-b128-e2-fixed seed 1: (resuming at epoch [01] of 2|skipped: done)' "$t/rerun.log" && ok ||
  bad "the stopped run did not resume: $(cat "$t/rerun.log")"
[ "$(md5sum <"$first/model.dcl")" = "$sum_first" ] && [ "$(md5sum <"$first/eval.json")" = "$eval_first" ] && ok ||
  bad "the finished run's checkpoint or evaluation changed"
[ "$(grep -c '^2,' "$second/metrics.csv")" -eq 1 ] && [ "$(tail -n +2 "$second/metrics.csv" | wc -l)" -eq 2 ] && ok ||
  bad "the resumed run's metrics: $(cat "$second/metrics.csv")"

# The results: a section with a table per experiment, its plot and its grid, all written.
r="$out/STUDY.md"
for exp in optimizers batch lr depth; do
  for png in "$out/plots/$exp-compare.png" "$out/plots/$exp-grid.png"; do
    [ "$(head -c 4 "$png" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG' ] && ok || bad "$png is not a PNG"
    grep -qF "(plots/${png##*/})" "$r" && ok || bad "$r does not show ${png##*/}"
  done
done
[ "$(grep -c '^## ' "$r")" -eq 4 ] && [ "$(grep -c '^| run | epochs | test loss' "$r")" -eq 4 ] && ok || bad "$r: $(cat "$r")"
# Rows: 4 optimizer runs, 5 batch rows, 4 learning rates, 6 depth/width rows; every figure a number.
rows=$(grep -cE '^\| [^r-].*\| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| -?[0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \|$' "$r")
[ "$rows" -eq 19 ] && ok || bad "$r has $rows complete table rows, want 19: $(cat "$r")"
grep -q '^\*\*Reading.\*\* Highest test PSNR' "$r" && grep -q 'One seed per run' "$r" && ok || bad "$r lacks the reading paragraphs"
grep -q 'Equal wall time, from the measured seconds per epoch: batch 32 at 2 epochs' "$r" && ok || bad "$r lacks the equal-time derivation"
[ -z "$(find "$out" -name '*.tmp')" ] && ok || bad "temporary files left: $(find "$out" -name '*.tmp')"
finish

#!/usr/bin/env bash
# Faults in a training run directory (issue 11), end to end on a tiny real-MNIST subset with a
# checkpoint every epoch (a few milliseconds each, most of it in saves):
#  - kill -9 at random moments, KILLS times: after each kill model.dcl loads, metrics.csv holds
#    exactly the checkpoint's epochs (one row short only when the kill fell between the
#    checkpoint's rename and the log's, which the next run repairs: counted), the temporaries
#    of the killed process are gone once the next run has started, and --resume continues to
#    the end;
#  - two writers on one run directory: the second is refused naming the first's PID, and a
#    kill -9 of the first leaves no stale lock;
#  - --resume with a setting that may change (notice) and one that may not (exit 2, reason);
#  - a fresh run into a directory with a stale metrics.csv and no model starts clean, and a
#    NaN in its first epoch does not claim a checkpoint keeps anything.
set -u
build=${DAECL_BUILD_ROOT:?run through meson test}
bin="$build/src/cli/dae-cl"
helper="$build/tests/test_train"
tmp=$(mktemp -d /tmp/daecl-faults-XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
KILLS=${KILLS:-12}
# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
start=$SECONDS

"$helper" --make-subset "$tmp/mnist" 64 32 >/dev/null || { echo "cannot make the MNIST subset" >&2; exit 1; }
run="$tmp/run"
common=(--data "$tmp/mnist" --arch conv:2,conv:1:sigmoid --batch 32 --val-limit 32)

# Wait (up to 60 s: a cold kernel cache) until the log of a starting run shows its first epoch:
# setup is done.
wait_for_epoch() {
  for _ in $(seq 1 6000); do
    grep -q 'Epoch' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

# Checkpoint vs log: sets ck_epochs; the log must equal the checkpoint's rows, or lack only the
# last one (sets in_window=1).
in_window=0
ck_epochs=0
check_consistent() {
  local what=$1 info rows
  in_window=0
  ck_epochs=0
  if [ ! -e "$run/model.dcl" ]; then
    rows=$(tail -n +2 "$run/metrics.csv" 2>/dev/null | grep -c .)
    [ "$rows" -eq 0 ] && ok || bad "$what: no checkpoint, but metrics.csv has $rows rows"
    return
  fi
  if ! info=$("$helper" --checkpoint-epochs "$run/model.dcl" 2>&1); then
    bad "$what: model.dcl does not load: $info"
    return
  fi
  local epochs=${info%% *}
  local held
  held=$(printf '%s\n' "$info" | tail -n +2)
  local logged
  logged=$(tail -n +2 "$run/metrics.csv" 2>/dev/null)
  if [ "$logged" == "$held" ]; then
    ok
  elif [ "$logged" == "$(printf '%s\n' "$held" | head -n -1)" ]; then
    in_window=1
    ok
  else
    bad "$what: metrics.csv ($(printf '%s' "$logged" | grep -c .) rows) differs from model.dcl's $epochs epochs"
  fi
  [ "$(printf '%s' "$held" | grep -c .)" -eq "$epochs" ] && ok || bad "$what: model.dcl holds $epochs epochs but other rows"
  ck_epochs=$epochs
}

# A first run, not killed, builds the kernels (a cold cache takes tens of seconds).
"$bin" train "${common[@]}" --out "$tmp/warm" --epochs 1 --quiet >"$tmp/warm.log" 2>&1 || bad "warm-up run: $(cat "$tmp/warm.log")"

# ---- kill -9 at random moments ------------------------------------------------------------------
mid_save=0
windows=0
prev_pid=
for k in $(seq 1 "$KILLS"); do
  resume=()
  [ -e "$run/model.dcl" ] && resume=(--resume)
  "$bin" train "${common[@]}" --out "$run" --epochs 100000 "${resume[@]}" >"$tmp/kill$k.log" 2>&1 &
  pid=$!
  if ! wait_for_epoch "$tmp/kill$k.log" "$pid"; then
    bad "run $k did not start: $(cat "$tmp/kill$k.log")"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    continue
  fi
  # The previous killed run's temporaries are gone once this one has started.
  if [ -n "$prev_pid" ] && find "$run" -name "*.tmp.$prev_pid" | grep -q .; then
    bad "run $k left the temporaries of killed pid $prev_pid: $(find "$run" -name "*.tmp.$prev_pid")"
  else
    ok
  fi
  if [ $((k % 2)) -eq 0 ]; then
    # Half the kills aim at a save: the moment a temporary appears.
    for _ in $(seq 1 20000); do compgen -G "$run/*.tmp.$pid" >/dev/null && break; done
  else
    sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  if find "$run" -name "*.tmp.$pid" | grep -q .; then mid_save=$((mid_save + 1)); fi
  prev_pid=$pid
  check_consistent "kill $k"
  windows=$((windows + in_window))
done
check_consistent "after the kills"
epochs=$ck_epochs
echo "kill -9 x$KILLS: $mid_save landed inside an atomic write, $windows between checkpoint and log; $epochs epochs done"
[ "$mid_save" -ge 1 ] && ok || bad "no kill landed inside a save (of $KILLS)"

# --resume continues to the end (with a notice for the new --epochs), the log matches.
final=$((epochs + 2))
out=$("$bin" train "${common[@]}" --out "$run" --resume --epochs "$final" 2>&1)
status=$?
[ "$status" -eq 0 ] && ok || bad "final resume exit $status: $out"
grep -q -- "--epochs $final replaces 100000 from the checkpoint" <<<"$out" && ok || bad "no --epochs notice: $out"
check_consistent "final"
[ "$ck_epochs" -eq "$final" ] && [ "$in_window" -eq 0 ] && ok || bad "final: $ck_epochs epochs (want $final), in_window $in_window"
find "$run" -name '*.tmp.*' | grep -q . && bad "temporaries survived the final run: $(find "$run" -name '*.tmp.*')" || ok

# ---- resume with changed settings ----------------------------------------------------------------
expect 0 '^--lr 0.0001 replaces 0.001 from the checkpoint$' -- \
  "$bin" train "${common[@]}" --out "$run" --resume --epochs $((final + 1)) --lr 0.0001
expect 2 'batch=32, which cannot change on --resume' -- "$bin" train "${common[@]}" --out "$run" --resume --epochs 99 --batch 64
expect 2 'seed=1, which cannot change on --resume \(the random streams' -- \
  "$bin" train "${common[@]}" --out "$run" --resume --epochs 99 --seed 5
expect 2 'noise=gaussian:0.5, which cannot change' -- \
  "$bin" train "${common[@]}" --out "$run" --resume --epochs 99 --noise mask:0.5
check_consistent "after refused resumes"
[ "$ck_epochs" -eq $((final + 1)) ] && ok || bad "refused resumes changed the run: $ck_epochs epochs"

# ---- two writers ---------------------------------------------------------------------------------
"$bin" train "${common[@]}" --out "$run" --resume --epochs 100000 >"$tmp/first.log" 2>&1 &
first=$!
if wait_for_epoch "$tmp/first.log" "$first"; then
  expect 2 "in use by another dae-cl train \(pid $first\)" -- "$bin" train "${common[@]}" --out "$run" --resume --epochs 100000
  kill -9 "$first"
  wait "$first" 2>/dev/null
  # The kernel dropped the lock with the process: the next writer runs at once.
  check_consistent "after killing the first writer"
  expect 0 'resuming' -- "$bin" train "${common[@]}" --out "$run" --resume --epochs $((ck_epochs + 1))
else
  bad "the first writer did not start: $(cat "$tmp/first.log")"
fi

# ---- a fresh run over a failed one's leftovers; NaN in the first epoch ----------------------------
mkdir -p "$tmp/stale"
printf 'epoch,train_loss\n1,0.5\n2,0.4\n' >"$tmp/stale/metrics.csv"
: >"$tmp/stale/model.dcl.tmp.999999999"
expect 1 'loss is (-?inf|-?nan) .*epoch 1.*nothing saved' -- "$bin" train --data "$tmp/mnist" --arch conv:2,conv:1:linear \
  --loss mse --batch 4 --out "$tmp/stale" --epochs 2 --optimizer sgd --lr 1000000
[ ! -e "$tmp/stale/metrics.csv" ] || [ "$(tail -n +2 "$tmp/stale/metrics.csv" | grep -c .)" -eq 0 ] && ok ||
  bad "stale metrics.csv kept: $(cat "$tmp/stale/metrics.csv")"
[ ! -e "$tmp/stale/model.dcl.tmp.999999999" ] && ok || bad "a dead process's temporary survived"
expect 0 'Epoch 2/2' -- "$bin" train "${common[@]}" --out "$tmp/stale" --epochs 2
[ "$(tail -n +2 "$tmp/stale/metrics.csv" | grep -c .)" -eq 2 ] && ok || bad "fresh run log: $(cat "$tmp/stale/metrics.csv")"

echo "$pass passed, $fail failed in $((SECONDS - start)) s"
[ "$fail" -eq 0 ]

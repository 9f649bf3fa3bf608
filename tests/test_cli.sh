#!/usr/bin/env bash
# End-to-end tests of the dae-cl command line on a small real-MNIST subset: devices, model
# listing, flag errors (one line, exit 2), missing platform/data, a short training run and its
# run directory, eval, Ctrl-C (exit 130, loadable checkpoint, resume), damaged checkpoints.
set -u
build=${DAECL_BUILD_ROOT:?run through meson test}
bin="$build/src/cli/dae-cl"
tmp=$(mktemp -d /tmp/daecl-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
# A usage error is exactly one line.
one_line_error() {
  local out lines
  out=$("$@" 2>&1 >/dev/null)
  lines=$(printf '%s\n' "$out" | grep -c .)
  if [ "$lines" -eq 1 ]; then ok; else bad "$* printed $lines lines: $out"; fi
}

expect 0 '0:0 +CPU' -- "$bin" --list-devices
expect 0 'total: 28353 parameters' -- "$bin" model --arch classic
expect 0 'add e1' -- "$bin" model --arch unet
expect 2 "layer 3 'conv:x'" -- "$bin" model --arch conv:32,pool,conv:x
# Colour and the residual head: the presets end in conv:C; dncnn is sized by flags.
expect 0 '9  conv 3x3, 3 sigmoid +3x28x28 +867' -- "$bin" model --arch classic --channels 3
expect 0 'conv:16,conv:16,conv:C:linear,residual' -- "$bin" model --arch dncnn --depth 3 --width 16 --channels 3 --size 64x64
expect 0 'residual: input - noise' -- "$bin" model --arch unet --residual
expect 2 'size the dncnn preset' -- "$bin" model --arch classic --depth 4
expect 2 'maps 3-channel images to 1 channels' -- "$bin" model --arch conv:8,conv:1:sigmoid --channels 3
expect 2 "a residual model's output" -- "$bin" train --arch dncnn --loss bce --data /nonexistent
expect 0 'usage: dae-cl train' -- "$bin" train --help
# Help defaults come from the run configuration's table: right, and never "(default 0)" for a
# value that depends on the optimizer.
help=$("$bin" train --help)
for line in '--seed N .*\(default 1\)$' '--beta1 X .*\(default adam 0\.9\)$' '--noise KIND:X .*\(default gaussian:0\.5\)$' \
            '--lr X .*\(default sgd 0\.01, adam 0\.001, adadelta 1, rmsprop 0\.001, adagrad 0\.01\)$' \
            '--resume .*may change: --data --epochs --lr'; do
  grep -qE -- "$line" <<<"$help" && ok || bad "train --help lacks /$line/"
done
grep -q '(default.*(default' <<<"$help" && bad "a help line with two defaults" || ok
"$bin" eval --help | grep -q -- '--seed N .*(default: the training seed[^(]*$' && ok || bad "eval --help --seed line"
expect 2 'unknown command' -- "$bin" frobnicate

# One convention for every command: --help and --version (exit 0, stdout), an unknown option or
# an extra argument is a usage error (exit 2, one line).
for cmd in train eval denoise model devices export info data; do
  expect 0 "usage: dae-cl $cmd" -- "$bin" $cmd --help
  expect 0 '^dae-cl 0\.' -- "$bin" $cmd --version
  expect 2 "dae-cl $cmd: unknown option '--bogus'" -- "$bin" $cmd --bogus
  one_line_error "$bin" $cmd --bogus
done
expect 0 'usage: dae-cl train' -- "$bin" help train
for args in "--version --bogus" "--list-devices --bogus" "--help --bogus" "devices extra" "model extra"; do
  # shellcheck disable=SC2086
  expect 2 'dae-cl' -- "$bin" $args
done
expect 0 'usage: dae-cl devices' -- "$bin" devices --help
expect 2 "^dae-cl export: -o needs a value" -- "$bin" export --model m.dcl -o
# The repository's shell tools follow it too; --help never starts their work (tools/check
# --help once reached `meson configure`).
for tool in bootstrap check demo fuzz study; do
  expect 0 "^$tool 0\\." -- "$DAECL_SOURCE_ROOT/tools/$tool" --version
  expect 0 "tools/$tool" -- "$DAECL_SOURCE_ROOT/tools/$tool" --help
done
expect 2 "unknown option '--bogus'" -- "$DAECL_SOURCE_ROOT/tools/fuzz" --bogus
# --json: one document on stdout, nothing else there.
"$bin" --list-devices --json >"$tmp/devices.json" 2>/dev/null &&
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert any(x["type"]=="CPU" for p in d["platforms"] for x in p["devices"])' \
    "$tmp/devices.json" && ok || bad "--list-devices --json: $(cat "$tmp/devices.json")"
# Device choice by type: the CPU is found, a type that is absent is named.
expect 2 "bad device 'tpu'" -- "$bin" train --device tpu --out "$tmp/never"
# Outputs: the format comes from the name; stdout only where it makes sense.
expect 2 "-o out.svg: cannot write '.svg' images" -- "$bin" denoise --model m.dcl in.png -o out.svg
expect 2 "-o out.PNG.tiff: cannot write '.tiff' images" -- "$bin" denoise --model m.dcl in.png -o out.PNG.tiff
expect 2 '--json and -o - both want stdout' -- "$bin" denoise --model m.dcl in.png -o - --json

"$build/tests/test_train" --make-subset "$tmp/mnist" 1024 256 || { bad "cannot make the MNIST subset"; }
d="$tmp/mnist"
expect 1 'no ACCEL device; devices: .*0:0 CPU' -- env DAECL_DEVICE=accel "$bin" eval --model "$DAECL_SOURCE_ROOT/tests/fixtures/v1-sgd-mask.dcl" --data "$d" --limit 1
for args in "--batch 0" "--lr -1" "--lr nan" "--optimizer foo" "--epochs 0" "--noise gaussian:99" \
            "--noise bogus" "--frobnicate" "--loss hinge" "--seed -3" "--momentum 1.5" "--lr-schedule linear" \
            "--warmup 2" "--lr-schedule cosine --warmup 10" "--lr-gamma 0" "--early-stop -1" "--keep x"; do
  # shellcheck disable=SC2086
  expect 2 'dae-cl train: ' -- "$bin" train --data "$d" --out "$tmp/never" $args
  # shellcheck disable=SC2086
  one_line_error "$bin" train --data "$d" --out "$tmp/never" $args
done
[ ! -e "$tmp/never" ] && ok || bad "a refused command created its run directory"

mkdir -p "$tmp/novendors"
expect 1 'pocl-opencl-icd' -- env OCL_ICD_VENDORS="$tmp/novendors" "$bin" train --data "$d" --out "$tmp/x"
expect 1 'no OpenCL platform 5' -- "$bin" train --device 5:0 --data "$d" --out "$tmp/x"
expect 1 'fetch-mnist' -- "$bin" train --data "$tmp/nothing-here" --out "$tmp/x"

# A short run and its run directory.
expect 0 'Epoch 1/1 .* val_psnr' -- "$bin" train --data "$d" --out "$tmp/run1" --epochs 1 --batch 64 --seed 3
for f in config metrics.csv model.dcl best.dcl samples/epoch_001.png; do
  [ -s "$tmp/run1/$f" ] && ok || bad "run directory lacks $f"
done
grep -q '^optimizer=adam$' "$tmp/run1/config" && ok || bad "config lacks the optimizer"
expect 0 'noisy input' -- "$bin" eval --model "$tmp/run1/model.dcl" --data "$d"
# eval --json: the same figures as one JSON document on stdout; the device line on stderr.
# The figures are the text table's (which rounds them).
text=$("$bin" eval --model "$tmp/run1/model.dcl" --data "$d" --limit 100 --quiet 2>/dev/null | grep '^denoised')
"$bin" eval --model "$tmp/run1/model.dcl" --data "$d" --limit 100 --device cpu --json >"$tmp/eval.json" 2>"$tmp/eval.err" &&
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
f = d["denoised"]
assert d["images"] == 100 and sys.argv[2].split()[1:4] == ["%.4f" % f["loss"], "%.2f" % f["psnr_db"], "%.4f" % f["ssim"]]
' "$tmp/eval.json" "$text" && grep -q '^device 0:0 CPU' "$tmp/eval.err" && ok || bad "eval --json: $(cat "$tmp/eval.json" "$tmp/eval.err") vs $text"
# denoise --json: one entry per input, failures included.
"$bin" denoise --model "$tmp/run1/model.dcl" "$tmp/run1/samples/epoch_001.png" "$tmp/missing.png" --out-dir "$tmp/dn" --json \
  >"$tmp/dn.json" 2>"$tmp/dn.err"
status=$?
[ "$status" -eq 1 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
f = d["files"]
assert d["failed"] == 1 and len(f) == 2 and f[0]["ok"] and f[0]["width"] > 0 and not f[1]["ok"] and "missing.png" in f[1]["error"]
' "$tmp/dn.json" && ok || bad "denoise --json (exit $status): $(cat "$tmp/dn.json" "$tmp/dn.err")"
# A terminal that cannot erase lines (TERM=dumb) gets no escape sequences.
script -qec "TERM=dumb $bin train --data $d --out $tmp/dumb --epochs 1 --train-limit 256 --val-limit 64 --no-samples" /dev/null \
  >"$tmp/dumb.log" 2>&1
grep -q 'Epoch 1/1' "$tmp/dumb.log" && ! grep -q $'\e' "$tmp/dumb.log" && ok || bad "TERM=dumb output: $(cat -v "$tmp/dumb.log")"
expect 0 '^denoised' -- "$bin" eval --model "$tmp/run1/model.dcl" --data "$d" --limit 100 --quiet
expect 2 '--resume' -- "$bin" train --data "$d" --out "$tmp/run1" --epochs 1

# What a checkpoint holds, and its export (tests/ci/export.sh checks the files with onnx,
# OpenCV and PyTorch; here: the commands, their files and their errors).
expect 0 '^written by: +[0-9]+\.[0-9]+' -- "$bin" info "$tmp/run1/model.dcl"
expect 0 '^training: +1 of 1 epochs done' -- "$bin" info --model "$tmp/run1/model.dcl"
expect 0 '^  seed +3$' -- "$bin" info "$tmp/run1/model.dcl"
expect 0 '^  last: +1,' -- "$bin" info "$tmp/run1/model.dcl"
# info --json: one document on stdout with the same facts, typed.
"$bin" info "$tmp/run1/model.dcl" --json >"$tmp/info.json" 2>"$tmp/info.err" && [ ! -s "$tmp/info.err" ] &&
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
t, c, m = d["training"], d["configuration"], d["metrics"]
assert d["parameters"] == 28353 == sum(l["parameters"] for l in d["layers"]) and d["input"]["channels"] == 1
assert d["layers"][-1]["output"] == [1, 28, 28] and d["architecture"].startswith("conv:32,pool")
assert t["epochs_done"] == 1 == t["epochs"] and t["interrupted_after_batch"] == 0 and t["best_epoch"] == 1
assert c["seed"] == 3 and c["batch"] == 64 and c["optimizer"] == "adam" and c["lr"] == 0.001 and c["noise_fixed"] is False
assert m["last"]["epoch"] == 1 and m["last"]["val_psnr"] > 0 and m["best"] == m["last"] and d["written_by"] == d["read_by"]
' "$tmp/info.json" && ok || bad "info --json: $(cat "$tmp/info.json" "$tmp/info.err")"
"$bin" info "${DAECL_SOURCE_ROOT:?}/tests/fixtures/v1-sgd-mask.dcl" --json >"$tmp/info1.json" &&
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format_version"] == 1 and d["written_by"] is None and d["metrics"]["last"] is None
assert d["configuration"]["optimizer"] == "sgd" and d["configuration"]["noise"] == "mask:0.25"
' "$tmp/info1.json" && ok || bad "info --json of a v1 checkpoint: $(cat "$tmp/info1.json")"
expect 1 'nothing.dcl: cannot open' -- "$bin" info "$tmp/nothing.dcl" --json
expect 0 '' -- "$bin" export --model "$tmp/run1/model.dcl" -o "$tmp/run1/model.onnx"
[ "$(head -c 2 "$tmp/run1/model.onnx" | od -An -tx1 | tr -d ' ')" = 0807 ] && ok || bad "model.onnx does not start with ir_version 7"
expect 0 '' -- "$bin" export "$tmp/run1/model.dcl" -o "$tmp/run1/weights.npz"
[ "$(head -c 2 "$tmp/run1/weights.npz")" = PK ] && ok || bad "weights.npz is not a zip"
expect 0 '' -- "$bin" export "$tmp/run1/model.dcl" --format npz -o "$tmp/run1/weights.bin"
expect 2 'name it .onnx or .npz' -- "$bin" export "$tmp/run1/model.dcl" -o "$tmp/run1/model.txt"
expect 2 'expected onnx or npz' -- "$bin" export "$tmp/run1/model.dcl" --format tflite -o "$tmp/m.onnx"
expect 2 'give a path' -- "$bin" export "$tmp/run1/model.dcl" -o -
expect 1 'nothing.dcl: cannot open' -- "$bin" export "$tmp/nothing.dcl" -o "$tmp/m.onnx"
[ ! -e "$tmp/m.onnx" ] && ok || bad "a failed export left $tmp/m.onnx"

# Ctrl-C: finish the step, save, exit 130; the checkpoint loads and the run resumes.
"$bin" train --data "$d" --out "$tmp/run2" --epochs 30 --batch 32 >"$tmp/run2.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/run2/config" ] && break; sleep 0.1; done
sleep 1
kill -INT "$pid"
wait "$pid"
status=$?
[ "$status" -eq 130 ] && ok || bad "SIGINT exit status $status: $(cat "$tmp/run2.log")"
# A signal mid-epoch says "interrupted in epoch E at step S"; one that lands between epochs (a slow
# sanitizer build) stops there: "stopped after epoch E; saved". Both name --resume.
grep -qE '(interrupted in epoch|stopped after epoch).*--resume' "$tmp/run2.log" && ok || bad "no interrupt message: $(cat "$tmp/run2.log")"
expect 0 'denoised' -- "$bin" eval --model "$tmp/run2/model.dcl" --data "$d" --limit 64
# Resume to one epoch past what was completed (metrics.csv has a header and a row per epoch).
done_epochs=$(( $(wc -l <"$tmp/run2/metrics.csv" 2>/dev/null || echo 1) - 1 ))
[ "$done_epochs" -ge 0 ] || done_epochs=0
expect 0 'resuming' -- "$bin" train --data "$d" --out "$tmp/run2" --epochs $((done_epochs + 1)) --resume

# The checkpoint and the log agree after Ctrl-C and resume.
ck=$("$build/tests/test_train" --checkpoint-epochs "$tmp/run2/model.dcl")
[ "${ck%% *}" -eq $((done_epochs + 1)) ] && [ "$(tail -n +2 "$tmp/run2/metrics.csv")" == "$(tail -n +2 <<<"$ck")" ] && ok ||
  bad "run2: checkpoint '$ck' vs metrics.csv: $(cat "$tmp/run2/metrics.csv")"

# A version-1 checkpoint (dae-cl 0.1.0) resumes with its own settings; its data moved (notice).
mkdir -p "$tmp/v1"
cp "${DAECL_SOURCE_ROOT:?}/tests/fixtures/v1-sgd-mask.dcl" "$tmp/v1/model.dcl"
expect 0 "^--data $d replaces /tmp/v1fx/mnist from the checkpoint" -- "$bin" train --data "$d" --out "$tmp/v1" --resume --epochs 3
grep -q '^optimizer=sgd$' "$tmp/v1/config" && grep -q '^noise=mask:0.25$' "$tmp/v1/config" && grep -q '^lr=0.05$' "$tmp/v1/config" &&
  ok || bad "v1 settings not kept: $(cat "$tmp/v1/config")"
expect 0 'noise mask:0.25, seed 7' -- "$bin" eval --model "$tmp/v1/model.dcl" --data "$d" --limit 64
expect 0 'format version 1' -- "$bin" info "${DAECL_SOURCE_ROOT:?}/tests/fixtures/v1-sgd-mask.dcl"
expect 0 '^  optimizer +sgd$' -- "$bin" info "${DAECL_SOURCE_ROOT:?}/tests/fixtures/v1-sgd-mask.dcl"

# A version-2 checkpoint (before lr and unix_time): its rows come back with those fields empty.
mkdir -p "$tmp/v2"
cp "$DAECL_SOURCE_ROOT/tests/fixtures/v2-adam-2epochs.dcl" "$tmp/v2/model.dcl"
expect 0 'resuming' -- "$bin" train --data "$d" --out "$tmp/v2" --resume --epochs 3 --no-samples
[ "$(awk -F, '{print NF}' "$tmp/v2/metrics.csv" | sort -u)" == "10" ] && grep -q '^1,0.608173,.*,,$' "$tmp/v2/metrics.csv" &&
  grep -q '^3,.*,0.00100000005,[0-9.]*$' "$tmp/v2/metrics.csv" && ok || bad "v2 rows: $(cat "$tmp/v2/metrics.csv")"

# Damaged checkpoints: one line naming the file and the problem.
cp "$tmp/run1/model.dcl" "$tmp/flipped.dcl"
printf '\x55' | dd of="$tmp/flipped.dcl" bs=1 seek=400 conv=notrunc status=none
expect 1 'flipped.dcl: CRC-32 mismatch' -- "$bin" eval --model "$tmp/flipped.dcl" --data "$d"
head -c 500 "$tmp/run1/model.dcl" >"$tmp/short.dcl"
expect 1 'short.dcl: truncated' -- "$bin" eval --model "$tmp/short.dcl" --data "$d"
echo "not a model" >"$tmp/text.dcl"
expect 1 'text.dcl: not a dae-cl checkpoint' -- "$bin" eval --model "$tmp/text.dcl" --data "$d"

# Image folders: dae-cl data describes one (text and JSON), a short training on 28x28 patches,
# eval on the folder's centre crops; an empty folder is refused, naming it.
mkdir -p "$tmp/photos/sub" "$tmp/empty"
cp "$tmp/run1/samples/epoch_001.png" "$tmp/photos/a.png"
cp "$tmp/run1/samples/epoch_001.png" "$tmp/photos/sub/b.png"
echo junk >"$tmp/photos/broken.png"
echo notes >"$tmp/photos/README"
expect 0 '3 image files \(2 PNG, 0 JPEG readable\), 1 other files' -- "$bin" data "$tmp/photos"
expect 0 'broken.png: .*neither PNG nor JPEG' -- "$bin" data "$tmp/photos"
"$bin" data "$tmp/photos" --patch 28 --json >"$tmp/data.json" &&
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["image_files"] == 3 and d["usable"] == 2 and d["formats"]["png"] == 2 and d["train_channels"] == 1
assert len(d["skipped"]) == 1 and d["skipped"][0]["file"] == "broken.png"
' "$tmp/data.json" && ok || bad "data --json: $(cat "$tmp/data.json")"
expect 1 'empty: no usable image' -- "$bin" data "$tmp/empty"
expect 2 'give one folder' -- "$bin" data
expect 1 'empty: no usable image' -- "$bin" train --data "$tmp/empty" --out "$tmp/never2"
out=$("$bin" train --data "$tmp/photos" --val-data "$tmp/photos/sub" --patch 28 --patches-per-epoch 128 --batch 64 \
  --epochs 1 --out "$tmp/folder" --noise gaussian:0.1-0.3 --augment 2>&1)
grep -qE 'validating on 1 centre crops' <<<"$out" && grep -qE 'Epoch 1/1 .* val_psnr' <<<"$out" &&
  grep -q 'skipped .*broken.png' <<<"$out" && ok || bad "folder training: $out"
grep -q '^noise=gaussian:0.1-0.3$' "$tmp/folder/config" && grep -q '^patch=28$' "$tmp/folder/config" && ok ||
  bad "folder config: $(cat "$tmp/folder/config")"
expect 0 '2 folder images' -- "$bin" eval --model "$tmp/folder/model.dcl" --data "$tmp/photos"

# Steering from the command line: the flags land in the run's config, the learning rate in
# metrics.csv, epoch files kept as asked, and early stopping says so.
expect 0 'Epoch 2/2 .* lr: 0.0005' -- "$bin" train --data "$d" --out "$tmp/steer" --epochs 2 --train-limit 256 --val-limit 64 \
  --no-samples --lr-schedule step --lr-step-every 1 --lr-gamma 0.5 --save-every 1 --keep 1 --early-stop 3
grep -q '^lr_schedule=step$' "$tmp/steer/config" && grep -q '^early_stop=3$' "$tmp/steer/config" && ok || bad "steer config: $(cat "$tmp/steer/config")"
head -1 "$tmp/steer/metrics.csv" | grep -q ',lr,unix_time$' && [ "$(cut -d, -f9 "$tmp/steer/metrics.csv" | tail -n +2 | tr '\n' ' ')" == "0.00100000005 0.000500000024 " ] &&
  ok || bad "steer metrics: $(cat "$tmp/steer/metrics.csv")"
[ ! -e "$tmp/steer/epoch_001.dcl" ] && [ -s "$tmp/steer/epoch_002.dcl" ] && ok || bad "--keep 1: $(ls "$tmp/steer")"
expect 2 'lr-schedule cannot change|cannot change on --resume' -- "$bin" train --data "$d" --out "$tmp/steer" --epochs 3 --resume --lr-schedule cosine
expect 0 '^--early-stop 5 replaces 3 from the checkpoint' -- "$bin" train --data "$d" --out "$tmp/steer" --epochs 3 --resume --early-stop 5

# Cold starts on a CPU: the helper (dae-cl __prewarm, src/cli/prewarm.h) compiles a training
# model's kernels into the PoCL cache it is given, backward ones included; a cold `train`
# starts one beside itself and leaves none running. A small model keeps the compiles short.
tiny=conv:8,pool,conv:8,up,conv:1:sigmoid
POCL_CACHE_DIR="$tmp/pw-pocl" "$bin" __prewarm "$tiny" 1x28x28 8 0:0 && ok || bad "__prewarm exited $?"
find "$tmp/pw-pocl" -name 'conv_dw*.so' | grep -q . && ok || bad "__prewarm compiled no weight-gradient kernel"
"$bin" __prewarm "$tiny" 28x28 8 0:0 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "__prewarm took a bad shape"
expect 0 '^done: 1 epochs' -- env POCL_CACHE_DIR="$tmp/pw-cold" "$bin" train --data "$d" --out "$tmp/pw-run" \
  --arch "$tiny" --batch 8 --epochs 1 --train-limit 64 --val-limit 16 --no-samples --quiet
pgrep -f "^dae-cl __prewarm $tiny" >/dev/null && bad "a helper outlived its run" || ok
# The inference helper of a cold `denoise`: forward-only kernels of the window model, no
# gradient kernels; a cold denoise with it gives the same image as a warm one without it.
POCL_CACHE_DIR="$tmp/pw-inf" "$bin" __prewarm "$tiny" 1x64x64 2 0:0 infer && ok || bad "__prewarm infer exited $?"
find "$tmp/pw-inf" -name 'conv_fwd*.so' | grep -q . && ! find "$tmp/pw-inf" -name 'conv_d*.so' | grep -q . &&
  ok || bad "__prewarm infer compiled: $(find "$tmp/pw-inf" -name '*.so' -printf '%f ')"
"$bin" __prewarm "$tiny" 1x64x64 2 0:0 sideways >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "__prewarm took a bad kind"
expect 0 'windows of' -- env POCL_CACHE_DIR="$tmp/pw-dn" "$bin" denoise --model "$tmp/pw-run/model.dcl" \
  "$tmp/run1/samples/epoch_001.png" -o "$tmp/pw-cold.png"
pgrep -f "^dae-cl __prewarm $tiny" >/dev/null && bad "a denoise helper outlived its run" || ok
expect 0 'windows of' -- env DAECL_PREWARM=0 "$bin" denoise --model "$tmp/pw-run/model.dcl" \
  "$tmp/run1/samples/epoch_001.png" -o "$tmp/pw-warm.png"
cmp -s "$tmp/pw-cold.png" "$tmp/pw-warm.png" && ok || bad "denoise with its helper wrote another image"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

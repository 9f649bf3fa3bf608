#!/usr/bin/env bash
# valgrind memcheck of the dae-cl command line on a tiny run (issue 11): a one-epoch training run
# on 64 synthetic images (device, kernels, loader thread, optimizer, evaluation, checkpoint and
# sample PNG writing; about 1.5 CPU-minutes under valgrind, so denoise is left to the ASan build;
# 2 more where valgrind sees another CPU than PoCL natively does, see below).
# dae-cl's own code must lose nothing
# ("definitely lost" and memory errors = 0); tests/valgrind.supp suppresses only the OpenCL
# driver stack (PoCL, LLVM, glibc's loader as it dlopen()s them), each entry explained there.
# Only PoCL is loaded (OCL_ICD_VENDORS): other installed drivers are not dae-cl's code. The
# kernel caches are warm (the unit tests fill them), so no JIT runs under valgrind.
# Skipped (exit 77) without valgrind.
set -u
build=${DAECL_BUILD_ROOT:?run through meson test}
src=${DAECL_SOURCE_ROOT:?run through meson test}
bin="$build/src/cli/dae-cl"
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 77; }
base=${DAECL_TEST_TMP:-/tmp}
mkdir -p "$base"
t=$(mktemp -d "$base/valgrind.XXXXXX")
trap 'rm -rf "$t"' EXIT
pocl_icd=$(grep -l pocl /etc/OpenCL/vendors/*.icd 2>/dev/null | head -1)
if [ -n "$pocl_icd" ]; then mkdir -p "$t/vendors" && cp "$pocl_icd" "$t/vendors/" && export OCL_ICD_VENDORS="$t/vendors"; fi
# No cold-start helper process (src/cli/prewarm.h): builds are slow under valgrind.
export DAECL_PREWARM=0

be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((($1 >> 24) & 255)) $((($1 >> 16) & 255)) $((($1 >> 8) & 255)) $(($1 & 255)); }
idx() { { printf '\x00\x00\x08\x03'; printf "$(be32 "$2")$(be32 28)$(be32 28)"; head -c $(($2 * 784)) /dev/urandom; } >"$1"; }
mkdir -p "$t/d"
idx "$t/d/train-images-idx3-ubyte" 64
idx "$t/d/t10k-images-idx3-ubyte" 64

vg=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
    --suppressions="$src/tests/valgrind.supp" --error-exitcode=99 --num-callers=40)
failed=0
run() { # NAME COMMAND...
  local name=$1
  shift
  "${vg[@]}" --log-file="$t/$name.vg" "$@" >"$t/$name.out" 2>&1
  local status=$?
  local lost errors
  lost=$(grep -E 'definitely lost:' "$t/$name.vg" | awk '{print $4}' | tr -d ,)
  errors=$(grep -E 'ERROR SUMMARY:' "$t/$name.vg" | awk '{print $4}')
  echo "$name: exit $status, definitely lost ${lost:-0} bytes, ${errors:-?} errors"
  if [ "$status" -ne 0 ] || [ "${errors:-1}" -ne 0 ]; then
    failed=1
    cat "$t/$name.out"
    grep -vE '^==[0-9]+== *$' "$t/$name.vg" | head -80
  fi
}
# PoCL picks its CPU code variant from CPUID, and valgrind's CPU has no AVX-512: on an AVX-512
# host the device is pthread-skylake-avx512 natively but pthread-haswell under valgrind, with a
# native float width of 8 instead of 16, so dae-cl plans other kernels (src/nn/conv2d.c) that
# the unit tests never compiled, and memcheck would JIT every one of them (past the 600 s
# timeout on a Zen 5 VM). They are compiled first under valgrind's fastest tool (no checks),
# which sees the same CPU: 2 minutes there, against over 10 under memcheck. No native run can
# do it: with POCL_KERNELLIB_NAME=avx2 PoCL names the same device but still reports width 16.
train_args=(--data "$t/d" --epochs 1 --batch 64 --val-limit 64 --quiet)
device() { "$@" --list-devices 2>/dev/null | awk '$1 == "0:0" {print $3}'; }
native_dev=$(device "$bin")
vg_dev=$(device valgrind --tool=none -q "$bin")
if [ "$vg_dev" != "$native_dev" ]; then
  echo "PoCL's device under valgrind is $vg_dev ($native_dev natively): compiling its kernels under --tool=none first"
  valgrind --tool=none -q "$bin" train --out "$t/warm" "${train_args[@]}" >"$t/warm.out" 2>&1 ||
    { cat "$t/warm.out"; exit 1; }
fi
run train "$bin" train --out "$t/run" "${train_args[@]}"
exit $failed

#!/usr/bin/env bash
# `dae-cl export` checked by clients no one here wrote (python3-onnx's checker and shape
# inference, OpenCV's DNN module, PyTorch): every preset at 1 and 3 channels, the residual head
# (dncnn-shaped), avgpool, concat, k1/k5 convT, leaky and tanh/linear heads, each against dae-cl's own forward of the same input
# (tests/export_forward.c: the model's raw forward, not `dae-cl denoise`, whose PNG output is
# 8-bit). Images are 20x28, not the 28x28 of MNIST, to exercise the symbolic sizes.
# usage: tests/ci/export.sh [--install] [BUILD_DIR]   (--install: apt-get the Python clients)
set -euo pipefail
cd "$(dirname "$0")/../.."
pkgs=(python3-onnx python3-opencv python3-torch)
if [ "${1:-}" = --install ]; then
  shift
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi
build=${1:-${DAECL_BUILD_DIR:-build}}
ninja -C "$build" src/cli/dae-cl tests/export_forward >/dev/null
export POCL_CACHE_DIR=${POCL_CACHE_DIR:-$PWD/$build/tests/pocl-cache}
export DAECL_CACHE_DIR=${DAECL_CACHE_DIR:-$PWD/$build/tests/kernel-cache}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cases=(
  # every preset at 1 and 3 channels (their last layer is conv:C)
  "classic 1"
  "keras 1"
  "unet 1"
  "classic 3"
  "keras 3"
  "unet 3"
  # the residual head (ONNX: Sub(input, noise); .npz: residual = [1]): dncnn, a small one at
  # 3 channels, and a preset made residual at 1
  "conv:8,conv:8,conv:8,conv:C:linear,residual 3"
  "conv:8,pool,conv:8,up,conv:C:linear,residual 1"
  "conv:8:leaky@a,avgpool,conv:8:k5,up,cat:a,conv:1:tanh 1"
  "conv:6@a,pool,convT:6:k1,add:a,convT:4:k5,avgpool,conv:3:linear 3"
  # the 10-minute recipe's preset (last, so the cases above keep their seeds). With
  # export_forward's uniform +-0.5 weights its 64-filter layers saturate the sigmoid (max
  # difference ~1e-12): this case checks the graph (operators, shapes, both runtimes run it);
  # the cases above check the arithmetic of the same layer kinds.
  "unet64 1"
)
dirs=()
i=0
for c in "${cases[@]}"; do
  arch=${c% *} ch=${c##* }
  d="$tmp/case$i-$(echo "$arch" | tr -c 'a-zA-Z0-9\n' '_' | cut -c1-40)-c$ch"
  mkdir -p "$d"
  echo "export.sh: case $i: $arch, $ch channel(s)"
  "$build/tests/export_forward" "$arch" "$ch" 20 28 $((1234 + i)) "$d"
  "$build/src/cli/dae-cl" export --model "$d/model.dcl" -o "$d/model.onnx"
  "$build/src/cli/dae-cl" export "$d/model.dcl" -o "$d/model.npz"
  dirs+=("$d")
  i=$((i + 1))
done
/usr/bin/python3 tests/ci/export_check.py "${dirs[@]}"

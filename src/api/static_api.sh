#!/usr/bin/env bash
# static_api.sh LD OBJCOPY AR OUT.a IN.a: libdaecl.a as one relocatable object whose only
# global symbols are the public daecl_* functions. A static library cannot hide symbols the way
# the shared one does (version script), so its internal dc_* names would otherwise clash with a
# program's own; `ld -r` joins every object, then objcopy makes everything else local.
set -euo pipefail
ld=$1 objcopy=$2 ar=$3 out=$4 in=$5
obj=$out.tmp.o
"$ld" -r -o "$obj" --whole-archive "$in"
"$objcopy" --wildcard --keep-global-symbol='daecl_*' "$obj"
rm -f "$out"
"$ar" rcs "$out" "$obj"
rm -f "$obj"

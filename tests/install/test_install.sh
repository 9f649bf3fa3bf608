#!/usr/bin/env bash
# The installed dae-cl, end to end. `meson install --destdir` into a temporary directory, then:
#  - every promised file is there: dae-cl, dae-cl-visualize, dae-cl-fetch-mnist, libdaecl.so
#    (soname libdaecl.so.0) and libdaecl.a, daecl.h + daecl_version.h, daecl.pc, dae-cl(1), the
#    bash completion, README.md and LICENSE in share/doc/dae-cl;
#  - libdaecl.so exports daecl_* only (nm -D --defined-only);
#  - docs/examples/denoise.c, copied out of the tree, compiles and links with
#    `pkg-config --cflags --libs daecl` only (PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR point
#    into the DESTDIR; the loader finds the library through LD_LIBRARY_PATH), and also against
#    libdaecl.a;
#  - the installed dae-cl trains a tiny model on synthetic IDX files, and the example denoises
#    8-bit gray, 16-bit gray and RGB images with it: the same pixels (within 1 LSB) as
#    `dae-cl denoise` gives for the same images as PNGs (RGB: per channel, as gray);
#  - messages of the installed tools name the installed tools; the completion completes.
set -u
build=${DAECL_BUILD_ROOT:?run through meson test}
src=${DAECL_SOURCE_ROOT:?run through meson test}
base=${DAECL_TEST_TMP:-/tmp}
mkdir -p "$base"
t=$(mktemp -d "$base/install.XXXXXX")
dest=$t/dest

source "$src/tests/harness.sh"
abs() { case $1 in /*) echo "$1" ;; *) echo "$DAECL_PREFIX/$1" ;; esac; }

if ! "$MESON" install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$t/install.log" 2>&1; then
  cat "$t/install.log" >&2
  bad "meson install failed"
  finish
fi
bindir=$dest$(abs "$DAECL_BINDIR")
libdir=$dest$(abs "$DAECL_LIBDIR")
incdir=$dest$(abs "$DAECL_INCLUDEDIR")
datadir=$dest$(abs "$DAECL_DATADIR")
mandir=$dest$(abs "$DAECL_MANDIR")

# ---- files -----------------------------------------------------------------------------------
want=("$bindir/dae-cl" "$bindir/dae-cl-fetch-mnist" "$libdir/libdaecl.so" "$libdir/libdaecl.so.0"
      "$libdir/libdaecl.a" "$incdir/daecl.h" "$incdir/daecl_version.h" "$libdir/pkgconfig/daecl.pc"
      "$mandir/man1/dae-cl.1" "$mandir/man1/dae-cl-visualize.1" "$mandir/man1/dae-cl-fetch-mnist.1" "$datadir/bash-completion/completions/dae-cl"
      "$datadir/bash-completion/completions/dae-cl-visualize"
      "$datadir/doc/dae-cl/README.md" "$datadir/doc/dae-cl/LICENSE")
[ "$DAECL_HAVE_VISUALIZE" = 1 ] && want+=("$bindir/dae-cl-visualize")
for f in "${want[@]}"; do check "installed: ${f#$dest}" test -e "$f"; done
for f in "$bindir/dae-cl" "$bindir/dae-cl-fetch-mnist"; do check "executable: ${f#$dest}" test -x "$f"; done
# Only the public headers: nothing of src/daecl.
check "no internal headers installed" test -z "$(find "$dest" -path '*daecl/*.h')"

# ---- the shared library: soname and exports --------------------------------------------------
soname=$(readelf -d "$libdir/libdaecl.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "soname is libdaecl.so.0 (got '$soname')" test "$soname" = libdaecl.so.0
exports=$(nm -D --defined-only "$libdir/libdaecl.so" | awk '$2 != "A" { print $3 }' | sed 's/@.*//')
check "daecl_denoise exported" grep -qx daecl_denoise <<<"$exports"
check "daecl_version exported" grep -qx daecl_version <<<"$exports"
private=$(grep -v '^daecl_' <<<"$exports")
check "only daecl_* exported (also: $(echo $private | head -c 300))" test -z "$private"
# The static library: no global definitions but daecl_*.
static_globals=$(nm -g --defined-only "$libdir/libdaecl.a" | awk 'NF == 3 { print $3 }')
check "libdaecl.a defines daecl_denoise" grep -qx daecl_denoise <<<"$static_globals"
private=$(grep -v '^daecl_' <<<"$static_globals")
check "libdaecl.a has no global symbols but daecl_* (also: $(echo $private | head -c 300))" test -z "$private"

# ---- build the example with pkg-config only --------------------------------------------------
# daecl.pc says prefix=/usr/local (say); the sysroot puts its -I and -L into the DESTDIR.
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs daecl) || bad "pkg-config --cflags --libs daecl failed"
# Every -I and -L is inside the DESTDIR (so nothing comes from the source or build tree).
outside=$(tr ' ' '\n' <<<"$flags" | grep -E '^-[IL]' | grep -v "^-[IL]$dest/")
check "pkg-config paths all in the DESTDIR ($flags)" test -z "$outside"
san=()
[ "${DAECL_SANITIZE:-none}" != none ] && san=(-fsanitize="$DAECL_SANITIZE")
cp "$src/docs/examples/denoise.c" "$t/example.c"
cc=${CC:-cc}
if ! (cd "$t" && $cc -std=c11 -Wall -Wextra -Werror "${san[@]}" example.c $flags -o example) 2>"$t/cc.log"; then
  cat "$t/cc.log" >&2
  bad "the example does not build with pkg-config --cflags --libs daecl"
fi
# C++: the header's extern "C" block, compiled and linked from C++ (when a C++ compiler exists).
if command -v c++ >/dev/null 2>&1; then
  printf '#include <daecl.h>\n#include <cstring>\nint main() { return std::strcmp(daecl_version(), DAECL_VERSION_STRING) != 0; }\n' >"$t/cxx.cc"
  if (cd "$t" && c++ -Wall -Wextra -Werror "${san[@]}" cxx.cc $flags -o cxx) 2>"$t/cxx.log"; then
    check "a C++ program calls the library" env LD_LIBRARY_PATH="$libdir" "$t/cxx"
  else
    cat "$t/cxx.log" >&2
    bad "daecl.h does not build as C++"
  fi
fi
# Static: libdaecl.a and the private dependencies pkg-config lists for it.
static_libs=$(pkg-config --static --libs daecl | sed 's/-ldaecl\b//')
if ! (cd "$t" && $cc -std=c11 "${san[@]}" example.c $(pkg-config --cflags daecl) "$libdir/libdaecl.a" $static_libs \
        -o example-static) 2>"$t/cc-static.log"; then
  cat "$t/cc-static.log" >&2
  bad "the example does not link against libdaecl.a"
fi
check "example-static does not need libdaecl.so" bash -c '! ldd "$1" | grep -q libdaecl' _ "$t/example-static"
# A program with its own dc_* functions (the library's internal prefix) still links statically.
printf 'int dc_fail(void) { return 0; }\nint dc_device_open(void) { return 0; }\n' >"$t/clash.c"
check "libdaecl.a does not clash with a program's own dc_fail/dc_device_open" \
  bash -c 'cd "$1" && $2 -std=c11 "${@:4}" example.c clash.c $(pkg-config --cflags daecl) "$3" $(pkg-config --static --libs daecl | sed "s/-ldaecl\b//") -o clash' \
  _ "$t" "$cc" "$libdir/libdaecl.a" "${san[@]}"
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
check "example runs against the installed libdaecl.so" bash -c 'ldd "$1" | grep -q "$2/libdaecl.so.0"' _ "$t/example" "$libdir"

# ---- a tiny model, trained by the installed dae-cl -------------------------------------------
python3 - "$t" <<'PY' || bad "could not write the test images"
import os, random, struct, sys, zlib
t = sys.argv[1]
rng = random.Random(5)
def idx(path, n, side=28):
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, side, side))
        for _ in range(n):
            img = bytearray(side * side)
            for _ in range(3):
                x0, y0, w, h = rng.randrange(2, 20), rng.randrange(2, 20), rng.randrange(2, 8), rng.randrange(2, 8)
                for y in range(y0, y0 + h):
                    for x in range(x0, x0 + w):
                        img[y * side + x] = 255
            f.write(img)
os.makedirs(f"{t}/data", exist_ok=True)
idx(f"{t}/data/train-images-idx3-ubyte", 128)
idx(f"{t}/data/t10k-images-idx3-ubyte", 32)
def png(path, w, h, rows, depth):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
w, h = 53, 41
g = [[(x * 7 + y * 13 + rng.randrange(60)) % 256 if (x // 8 + y // 8) % 2 else rng.randrange(40) for x in range(w)] for y in range(h)]
inv = [[255 - v for v in r] for r in g]
g16 = [[v * 257 ^ rng.randrange(256) for v in r] for r in g]
png(f"{t}/gray.png", w, h, [bytes(r) for r in g], 8)
png(f"{t}/inv.png", w, h, [bytes(r) for r in inv], 8)
png(f"{t}/gray16.png", w, h, [b"".join(struct.pack(">H", v) for v in r) for r in g16], 16)
with open(f"{t}/gray.pgm", "wb") as f:
    f.write(b"P5\n%d %d\n255\n" % (w, h) + b"".join(bytes(r) for r in g))
with open(f"{t}/gray16.pgm", "wb") as f:
    f.write(b"P5\n%d %d\n65535\n" % (w, h) + b"".join(struct.pack(">H", v) for r in g16 for v in r))
with open(f"{t}/rgb.ppm", "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (w, h) + bytes(c for y in range(h) for x in range(w) for c in (g[y][x], inv[y][x], g[y][x])))
PY
dae=$bindir/dae-cl
if ! "$dae" train --data "$t/data" --arch conv:4,conv:1:sigmoid --epochs 1 --batch 32 --lr 0.01 --seed 3 \
      --no-samples --quiet --out "$t/run" >"$t/train.log" 2>&1; then
  cat "$t/train.log" >&2
  bad "the installed dae-cl could not train"
  finish
fi
model=$t/run/model.dcl

# ---- the example against dae-cl denoise -------------------------------------------------------
if ! "$dae" denoise --quiet --model "$model" "$t/gray.png" "$t/inv.png" "$t/gray16.png" --out-dir "$t/cli" 2>"$t/cli.log"; then
  cat "$t/cli.log" >&2
  bad "dae-cl denoise failed"
fi
for f in gray.pgm gray16.pgm rgb.ppm; do
  out=$t/lib-$f
  if ! "$t/example" "$model" "$t/$f" "$out" 2>"$t/example.log"; then
    cat "$t/example.log" >&2
    bad "example on $f failed"
  fi
  [ -x "$t/example-static" ] && { "$t/example-static" "$model" "$t/$f" "$t/static-$f" 2>>"$t/example.log" || bad "example-static on $f failed"; }
done
# Decode dae-cl's PNGs (gray, 8 or 16 bits, any filter) and compare with the example's output.
python3 - "$t" <<'PY'
import struct, sys, zlib
t = sys.argv[1]
def read_png(path):
    data = open(path, "rb").read()
    pos, idat, w, h, depth = 8, b"", 0, 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert ctype == 0 and interlace == 0, f"{path}: not plain gray"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, bpp = zlib.decompress(idat), depth // 8
    stride, rows, prev = w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    if bpp == 2:
        return w, h, [[struct.unpack(">H", r[2 * x:2 * x + 2])[0] for x in range(w)] for r in rows]
    return w, h, [list(r) for r in rows]
def read_pnm(path):
    data = open(path, "rb").read()
    parts = data.split(maxsplit=4)
    magic, w, h, maxval, px = parts[0], int(parts[1]), int(parts[2]), int(parts[3]), parts[4]
    ch = 3 if magic == b"P6" else 1
    if maxval > 255:
        vals = [struct.unpack(">H", px[2 * i:2 * i + 2])[0] for i in range(w * h * ch)]
    else:
        vals = list(px[:w * h * ch])
    return w, h, ch, vals
fails = 0
def compare(what, cli, lib_vals, ch, c):
    global fails
    w, h, rows = cli
    worst = max(abs(rows[y][x] - lib_vals[(y * w + x) * ch + c]) for y in range(h) for x in range(w))
    if worst > 1:
        print(f"FAIL: {what}: the library and dae-cl denoise differ by {worst} LSB", file=sys.stderr)
        fails += 1
    else:
        print(f"{what}: max difference {worst} LSB")
gray, inv, gray16 = (read_png(f"{t}/cli/{n}.png") for n in ("gray", "inv", "gray16"))
_, _, _, lib8 = read_pnm(f"{t}/lib-gray.pgm")
_, _, _, lib16 = read_pnm(f"{t}/lib-gray16.pgm")
_, _, _, rgb = read_pnm(f"{t}/lib-rgb.ppm")
compare("8-bit gray", gray, lib8, 1, 0)
compare("16-bit gray", gray16, lib16, 1, 0)
for c, ref in enumerate((gray, inv, gray)):
    compare(f"RGB channel {c}", ref, rgb, 3, c)
import os
for n in ("gray.pgm", "gray16.pgm", "rgb.ppm"):
    if os.path.exists(f"{t}/static-{n}") and open(f"{t}/static-{n}", "rb").read() != open(f"{t}/lib-{n}", "rb").read():
        print(f"FAIL: static and shared example differ on {n}", file=sys.stderr)
        fails += 1
# The model changed the image (a comparison of two copies of the input would pass too).
src_rows = [list(r) for r in read_png(f"{t}/gray.png")[2]]
if gray[2] == src_rows:
    print("FAIL: dae-cl denoise returned its input unchanged", file=sys.stderr)
    fails += 1
sys.exit(1 if fails else 0)
PY
if [ $? -eq 0 ]; then ok; else bad "library output differs from dae-cl denoise"; fi

# ---- installed names in messages; completion -------------------------------------------------
msg=$("$dae" train --data "$t/nothing-here" --out "$t/x" 2>&1)
check "missing data names dae-cl-fetch-mnist: $msg" grep -q "dae-cl-fetch-mnist" <<<"$msg"
check "dae-cl-fetch-mnist --help names itself" bash -c '"$1" --help | grep -q dae-cl-fetch-mnist' _ "$bindir/dae-cl-fetch-mnist"
if [ "$DAECL_HAVE_VISUALIZE" = 1 ]; then
  msg=$("$bindir/dae-cl-visualize" grid 2>&1)
  check "dae-cl-visualize names itself: $msg" grep -q "^dae-cl-visualize grid:" <<<"$msg"
fi
words=$(PATH=$bindir:$PATH bash -c 'source "$1"; COMP_WORDS=(dae-cl tr); COMP_CWORD=1; _dae_cl; echo "${COMPREPLY[*]}";
  COMP_WORDS=(dae-cl denoise --ti); COMP_CWORD=2; _dae_cl; echo "${COMPREPLY[*]}"' _ "$datadir/bash-completion/completions/dae-cl")
check "completion: 'dae-cl tr' -> train, 'dae-cl denoise --ti' -> --tile (got: $words)" test "$words" = $'train\n--tile'
finish

#!/usr/bin/env python3
"""Regenerate the seed corpora in tests/fuzz/corpus/<target>/: small valid files plus hand-made
damage for each parser. Run once by hand (python3 tests/fuzz/make-corpus.py [TINY.dcl...]); the
result is committed. TINY.dcl: small real checkpoints, one per format version (e.g. from
`dae-cl train --arch conv:2:k3,conv:1:sigmoid ...`); without them the checkpoint corpus is built
from a synthetic version-1 one."""
import gzip, os, struct, sys, zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# ---- IDX ----
def idx_images(n, h, w, fill=7):
    return b"\0\0\x08\x03" + struct.pack(">III", n, h, w) + bytes((i * fill) & 255 for i in range(n * h * w))
def idx_labels(n):
    return b"\0\0\x08\x01" + struct.pack(">I", n) + bytes(i % 10 for i in range(n))
img = idx_images(3, 4, 5)
lab = idx_labels(6)
put("idx", "images-raw", img)
put("idx", "labels-raw", lab)
put("idx", "images-gz", gzip.compress(img, mtime=0))
put("idx", "labels-gz", gzip.compress(lab, mtime=0))
put("idx", "images-gz-two-members", gzip.compress(img[:10], mtime=0) + gzip.compress(img[10:], mtime=0))
put("idx", "images-gz-junk", gzip.compress(img, mtime=0) + b"junk")
put("idx", "images-gz-cut", gzip.compress(img, mtime=0)[:-6])
put("idx", "images-truncated", img[:-3])
put("idx", "images-trailing", img + b"xy")
put("idx", "bad-magic", b"\1\2\3\4" + img[4:])
put("idx", "int32-type", b"\0\0\x0c\x03" + img[4:])
put("idx", "huge-dims", b"\0\0\x08\x03" + struct.pack(">III", 0xffffffff, 0xffff, 0xffff))
put("idx", "gz-huge-dims", gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", 1 << 20, 64, 64) + b"\0" * 100, mtime=0))

# ---- PNG ----
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def png(w, h, depth, ctype, rows, extra=b"", interlace=0):
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
            + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
gray8 = png(4, 3, 8, 0, [bytes([0, 60, 120, 255])] * 3)
put("png", "gray8.png", gray8)
put("png", "gray16.png", png(2, 2, 16, 0, [b"\x00\x01\xff\xff"] * 2))
put("png", "gray1.png", png(9, 2, 1, 0, [b"\xa5\x80"] * 2))
put("png", "rgba8.png", png(2, 2, 8, 6, [bytes([255, 0, 0, 128, 0, 255, 0, 255])] * 2))
put("png", "gray-alpha8.png", png(2, 1, 8, 4, [bytes([200, 100, 50, 255])]))
plte = chunk(b"PLTE", bytes([0, 0, 0, 255, 255, 255, 10, 200, 30]))
trns = chunk(b"tRNS", bytes([255, 128]))
put("png", "palette8.png", png(3, 2, 8, 3, [bytes([0, 1, 2])] * 2, plte))
put("png", "palette4-trns.png", png(4, 1, 4, 3, [bytes([0x12, 0x01])], plte + trns))
put("png", "palette-index-beyond.png", png(3, 1, 8, 3, [bytes([0, 1, 7])], plte))
put("png", "truncated.png", gray8[:40])
bad_crc = bytearray(gray8); bad_crc[30] ^= 1
put("png", "bad-crc.png", bytes(bad_crc))
put("png", "huge-size.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1 << 30, 1 << 30, 8, 0, 0, 0, 0)))
put("png", "zero-width.png", png(0, 1, 8, 0, [b""]))

# ---- checkpoint ----
def ckpt(payload):
    return b"DAECLCKP" + struct.pack("<IIQ", 1, 0x01020304, len(payload)) + payload + struct.pack("<I", zlib.crc32(payload) & 0xffffffff)
def payload(arch=b"conv:1:sigmoid:k3", shape=(1, 28, 28), nparams=10, config=b"seed=1\n"):
    p = struct.pack("<I", len(arch)) + arch + struct.pack("<iiiQ", *shape, nparams) + b"\0\0\0\0" * nparams
    p += struct.pack("<i7fi", 2, 0.001, 0, 0.9, 0.999, 0.9, 1e-8, 0, 0) + struct.pack("<Q", 0)
    p += struct.pack("<qiiQd", 5, 1, 0, 1, float("inf")) + struct.pack("<I", len(config)) + config
    return p
def version(c):
    return struct.unpack("<I", c[8:12])[0]
reals = [open(f, "rb").read() for f in sys.argv[1:]] or [ckpt(payload())]
for c in reals:
    put("checkpoint", "tiny-v%d.dcl" % version(c), c)
    put("checkpoint", "wrapped-tiny-v%d" % version(c), b"\1" + c[24:-4])
tiny = max(reals, key=version)  # damage the newest format
put("checkpoint", "truncated-crc.dcl", tiny[:-2])
put("checkpoint", "truncated-payload.dcl", tiny[: len(tiny) // 2])
put("checkpoint", "bad-magic.dcl", b"XAECLCKP" + tiny[8:])
put("checkpoint", "trailing.dcl", tiny + b"\0\0")
flip = bytearray(tiny); flip[len(tiny) // 2] ^= 0x10
put("checkpoint", "crc-mismatch.dcl", bytes(flip))
# Inputs that start with an odd byte are wrapped by fuzz_checkpoint in a valid header (of the
# current version) + CRC: the field parser sees them.
put("checkpoint", "wrapped-synthetic-v1-layout", b"\1" + payload())
p = bytearray(tiny[24:-4])
off = 4 + struct.unpack("<I", p[:4])[0]
p[off:off + 12] = struct.pack("<iii", 1, 1 << 30, 1 << 30)
put("checkpoint", "wrapped-huge-shape", b"\1" + bytes(p))
p[off:off + 12] = tiny[24 + off:24 + off + 12]
p[off + 12:off + 20] = struct.pack("<Q", 1 << 62)
put("checkpoint", "wrapped-huge-nparams", b"\1" + bytes(p))

# ---- architecture spec ----
for name, s in [("classic", "classic"), ("unet", "unet"), ("keras", "keras"),
                ("spec", "conv:32,pool,conv:32,pool,conv:32,up,conv:32,up,conv:1:sigmoid"),
                ("named", "conv:8@a,pool,conv:8,up,add:a,conv:1:sigmoid"),
                ("cat", "conv:4:k5@x,conv:4:leaky,cat:x,convT:1:tanh"),
                ("huge-channels", "conv:99999,conv:1"), ("huge-kernel", "conv:4:k999,conv:1"),
                ("bad", "conv:,pool,,up:x"), ("huge-params", "conv:4096,conv:4096,conv:4096,conv:1"),
                ("dncnn", "dncnn"), ("residual", "conv:8,conv:C:linear,residual"),
                ("residual-bad", "conv:C,residual,residual")]:
    put("arch", name, s.encode())

# ---- noise spec ----
for s in ["gaussian:0.5", "saltpepper:0.1", "speckle:0.2", "poisson:10", "mask:0.25", "none",
          "gaussian:1e309", "poisson:nan", "mask:", "gaussian:0.5:extra"]:
    put("noise", s.replace(":", "_").replace(".", "p") or "empty", s.encode())

# ---- command-line flags (NUL-separated argv) ----
for name, args in [("ok", ["--epochs", "5", "--lr=0.01", "--seed", "0x10", "-o", "x", "in.png"]),
                   ("range", ["--epochs", "99999999", "--lr", "1e9"]),
                   ("missing-value", ["--data"]), ("unknown", ["--nope", "--", "-x"]),
                   ("help", ["--help"]), ("neg-u64", ["--seed", "-1"]), ("flag-value", ["--quiet=1"])]:
    put("args", name, b"\0".join(a.encode() for a in args))

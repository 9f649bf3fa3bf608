#!/usr/bin/python3
"""nlm_compare.py: the measuring half of tools/bench/nlm-compare (see there).

Noisy inputs are made once per photo and sigma (numpy, a seed from the photo's name and the
sigma; clipped to [0,1] and stored as 8-bit PNG), and that same file goes to both methods.
OpenCV's fastNlMeansDenoisingColored gets h = hColor tuned per sigma on training photos (the
best mean PSNR over a small grid); dae-cl denoises the noisy PNGs with each trained model.
"""
import argparse
import csv
import os
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np

SIGMAS = (25, 50)  # on the 0-255 scale
H_FACTORS = (0.3, 0.45, 0.6, 0.75, 0.9)  # h = factor * sigma (OpenCV's h is on 0-255 too)
TUNE_PHOTOS = 6  # training photos used to tune h (each NLM call takes seconds)
PICTURE_PHOTO = "fruits.jpg"  # smooth areas and edges: both methods' artefacts show


def photos(folder):
    exts = (".png", ".jpg", ".jpeg")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(exts))


def load(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR uint8; every photo here is colour
    if img is None:
        sys.exit(f"nlm_compare: {path}: not readable as an image")
    return img


def noisy_of(clean, name, sigma):
    """The fixed noisy input: N(0, sigma/255) per value, clipped, rounded to 8 bits."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), sigma])
    x = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def psnr(ref, img):
    mse = np.mean((ref.astype(np.float64) - img.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf")


def ssim(ref, img):
    """Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, per channel, averaged."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = ref.astype(np.float64), img.astype(np.float64)
    blur = lambda t: cv2.GaussianBlur(t, (11, 11), 1.5)
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


def nlm(noisy, h):
    return cv2.fastNlMeansDenoisingColored(noisy, None, h, h, 7, 21)


def tune_h(train_paths, quick):
    """h per sigma: the grid value with the best mean PSNR on the training photos."""
    paths = train_paths[: 1 if quick else TUNE_PHOTOS]
    factors = H_FACTORS[1:3] if quick else H_FACTORS
    best = {}
    for sigma in SIGMAS:
        scores = []
        for f in factors:
            h = round(f * sigma, 1)
            vals = []
            for p in paths:
                clean = load(p)
                vals.append(psnr(clean, nlm(noisy_of(clean, os.path.basename(p), sigma), h)))
            scores.append((float(np.mean(vals)), h))
            print(f"  NLM tuning sigma {sigma}/255: h {h:5.1f} -> mean PSNR {scores[-1][0]:.2f} dB "
                  f"on {len(paths)} training photos", file=sys.stderr)
        best[sigma] = max(scores)[1]
    return best, len(paths)


def daecl_denoise(daecl, model, inputs, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    subprocess.run([daecl, "denoise", "--model", model, "--quiet", "--out-dir", out_dir, *inputs], check=True)
    return time.time() - t0


def picture(path, rows, clean_by_name, sigma):
    """noisy | non-local means | dae-cl: a 200x200 crop of one held-out photo, labelled (< 300 kB)."""
    name = PICTURE_PHOTO if PICTURE_PHOTO in clean_by_name else sorted(clean_by_name)[0]
    r = rows[(name, sigma)]
    imgs = [r["noisy_img"], r["nlm_img"], r["best_img"]]
    h, w = imgs[0].shape[:2]
    s = min(200, h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    labels = [f"noisy {sigma}/255: {r['noisy']:.2f} dB", f"NLM h={r['h']}: {r['nlm']:.2f}",
              f"dae-cl {r['best_name']}: {r['best']:.2f}"]
    panels = []
    for img, label in zip(imgs, labels):
        crop = img[y0:y0 + s, x0:x0 + s]
        strip = np.full((22, s, 3), 255, np.uint8)
        cv2.putText(strip, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.vstack([strip, crop]))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    out = np.hstack([panels[0], gap, panels[1], gap, panels[2]])
    cv2.imwrite(path, out, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return name, os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daecl", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", action="append", default=[], help="NAME=FILE")
    ap.add_argument("--picture")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    models = [m.split("=", 1) for m in a.model]
    if not models:
        sys.exit("nlm_compare: no --model NAME=FILE")

    t0 = time.time()
    hs, ntune = tune_h(photos(a.train), a.quick)
    tune_s = time.time() - t0

    clean_by_name = {os.path.basename(p): load(p) for p in photos(a.test)}
    rows, timing = {}, {}
    for sigma in SIGMAS:
        noisy_dir = os.path.join(a.out, f"noisy{sigma}")
        os.makedirs(noisy_dir, exist_ok=True)
        inputs = []
        for name, clean in clean_by_name.items():
            stem = os.path.splitext(name)[0]
            noisy = noisy_of(clean, name, sigma)
            path = os.path.join(noisy_dir, stem + ".png")
            cv2.imwrite(path, noisy)
            inputs.append(path)
            t = time.time()
            den = nlm(cv2.imread(path, cv2.IMREAD_COLOR), hs[sigma])
            timing[("nlm", sigma)] = timing.get(("nlm", sigma), 0) + time.time() - t
            rows[(name, sigma)] = {"noisy": psnr(clean, noisy), "noisy_ssim": ssim(clean, noisy),
                                   "nlm": psnr(clean, den), "nlm_ssim": ssim(clean, den), "h": hs[sigma],
                                   "noisy_img": noisy, "nlm_img": den}
        for mname, mpath in models:
            out_dir = os.path.join(a.out, f"{mname}{sigma}")
            timing[(mname, sigma)] = daecl_denoise(a.daecl, mpath, inputs, out_dir)
            for name, clean in clean_by_name.items():
                den = cv2.imread(os.path.join(out_dir, os.path.splitext(name)[0] + ".png"), cv2.IMREAD_COLOR)
                r = rows[(name, sigma)]
                r[mname], r[mname + "_ssim"], r[mname + "_img"] = psnr(clean, den), ssim(clean, den), den

    names = [m for m, _ in models]
    # The model with the best mean PSNR over every photo and sigma is the one the picture shows.
    best = max(names, key=lambda m: np.mean([r[m] for r in rows.values()]))
    for r in rows.values():
        r["best_name"], r["best"], r["best_img"] = best, r[best], r[best + "_img"]

    head = ["photo", "sigma", "noisy PSNR", "NLM h", "NLM PSNR"] + [f"dae-cl {m} PSNR" for m in names] + \
           ["noisy SSIM", "NLM SSIM"] + [f"dae-cl {m} SSIM" for m in names]
    table = []
    for (name, sigma), r in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        table.append([os.path.splitext(name)[0], f"{sigma}/255", f"{r['noisy']:.2f}", f"{r['h']}", f"{r['nlm']:.2f}"] +
                     [f"{r[m]:.2f}" for m in names] + [f"{r['noisy_ssim']:.3f}", f"{r['nlm_ssim']:.3f}"] +
                     [f"{r[m + '_ssim']:.3f}" for m in names])
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        csv.writer(f).writerows([head] + table)
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for t in table:
        print("| " + " | ".join(t) + " |")
    print()
    for sigma in SIGMAS:
        rs = [r for (n, s), r in rows.items() if s == sigma]
        for m in names:
            wins = sum(r[m] > r["nlm"] for r in rs)
            diff = [r[m] - r["nlm"] for r in rs]
            print(f"sigma {sigma}/255, {m}: beats NLM on {wins}/{len(rs)} photos; PSNR - NLM: "
                  f"mean {np.mean(diff):+.2f} dB, worst {min(diff):+.2f} dB")
    print(f"NLM h per sigma (tuned on {ntune} training photos, {tune_s:.0f} s): " +
          ", ".join(f"{s}/255 -> {h}" for s, h in hs.items()))
    print("wall seconds for the held-out photos: " +
          ", ".join(f"{k[0]} {k[1]}/255 {v:.1f} s" for k, v in sorted(timing.items())))
    print(f"results: {os.path.join(a.out, 'results.csv')}")
    if a.picture:
        name, size = picture(a.picture, rows, clean_by_name, 50)
        print(f"picture: {a.picture} ({name}, sigma 50/255, {size // 1024} kB)")


if __name__ == "__main__":
    main()

/* dae-cl data DIR: what an image folder holds, as training would see it (daecl/imageset.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "daecl/imageset.h"
#include "daecl/runconfig.h"
#include "json.h"

typedef struct folder_summary {
    size_t images, usable, png, jpeg, bits8, bits16, gray, colour, corrupt, small;
    int min_w, min_h, max_w, max_h; /* over usable images */
    double megapixels, bytes;       /* usable images; bytes as training stores them */
    int c, depth;
} folder_summary;

static void summarise(const dc_imageset_scan *sc, int channels, int patch, folder_summary *f)
{
    memset(f, 0, sizeof *f);
    dc_imageset_scan_layout(sc, &f->c, &f->depth);
    if (channels) f->c = channels;
    f->images = sc->n;
    for (size_t i = 0; i < sc->n; i++) {
        const dc_imageset_entry *e = &sc->entries[i];
        if (e->skip) {
            f->corrupt++;
            continue;
        }
        f->png += e->format == DC_IMAGESET_PNG;
        f->jpeg += e->format == DC_IMAGESET_JPEG;
        f->bits8 += e->bit_depth == 8;
        f->bits16 += e->bit_depth == 16;
        f->gray += e->c == 1;
        f->colour += e->c == 3;
        if (e->w < patch || e->h < patch) {
            f->small++;
            continue;
        }
        if (f->usable++ == 0) {
            f->min_w = f->max_w = e->w;
            f->min_h = f->max_h = e->h;
        }
        if ((double)e->w * e->h < (double)f->min_w * f->min_h) f->min_w = e->w, f->min_h = e->h;
        if ((double)e->w * e->h > (double)f->max_w * f->max_h) f->max_w = e->w, f->max_h = e->h;
        f->megapixels += (double)e->w * e->h / 1e6;
        f->bytes += (double)e->w * e->h * f->c * f->depth;
    }
}

static void print_json(const char *dir, const dc_imageset_scan *sc, const folder_summary *f, int patch)
{
    json_writer w;
    json_begin(&w, stdout);
    json_object(&w, NULL);
    json_string(&w, "folder", dir);
    json_uint(&w, "image_files", f->images);
    json_uint(&w, "usable", f->usable);
    json_object(&w, "formats");
    json_uint(&w, "png", f->png);
    json_uint(&w, "jpeg", f->jpeg);
    json_end(&w);
    json_object(&w, "bit_depths");
    json_uint(&w, "8", f->bits8);
    json_uint(&w, "16", f->bits16);
    json_end(&w);
    json_object(&w, "channels");
    json_uint(&w, "gray", f->gray);
    json_uint(&w, "colour", f->colour);
    json_end(&w);
    if (f->usable) {
        json_object(&w, "smallest");
        json_int(&w, "w", f->min_w);
        json_int(&w, "h", f->min_h);
        json_end(&w);
        json_object(&w, "largest");
        json_int(&w, "w", f->max_w);
        json_int(&w, "h", f->max_h);
        json_end(&w);
    }
    json_number(&w, "megapixels", f->megapixels);
    json_int(&w, "train_channels", f->c);
    json_string(&w, "train_storage", f->depth == 2 ? "uint16" : "uint8");
    json_number(&w, "host_bytes", f->bytes);
    json_int(&w, "patch", patch);
    json_uint(&w, "other_files", sc->other_files);
    json_array(&w, "skipped");
    for (size_t i = 0; i < sc->n; i++) {
        const dc_imageset_entry *e = &sc->entries[i];
        int small = !e->skip && (e->w < patch || e->h < patch);
        if (!e->skip && !small) continue;
        json_object(&w, NULL);
        json_string(&w, "file", e->rel);
        json_string(&w, "reason", e->skip ? e->skip : "smaller than the patch");
        json_end(&w);
    }
    json_end(&w);
    json_end(&w);
}

static void print_text(const char *dir, const dc_imageset_scan *sc, const folder_summary *f, int patch)
{
    printf("%s: %zu image files (%zu PNG, %zu JPEG readable), %zu other files\n", dir, f->images, f->png, f->jpeg,
           sc->other_files);
    printf("  bit depth: %zu 8-bit, %zu 16-bit; channels: %zu gray, %zu colour\n", f->bits8, f->bits16, f->gray,
           f->colour);
    if (f->usable)
        printf("  %zu usable for %dx%d patches: sizes %dx%d to %dx%d, %.2f megapixels\n", f->usable, patch, patch,
               f->min_w, f->min_h, f->max_w, f->max_h, f->megapixels);
    printf("  training stores them as %s with %d channel%s: %.1f MiB of host memory (--max-data-mb, default %d)\n",
           f->depth == 2 ? "uint16" : "uint8", f->c, f->c == 1 ? "" : "s", f->bytes / 1048576.0,
           DC_IMAGESET_DEFAULT_MAX_MB);
    if (f->corrupt + f->small) printf("  %zu skipped:\n", f->corrupt + f->small);
    for (size_t i = 0; i < sc->n; i++) {
        const dc_imageset_entry *e = &sc->entries[i];
        if (e->skip) printf("    %s\n", e->skip); /* the reason names the file */
        else if (e->w < patch || e->h < patch)
            printf("    %s: %dx%d, smaller than the %dx%d patch\n", e->rel, e->w, e->h, patch, patch);
    }
}

int cmd_data(int argc, char **argv)
{
    int strict = 0, as_json = 0, channels = 0, patch = DC_RUN_DEFAULT_PATCH;
    arg_opt opts[] = {
        {"channels", ARG_INT, &channels, "C", "count memory for 1 (gray) or 3 (colour) channels; 0: as training "
                                              "chooses (3 when any image is colour)", 0, 3, 0},
        {"patch", ARG_INT, &patch, "N", "count images smaller than N x N as skipped (training's --patch)", 1, 4096, 0},
        {"strict", ARG_FLAG, &strict, NULL, "stop at the first unreadable image", 1, 0, 0},
        {"json", ARG_FLAG, &as_json, NULL, "print the summary as one JSON document", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("data", opts, argc, argv, 1, pos, 1, &npos, "DIR [options]");
    if (r) return r == 1 ? 0 : r;
    if (npos != 1) {
        fprintf(stderr, "dae-cl data: give one folder (see dae-cl data --help)\n");
        return 2;
    }
    if (channels == 2) {
        fprintf(stderr, "dae-cl data: --channels 2: expected 1 or 3\n");
        return 2;
    }
    dc_imageset_scan sc;
    dc_status s = dc_imageset_scan_dir(pos[0], strict, &sc);
    if (s) return cli_report("data", s);
    folder_summary f;
    summarise(&sc, channels, patch, &f);
    if (as_json) print_json(pos[0], &sc, &f, patch);
    else print_text(pos[0], &sc, &f, patch);
    dc_imageset_scan_free(&sc);
    if (f.usable == 0) {
        fprintf(stderr, "dae-cl data: %s: no usable image\n", pos[0]);
        return 1;
    }
    return 0;
}

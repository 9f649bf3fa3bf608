/* dae-cl image folders: every PNG and JPEG under a directory, held in host memory for training.
 *
 * A folder is searched recursively (entries whose names start with '.' are left out; symbolic
 * links are followed to regular files and directories). A file is an image by its signature
 * (PNG 89 50 4E 47, JPEG FF D8 FF), never by its name; a file named .png, .jpg or .jpeg without
 * the signature counts as corrupt, any other file is ignored (counted as "other files"). The
 * order is the byte order of the relative paths ("a/b.png" < "a/c.png" < "b.png"), so a folder
 * gives the same set on every machine.
 *
 * Memory: images are stored as read, uint8, or uint16 when any usable image has 16-bit samples
 * (8-bit images are then widened exactly: v * 257), c planes of h*w per image. The total must
 * fit max_bytes (the CLI's --max-data-mb, default DC_IMAGESET_DEFAULT_MAX_MB): past it the load
 * is refused before any pixel is read, naming the flag. Nothing is streamed from disk.
 *
 * Channels: c = 1 or 3; 0 chooses 3 when any usable image is colour, else 1. Colour becomes
 * gray by Rec.601 luma (0.299 R + 0.587 G + 0.114 B), gray becomes colour by replication.
 * Alpha is ignored.
 *
 * Bad files: a file that cannot be read or decoded is skipped with its reason in the entry list
 * (the caller reports each once by name and the count at the end); with strict the load stops at
 * the first with its error. Images smaller than min_side in either dimension (the patch size)
 * are skipped and counted, never padded. No usable image left is an error naming the folder
 * (DC_ERR_FORMAT). */
#ifndef DAECL_IMAGESET_H
#define DAECL_IMAGESET_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/dataset.h"
#include "daecl/status.h"

#define DC_IMAGESET_DEFAULT_MAX_MB 2048

typedef enum dc_imageset_format { DC_IMAGESET_PNG = 0, DC_IMAGESET_JPEG = 1 } dc_imageset_format;

typedef struct dc_imageset_entry {
    char *rel;                 /* path relative to the folder */
    dc_imageset_format format;
    int w, h, c, bit_depth;    /* as stored: c 1 (gray) or 3 (colour), bit_depth 8 or 16 */
    char *skip;                /* NULL: usable; else why it is left out (one line) */
    int corrupt;               /* skip is a read/decode failure (not too small, not the split) */
} dc_imageset_entry;

/* What a folder holds (dc_imageset_scan): every image-like file, probed. */
typedef struct dc_imageset_scan {
    dc_imageset_entry *entries; /* sorted by rel */
    size_t n;
    size_t other_files;         /* files that are not images */
} dc_imageset_scan;

typedef struct dc_imageset_options {
    int channels;        /* 1, 3, or 0: choose (see above) */
    size_t max_bytes;    /* memory bound for the pixels (0: DC_IMAGESET_DEFAULT_MAX_MB MiB) */
    int strict;          /* stop at the first bad file */
    int min_side;        /* skip images narrower or lower than this (0: none) */
    double val_split;    /* fraction held out by path hash (dc_imageset_in_validation) */
    int part;            /* 0: every image; 1: the training side of val_split; 2: the validation side */
} dc_imageset_options;

typedef struct dc_imageset {
    dc_imageset_scan scan;  /* every file found, with skip reasons */
    size_t n;               /* usable images */
    uint32_t *entry;        /* n: index into scan.entries of each usable image */
    int *w, *h;             /* n sizes */
    size_t *offset;         /* n: first value of each image in pixels (in values, not bytes) */
    uint64_t *cum_area;     /* n: sum of w*h over images 0..i (patch sampling) */
    void *pixels;           /* uint8_t or uint16_t values, c planes of h*w per image */
    int c, depth;           /* planes, bytes per value (1 or 2) */
    size_t bytes;           /* of pixels */
    size_t corrupt, too_small, held_out; /* files left out and why */
} dc_imageset;

/* Walk dir and probe every image (header only where the format allows). With strict, the first
 * bad file is the error. A missing or unreadable dir is DC_ERR_IO naming it. */
dc_status dc_imageset_scan_dir(const char *dir, int strict, dc_imageset_scan *out);
void dc_imageset_scan_free(dc_imageset_scan *s);

/* The channels a set of this scan would have with channels = 0 (3 when any usable image is
 * colour), and the bytes per value (2 when any is 16-bit). */
void dc_imageset_scan_layout(const dc_imageset_scan *s, int *c, int *depth);

/* 1 when the relative path falls in the validation fraction: a 64-bit FNV-1a hash of rel mixed
 * by splitmix64, as a uniform u in [0,1), u < fraction. */
int dc_imageset_in_validation(const char *rel, double fraction);

/* Scan and load (see above). *out is zeroed on failure. */
dc_status dc_imageset_load(const char *dir, const dc_imageset_options *o, dc_imageset *out);
void dc_imageset_free(dc_imageset *s);

/* The centre size x size crop of every image (validation), as a dataset of c planes with the
 * set's depth; labels NULL. Every image is at least size in both dimensions (min_side). */
dc_status dc_imageset_center_crops(const dc_imageset *s, int size, dc_dataset *out);

/* Load a folder (o's channels, min_side = size) and keep only its centre crops: what
 * evaluation on a folder scores. *skipped (may be NULL) gets the files left out. */
dc_status dc_imageset_load_crops(const char *dir, const dc_imageset_options *o, int size, dc_dataset *out,
                                 size_t *skipped);

#endif

/* Denoise a PGM (gray) or PPM (RGB) image with a trained dae-cl model, through the C library.
 *
 *   cc denoise.c $(pkg-config --cflags --libs daecl) -o denoise
 *   ./denoise runs/demo/model.dcl noisy.pgm clean.pgm
 *
 * Binary PGM/PPM (P5/P6) at 8 bits (maxval <= 255) or 16 bits (maxval 65535, big-endian); the
 * output has the input's format and depth. An RGB image is denoised channel by channel. */
#include <daecl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pnm {
    int w, h, channels, maxval;
    unsigned char *data; /* as in the file: 1 or 2 bytes per sample, big-endian */
} pnm;

static int read_pnm(const char *path, pnm *img)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    char magic[3] = {0};
    int ok = fscanf(f, "%2s %d %d %d", magic, &img->w, &img->h, &img->maxval) == 4 && fgetc(f) != EOF &&
             (strcmp(magic, "P5") == 0 || strcmp(magic, "P6") == 0) && img->w > 0 && img->h > 0 &&
             img->maxval > 0 && img->maxval <= 65535 && (img->maxval <= 255 || img->maxval == 65535);
    if (ok) {
        img->channels = magic[1] == '6' ? 3 : 1;
        size_t n = (size_t)img->w * img->h * img->channels * (img->maxval > 255 ? 2 : 1);
        img->data = malloc(n);
        ok = img->data && fread(img->data, 1, n, f) == n;
    }
    fclose(f);
    if (!ok) fprintf(stderr, "%s: not a binary PGM/PPM of 8 bits or of 16 bits with maxval 65535\n", path);
    return ok ? 0 : -1;
}

static int write_pnm(const char *path, const pnm *img)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t n = (size_t)img->w * img->h * img->channels * (img->maxval > 255 ? 2 : 1);
    fprintf(f, "P%c\n%d %d\n%d\n", img->channels == 3 ? '6' : '5', img->w, img->h, img->maxval);
    int ok = fwrite(img->data, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    if (!ok) perror(path);
    return ok ? 0 : -1;
}

/* 16-bit PNM samples are big-endian; the library takes host order. */
static void swap16(pnm *img)
{
    if (img->maxval <= 255) return;
    size_t n = (size_t)img->w * img->h * img->channels;
    for (size_t i = 0; i < n; i++) {
        unsigned char t = img->data[2 * i];
        img->data[2 * i] = img->data[2 * i + 1];
        img->data[2 * i + 1] = t;
    }
}

static int is_big_endian(void)
{
    const unsigned short one = 1;
    return *(const unsigned char *)&one == 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.dcl IN.pgm|IN.ppm OUT\n", argv[0]);
        return 2;
    }
    if (strcmp(daecl_version(), DAECL_VERSION_STRING) != 0)
        fprintf(stderr, "note: built with daecl.h %s, running libdaecl %s\n", DAECL_VERSION_STRING, daecl_version());
    pnm img = {0};
    if (read_pnm(argv[2], &img)) return 1;
    /* 8-bit images with a maxval other than 255 are not scaled here: keep the example short. */
    if (img.maxval < 255) fprintf(stderr, "note: maxval %d treated as 255\n", img.maxval);
    if (!is_big_endian()) swap16(&img);

    daecl_device *dev = NULL;
    daecl_model *model = NULL;
    daecl_image buf = {img.data, img.w, img.h, img.channels, img.maxval > 255 ? DAECL_U16 : DAECL_U8, 0};
    daecl_status s = daecl_device_open(-1, -1, &dev); /* DAECL_DEVICE=P:D, else the first GPU, ..., CPU */
    if (!s) s = daecl_model_load(dev, argv[1], &model);
    if (!s) s = daecl_denoise(model, &buf, &buf, 0); /* in place */
    if (s) fprintf(stderr, "denoise: %s\n", daecl_last_error());
    daecl_model_free(model);
    daecl_device_close(dev);
    if (!is_big_endian()) swap16(&img);
    int r = s ? 1 : write_pnm(argv[3], &img) ? 1 : 0;
    free(img.data);
    return r;
}

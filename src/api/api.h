/* What the public API's modules share: the handles behind daecl.h's opaque types and the
 * status conversion. */
#ifndef DAECL_API_INTERNAL_H
#define DAECL_API_INTERNAL_H

#include <daecl.h>

#include "daecl/checkpoint.h"
#include "daecl/denoise.h"
#include "daecl/device.h"
#include "daecl/eval.h"
#include "daecl/status.h"

struct daecl_device {
    dc_device *dc;
};

struct daecl_model {
    daecl_device *dev;
    char *path;
    dc_checkpoint ck;  /* the loaded file: configuration, seed, noise (parameters dropped) */
    dc_model *model;   /* batch 1 at the training size; parameters set */
    dc_denoiser *den;  /* made on first use, remade when the tile changes */
    int den_tile;
};

/* Internal status to public: the codes are the same numbers (checked in api_device.c). */
static inline daecl_status api_status(dc_status s) { return (daecl_status)s; }

/* DC_TRY for functions returning a daecl_status (either kind of status may be tried). */
#define API_TRY(expr)                                   \
    do {                                                \
        int api_try_s_ = (int)(expr);                   \
        if (api_try_s_) return (daecl_status)api_try_s_; \
    } while (0)

/* The public copy of an evaluation's figures. */
void api_eval_result(const dc_eval_result *r, daecl_eval_result *out);

/* Record "name: must not be NULL" style argument failures. */
daecl_status api_null(const char *what);

#endif

/* Argument checks shared by the two conv2d implementations (conv2d.c, conv_gemm.c). */
#ifndef DAECL_NN_CONV_CHECKS_H
#define DAECL_NN_CONV_CHECKS_H

#include <limits.h>

#include "daecl/ops.h"

static inline dc_status check_k_act(int k, dc_act act, const char *op)
{
    if (k < 1 || k % 2 == 0 || k > DC_CONV_MAX_K)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: kernel size %d: must be odd, 1..%d", op, k,
                       DC_CONV_MAX_K);
    if ((unsigned)act >= DC_ACT_COUNT)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: invalid activation %d", op, (int)act);
    return DC_OK;
}

static inline dc_status check_params(cl_mem params, size_t w_off, size_t b_off, size_t nw, int cout,
                                     const char *op, const char *name)
{
    if (!params) return dc_fail(DC_ERR_INVALID_ARG, "%s: %s buffer is missing", op, name);
    if (w_off + nw > UINT_MAX || b_off + (size_t)cout > UINT_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: %s offsets past 2^32 floats", op, name);
    return DC_OK;
}

#endif

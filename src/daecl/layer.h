/* The layer registry: one descriptor per layer kind (src/nn/layers.c) that says everything the
 * rest of the program needs about it: its spec token and options (parsed and formatted
 * generically by spec.c from `options`), a help line, a description for the model table, the
 * shape rule (output shape, parameter count and FLOPs), the tiling rule (how far a window edge
 * reaches through it, and its pooling depth: dc_denoise_geometry), parameter initialisation,
 * forward, backward and export (named parameters and ONNX nodes). Code outside the registry
 * never switches on the kind; it calls the descriptor. Adding a kind = one descriptor in
 * layers.c + its op (ops.h, src/nn, cl/) + its test hook (tests/ref_model.c), which the
 * registry test demands for every kind, as it demands the export hook. */
#ifndef DAECL_LAYER_H
#define DAECL_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/ops.h"
#include "daecl/tensor.h"

struct dc_layer_spec;
struct dc_layer_state;
struct dc_arch;
struct dc_export_layer;

/* Options a token takes after its kind, always in this order: "conv:32:tanh:k5@name". */
enum {
    DC_LAYER_OPT_CHANNELS = 1u, /* ":C"    required: output channels (filters), 1 to 4096 */
    DC_LAYER_OPT_ACT = 2u,      /* "[:ACT]" optional activation, relu by default; a kind with
                                 * it may end the model (its activation is the model's head) */
    DC_LAYER_OPT_K = 4u,        /* "[:kK]"  optional odd kernel size 1 to 31, 3 by default */
    DC_LAYER_OPT_REF = 8u,      /* ":NAME"  required: an earlier layer's @NAME (a merge) */
};

/* One layer's work, resolved by the model: views of n images. */
typedef struct dc_layer_run {
    dc_device *dev;
    const struct dc_layer_spec *spec;
    const struct dc_layer_state *state; /* parameter offsets */
    cl_mem params, grads;
    const dc_tensor *in;
    dc_tensor *out;
    const dc_tensor *ref_out; /* merges: the named layer's output */
    dc_tensor *ref_grad;      /* merges: receives the named layer's share of the gradient
                               * (not for kinds with ref_share_is_dy) */
    dc_act act;               /* activation to fuse: the last layer's is left to the head */
    int pool_folded;          /* first layer whose backward folds in the max pool after it
                               * (dc_layer_kind.backward_pooled), forward and backward */
    int up_folded;            /* `in` is the input of the 2x upsampling before this layer, which
                               * reads it upsampled in place: inference (dc_layer_kind.up_foldable),
                               * or training with up_grad (dc_layer_kind.up_grad_in_place) */
    int pool_out;             /* `out` is the output of the 2x2 max pool after this layer, which
                               * this forward writes: inference (dc_layer_kind.pool_out_foldable),
                               * or with pool_folded in training, with pool_arg
                               * (dc_layer_kind.pooled_out_trainable) */
    int up_grad;              /* training: `in` is a 2x upsampling's output, and the backward's
                               * dx that upsampling's input gradient (dc_layer_kind.up_grad_foldable) */
    const dc_tensor *up_src;  /* with up_grad: that upsampling's input (`in` too with up_folded),
                               * which the forward reads upsampled in place where it can */
    dc_tensor *pool_arg;      /* training with pool_out: which pixel of each window the pool
                               * took (the pool's shape), written by the forward, read by
                               * backward_pooled */
    const dc_tensor *dx_add;  /* backward of a kind with backward_adds: a skip path's share of
                               * the input gradient, which that backward adds into dx (NULL:
                               * none) */
} dc_layer_run;

/* Tiling geometry carried through the layers in order (see daecl/denoise.h). */
typedef struct dc_reach {
    int depth;           /* pools minus upsamplings so far */
    int max_depth;       /* deepest pooling level reached: align = 2^max_depth */
    int reach;           /* pixels from a window edge where the running output may differ from
                          * the whole image's, at the running resolution */
    const int *reach_at; /* reach after each earlier layer (for merges) */
} dc_reach;

typedef struct dc_layer_kind {
    const char *token; /* spec token, e.g. "conv" */
    const char *help;  /* one line for `dae-cl model --help` */
    unsigned options;  /* DC_LAYER_OPT_* */
    /* The layer's row in the model table, e.g. "conv 3x3, 32 relu". */
    void (*describe)(const struct dc_layer_spec *L, const struct dc_arch *a, char *buf, size_t len);
    /* Output shape for a c x h x w input (ref: the named layer's state for merges, else NULL):
     * sets c, h, w, flops, nparams and b_off (bias offset relative to the layer's weights). */
    dc_status (*shape)(const struct dc_layer_spec *L, int c, int h, int w,
                       const struct dc_layer_state *ref, struct dc_layer_state *out);
    /* Advance the tiling geometry through this layer. */
    void (*reach)(const struct dc_layer_spec *L, dc_reach *r);
    /* Initial parameters (the layer's nparams floats at `params`), drawing from rng with
     * dc_layer_uniform; NULL for kinds without parameters (zero). */
    void (*init)(const struct dc_layer_spec *L, int in_c, const struct dc_layer_state *S,
                 float *params, uint64_t *rng);
    dc_status (*forward)(dc_layer_run *r);
    /* dy: gradient of the output (may be overwritten); dx: of the input, NULL for the first
     * layer (skip it). Parameter gradients are written, not accumulated. */
    dc_status (*backward)(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx);
    /* Its parameters and standard ONNX nodes (daecl/export.h); NULL: cannot be exported. */
    dc_status (*export_onnx)(struct dc_export_layer *x);
    /* Optional (NULL: none), for a model's first layer when a 2x2 max pool follows: whether
     * this layer can fold the pool's backward into its own on dev for a c x h x w input, and
     * that backward, from the pool's output gradient (and skip, the share of its output's
     * gradient from a merge that reads it, or NULL). The model then skips the pool's backward,
     * never allocates this layer's output gradient, and sets dc_layer_run.pool_folded for this
     * layer's forward and backward. */
    int (*pool_foldable)(dc_device *dev, const struct dc_layer_spec *L, int c, int h, int w);
    dc_status (*backward_pooled)(dc_layer_run *r, const dc_tensor *dpool, const dc_tensor *skip);
    /* Optional (NULL: none), with pool_foldable: whether the training forward can write only
     * the pool's output and each window's argmax (dc_layer_run.pool_out with pool_folded,
     * pool_arg), which backward_pooled then reads instead of this layer's output, where no
     * merge reads that. The model then skips the pool's forward and allocates the argmax
     * (a quarter of this layer's output) instead of the output. */
    int (*pooled_out_trainable)(dc_device *dev, const struct dc_layer_spec *L, int c, int h, int w);
    /* 1 for the 2x2 max pool, the kind that backward_pooled folds in. */
    int is_maxpool2;
    /* 1: backward adds dc_layer_run.dx_add into dx in its own pass, where a merge also reads
     * this layer's input (the model then runs no axpy after it: one pass over dx less). */
    int backward_adds;
    /* Optional (NULL: none), for an inference model: whether this layer's forward, on dev for a
     * c x h x w input, can read that input as the 2x nearest upsampling of its c x h/2 x w/2
     * source in place (dc_layer_run.up_folded). The model then skips the upsampling's forward
     * and never allocates its output. */
    int (*up_foldable)(dc_device *dev, const struct dc_layer_spec *L, int c, int h, int w);
    /* 1 for the 2x nearest upsampling, the kind that up_foldable folds in. */
    int is_upsample2;
    /* Optional (NULL: none), for a training model: whether this layer's backward, on dev for a
     * c x h x w input that is a 2x upsampling's output, can write that upsampling's input
     * gradient (summed over 2x2 windows) instead of its own input gradient
     * (dc_layer_run.up_grad, forward and backward). The model then skips the upsampling's
     * backward and never allocates its gradient. */
    int (*up_grad_foldable)(dc_device *dev, const struct dc_layer_spec *L, int c, int h, int w);
    /* Optional (NULL: none), with up_grad_foldable: whether this layer's training forward and
     * weight gradient can also read that upsampling's input in place (dc_layer_run.up_folded
     * with up_grad). The model then skips the upsampling's forward and never allocates its
     * output either. */
    int (*up_grad_in_place)(dc_device *dev, const struct dc_layer_spec *L, int c, int h, int w);
    /* Optional (NULL: none), for an inference model: whether this layer's forward, on dev for a
     * c x h x w input, can write the 2x2 max pool of its output (is_maxpool2) instead of the
     * output (dc_layer_run.pool_out). The model then skips the pool's forward and never
     * allocates this layer's output. */
    int (*pool_out_foldable)(dc_device *dev, const struct dc_layer_spec *L, int c, int h, int w);
    /* 1 for a merge whose named layer's share of the gradient is this layer's output gradient
     * unchanged (add): its backward leaves ref_grad alone, and the model reads the share from
     * this layer's gradient in place (no copy, no skip buffer). */
    int ref_share_is_dy;
    /* 1 when backward only reads dy (never overwrites it): the layer before a merge with
     * ref_share_is_dy then reads the merge's gradient directly, and the merge copies nothing. */
    int backward_keeps_dy;
} dc_layer_kind;

/* The registry, in a fixed order. */
int dc_layer_kind_count(void);
const dc_layer_kind *dc_layer_kind_at(int index);
/* The kind with this token (case-sensitive), or NULL. */
const dc_layer_kind *dc_layer_kind_find(const char *token);
/* The token's grammar from its options, e.g. "conv:C[:ACT][:kK][@NAME]". */
void dc_layer_grammar(const dc_layer_kind *kind, char *buf, size_t len);
/* The tokens of the kinds that have all of `options` (0: every kind), e.g. "conv, convT". */
void dc_layer_kind_list(unsigned options, char *buf, size_t len);
/* Uniform in [-1, 1) from a splitmix64 state: the initialisers' generator. */
double dc_layer_uniform(uint64_t *rng);

#endif

/* Models: an architecture spec string parsed into a small graph of layers, and the device
 * state to run it (one flat parameter buffer, one flat gradient buffer, activations per layer).
 *
 * Spec grammar (comma-separated layers, applied in order to an image of in_c channels); the
 * layer kinds are the registry's (daecl/layer.h, src/nn/layers.c; `dae-cl model --help` lists
 * them):
 *   conv:N[:ACT][:kK][@NAME]   k×k conv (K odd, default 3), stride 1, "same", N filters; N may
 *                              be the letter C: as many as the model's input channels (so one
 *                              spec serves gray and colour images);
 *                              ACT relu (default) | sigmoid | tanh | leaky | linear
 *   convT:C[:ACT][:kK][@NAME]  transposed conv, stride 2 ("same": doubles H and W)
 *   pool[@NAME]                2×2 max pool, stride 2 ("valid": odd sizes floor, as Keras)
 *   avgpool[@NAME]             2×2 average pool, stride 2 ("valid", as pool)
 *   up[@NAME]                  2× nearest upsampling
 *   add:NAME / cat:NAME        merge the running tensor with layer NAME's output by addition
 *                              or channel concatenation (skip connections)
 *   residual                   (last token, not a layer) the residual head: the layers predict
 *                              the noise, the model's output is input − prediction; the last
 *                              layer must be linear
 * Presets: classic (the Keras-blog denoiser), keras (Conv2DTranspose decoder), unet (classic
 * plus additive skips at 14×14 and 28×28), all ending in conv:C:sigmoid (28,353 parameters at
 * one channel); dncnn (the DnCNN family without batch norm: conv:W + (D-2)×conv:W +
 * conv:C:linear, residual), its depth D and width W chosen by dc_arch_parse_with.
 *
 * The output head: the last layer (a kind with an activation) keeps its pre-activation output
 * (the logits) and its activation is the model's head, applied by dc_model_predict and, fused
 * with the loss, by dc_model_loss: BCE is computed from the logits (stable) and needs a sigmoid
 * head; MSE and L1 score the head's output, with the gradient through the head. */
#ifndef DAECL_MODEL_H
#define DAECL_MODEL_H

#include <stdint.h>
#include <stdio.h>

#include "daecl/layer.h"
#include "daecl/loss.h"
#include "daecl/metrics.h"
#include "daecl/ops.h"
#include "daecl/tensor.h"

#define DC_MAX_LAYERS 64
#define DC_SPEC_MAX 1024

typedef struct dc_layer_spec {
    const dc_layer_kind *kind; /* its registry descriptor */
    int channels; /* filters (DC_LAYER_OPT_CHANNELS); from_input: the model's in_c once bound */
    int from_input; /* spelled "C": as many filters as the model's input channels */
    int k;        /* kernel size (DC_LAYER_OPT_K) */
    dc_act act;   /* activation (DC_LAYER_OPT_ACT), else none */
    char name[32]; /* "@NAME" label, "" if none */
    int ref;       /* merges: index of the merged layer, else -1 */
} dc_layer_spec;

typedef struct dc_arch {
    int nlayers;
    int residual; /* output = input − the layers' output (the "residual" token) */
    dc_layer_spec layers[DC_MAX_LAYERS];
} dc_arch;

/* The dncnn preset's default size: measured on a 2-core CPU (README, "Models for photos"). */
#define DC_DNCNN_DEPTH 8
#define DC_DNCNN_WIDTH 32
#define DC_DNCNN_MAX_DEPTH 63 /* DC_MAX_LAYERS - 1 */

/* What the training flags change in a preset or spec: 0 keeps it. */
typedef struct dc_arch_options {
    int depth, width; /* dncnn only: conv layers (2 to DC_DNCNN_MAX_DEPTH) and their filters */
    int residual;     /* 1: the residual head, the last layer made linear */
} dc_arch_options;

/* Parse a preset name or a spec. Errors point at the offending token:
 * "--arch: token 3 'conv:x': channel count must be a positive integer". */
dc_status dc_arch_parse(const char *spec, dc_arch *out);
/* The same with options (NULL: none); depth or width on anything but dncnn is refused. */
dc_status dc_arch_parse_with(const char *spec, const dc_arch_options *opt, dc_arch *out);
/* The canonical spec string (presets expanded), as stored in checkpoints. */
void dc_arch_format(const dc_arch *a, char *buf, size_t len);
/* The preset's spec string, or NULL (dncnn: its default size). */
const char *dc_arch_preset(const char *name);
/* The layers' filter counts for a model of in_c input channels: every "C" becomes in_c (the
 * planner and the model do it; the canonical spec keeps the letter). */
void dc_arch_bind(dc_arch *a, int in_c);

typedef struct dc_layer_state {
    int c, h, w;          /* output shape per image */
    size_t w_off, b_off;  /* parameter offsets of weights and bias (layers with parameters) */
    size_t nparams;
    double flops;         /* forward FLOPs per image */
    dc_tensor out, grad;  /* output and dL/d(output), allocated for the model's batch */
    dc_tensor skip_grad;  /* gradient arriving through a merge that references this layer */
    dc_tensor pool_arg;   /* training, pool_out: each 2x2 window's argmax (the pool's shape) */
    int merged_by;        /* index of the merge layer that references this output, or -1 */
} dc_layer_state;

typedef struct dc_model {
    dc_device *dev;
    dc_arch arch;
    int in_c, in_h, in_w, batch;
    dc_act head;          /* the output head: the last layer's activation */
    int residual;         /* arch.residual: output = input − head(logits) */
    dc_tensor input;      /* the residual head: dc_model_forward's x, read by dc_model_loss */
    size_t nparams;
    cl_mem params, grads; /* flat; grads also used as the optimizer's gradient input */
    int owns_params;
    int pool_folded;      /* training: layer 0 folds the max pool after it into its backward
                           * (dc_layer_kind.backward_pooled; layer 0 has no gradient tensor) */
    int up_grad[DC_MAX_LAYERS]; /* training: layer i's backward writes the input gradient of the
                           * 2x upsampling before it (dc_layer_kind.up_grad_foldable): the
                           * upsampling's backward runs nothing and it has no gradient tensor */
    int up_folded[DC_MAX_LAYERS]; /* layer i reads the 2x upsampling before it in place
                           * (inference: dc_layer_kind.up_foldable; training, with up_grad:
                           * up_grad_in_place): the upsampling runs nothing and has no output
                           * tensor */
    int pool_out[DC_MAX_LAYERS]; /* layer i writes the output of the 2x2 max pool after it: the
                           * pool runs nothing and layer i has no output tensor. Inference:
                           * dc_layer_kind.pool_out_foldable; training: layer 0 with pool_folded
                           * where dc_layer_kind.pooled_out_trainable (it has pool_arg) */
    dc_layer_state layers[DC_MAX_LAYERS];
} dc_model;

/* Shapes only (no device): parameter count, FLOPs, per-layer output shapes; checks that every
 * layer fits (merge shapes agree, sizes stay positive) and that the output has the input's
 * shape (a denoiser). */
dc_status dc_model_plan(const dc_arch *arch, int in_c, int h, int w, dc_layer_state *layers,
                        size_t *nparams, double *flops);

/* Floats of activation buffers per image of an inference model on dev with these planned
 * layers (in_c input channels): outputs whose lifetimes do not overlap share a buffer, and an
 * upsampling that the next layer reads in place, or a layer that writes the max pool after it,
 * has none (dc_model_create_shared). */
size_t dc_model_inference_floats(dc_device *dev, const dc_arch *arch, int in_c,
                                 const dc_layer_state *layers);

/* Build the model for images of in_c×h×w and up to `batch` images a step; parameters zero
 * (call dc_model_init_params or load a checkpoint). */
dc_status dc_model_create(dc_device *dev, const dc_arch *arch, int in_c, int h, int w, int batch,
                          dc_model **out);
/* Another model of the same architecture for other sizes that shares `src`'s parameters
 * (inference on user images of any size). */
dc_status dc_model_create_shared(const dc_model *src, int h, int w, int batch, dc_model **out);
void dc_model_destroy(dc_model *m);

/* Glorot-uniform weights and zero biases (as Keras), from the seed. Blocking. */
dc_status dc_model_init_params(dc_model *m, uint64_t seed);

/* The model's outputs for n ≤ batch images, head applied (e.g. sigmoid; the residual head:
 * x − logits): *y is a view of them,
 * valid until the next call. They overwrite the logits (no extra memory): run
 * dc_model_forward again before dc_model_loss. Enqueued only. */
dc_status dc_model_predict(dc_model *m, const dc_tensor *x, int n, dc_tensor *y);

/* Whether this model can be trained/evaluated with `loss` (dc_loss_check on its head): a
 * one-line message otherwise, e.g. BCE on a tanh head. */
dc_status dc_model_check_loss(const dc_model *m, dc_loss_kind loss);

/* Training: forward n ≤ batch images (the last layer's output stays pre-head: the logits);
 * then dc_model_loss scores the head's output against the target y and, when grad, writes
 * dL/dlogits; then dc_model_backward writes every parameter gradient into m->grads.
 * dc_model_loss's out (may be NULL) receives the head's output, acc/slot as dc_loss_compute.
 * A residual model's loss reads forward's x again: keep it unchanged until then. Enqueued only. */
dc_status dc_model_forward(dc_model *m, const dc_tensor *x, int n);
dc_status dc_model_loss(dc_model *m, dc_loss_kind loss, const dc_tensor *y, int n, int grad,
                        dc_tensor *out, dc_accum *acc, int slot);
dc_status dc_model_backward(dc_model *m, const dc_tensor *x, int n);
/* One layer of dc_model_forward / dc_model_backward (profiling): layer i's output; its backward
 * from its output's gradient: parameter gradients, and its input's gradient with the skip
 * path's share. Layer 1 of a pool_folded model does nothing: layer 0 runs its backward. */
dc_status dc_model_layer_forward(dc_model *m, const dc_tensor *x, int n, int i);
dc_status dc_model_layer_backward(dc_model *m, const dc_tensor *x, int n, int i);
/* Views of the last layer's pre-head output and its gradient for n images (tests). */
dc_tensor dc_model_logits(const dc_model *m, int n);
dc_tensor dc_model_logits_grad(const dc_model *m, int n);

/* Host copies of all parameters (nparams floats). Blocking. */
dc_status dc_model_get_params(const dc_model *m, float *host);
dc_status dc_model_set_params(dc_model *m, const float *host);

/* Print the layer table (index, layer, output shape, parameters) and totals. */
void dc_model_print(const dc_arch *arch, int in_c, int h, int w, FILE *out);

#endif

/* The test side of the layer registry (src/daecl/layer.h): for every layer kind, looked up by
 * its token, a double-precision reference forward and backward (built from tests/ref_layers.c),
 * an output-shape rule written independently of the registry's, and a small model around the
 * kind for the registry test. Then a host interpreter of whole models built from those hooks
 * (no switch on the kind), and a device-vs-reference comparison of a whole model's output,
 * loss and parameter gradient used by test_model and test_registry.
 *
 * A new layer kind without an entry here makes tests/test_registry.c fail. */
#ifndef DAECL_REF_MODEL_H
#define DAECL_REF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/loss.h"
#include "daecl/model.h"

/* One layer's data for its reference hook (arrays as in ref_layers.h, n images). */
typedef struct ref_layer_io {
    const dc_layer_spec *spec;
    int n, c, h, w;         /* input shape */
    int ref_c;              /* merges: channels of the named layer's output */
    const double *in, *ref_out;
    double *out;
    const double *wt, *b;   /* the layer's weights and bias (kinds with parameters) */
    double *dwt, *db;       /* backward: their gradients (written) */
    dc_act act;             /* activation to fuse (none for the last layer: the head) */
    double *dy;             /* backward: dL/d(output), may be overwritten */
    double *dx;             /* backward: dL/d(input), NULL to skip */
    double *ref_dx;         /* backward, merges: the named layer's share (written) */
} ref_layer_io;

typedef struct ref_kind {
    const char *token;
    void (*shape)(const dc_layer_spec *L, int c, int h, int w, int ref_c, int *oc, int *oh, int *ow);
    void (*forward)(const ref_layer_io *io);
    void (*backward)(const ref_layer_io *io);
    /* A small smooth (tanh) model that keeps the input size, with "%s" where a token of the kind
     * goes, and that token: for the geometry and gradient checks of test_registry. */
    const char *model, *sample;
} ref_kind;

/* The hooks of the kind with this token, or NULL. */
const ref_kind *ref_kind_find(const char *token);

typedef struct ref_model {
    dc_arch arch_bound; /* the arch with conv:C bound to c; arch points here */
    const dc_arch *arch;
    dc_layer_state plan[DC_MAX_LAYERS];
    size_t nparams;
    int n, c, h, w;
    const double *x;    /* the last forward's input: the residual head reads it */
    double *out[DC_MAX_LAYERS], *grad[DC_MAX_LAYERS], *skip[DC_MAX_LAYERS];
} ref_model;

/* Plans the model (dc_model_plan) for n images of 1 x h x w (ref_model_init_c: c x h x w); DC_OK
 * or the plan's error. */
dc_status ref_model_init(ref_model *r, const dc_arch *a, int n, int h, int w);
dc_status ref_model_init_c(ref_model *r, const dc_arch *a, int c, int n, int h, int w);
void ref_model_free(ref_model *r);
size_t ref_model_size(const ref_model *r, int layer);
/* Forward; returns the logits (the last layer's output before the head). */
const double *ref_model_forward(ref_model *r, const double *p, const double *x);
/* After forward: the mean loss of head(logits) against y over all elements (ref_loss_d); when
 * grad, dL/dlogits is written for ref_model_backward; head_out (may be NULL) gets head(logits).
 * The residual head: the output is x − logits, dL/dlogits = −dL/doutput. */
double ref_model_loss(ref_model *r, dc_loss_kind loss, const double *y, int grad, double *head_out);
/* After ref_model_loss with grad: every parameter's gradient into g (nparams). */
void ref_model_backward(ref_model *r, const double *p, const double *x, double *g);

/* One spec on the device against the reference, random parameters in [-0.5, 0.5] and images
 * in [0, 1] from rng. Errors are normwise (max |device - ref| / max |ref|) except the loss
 * (relative). fd: also check the reference gradient by central differences (fd_err; -1 when
 * not run; smooth models only). */
typedef struct ref_model_check {
    double fd_err, out_err, loss_err, grad_err, loss;
} ref_model_check;
dc_status ref_check_model(dc_device *dev, uint64_t *rng, const char *spec, int n, int h, int w,
                          dc_loss_kind loss, int fd, ref_model_check *out);
/* The same for images of c channels (out_err then also covers dc_model_predict's output). */
dc_status ref_check_model_c(dc_device *dev, uint64_t *rng, const char *spec, int c, int n, int h, int w,
                            dc_loss_kind loss, int fd, ref_model_check *out);

#endif

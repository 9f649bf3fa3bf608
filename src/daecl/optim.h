/* Optimizers: one kernel launch per step over the flat parameter buffer (cl/optim.cl).
 *
 * Update rules are those of tf.keras 2.x (the OptimizerV2 classes of TF 2.0-2.10, i.e. the
 * TF training_ops kernels they call), per parameter p with gradient g, step t = 1, 2, ...:
 *
 * SGD        momentum 0: p -= lr·g
 *            momentum μ > 0 (velocity v, starts 0): v = μ·v - lr·g;  p += v
 *            Nesterov:                              v = μ·v - lr·g;  p += μ·v - lr·g
 * Adam       m += (g - m)(1-β1);  v += (g² - v)(1-β2)
 *            lr_t = lr·sqrt(1-β2^t)/(1-β1^t);  p -= lr_t·m / (sqrt(v) + ε)
 *            ε is added to sqrt of the *uncorrected* v ("epsilon hat" of the Adam paper,
 *            §2 end), exactly as tf.keras (legacy and 2.11+) and Keras 1 do; PyTorch instead adds ε
 *            to sqrt(v/(1-β2^t)). lr_t is computed on the host in double.
 * Adadelta   a = ρ·a + (1-ρ)·g²;  u = g·sqrt(d + ε)/sqrt(a + ε);  d = ρ·d + (1-ρ)·u²;  p -= lr·u
 * RMSprop    s = ρ·s + (1-ρ)·g² (written s += (g² - s)(1-ρ))
 *            momentum 0 (default): p -= lr·g / (sqrt(s) + ε)
 *            momentum μ > 0 (m starts 0): m = μ·m + lr·g / sqrt(s + ε);  p -= m
 *            (both as tf.keras 2.x: note ε moves inside the sqrt with momentum, because that
 *            path calls TF's ResourceApplyRMSProp). Not centered.
 * Adagrad    a += g² (a starts at initial_accumulator);  p -= lr·g / (sqrt(a) + ε)
 *            (ResourceApplyAdagradV2; Keras 2.11+ puts ε inside the sqrt instead).
 *
 * Defaults (dc_optim_defaults), Keras:
 *   SGD      lr 0.01, momentum 0, nesterov off
 *   Adam     lr 0.001, β1 0.9, β2 0.999, ε 1e-7
 *   Adadelta lr 1.0, ρ 0.95, ε 1e-7 — the Keras 1 setting used by the original Keras
 *            denoising-autoencoder blog post (Keras 1 had ε 1e-8); tf.keras 2.x changed the
 *            default lr to 0.001, which trains far more slowly: pass --lr 0.001 for that.
 *   RMSprop  lr 0.001, ρ 0.9, momentum 0, ε 1e-7
 *   Adagrad  lr 0.01, initial accumulator 0.1, ε 1e-7
 *
 * Optimizer state is one flat buffer of dc_optim_state_floats() floats holding up to two
 * arrays of nparams each, in this order: SGD [v], Adam [m, v], Adadelta [a, d],
 * RMSprop [s, m], Adagrad [a]. */
#ifndef DAECL_OPTIM_H
#define DAECL_OPTIM_H

#include <stddef.h>

#include "daecl/device.h"

typedef enum dc_optim_kind {
    DC_OPT_SGD = 0,
    DC_OPT_ADAM,
    DC_OPT_ADADELTA,
    DC_OPT_RMSPROP,
    DC_OPT_ADAGRAD,
    DC_OPT_COUNT
} dc_optim_kind;

typedef struct dc_optim_config {
    dc_optim_kind kind;
    float lr;
    float momentum;  /* SGD, RMSprop */
    int nesterov;    /* SGD, needs momentum > 0 */
    float beta1, beta2; /* Adam */
    float rho;       /* Adadelta, RMSprop */
    float eps;       /* Adam, Adadelta, RMSprop, Adagrad */
    float initial_accumulator; /* Adagrad */
} dc_optim_config;

/* "sgd", "adam", "adadelta", "rmsprop", "adagrad". */
const char *dc_optim_name(dc_optim_kind kind);
/* Case-insensitive name as above. */
dc_status dc_optim_parse(const char *s, dc_optim_kind *out);

/* Keras defaults for kind (all fields set; the ones kind does not use are 0). */
void dc_optim_defaults(dc_optim_kind kind, dc_optim_config *cfg);

/* Check the fields kind uses: lr > 0 and finite; 0 ≤ momentum, β1, β2, ρ < 1; eps > 0 and
 * finite; initial accumulator ≥ 0 and finite; nesterov needs momentum > 0; momentum only with
 * sgd/rmsprop, nesterov only with sgd. One-line DC_ERR_INVALID_ARG naming the flag
 * (--lr, --momentum, --nesterov, --beta1, --beta2, --rho, --eps, --initial-accumulator). */
dc_status dc_optim_validate(const dc_optim_config *cfg);

/* Floats of optimizer state for nparams parameters: SGD 1×, Adam 2×, Adadelta 2×, RMSprop 2×,
 * Adagrad 1× (SGD keeps its velocity array even at momentum 0, unused then). */
size_t dc_optim_state_floats(dc_optim_kind kind, size_t nparams);

/* Enqueue the initial state fill (zeros; Adagrad's accumulator = initial_accumulator). */
dc_status dc_optim_state_init(dc_device *dev, const dc_optim_config *cfg, cl_mem state,
                              size_t nparams);

/* Enqueue one update of params (in place) from grads; step is 1-based (Adam's bias correction).
 * params, grads, state start at offset 0 of their buffers. The config is validated. */
dc_status dc_optim_step(dc_device *dev, const dc_optim_config *cfg, cl_mem params, cl_mem grads,
                        cl_mem state, size_t nparams, long step);

#endif

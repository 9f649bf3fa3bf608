/* Optimizers: several steps on the device vs the closed-form tf.keras update in double on the
 * host (formulas in src/daecl/optim.h), on random parameters and fresh random gradients each
 * step; defaults, parsing, validation messages.
 *
 * Error measures (printed):
 *   params: max_i |p_dev - p_ref| / (|p_ref| + max_j |p_ref,j - p0,j|)   limit 1e-5
 *           (relative to the parameter, floored by the largest update: a parameter near 0 still
 *           carries the rounding of the O(update) values it passed through)
 *   update: max_i |Δ_dev - Δ_ref| / max_j |Δ_ref|, Δ = p - p0         limit 1e-4
 *           (float storage of p costs ~1e-7·|p| per step, hence the looser limit)
 *   state:  max_i |s_dev - s_ref| / max(|s_ref|, 0.1·max_j |s_ref|)   limit 1e-5
 *           (a state such as SGD's velocity μv - lr·g can cancel to ~0; its rounding is that of
 *           the largest terms, so near-zero elements are compared at 0.1 of the largest)
 * Parameters start in [-0.25, 0.25] (typical weights), gradients in [-1, 1] with some 0s. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/kernels.h"
#include "daecl/optim.h"
#include "daecl/tensor.h"
#include "test.h"

enum { NPARAMS = 1003, STEPS = 5 }; /* 1003 = 125·8 + 3: the float8 body and the scalar tail */

static uint64_t rng;
static dc_device *dev;
static double max_param_err, max_update_err, max_state_err;

/* One step of the reference on double arrays; s0, s1 as in optim.h's state layout. */
static void ref_step(const dc_optim_config *c, double *p, const double *g, double *s0, double *s1,
                     size_t n, long t)
{
    double lr = c->lr, mu = c->momentum, rho = c->rho, eps = c->eps;
    for (size_t i = 0; i < n; i++) {
        double gi = g[i];
        switch (c->kind) {
        case DC_OPT_SGD:
            if (mu > 0) {
                s0[i] = mu * s0[i] - lr * gi;
                p[i] += c->nesterov ? mu * s0[i] - lr * gi : s0[i];
            } else {
                p[i] -= lr * gi;
            }
            break;
        case DC_OPT_ADAM: {
            double b1 = c->beta1, b2 = c->beta2;
            s0[i] = b1 * s0[i] + (1 - b1) * gi;
            s1[i] = b2 * s1[i] + (1 - b2) * gi * gi;
            double lr_t = lr * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t));
            p[i] -= lr_t * s0[i] / (sqrt(s1[i]) + eps);
            break;
        }
        case DC_OPT_ADADELTA: {
            s0[i] = rho * s0[i] + (1 - rho) * gi * gi;
            double u = sqrt(s1[i] + eps) / sqrt(s0[i] + eps) * gi;
            p[i] -= lr * u;
            s1[i] = rho * s1[i] + (1 - rho) * u * u;
            break;
        }
        case DC_OPT_RMSPROP:
            s0[i] = rho * s0[i] + (1 - rho) * gi * gi;
            if (mu > 0) {
                s1[i] = mu * s1[i] + lr * gi / sqrt(s0[i] + eps);
                p[i] -= s1[i];
            } else {
                p[i] -= lr * gi / (sqrt(s0[i]) + eps);
            }
            break;
        case DC_OPT_ADAGRAD:
            s0[i] += gi * gi;
            p[i] -= lr * gi / (sqrt(s0[i]) + eps);
            break;
        default: break;
        }
    }
}

static double state_err(const float *dev_s, const double *ref, size_t n)
{
    double mx = 0, e = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
    double fl = mx > 0 ? 0.1 * mx : 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(dev_s[i] - ref[i]) / fmax(fabs(ref[i]), fl);
        if (!(d <= e)) e = d;
    }
    return e;
}

static dc_status write_buf(cl_mem b, const float *v, size_t n)
{
    DC_CL(clEnqueueWriteBuffer(dev->queue, b, CL_TRUE, 0, n * sizeof(float), v, 0, NULL, NULL), "write");
    return DC_OK;
}

static dc_status read_buf(cl_mem b, float *v, size_t n)
{
    DC_CL(clEnqueueReadBuffer(dev->queue, b, CL_TRUE, 0, n * sizeof(float), v, 0, NULL, NULL), "read");
    return DC_OK;
}

static void run_case(const dc_optim_config *cfg, const char *label)
{
    const size_t n = NPARAMS;
    size_t ns = dc_optim_state_floats(cfg->kind, n);
    float p[NPARAMS], g[NPARAMS], pd[NPARAMS], *sd = calloc(ns + 1, sizeof *sd);
    double p0[NPARAMS], pr[NPARAMS], gr[NPARAMS], s0[NPARAMS] = {0}, s1[NPARAMS] = {0};
    cl_mem bp = NULL, bg = NULL, bs = NULL;
    if (!sd) abort();
    CHECK_OK(dc_buffer_create(dev, n, "params", &bp));
    CHECK_OK(dc_buffer_create(dev, n, "grads", &bg));
    CHECK_OK(dc_buffer_create(dev, ns, "state", &bs));
    if (!bp || !bg || !bs) goto done;

    for (size_t i = 0; i < n; i++) {
        p[i] = (float)test_uniform(&rng, -0.25, 0.25);
        pr[i] = p0[i] = p[i];
    }
    if (cfg->kind == DC_OPT_ADAGRAD)
        for (size_t i = 0; i < n; i++) s0[i] = cfg->initial_accumulator;
    CHECK_OK(write_buf(bp, p, n));
    CHECK_OK(dc_optim_state_init(dev, cfg, bs, n));
    for (long t = 1; t <= STEPS; t++) {
        for (size_t i = 0; i < n; i++) {
            double u = test_uniform(&rng, 0, 1);
            /* Some exact zeros and some tiny gradients among O(1) ones. */
            g[i] = u < 0.05 ? 0.0f : u < 0.15 ? (float)test_uniform(&rng, -1e-4, 1e-4)
                                              : (float)test_uniform(&rng, -1, 1);
            gr[i] = g[i];
        }
        CHECK_OK(write_buf(bg, g, n));
        CHECK_OK(dc_optim_step(dev, cfg, bp, bg, bs, n, t));
        ref_step(cfg, pr, gr, s0, s1, n, t);
    }
    CHECK_OK(read_buf(bp, pd, n));
    CHECK_OK(read_buf(bs, sd, ns));

    double pe = 0, ue = 0, umax = 0, finite = 1;
    for (size_t i = 0; i < n; i++) umax = fmax(umax, fabs(pr[i] - p0[i]));
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(pd[i])) finite = 0;
        double d = fabs(pd[i] - pr[i]);
        pe = fmax(pe, d / (fabs(pr[i]) + umax));
        ue = fmax(ue, fabs((pd[i] - p0[i]) - (pr[i] - p0[i])) / umax);
    }
    double se = 0;
    /* SGD without momentum leaves its velocity unused (zeros). */
    int nstate = cfg->kind == DC_OPT_SGD && cfg->momentum == 0.0f ? 0 : (int)(ns / n);
    if (nstate >= 1) se = fmax(se, state_err(sd, s0, n));
    if (nstate >= 2) se = fmax(se, state_err(sd + n, s1, n));
    max_param_err = fmax(max_param_err, pe);
    max_update_err = fmax(max_update_err, ue);
    max_state_err = fmax(max_state_err, se);
    fprintf(stderr, "  %-26s %d steps: max |update| %.3g, param err %.2e, update err %.2e, state err %.2e\n",
            label, STEPS, umax, pe, ue, se);
    CHECK(finite && pe <= 1e-5, "%s: param err %.3g", label, pe);
    CHECK(ue <= 1e-4, "%s: update err %.3g", label, ue);
    CHECK(se <= 1e-5, "%s: state err %.3g", label, se);
    CHECK(umax > 1e-3, "%s: the parameters moved (%.3g)", label, umax);
done:
    if (bp) clReleaseMemObject(bp);
    if (bg) clReleaseMemObject(bg);
    if (bs) clReleaseMemObject(bs);
    free(sd);
}

static void test_updates(void)
{
    dc_optim_config c;
    fprintf(stderr, "optimizer steps vs double reference (%d parameters):\n", NPARAMS);
    for (int k = 0; k < DC_OPT_COUNT; k++) {
        dc_optim_defaults((dc_optim_kind)k, &c);
        char label[64];
        snprintf(label, sizeof label, "%s defaults", dc_optim_name((dc_optim_kind)k));
        run_case(&c, label);
    }
    dc_optim_defaults(DC_OPT_SGD, &c);
    c.momentum = 0.9f;
    run_case(&c, "sgd momentum 0.9");
    c.nesterov = 1;
    run_case(&c, "sgd nesterov 0.9");
    dc_optim_defaults(DC_OPT_ADAM, &c);
    c.lr = 0.05f;
    c.beta1 = 0.5f;
    c.beta2 = 0.9f;
    c.eps = 1e-3f;
    run_case(&c, "adam lr .05 b .5/.9 eps 1e-3");
    dc_optim_defaults(DC_OPT_ADADELTA, &c);
    c.lr = 0.5f;
    c.rho = 0.8f;
    c.eps = 1e-4f;
    run_case(&c, "adadelta lr .5 rho .8");
    dc_optim_defaults(DC_OPT_RMSPROP, &c);
    c.momentum = 0.5f;
    c.lr = 0.01f;
    run_case(&c, "rmsprop momentum 0.5");
    dc_optim_defaults(DC_OPT_ADAGRAD, &c);
    c.lr = 0.1f;
    c.initial_accumulator = 0.0f;
    run_case(&c, "adagrad lr .1 acc0 0");
}

static void expect_refused(const dc_optim_config *c, const char *flag, const char *what)
{
    dc_clear_error();
    dc_status s = dc_optim_validate(c);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), flag) && !strchr(dc_error_detail(), '\n'),
          "%s: status %d, message '%s' should name %s", what, (int)s, dc_error_detail(), flag);
    if (s == DC_ERR_INVALID_ARG) fprintf(stderr, "  refused %-28s %s\n", what, dc_error_detail());
}

static void test_config(void)
{
    dc_optim_config c;
    dc_optim_defaults(DC_OPT_ADAM, &c);
    CHECK(c.lr == 1e-3f && c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-7f, "adam defaults");
    dc_optim_defaults(DC_OPT_ADADELTA, &c);
    CHECK(c.lr == 1.0f && c.rho == 0.95f && c.eps == 1e-7f, "adadelta defaults");
    dc_optim_defaults(DC_OPT_RMSPROP, &c);
    CHECK(c.lr == 1e-3f && c.rho == 0.9f && c.eps == 1e-7f && c.momentum == 0.0f, "rmsprop defaults");
    dc_optim_defaults(DC_OPT_ADAGRAD, &c);
    CHECK(c.lr == 0.01f && c.initial_accumulator == 0.1f && c.eps == 1e-7f, "adagrad defaults");
    dc_optim_defaults(DC_OPT_SGD, &c);
    CHECK(c.lr == 0.01f && c.momentum == 0.0f && !c.nesterov, "sgd defaults");
    for (int k = 0; k < DC_OPT_COUNT; k++) {
        dc_optim_defaults((dc_optim_kind)k, &c);
        CHECK_OK(dc_optim_validate(&c));
        dc_optim_kind back;
        CHECK(dc_optim_parse(dc_optim_name((dc_optim_kind)k), &back) == DC_OK && back == (dc_optim_kind)k,
              "name/parse round trip %d", k);
    }
    CHECK(dc_optim_state_floats(DC_OPT_ADAM, 10) == 20 && dc_optim_state_floats(DC_OPT_ADAGRAD, 10) == 10 &&
              dc_optim_state_floats(DC_OPT_SGD, 10) == 10,
          "state sizes");
    dc_optim_kind k;
    CHECK(dc_optim_parse("ADAM", &k) == DC_OK && k == DC_OPT_ADAM, "parse is case-insensitive");
    CHECK(dc_optim_parse("lbfgs", &k) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "lbfgs"),
          "unknown optimizer: %s", dc_error_detail());

    fprintf(stderr, "bad configurations:\n");
    dc_optim_defaults(DC_OPT_ADAM, &c);
    c.lr = 0;
    expect_refused(&c, "--lr", "adam lr 0");
    c.lr = NAN;
    expect_refused(&c, "--lr", "adam lr NaN");
    c.lr = INFINITY;
    expect_refused(&c, "--lr", "adam lr inf");
    dc_optim_defaults(DC_OPT_ADAM, &c);
    c.beta1 = 1.0f;
    expect_refused(&c, "--beta1", "adam beta1 1");
    dc_optim_defaults(DC_OPT_ADAM, &c);
    c.beta2 = -0.1f;
    expect_refused(&c, "--beta2", "adam beta2 -0.1");
    dc_optim_defaults(DC_OPT_ADAM, &c);
    c.eps = 0;
    expect_refused(&c, "--eps", "adam eps 0");
    dc_optim_defaults(DC_OPT_ADAM, &c);
    c.momentum = 0.9f;
    expect_refused(&c, "--momentum", "adam with momentum");
    dc_optim_defaults(DC_OPT_ADADELTA, &c);
    c.rho = 1.0f;
    expect_refused(&c, "--rho", "adadelta rho 1");
    dc_optim_defaults(DC_OPT_RMSPROP, &c);
    c.rho = NAN;
    expect_refused(&c, "--rho", "rmsprop rho NaN");
    dc_optim_defaults(DC_OPT_SGD, &c);
    c.momentum = 1.0f;
    expect_refused(&c, "--momentum", "sgd momentum 1");
    dc_optim_defaults(DC_OPT_SGD, &c);
    c.nesterov = 1;
    expect_refused(&c, "--nesterov", "nesterov without momentum");
    dc_optim_defaults(DC_OPT_RMSPROP, &c);
    c.momentum = 0.5f;
    c.nesterov = 1;
    expect_refused(&c, "--nesterov", "rmsprop nesterov");
    dc_optim_defaults(DC_OPT_ADAGRAD, &c);
    c.initial_accumulator = -1;
    expect_refused(&c, "--initial-accumulator", "adagrad accumulator -1");
    c.kind = DC_OPT_COUNT;
    expect_refused(&c, "--optimizer", "kind out of range");

    /* The step refuses bad configs and steps before 1 without launching anything. */
    cl_mem b = NULL;
    CHECK_OK(dc_buffer_create(dev, 32, "optim test", &b));
    if (b) {
        dc_optim_defaults(DC_OPT_ADAM, &c);
        c.beta1 = 2;
        CHECK(dc_optim_step(dev, &c, b, b, b, 8, 1) == DC_ERR_INVALID_ARG, "step with a bad config");
        dc_optim_defaults(DC_OPT_ADAM, &c);
        CHECK(dc_optim_step(dev, &c, b, b, b, 8, 0) == DC_ERR_INVALID_ARG &&
                  strstr(dc_error_detail(), "step"),
              "step 0 refused: %s", dc_error_detail());
        /* Adagrad's accumulator starts at initial_accumulator. */
        dc_optim_defaults(DC_OPT_ADAGRAD, &c);
        c.initial_accumulator = 0.25f;
        float s[11];
        CHECK_OK(dc_optim_state_init(dev, &c, b, 11));
        CHECK_OK(read_buf(b, s, 11));
        int ok = 1;
        for (int i = 0; i < 11; i++) ok &= s[i] == 0.25f;
        CHECK(ok, "adagrad initial accumulator fill");
        clReleaseMemObject(b);
    }
}

int main(void)
{
    rng = test_seed();
    dc_status s = dc_device_open(-1, -1, &dev);
    if (s == DC_ERR_NO_DEVICE) {
        fprintf(stderr, "no OpenCL device: %s\n", dc_error_detail());
        return 77;
    }
    CHECK(s == DC_OK, "device: %s", dc_error_detail());
    if (s != DC_OK) TEST_MAIN_END();
    test_config();
    test_updates();
    fprintf(stderr, "max errors: params %.2e (limit 1e-5), update %.2e (limit 1e-4), state %.2e (limit 1e-5)\n",
            max_param_err, max_update_err, max_state_err);
    dc_device_close(dev);
    TEST_MAIN_END();
}

/* Optimizers: host side of cl/optim.cl (update rules and defaults in daecl/optim.h). */
#include "daecl/optim.h"

#include <limits.h>
#include <math.h>
#include <strings.h>

#include "daecl/kernels.h"
#include "daecl/tensor.h"

#define OPT_LOCAL 16

static const char *const optim_names[] = {
    [DC_OPT_SGD] = "sgd",
    [DC_OPT_ADAM] = "adam",
    [DC_OPT_ADADELTA] = "adadelta",
    [DC_OPT_RMSPROP] = "rmsprop",
    [DC_OPT_ADAGRAD] = "adagrad",
};
_Static_assert(sizeof optim_names / sizeof optim_names[0] == DC_OPT_COUNT,
               "optim_names must name every dc_optim_kind");

const char *dc_optim_name(dc_optim_kind kind)
{
    if ((unsigned)kind >= DC_OPT_COUNT) return "unknown";
    return optim_names[kind];
}

dc_status dc_optim_parse(const char *s, dc_optim_kind *out)
{
    for (int k = 0; s && k < DC_OPT_COUNT; k++) {
        if (strcasecmp(s, optim_names[k]) == 0) {
            *out = (dc_optim_kind)k;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_INVALID_ARG,
                   "--optimizer: unknown optimizer '%s' (choose sgd, adam, adadelta, rmsprop or adagrad)",
                   s ? s : "(null)");
}

void dc_optim_defaults(dc_optim_kind kind, dc_optim_config *cfg)
{
    *cfg = (dc_optim_config){.kind = kind};
    switch (kind) {
    case DC_OPT_SGD: cfg->lr = 0.01f; break;
    case DC_OPT_ADAM:
        cfg->lr = 1e-3f;
        cfg->beta1 = 0.9f;
        cfg->beta2 = 0.999f;
        cfg->eps = 1e-7f;
        break;
    case DC_OPT_ADADELTA:
        cfg->lr = 1.0f;
        cfg->rho = 0.95f;
        cfg->eps = 1e-7f;
        break;
    case DC_OPT_RMSPROP:
        cfg->lr = 1e-3f;
        cfg->rho = 0.9f;
        cfg->eps = 1e-7f;
        break;
    case DC_OPT_ADAGRAD:
        cfg->lr = 0.01f;
        cfg->initial_accumulator = 0.1f;
        cfg->eps = 1e-7f;
        break;
    default: break;
    }
}

static dc_status check_unit(const dc_optim_config *cfg, float v, const char *flag)
{
    if (!(v >= 0.0f && v < 1.0f))
        return dc_fail(DC_ERR_INVALID_ARG, "optimizer %s: %s must be in [0, 1), got %g",
                       dc_optim_name(cfg->kind), flag, (double)v);
    return DC_OK;
}

dc_status dc_optim_validate(const dc_optim_config *cfg)
{
    if ((unsigned)cfg->kind >= DC_OPT_COUNT)
        return dc_fail(DC_ERR_INVALID_ARG, "--optimizer: unknown optimizer kind %d", (int)cfg->kind);
    const char *name = dc_optim_name(cfg->kind);
    if (!(cfg->lr > 0.0f) || !isfinite(cfg->lr))
        return dc_fail(DC_ERR_INVALID_ARG, "optimizer %s: --lr must be positive and finite, got %g",
                       name, (double)cfg->lr);
    int uses_momentum = cfg->kind == DC_OPT_SGD || cfg->kind == DC_OPT_RMSPROP;
    if (uses_momentum) {
        DC_TRY(check_unit(cfg, cfg->momentum, "--momentum"));
    } else if (cfg->momentum != 0.0f) {
        return dc_fail(DC_ERR_INVALID_ARG, "optimizer %s: --momentum applies to sgd and rmsprop only",
                       name);
    }
    if (cfg->nesterov && cfg->kind != DC_OPT_SGD)
        return dc_fail(DC_ERR_INVALID_ARG, "optimizer %s: --nesterov applies to sgd only", name);
    if (cfg->nesterov && !(cfg->momentum > 0.0f))
        return dc_fail(DC_ERR_INVALID_ARG, "optimizer %s: --nesterov needs --momentum > 0", name);
    if (cfg->kind == DC_OPT_ADAM) {
        DC_TRY(check_unit(cfg, cfg->beta1, "--beta1"));
        DC_TRY(check_unit(cfg, cfg->beta2, "--beta2"));
    }
    if (cfg->kind == DC_OPT_ADADELTA || cfg->kind == DC_OPT_RMSPROP)
        DC_TRY(check_unit(cfg, cfg->rho, "--rho"));
    if (cfg->kind != DC_OPT_SGD && (!(cfg->eps > 0.0f) || !isfinite(cfg->eps)))
        return dc_fail(DC_ERR_INVALID_ARG, "optimizer %s: --eps must be positive and finite, got %g",
                       name, (double)cfg->eps);
    if (cfg->kind == DC_OPT_ADAGRAD &&
        (!(cfg->initial_accumulator >= 0.0f) || !isfinite(cfg->initial_accumulator)))
        return dc_fail(DC_ERR_INVALID_ARG,
                       "optimizer %s: --initial-accumulator must be >= 0 and finite, got %g", name,
                       (double)cfg->initial_accumulator);
    return DC_OK;
}

size_t dc_optim_state_floats(dc_optim_kind kind, size_t nparams)
{
    switch (kind) {
    case DC_OPT_SGD: return nparams;
    case DC_OPT_ADAM: return 2 * nparams;
    case DC_OPT_ADADELTA: return 2 * nparams;
    case DC_OPT_RMSPROP: return 2 * nparams;
    case DC_OPT_ADAGRAD: return nparams;
    default: return 0;
    }
}

static dc_status check_size(size_t nparams, dc_optim_kind kind)
{
    if (nparams == 0) return dc_fail(DC_ERR_INVALID_ARG, "optimizer: no parameters");
    if (dc_optim_state_floats(kind, nparams) + 8 > UINT_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED, "optimizer: %zu parameters is too many", nparams);
    return DC_OK;
}

dc_status dc_optim_state_init(dc_device *dev, const dc_optim_config *cfg, cl_mem state,
                              size_t nparams)
{
    DC_TRY(dc_optim_validate(cfg));
    DC_TRY(check_size(nparams, cfg->kind));
    size_t total = dc_optim_state_floats(cfg->kind, nparams);
    float first = cfg->kind == DC_OPT_ADAGRAD ? cfg->initial_accumulator : 0.0f;
    DC_TRY(dc_fill(dev, state, 0, nparams, first));
    if (total > nparams) DC_TRY(dc_fill(dev, state, nparams, total - nparams, 0.0f));
    return DC_OK;
}

dc_status dc_optim_step(dc_device *dev, const dc_optim_config *cfg, cl_mem params, cl_mem grads,
                        cl_mem state, size_t nparams, long step)
{
    DC_TRY(dc_optim_validate(cfg));
    DC_TRY(check_size(nparams, cfg->kind));
    if (step < 1) return dc_fail(DC_ERR_INVALID_ARG, "optimizer: step %ld (steps count from 1)", step);
    cl_uint n = (cl_uint)nparams;
    float lr = cfg->lr, eps = cfg->eps, mu = cfg->momentum;
    float omr = 1.0f - cfg->rho;
    const char *kname;
    cl_kernel k;
    cl_uint a = 0;
#define ARG(v)                          \
    do {                                \
        DC_CL(DC_ARG(k, a, v), kname);  \
        a++;                            \
    } while (0)
    switch (cfg->kind) {
    case DC_OPT_SGD:
        if (mu > 0.0f) {
            kname = "opt_sgd_momentum";
            DC_TRY(dc_kernel_get(dev, "optim.cl", "", kname, &k));
            cl_int nest = cfg->nesterov ? 1 : 0;
            a = 3;
            ARG(n); ARG(lr); ARG(mu); ARG(nest);
        } else {
            kname = "opt_sgd";
            DC_TRY(dc_kernel_get(dev, "optim.cl", "", kname, &k));
            a = 3;
            ARG(n); ARG(lr);
        }
        break;
    case DC_OPT_ADAM: {
        kname = "opt_adam";
        DC_TRY(dc_kernel_get(dev, "optim.cl", "", kname, &k));
        double t = (double)step;
        float lr_t = (float)(cfg->lr * sqrt(1.0 - pow(cfg->beta2, t)) / (1.0 - pow(cfg->beta1, t)));
        float omb1 = 1.0f - cfg->beta1, omb2 = 1.0f - cfg->beta2;
        a = 3;
        ARG(n); ARG(lr_t); ARG(omb1); ARG(omb2); ARG(eps);
        break;
    }
    case DC_OPT_ADADELTA: {
        kname = "opt_adadelta";
        DC_TRY(dc_kernel_get(dev, "optim.cl", "", kname, &k));
        float rho = cfg->rho;
        a = 3;
        ARG(n); ARG(lr); ARG(rho); ARG(omr); ARG(eps);
        break;
    }
    case DC_OPT_RMSPROP: {
        float rho = cfg->rho;
        if (mu > 0.0f) {
            kname = "opt_rmsprop_momentum";
            DC_TRY(dc_kernel_get(dev, "optim.cl", "", kname, &k));
            a = 3;
            ARG(n); ARG(lr); ARG(omr); ARG(mu); ARG(eps);
        } else {
            kname = "opt_rmsprop";
            DC_TRY(dc_kernel_get(dev, "optim.cl", "", kname, &k));
            a = 3;
            ARG(n); ARG(lr); ARG(rho); ARG(omr); ARG(eps);
        }
        break;
    }
    case DC_OPT_ADAGRAD:
        kname = "opt_adagrad";
        DC_TRY(dc_kernel_get(dev, "optim.cl", "", kname, &k));
        a = 3;
        ARG(n); ARG(lr); ARG(eps);
        break;
    default: return dc_fail(DC_ERR_INVALID_ARG, "optimizer: unknown kind %d", (int)cfg->kind);
    }
#undef ARG
    DC_CL(DC_ARG(k, 0, params), kname);
    DC_CL(DC_ARG(k, 1, grads), kname);
    DC_CL(DC_ARG(k, 2, state), kname);
    size_t g = (nparams + 7) / 8, l = OPT_LOCAL;
    return dc_launch(dev, k, 1, &g, &l, kname);
}

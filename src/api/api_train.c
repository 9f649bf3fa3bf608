/* Public API: training configuration by flag name, and training with a progress callback. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "daecl/train.h"

enum { TEXT_DATA, TEXT_OUT, TEXT_ARCH, NTEXT };

/* The optimizer's own defaults are applied when training starts, then the hyper-parameters
 * that were set, so "optimizer" and "lr" may be set in either order. */
enum { HP_LR, HP_MOMENTUM, HP_NESTEROV, HP_BETA1, HP_BETA2, HP_RHO, HP_EPS, HP_INITIAL_ACC, NHP };

struct daecl_train_config {
    dc_train_config dc;
    char *text[NTEXT];
    dc_optim_config hyper;
    int hyper_set[NHP];
};

daecl_status daecl_train_config_new(daecl_train_config **out)
{
    if (!out) return api_null("daecl_train_config_new: out");
    *out = NULL;
    daecl_train_config *c = calloc(1, sizeof *c);
    if (!c) return api_status(dc_fail(DC_ERR_NOMEM, "daecl_train_config_new: out of memory"));
    dc_train_defaults(&c->dc);
    c->dc.quiet = 1;
    *out = c;
    return DAECL_OK;
}

void daecl_train_config_free(daecl_train_config *cfg)
{
    if (!cfg) return;
    for (int i = 0; i < NTEXT; i++) free(cfg->text[i]);
    free(cfg);
}

/* ---- values --------------------------------------------------------------------------------- */

static daecl_status bad_value(const char *name, const char *value, const char *want)
{
    return api_status(dc_fail(DC_ERR_INVALID_ARG, "training setting %s: '%s' is not %s", name, value, want));
}

static daecl_status parse_int(const char *name, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi) {
        char want[64];
        snprintf(want, sizeof want, "an integer in %ld..%ld", lo, hi);
        return bad_value(name, v, want);
    }
    *out = (int)x;
    return DAECL_OK;
}

static daecl_status parse_u64(const char *name, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || errno || *v == '-') return bad_value(name, v, "a non-negative integer");
    *out = x;
    return DAECL_OK;
}

static daecl_status parse_float(const char *name, const char *v, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !(x >= lo && x <= hi)) {
        char want[80];
        snprintf(want, sizeof want, "a number in [%g, %g]", lo, hi);
        return bad_value(name, v, want);
    }
    *out = (float)x;
    return DAECL_OK;
}

static daecl_status parse_flag(const char *name, const char *v, int *out)
{
    if (strcmp(v, "0") && strcmp(v, "1")) return bad_value(name, v, "0 or 1");
    *out = v[0] == '1';
    return DAECL_OK;
}

static daecl_status set_text(daecl_train_config *c, int which, const char *v)
{
    char *copy = strdup(v);
    if (!copy) return api_status(dc_fail(DC_ERR_NOMEM, "training setting: out of memory"));
    free(c->text[which]);
    c->text[which] = copy;
    if (which == TEXT_DATA) c->dc.data_dir = copy;
    if (which == TEXT_OUT) c->dc.out_dir = copy;
    if (which == TEXT_ARCH) c->dc.arch = copy;
    return DAECL_OK;
}

static daecl_status set_hyper(daecl_train_config *c, int which, const char *name, const char *v)
{
    /* The ranges of `dae-cl train`'s flags. */
    static const struct {
        double lo, hi;
    } range[NHP] = {[HP_LR] = {1e-12, 1e6}, [HP_MOMENTUM] = {0, 0.999999}, [HP_BETA1] = {0, 0.999999},
                    [HP_BETA2] = {0, 0.999999}, [HP_RHO] = {0, 0.999999}, [HP_EPS] = {1e-30, 1},
                    [HP_INITIAL_ACC] = {0, 1e6}};
    float *field[NHP] = {[HP_LR] = &c->hyper.lr, [HP_MOMENTUM] = &c->hyper.momentum, [HP_BETA1] = &c->hyper.beta1,
                         [HP_BETA2] = &c->hyper.beta2, [HP_RHO] = &c->hyper.rho, [HP_EPS] = &c->hyper.eps,
                         [HP_INITIAL_ACC] = &c->hyper.initial_accumulator};
    if (which == HP_NESTEROV) API_TRY(parse_flag(name, v, &c->hyper.nesterov));
    else API_TRY(parse_float(name, v, range[which].lo, range[which].hi, field[which]));
    c->hyper_set[which] = 1;
    return DAECL_OK;
}

daecl_status daecl_train_config_set(daecl_train_config *c, const char *name, const char *v)
{
    if (!c || !name || !v) return api_null("daecl_train_config_set: cfg, name and value");
    dc_train_config *d = &c->dc;
    static const char *const hyper_names[NHP] = {"lr", "momentum", "nesterov", "beta1", "beta2", "rho", "eps",
                                                 "initial-accumulator"};
    for (int i = 0; i < NHP; i++)
        if (strcmp(name, hyper_names[i]) == 0) return set_hyper(c, i, name, v);
    if (strcmp(name, "data") == 0) return set_text(c, TEXT_DATA, v);
    if (strcmp(name, "out") == 0) return set_text(c, TEXT_OUT, v);
    if (strcmp(name, "arch") == 0) {
        dc_arch arch;
        API_TRY(dc_arch_parse(v, &arch));
        return set_text(c, TEXT_ARCH, v);
    }
    if (strcmp(name, "epochs") == 0) return parse_int(name, v, 1, 1000000, &d->epochs);
    if (strcmp(name, "batch") == 0) return parse_int(name, v, 1, 65536, &d->batch);
    if (strcmp(name, "validate-every") == 0) return parse_int(name, v, 1, 1000000, &d->validate_every);
    if (strcmp(name, "optimizer") == 0) return api_status(dc_optim_parse(v, &d->optim.kind));
    if (strcmp(name, "loss") == 0) return api_status(dc_loss_parse(v, &d->loss));
    if (strcmp(name, "noise") == 0) return api_status(dc_noise_parse(v, &d->noise));
    if (strcmp(name, "noise-fixed") == 0) return parse_flag(name, v, &d->noise_fixed);
    if (strcmp(name, "seed") == 0) return parse_u64(name, v, &d->seed);
    if (strcmp(name, "resume") == 0) return parse_flag(name, v, &d->resume);
    if (strcmp(name, "samples") == 0) return parse_flag(name, v, &d->samples);
    if (strcmp(name, "transpose") == 0) return parse_flag(name, v, &d->transpose);
    if (strcmp(name, "train-limit") == 0 || strcmp(name, "val-limit") == 0) {
        uint64_t n;
        API_TRY(parse_u64(name, v, &n));
        *(name[0] == 't' ? &d->train_limit : &d->val_limit) = (size_t)n;
        return DAECL_OK;
    }
    if (strcmp(name, "print") == 0) {
        int print;
        API_TRY(parse_flag(name, v, &print));
        d->quiet = !print;
        return DAECL_OK;
    }
    return api_status(dc_fail(DC_ERR_INVALID_ARG, "unknown training setting '%s' (the names of dae-cl train's flags)", name));
}

/* ---- training ------------------------------------------------------------------------------- */

typedef struct callback {
    daecl_progress_fn fn;
    void *user;
} callback;

static int forward_progress(void *user, const dc_train_progress *p)
{
    const callback *cb = user;
    daecl_train_progress q = {.epoch = p->epoch, .epochs = p->epochs, .step = p->step, .steps = p->steps,
                              .loss = p->loss, .epoch_done = p->epoch_done, .val_loss = p->val_loss,
                              .val_psnr = p->val_psnr};
    return cb->fn(cb->user, &q);
}

daecl_status daecl_train(daecl_device *dev, const daecl_train_config *cfg, daecl_progress_fn progress, void *user,
                         daecl_train_summary *summary)
{
    if (!dev || !cfg) return api_null("daecl_train: dev and cfg");
    if (summary) memset(summary, 0, sizeof *summary);
    dc_train_config c = cfg->dc;
    dc_optim_defaults(c.optim.kind, &c.optim);
    const dc_optim_config *h = &cfg->hyper;
    if (cfg->hyper_set[HP_LR]) c.optim.lr = h->lr;
    if (cfg->hyper_set[HP_MOMENTUM]) c.optim.momentum = h->momentum;
    if (cfg->hyper_set[HP_NESTEROV]) c.optim.nesterov = h->nesterov;
    if (cfg->hyper_set[HP_BETA1]) c.optim.beta1 = h->beta1;
    if (cfg->hyper_set[HP_BETA2]) c.optim.beta2 = h->beta2;
    if (cfg->hyper_set[HP_RHO]) c.optim.rho = h->rho;
    if (cfg->hyper_set[HP_EPS]) c.optim.eps = h->eps;
    if (cfg->hyper_set[HP_INITIAL_ACC]) c.optim.initial_accumulator = h->initial_accumulator;
    callback cb = {progress, user};
    if (progress) {
        c.progress = forward_progress;
        c.progress_user = &cb;
    }
    dc_train_summary sum;
    dc_status s = dc_train(dev->dc, &c, &sum);
    if (!s && summary) {
        *summary = (daecl_train_summary){.epochs_done = sum.epochs_done, .train_loss = sum.train_loss,
                                         .seconds = sum.seconds, .images_per_second = sum.images_per_second,
                                         .validated = sum.validated};
        api_eval_result(&sum.val, &summary->val);
    }
    return api_status(s);
}

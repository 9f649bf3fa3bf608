/* Public API: training settings by name (the run configuration's table, runconfig.h, plus the
 * run directory, resume and printing), and training with a progress callback. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "daecl/train.h"

struct daecl_train_config {
    dc_train_config dc;
    char *out_dir; /* owned copy behind dc.out_dir */
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
    free(cfg->out_dir);
    free(cfg);
}

static daecl_status parse_flag(const char *name, const char *v, int *out)
{
    if (strcmp(v, "0") && strcmp(v, "1"))
        return api_status(dc_fail(DC_ERR_INVALID_ARG, "training setting %s: '%s' is not 0 or 1", name, v));
    *out = v[0] == '1';
    return DAECL_OK;
}

daecl_status daecl_train_config_set(daecl_train_config *c, const char *name, const char *v)
{
    if (!c || !name || !v) return api_null("daecl_train_config_set: cfg, name and value");
    if (dc_run_field_find(name) >= 0) return api_status(dc_run_config_set(&c->dc.run, name, v));
    if (strcmp(name, "out") == 0) {
        char *copy = strdup(v);
        if (!copy) return api_status(dc_fail(DC_ERR_NOMEM, "training setting out: out of memory"));
        free(c->out_dir);
        c->out_dir = copy;
        c->dc.out_dir = copy;
        return DAECL_OK;
    }
    if (strcmp(name, "resume") == 0) return parse_flag(name, v, &c->dc.resume);
    if (strcmp(name, "print") == 0) {
        int print = 1;
        API_TRY(parse_flag(name, v, &print));
        c->dc.quiet = !print;
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

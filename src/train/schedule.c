/* Learning-rate schedules and validation bookkeeping (see schedule.h). */
#include "daecl/schedule.h"

#include <math.h>
#include <strings.h>

static const char *const names[DC_LR_SCHEDULE_COUNT] = {"constant", "step", "cosine", "plateau"};

const char *dc_lr_schedule_name(dc_lr_schedule kind)
{
    return (unsigned)kind < DC_LR_SCHEDULE_COUNT ? names[kind] : "?";
}

dc_status dc_lr_schedule_parse(const char *s, dc_lr_schedule *out)
{
    for (int k = 0; s && k < DC_LR_SCHEDULE_COUNT; k++)
        if (strcasecmp(s, names[k]) == 0) {
            *out = (dc_lr_schedule)k;
            return DC_OK;
        }
    return dc_fail(DC_ERR_INVALID_ARG, "--lr-schedule: expected constant, step, cosine or plateau, got '%s'",
                   s ? s : "");
}

void dc_schedule_state_init(dc_schedule_state *st)
{
    *st = (dc_schedule_state){.best_val_loss = INFINITY};
}

dc_status dc_schedule_check(const dc_schedule_config *c, int epochs)
{
    if (c->warmup > 0 && c->kind != DC_LR_COSINE)
        return dc_fail(DC_ERR_INVALID_ARG, "--warmup %d: warmup belongs to --lr-schedule cosine, not %s", c->warmup,
                       dc_lr_schedule_name(c->kind));
    if (c->kind == DC_LR_COSINE && c->warmup >= epochs)
        return dc_fail(DC_ERR_INVALID_ARG, "--warmup %d: must be below --epochs %d", c->warmup, epochs);
    return DC_OK;
}

double dc_schedule_lr(const dc_schedule_config *c, const dc_schedule_state *st, double lr, int e, int epochs)
{
    double min = c->min_lr;
    switch (c->kind) {
    case DC_LR_STEP: return lr * pow(c->gamma, e / (c->step_every > 0 ? c->step_every : 1));
    case DC_LR_COSINE: {
        if (e < c->warmup) return lr * (e + 1) / c->warmup;
        int span = epochs - c->warmup;
        if (span < 1) return lr;
        if (e >= epochs) return min;
        return min + (lr - min) * 0.5 * (1.0 + cos(M_PI * (e - c->warmup) / span));
    }
    case DC_LR_PLATEAU: {
        double v = lr * pow(c->gamma, st->reductions);
        return v > min ? v : (min < lr ? min : lr);
    }
    default: return lr;
    }
}

int dc_schedule_observe(const dc_schedule_config *c, dc_schedule_state *st, int epoch, double val_loss)
{
    if (val_loss < st->best_val_loss) {
        st->best_val_loss = val_loss;
        st->best_epoch = epoch;
        return 1;
    }
    if (c->kind == DC_LR_PLATEAU && c->patience > 0) {
        int since = st->best_epoch > st->last_reduction ? st->best_epoch : st->last_reduction;
        if (epoch - since >= c->patience) {
            st->reductions++;
            st->last_reduction = epoch;
        }
    }
    return 0;
}

int dc_schedule_should_stop(const dc_schedule_state *st, int patience, int epoch)
{
    return patience > 0 && st->best_epoch > 0 && epoch - st->best_epoch >= patience;
}

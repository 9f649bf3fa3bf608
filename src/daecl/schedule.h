/* Steering a run: the learning-rate schedule and the validation-loss bookkeeping that plateau
 * reduction and early stopping share. Epochs are 0-based here (epoch e is the (e+1)-th).
 *
 *   constant  lr
 *   step      lr · γ^floor(e / E)                                   (--lr-step-every E, --lr-gamma γ)
 *   cosine    e < W: lr · (e+1)/W  (linear warmup, --warmup W)
 *             else:  min + (lr - min) · (1 + cos(π (e-W) / (T-W))) / 2   (T = --epochs, min = --min-lr)
 *   plateau   max(lr · γ^k, min), k = reductions so far: after a validated epoch with no
 *             improvement of the validation loss for P epochs (--lr-patience P) since the best
 *             epoch or the last reduction, whichever is later, k grows by one (as Keras'
 *             ReduceLROnPlateau with min_delta 0, cooldown 0)
 *
 * The state (best loss and epoch, reductions, last reduction) is kept by the checkpoint, so a
 * resumed run follows the same rates bit for bit. */
#ifndef DAECL_SCHEDULE_H
#define DAECL_SCHEDULE_H

#include "daecl/status.h"

typedef enum dc_lr_schedule {
    DC_LR_CONSTANT = 0,
    DC_LR_STEP,
    DC_LR_COSINE,
    DC_LR_PLATEAU,
    DC_LR_SCHEDULE_COUNT
} dc_lr_schedule;

typedef struct dc_schedule_config {
    dc_lr_schedule kind;
    int step_every;   /* step: epochs between reductions */
    float gamma;      /* step, plateau: factor per reduction */
    int warmup;       /* cosine: epochs of linear warmup */
    int patience;     /* plateau: epochs without improvement before a reduction */
    float min_lr;     /* cosine: the end value; plateau: the floor */
} dc_schedule_config;

typedef struct dc_schedule_state {
    double best_val_loss; /* +inf before the first validation */
    int best_epoch;       /* 1-based epoch of best_val_loss, 0 if none */
    int reductions;       /* plateau: reductions so far */
    int last_reduction;   /* plateau: 1-based epoch of the last reduction, 0 if none */
} dc_schedule_state;

const char *dc_lr_schedule_name(dc_lr_schedule kind);
dc_status dc_lr_schedule_parse(const char *s, dc_lr_schedule *out);

void dc_schedule_state_init(dc_schedule_state *st);

/* Cross-field checks: --warmup only with cosine and below the epochs. One line naming the flag. */
dc_status dc_schedule_check(const dc_schedule_config *c, int epochs);

/* The learning rate of 0-based epoch e of `epochs`, for base rate lr (computed in double). */
double dc_schedule_lr(const dc_schedule_config *c, const dc_schedule_state *st, double lr, int e, int epochs);

/* After validating 1-based epoch `epoch` with loss val_loss: the best loss and epoch, and a
 * plateau reduction when due. Returns 1 if the loss improved. */
int dc_schedule_observe(const dc_schedule_config *c, dc_schedule_state *st, int epoch, double val_loss);

/* Early stopping: 1 when patience > 0 and `epoch` (1-based, validated) is patience or more
 * epochs after the best one. */
int dc_schedule_should_stop(const dc_schedule_state *st, int patience, int epoch);

#endif

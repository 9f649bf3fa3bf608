/* Learning-rate schedules (daecl/schedule.h) against their closed forms, written here a second
 * way, for random parameters; plateau reductions and early stopping on a hand-worked sequence of
 * validation losses. */
#include <math.h>
#include <string.h>

#include "daecl/schedule.h"
#include "test.h"

#define PI 3.14159265358979323846

static int close_to(double a, double b) { return fabs(a - b) <= 1e-12 * fmax(1.0, fabs(b)); }

int main(void)
{
    uint64_t rng = test_seed();
    dc_schedule_state st;
    dc_schedule_state_init(&st);

    for (int trial = 0; trial < 50; trial++) {
        double lr = test_uniform(&rng, 1e-5, 1.0);
        int epochs = 2 + (int)(test_rand_u64(&rng) % 60);
        dc_schedule_config c = {.kind = DC_LR_CONSTANT, .step_every = 1 + (int)(test_rand_u64(&rng) % 7),
                                .gamma = (float)test_uniform(&rng, 0.05, 0.95),
                                .warmup = (int)(test_rand_u64(&rng) % (unsigned)epochs),
                                .min_lr = (float)(lr * test_uniform(&rng, 0, 0.1))};
        for (int e = 0; e < epochs; e++) {
            CHECK(dc_schedule_lr(&c, &st, lr, e, epochs) == lr, "constant epoch %d", e);
            /* step: γ multiplied in once at each epoch that is a multiple of E */
            c.kind = DC_LR_STEP;
            double want = lr;
            for (int k = 1; k <= e; k++)
                if (k % c.step_every == 0) want *= c.gamma;
            double got = dc_schedule_lr(&c, &st, lr, e, epochs);
            CHECK(close_to(got, want), "step E=%d γ=%g epoch %d: %.17g, want %.17g", c.step_every, (double)c.gamma, e,
                  got, want);
            /* cosine: linear warmup to lr, then half a cosine period from lr down towards min_lr */
            c.kind = DC_LR_COSINE;
            if (e < c.warmup) {
                want = lr * (double)(e + 1) / c.warmup;
            } else {
                double progress = (double)(e - c.warmup) / (epochs - c.warmup); /* 0 .. <1 */
                want = c.min_lr + (lr - c.min_lr) * (cos(PI * progress) + 1.0) / 2.0;
            }
            got = dc_schedule_lr(&c, &st, lr, e, epochs);
            CHECK(close_to(got, want), "cosine W=%d of %d epoch %d: %.17g, want %.17g", c.warmup, epochs, e, got, want);
            c.kind = DC_LR_CONSTANT;
        }
        /* cosine peaks at lr after the warmup and falls monotonically after it */
        c.kind = DC_LR_COSINE;
        CHECK(close_to(dc_schedule_lr(&c, &st, lr, c.warmup, epochs), lr), "cosine peak");
        for (int e = c.warmup + 1; e < epochs; e++)
            CHECK(dc_schedule_lr(&c, &st, lr, e, epochs) < dc_schedule_lr(&c, &st, lr, e - 1, epochs) &&
                      dc_schedule_lr(&c, &st, lr, e, epochs) > c.min_lr,
                  "cosine not falling at %d", e);
    }

    /* Plateau, patience 2, γ 0.5, floor 0.2, on these validation losses (epochs 1..10):
     *   best at 1, 2; no improvement 3, 4 -> reduction at 4 (4 - 2 = 2); 5 counts from 4;
     *   best at 6; 7, 8 -> reduction at 8; 9, 10 -> reduction at 10 (counted from 8). */
    static const double val[10] = {1.0, 0.9, 0.95, 0.93, 0.92, 0.85, 0.9, 0.9, 0.9, 0.9};
    static const int improved[10] = {1, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    static const double lr_of_epoch[11] = {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2}; /* epochs 1..11 */
    dc_schedule_config p = {.kind = DC_LR_PLATEAU, .gamma = 0.5f, .patience = 2, .min_lr = 0.2f};
    dc_schedule_state_init(&st);
    for (int e = 0; e < 10; e++) {
        double got = dc_schedule_lr(&p, &st, 1.0, e, 20);
        CHECK(got == lr_of_epoch[e], "plateau epoch %d: lr %g, want %g", e + 1, got, lr_of_epoch[e]);
        CHECK(dc_schedule_observe(&p, &st, e + 1, val[e]) == improved[e], "plateau epoch %d improvement", e + 1);
    }
    CHECK(fabs(dc_schedule_lr(&p, &st, 1.0, 10, 20) - 0.2) < 1e-7, "plateau floor: %g",
          dc_schedule_lr(&p, &st, 1.0, 10, 20));
    CHECK(st.reductions == 3 && st.last_reduction == 10 && st.best_epoch == 6 && st.best_val_loss == 0.85,
          "plateau state: %d reductions, last %d, best %d (%g)", st.reductions, st.last_reduction, st.best_epoch,
          st.best_val_loss);

    /* Early stopping on the same losses: patience 3 stops at epoch 5 (3 after epoch 2); patience
     * 4 survives to epoch 6's improvement and stops at 10; 0 never stops. The other schedules do
     * not reduce. */
    static const struct { int patience, stop; } es[] = {{1, 3}, {3, 5}, {4, 10}, {5, 0}, {0, 0}};
    for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) {
        dc_schedule_config k = {.kind = DC_LR_STEP, .step_every = 3, .gamma = 0.5f};
        dc_schedule_state_init(&st);
        int stop = 0;
        for (int e = 0; e < 10 && !stop; e++) {
            dc_schedule_observe(&k, &st, e + 1, val[e]);
            if (dc_schedule_should_stop(&st, es[i].patience, e + 1)) stop = e + 1;
        }
        CHECK(stop == es[i].stop && st.reductions == 0, "early stop patience %d: stopped at %d, want %d",
              es[i].patience, stop, es[i].stop);
    }

    /* Names, and the checks across fields. */
    for (int k = 0; k < DC_LR_SCHEDULE_COUNT; k++) {
        dc_lr_schedule back;
        CHECK(dc_lr_schedule_parse(dc_lr_schedule_name((dc_lr_schedule)k), &back) == DC_OK && (int)back == k, "name %d", k);
    }
    dc_lr_schedule back;
    CHECK(dc_lr_schedule_parse("exponential", &back) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--lr-schedule") &&
              strstr(dc_error_detail(), "exponential"),
          "unknown schedule: %s", dc_error_detail());
    dc_schedule_config w = {.kind = DC_LR_STEP, .warmup = 2};
    CHECK(dc_schedule_check(&w, 10) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--warmup"), "warmup with step");
    w.kind = DC_LR_COSINE;
    CHECK(dc_schedule_check(&w, 10) == DC_OK, "warmup with cosine");
    CHECK(dc_schedule_check(&w, 2) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--epochs 2"), "warmup >= epochs");
    TEST_MAIN_END();
}

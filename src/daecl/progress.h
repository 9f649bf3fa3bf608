/* Keras-style progress line:
 *   Epoch 3/100  469/469 [==============================] - 12s 25ms/step - loss: 0.1012
 * redrawn in place on a TTY, printed once per epoch otherwise. The first step of a run (kernel
 * JIT) is left out of the time-per-step and ETA. */
#ifndef DAECL_PROGRESS_H
#define DAECL_PROGRESS_H

#include <stdio.h>

typedef struct dc_progress {
    FILE *out;
    int tty, quiet;
    int epoch, epochs, total_steps;
    double epoch_start, timed_start, last_draw;
    int timed_from; /* step from which time per step is measured */
} dc_progress;

void dc_progress_init(dc_progress *p, FILE *out, int quiet);
void dc_progress_epoch(dc_progress *p, int epoch, int epochs, int total_steps, int skip_first);
/* Time per step and ETA count from now, `step` steps in (after the first, JIT step). */
void dc_progress_mark_timed(dc_progress *p, int step);
/* Whether a redraw is due (TTY, at most ~5 per second): the caller then reads the loss. */
int dc_progress_due(const dc_progress *p, int step);
void dc_progress_draw(dc_progress *p, int step, double loss);
/* Final line of the epoch; extra is appended (" - val_loss: ..."). */
void dc_progress_end(dc_progress *p, int steps, double loss, const char *extra);
double dc_now(void);

#endif

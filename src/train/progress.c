/* Keras-style progress display (see progress.h). */
#include "daecl/progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double dc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void dc_progress_init(dc_progress *p, FILE *out, int quiet)
{
    /* Redraws (\r and erase-line) only on a terminal that knows them: not TERM=dumb (Emacs
     * shells, CI logs) or unset. */
    const char *term = getenv("TERM");
    int capable = term && *term && strcmp(term, "dumb") != 0;
    *p = (dc_progress){.out = out, .quiet = quiet, .tty = isatty(fileno(out)) && capable};
}

void dc_progress_epoch(dc_progress *p, int epoch, int epochs, int total_steps, int skip_first)
{
    p->epoch = epoch;
    p->epochs = epochs;
    p->total_steps = total_steps;
    p->epoch_start = p->timed_start = p->last_draw = dc_now();
    p->timed_from = skip_first ? 1 : 0;
}

void dc_progress_mark_timed(dc_progress *p, int step)
{
    p->timed_from = step;
    p->timed_start = dc_now();
}

int dc_progress_due(const dc_progress *p, int step)
{
    if (!p->tty || p->quiet) return 0;
    return step == 1 || dc_now() - p->last_draw > 0.2;
}

static void format_time(double s, char *buf, size_t len)
{
    if (s >= 3600) snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else if (s >= 60) snprintf(buf, len, "%d:%02d", (int)s / 60, (int)s % 60);
    else snprintf(buf, len, "%ds", (int)(s + 0.5));
}

static void bar(const dc_progress *p, int step, char *buf, size_t len)
{
    const int width = 30;
    int fill = p->total_steps ? step * width / p->total_steps : width;
    size_t i = 0;
    buf[i++] = '[';
    for (int j = 0; j < width && i + 2 < len; j++)
        buf[i++] = j < fill - 1 ? '=' : (j == fill - 1 ? (step == p->total_steps ? '=' : '>') : '.');
    buf[i++] = ']';
    buf[i] = '\0';
}

/* Time per step, leaving out the first (JIT) step when asked. */
static double per_step(const dc_progress *p, int step)
{
    int timed = step - p->timed_from;
    double elapsed = dc_now() - p->timed_start;
    return timed > 0 ? elapsed / timed : 0;
}

void dc_progress_draw(dc_progress *p, int step, double loss)
{
    if (!p->tty || p->quiet) return;
    char b[40], eta[32];
    bar(p, step, b, sizeof b);
    format_time(per_step(p, step) * (p->total_steps - step), eta, sizeof eta);
    fprintf(p->out, "\rEpoch %d/%d  %d/%d %s - ETA: %s - loss: %.4f\033[K", p->epoch, p->epochs, step,
            p->total_steps, b, eta, loss);
    fflush(p->out);
    p->last_draw = dc_now();
}

void dc_progress_end(dc_progress *p, int steps, double loss, const char *extra)
{
    if (p->quiet) return;
    char b[40], total[32];
    bar(p, steps, b, sizeof b);
    double elapsed = dc_now() - p->epoch_start;
    format_time(elapsed, total, sizeof total);
    double ms = per_step(p, steps) * 1e3;
    fprintf(p->out, "%sEpoch %d/%d  %d/%d %s - %s %.0fms/step - loss: %.4f%s%s\n", p->tty ? "\r" : "",
            p->epoch, p->epochs, steps, p->total_steps, b, total, ms, loss, extra ? extra : "",
            p->tty ? "\033[K" : "");
    fflush(p->out);
}

/* Training-curve plots with cairo (toy text API, DejaVu Sans): see visualize_plot.h. */
#include "visualize_plot.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CSV_BYTES (64u << 20)
#define FONT "DejaVu Sans"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- metrics.csv ---------------------------------------------------------------------------- */

typedef struct metrics {
    int ncols, nrows;
    char **names; /* ncols header names */
    double *v;    /* nrows * ncols, NAN where empty */
} metrics;

static void metrics_free(metrics *m)
{
    for (int i = 0; i < m->ncols; i++) free(m->names[i]);
    free(m->names);
    free(m->v);
    *m = (metrics){0};
}

static int metrics_col(const metrics *m, const char *name)
{
    for (int i = 0; i < m->ncols; i++)
        if (strcmp(m->names[i], name) == 0) return i;
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

static int count_fields(const char *line)
{
    int n = 1;
    for (; *line; line++) n += *line == ',';
    return n;
}

/* Split a line in place at commas; returns the field count (fields beyond max are counted but
 * not stored). */
static int split(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line;; p++) {
        char *start = p;
        while (*p && *p != ',') p++;
        char c = *p;
        *p = '\0';
        if (n < max) fields[n] = trim(start);
        n++;
        if (!c) break;
    }
    return n;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = cap > MAX_CSV_BYTES + 8192 ? NULL : realloc(buf, cap);
            if (!nb) {
                fail(err, errlen, "%s: too large for a metrics file (or out of memory)", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        fail(err, errlen, "%s: read failed: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int metrics_load(const char *path, metrics *m, char *err, size_t errlen)
{
    *m = (metrics){0};
    size_t len = 0;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return -1;
    if (memchr(text, '\0', len)) {
        free(text);
        return fail(err, errlen, "%s: not a CSV text file (contains NUL bytes)", path);
    }
    char *p = text;
    if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p += 3; /* UTF-8 BOM */

    int rc = 0, lineno = 0, cap_rows = 0;
    char **fields = NULL;
    while (*p && rc == 0) {
        char *line = p;
        char *nl = strchr(p, '\n');
        int complete = nl != NULL;
        if (nl) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p += strlen(p);
        }
        lineno++;
        char *t = trim(line);
        if (!*t) continue; /* blank line */

        if (!m->names) { /* header */
            int n = count_fields(t);
            m->names = calloc((size_t)n, sizeof *m->names);
            fields = calloc((size_t)n, sizeof *fields);
            if (!m->names || !fields) {
                rc = fail(err, errlen, "%s: out of memory", path);
                break;
            }
            split(t, fields, n);
            for (int i = 0; i < n && rc == 0; i++) {
                if (!*fields[i]) {
                    rc = fail(err, errlen, "%s:%d: header column %d has no name", path, lineno, i + 1);
                    break;
                }
                for (int j = 0; j < i; j++)
                    if (strcmp(fields[i], m->names[j]) == 0)
                        rc = fail(err, errlen, "%s:%d: header names column '%s' twice", path,
                                  lineno, fields[i]);
                m->names[i] = strdup(fields[i]);
                m->ncols = i + 1;
                if (!m->names[i]) rc = fail(err, errlen, "%s: out of memory", path);
            }
            if (rc == 0 && metrics_col(m, "epoch") < 0)
                rc = fail(err, errlen, "%s:%d: no 'epoch' column in the header (is this a metrics.csv?)",
                          path, lineno);
            continue;
        }

        int n = split(t, fields, m->ncols);
        if (n != m->ncols) {
            if (!complete) break; /* the last row, still being written */
            rc = fail(err, errlen, "%s:%d: %d fields, the header has %d", path, lineno, n, m->ncols);
            break;
        }
        if (m->nrows == cap_rows) {
            cap_rows = cap_rows ? 2 * cap_rows : 64;
            double *nv = realloc(m->v, sizeof *nv * (size_t)cap_rows * (size_t)m->ncols);
            if (!nv) {
                rc = fail(err, errlen, "%s: out of memory", path);
                break;
            }
            m->v = nv;
        }
        double *row = m->v + (size_t)m->nrows * (size_t)m->ncols;
        int bad = -1;
        for (int i = 0; i < m->ncols; i++) {
            row[i] = NAN;
            if (!*fields[i]) continue;
            char *end = NULL;
            errno = 0;
            double d = strtod(fields[i], &end);
            if (end == fields[i] || *end) {
                bad = i;
                break;
            }
            row[i] = isfinite(d) ? d : NAN;
        }
        if (bad >= 0) {
            if (!complete) break;
            rc = fail(err, errlen, "%s:%d: column '%s': '%s' is not a number", path, lineno,
                      m->names[bad], fields[bad]);
            break;
        }
        int ec = metrics_col(m, "epoch");
        if (isnan(row[ec])) {
            if (!complete) break;
            rc = fail(err, errlen, "%s:%d: the epoch field is empty", path, lineno);
            break;
        }
        m->nrows++;
    }
    free(fields);
    free(text);
    if (rc == 0 && !m->names) rc = fail(err, errlen, "%s: empty file (no header row)", path);
    if (rc == 0 && m->nrows == 0) rc = fail(err, errlen, "%s: no epochs recorded yet (header only)", path);
    if (rc != 0) metrics_free(m);
    return rc;
}

/* ---- series --------------------------------------------------------------------------------- */

typedef struct series {
    char label[160];
    double r, g, b;
    int dashed;
    int n;
    double *x, *y;
    int best; /* index of the point to highlight, or -1 */
} series;

/* (epoch, value, row) triples: by epoch, then by row. */
static int cmp_triple(const void *a, const void *b)
{
    const double *p = a, *q = b;
    if (p[0] != q[0]) return (p[0] > q[0]) - (p[0] < q[0]);
    return (p[2] > q[2]) - (p[2] < q[2]);
}

/* The (epoch, column) points with a value, sorted by epoch, a repeated epoch keeping its last
 * row. Returns -1 on allocation failure, else 0 (s->n may be 0). */
static int series_from(series *s, const metrics *m, const char *col)
{
    s->n = 0;
    s->best = -1;
    s->x = s->y = NULL;
    int c = metrics_col(m, col), ec = metrics_col(m, "epoch");
    if (c < 0 || m->nrows == 0) return 0;
    double *pairs = malloc(sizeof *pairs * 3 * (size_t)m->nrows);
    if (!pairs) return -1;
    int n = 0;
    for (int r = 0; r < m->nrows; r++) {
        const double *row = m->v + (size_t)r * (size_t)m->ncols;
        pairs[3 * n] = row[ec];
        pairs[3 * n + 1] = row[c];
        pairs[3 * n + 2] = r;
        n++;
    }
    /* By epoch, then by row, so the last row of a repeated epoch comes last. */
    qsort(pairs, (size_t)n, 3 * sizeof *pairs, cmp_triple);
    s->x = malloc(sizeof *s->x * (size_t)n);
    s->y = malloc(sizeof *s->y * (size_t)n);
    if (!s->x || !s->y) {
        free(pairs);
        free(s->x);
        free(s->y);
        s->x = s->y = NULL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (i + 1 < n && pairs[3 * (i + 1)] == pairs[3 * i]) continue; /* superseded */
        if (isnan(pairs[3 * i + 1])) continue;
        s->x[s->n] = pairs[3 * i];
        s->y[s->n] = pairs[3 * i + 1];
        s->n++;
    }
    free(pairs);
    return 0;
}

static void series_free(series *s)
{
    free(s->x);
    free(s->y);
    s->x = s->y = NULL;
    s->n = 0;
}

static int argmax(const series *s)
{
    int b = -1;
    for (int i = 0; i < s->n; i++)
        if (b < 0 || s->y[i] > s->y[b]) b = i;
    return b;
}

/* ---- drawing primitives --------------------------------------------------------------------- */

typedef struct rect {
    double x, y, w, h;
} rect;

/* The frame is `area`; data map into it inset by a margin, so end points and markers are not
 * cut by the frame. Ticks are the multiples of the step within [min, max]. */
#define INSET_X 14.0
#define INSET_Y 8.0
typedef struct axes {
    rect area;                     /* plot frame in pixels */
    double xmin, xmax, ymin, ymax; /* data range mapped to the inset frame */
    double xstep, ystep;           /* tick spacing */
} axes;

static double nice_step(double raw)
{
    if (!(raw > 0)) return 1.0;
    double e = pow(10.0, floor(log10(raw)));
    double f = raw / e;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * e;
}

static int decimals_for(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 8 ? 8 : d;
}

/* Extend [lo,hi] to whole ticks, about `target` of them. */
static void nice_range(double *lo, double *hi, double *step, int target)
{
    if (!(*hi > *lo)) {
        double pad = fabs(*lo) > 1e-12 ? fabs(*lo) * 0.05 : 0.5;
        *lo -= pad;
        *hi += pad;
    }
    double s = nice_step((*hi - *lo) / target);
    *lo = floor(*lo / s + 1e-9) * s;
    *hi = ceil(*hi / s - 1e-9) * s;
    if (!(*hi > *lo)) *hi = *lo + s;
    *step = s;
}

static double px_x(const axes *a, double x)
{
    return a->area.x + INSET_X + (x - a->xmin) / (a->xmax - a->xmin) * (a->area.w - 2 * INSET_X);
}
static double px_y(const axes *a, double y)
{
    return a->area.y + a->area.h - INSET_Y -
           (y - a->ymin) / (a->ymax - a->ymin) * (a->area.h - 2 * INSET_Y);
}

static void set_rgb(cairo_t *cr, unsigned hex)
{
    cairo_set_source_rgb(cr, ((hex >> 16) & 255) / 255.0, ((hex >> 8) & 255) / 255.0,
                         (hex & 255) / 255.0);
}

static void font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Draw text with its anchor at (x, y): ax 0 left, 0.5 centre, 1 right; y is the vertical
 * centre of digits/capitals. */
static void text_at(cairo_t *cr, double x, double y, double ax, const char *s)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = text_width(cr, s);
    cairo_move_to(cr, x - ax * w, y + fe.ascent * 0.36);
    cairo_show_text(cr, s);
}

static void fmt_num(char *buf, size_t n, double v, double step)
{
    if (fabs(v) < step * 1e-6) v = 0.0;
    snprintf(buf, n, "%.*f", decimals_for(step), v);
}

/* Frame, grid, ticks, tick labels and axis labels. */
static void draw_axes(cairo_t *cr, const axes *a, const char *xlabel, const char *ylabel)
{
    const rect *r = &a->area;
    set_rgb(cr, 0xffffff);
    cairo_rectangle(cr, r->x, r->y, r->w, r->h);
    cairo_fill(cr);

    char buf[64];
    cairo_set_line_width(cr, 1.0);
    font(cr, 12.5, 0);
    /* y grid and labels */
    double max_label_w = 0;
    for (double v = ceil(a->ymin / a->ystep - 1e-9) * a->ystep; v <= a->ymax + a->ystep * 1e-6;
         v += a->ystep) {
        double y = round(px_y(a, v)) + 0.5;
        set_rgb(cr, 0xe6e6e6);
        cairo_move_to(cr, r->x, y);
        cairo_line_to(cr, r->x + r->w, y);
        cairo_stroke(cr);
        set_rgb(cr, 0x555555);
        cairo_move_to(cr, r->x - 5, y);
        cairo_line_to(cr, r->x, y);
        cairo_stroke(cr);
        fmt_num(buf, sizeof buf, v, a->ystep);
        set_rgb(cr, 0x333333);
        text_at(cr, r->x - 9, y, 1.0, buf);
        double tw = text_width(cr, buf);
        if (tw > max_label_w) max_label_w = tw;
    }
    /* x grid and labels */
    for (double v = ceil(a->xmin / a->xstep - 1e-9) * a->xstep; v <= a->xmax + a->xstep * 1e-6;
         v += a->xstep) {
        double x = round(px_x(a, v)) + 0.5;
        set_rgb(cr, 0xe6e6e6);
        cairo_move_to(cr, x, r->y);
        cairo_line_to(cr, x, r->y + r->h);
        cairo_stroke(cr);
        set_rgb(cr, 0x555555);
        cairo_move_to(cr, x, r->y + r->h);
        cairo_line_to(cr, x, r->y + r->h + 5);
        cairo_stroke(cr);
        fmt_num(buf, sizeof buf, v, a->xstep);
        set_rgb(cr, 0x333333);
        text_at(cr, x, r->y + r->h + 18, 0.5, buf);
    }
    /* frame */
    set_rgb(cr, 0x555555);
    cairo_rectangle(cr, round(r->x) + 0.5, round(r->y) + 0.5, round(r->w), round(r->h));
    cairo_stroke(cr);

    /* axis labels */
    font(cr, 14, 0);
    set_rgb(cr, 0x222222);
    text_at(cr, r->x + r->w / 2, r->y + r->h + 42, 0.5, xlabel);
    cairo_save(cr);
    cairo_translate(cr, r->x - max_label_w - 26, r->y + r->h / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, 0.5, ylabel);
    cairo_restore(cr);
}

/* Point markers, unless they would crowd the line. */
static int show_markers(const axes *a, const series *s)
{
    if (s->n <= 1) return 1;
    return (a->area.w - 2 * INSET_X) / (double)(s->n - 1) >= 9.0;
}

static void draw_series(cairo_t *cr, const axes *a, const series *s)
{
    if (s->n == 0) return;
    cairo_save(cr);
    cairo_rectangle(cr, a->area.x, a->area.y, a->area.w, a->area.h);
    cairo_clip(cr);
    cairo_set_source_rgb(cr, s->r, s->g, s->b);
    cairo_set_line_width(cr, 2.2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    if (s->dashed) {
        const double dash[] = {7.0, 4.0};
        cairo_set_dash(cr, dash, 2, 0);
    }
    for (int i = 0; i < s->n; i++) {
        double x = px_x(a, s->x[i]), y = px_y(a, s->y[i]);
        if (i == 0)
            cairo_move_to(cr, x, y);
        else
            cairo_line_to(cr, x, y);
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    if (show_markers(a, s)) {
        for (int i = 0; i < s->n; i++) {
            cairo_arc(cr, px_x(a, s->x[i]), px_y(a, s->y[i]), 3.2, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
    if (s->best >= 0) {
        double x = px_x(a, s->x[s->best]), y = px_y(a, s->y[s->best]);
        cairo_set_line_width(cr, 2.0);
        cairo_arc(cr, x, y, 7.0, 0, 2 * M_PI);
        cairo_stroke(cr);
    }
    cairo_restore(cr);
}

/* How many of the series' points (and line midpoints) fall inside box. */
static int points_inside(const axes *a, const series *ss, int ns, rect box)
{
    int count = 0;
    for (int k = 0; k < ns; k++) {
        const series *s = &ss[k];
        for (int i = 0; i < s->n; i++) {
            for (int h = 0; h < 4 && (h == 0 || i + 1 < s->n); h++) {
                double t = h / 4.0;
                double x = i + 1 < s->n ? s->x[i] + t * (s->x[i + 1] - s->x[i]) : s->x[i];
                double y = i + 1 < s->n ? s->y[i] + t * (s->y[i + 1] - s->y[i]) : s->y[i];
                double px = px_x(a, x), py = px_y(a, y);
                if (px >= box.x - 16 && px <= box.x + box.w + 16 && py >= box.y - 16 &&
                    py <= box.y + box.h + 16)
                    count++;
            }
        }
    }
    return count;
}

/* Legend inside the plot area, in whichever corner covers the fewest data points. */
static void draw_legend(cairo_t *cr, const axes *a, const series *ss, int ns)
{
    font(cr, 13, 0);
    double row_h = 22, swatch = 30, pad = 10;
    double w = 0;
    for (int k = 0; k < ns; k++) {
        double tw = text_width(cr, ss[k].label);
        if (tw > w) w = tw;
    }
    w += swatch + 8 + 2 * pad;
    double h = ns * row_h + 2 * pad - 6;
    const double m = 12;
    rect corners[4] = {
        {a->area.x + a->area.w - w - m, a->area.y + m, w, h},               /* top right */
        {a->area.x + m, a->area.y + m, w, h},                               /* top left */
        {a->area.x + a->area.w - w - m, a->area.y + a->area.h - h - m, w, h}, /* bottom right */
        {a->area.x + m, a->area.y + a->area.h - h - m, w, h},               /* bottom left */
    };
    int best = 0, best_n = -1;
    for (int c = 0; c < 4; c++) {
        int n = points_inside(a, ss, ns, corners[c]);
        if (best_n < 0 || n < best_n) best = c, best_n = n;
    }
    rect b = corners[best];
    b.x = round(b.x) + 0.5;
    b.y = round(b.y) + 0.5;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_rectangle(cr, b.x, b.y, b.w, b.h);
    cairo_fill_preserve(cr);
    set_rgb(cr, 0xcccccc);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    for (int k = 0; k < ns; k++) {
        const series *s = &ss[k];
        double cy = b.y + pad + row_h * k + 6;
        cairo_set_source_rgb(cr, s->r, s->g, s->b);
        cairo_set_line_width(cr, 2.2);
        if (s->dashed) {
            const double dash[] = {7.0, 4.0};
            cairo_set_dash(cr, dash, 2, 0);
        }
        cairo_move_to(cr, b.x + pad, cy);
        cairo_line_to(cr, b.x + pad + swatch, cy);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (show_markers(a, s)) {
            cairo_arc(cr, b.x + pad + swatch / 2, cy, 3.2, 0, 2 * M_PI);
            cairo_fill(cr);
        }
        set_rgb(cr, 0x222222);
        text_at(cr, b.x + pad + swatch + 8, cy, 0.0, s->label);
    }
}

static void no_data(cairo_t *cr, const rect *r, const char *msg)
{
    set_rgb(cr, 0xffffff);
    cairo_rectangle(cr, r->x, r->y, r->w, r->h);
    cairo_fill(cr);
    set_rgb(cr, 0xaaaaaa);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, round(r->x) + 0.5, round(r->y) + 0.5, round(r->w), round(r->h));
    cairo_stroke(cr);
    font(cr, 15, 0);
    set_rgb(cr, 0x888888);
    text_at(cr, r->x + r->w / 2, r->y + r->h / 2, 0.5, msg);
}

/* Data ranges of several series, then nice axes over them. */
static int fit_axes(axes *a, const series *ss, int ns, int force_int_x)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < ss[k].n; i++) {
            xlo = fmin(xlo, ss[k].x[i]), xhi = fmax(xhi, ss[k].x[i]);
            ylo = fmin(ylo, ss[k].y[i]), yhi = fmax(yhi, ss[k].y[i]);
        }
    if (!isfinite(xlo)) return 0;
    /* Epoch axis: exactly the epochs present (one epoch: centred), whole-number ticks. */
    if (!(xhi > xlo)) xlo -= 1, xhi += 1;
    a->xstep = nice_step((xhi - xlo) / 8);
    if (force_int_x && a->xstep < 1.0) a->xstep = 1.0;
    /* Value axis: extended to whole ticks. */
    double span = yhi - ylo;
    ylo -= span * 0.04;
    yhi += span * 0.04;
    nice_range(&ylo, &yhi, &a->ystep, 6);
    a->xmin = xlo, a->xmax = xhi, a->ymin = ylo, a->ymax = yhi;
    return 1;
}

static void panel_title(cairo_t *cr, const rect *area, const char *title)
{
    font(cr, 15, 1);
    set_rgb(cr, 0x222222);
    text_at(cr, area->x + area->w / 2, area->y - 16, 0.5, title);
}

/* ---- output --------------------------------------------------------------------------------- */

static cairo_status_t write_cb(void *closure, const unsigned char *data, unsigned int len)
{
    return fwrite(data, 1, len, (FILE *)closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static int write_png_atomic(cairo_surface_t *surf, const char *out, char *err, size_t errlen)
{
    size_t n = strlen(out) + 32;
    char *tmp = malloc(n);
    if (!tmp) return fail(err, errlen, "%s: out of memory", out);
    snprintf(tmp, n, "%s.tmp.%ld", out, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return fail(err, errlen, "%s: cannot create a temporary file next to it: %s", out, strerror(e));
    }
    int rc = 0;
    cairo_status_t cs = cairo_surface_write_to_png_stream(surf, write_cb, f);
    if (cs != CAIRO_STATUS_SUCCESS)
        rc = fail(err, errlen, "%s: writing the PNG failed: %s", out, cairo_status_to_string(cs));
    if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = fail(err, errlen, "%s: write failed: %s", out, strerror(errno));
    if (fclose(f) != 0 && rc == 0) rc = fail(err, errlen, "%s: write failed: %s", out, strerror(errno));
    if (rc == 0 && rename(tmp, out) != 0)
        rc = fail(err, errlen, "%s: cannot rename the temporary file into place: %s", out, strerror(errno));
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

static void copy_str(char *dst, size_t n, const char *src, size_t len)
{
    if (!n) return;
    if (len > n - 1) len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Run name: basename of the run directory, or of the directory holding the CSV when is_csv
 * (a CSV in the current directory is named after the current directory). */
static void run_name(const char *path, int is_csv, char *buf, size_t n)
{
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/') end--;
    if (is_csv) { /* drop the file name */
        size_t k = end;
        while (k > 0 && path[k - 1] != '/') k--;
        end = k;
        while (end > 1 && path[end - 1] == '/') end--;
    }
    size_t start = end;
    while (start > 0 && path[start - 1] != '/') start--;
    if (end == 0 || (end - start == 1 && path[start] == '.')) {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) {
            const char *b = strrchr(cwd, '/');
            b = b && b[1] ? b + 1 : cwd;
            copy_str(buf, n, b, strlen(b));
            return;
        }
        copy_str(buf, n, "run", 3);
        return;
    }
    copy_str(buf, n, path + start, end - start);
}

static cairo_t *new_canvas(int w, int h, cairo_surface_t **surf)
{
    *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(*surf);
    set_rgb(cr, 0xffffff);
    cairo_paint(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_GOOD);
    return cr;
}

static void title_block(cairo_t *cr, int width, const char *title, const char *subtitle)
{
    font(cr, 21, 1);
    set_rgb(cr, 0x111111);
    text_at(cr, width / 2.0, 30, 0.5, title);
    if (subtitle && *subtitle) {
        font(cr, 13.5, 0);
        set_rgb(cr, 0x555555);
        text_at(cr, width / 2.0, 56, 0.5, subtitle);
    }
}

static int finish(cairo_t *cr, cairo_surface_t *surf, const char *out, char *err, size_t errlen)
{
    int rc = 0;
    cairo_status_t cs = cairo_status(cr);
    if (cs != CAIRO_STATUS_SUCCESS) rc = fail(err, errlen, "%s: drawing failed: %s", out, cairo_status_to_string(cs));
    cairo_destroy(cr);
    cairo_surface_flush(surf);
    if (rc == 0) rc = write_png_atomic(surf, out, err, errlen);
    cairo_surface_destroy(surf);
    return rc;
}

/* ---- curves --------------------------------------------------------------------------------- */

static const unsigned palette[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                   0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

static void series_color(series *s, unsigned hex)
{
    s->r = ((hex >> 16) & 255) / 255.0;
    s->g = ((hex >> 8) & 255) / 255.0;
    s->b = (hex & 255) / 255.0;
}

int dc_plot_curves(const char *csv, const char *out_png, char *err, size_t errlen)
{
    if (!csv || !out_png) return fail(err, errlen, "dc_plot_curves: missing CSV or output path");
    metrics m;
    if (metrics_load(csv, &m, err, errlen) != 0) return -1;

    series loss[2], psnr;
    memset(loss, 0, sizeof loss);
    memset(&psnr, 0, sizeof psnr);
    int rc = 0;
    if (series_from(&loss[0], &m, "train_loss") || series_from(&loss[1], &m, "val_loss") ||
        series_from(&psnr, &m, "val_psnr"))
        rc = fail(err, errlen, "%s: out of memory", csv);
    if (rc == 0 && loss[0].n + loss[1].n + psnr.n == 0)
        rc = fail(err, errlen, "%s: no train_loss, val_loss or val_psnr values to plot", csv);
    if (rc != 0) goto out;

    snprintf(loss[0].label, sizeof loss[0].label, "train loss");
    series_color(&loss[0], palette[0]);
    snprintf(loss[1].label, sizeof loss[1].label, "validation loss");
    series_color(&loss[1], palette[1]);
    loss[1].dashed = 0;
    series_color(&psnr, palette[2]);
    psnr.best = argmax(&psnr);
    if (psnr.best >= 0)
        snprintf(psnr.label, sizeof psnr.label, "val PSNR (best %.2f dB, epoch %g)",
                 psnr.y[psnr.best], psnr.x[psnr.best]);

    const int W = 1280, H = 560;
    cairo_surface_t *surf;
    cairo_t *cr = new_canvas(W, H, &surf);

    char name[256], title[400], sub[512];
    run_name(csv, 1, name, sizeof name);
    snprintf(title, sizeof title, "Training curves: %s", name);
    /* Subtitle: what the last epoch reached. */
    int ec = metrics_col(&m, "epoch");
    double last_epoch = -INFINITY;
    for (int r = 0; r < m.nrows; r++) last_epoch = fmax(last_epoch, m.v[(size_t)r * m.ncols + ec]);
    int off = snprintf(sub, sizeof sub, "after epoch %g:", last_epoch);
    const char *names[3] = {"train loss", "val loss", "val PSNR"};
    const series *all[3] = {&loss[0], &loss[1], &psnr};
    for (int k = 0, first = 1; k < 3 && off > 0 && (size_t)off < sizeof sub; k++) {
        if (!all[k]->n) continue;
        off += snprintf(sub + off, sizeof sub - (size_t)off, "%s%s %.*f%s",
                        first ? "  " : "  \xc2\xb7  ", names[k], k == 2 ? 2 : 4,
                        all[k]->y[all[k]->n - 1], k == 2 ? " dB" : "");
        first = 0;
    }
    title_block(cr, W, title, sub);

    rect left = {95, 110, 500, 370}, right = {745, 110, 500, 370};
    axes a = {.area = left};
    if (fit_axes(&a, loss, 2, 1)) {
        draw_axes(cr, &a, "Epoch", "Loss (binary cross-entropy)");
        draw_series(cr, &a, &loss[0]);
        draw_series(cr, &a, &loss[1]);
        series shown[2];
        int ns = 0;
        for (int k = 0; k < 2; k++)
            if (loss[k].n) shown[ns++] = loss[k];
        draw_legend(cr, &a, shown, ns);
    } else {
        no_data(cr, &left, "no loss values");
    }
    panel_title(cr, &left, "Loss");

    axes b = {.area = right};
    if (fit_axes(&b, &psnr, 1, 1)) {
        draw_axes(cr, &b, "Epoch", "PSNR (dB)");
        draw_series(cr, &b, &psnr);
        draw_legend(cr, &b, &psnr, 1);
    } else {
        no_data(cr, &right, "no validation PSNR values");
    }
    panel_title(cr, &right, "Validation PSNR (denoised vs clean)");

    rc = finish(cr, surf, out_png, err, errlen);
out:
    series_free(&loss[0]);
    series_free(&loss[1]);
    series_free(&psnr);
    metrics_free(&m);
    return rc;
}

/* ---- compare -------------------------------------------------------------------------------- */

int dc_plot_compare(int nruns, char **run_dirs, const char *out_png, char *err, size_t errlen)
{
    if (nruns < 1 || !run_dirs || !out_png)
        return fail(err, errlen, "dc_plot_compare: need at least one run directory and an output path");
    series *ss = calloc((size_t)nruns, sizeof *ss);
    if (!ss) return fail(err, errlen, "%s: out of memory", out_png);
    int rc = 0;
    for (int i = 0; i < nruns && rc == 0; i++) {
        const char *arg = run_dirs[i];
        if (!arg || !*arg) {
            rc = fail(err, errlen, "%s: run %d of %d has an empty directory name", out_png, i + 1, nruns);
            break;
        }
        struct stat st;
        int is_dir = stat(arg, &st) == 0 && S_ISDIR(st.st_mode);
        size_t n = strlen(arg) + 16;
        char *csv = malloc(n);
        if (!csv) {
            rc = fail(err, errlen, "%s: out of memory", arg);
            break;
        }
        if (is_dir)
            snprintf(csv, n, "%s%smetrics.csv", arg, arg[strlen(arg) - 1] == '/' ? "" : "/");
        else
            snprintf(csv, n, "%s", arg);
        metrics m;
        if (metrics_load(csv, &m, err, errlen) != 0) {
            rc = -1;
        } else {
            if (series_from(&ss[i], &m, "val_psnr") != 0)
                rc = fail(err, errlen, "%s: out of memory", csv);
            else if (ss[i].n == 0)
                rc = fail(err, errlen, "%s: no val_psnr values to compare", csv);
            metrics_free(&m);
        }
        if (rc == 0) {
            char name[128];
            run_name(arg, !is_dir, name, sizeof name);
            ss[i].best = argmax(&ss[i]);
            snprintf(ss[i].label, sizeof ss[i].label, "%.100s  (best %.2f dB, epoch %g)", name,
                     ss[i].y[ss[i].best], ss[i].x[ss[i].best]);
            series_color(&ss[i], palette[i % 10]);
            ss[i].dashed = (i / 10) % 2; /* beyond ten runs, colours repeat dashed */
        }
        free(csv);
    }

    if (rc == 0) {
        const int W = 1280, H = 640;
        cairo_surface_t *surf;
        cairo_t *cr = new_canvas(W, H, &surf);
        char sub[64];
        snprintf(sub, sizeof sub, "%d run%s, PSNR of the denoised validation images", nruns,
                 nruns == 1 ? "" : "s");
        title_block(cr, W, "Validation PSNR by run", sub);

        /* Legend to the right of the plot, sized to the longest name. */
        font(cr, 13, 0);
        double lw = 0;
        for (int i = 0; i < nruns; i++) lw = fmax(lw, text_width(cr, ss[i].label));
        lw = fmin(lw + 30 + 8 + 20, 520);
        rect area = {95, 95, W - 95 - 40 - lw - 20, H - 95 - 75};
        axes a = {.area = area};
        fit_axes(&a, ss, nruns, 1);
        draw_axes(cr, &a, "Epoch", "PSNR (dB)");
        for (int i = 0; i < nruns; i++) draw_series(cr, &a, &ss[i]);

        double lx = area.x + area.w + 20, ly = area.y;
        for (int i = 0; i < nruns; i++) {
            double cy = ly + 12 + 24 * i;
            if (cy > H - 20) {
                font(cr, 12, 0);
                set_rgb(cr, 0x555555);
                char more[64];
                snprintf(more, sizeof more, "... and %d more", nruns - i);
                text_at(cr, lx, cy, 0.0, more);
                break;
            }
            const series *s = &ss[i];
            cairo_set_source_rgb(cr, s->r, s->g, s->b);
            cairo_set_line_width(cr, 2.2);
            if (s->dashed) {
                const double dash[] = {7.0, 4.0};
                cairo_set_dash(cr, dash, 2, 0);
            }
            cairo_move_to(cr, lx, cy);
            cairo_line_to(cr, lx + 30, cy);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            if (show_markers(&a, s)) {
                cairo_arc(cr, lx + 15, cy, 3.2, 0, 2 * M_PI);
                cairo_fill(cr);
            }
            font(cr, 13, 0);
            set_rgb(cr, 0x222222);
            text_at(cr, lx + 38, cy, 0.0, s->label);
        }
        rc = finish(cr, surf, out_png, err, errlen);
    }
    for (int i = 0; i < nruns; i++) series_free(&ss[i]);
    free(ss);
    return rc;
}

/* The run configuration table and the one parser/formatter it drives (see runconfig.h). */
#include "daecl/runconfig.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define F(member) offsetof(dc_run_config, member)
#define WHY_STREAMS "the random streams and the position in the epoch depend on it"
#define WHY_STATE "the optimizer state was accumulated with it"
#define DC_STR_(x) #x
#define DC_STR(x) DC_STR_(x)

static const dc_run_field fields[] = {
    {"data", "data", DC_RUN_PATH, F(data_dir), "data/mnist", "DIR", "directory with IDX files (dae-cl-fetch-mnist downloads MNIST), or a folder searched for PNG/JPEG images", 1, 0, NULL},
    {"arch", "arch", DC_RUN_ARCH, F(arch), "classic", "SPEC", "classic | keras | unet | unet64 | dncnn | a layer spec (dae-cl model --help)", 1, 0,
     "the weights belong to that architecture"},
    {"epochs", "epochs", DC_RUN_INT, F(epochs), "10", "N", "epochs to train (in total, when resuming)", 1, 1000000, NULL},
    {"batch", "batch", DC_RUN_INT, F(batch), "128", "N", "images per step", 1, 65536, WHY_STREAMS},
    {"optimizer", "optimizer", DC_RUN_OPTIMIZER, F(optim.kind), "adam", "NAME", "adam | adadelta | sgd | rmsprop | adagrad", 1, 0,
     "the optimizer state belongs to it"},
    {"lr", "lr", DC_RUN_FLOAT, F(optim.lr), NULL, "X", "learning rate (Keras defaults; adadelta as the original blog post)", 1e-12, 1e6, NULL},
    {"momentum", "momentum", DC_RUN_FLOAT, F(optim.momentum), NULL, "X", "SGD/RMSprop momentum", 0, 0.999999, WHY_STATE},
    {"nesterov", "nesterov", DC_RUN_BOOL, F(optim.nesterov), "0", NULL, "SGD with Nesterov momentum", 1, 0, WHY_STATE},
    {"beta1", "beta1", DC_RUN_FLOAT, F(optim.beta1), NULL, "X", "Adam beta1", 0, 0.999999, WHY_STATE},
    {"beta2", "beta2", DC_RUN_FLOAT, F(optim.beta2), NULL, "X", "Adam beta2", 0, 0.999999, WHY_STATE},
    {"rho", "rho", DC_RUN_FLOAT, F(optim.rho), NULL, "X", "Adadelta/RMSprop decay", 0, 0.999999, WHY_STATE},
    {"eps", "eps", DC_RUN_FLOAT, F(optim.eps), NULL, "X", "epsilon", 0, 1, WHY_STATE},
    {"initial_accumulator", "initial-accumulator", DC_RUN_FLOAT, F(optim.initial_accumulator), NULL, "X",
     "Adagrad initial accumulator", 0, 1e6, WHY_STATE},
    {"loss", "loss", DC_RUN_LOSS, F(loss), "bce", "NAME", "bce | mse | l1 (default: bce for a sigmoid head, mse for a residual or other one)", 1, 0,
     "the weights were trained for it"},
    {"noise", "noise", DC_RUN_NOISE, F(noise), "gaussian:0.5", "KIND:X",
     "gaussian:S | saltpepper:P | speckle:S | poisson:PEAK | mask:P | none; a range LO-HI (gaussian:0-0.2) draws "
     "the level per image (blind denoising); pixels are on [0,1]: sigma 25/255 = 0.098", 1, 0,
     "the model is trained to remove it"},
    {"noise_fixed", "noise-fixed", DC_RUN_BOOL, F(noise_fixed), "0", NULL,
     "draw the training noise once, not every epoch (as the original study)", 1, 0, WHY_STREAMS},
    {"seed", "seed", DC_RUN_U64, F(seed), "1", "N", "seed of weights, shuffling and noise", 0, 18446744073709551615.0,
     WHY_STREAMS},
    {"train_limit", "train-limit", DC_RUN_U64, F(train_limit), "0", "N", "use only the first N training images (0: all)", 0,
     18446744073709551615.0, WHY_STREAMS},
    {"val_limit", "val-limit", DC_RUN_U64, F(val_limit), "0", "N", "validate on the first N test images (0: all)", 0,
     18446744073709551615.0, NULL},
    {"validate_every", "validate-every", DC_RUN_INT, F(validate_every), "1", "N", "validate every N epochs (and after the last)",
     1, 1000000, NULL},
    {"samples", "no-samples", DC_RUN_BOOL, F(samples), "1", NULL, "do not write samples/epoch_NNN.png", 1, 0, NULL},
    {"transpose", "transpose", DC_RUN_BOOL, F(transpose), "0", NULL, "transpose images as they load (EMNIST)", 1, 0,
     "the weights were trained on images the other way round"},
    {"lr_schedule", "lr-schedule", DC_RUN_SCHEDULE, F(schedule.kind), "constant", "NAME",
     "learning rate per epoch: constant | step | cosine | plateau", 1, 0,
     "the schedule's state (plateau's reductions) belongs to it"},
    {"lr_step_every", "lr-step-every", DC_RUN_INT, F(schedule.step_every), "10", "E",
     "step: multiply the rate by --lr-gamma every E epochs", 1, 1000000, NULL},
    {"lr_gamma", "lr-gamma", DC_RUN_FLOAT, F(schedule.gamma), "0.1", "X", "step, plateau: factor of each reduction",
     1e-9, 1, NULL},
    {"warmup", "warmup", DC_RUN_INT, F(schedule.warmup), "0", "W", "cosine: epochs of linear warmup", 0, 1000000, NULL},
    {"lr_patience", "lr-patience", DC_RUN_INT, F(schedule.patience), "5", "P",
     "plateau: reduce after P epochs without val_loss improvement", 1, 1000000, NULL},
    {"min_lr", "min-lr", DC_RUN_FLOAT, F(schedule.min_lr), "0", "X", "cosine: the final rate; plateau: the floor", 0, 1e6,
     NULL},
    {"early_stop", "early-stop", DC_RUN_INT, F(early_stop), "0", "P",
     "stop after P epochs without val_loss improvement (0: never); best.dcl keeps the best", 0, 1000000, NULL},
    {"save_every", "save-every", DC_RUN_INT, F(save_every), "0", "E", "also save epoch_NNN.dcl every E epochs (0: never)",
     0, 1000000, NULL},
    {"keep", "keep", DC_RUN_INT, F(keep), "0", "K", "keep only the K most recent epoch_NNN.dcl (0: all)", 0, 1000000,
     NULL},
    /* The model's shape beyond --arch (model rows: keep them together). */
    {"residual", "residual", DC_RUN_BOOL, F(residual), "0", NULL,
     "residual learning: the model predicts the noise, output = input - prediction (linear last layer; mse or l1)", 1, 0,
     "the weights belong to that architecture"},
    {"depth", "depth", DC_RUN_INT, F(depth), "0", "D",
     "--arch dncnn: conv layers, 2 to " DC_STR(DC_DNCNN_MAX_DEPTH) "; 0 = " DC_STR(DC_DNCNN_DEPTH), 0, DC_DNCNN_MAX_DEPTH,
     "the weights belong to that architecture"},
    {"width", "width", DC_RUN_INT, F(width), "0", "W", "--arch dncnn: filters per conv layer; 0 = " DC_STR(DC_DNCNN_WIDTH),
     0, 4096, "the weights belong to that architecture"},
    /* image folders (--data DIR of PNG/JPEG files) */
    {"channels", "channels", DC_RUN_INT, F(channels), "0", "C",
     "image folders: 1 (gray, Rec.601 luma) or 3 (colour); 0: 3 when any image is colour", 0, 3,
     "the model's input channels depend on it"},
    {"patch", "patch", DC_RUN_INT, F(patch), "0", "N",
     "image folders: train on random N x N crops, chosen in proportion to image area (0: 64)", 0, 4096,
     "the model's input size depends on it"},
    {"augment", "augment", DC_RUN_BOOL, F(augment), "0", NULL, "image folders: random flips and 90-degree rotations of the crops",
     1, 0, WHY_STREAMS},
    {"patches_per_epoch", "patches-per-epoch", DC_RUN_INT, F(patches_per_epoch), "4096", "N",
     "image folders: crops per epoch", 1, 1 << 30, WHY_STREAMS},
    {"val_data", "val-data", DC_RUN_PATH, F(val_data), "", "DIR",
     "image folders: validate on this folder's centre crops (default: --val-split, else the training images')", 1, 0,
     NULL},
    {"val_split", "val-split", DC_RUN_FLOAT, F(val_split), "0", "F",
     "image folders: hold out this fraction of the images for validation, chosen by a hash of the path", 0, 0.9,
     "it decides which images are trained on"},
    {"max_data_mb", "max-data-mb", DC_RUN_INT, F(max_data_mb), "2048", "MB",
     "image folders: refuse a folder whose pixels need more host memory (uint8, uint16 when 16-bit)", 1, 1 << 24, NULL},
    {"strict", "strict", DC_RUN_BOOL, F(strict), "0", NULL,
     "image folders: stop at the first unreadable image (default: skip it, count it)", 1, 0, NULL},
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))
_Static_assert(sizeof fields / sizeof fields[0] <= 64, "one bit of dc_run_config.given per field");

const dc_run_field *dc_run_fields(int *count)
{
    *count = NFIELDS;
    return fields;
}

int dc_run_field_find(const char *name)
{
    for (int i = 0; name && i < NFIELDS; i++)
        if (strcmp(fields[i].key, name) == 0 || strcmp(fields[i].flag, name) == 0) return i;
    return -1;
}

static void *at(dc_run_config *c, int f) { return (char *)c + fields[f].offset; }
static const void *cat(const dc_run_config *c, int f) { return (const char *)c + fields[f].offset; }
static int is_hyper(int f) { return fields[f].type == DC_RUN_FLOAT && fields[f].def == NULL; }

/* Shortest text that reads back to the same float, so stored runs resume bit-exactly. */
static void format_float(float v, char *buf, size_t len)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, len, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

void dc_run_config_value(const dc_run_config *c, int f, char *buf, size_t len)
{
    const void *p = cat(c, f);
    switch (fields[f].type) {
    case DC_RUN_PATH:
    case DC_RUN_ARCH: snprintf(buf, len, "%s", (const char *)p); break;
    case DC_RUN_INT:
    case DC_RUN_BOOL: snprintf(buf, len, "%d", *(const int *)p); break;
    case DC_RUN_U64: snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case DC_RUN_FLOAT: format_float(*(const float *)p, buf, len); break;
    case DC_RUN_OPTIMIZER: snprintf(buf, len, "%s", dc_optim_name(*(const dc_optim_kind *)p)); break;
    case DC_RUN_LOSS: snprintf(buf, len, "%s", dc_loss_name(*(const dc_loss_kind *)p)); break;
    case DC_RUN_NOISE: dc_noise_format((const dc_noise_config *)p, buf, len); break;
    case DC_RUN_SCHEDULE: snprintf(buf, len, "%s", dc_lr_schedule_name(*(const dc_lr_schedule *)p)); break;
    }
}

static dc_status bad(const dc_run_field *fd, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static dc_status bad(const dc_run_field *fd, const char *value, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return dc_fail(DC_ERR_INVALID_ARG, "--%s: %s, got '%s'", fd->flag, why, value);
}

/* The dncnn preset's canonical spec at this depth and width (0: its defaults). */
static dc_status dncnn_canonical(const dc_run_config *c, int depth, int width, char *buf)
{
    dc_arch arch;
    dc_arch_options o = {depth, width, c->residual};
    DC_TRY(dc_arch_parse_with("dncnn", &o, &arch));
    dc_arch_format(&arch, buf, DC_SPEC_MAX);
    return DC_OK;
}

/* --depth or --width: the architecture follows while it is the dncnn preset's (--arch given
 * before or after); anything else is left for dc_run_config_check to refuse. */
static dc_status resize_dncnn(dc_run_config *c, int *slot, int value)
{
    char before[DC_SPEC_MAX], after[DC_SPEC_MAX];
    DC_TRY(dncnn_canonical(c, c->depth, c->width, before));
    int old = *slot;
    *slot = value;
    dc_status s = dncnn_canonical(c, c->depth, c->width, after);
    if (s) {
        *slot = old;
        return s;
    }
    if (strcmp(c->arch, before) == 0) snprintf(c->arch, sizeof c->arch, "%s", after);
    return DC_OK;
}

static dc_status set_field(dc_run_config *c, int f, const char *v)
{
    const dc_run_field *fd = &fields[f];
    void *p = at(c, f);
    char *end;
    errno = 0;
    switch (fd->type) {
    case DC_RUN_PATH:
        if ((!*v && !(fd->def && !*fd->def)) || strlen(v) >= DC_RUN_PATH_MAX) /* "" only where it is the default */ return bad(fd, v, "expected a path of 1 to %d bytes", DC_RUN_PATH_MAX - 1);
        snprintf((char *)p, DC_RUN_PATH_MAX, "%s", v);
        break;
    case DC_RUN_ARCH: {
        dc_arch arch;
        dc_arch_options o = {0, 0, c->residual};
        if (strcmp(v, "dncnn") == 0) o.depth = c->depth, o.width = c->width;
        DC_TRY(dc_arch_parse_with(v, &o, &arch));
        dc_arch_format(&arch, (char *)p, DC_SPEC_MAX);
        break;
    }
    case DC_RUN_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno) return bad(fd, v, "expected an integer");
        if (x < fd->min || x > fd->max) return bad(fd, v, "must be between %.0f and %.0f", fd->min, fd->max);
        if (p == &c->depth || p == &c->width) return resize_dncnn(c, (int *)p, (int)x);
        *(int *)p = (int)x;
        break;
    }
    case DC_RUN_BOOL:
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) return bad(fd, v, "expected 0 or 1");
        *(int *)p = v[0] == '1';
        if (p == &c->residual && c->residual) {
            dc_arch arch;
            dc_arch_options o = {0, 0, 1};
            DC_TRY(dc_arch_parse_with(c->arch, &o, &arch));
            dc_arch_format(&arch, c->arch, sizeof c->arch);
        }
        break;
    case DC_RUN_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (v[0] == '-' || end == v || *end || errno) return bad(fd, v, "expected a non-negative integer");
        *(uint64_t *)p = x;
        break;
    }
    case DC_RUN_FLOAT: {
        float x = strtof(v, &end);
        if (end == v || *end || errno || !isfinite(x)) return bad(fd, v, "expected a finite number");
        if (x < fd->min || x > fd->max) return bad(fd, v, "must be between %g and %g", fd->min, fd->max);
        *(float *)p = x;
        break;
    }
    case DC_RUN_OPTIMIZER: {
        dc_optim_kind k;
        if (dc_optim_parse(v, &k) != DC_OK) return bad(fd, v, "unknown optimizer (adam, adadelta, sgd, rmsprop, adagrad)");
        /* The new optimizer's defaults for every hyper-parameter the user did not choose. */
        dc_run_config d = *c;
        dc_optim_defaults(k, &d.optim);
        for (int h = 0; h < NFIELDS; h++)
            if (is_hyper(h) && !(c->given >> h & 1)) *(float *)at(c, h) = *(float *)at(&d, h);
        c->optim.kind = k;
        break;
    }
    case DC_RUN_LOSS: DC_TRY(dc_loss_parse(v, (dc_loss_kind *)p)); break;
    case DC_RUN_NOISE: DC_TRY(dc_noise_parse(v, (dc_noise_config *)p)); break;
    case DC_RUN_SCHEDULE: DC_TRY(dc_lr_schedule_parse(v, (dc_lr_schedule *)p)); break;
    }
    return DC_OK;
}

dc_status dc_run_config_set(dc_run_config *c, const char *name, const char *value)
{
    int f = dc_run_field_find(name);
    if (f < 0) return dc_fail(DC_ERR_INVALID_ARG, "unknown setting '%s'", name ? name : "(null)");
    const char *flag_value = fields[f].def && fields[f].def[0] == '1' ? "0" : "1";
    if (!value && fields[f].type != DC_RUN_BOOL) return dc_fail(DC_ERR_INVALID_ARG, "--%s needs a value", fields[f].flag);
    DC_TRY(set_field(c, f, value ? value : flag_value));
    c->given |= 1ull << f;
    /* A loss not chosen follows the model: cross-entropy needs a sigmoid output. */
    int loss = dc_run_field_find("loss");
    dc_arch arch;
    if (!(c->given >> loss & 1) && dc_arch_parse(c->arch, &arch) == DC_OK)
        c->loss = !arch.residual && arch.layers[arch.nlayers - 1].act == DC_ACT_SIGMOID ? DC_LOSS_BCE : DC_LOSS_MSE;
    return DC_OK;
}

void dc_run_config_defaults(dc_run_config *c)
{
    memset(c, 0, sizeof *c);
    for (int f = 0; f < NFIELDS; f++)
        if (fields[f].def) set_field(c, f, fields[f].def); /* the table's defaults are valid */
    c->given = 0;
}

void dc_run_config_default_text(int f, char *buf, size_t len)
{
    if (fields[f].def) {
        snprintf(buf, len, "%s", fields[f].def[0] ? fields[f].def : "none"); /* "" (no folder) reads "none" in help */
        return;
    }
    /* An optimizer hyper-parameter: the value of each optimizer that uses it (one value if
     * they agree). */
    size_t n = 0;
    int users = 0, agree = 1;
    float first = 0.0f;
    buf[0] = '\0';
    for (int k = 0; k < DC_OPT_COUNT; k++) {
        dc_run_config d;
        memset(&d, 0, sizeof d);
        dc_optim_defaults((dc_optim_kind)k, &d.optim);
        float v = *(float *)at(&d, f);
        if (v == 0.0f) continue;
        if (users++ == 0) first = v;
        agree &= v == first;
        char num[32];
        format_float(v, num, sizeof num);
        if (n < len) n += (size_t)snprintf(buf + n, len - n, "%s%s %s", n ? ", " : "", dc_optim_name((dc_optim_kind)k), num);
    }
    if (users == 0 || (users > 1 && agree)) format_float(first, buf, len);
}

dc_status dc_run_config_check(const dc_run_config *c)
{
    if (c->depth || c->width) {
        char sized[DC_SPEC_MAX];
        DC_TRY(dncnn_canonical(c, c->depth, c->width, sized));
        if (strcmp(sized, c->arch) != 0)
            return dc_fail(DC_ERR_INVALID_ARG, "--depth and --width size --arch dncnn, not %.80s%s", c->arch,
                           strlen(c->arch) > 80 ? "..." : "");
    }
    DC_TRY(dc_optim_validate(&c->optim));
    return dc_schedule_check(&c->schedule, c->epochs);
}

size_t dc_run_config_format(const dc_run_config *c, int with_arch, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "config_version=%d\n", DC_RUN_CONFIG_VERSION);
    for (int f = 0; f < NFIELDS; f++) {
        if (fields[f].type == DC_RUN_ARCH && !with_arch) continue;
        char v[DC_SPEC_MAX];
        dc_run_config_value(c, f, v, sizeof v);
        if (n < len) n += (size_t)snprintf(buf + n, len - n, "%s=%s\n", fields[f].key, v);
    }
    return n < len ? n : len - 1;
}

static int listed(const char *const *list, const char *key)
{
    for (; list && *list; list++)
        if (strcmp(*list, key) == 0) return 1;
    return 0;
}

dc_status dc_run_config_parse(const char *text, const char *origin, const char *const *ignore, dc_run_config *c,
                              char *unknown)
{
    dc_run_config_defaults(c);
    if (unknown) unknown[0] = '\0';
    int lineno = 0;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char line[DC_SPEC_MAX + 64];
        if (ll >= sizeof line)
            return dc_fail(DC_ERR_FORMAT, "%s: run configuration line %d is too long", origin, lineno);
        memcpy(line, p, ll);
        line[ll] = '\0';
        p = nl ? nl + 1 : NULL;
        if (!line[0]) continue;
        char *eq = strchr(line, '=');
        if (!eq) return dc_fail(DC_ERR_FORMAT, "%s: run configuration line %d has no '=': '%s'", origin, lineno, line);
        *eq = '\0';
        const char *key = line, *value = eq + 1;
        if (strcmp(key, "config_version") == 0) {
            if (strcmp(value, "1") != 0)
                return dc_fail(DC_ERR_FORMAT, "%s: run configuration version %s; this dae-cl reads version %d", origin,
                               value, DC_RUN_CONFIG_VERSION);
            continue;
        }
        if (listed(ignore, key)) continue;
        int f = -1;
        for (int i = 0; i < NFIELDS; i++)
            if (strcmp(fields[i].key, key) == 0) f = i;
        if (f < 0) {
            if (!unknown)
                return dc_fail(DC_ERR_FORMAT, "%s: unknown setting '%s' in the run configuration (written by a newer dae-cl?)",
                               origin, key);
            if (!unknown[0]) snprintf(unknown, 64, "%.63s", key);
            continue;
        }
        if (set_field(c, f, value) != DC_OK) {
            char detail[512];
            snprintf(detail, sizeof detail, "%s", dc_error_detail());
            return dc_fail(DC_ERR_FORMAT, "%s: bad %s in the run configuration: %s", origin, key, detail);
        }
        c->given |= 1ull << f; /* a later optimizer line must not reset it */
    }
    c->given = 0;
    return DC_OK;
}

dc_status dc_run_config_resume(dc_run_config *run, const dc_run_config *asked, char *notices, size_t len)
{
    size_t n = 0;
    if (len) notices[0] = '\0';
    for (int f = 0; f < NFIELDS; f++) {
        if (!(asked->given >> f & 1)) continue;
        char was[DC_SPEC_MAX], now[DC_SPEC_MAX];
        dc_run_config_value(run, f, was, sizeof was);
        dc_run_config_value(asked, f, now, sizeof now);
        if (strcmp(was, now) == 0) continue;
        const dc_run_field *fd = &fields[f];
        if (fd->fixed)
            return dc_fail(DC_ERR_INVALID_ARG,
                           "--%s %s: the checkpoint's run has %s=%s, which cannot change on --resume (%s); "
                           "start a new run with another --out to change it",
                           fd->flag, now, fd->key, was, fd->fixed);
        DC_TRY(set_field(run, f, now));
        if (n < len) {
            if (fd->type == DC_RUN_BOOL)
                n += (size_t)snprintf(notices + n, len - n, "--%s replaces %s=%s from the checkpoint\n", fd->flag, fd->key,
                                      was);
            else
                n += (size_t)snprintf(notices + n, len - n, "--%s %s replaces %s from the checkpoint\n", fd->flag, now, was);
        }
    }
    return DC_OK;
}

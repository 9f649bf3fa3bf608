/* Architecture spec strings: parsing, presets, canonical formatting (see model.h). The tokens
 * and their options come from the layer registry (daecl/layer.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/model.h"

_Static_assert(DC_DNCNN_MAX_DEPTH < DC_MAX_LAYERS, "a dncnn of the largest depth must fit");

static const struct {
    const char *name, *spec;
} presets[] = {
    /* The Keras-blog denoiser the original study trained. */
    {"classic", "conv:32,pool,conv:32,pool,conv:32,up,conv:32,up,conv:C:sigmoid"},
    /* Its Conv2DTranspose variant. */
    {"keras", "conv:32,pool,conv:32,pool,convT:32,convT:32,conv:C:sigmoid"},
    /* classic + additive encoder→decoder skips: same parameters, better PSNR (+1.3 dB after one epoch, README). */
    {"unet", "conv:32@e1,pool,conv:32@e2,pool,conv:32,up,add:e2,conv:32,up,add:e1,conv:C:sigmoid"},
    /* unet with a deeper, wider bottleneck (two 64-filter convs at 7x7, where pixels are few):
     * the 10-minute MNIST recipe (README, tools/demo --best). */
    {"unet64", "conv:32@e1,pool,conv:32@e2,pool,conv:64,conv:64,conv:32,up,add:e2,conv:32,up,add:e1,conv:C:sigmoid"},
    /* dncnn_spec(DC_DNCNN_DEPTH, DC_DNCNN_WIDTH): test_model checks that they agree. */
    {"dncnn", "conv:32,conv:32,conv:32,conv:32,conv:32,conv:32,conv:32,conv:C:linear,residual"},
};

/* DnCNN (Zhang et al. 2017) without batch norm: conv+ReLU, depth-2 conv+ReLU, a linear conv
 * that predicts the noise, subtracted from the input. */
static void dncnn_spec(int depth, int width, char *buf, size_t len)
{
    size_t used = 0;
    for (int i = 0; i < depth - 1 && used < len; i++) used += (size_t)snprintf(buf + used, len - used, "conv:%d,", width);
    if (used < len) snprintf(buf + used, len - used, "conv:C:linear,residual");
}

const char *dc_arch_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return presets[i].spec;
    return NULL;
}

void dc_arch_bind(dc_arch *a, int in_c)
{
    for (int i = 0; i < a->nlayers; i++)
        if (a->layers[i].from_input) a->layers[i].channels = in_c;
}

static dc_status bad_token(int index, const char *tok, const char *why)
{
    return dc_fail(DC_ERR_INVALID_ARG, "--arch: layer %d '%s': %s", index + 1, tok, why);
}

static int parse_positive(const char *s, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v <= 0 || v > max) return -1;
    *out = (int)v;
    return 0;
}

/* One token, e.g. "conv:32:relu:k5@e1". */
static dc_status parse_token(dc_arch *a, int index, char *tok)
{
    char orig[128];
    snprintf(orig, sizeof orig, "%s", tok);
    dc_layer_spec *L = &a->layers[index];
    memset(L, 0, sizeof *L);
    L->k = 3;
    L->act = DC_ACT_RELU;
    L->ref = -1;

    char *at = strchr(tok, '@');
    if (at) {
        *at = '\0';
        const char *name = at + 1;
        if (!*name || strlen(name) >= sizeof L->name) return bad_token(index, orig, "bad @name");
        for (const char *p = name; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_') return bad_token(index, orig, "a @name is letters, digits and _");
        for (int i = 0; i < index; i++)
            if (strcmp(a->layers[i].name, name) == 0) return bad_token(index, orig, "this @name is already used");
        snprintf(L->name, sizeof L->name, "%s", name);
    }
    char *fields[8];
    int nf = 0;
    for (char *save = NULL, *f = strtok_r(tok, ":", &save); f && nf < 8; f = strtok_r(NULL, ":", &save))
        fields[nf++] = f;
    if (nf == 0) return bad_token(index, orig, "empty layer");

    const dc_layer_kind *kind = dc_layer_kind_find(fields[0]);
    if (!kind) {
        char kinds[256];
        dc_layer_kind_list(0, kinds, sizeof kinds);
        char why[300];
        snprintf(why, sizeof why, "unknown layer (%s)", kinds);
        return bad_token(index, orig, why);
    }
    L->kind = kind;
    unsigned opts = kind->options;
    L->act = opts & DC_LAYER_OPT_ACT ? DC_ACT_RELU : DC_ACT_NONE;
    int f = 1;
    if (opts & DC_LAYER_OPT_CHANNELS) {
        if (nf >= 2 && strcmp(fields[1], "C") == 0) {
            L->from_input = 1; /* bound to the model's in_c by dc_arch_bind */
        } else if (nf < 2 || parse_positive(fields[1], 4096, &L->channels)) {
            char why[128];
            snprintf(why, sizeof why, "needs a channel count from 1 to 4096 or C (the input's), e.g. %s:32", kind->token);
            return bad_token(index, orig, why);
        }
        f = 2;
    }
    if (opts & DC_LAYER_OPT_REF) {
        if (nf != 2) {
            char why[96];
            snprintf(why, sizeof why, "needs the name of an earlier layer, e.g. %s:e1", kind->token);
            return bad_token(index, orig, why);
        }
        for (int i = 0; i < index; i++)
            if (strcmp(a->layers[i].name, fields[1]) == 0) L->ref = i;
        if (L->ref < 0) return bad_token(index, orig, "no earlier layer has this @name");
        for (int i = 0; i < index; i++)
            if (a->layers[i].ref == L->ref) return bad_token(index, orig, "a layer output can be merged only once");
        return DC_OK;
    }
    if (!(opts & (DC_LAYER_OPT_ACT | DC_LAYER_OPT_K)) && nf > f) return bad_token(index, orig, "takes no options");
    for (; f < nf; f++) {
        const char *o = fields[f];
        if ((opts & DC_LAYER_OPT_K) && o[0] == 'k' && isdigit((unsigned char)o[1])) {
            if (parse_positive(o + 1, 31, &L->k) || L->k % 2 == 0)
                return bad_token(index, orig, "kernel size must be odd, 1 to 31 (k3, k5)");
        } else if ((opts & DC_LAYER_OPT_ACT) && (strcmp(o, "linear") == 0 || strcmp(o, "none") == 0)) {
            L->act = DC_ACT_NONE;
        } else if (!(opts & DC_LAYER_OPT_ACT) || dc_act_parse(o, &L->act) != DC_OK) {
            return bad_token(index, orig, opts & DC_LAYER_OPT_K
                                              ? "unknown option (use relu, sigmoid, tanh, leaky, linear or kN)"
                                              : "unknown option (use relu, sigmoid, tanh, leaky or linear)");
        }
    }
    return DC_OK;
}

dc_status dc_arch_parse(const char *spec, dc_arch *out) { return dc_arch_parse_with(spec, NULL, out); }

dc_status dc_arch_parse_with(const char *spec, const dc_arch_options *opt, dc_arch *out)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return dc_fail(DC_ERR_INVALID_ARG, "--arch: empty architecture");
    char sized[DC_SPEC_MAX];
    if (opt && (opt->depth || opt->width)) {
        if (strcmp(spec, "dncnn") != 0)
            return dc_fail(DC_ERR_INVALID_ARG, "--depth and --width size the dncnn preset, not --arch '%.60s'", spec);
        int depth = opt->depth ? opt->depth : DC_DNCNN_DEPTH, width = opt->width ? opt->width : DC_DNCNN_WIDTH;
        if (depth < 2 || depth > DC_DNCNN_MAX_DEPTH)
            return dc_fail(DC_ERR_INVALID_ARG, "--depth: dncnn has 2 to %d conv layers, not %d", DC_DNCNN_MAX_DEPTH, depth);
        if (width < 1 || width > 4096) return dc_fail(DC_ERR_INVALID_ARG, "--width: 1 to 4096 filters, not %d", width);
        dncnn_spec(depth, width, sized, sizeof sized);
        spec = sized;
    }
    const char *preset = dc_arch_preset(spec);
    if (preset) spec = preset;
    if (strlen(spec) >= DC_SPEC_MAX) return dc_fail(DC_ERR_INVALID_ARG, "--arch: spec is too long");
    char buf[DC_SPEC_MAX];
    snprintf(buf, sizeof buf, "%s", spec);
    int n = 0;
    char *p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        while (isspace((unsigned char)*p)) p++;
        for (char *e = p + strlen(p); e > p && isspace((unsigned char)e[-1]);) *--e = '\0';
        if (strcmp(p, "residual") == 0) {
            if (comma || n == 0) return bad_token(n, p, "residual is the last token, after the layers");
            out->residual = 1;
            break;
        }
        if (n >= DC_MAX_LAYERS)
            return dc_fail(DC_ERR_INVALID_ARG, "--arch: more than %d layers", DC_MAX_LAYERS);
        if (!*p) return bad_token(n, p, "empty layer (two commas in a row?)");
        DC_TRY(parse_token(out, n, p));
        n++;
        if (!comma) break;
        p = comma + 1;
    }
    out->nlayers = n;
    /* Its activation is the model's output head. */
    const dc_layer_spec *last = &out->layers[n - 1];
    if (!(last->kind->options & DC_LAYER_OPT_ACT)) {
        char kinds[128];
        dc_layer_kind_list(DC_LAYER_OPT_ACT, kinds, sizeof kinds);
        return dc_fail(DC_ERR_INVALID_ARG,
                       "--arch: the last layer must be one with an activation (%s), which is the output head "
                       "(e.g. conv:C:sigmoid), not '%s'",
                       kinds, last->kind->token);
    }
    if (opt && opt->residual) {
        out->residual = 1;
        out->layers[n - 1].act = DC_ACT_NONE; /* it predicts the noise, of either sign */
    }
    if (out->residual && last->act != DC_ACT_NONE)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "--arch: with the residual head the last layer predicts the noise, which has either sign: "
                       "make it linear (e.g. conv:C:linear,residual), not %s",
                       dc_act_name(last->act));
    return DC_OK;
}

void dc_arch_format(const dc_arch *a, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->nlayers && used < len; i++) {
        const dc_layer_spec *L = &a->layers[i];
        unsigned opts = L->kind->options;
        char tok[96];
        snprintf(tok, sizeof tok, "%s", L->kind->token);
        if ((opts & DC_LAYER_OPT_CHANNELS) && L->from_input) snprintf(tok + strlen(tok), sizeof tok - strlen(tok), ":C");
        else if (opts & DC_LAYER_OPT_CHANNELS) snprintf(tok + strlen(tok), sizeof tok - strlen(tok), ":%d", L->channels);
        if ((opts & DC_LAYER_OPT_ACT) && L->act != DC_ACT_RELU)
            snprintf(tok + strlen(tok), sizeof tok - strlen(tok), ":%s", L->act == DC_ACT_NONE ? "linear" : dc_act_name(L->act));
        if ((opts & DC_LAYER_OPT_K) && L->k != 3) snprintf(tok + strlen(tok), sizeof tok - strlen(tok), ":k%d", L->k);
        if (opts & DC_LAYER_OPT_REF) snprintf(tok + strlen(tok), sizeof tok - strlen(tok), ":%s", a->layers[L->ref].name);
        int w = snprintf(buf + used, len - used, "%s%s%s%s", i ? "," : "", tok, L->name[0] ? "@" : "", L->name);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (a->residual && used < len) snprintf(buf + used, len - used, ",residual");
}

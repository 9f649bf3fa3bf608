/* The layer registry (src/daecl/layer.h), walked kind by kind: every kind must have its test
 * hooks (tests/ref_model.c), or this test fails. For each kind:
 *  - spec grammar: a token with every option the kind takes parses into those fields and
 *    formats back byte for byte; defaults are left out; options it does not take are refused;
 *  - shape rule against the hook's independent rule, on odd and even sizes;
 *  - tiling geometry (dc_denoise_geometry, from the descriptors' reach rules) against a
 *    measurement on the double reference: a small model around the kind runs on a large random
 *    image and on a window cut from it; the pixels where the two differ give the reach (how far
 *    from the window edge the output changes), and the smallest window shift that leaves the
 *    window's interior unchanged gives the alignment;
 *  - the same model on the device against the reference (logits, loss, parameter gradient),
 *    the reference gradient itself checked by central finite differences. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daecl/denoise.h"
#include "ref_model.h"
#include "test.h"

static void subst(char *out, size_t len, const char *model, const char *token)
{
    const char *at = strstr(model, "%s");
    snprintf(out, len, "%.*s%s%s", (int)(at - model), model, token, at + 2);
}

/* The index of the layer that "%s" stands for in a hook's model. */
static int subst_index(const char *model)
{
    int i = 0;
    for (const char *p = model; p < strstr(model, "%s"); p++) i += *p == ',';
    return i;
}

static void test_grammar(const dc_layer_kind *k)
{
    unsigned o = k->options;
    char tok[128], spec[256], back[DC_SPEC_MAX];
    /* Every option, non-default values, then a @name. */
    snprintf(tok, sizeof tok, "%s%s%s%s%s@x", k->token, o & DC_LAYER_OPT_CHANNELS ? ":7" : "",
             o & DC_LAYER_OPT_ACT ? ":tanh" : "", o & DC_LAYER_OPT_K ? ":k5" : "", o & DC_LAYER_OPT_REF ? ":a" : "");
    snprintf(spec, sizeof spec, "conv:2@a,%s,conv:1:sigmoid", tok);
    dc_arch a;
    dc_status s = dc_arch_parse(spec, &a);
    CHECK(s == DC_OK, "%s: '%s' -> %s", k->token, spec, dc_error_detail());
    if (s) return;
    const dc_layer_spec *L = &a.layers[1];
    CHECK(L->kind == k, "%s: parsed as %s", k->token, L->kind->token);
    CHECK(strcmp(L->name, "x") == 0, "%s: name '%s'", k->token, L->name);
    if (o & DC_LAYER_OPT_CHANNELS) CHECK(L->channels == 7, "%s: channels %d", k->token, L->channels);
    CHECK(L->act == (o & DC_LAYER_OPT_ACT ? DC_ACT_TANH : DC_ACT_NONE), "%s: act %s", k->token, dc_act_name(L->act));
    if (o & DC_LAYER_OPT_K) CHECK(L->k == 5, "%s: k %d", k->token, L->k);
    CHECK(L->ref == (o & DC_LAYER_OPT_REF ? 0 : -1), "%s: ref %d", k->token, L->ref);
    dc_arch_format(&a, back, sizeof back);
    CHECK(strcmp(back, spec) == 0, "%s: round trip '%s' -> '%s'", k->token, spec, back);

    /* Defaults (relu, k3) are left out of the canonical form. */
    snprintf(spec, sizeof spec, "conv:2@a,%s%s%s%s%s,conv:1:sigmoid", k->token, o & DC_LAYER_OPT_CHANNELS ? ":7" : "",
             o & DC_LAYER_OPT_ACT ? ":relu" : "", o & DC_LAYER_OPT_K ? ":k3" : "", o & DC_LAYER_OPT_REF ? ":a" : "");
    CHECK_OK(dc_arch_parse(spec, &a));
    dc_arch_format(&a, back, sizeof back);
    char want[256];
    snprintf(want, sizeof want, "conv:2@a,%s%s%s,conv:1:sigmoid", k->token, o & DC_LAYER_OPT_CHANNELS ? ":7" : "",
             o & DC_LAYER_OPT_REF ? ":a" : "");
    CHECK(strcmp(back, want) == 0, "%s: defaults: '%s' -> '%s', want '%s'", k->token, spec, back, want);
    CHECK(a.layers[1].act == (o & DC_LAYER_OPT_ACT ? DC_ACT_RELU : DC_ACT_NONE), "%s: default act", k->token);

    /* Options the kind does not take, or misses, are refused with the token named. */
    const char *bad[4];
    int nbad = 0;
    char b1[64], b2[64], b3[64];
    snprintf(b1, sizeof b1, "%s%s:tanh", k->token, o & DC_LAYER_OPT_CHANNELS ? ":7" : "");
    snprintf(b2, sizeof b2, "%s%s:k4", k->token, o & DC_LAYER_OPT_CHANNELS ? ":7" : "");
    snprintf(b3, sizeof b3, "%s", k->token);
    if (!(o & DC_LAYER_OPT_ACT)) bad[nbad++] = b1;
    bad[nbad++] = b2; /* k4: even, or no kernel-size option at all */
    if (o & (DC_LAYER_OPT_CHANNELS | DC_LAYER_OPT_REF)) bad[nbad++] = b3;
    for (int i = 0; i < nbad; i++) {
        snprintf(spec, sizeof spec, "conv:2@a,%s,conv:1:sigmoid", bad[i]);
        s = dc_arch_parse(spec, &a);
        char where[96];
        snprintf(where, sizeof where, "layer 2 '%s'", bad[i]);
        CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), where), "%s: '%s' -> %d '%s'", k->token, spec,
              (int)s, dc_error_detail());
    }
    /* Only a kind with an activation can end the model (it is the output head). */
    snprintf(spec, sizeof spec, "conv:2@a,%s", tok);
    s = dc_arch_parse(spec, &a);
    if (o & DC_LAYER_OPT_ACT)
        CHECK(s == DC_OK, "%s may end a model: %s", k->token, dc_error_detail());
    else
        CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "last layer"), "%s ends a model: %s", k->token,
              dc_error_detail());
}

static void test_shape(const dc_layer_kind *k, const ref_kind *hook)
{
    char spec[256];
    subst(spec, sizeof spec, hook->model, hook->sample);
    dc_arch a;
    CHECK_OK(dc_arch_parse(spec, &a));
    const dc_layer_spec *L = &a.layers[subst_index(hook->model)];
    CHECK(L->kind == k, "%s: the hook's model '%s' has %s at the marked place", k->token, spec, L->kind->token);
    int bad = 0;
    for (int c = 1; c <= 3; c += 2)
        for (int h = 2; h <= 9; h++)
            for (int w = 2; w <= 9; w++) {
                dc_layer_state ref = {.c = c, .h = h, .w = w}; /* what a merge's named layer holds */
                dc_layer_state got = {0};
                int oc, oh, ow;
                hook->shape(L, c, h, w, ref.c, &oc, &oh, &ow);
                dc_status s = k->shape(L, c, h, w, L->ref >= 0 ? &ref : NULL, &got);
                if (s || got.c != oc || got.h != oh || got.w != ow) bad++;
                if (bad == 1 && (s || got.c != oc || got.h != oh || got.w != ow))
                    CHECK(0, "%s on %dx%dx%d: registry %dx%dx%d (%s), reference %dx%dx%d", k->token, c, h, w, got.c,
                          got.h, got.w, s ? dc_error_detail() : "ok", oc, oh, ow);
                /* Parameters: weights and bias of a conv-like kind, none otherwise. */
                size_t np = L->kind->options & DC_LAYER_OPT_CHANNELS
                                ? (size_t)c * L->channels * L->k * L->k + (size_t)L->channels : 0;
                if (got.nparams != np) bad++;
                if ((got.nparams > 0) != (k->init != NULL)) bad++;
            }
    CHECK(bad == 0, "%s: %d shape/parameter mismatches", k->token, bad);
}

/* Reach and alignment, measured on the double reference (see the top of the file). */
enum { BIG = 48, WIN = 24, OFF = 8 };

static void run_ref(const dc_arch *a, const double *p, const double *x, int h, int w, double *out)
{
    ref_model r;
    if (ref_model_init(&r, a, 1, h, w) != DC_OK) abort();
    memcpy(out, ref_model_forward(&r, p, x), (size_t)h * w * sizeof *out);
    ref_model_free(&r);
}

/* The window at (oy, ox) against the big image's output: the largest distance-to-edge + 1 of a
 * differing pixel (0: none differ), counting only pixels at least `from` from the edge. */
static int differing_reach(const dc_arch *a, const double *p, const double *big_in, const double *big_out, int oy,
                           int ox, int from)
{
    double win_in[WIN * WIN], win_out[WIN * WIN];
    for (int y = 0; y < WIN; y++)
        for (int x = 0; x < WIN; x++) win_in[y * WIN + x] = big_in[(oy + y) * BIG + ox + x];
    run_ref(a, p, win_in, WIN, WIN, win_out);
    double scale = 1e-30;
    for (int i = 0; i < BIG * BIG; i++) scale = fmax(scale, fabs(big_out[i]));
    int reach = 0;
    for (int y = 0; y < WIN; y++)
        for (int x = 0; x < WIN; x++) {
            int d = y < x ? y : x;
            if (WIN - 1 - y < d) d = WIN - 1 - y;
            if (WIN - 1 - x < d) d = WIN - 1 - x;
            if (d < from) continue;
            if (fabs(win_out[y * WIN + x] - big_out[(oy + y) * BIG + ox + x]) > 1e-12 * scale && d + 1 > reach)
                reach = d + 1;
        }
    return reach;
}

static void test_geometry_k(const dc_layer_kind *k, const char *spec, int index, int ksize, uint64_t *rng)
{
    dc_arch a;
    CHECK_OK(dc_arch_parse(spec, &a));
    if (ksize) a.layers[index].k = ksize;
    dc_layer_state plan[DC_MAX_LAYERS];
    size_t np = 0;
    CHECK_OK(dc_model_plan(&a, 1, BIG, BIG, plan, &np, NULL));
    double *p = malloc(np * sizeof *p), *big_in = malloc(BIG * BIG * sizeof *big_in),
           *big_out = malloc(BIG * BIG * sizeof *big_out);
    for (size_t i = 0; i < np; i++) p[i] = test_uniform(rng, -0.5, 0.5);
    for (int i = 0; i < BIG * BIG; i++) big_in[i] = test_uniform(rng, 0, 1);
    run_ref(&a, p, big_in, BIG, BIG, big_out);

    int align, reach;
    dc_denoise_geometry(&a, &align, &reach, NULL);
    int measured = differing_reach(&a, p, big_in, big_out, OFF, OFF, 0);
    /* Alignment: the smallest shift whose window interior (beyond the reach) is unchanged. */
    int measured_align = 0;
    for (int s = 1; s <= OFF && !measured_align; s++)
        if (differing_reach(&a, p, big_in, big_out, OFF + s, OFF + s, measured) == 0) measured_align = s;
    char canon[DC_SPEC_MAX];
    dc_arch_format(&a, canon, sizeof canon);
    fprintf(stderr, "%-8s %-50s reach %2d (measured %2d), align %d (measured %d)\n", k->token, canon, reach, measured,
            align, measured_align);
    /* The rule must cover what the model does; and it is exact for these models (a looser
     * rule would only waste margin, but it would hide a wrong rule as well). */
    CHECK(measured <= reach, "%s: a window edge changes the output %d pixels in, the rule says %d", canon, measured,
          reach);
    CHECK(measured == reach, "%s: reach rule %d, measured %d", canon, reach, measured);
    CHECK(measured_align == align, "%s: align rule %d, measured %d", canon, align, measured_align);
    free(p);
    free(big_in);
    free(big_out);
}

/* The hook's model, and for kinds with a kernel size, k = 1, 3, 5, 7. */
static void test_geometry(const dc_layer_kind *k, const ref_kind *hook, uint64_t *rng)
{
    char spec[256];
    subst(spec, sizeof spec, hook->model, hook->sample);
    int index = subst_index(hook->model);
    if (!(k->options & DC_LAYER_OPT_K)) {
        test_geometry_k(k, spec, index, 0, rng);
        return;
    }
    for (int ksize = 1; ksize <= 7; ksize += 2) test_geometry_k(k, spec, index, ksize, rng);
}

static void test_device(dc_device *dev, const dc_layer_kind *k, const ref_kind *hook, uint64_t *rng)
{
    char spec[256];
    subst(spec, sizeof spec, hook->model, hook->sample);
    ref_model_check r;
    CHECK_OK(ref_check_model(dev, rng, spec, 2, 6, 10, DC_LOSS_BCE, 1, &r));
    fprintf(stderr, "%-8s %-50s FD %.1e, logits %.1e, loss %.1e, gradient %.1e\n", k->token, spec, r.fd_err,
            r.out_err, r.loss_err, r.grad_err);
    CHECK(r.fd_err < 1e-6, "%s: reference gradient vs finite differences %.2e", spec, r.fd_err);
    CHECK(r.out_err < 1e-4, "%s: logits err %.2e", spec, r.out_err);
    CHECK(r.loss_err < 1e-4, "%s: loss err %.2e", spec, r.loss_err);
    CHECK(r.grad_err < 1e-4, "%s: gradient err %.2e", spec, r.grad_err);
}

/* The kind's row in the model table (dc_model_print) of the hook's model: its description and
 * output shape. */
static void test_table(const dc_layer_kind *k, const ref_kind *hook)
{
    char spec[256];
    subst(spec, sizeof spec, hook->model, hook->sample);
    dc_arch a;
    CHECK_OK(dc_arch_parse(spec, &a));
    int index = subst_index(hook->model);
    dc_layer_state plan[DC_MAX_LAYERS];
    CHECK_OK(dc_model_plan(&a, 1, 8, 8, plan, NULL, NULL));
    char desc[64], row[128];
    k->describe(&a.layers[index], &a, desc, sizeof desc);
    snprintf(row, sizeof row, "%3d  %-26s %dx%dx%d ", index + 1, desc, plan[index].c, plan[index].h, plan[index].w);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    dc_model_print(&a, 1, 8, 8, f);
    fclose(f);
    CHECK(*desc && text && strstr(text, row), "%s: the model table lacks '%s':\n%s", k->token, row, text ? text : "");
    free(text);
}

/* The registry's own lookups, the unknown-kind message, and the model table. */
static void test_lookups(void)
{
    int n = dc_layer_kind_count();
    CHECK(n > 0 && dc_layer_kind_at(n) == NULL && dc_layer_kind_at(-1) == NULL, "registry bounds");
    CHECK(dc_layer_kind_find("nope") == NULL, "unknown token");
    dc_arch a;
    dc_status s = dc_arch_parse("conv:2,blah,conv:1:sigmoid", &a);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "unknown layer"), "unknown kind: %s", dc_error_detail());
    char msg[512];
    snprintf(msg, sizeof msg, "%s", dc_error_detail());
    for (int i = 0; i < n; i++) {
        const dc_layer_kind *k = dc_layer_kind_at(i);
        CHECK(dc_layer_kind_find(k->token) == k, "find %s", k->token);
        CHECK(strstr(msg, k->token) != NULL, "the unknown-kind message lists %s: %s", k->token, msg);
        CHECK(k->help && *k->help && k->describe && k->shape && k->reach && k->forward && k->backward,
              "%s: incomplete descriptor", k->token);
        for (int j = 0; j < i; j++) CHECK(strcmp(dc_layer_kind_at(j)->token, k->token) != 0, "%s twice", k->token);
    }
}

int main(void)
{
    uint64_t rng = test_seed();
    test_lookups();
    dc_device *dev = NULL;
    CHECK_OK(dc_device_open(-1, -1, &dev));
    for (int i = 0; i < dc_layer_kind_count(); i++) {
        const dc_layer_kind *k = dc_layer_kind_at(i);
        const ref_kind *hook = ref_kind_find(k->token);
        CHECK(hook != NULL, "layer kind '%s' has no test hook in tests/ref_model.c", k->token);
        CHECK(k->export_onnx != NULL, "layer kind '%s' has no export hook (tests/ci/export.sh checks them)", k->token);
        test_grammar(k);
        if (!hook) continue;
        test_shape(k, hook);
        test_table(k, hook);
        test_geometry(k, hook, &rng);
        if (dev) test_device(dev, k, hook, &rng);
    }
    /* The model table's rows, as they always were for the kinds it had. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    dc_arch a;
    CHECK_OK(dc_arch_parse("conv:4:tanh:k5@a,pool,convT:4,pool,up,add:a,conv:2@b,cat:b,conv:1:sigmoid", &a));
    dc_model_print(&a, 1, 8, 8, f);
    fclose(f);
    const char *rows[] = {"conv 5x5, 4 tanh @a", "convT s2 3x3, 4 relu", "maxpool 2x2", "upsample 2x",
                          "add a", "concat b", "conv 3x3, 1 sigmoid"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(text && strstr(text, rows[i]), "model table lacks '%s':\n%s", rows[i], text ? text : "");
    free(text);
    if (dev) dc_device_close(dev);
    TEST_MAIN_END();
}

/* The run configuration table (daecl/runconfig.h), walked field by field: every default parses
 * and formats back; random values survive format -> parse bit-exactly; bad values are refused
 * naming the flag; on resume every field that may change is applied with a notice and every
 * other one refused with its reason; stored text from other versions is read or refused. */
#include <stdlib.h>
#include <string.h>

#include "daecl/runconfig.h"
#include "test.h"

/* A valid value for field f that differs from its default. */
static void other_value(const dc_run_field *fd, uint64_t *rng, char *buf, size_t len)
{
    switch (fd->type) {
    case DC_RUN_PATH: snprintf(buf, len, "/data/set-%llu", (unsigned long long)(test_rand_u64(rng) % 1000)); break;
    case DC_RUN_ARCH: snprintf(buf, len, "conv:%d,pool,conv:1:sigmoid", 2 + (int)(test_rand_u64(rng) % 30)); break;
    case DC_RUN_INT: {
        int lo = fd->min > 2 ? (int)fd->min : 2, hi = fd->max < 61 ? (int)fd->max : 61; /* inside the range */
        int v = lo + (int)(test_rand_u64(rng) % (unsigned)(hi - lo + 1));
        if (fd->def && atoi(fd->def) == v) v = v == hi ? lo : v + 1; /* never the default */
        snprintf(buf, len, "%d", v);
        break;
    }
    case DC_RUN_U64: snprintf(buf, len, "%llu", (unsigned long long)(test_rand_u64(rng) | 1ull << 63)); break;
    case DC_RUN_FLOAT: snprintf(buf, len, "%.9g", test_uniform(rng, 0.01, 0.9)); break;
    case DC_RUN_BOOL: snprintf(buf, len, "%s", fd->def[0] == '1' ? "0" : "1"); break;
    case DC_RUN_OPTIMIZER: snprintf(buf, len, "rmsprop"); break;
    case DC_RUN_LOSS: snprintf(buf, len, "mse"); break;
    case DC_RUN_NOISE: snprintf(buf, len, "saltpepper:%.3f", test_uniform(rng, 0.01, 0.5)); break;
    case DC_RUN_SCHEDULE: snprintf(buf, len, "%s", test_rand_u64(rng) % 2 ? "cosine" : "plateau"); break;
    }
}

int main(void)
{
    uint64_t rng = test_seed();
    int n;
    const dc_run_field *fields = dc_run_fields(&n);
    CHECK(n >= 20 && n <= 64, "%d fields", n);

    /* Defaults: each field's default text is its value in a default config. */
    dc_run_config d;
    dc_run_config_defaults(&d);
    CHECK(d.given == 0 && d.epochs == 10 && d.batch == 128 && d.optim.kind == DC_OPT_ADAM && d.optim.lr == 1e-3f &&
              d.noise.kind == DC_NOISE_GAUSSIAN && d.noise.param == 0.5f && d.seed == 1 && d.samples == 1,
          "defaults");
    for (int f = 0; f < n; f++) {
        char v[DC_SPEC_MAX], def[256];
        dc_run_config_value(&d, f, v, sizeof v);
        dc_run_config_default_text(f, def, sizeof def);
        CHECK(dc_run_field_find(fields[f].key) == f && dc_run_field_find(fields[f].flag) == f, "%s: find", fields[f].key);
        if (fields[f].def && fields[f].type != DC_RUN_ARCH)
            CHECK(strcmp(v, fields[f].def) == 0, "%s: default '%s' reads back as '%s'", fields[f].key, fields[f].def, v);
        CHECK(def[0] != '\0', "%s: no default text for help", fields[f].key);
    }
    char def[256];
    dc_run_config_default_text(dc_run_field_find("lr"), def, sizeof def);
    CHECK(strstr(def, "adam 0.001") && strstr(def, "sgd 0.01") && strstr(def, "adadelta 1"), "lr default: %s", def);
    dc_run_config_default_text(dc_run_field_find("eps"), def, sizeof def);
    CHECK(strcmp(def, "1e-07") == 0, "eps default: %s", def);
    dc_run_config_default_text(dc_run_field_find("seed"), def, sizeof def);
    CHECK(strcmp(def, "1") == 0, "seed default: %s", def);

    /* Random values, every field: format -> parse gives the same config, bit for bit. */
    for (int trial = 0; trial < 20; trial++) {
        dc_run_config c;
        dc_run_config_defaults(&c);
        for (int f = 0; f < n; f++) {
            char v[DC_SPEC_MAX];
            other_value(&fields[f], &rng, v, sizeof v);
            CHECK_OK(dc_run_config_set(&c, fields[f].key, v));
        }
        c.optim.lr = (float)test_uniform(&rng, 1e-7, 10); /* a float no short decimal names */
        char text[DC_RUN_TEXT_MAX];
        dc_run_config_format(&c, 1, text, sizeof text);
        dc_run_config back;
        CHECK_OK(dc_run_config_parse(text, "round trip", NULL, &back, NULL));
        c.given = 0;
        CHECK(memcmp(&c, &back, sizeof c) == 0, "round trip differs:\n%s", text);
    }

    /* The schedule's cross-field checks name the flag. */
    {
        dc_run_config s;
        dc_run_config_defaults(&s);
        CHECK_OK(dc_run_config_set(&s, "warmup", "2"));
        CHECK(dc_run_config_check(&s) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--warmup") &&
                  strstr(dc_error_detail(), "cosine"),
              "warmup without cosine: %s", dc_error_detail());
        CHECK_OK(dc_run_config_set(&s, "lr-schedule", "cosine"));
        CHECK_OK(dc_run_config_check(&s));
        CHECK_OK(dc_run_config_set(&s, "warmup", "10"));
        CHECK(dc_run_config_check(&s) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--epochs 10"),
              "warmup >= epochs: %s", dc_error_detail());
    }

    /* The optimizer's hyper-parameters: its defaults, except those the user gave (any order). */
    dc_run_config c;
    dc_run_config_defaults(&c);
    CHECK_OK(dc_run_config_set(&c, "lr", "0.25"));
    CHECK_OK(dc_run_config_set(&c, "optimizer", "adadelta"));
    CHECK(c.optim.kind == DC_OPT_ADADELTA && c.optim.lr == 0.25f && c.optim.rho == 0.95f && c.optim.beta1 == 0.0f,
          "optimizer after --lr: lr %g rho %g beta1 %g", (double)c.optim.lr, (double)c.optim.rho, (double)c.optim.beta1);
    CHECK_OK(dc_run_config_set(&c, "no-samples", NULL));
    CHECK(c.samples == 0, "--no-samples");

    /* Bad values: DC_ERR_INVALID_ARG, one line naming the flag and the value. */
    static const struct {
        const char *flag, *value, *says;
    } bad[] = {
        {"batch", "0", "between 1 and 65536"}, {"epochs", "ten", "integer"},     {"seed", "-3", "non-negative"},
        {"lr", "nan", "finite"},               {"momentum", "1.5", "between"},    {"noise", "gaussian:99", "gaussian:99"},
        {"optimizer", "lbfgs", "unknown optimizer"}, {"loss", "hinge", "hinge"},  {"arch", "conv:x", "conv:x"},
        {"validate-every", "0", "between 1 and 1000000"}, {"lr-schedule", "linear", "constant, step, cosine or plateau"},
        {"lr-gamma", "1.5", "between"}, {"early-stop", "-1", "between 0 and"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dc_run_config_defaults(&c);
        dc_status s = dc_run_config_set(&c, bad[i].flag, bad[i].value);
        const char *e = dc_error_detail();
        CHECK(s == DC_ERR_INVALID_ARG && strstr(e, bad[i].says) && !strchr(e, '\n'), "--%s %s: %d '%s'", bad[i].flag,
              bad[i].value, (int)s, e);
        if (i < 5) CHECK(strstr(e, bad[i].flag) != NULL, "message names --%s: %s", bad[i].flag, e);
    }
    CHECK(dc_run_config_set(&c, "bogus", "1") == DC_ERR_INVALID_ARG, "unknown field");

    /* Resume: every field given with another value is applied with a notice or refused. */
    for (int f = 0; f < n; f++) {
        dc_run_config stored, asked;
        dc_run_config_defaults(&stored);
        dc_run_config_defaults(&asked);
        char v[DC_SPEC_MAX], notices[1024];
        other_value(&fields[f], &rng, v, sizeof v);
        CHECK_OK(dc_run_config_set(&asked, fields[f].key, v));
        dc_status s = dc_run_config_resume(&stored, &asked, notices, sizeof notices);
        if (fields[f].fixed) {
            const char *e = dc_error_detail();
            CHECK(s == DC_ERR_INVALID_ARG && strstr(e, fields[f].flag) && strstr(e, "cannot change on --resume") &&
                      strstr(e, fields[f].fixed),
                  "--%s on resume: %d '%s'", fields[f].flag, (int)s, e);
        } else {
            char got[DC_SPEC_MAX];
            dc_run_config_value(&stored, f, got, sizeof got);
            CHECK(s == DC_OK && strstr(notices, fields[f].flag) && strstr(notices, "replaces") && !strchr(notices, '\n')[1],
                  "--%s on resume: %d, notices '%s'", fields[f].flag, (int)s, notices);
            dc_run_config_value(&asked, f, v, sizeof v);
            CHECK(strcmp(got, v) == 0, "--%s not applied: %s", fields[f].flag, got);
        }
    }
    /* The same value again, or fields not given, change nothing and say nothing. */
    {
        dc_run_config stored, asked;
        dc_run_config_defaults(&stored);
        stored.batch = 64;
        dc_run_config_defaults(&asked);
        CHECK_OK(dc_run_config_set(&asked, "batch", "64"));
        char notices[256];
        CHECK_OK(dc_run_config_resume(&stored, &asked, notices, sizeof notices));
        CHECK(notices[0] == '\0' && stored.batch == 64, "same batch: '%s'", notices);
        dc_run_config_defaults(&stored);
        dc_run_config_set(&stored, "optimizer", "sgd");
        dc_run_config_defaults(&asked);
        CHECK_OK(dc_run_config_set(&asked, "lr", "0.0001"));
        CHECK_OK(dc_run_config_resume(&stored, &asked, notices, sizeof notices));
        CHECK(strcmp(notices, "--lr 0.0001 replaces 0.01 from the checkpoint\n") == 0 && stored.optim.kind == DC_OPT_SGD,
              "lr notice: '%s'", notices);
    }

    /* Stored text: missing keys take defaults (a field added later), unknown keys are reported
     * or refused, other versions and bad lines refused naming the origin. */
    dc_run_config p;
    char unknown[64];
    CHECK_OK(dc_run_config_parse("config_version=1\nbatch=32\n", "a.dcl", NULL, &p, NULL));
    CHECK(p.batch == 32 && p.epochs == 10 && p.given == 0, "partial text");
    CHECK_OK(dc_run_config_parse("batch=32\nfuture_knob=5\nzzz=1\n", "a.dcl", NULL, &p, unknown));
    CHECK(strcmp(unknown, "future_knob") == 0 && p.batch == 32, "unknown key: '%s'", unknown);
    CHECK(dc_run_config_parse("future_knob=5\n", "a.dcl", NULL, &p, NULL) == DC_ERR_FORMAT &&
              strstr(dc_error_detail(), "a.dcl") && strstr(dc_error_detail(), "future_knob"),
          "unknown key refused: %s", dc_error_detail());
    static const char *const skip[] = {"device", NULL};
    CHECK_OK(dc_run_config_parse("device=0:0 CPU\nseed=9\n", "a.dcl", skip, &p, NULL));
    CHECK(p.seed == 9, "ignored key");
    CHECK(dc_run_config_parse("config_version=2\n", "a.dcl", NULL, &p, NULL) == DC_ERR_FORMAT &&
              strstr(dc_error_detail(), "version 2"),
          "version: %s", dc_error_detail());
    CHECK(dc_run_config_parse("batch=0\n", "a.dcl", NULL, &p, NULL) == DC_ERR_FORMAT &&
              strstr(dc_error_detail(), "a.dcl") && strstr(dc_error_detail(), "batch"),
          "bad value: %s", dc_error_detail());
    CHECK(dc_run_config_parse("just words\n", "a.dcl", NULL, &p, NULL) == DC_ERR_FORMAT, "line without '='");
    /* Line order does not matter: an optimizer line after lr keeps lr. */
    CHECK_OK(dc_run_config_parse("lr=0.5\noptimizer=sgd\n", "a.dcl", NULL, &p, NULL));
    CHECK(p.optim.kind == DC_OPT_SGD && p.optim.lr == 0.5f, "lr before optimizer: %g", (double)p.optim.lr);

    /* Model rows: --depth/--width size dncnn given before or after --arch, --residual applies to
     * any arch, a loss not given follows the head; --depth on another arch is refused. */
    const char *orders[2][3][2] = {{{"arch", "dncnn"}, {"depth", "3"}, {"width", "5"}},
                                   {{"width", "5"}, {"depth", "3"}, {"arch", "dncnn"}}};
    for (int o = 0; o < 2; o++) {
        dc_run_config_defaults(&p);
        for (int i = 0; i < 3; i++) CHECK_OK(dc_run_config_set(&p, orders[o][i][0], orders[o][i][1]));
        CHECK_OK(dc_run_config_check(&p));
        CHECK(strcmp(p.arch, "conv:5,conv:5,conv:C:linear,residual") == 0 && p.loss == DC_LOSS_MSE, "order %d: %s, loss %s",
              o, p.arch, dc_loss_name(p.loss));
    }
    dc_run_config_defaults(&p);
    CHECK_OK(dc_run_config_set(&p, "residual", NULL));
    CHECK_OK(dc_run_config_set(&p, "arch", "unet"));
    CHECK(strstr(p.arch, "add:e1,conv:C:linear,residual") && p.loss == DC_LOSS_MSE, "unet --residual: %s", p.arch);
    dc_run_config_defaults(&p);
    CHECK_OK(dc_run_config_set(&p, "loss", "l1"));
    CHECK_OK(dc_run_config_set(&p, "arch", "dncnn"));
    CHECK(p.loss == DC_LOSS_L1, "a loss given stays");
    CHECK_OK(dc_run_config_set(&p, "arch", "classic"));
    CHECK_OK(dc_run_config_set(&p, "depth", "4"));
    CHECK(dc_run_config_check(&p) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--depth and --width size --arch dncnn"),
          "--depth on classic: %s", dc_error_detail());
    TEST_MAIN_END();
}

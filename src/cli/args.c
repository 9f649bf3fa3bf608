#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef DAECL_VERSION
#define DAECL_VERSION "unknown"
#endif

const char *args_program = "dae-cl";

arg_opt *args_find(arg_opt *opts, const char *name)
{
    for (arg_opt *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

static void show_default(const arg_opt *o, char *buf, size_t len)
{
    buf[0] = '\0';
    if (strstr(o->help, "(default")) return; /* the help line says it (a default that depends on something) */
    switch (o->type) {
    case ARG_INT: snprintf(buf, len, " (default %d)", *(int *)o->ptr); break;
    case ARG_U64: snprintf(buf, len, " (default %llu)", (unsigned long long)*(uint64_t *)o->ptr); break;
    case ARG_FLOAT: snprintf(buf, len, " (default %g)", *(float *)o->ptr); break;
    case ARG_STRING:
        if (*(const char **)o->ptr) snprintf(buf, len, " (default %s)", *(const char **)o->ptr);
        break;
    default: break;
    }
}

void args_help(const char *cmd, const arg_opt *opts, const char *usage, FILE *out)
{
    fprintf(out, "usage: %s %s %s\n\noptions:\n", args_program, cmd, usage);
    for (const arg_opt *o = opts; o->name; o++) {
        char left[64], def[128];
        snprintf(left, sizeof left, "%s%s%s%s", o->name[1] ? "--" : "-", o->name, o->type == ARG_FLAG ? "" : " ",
                 o->type == ARG_FLAG ? "" : (o->meta ? o->meta : "X"));
        show_default(o, def, sizeof def);
        fprintf(out, "  %-24s %s%s\n", left, o->help, def);
    }
    fprintf(out, "  %-24s %s\n", "--help", "show this help");
    fprintf(out, "  %-24s %s\n", "--version", "print the version");
}

static int bad(const char *cmd, const char *name, const char *why, const char *value)
{
    fprintf(stderr, "%s %s: %s%s: %s, got '%s' (see %s %s --help)\n", args_program, cmd, name[1] ? "--" : "-", name,
            why, value, args_program, cmd);
    return 2;
}

static int set_value(const char *cmd, arg_opt *o, const char *v)
{
    char *end;
    int checked = o->min <= o->max;
    errno = 0;
    switch (o->type) {
    case ARG_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno || x < INT_MIN || x > INT_MAX)
            return bad(cmd, o->name, "expected an integer (32-bit)", v);
        if (checked && (x < o->min || x > o->max)) {
            char why[96]; /* integers as integers: "between 0 and 1048576", never "1.04858e+06" */
            snprintf(why, sizeof why, "must be between %.0f and %.0f", o->min, o->max);
            return bad(cmd, o->name, why, v);
        }
        *(int *)o->ptr = (int)x;
        break;
    }
    case ARG_U64: {
        if (v[0] == '-') return bad(cmd, o->name, "expected a non-negative integer", v);
        unsigned long long x = strtoull(v, &end, 0);
        if (end == v || *end || errno) return bad(cmd, o->name, "expected a non-negative integer", v);
        *(uint64_t *)o->ptr = x;
        break;
    }
    case ARG_FLOAT: {
        double x = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(x)) return bad(cmd, o->name, "expected a finite number", v);
        if (checked && (x < o->min || x > o->max)) {
            char why[96];
            snprintf(why, sizeof why, "must be between %.10g and %.10g", o->min, o->max);
            return bad(cmd, o->name, why, v);
        }
        *(float *)o->ptr = (float)x;
        break;
    }
    case ARG_STRING: *(const char **)o->ptr = v; break;
    case ARG_FLAG: *(int *)o->ptr = 1; break;
    }
    o->given = 1;
    return 0;
}

int args_parse(const char *cmd, arg_opt *opts, int argc, char **argv, int first, const char **pos,
               int max_pos, int *npos, const char *usage)
{
    *npos = 0;
    int only_positional = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (*npos >= max_pos) {
                fprintf(stderr, "%s %s: unexpected argument '%s' (see %s %s --help)\n", args_program, cmd, a,
                        args_program, cmd);
                return 2;
            }
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_help(cmd, opts, usage, stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s\n", args_program, DAECL_VERSION);
            return 1;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        char key[64];
        const char *eq = strchr(name, '=');
        size_t klen = eq ? (size_t)(eq - name) : strlen(name);
        if (klen >= sizeof key) klen = sizeof key - 1;
        memcpy(key, name, klen);
        key[klen] = '\0';
        arg_opt *o = args_find(opts, key);
        if (!o) {
            fprintf(stderr, "%s %s: unknown option '%s' (see %s %s --help)\n", args_program, cmd, a, args_program,
                    cmd);
            return 2;
        }
        if (o->type == ARG_FLAG) {
            if (eq) return bad(cmd, key, "takes no value", eq + 1);
            set_value(cmd, o, NULL);
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "%s %s: %s%s needs a value (see %s %s --help)\n", args_program, cmd, key[1] ? "--" : "-",
                    key, args_program, cmd);
            return 2;
        }
        int r = set_value(cmd, o, v);
        if (r) return r;
    }
    return 0;
}

/* dae-cl export: a checkpoint's model as ONNX or NumPy .npz (daecl/export.h);
 * dae-cl info: what a checkpoint holds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "daecl/checkpoint.h"
#include "daecl/export.h"
#include "daecl/train.h"

#ifndef DAECL_VERSION
#define DAECL_VERSION "unknown"
#endif

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* The checkpoint and its parsed architecture; prints the problem and returns non-zero. */
static int load_model(const char *cmd, const char *path, dc_checkpoint *ck, dc_arch *arch)
{
    dc_status s = dc_checkpoint_load(path, ck);
    if (s) return cli_report(cmd, s);
    s = dc_arch_parse(ck->arch, arch);
    if (s) {
        dc_checkpoint_free(ck);
        return cli_report(cmd, dc_fail(DC_ERR_FORMAT, "%s: %s", path, dc_error_detail()));
    }
    return 0;
}

int cmd_export(int argc, char **argv)
{
    const char *model_path = NULL, *out = NULL, *format = NULL;
    arg_opt opts[] = {
        {"model", ARG_STRING, &model_path, "FILE", "checkpoint (runs/NAME/model.dcl)", 1, 0, 0},
        {"o", ARG_STRING, &out, "FILE", "output file: .onnx or .npz", 1, 0, 0},
        {"format", ARG_STRING, &format, "onnx|npz",
         "onnx: standard operators, opset 13, any batch and image size; npz: the weights as NumPy arrays "
         "named as `dae-cl info` lists them (default: from the -o extension)", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("export", opts, argc, argv, 1, pos, 1, &npos, "--model FILE -o OUT.onnx|OUT.npz");
    if (r) return r == 1 ? 0 : r;
    if (npos == 1 && !model_path) model_path = pos[0];
    if (!model_path || !out) {
        fprintf(stderr, "dae-cl export: --model FILE and -o OUT are required (see dae-cl export --help)\n");
        return 2;
    }
    if (strcmp(out, "-") == 0) {
        fprintf(stderr, "dae-cl export: -o -: the export is a binary file; give a path\n");
        return 2;
    }
    dc_export_format fmt;
    if (!format) format = ends_with(out, ".npz") ? "npz" : ends_with(out, ".onnx") ? "onnx" : NULL;
    if (!format) {
        fprintf(stderr, "dae-cl export: -o %s: name it .onnx or .npz, or give --format\n", out);
        return 2;
    }
    if (strcmp(format, "onnx") == 0)
        fmt = DC_EXPORT_ONNX;
    else if (strcmp(format, "npz") == 0)
        fmt = DC_EXPORT_NPZ;
    else {
        fprintf(stderr, "dae-cl export: --format: expected onnx or npz, got '%s'\n", format);
        return 2;
    }
    dc_checkpoint ck;
    dc_arch arch;
    r = load_model("export", model_path, &ck, &arch);
    if (r) return r;
    void *data = NULL;
    size_t size = 0;
    dc_status s = dc_export_model(&arch, ck.in_c, ck.in_h, ck.in_w, ck.params, ck.nparams, fmt, DAECL_VERSION,
                                  &data, &size);
    if (s)
        s = dc_fail(s, "%s: %s", model_path, dc_error_detail());
    else
        s = dc_write_file_atomic(out, data, size);
    free(data);
    dc_checkpoint_free(&ck);
    if (s) return cli_report("export", s);
    return 0;
}

/* ---- info ---------------------------------------------------------------------------------- */

/* Field `col` (0-based) of a CSV row as a number (NAN if absent or empty). */
static double csv_field(const char *row, int col)
{
    for (int i = 0; i < col && row; i++) {
        row = strpbrk(row, ",\n");
        if (row && *row == ',') row++;
        else row = NULL;
    }
    if (!row || !*row || *row == '\n' || *row == ',') return NAN;
    return strtod(row, NULL);
}

/* The last metrics row and the one with the lowest val_loss (NULL when there are none). */
static void find_metrics(const char *rows, const char **last, const char **best)
{
    *last = *best = NULL;
    double best_val = INFINITY;
    for (const char *row = rows; row && *row;) {
        *last = row;
        double v = csv_field(row, 2); /* val_loss */
        if (v < best_val) {
            best_val = v;
            *best = row;
        }
        const char *nl = strchr(row, '\n');
        if (!nl) break;
        row = nl + 1;
    }
}

static void print_metrics(const char *rows)
{
    const char *last, *best;
    find_metrics(rows, &last, &best);
    if (!last) {
        printf("metrics:      none stored (a version-1 checkpoint, or no epoch finished)\n");
        return;
    }
    printf("metrics:      epoch,train_loss,val_loss,val_psnr,val_ssim,val_acc,... (metrics.csv columns)\n");
    printf("  last:       %.*s\n", (int)strcspn(last, "\n"), last);
    if (best) printf("  best:       %.*s\n", (int)strcspn(best, "\n"), best);
}

static void info_text(const char *model_path, const dc_checkpoint *ck, const dc_arch *arch)
{
    printf("checkpoint:   %s (format version %d)\n", model_path, ck->version);
    printf("written by:   %s\n", ck->written_by[0] ? ck->written_by : "(not recorded: dae-cl 0.1.0 or earlier)");
    printf("input:        %d channel%s, %dx%d (the graph runs any size that is a multiple of its pooling)\n",
           ck->in_c, ck->in_c == 1 ? "" : "s", ck->in_h, ck->in_w);
    printf("parameters:   %llu (npz/ONNX names: layerN.KIND.weight [out,in,k,k], layerN.KIND.bias [out];"
           " N = # below)\n",
           (unsigned long long)ck->nparams);
    dc_model_print(arch, ck->in_c, ck->in_h, ck->in_w, stdout);
    printf("training:     %d of %d epochs done, %lld optimizer steps", ck->epoch, ck->run.epochs, (long long)ck->step);
    if (ck->batch) printf(", interrupted after batch %d of epoch %d", ck->batch, ck->epoch + 1);
    printf("\n");
    if (isfinite(ck->best_val_loss)) printf("best val loss: %.6g\n", ck->best_val_loss);
    print_metrics(ck->metrics);
    char text[DC_RUN_TEXT_MAX];
    dc_run_config_format(&ck->run, 0, text, sizeof text);
    printf("configuration:\n");
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        printf("  %-22s %s\n", line, eq + 1);
    }
    if (ck->unknown_key[0])
        printf("note: it holds the setting '%s', unknown to this dae-cl %s (it cannot resume this run)\n",
               ck->unknown_key, DAECL_VERSION);
}

/* A metrics row as an object keyed by metrics.csv's header (an empty field is null). */
static void json_metrics_row(json_writer *w, const char *key, const char *row)
{
    if (!row) {
        json_null(w, key);
        return;
    }
    json_object(w, key);
    const char *name = dc_metrics_csv_header;
    for (int col = 0; *name && *name != '\n'; col++) {
        size_t len = strcspn(name, ",\n");
        char field[32];
        snprintf(field, sizeof field, "%.*s", (int)len, name);
        if (col == 0) json_int(w, field, (long long)csv_field(row, col));
        else json_number(w, field, csv_field(row, col));
        name += len;
        if (*name == ',') name++;
    }
    json_end(w);
}

/* The run's settings, typed: numbers as numbers, flags as booleans, the rest as text. */
static void json_configuration(json_writer *w, const dc_run_config *run)
{
    int nfields;
    const dc_run_field *fields = dc_run_fields(&nfields);
    json_object(w, "configuration");
    for (int f = 0; f < nfields; f++) {
        char value[DC_RUN_PATH_MAX + 64];
        dc_run_config_value(run, f, value, sizeof value);
        switch (fields[f].type) {
        case DC_RUN_INT: json_int(w, fields[f].key, strtoll(value, NULL, 10)); break;
        case DC_RUN_U64: json_uint(w, fields[f].key, strtoull(value, NULL, 10)); break;
        case DC_RUN_FLOAT: json_number(w, fields[f].key, strtod(value, NULL)); break;
        case DC_RUN_BOOL: json_bool(w, fields[f].key, value[0] == '1'); break;
        default: json_string(w, fields[f].key, value);
        }
    }
    json_end(w);
}

static void info_json(const char *model_path, const dc_checkpoint *ck, const dc_arch *arch)
{
    dc_layer_state layers[DC_MAX_LAYERS];
    size_t np = 0;
    double flops = 0;
    int planned = dc_model_plan(arch, ck->in_c, ck->in_h, ck->in_w, layers, &np, &flops) == DC_OK;
    json_writer w;
    json_begin(&w, stdout);
    json_object(&w, NULL);
    json_string(&w, "checkpoint", model_path);
    json_int(&w, "format_version", ck->version);
    json_string(&w, "written_by", ck->written_by[0] ? ck->written_by : NULL);
    json_string(&w, "read_by", DAECL_VERSION);
    json_string(&w, "architecture", ck->arch);
    json_object(&w, "input");
    json_int(&w, "channels", ck->in_c);
    json_int(&w, "height", ck->in_h);
    json_int(&w, "width", ck->in_w);
    json_end(&w);
    json_uint(&w, "parameters", (unsigned long long)ck->nparams);
    if (planned) json_number(&w, "mflop_per_image_forward", flops / 1e6);
    else json_null(&w, "mflop_per_image_forward");
    json_array(&w, "layers");
    for (int i = 0; planned && i < arch->nlayers; i++) {
        const dc_layer_spec *L = &arch->layers[i];
        char desc[64];
        L->kind->describe(L, arch, desc, sizeof desc);
        json_object(&w, NULL);
        json_int(&w, "index", i + 1);
        json_string(&w, "kind", L->kind->token);
        json_string(&w, "layer", desc);
        json_string(&w, "name", L->name[0] ? L->name : NULL);
        json_array(&w, "output");
        json_int(&w, NULL, layers[i].c);
        json_int(&w, NULL, layers[i].h);
        json_int(&w, NULL, layers[i].w);
        json_end(&w);
        json_uint(&w, "parameters", layers[i].nparams);
        json_end(&w);
    }
    json_end(&w);
    json_object(&w, "training");
    json_int(&w, "epochs_done", ck->epoch);
    json_int(&w, "epochs", ck->run.epochs);
    json_int(&w, "steps", ck->step);
    json_int(&w, "interrupted_after_batch", ck->batch);
    json_number(&w, "best_val_loss", ck->best_val_loss);
    json_int(&w, "best_epoch", ck->best_epoch);
    json_end(&w);
    const char *last, *best;
    find_metrics(ck->metrics, &last, &best);
    json_object(&w, "metrics");
    json_metrics_row(&w, "last", last);
    json_metrics_row(&w, "best", best);
    json_end(&w);
    json_configuration(&w, &ck->run);
    json_string(&w, "unknown_setting", ck->unknown_key[0] ? ck->unknown_key : NULL);
    json_end(&w);
}

int cmd_info(int argc, char **argv)
{
    const char *model_path = NULL;
    int as_json = 0;
    arg_opt opts[] = {
        {"model", ARG_STRING, &model_path, "FILE", "checkpoint (runs/NAME/model.dcl)", 1, 0, 0},
        {"json", ARG_FLAG, &as_json, NULL, "print it as one JSON document", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("info", opts, argc, argv, 1, pos, 1, &npos, "MODEL.dcl [--json]");
    if (r) return r == 1 ? 0 : r;
    if (npos == 1 && !model_path) model_path = pos[0];
    if (!model_path) {
        fprintf(stderr, "dae-cl info: give a checkpoint: dae-cl info MODEL.dcl\n");
        return 2;
    }
    dc_checkpoint ck;
    dc_arch arch;
    r = load_model("info", model_path, &ck, &arch);
    if (r) return r;
    if (as_json) info_json(model_path, &ck, &arch);
    else info_text(model_path, &ck, &arch);
    dc_checkpoint_free(&ck);
    return 0;
}

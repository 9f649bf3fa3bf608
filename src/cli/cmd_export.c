/* dae-cl export: a checkpoint's model as ONNX or NumPy .npz (daecl/export.h);
 * dae-cl info: what a checkpoint holds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "daecl/checkpoint.h"
#include "daecl/export.h"

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

/* Field `col` (0-based) of a CSV row as a number (NAN if absent). */
static double csv_field(const char *row, int col)
{
    for (int i = 0; i < col && row; i++) {
        row = strpbrk(row, ",\n");
        if (row && *row == ',') row++;
        else row = NULL;
    }
    if (!row || !*row || *row == '\n') return NAN;
    return strtod(row, NULL);
}

static void print_metrics(const char *rows)
{
    if (!rows || !*rows) {
        printf("metrics:      none stored (a version-1 checkpoint, or no epoch finished)\n");
        return;
    }
    const char *last = NULL, *best = NULL;
    double best_val = INFINITY;
    for (const char *row = rows; *row;) {
        last = row;
        double v = csv_field(row, 2); /* val_loss */
        if (v < best_val) {
            best_val = v;
            best = row;
        }
        const char *nl = strchr(row, '\n');
        if (!nl) break;
        row = nl + 1;
    }
    printf("metrics:      epoch,train_loss,val_loss,val_psnr,val_ssim,val_acc,... (metrics.csv columns)\n");
    printf("  last:       %.*s\n", (int)strcspn(last, "\n"), last);
    if (best) printf("  best:       %.*s\n", (int)strcspn(best, "\n"), best);
}

int cmd_info(int argc, char **argv)
{
    const char *model_path = NULL;
    arg_opt opts[] = {
        {"model", ARG_STRING, &model_path, "FILE", "checkpoint (runs/NAME/model.dcl)", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("info", opts, argc, argv, 1, pos, 1, &npos, "MODEL.dcl");
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
    printf("checkpoint:   %s (format version %d)\n", model_path, ck.version);
    printf("written by:   %s\n", ck.written_by[0] ? ck.written_by : "(not recorded: dae-cl 0.1.0 or earlier)");
    printf("input:        %d channel%s, %dx%d (the graph runs any size that is a multiple of its pooling)\n",
           ck.in_c, ck.in_c == 1 ? "" : "s", ck.in_h, ck.in_w);
    printf("parameters:   %llu (npz/ONNX names: layerN.KIND.weight [out,in,k,k], layerN.KIND.bias [out];"
           " N = # below)\n",
           (unsigned long long)ck.nparams);
    dc_model_print(&arch, ck.in_c, ck.in_h, ck.in_w, stdout);
    printf("training:     %d of %d epochs done, %lld optimizer steps", ck.epoch, ck.run.epochs, (long long)ck.step);
    if (ck.batch) printf(", interrupted after batch %d of epoch %d", ck.batch, ck.epoch + 1);
    printf("\n");
    if (isfinite(ck.best_val_loss)) printf("best val loss: %.6g\n", ck.best_val_loss);
    print_metrics(ck.metrics);
    char text[DC_RUN_TEXT_MAX];
    dc_run_config_format(&ck.run, 0, text, sizeof text);
    printf("configuration:\n");
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        printf("  %-22s %s\n", line, eq + 1);
    }
    if (ck.unknown_key[0])
        printf("note: it holds the setting '%s', unknown to this dae-cl %s (it cannot resume this run)\n",
               ck.unknown_key, DAECL_VERSION);
    dc_checkpoint_free(&ck);
    return 0;
}

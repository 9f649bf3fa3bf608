/* dae-cl train / eval / model */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "cli/prewarm.h"
#include "daecl/checkpoint.h"
#include "daecl/dist.h"
#include "daecl/imageset.h"
#include "daecl/train.h"

#define DC_STR_(x) #x
#define DC_STR(x) DC_STR_(x)

static volatile sig_atomic_t signal_seen;

static void on_signal(int sig)
{
    signal_seen = sig;
    dc_train_request_stop();
}

/* Ctrl-C once: finish the step, save, exit 130. Twice: the default action (SA_RESETHAND).
 * A Ctrl-C that comes after the last step (final evaluation, saving) lets the finished run
 * end as usual but still exits 130: a shell script running dae-cl (tools/study) then stops
 * too, as it would had dae-cl died of the signal. */
static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct prewarm_target {
    cli_prewarm *helper;
    dc_device *dev;
} prewarm_target;

static void start_prewarm(void *user, const char *arch, int in_c, int in_h, int in_w, int batch)
{
    prewarm_target *t = user;
    cli_prewarm_start(t->helper, t->dev, CLI_PREWARM_TRAIN, arch, in_c, in_h, in_w, batch);
}

/* The run settings' flags come from the run configuration's table (daecl/runconfig.h): its
 * parser checks each value, its defaults show in --help. */
static int train_command(int argc, char **argv)
{
    dc_train_config cfg;
    dc_train_defaults(&cfg);
    const char *platform = NULL, *device = NULL;
    int nfields;
    const dc_run_field *fields = dc_run_fields(&nfields);
    const char *values[64];
    int flags[64] = {0};
    char defaults[64][128];
    arg_opt opts[64 + 8];
    int n = 0;
    opts[n++] = (arg_opt){"platform", ARG_STRING, &platform, "P", "OpenCL platform index", 1, 0, 0};
    opts[n++] = (arg_opt){"device", ARG_STRING, &device, CLI_DEVICE_META, CLI_DEVICE_HELP, 1, 0, 0};
    for (int f = 0; f < nfields; f++) {
        if (fields[f].type == DC_RUN_BOOL) {
            opts[n++] = (arg_opt){fields[f].flag, ARG_FLAG, &flags[f], NULL, fields[f].help, 1, 0, 0};
            continue;
        }
        /* The slot starts as the default's text, so --help shows it. */
        dc_run_config_default_text(f, defaults[f], sizeof defaults[f]);
        values[f] = defaults[f];
        opts[n++] = (arg_opt){fields[f].flag, ARG_STRING, &values[f], fields[f].meta, fields[f].help, 1, 0, 0};
    }
    char resume_help[512];
    int rn = snprintf(resume_help, sizeof resume_help, "continue the run in --out with its settings; these may change:");
    for (int f = 0; f < nfields; f++)
        if (!fields[f].fixed && rn < (int)sizeof resume_help)
            rn += snprintf(resume_help + rn, sizeof resume_help - rn, " --%s", fields[f].flag);
    opts[n++] = (arg_opt){"out", ARG_STRING, &cfg.out_dir, "DIR", "run directory", 1, 0, 0};
    opts[n++] = (arg_opt){"resume", ARG_FLAG, &cfg.resume, NULL, resume_help, 1, 0, 0};
    opts[n++] = (arg_opt){"quiet", ARG_FLAG, &cfg.quiet, NULL, "print only errors and the final summary", 1, 0, 0};
    opts[n++] = (arg_opt){"verbose", ARG_FLAG, &cfg.verbose, NULL, "print loader and speed details per epoch", 1, 0, 0};
    opts[n] = (arg_opt){0};
    const char *pos[1];
    int npos;
    int r = args_parse("train", opts, argc, argv, 1, pos, 0, &npos, "[options]");
    if (r) return r == 1 ? 0 : r;

    /* Only the flags given: on --resume they are what the user asks to change. */
    for (int f = 0; f < nfields; f++) {
        if (!args_find(opts, fields[f].flag)->given) continue;
        dc_status s = dc_run_config_set(&cfg.run, fields[f].flag, fields[f].type == DC_RUN_BOOL ? NULL : values[f]);
        if (s) return cli_report("train", s);
    }
    if (dc_run_config_check(&cfg.run) != DC_OK) return cli_report("train", DC_ERR_INVALID_ARG);
    dc_arch arch;
    if (dc_arch_parse(cfg.run.arch, &arch) != DC_OK) return cli_report("train", DC_ERR_INVALID_ARG);
    if (!cfg.resume && (arch.residual ? dc_loss_check_residual(cfg.run.loss)
                                      : dc_loss_check(cfg.run.loss, arch.layers[arch.nlayers - 1].act)) != DC_OK)
        return cli_report("train", DC_ERR_INVALID_ARG);

    dc_device *dev;
    r = cli_open_device("train", platform, device, cfg.quiet, &dev);
    if (r) return r;
    install_stop_handlers();
    cli_prewarm helper = {0};
    prewarm_target target = {&helper, dev};
    cfg.model_ready = start_prewarm;
    cfg.model_ready_user = &target;
    dc_train_summary sum;
    dc_status s = dc_train(dev, &cfg, &sum);
    cli_prewarm_stop(&helper);
    dc_device_close(dev);
    if (s) return cli_report("train", s);
    if (sum.validated && dc_dist_rank() == 0)
        printf("done: %d epochs, %.0f s, %.0f images/s; test: loss %.4f, PSNR %.2f dB, SSIM %.3f, accuracy %.4f; saved %s/model.dcl\n",
               sum.epochs_done, sum.seconds, sum.images_per_second, sum.val.loss, sum.val.psnr, sum.val.ssim,
               sum.val.acc, cfg.out_dir);
    if (signal_seen) {
        fprintf(stderr, "train: %s came after the last step: the run is complete (%s/model.dcl)\n",
                signal_seen == SIGINT ? "SIGINT" : "SIGTERM", cfg.out_dir);
        return 130;
    }
    return 0;
}

/* Under mpirun (daecl/dist.h) the job is joined before any OpenCL context exists. A rank that
 * fails ends the whole job (MPI_Abort) after printing its error, so no rank waits forever in a
 * collective; an agreed stop (Ctrl-C, 130) leaves normally after rank 0 saved. */
int cmd_train(int argc, char **argv)
{
    dc_status s = dc_dist_init(&argc, &argv);
    if (s) return cli_report("train", s);
    int r = train_command(argc, argv);
    if (r != 0 && r != 130 && dc_dist_active()) {
        fflush(stdout);
        fflush(stderr);
        dc_dist_abort(r);
    }
    dc_dist_finalize();
    return r;
}

/* ---- eval ---------------------------------------------------------------------------------- */

static void eval_figures(json_writer *w, const char *key, double loss, double psnr, double ssim, double acc,
                         double acc_thresh)
{
    json_object(w, key);
    json_number(w, "loss", loss);
    json_number(w, "psnr_db", psnr);
    json_number(w, "ssim", ssim);
    json_number(w, "accuracy", acc);
    json_number(w, "accuracy_thresholded", acc_thresh);
    json_end(w);
}

static void eval_json(const char *model, const char *split, const char *data, const dc_noise_config *nc, uint64_t seed,
                      dc_loss_kind lk, const dc_eval_result *res)
{
    char nd[64];
    dc_noise_format(nc, nd, sizeof nd);
    json_writer w;
    json_begin(&w, stdout);
    json_object(&w, NULL);
    json_string(&w, "model", model);
    json_string(&w, "data", data);
    json_string(&w, "split", split);
    json_uint(&w, "images", res->images);
    json_string(&w, "noise", nd);
    json_uint(&w, "seed", seed);
    json_string(&w, "loss", dc_loss_name(lk));
    json_number(&w, "seconds", res->seconds);
    eval_figures(&w, "noisy", res->noisy_loss, res->noisy_psnr, res->noisy_ssim, res->noisy_acc, res->noisy_acc_thresh);
    eval_figures(&w, "denoised", res->loss, res->psnr, res->ssim, res->acc, res->acc_thresh);
    json_end(&w);
}

int cmd_eval(int argc, char **argv)
{
    const char *platform = NULL, *device = NULL, *model_path = NULL, *data = "data/mnist", *noise = NULL,
               *loss = NULL, *split = "test";
    uint64_t seed = 0, limit = 0;
    int batch = 128, transpose = 0, quiet = 0, as_json = 0;
    arg_opt opts[] = {
        {"platform", ARG_STRING, &platform, "P", "OpenCL platform index", 1, 0, 0},
        {"device", ARG_STRING, &device, CLI_DEVICE_META, CLI_DEVICE_HELP, 1, 0, 0},
        {"model", ARG_STRING, &model_path, "FILE", "checkpoint (runs/NAME/model.dcl)", 1, 0, 0},
        {"data", ARG_STRING, &data, "DIR", "directory with the IDX files", 1, 0, 0},
        {"split", ARG_STRING, &split, "NAME", "test | train", 1, 0, 0},
        {"noise", ARG_STRING, &noise, "KIND:X", "noise to remove (default: the one the model was trained with)", 1, 0, 0},
        {"loss", ARG_STRING, &loss, "NAME", "loss to report: bce | mse | l1 (default: the run's)", 1, 0, 0},
        {"seed", ARG_U64, &seed, "N", "noise seed (default: the training seed, the validation noise)", 1, 0, 0},
        {"limit", ARG_U64, &limit, "N", "evaluate the first N images only (0: all)", 1, 0, 0},
        {"batch", ARG_INT, &batch, "N", "images per step", 1, 65536, 0},
        {"transpose", ARG_FLAG, &transpose, NULL, "transpose images as they load (EMNIST)", 1, 0, 0},
        {"quiet", ARG_FLAG, &quiet, NULL, "print only the figures", 1, 0, 0},
        {"json", ARG_FLAG, &as_json, NULL, "print the figures as one JSON document (messages go to stderr)", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("eval", opts, argc, argv, 1, pos, 1, &npos, "--model FILE [options]");
    if (r) return r == 1 ? 0 : r;
    if (npos == 1 && !model_path) model_path = pos[0];
    if (!model_path) {
        fprintf(stderr, "dae-cl eval: --model FILE is required (see dae-cl eval --help)\n");
        return 2;
    }
    dc_loss_kind lk = DC_LOSS_BCE;
    if (loss && dc_loss_parse(loss, &lk) != DC_OK) return cli_report("eval", DC_ERR_INVALID_ARG);

    dc_checkpoint ck;
    dc_status s = dc_checkpoint_load(model_path, &ck);
    if (s) return cli_report("eval", s);
    /* By default the noise, seed and loss of the run's validation. */
    if (!args_find(opts, "loss")->given) lk = ck.run.loss;
    dc_noise_config nc = ck.run.noise;
    if (noise && dc_noise_parse(noise, &nc) != DC_OK) {
        dc_checkpoint_free(&ck);
        return cli_report("eval", DC_ERR_INVALID_ARG);
    }
    if (!args_find(opts, "seed")->given) seed = ck.run.seed;
    dc_arch arch;
    s = dc_arch_parse(ck.arch, &arch);
    if (s) {
        dc_checkpoint_free(&ck);
        return cli_report("eval", dc_fail(DC_ERR_FORMAT, "%s: %s", model_path, dc_error_detail()));
    }
    dc_dataset ds = {0};
    if (dc_dataset_is_idx(data)) {
        s = dc_dataset_open(data, split, transpose, &ds); /* read batch by batch */
    } else { /* an image folder: the centre crop of every image, the model's input size */
        dc_imageset_options io = {.channels = ck.in_c};
        size_t skipped = 0;
        s = ck.in_h != ck.in_w ? dc_fail(DC_ERR_INVALID_ARG, "%s: a model for %dx%d inputs cannot score square crops of "
                                         "%s", model_path, ck.in_w, ck.in_h, data)
                               : dc_imageset_load_crops(data, &io, ck.in_h, &ds, &skipped);
        if (!s && skipped) fprintf(stderr, "dae-cl eval: %s: %zu files skipped (dae-cl data %s says why)\n", data,
                                   skipped, data);
        split = "folder";
    }
    if (s) {
        dc_checkpoint_free(&ck);
        return cli_report("eval", s);
    }
    dc_dataset_truncate(&ds, (size_t)limit);
    dc_device *dev = NULL;
    r = cli_open_device("eval", platform, device, quiet || as_json, &dev);
    dc_model *m = NULL;
    dc_evaluator *ev = NULL;
    dc_eval_result res;
    if (!r) {
        if ((size_t)batch > ds.n) batch = (int)ds.n;
        s = dc_model_create(dev, &arch, ck.in_c, ds.h, ds.w, batch, &m);
        if (!s && m->nparams != ck.nparams)
            s = dc_fail(DC_ERR_FORMAT, "%s: holds %llu parameters, its architecture needs %zu", model_path,
                        (unsigned long long)ck.nparams, m->nparams);
        if (!s) s = dc_model_set_params(m, ck.params);
        if (!s) s = dc_evaluator_create(dev, &ds, batch, &ev);
        if (!s) s = dc_evaluate(ev, m, lk, &nc, seed, 1, &res);
        if (s) r = cli_report("eval", s);
    }
    if (!r && as_json) {
        eval_json(model_path, split, data, &nc, seed, lk, &res);
    } else if (!r) {
        char nd[64];
        dc_noise_format(&nc, nd, sizeof nd);
        printf("%s: %zu %s images, noise %s, seed %llu, %.1f s\n", model_path, res.images, split, nd,
               (unsigned long long)seed, res.seconds);
        printf("%-22s %10s %10s %8s %10s\n", "", dc_loss_name(lk), "PSNR dB", "SSIM", "accuracy");
        printf("%-22s %10.4f %10.2f %8.4f %10.4f\n", "noisy input (nothing)", res.noisy_loss, res.noisy_psnr,
               res.noisy_ssim, res.noisy_acc);
        printf("%-22s %10.4f %10.2f %8.4f %10.4f\n", "denoised", res.loss, res.psnr, res.ssim, res.acc);
        printf("%-22s %10.4f %+10.2f %+8.4f %+10.4f\n", "gain", res.noisy_loss - res.loss, res.psnr - res.noisy_psnr,
               res.ssim - res.noisy_ssim, res.acc - res.noisy_acc);
        printf("(accuracy is Keras binary_accuracy; thresholded both sides: noisy %.4f, denoised %.4f)\n",
               res.noisy_acc_thresh, res.acc_thresh);
    }
    dc_evaluator_destroy(ev);
    dc_model_destroy(m);
    dc_device_close(dev);
    dc_dataset_free(&ds);
    dc_checkpoint_free(&ck);
    return r;
}

/* ---- model --------------------------------------------------------------------------------- */

int cmd_model(int argc, char **argv)
{
    const char *arch_spec = "classic", *size = "28x28";
    int channels = 1, residual = 0, depth = 0, width = 0;
    arg_opt opts[] = {
        {"arch", ARG_STRING, &arch_spec, "SPEC", "classic | keras | unet | unet64 | dncnn | a layer spec (see below)", 1, 0, 0},
        {"channels", ARG_INT, &channels, "C", "input (and output) channels: 1 gray, 3 colour", 1, 4096, 0},
        {"size", ARG_STRING, &size, "HxW", "input height and width", 1, 0, 0},
        {"residual", ARG_FLAG, &residual, NULL, "the residual head: output = input - prediction (linear last layer)", 1, 0, 0},
        {"depth", ARG_INT, &depth, "D", "--arch dncnn: conv layers (default " DC_STR(DC_DNCNN_DEPTH) ")", 2, DC_DNCNN_MAX_DEPTH, 0},
        {"width", ARG_INT, &width, "W", "--arch dncnn: filters per conv layer (default " DC_STR(DC_DNCNN_WIDTH) ")", 1, 4096, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("model", opts, argc, argv, 1, pos, 0, &npos, "[--arch SPEC]");
    if (r == 1) {
        printf("\nlayer spec: comma-separated layers, e.g. conv:32,pool,conv:32,pool,conv:32,up,conv:32,up,conv:C:sigmoid\n");
        for (int i = 0; i < dc_layer_kind_count(); i++) {
            char grammar[64];
            dc_layer_grammar(dc_layer_kind_at(i), grammar, sizeof grammar);
            printf("  %-26s %s\n", grammar, dc_layer_kind_at(i)->help);
        }
        printf("  C (a filter count): the input's channel count, as the presets' last layer\n"
               "  ACT: relu (default) sigmoid tanh leaky linear; the last layer's is the output head\n"
               "  residual (last token): output = input - prediction, the last layer linear\n"
               "  presets: classic keras unet (28,353 parameters at 1 channel), unet64 (unet with two\n"
               "  64-filter convs at the bottom: 92,993), dncnn (conv:W x (D-1),\n"
               "  conv:C:linear,residual; D " DC_STR(DC_DNCNN_DEPTH) ", W " DC_STR(DC_DNCNN_WIDTH) " by default)\n");
        return 0;
    }
    if (r) return r;
    int h, w;
    char tail;
    if (sscanf(size, "%dx%d%c", &h, &w, &tail) != 2 || h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20)) {
        fprintf(stderr, "dae-cl model: --size: expected HxW, e.g. 64x64, got '%s'\n", size);
        return 2;
    }
    dc_arch arch;
    dc_arch_options o = {depth, width, residual};
    dc_status s = dc_arch_parse_with(arch_spec, &o, &arch);
    if (s) return cli_report("model", s);
    size_t np;
    double fl;
    dc_layer_state layers[DC_MAX_LAYERS];
    s = dc_model_plan(&arch, channels, h, w, layers, &np, &fl);
    if (s) return cli_report("model", s);
    dc_model_print(&arch, channels, h, w, stdout);
    return 0;
}

/* Training-curve plots for tools/visualize (cairo): the `curves` and `compare` subcommands.
 *
 * Input: a run's metrics.csv, a header row then one row per epoch. Columns are found by name
 * (order may change, unknown columns are ignored): epoch (required), train_loss, val_loss,
 * val_psnr (the ones plotted), and e.g. val_ssim, val_acc, seconds, img_per_s. Empty fields, and
 * nan/inf, mean "no value that epoch". A repeated epoch (a run resumed from an earlier
 * checkpoint) replaces the earlier row. A last line without a newline that does not parse is
 * taken to be still being written and skipped; any other malformed row is an error.
 *
 * Output: PNG (RGB) written atomically: "<out>.tmp.<pid>", fsync, rename. Both functions return
 * 0 on success, or -1 with a one-line message naming the file and the problem in err. */
#ifndef DAECL_VISUALIZE_PLOT_H
#define DAECL_VISUALIZE_PLOT_H

#include <stddef.h>

/* Two panels: left, train_loss and val_loss per epoch; right, val PSNR (dB) with the best
 * epoch marked. Title names the run (the CSV's directory). 1280 x 560 pixels. */
int dc_plot_curves(const char *csv, const char *out_png, char *err, size_t errlen);

/* The val PSNR curves of several runs on one plot, one colour each, legend naming each run by
 * its directory's basename with its best PSNR. run_dirs[i] is a run directory holding
 * metrics.csv (or the path of a CSV file itself). 1280 x 640 pixels. */
int dc_plot_compare(int nruns, char **run_dirs, const char *out_png, char *err, size_t errlen);

#endif

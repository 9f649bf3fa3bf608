/* Helper of test_mpi.sh: how far apart the parameters of two checkpoints are.
 *   mpi_params A.dcl B.dcl   prints "rel DIFF steps SA SB": DIFF = ||a - b||₂ / ||a||₂ (double)
 * Exit 1 when a file does not load or the parameter counts differ. */
#include <math.h>
#include <stdio.h>

#include "daecl/checkpoint.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mpi_params A.dcl B.dcl\n");
        return 2;
    }
    dc_checkpoint a = {0}, b = {0};
    int rc = 1;
    if (dc_checkpoint_load(argv[1], &a) || dc_checkpoint_load(argv[2], &b)) {
        fprintf(stderr, "mpi_params: %s\n", dc_error_detail());
    } else if (a.nparams != b.nparams) {
        fprintf(stderr, "mpi_params: %llu vs %llu parameters\n", (unsigned long long)a.nparams,
                (unsigned long long)b.nparams);
    } else {
        double d2 = 0, a2 = 0;
        for (size_t i = 0; i < a.nparams; i++) {
            double d = (double)a.params[i] - (double)b.params[i];
            d2 += d * d;
            a2 += (double)a.params[i] * (double)a.params[i];
        }
        printf("rel %.3e steps %lld %lld\n", sqrt(d2 / (a2 > 0 ? a2 : 1)), (long long)a.step, (long long)b.step);
        rc = 0;
    }
    dc_checkpoint_free(&a);
    dc_checkpoint_free(&b);
    return rc;
}

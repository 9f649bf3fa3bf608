/* Data-parallel training across processes (MPI ranks), one OpenCL device per rank.
 *
 * The same binary runs alone or under `mpirun -np N`. dc_dist_init calls MPI_Init only when a
 * launcher started the process (Open MPI's OMPI_COMM_WORLD_SIZE, or PMIX_RANK / PMI_RANK in the
 * environment), so a plain run never pays for MPI nor prints its messages; without MPI at build
 * time (meson -Dmpi=disabled or no libopenmpi-dev) every call below is the one-process version.
 *
 * Every collective here runs on MPI_COMM_WORLD and must be called by all ranks in the same
 * order. Failure of a collective is returned as DC_ERR_IO; the caller ends the job with
 * dc_dist_abort (MPI_Abort), which is how one failing rank stops the others instead of leaving
 * them waiting in the next collective. */
#ifndef DAECL_DIST_H
#define DAECL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/device.h"
#include "daecl/status.h"

/* Join the job when launched by mpirun (no-op otherwise, and when already done). */
dc_status dc_dist_init(int *argc, char ***argv);
/* Leave the job normally (no-op when dc_dist_init did not join one). */
void dc_dist_finalize(void);
/* End every rank of the job with this exit code (exit(code) when alone). */
void dc_dist_abort(int code);

int dc_dist_rank(void);       /* 0 when alone */
int dc_dist_size(void);       /* 1 when alone */
int dc_dist_local_rank(void); /* rank among the ranks of this host, 0 when alone */
int dc_dist_active(void);     /* size > 1 */

/* Rows [*first, *first + *count) of a batch of `total` rows that `rank` of `size` takes: the
 * first total % size ranks take one row more (counts differ by at most one; a rank may get 0
 * rows of a last batch smaller than size). */
static inline void dc_dist_share(int total, int rank, int size, int *first, int *count)
{
    int base = total / size, extra = total % size;
    *count = base + (rank < extra);
    *first = rank * base + (rank < extra ? rank : extra);
}

/* In-place sums over all ranks. */
dc_status dc_dist_sum_floats(float *buf, size_t n);
dc_status dc_dist_sum_doubles(double *buf, size_t n);
/* Rank 0's bytes to every rank. */
dc_status dc_dist_broadcast(void *buf, size_t bytes);
/* Whether every rank passed the same value (one allreduce of min and max). */
dc_status dc_dist_same(uint64_t value, int *same);

/* Whether every rank holds the same n floats, bit for bit (a hash compared with dc_dist_same).
 * Test hook: DAECL_TEST_PERTURB_RANK=r makes rank r's hash differ. */
dc_status dc_dist_same_floats(const float *v, size_t n, int *same);

/* The gradient of the mean loss over a global batch of `total` rows, from each rank's gradient
 * of the mean over its `local` rows (in grads, n floats on dev): every rank's gradient is scaled
 * by local/total (an empty share counts as zeros) and the scaled gradients are summed, so the
 * result is the one-process gradient up to rounding; written back to grads. *stop is ORed over
 * the ranks in the same message (the agreed Ctrl-C). host: a scratch of n + 1 floats. */
dc_status dc_dist_reduce_gradients(dc_device *dev, cl_mem grads, size_t n, int local, int total, float *host,
                                   int *stop);

/* Test hook: DAECL_TEST_FAIL_RANK=r DAECL_TEST_FAIL_STEP=s make rank r fail at step s (a
 * simulated device error), for the test that a failing rank ends the whole job. */
dc_status dc_dist_test_fault(long step);

/* Seconds spent inside the collectives above since the start (communication plus waiting for
 * the slowest rank). */
double dc_dist_seconds(void);

#endif

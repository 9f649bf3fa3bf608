/* Ranks and collectives (see dist.h). Built with MPI when meson found it (DAECL_HAVE_MPI). */
#include "daecl/dist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef DAECL_HAVE_MPI
#include <mpi.h>
#endif

#ifdef DAECL_HAVE_MPI
static int joined;
#endif
static int rank_, size_ = 1, local_rank_;
static double comm_seconds;

int dc_dist_rank(void) { return rank_; }
int dc_dist_size(void) { return size_; }
int dc_dist_local_rank(void) { return local_rank_; }
int dc_dist_active(void) { return size_ > 1; }
double dc_dist_seconds(void) { return comm_seconds; }

#ifdef DAECL_HAVE_MPI

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Launched by a process manager: Open MPI sets OMPI_COMM_WORLD_SIZE, PMIx and PMI launchers
 * (srun, hydra) set PMIX_RANK / PMI_RANK. */
static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static dc_status mpi_fail(int err, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return dc_fail(DC_ERR_IO, "MPI %s failed: %.*s", what, len, msg);
}

dc_status dc_dist_init(int *argc, char ***argv)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (joined || inited || !launched()) return DC_OK;
    int err = MPI_Init(argc, argv);
    if (err != MPI_SUCCESS) return dc_fail(DC_ERR_IO, "MPI_Init failed (code %d)", err);
    joined = 1;
    /* Errors come back as codes (dc_status) instead of aborting inside MPI. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm host;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &host) == MPI_SUCCESS) {
        MPI_Comm_rank(host, &local_rank_);
        MPI_Comm_free(&host);
    }
    return DC_OK;
}

void dc_dist_finalize(void)
{
    if (!joined) return;
    MPI_Finalize();
    joined = 0;
    rank_ = local_rank_ = 0;
    size_ = 1;
}

void dc_dist_abort(int code)
{
    if (joined) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

/* MPI counts are int: long buffers go in pieces. */
#define MAX_COUNT (1 << 30)

static dc_status sum(void *buf, size_t n, MPI_Datatype type, size_t elem)
{
    if (!dc_dist_active()) return DC_OK;
    double t0 = now();
    for (size_t off = 0; off < n; off += MAX_COUNT) {
        int cnt = (int)(n - off < MAX_COUNT ? n - off : MAX_COUNT);
        int err = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, cnt, type, MPI_SUM, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS) return mpi_fail(err, "allreduce");
    }
    comm_seconds += now() - t0;
    return DC_OK;
}

dc_status dc_dist_sum_floats(float *buf, size_t n) { return sum(buf, n, MPI_FLOAT, sizeof *buf); }
dc_status dc_dist_sum_doubles(double *buf, size_t n) { return sum(buf, n, MPI_DOUBLE, sizeof *buf); }

dc_status dc_dist_broadcast(void *buf, size_t bytes)
{
    if (!dc_dist_active()) return DC_OK;
    double t0 = now();
    for (size_t off = 0; off < bytes; off += MAX_COUNT) {
        int cnt = (int)(bytes - off < MAX_COUNT ? bytes - off : MAX_COUNT);
        int err = MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS) return mpi_fail(err, "broadcast");
    }
    comm_seconds += now() - t0;
    return DC_OK;
}

dc_status dc_dist_same(uint64_t value, int *same)
{
    *same = 1;
    if (!dc_dist_active()) return DC_OK;
    double t0 = now();
    uint64_t v[2] = {value, ~value}; /* min of ~x is ~max of x */
    int err = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    if (err != MPI_SUCCESS) return mpi_fail(err, "allreduce");
    comm_seconds += now() - t0;
    *same = v[0] == ~v[1];
    return DC_OK;
}

#else /* one process */

/* Several copies of a build without MPI would each train alone into the same run directory. */
dc_status dc_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1)
        return dc_fail(DC_ERR_INVALID_ARG, "this dae-cl was built without MPI and cannot train as one of %d ranks: "
                       "rebuild with libopenmpi-dev installed (meson -Dmpi=enabled), or run it without mpirun", atoi(n));
    return DC_OK;
}
void dc_dist_finalize(void) {}
void dc_dist_abort(int code) { exit(code); }
dc_status dc_dist_sum_floats(float *buf, size_t n)
{
    (void)buf;
    (void)n;
    return DC_OK;
}
dc_status dc_dist_sum_doubles(double *buf, size_t n)
{
    (void)buf;
    (void)n;
    return DC_OK;
}
dc_status dc_dist_broadcast(void *buf, size_t bytes)
{
    (void)buf;
    (void)bytes;
    return DC_OK;
}
dc_status dc_dist_same(uint64_t value, int *same)
{
    (void)value;
    *same = 1;
    return DC_OK;
}

#endif

/* ---- built on the collectives above ---- */

dc_status dc_dist_same_floats(const float *v, size_t n, int *same)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the bytes */
    const unsigned char *p = (const unsigned char *)v;
    for (size_t i = 0; i < n * sizeof *v; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    const char *perturb = getenv("DAECL_TEST_PERTURB_RANK"); /* test hook: this rank disagrees */
    if (perturb && atoi(perturb) == rank_) h ^= 1;
    return dc_dist_same(h, same);
}

dc_status dc_dist_reduce_gradients(dc_device *dev, cl_mem grads, size_t n, int local, int total, float *host,
                                   int *stop)
{
    if (!dc_dist_active()) return DC_OK;
    if (local > 0) {
        cl_int err = clEnqueueReadBuffer(dev->queue, grads, CL_TRUE, 0, n * sizeof(float), host, 0, NULL, NULL);
        if (err != CL_SUCCESS) return dc_cl_fail(err, "reading the gradient");
        float scale = (float)local / (float)total;
        for (size_t i = 0; i < n; i++) host[i] *= scale;
    } else {
        memset(host, 0, n * sizeof(float));
    }
    host[n] = *stop ? 1.0f : 0.0f;
    DC_TRY(dc_dist_sum_floats(host, n + 1));
    *stop = host[n] > 0.0f;
    cl_int err = clEnqueueWriteBuffer(dev->queue, grads, CL_FALSE, 0, n * sizeof(float), host, 0, NULL, NULL);
    if (err == CL_SUCCESS) err = clFinish(dev->queue); /* host is reused next step */
    return err == CL_SUCCESS ? DC_OK : dc_cl_fail(err, "writing the gradient");
}

dc_status dc_dist_test_fault(long step)
{
    const char *r = getenv("DAECL_TEST_FAIL_RANK"), *s = getenv("DAECL_TEST_FAIL_STEP");
    if (!r || !s || atoi(r) != rank_ || atol(s) != step) return DC_OK;
    return dc_fail(DC_ERR_OPENCL, "rank %d: simulated device failure at step %ld (DAECL_TEST_FAIL_RANK)", rank_,
                   step);
}

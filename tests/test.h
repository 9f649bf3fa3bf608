/* Minimal test harness shared by every tests/test_*.c program.
 *
 * CHECK(cond, fmt, ...) records a pass or a failure (with file:line and the message) and goes
 * on; TEST_MAIN_END() prints "N passed, N failed" and returns non-zero on any failure. Tests that
 * draw random inputs take their seed from DAECL_TEST_SEED or the clock, and print it so a failing
 * run can be repeated. */
#ifndef DAECL_TEST_H
#define DAECL_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int test_passed_, test_failed_;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (cond) {                                                       \
            test_passed_++;                                               \
        } else {                                                          \
            test_failed_++;                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

/* Check a dc_status call returns DC_OK, printing the error detail otherwise. */
#define CHECK_OK(expr)                                                               \
    do {                                                                             \
        dc_status chk_s_ = (expr);                                                   \
        CHECK(chk_s_ == DC_OK, "%s -> %s: %s", #expr, dc_strerror(chk_s_), dc_error_detail()); \
    } while (0)

static inline uint64_t test_seed(void)
{
    const char *e = getenv("DAECL_TEST_SEED");
    uint64_t s = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
    fprintf(stderr, "seed %llu (set DAECL_TEST_SEED to repeat)\n", (unsigned long long)s);
    return s;
}

/* Seconds on the monotonic clock (for durations). */
static inline double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: small, seedable, good enough for test inputs. */
static inline uint64_t test_rand_u64(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}
/* Uniform in [lo, hi). */
static inline double test_uniform(uint64_t *state, double lo, double hi)
{
    return lo + (hi - lo) * (double)(test_rand_u64(state) >> 11) * (1.0 / 9007199254740992.0);
}

#define TEST_MAIN_END()                                                    \
    do {                                                                   \
        printf("%d passed, %d failed\n", test_passed_, test_failed_);      \
        return test_failed_ ? 1 : 0;                                       \
    } while (0)

#endif

/* Fuzz the command-line flag parser: the input, split at NUL bytes, is argv for a table with
 * every kind of option (flag, int with range, u64, float with range, string, one-letter). */
#include <stdint.h>
#include <string.h>

#include "cli/args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[4096];
    char *argv[64];
    if (size >= sizeof buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    argv[argc++] = "dae-cl";
    argv[argc++] = "fuzz";
    for (char *p = buf; p < buf + size && argc < 63; p += strlen(p) + 1) argv[argc++] = p;
    argv[argc] = NULL;

    int flag = 0, count = 3;
    uint64_t seed = 0;
    float lr = 0.001f;
    const char *name = NULL, *out = NULL;
    arg_opt opts[] = {
        {"quiet", ARG_FLAG, &flag, NULL, "a flag", 1, 0, 0},
        {"epochs", ARG_INT, &count, "N", "an int in range", 1, 1 << 20, 0},
        {"seed", ARG_U64, &seed, "N", "a u64", 1, 0, 0},
        {"lr", ARG_FLOAT, &lr, "X", "a float in range", 1e-9, 10, 0},
        {"data", ARG_STRING, &name, "DIR", "a string", 1, 0, 0},
        {"o", ARG_STRING, &out, "FILE", "a one-letter option", 1, 0, 0},
        {0},
    };
    const char *pos[64];
    int npos = 0;
    int r = args_parse("fuzz", opts, argc, argv, 2, pos, 64, &npos, "[options] FILE...");
    if (r == 0 && (npos < 0 || npos > argc)) __builtin_trap();
    if (r == 0 && (count < 1 || count > (1 << 20))) __builtin_trap(); /* the range holds */
    return 0;
}

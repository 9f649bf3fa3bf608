/* Fuzz the noise spec parser: what parses formats to a spec that parses to the same config. */
#include <stdlib.h>
#include <string.h>

#include "daecl/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char spec[512];
    if (size >= sizeof spec) return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    dc_noise_config a, b;
    if (dc_noise_parse(spec, &a) != DC_OK) return 0;
    char f1[128], f2[128];
    dc_noise_format(&a, f1, sizeof f1);
    if (dc_noise_parse(f1, &b) != DC_OK) abort();
    dc_noise_format(&b, f2, sizeof f2);
    if (strcmp(f1, f2) != 0 || a.kind != b.kind) abort();
    return 0;
}

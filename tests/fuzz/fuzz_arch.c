/* Fuzz the architecture spec parser: a spec that parses must format to a canonical string that
 * parses again to the same canonical string, and planning it on a 1x28x28 input must not crash. */
#include <stdlib.h>
#include <string.h>

#include "daecl/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char spec[4096];
    if (size >= sizeof spec) return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    dc_arch a, b;
    if (dc_arch_parse(spec, &a) != DC_OK) return 0;
    char f1[DC_SPEC_MAX * 2], f2[DC_SPEC_MAX * 2];
    dc_arch_format(&a, f1, sizeof f1);
    if (dc_arch_parse(f1, &b) != DC_OK) abort(); /* the canonical form must parse */
    dc_arch_format(&b, f2, sizeof f2);
    if (strcmp(f1, f2) != 0) abort(); /* and be a fixed point */
    static dc_layer_state layers[DC_MAX_LAYERS];
    size_t nparams;
    double flops;
    (void)dc_model_plan(&a, 1, 28, 28, layers, &nparams, &flops);
    return 0;
}

/* Fuzz the checkpoint reader. The CRC-32 stops almost every mutation at the door, so inputs whose
 * first byte is odd are taken as a payload and wrapped in a valid header and CRC: that reaches
 * the field parser and, for a loaded checkpoint, the architecture parser and the shape planner
 * (sizes from the file must never wrap). */
#include <string.h>
#include <zlib.h>

#include "daecl/checkpoint.h"
#include "daecl/model.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[1 << 20];
    const uint8_t *file = data;
    size_t len = size;
    if (size >= 1 && (data[0] & 1) && size - 1 + 28 <= sizeof buf) {
        uint32_t version = DC_CHECKPOINT_VERSION, bom = 0x01020304u;
        uint64_t plen = size - 1;
        memcpy(buf, "DAECLCKP", 8);
        memcpy(buf + 8, &version, 4);
        memcpy(buf + 12, &bom, 4);
        memcpy(buf + 16, &plen, 8);
        memcpy(buf + 24, data + 1, plen);
        uint32_t crc = (uint32_t)crc32(0L, data + 1, (uInt)plen);
        memcpy(buf + 24 + plen, &crc, 4);
        file = buf;
        len = 28 + plen;
    }
    dc_checkpoint ck;
    if (dc_checkpoint_load(fuzz_file_write(file, len), &ck) == DC_OK) {
        dc_arch arch;
        static dc_layer_state layers[DC_MAX_LAYERS];
        size_t nparams;
        double flops;
        if (dc_arch_parse(ck.arch, &arch) == DC_OK)
            (void)dc_model_plan(&arch, ck.in_c, ck.in_h, ck.in_w, layers, &nparams, &flops);
        dc_checkpoint_free(&ck);
    }
    return 0;
}

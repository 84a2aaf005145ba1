/* fuzz_safetensors.c: libFuzzer target for the safetensors reader. Any input either fails to
 * open with a message, or opens into tensors that all lie inside the input and read back. */
#include "gc_io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gc_safetensors *st = NULL;
    if (gc_st_open_memory(&st, data, size) != GC_OK) {
        if (st != NULL || gc_last_error()[0] == '\0') abort();
        return 0;
    }
    for (int i = 0; i < gc_st_count(st); i++) {
        const gc_st_tensor *t = gc_st_get(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        if (gc_st_find(st, t->name) == NULL) abort();
        float *out = malloc(t->numel ? t->numel * sizeof(float) : 1);
        if (!out) continue;
        gc_status s = gc_st_read_f32(t, out, t->numel);
        if (s != GC_OK && t->dtype <= GC_DTYPE_BF16) abort();
        free(out);
    }
    (void)gc_st_metadata(st, "format");
    gc_st_close(st);
    return 0;
}

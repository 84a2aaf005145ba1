/* fuzz_jsonl.c: libFuzzer target for the JSONL / JSONL.gz training-data reader. Any input
 * either fails with a "name..." message or loads pairs with non-empty texts. */
#include "gc_io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gc_dataset *d = NULL;
    if (gc_dataset_load_memory(&d, data, size, "fuzz.jsonl") != GC_OK) {
        if (d != NULL || strncmp(gc_last_error(), "fuzz.jsonl", 10) != 0) abort();
        return 0;
    }
    if (d->n == 0) abort();
    for (size_t i = 0; i < d->n; i++) {
        const gc_pair *p = &d->pairs[i];
        if (!p->query[0] || !p->positive[0] || p->num_negatives < 0) abort();
        for (int k = 0; k < p->num_negatives; k++)
            if (!p->negatives[k][0]) abort();
    }
    gc_dataset_free(d);
    return 0;
}

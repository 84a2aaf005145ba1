/* fuzz_beir.c: libFuzzer target for the BEIR-format reader (corpus.jsonl, queries.jsonl,
 * qrels.tsv). The input is cut at its first two 0x01 bytes into the three files (what is missing
 * is empty). Any input either fails with a "fuzz..." message or loads judgements that point
 * inside the corpus (or are -1) for queries that exist. */
#include "gc_beir.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[3] = {data, data + size, data + size};
    size_t len[3] = {size, 0, 0};
    const uint8_t *a = memchr(data, 1, size);
    if (a) {
        len[0] = (size_t)(a - data);
        part[1] = a + 1;
        len[1] = size - len[0] - 1;
        const uint8_t *b = memchr(part[1], 1, len[1]);
        if (b) {
            len[1] = (size_t)(b - part[1]);
            part[2] = b + 1;
            len[2] = size - len[0] - len[1] - 2;
        }
    }
    gc_beir *x = NULL;
    if (gc_beir_load_memory(&x, part[0], len[0], part[1], len[1], (const char *)part[2], len[2],
                            "fuzz") != GC_OK) {
        if (x != NULL || strncmp(gc_last_error(), "fuzz", 4) != 0) abort();
        return 0;
    }
    if (x->ndocs == 0 || x->nqueries == 0 || x->qrel_offsets[0] != 0) abort();
    for (size_t i = 0; i < x->nqueries; i++) {
        if (x->qrel_offsets[i + 1] <= x->qrel_offsets[i]) abort();
        for (int64_t j = x->qrel_offsets[i]; j < x->qrel_offsets[i + 1]; j++)
            if (x->qrel_docs[j] < -1 || x->qrel_docs[j] >= (int64_t)x->ndocs) abort();
    }
    gc_beir_free(x);
    return 0;
}

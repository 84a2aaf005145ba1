/* batch.h (internal): one side of a training batch as rows of tokenized texts, and the encoder
 * wrapper that gathers a chunk's token ids from them (batch.c). */
#ifndef GC_TRAIN_BATCH_H
#define GC_TRAIN_BATCH_H

#include "gc_encoder.h"

/* Rows [0, mb) are texts[idx[i]]; with negatives, row mb + i*K + k is negatives[idx[i]*K + k]
 * (pair i's k-th hard negative). Nothing is copied: the arrays stay the caller's. */
typedef struct batch_side {
    const gc_token_batch *texts;
    const gc_token_batch *negatives; /* NULL on the query side */
    const int32_t *idx;              /* mb pair indices */
    int mb, K;
} batch_side;

/* An encoder that takes batch_side inputs: each call gathers the token ids of its chunk into
 * one buffer (sized by reserve: max_count rows of max_len ids) and passes them on to `inner`.
 * max_rows bounds a side's rows (mb * (1 + K)). */
typedef struct batch_gather {
    gc_encoder inner;
    int32_t *ids;
    int64_t *off; /* max_rows + 1; only the called range is meaningful */
    int max_rows, max_count, max_len;
} batch_gather;

gc_status batch_gather_init(batch_gather *g, gc_encoder inner, int max_rows);
/* The wrapper as an encoder (valid while g lives). */
gc_encoder batch_gather_encoder(batch_gather *g);
void batch_gather_free(batch_gather *g);

#endif

/* gc_train.h: the pieces of a training run that outlive one step: the data order of an epoch
 * (a seeded shuffle that keeps duplicate positives, and other in-batch false negatives, out of
 * one batch) and the checkpoint file (everything needed to continue a run bit for bit). */
#ifndef GC_TRAIN_H
#define GC_TRAIN_H

#include "gradcache.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data order ---- */

/* Group ids by exact text equality: group[i] == group[j] iff texts i and j are equal. Ids are
 * dense, 0 .. *ngroups - 1, in order of first appearance. */
gc_status gc_text_groups(const char *const *texts, size_t n, int32_t *group, size_t *ngroups);

/* The order of epoch `epoch` of a run seeded `seed`: a Fisher-Yates shuffle of 0..n-1 driven by
 * splitmix64 (the same on every platform), cut into batches of `batch` in which no two items
 * share a group (an item whose group is already in the batch is deferred to the next batch
 * that can take it, ahead of the rest of the stream). The last partial batch and any items
 * still deferred at the end are dropped. order (room for n) gets nbatches * batch indices.
 * ngroups bounds the group ids. */
gc_status gc_epoch_order(const int32_t *group, size_t n, size_t ngroups, size_t batch,
                         uint64_t seed, uint64_t epoch, int32_t *order, size_t *nbatches);

/* Group ids of a set of training pairs, for an order without false negatives in a batch.
 * query[i] is pair i's query group (ids below nquery); positive[i] and negative[i*K + k] are its
 * positive's and hard negatives' groups in ONE id space of passage texts (ids below npassage),
 * so a hard negative equal to another pair's positive has that positive's id. query may be NULL
 * (queries not compared) and negative NULL when K is 0. */
typedef struct gc_pair_groups {
    const int32_t *query;
    size_t nquery;
    const int32_t *positive;
    const int32_t *negative;
    int K;
    size_t npassage;
} gc_pair_groups;

/* gc_epoch_order for pairs with hard negatives: a pair joins a batch only when it brings no
 * false negative to anyone in it, i.e. its query is not already a query of the batch (an equal
 * query's positive would be scored as a negative of it), its positive is not already a
 * passage of the batch (positive or hard negative), and none of its hard negatives is already
 * a positive of the batch; otherwise it is deferred as gc_epoch_order defers duplicates. A pair
 * whose own hard negative equals its own positive is not caught here (nothing can batch it
 * well). With query == NULL and K == 0 this is exactly gc_epoch_order(positive, ...). */
gc_status gc_epoch_order_pairs(const gc_pair_groups *g, size_t n, size_t batch, uint64_t seed,
                               uint64_t epoch, int32_t *order, size_t *nbatches);

/* ---- checkpoints ----
 *
 * File layout (little-endian, every field 8-byte aligned so the float arrays can be used in
 * place): magic "GCCKPT\0\0", u32 version, u32 0, u64 step, epoch, position, seed,
 * u64 args_len + args text padded to 8, u64 num_params + f32 params, u64 optim_step,
 * u64 state_size + f32 state, f32 log_tau + f32 0, u64 tau_step, u64 tau_state_size + f32
 * tau_state (each float array padded to 8 bytes), then u32 crc32 of everything before it and
 * u32 0. */

#define GC_CHECKPOINT_VERSION 1u

typedef struct gc_checkpoint {
    uint64_t step;     /* optimizer steps done */
    uint64_t epoch;    /* epoch of the next batch */
    uint64_t position; /* batch index within that epoch's order */
    uint64_t seed;
    const char *args; /* "key=value\n" lines that must match on resume (NUL-terminated) */
    size_t num_params;
    const float *params;
    uint64_t optim_step;
    size_t state_size;
    const float *state; /* optimizer moments (AdamW: m then v) */
    float log_tau;
    uint64_t tau_step;
    size_t tau_state_size; /* 0 or 2 */
    const float *tau_state;
    void *buffer_; /* owned file contents after gc_checkpoint_read */
} gc_checkpoint;

/* Write atomically (temporary file, fsync, rename): a crash leaves the old file or the new. */
gc_status gc_checkpoint_write(const char *path, const gc_checkpoint *ck);
/* Read and validate (magic, version, sizes, crc32); pointers point into a buffer freed by
 * gc_checkpoint_free. */
gc_status gc_checkpoint_read(const char *path, gc_checkpoint *ck);
/* The same from memory (buf is copied, so it needs no alignment and may go away after; for
 * tests and fuzzing). On failure *ck is cleared. */
gc_status gc_checkpoint_parse(const void *buf, size_t len, gc_checkpoint *ck);
void gc_checkpoint_free(gc_checkpoint *ck);

#ifdef __cplusplus
}
#endif

#endif

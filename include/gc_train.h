/* gc_train.h: training runs: the trainer (gc_trainer: accumulation, clipping, learning-rate and
 * temperature updates, the data order, checkpoints and resume), the data order of an epoch (a
 * seeded shuffle that keeps duplicate positives, and other in-batch false negatives, out of one
 * batch) and the checkpoint file (everything needed to continue a run bit for bit). */
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

/* ---- the trainer ----
 *
 * A training run over query/positive pairs (with K hard negatives each): every optimizer step
 * takes the next `batch` pairs of the epoch's order (gc_epoch_order_pairs, so no batch holds a
 * false negative), runs `accumulation` engine steps over micro-batches of batch/accumulation
 * pairs, clips the global gradient norm (parameters and log-temperature together), and updates
 * the parameters and, when learned, log(tau) with the same optimizer and schedule. Parameters,
 * gradients and optimizer state stay in the encoder's parameter store; a checkpoint copies them
 * to host memory. Nothing is allocated by a step. */

/* The training pairs, tokenized. Pair i is queries[i], positives[i] and negatives[i*K + k]
 * (k < K). The texts decide the data order (equal texts are the same example) and the data's
 * checksum in the resume fingerprint; every array is the caller's and must outlive the trainer. */
typedef struct gc_train_data {
    size_t n;                                     /* pairs */
    int K;                                        /* hard negatives per pair */
    gc_token_batch queries, positives, negatives; /* n, n and n*K sequences */
    const char *const *query_text;                /* n */
    const char *const *positive_text;             /* n */
    const char *const *negative_text;             /* n*K (NULL when K == 0) */
} gc_train_data;

typedef struct gc_trainer_config {
    int batch;           /* pairs per optimizer step (global) */
    int accumulation;    /* micro-batches per step, each with its own in-batch negatives (>= 1,
                            divides batch) */
    int query_chunk;     /* examples per encoder call, query side (capped at the micro-batch) */
    int passage_chunk;   /* passage side */
    int no_cache;        /* each side in one pass with activations kept */
    int max_len;         /* longest sequence any call will see (training, and evaluations
                            through the same encoder with gc_trainer_encode_batch sequences) */
    gc_loss_config loss; /* loss.temperature is the initial tau */
    int learn_temperature;
    gc_optim_config optim;
    int (*decay)(const char *tensor_name); /* weight decay per tensor; NULL:
                                              gc_optim_default_decay */
    float lr;                              /* peak learning rate */
    gc_schedule schedule;
    uint64_t warmup;      /* linear warmup steps */
    double max_grad_norm; /* <= 0: no clipping */
    uint64_t steps;       /* length of the run; 0: `epochs` epochs */
    uint64_t epochs;
    uint64_t seed;           /* data order and dropout */
    const char *fingerprint; /* extra "key=value\n" lines a resumed run must match (options the
                                trainer does not see: max lengths, dropout); may be NULL */
    gc_matryoshka_config matryoshka; /* count 0: off; else the loss of every listed prefix size,
                                        in the same cached step (in the fingerprint when on) */
    size_t memory_budget; /* bytes (0: off): the engine's planner (gc_engine_config); with
                             query_chunk = passage_chunk = 0 it also chooses the chunk sizes */
    int reps_bf16;        /* keep the batch's representations in bf16 (gc_engine_config; set with
                             --precision bf16); what the loss reads, so a resume must match it */
} gc_trainer_config;

typedef struct gc_trainer gc_trainer;

/* What create found in the data (for the caller's messages). */
typedef struct gc_trainer_info {
    uint64_t total_steps;           /* of the whole run */
    size_t batches_epoch0;          /* full batches of epoch 0 */
    size_t distinct_positives;      /* distinct positive texts */
    size_t self_negatives;          /* pairs with a hard negative equal to their own positive */
    size_t first_self_negative;     /* index of the first such pair */
    int micro_batch;                /* pairs per engine step */
    int query_chunk, passage_chunk; /* as capped (or as the planner chose) */
    gc_engine_plan plan;            /* the engine's plan (chunks kept, expected peak) */
} gc_trainer_info;

/* After a step. loss and accuracy average the micro-batches. */
typedef struct gc_train_stats {
    uint64_t step;  /* optimizer steps done, this one included */
    uint64_t epoch; /* epoch of this step's batch */
    double loss, accuracy;
    double grad_norm;  /* before clipping */
    float lr;          /* used by this step */
    float temperature; /* after this step */
} gc_train_stats;

/* encoder serves both sides (shared weights) unless passage_encoder is another one (two
 * towers; NULL means shared). comm may be NULL (one process). The trainer does not own the
 * encoders or the data. Returns GC_ERR_INVALID_ARG with a message when the data cannot make a
 * batch of that size (fewer pairs or distinct positives than the batch, or no batch free of
 * false negatives). */
gc_status gc_trainer_create(gc_trainer **out, const gc_trainer_config *cfg, gc_encoder *encoder,
                            gc_encoder *passage_encoder, const gc_train_data *data,
                            const gc_comm *comm);
void gc_trainer_free(gc_trainer *t);
const gc_trainer_info *gc_trainer_get_info(const gc_trainer *t);

/* One optimizer step over the next batch of the data order. A non-finite loss or gradient norm
 * returns GC_ERR_NUMERIC and changes no parameter. */
gc_status gc_trainer_step(gc_trainer *t, gc_train_stats *stats);
/* One optimizer step over the given batch (cfg.batch pair indices), outside the data order
 * (the order's position does not move; dropout uses the current step number). */
gc_status gc_trainer_step_batch(gc_trainer *t, const int32_t *pairs, gc_train_stats *stats);

/* Optimizer steps done, and the position of the next batch. */
uint64_t gc_trainer_steps_done(const gc_trainer *t);
void gc_trainer_position(const gc_trainer *t, uint64_t *epoch, uint64_t *position);
float gc_trainer_temperature(const gc_trainer *t);
/* Sequences one encode call may take within the encoder's reservation (for evaluations
 * between steps). */
int gc_trainer_encode_batch(const gc_trainer *t);
/* Every parameter and log(tau) finite? GC_ERR_NUMERIC if not. Copies the state to the host
 * buffer that the next gc_trainer_save reuses unless a step or resume comes between (so a
 * check before saving other files, then the save, copies once). */
gc_status gc_trainer_check_finite(gc_trainer *t);

/* The whole training state to a checkpoint file (atomically): parameters, optimizer moments
 * and steps, temperature, data position and the fingerprint of everything that decides the
 * numbers. Refuses (GC_ERR_NUMERIC) when a parameter is not finite. Parameters and state are
 * copied to host memory here (one host buffer, allocated by the first save or check). */
gc_status gc_trainer_save(gc_trainer *t, const char *checkpoint_path);
/* Continue from a checkpoint: the fingerprint must match (the message names the first line that
 * differs; total steps may grow), sizes must match; then parameters, optimizer state,
 * temperature and position are restored. */
gc_status gc_trainer_resume(gc_trainer *t, const char *checkpoint_path);

#ifdef __cplusplus
}
#endif

#endif

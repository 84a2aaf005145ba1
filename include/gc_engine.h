/* gc_engine.h: the gradient-cache engine: pass 1, the loss, pass 2, over any chunking. */
#ifndef GC_ENGINE_H
#define GC_ENGINE_H

#include "gc_comm.h"
#include "gc_encoder.h"
#include "gc_loss.h"
#include "gc_matryoshka.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* The gradient-cache engine.
 *
 * One step over a global batch of B queries and P = B*(1+K) passages:
 *  pass 1: encode every chunk of both sides (no activations kept) -> representations;
 *  loss:   the loss's forward half (gc_matryoshka_stats) over all representations: the loss
 *          and the per-row / per-column log-sum-exp statistics, no gradient yet;
 *  pass 2: per chunk, the chunk's d loss / d rep from the tiles that involve it
 *          (gc_matryoshka_rep_grad, for a window of up to GC_ENGINE_GRAD_ROWS examples at a
 *          time), then forward with activations and backward, which accumulates into the
 *          encoders' parameter gradients.
 * No gradient of the whole batch's representations is ever held: what grows with the batch is
 * the representations (float, or bf16 with reps_bf16) and about 40 bytes of statistics a
 * pair.
 * With no_cache each side is one chunk with activations kept and there is no pass 1.
 * The engine has the encoders zero their gradients at the start of a step (through their
 * parameter stores), and all-reduces them at the end through the communicator, in the
 * stores' own memory. It never sees model internals. */
typedef struct gc_engine gc_engine;

typedef struct gc_engine_config {
    int max_batch;     /* largest B (global) a step will see */
    int max_negatives; /* largest K */
    int query_chunk;   /* examples per chunk on the query side (>= 1) */
    int passage_chunk; /* examples per chunk on the passage side (>= 1) */
    int no_cache;      /* 1: each side in one pass with activations kept */
    int max_len;       /* longest input of an example (tokens), passed to the encoders' reserve */
    gc_loss_config loss;
    int learn_temperature; /* compute d loss / d log tau for the caller's optimizer */
    uint64_t seed;
    gc_matryoshka_config matryoshka; /* count 0: the plain loss; else gc_matryoshka_infonce */
    /* Memory-budget planner (0: off). Bytes the step may hold: the engine's buffers and loss
     * workspace, the encoders' parameters, gradients and AdamW moments (16 bytes a parameter),
     * and what the encoders reserve (their reserve_bytes op, required when on). With chunk
     * sizes 0 (both) the planner chooses them (at most GC_ENGINE_PLAN_MAX_CHUNK, fewest
     * re-encoded examples first, then the largest); it then keeps the pass-1 activations of
     * as many of the last chunks of pass 1 as fit (at least the very last), and pass 2 only
     * back-propagates those. A budget below one chunk of one example is GC_ERR_INVALID_ARG.
     * Not with no_cache. */
    size_t memory_budget;
    /* Keep the representations in bf16 (half the bytes a pair); the encoders still hand over
     * float and the loss reads the bf16 values widened to float. Several ranks need an even
     * dimension for it (else the engine keeps float). */
    int reps_bf16;
} gc_engine_config;

#define GC_ENGINE_PLAN_MAX_CHUNK 32
/* Most examples whose representation gradients pass 2 computes at once (a multiple of the
 * chunk size; one chunk when a chunk is larger). */
#define GC_ENGINE_GRAD_ROWS 512

/* What the engine planned at create (for max_batch and max_negatives). */
typedef struct gc_engine_plan {
    size_t budget;                         /* the config's memory_budget (0: no planner) */
    int query_chunk, passage_chunk;        /* examples per chunk (chosen or given) */
    int query_chunks, passage_chunks;      /* chunks of this rank's share at max_batch */
    int kept_query, kept_passage;          /* of those, chunks whose pass-1 activations are kept */
    int kept_examples, reencoded_examples; /* examples of the kept / re-encoded chunks */
    int slots[2];         /* activation slots reserved per encoder ([0] when shared) */
    size_t engine_bytes;  /* representations, the gradient window, loss workspace */
    size_t model_bytes;   /* parameters, gradients, AdamW moments (16 B a parameter) */
    size_t encoder_bytes; /* the encoders' reservations (slots, scratch); 0 unknown */
    size_t peak_bytes;    /* sum of the three */
} gc_engine_plan;

typedef struct gc_step_stats {
    double loss;
    double accuracy;
    double dlog_tau; /* valid when learn_temperature */
    /* wall seconds of this call: pass 1 + pass 2 (encode), the all-gather of representations,
     * the (sharded) loss (statistics and every representation gradient), time_scatter (0: a
     * passage's gradient is computed whole on its owner), the gradient all-reduce */
    double time_encode, time_gather, time_loss, time_scatter, time_reduce;
} gc_step_stats;

/* query_enc and passage_enc may be the same encoder (shared weights) or two towers.
 * comm may be NULL (single process). The engine does not own the encoders. Create asks each
 * encoder to reserve what the engine's chunk rule needs (gc_encoder_reserve): the callers never
 * restate that rule. */
gc_status gc_engine_create(gc_engine **out, const gc_engine_config *cfg, gc_encoder *query_enc,
                           gc_encoder *passage_enc, const gc_comm *comm);
void gc_engine_free(gc_engine *e);
/* The most examples one call of the side's encoder may take under the reservation create made
 * (an evaluation between steps may encode that many at once). */
int gc_engine_reserved_count(const gc_engine *e, int side);
/* Bytes of this rank's loss workspace (a shard of B / ranks query rows; see gc_infonce_shard). */
size_t gc_engine_loss_workspace(const gc_engine *e);
/* The plan create made (chunk sizes, chunks kept, expected peak). */
gc_status gc_engine_get_plan(const gc_engine *e, gc_engine_plan *out);
/* Set the temperature used by the next steps (learnable temperature lives with the caller). */
void gc_engine_set_temperature(gc_engine *e, float temperature);
/* One gradient-cache step. queries/passages: the side inputs (passed to the encoders); B
 * queries, B*(1+K) passages laid out as in gc_infonce. step addresses the dropout masks.
 * On return the encoders' gradients hold d loss / d params for the whole batch. */
gc_status gc_engine_step(gc_engine *e, const void *queries, const void *passages, int B, int K,
                         uint32_t step, gc_step_stats *stats);
/* Per-call options of gc_engine_step_opts. Plain gradient accumulation over N micro-batches
 * (each with only its own in-batch negatives) calls it N times with accumulate = 1 after the
 * first and loss_scale = 1/N. */
typedef struct gc_step_options {
    int accumulate;   /* add into the encoders' gradients instead of zeroing them first */
    float loss_scale; /* scales the loss gradient (and stats.loss is unscaled); 0 means 1 */
    int skip_reduce;  /* do not all-reduce gradients after this call (the caller will) */
} gc_step_options;
gc_status gc_engine_step_opts(gc_engine *e, const void *queries, const void *passages, int B, int K,
                              uint32_t step, const gc_step_options *opts, gc_step_stats *stats);
/* All-reduce the encoders' gradients through the communicator (after skip_reduce steps). */
gc_status gc_engine_reduce_grads(gc_engine *e);

#ifdef __cplusplus
}
#endif

#endif /* GC_ENGINE_H */

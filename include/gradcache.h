/* gradcache.h: the core public API of gradcache.
 *
 * Status codes and error messages, the one matrix-product function, the counter-based random
 * generator, the encoder interface every model implements, the communicator seam, the tiled
 * contrastive loss and the gradient-cache engine. Model-specific APIs (BERT, tokenizer, model
 * folders, safetensors, data files, optimizer) live in the other headers of this folder.
 *
 * Conventions: every fallible function returns gc_status; on failure a message describing the
 * problem is kept per thread and read with gc_last_error(). The library never prints and never
 * exits. Matrices are row-major float32.
 */
#ifndef GRADCACHE_H
#define GRADCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status and errors */

typedef enum gc_status {
    GC_OK = 0,
    GC_ERR_INVALID_ARG = 1, /* a caller passed something impossible (NULL, 0 chunk, ...) */
    GC_ERR_NOMEM = 2,       /* an allocation failed */
    GC_ERR_IO = 3,          /* open/read/write/rename failed */
    GC_ERR_FORMAT = 4,      /* an outside file is malformed */
    GC_ERR_NUMERIC = 5,     /* NaN or infinity where a finite number is required */
    GC_ERR_UNSUPPORTED = 6, /* valid but not implemented (dtype, activation, ...) */
    GC_ERR_INTERNAL = 7,    /* a library bug or a third-party library failure */
    GC_ERR_INTERRUPTED = 8, /* stopped on request (signal) */
} gc_status;

/* Name of a status ("invalid argument", ...). Never NULL. */
const char *gc_status_str(gc_status s);
/* The message of the last failure on this thread ("" if none). */
const char *gc_last_error(void);
/* Record a message (printf-style) for status s on this thread and return s. */
gc_status gc_set_error(gc_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void gc_clear_error(void);

/* ------------------------------------------------------------------------------------------ */
/* The one matrix-product function.
 *
 * C (M,N) = op(A) (M,K) @ op(B) (K,N)            when accumulate == 0
 * C (M,N) += op(A) (M,K) @ op(B) (K,N)           when accumulate != 0
 * op(A) is A (M,K) when trans_a == 0, else A is stored (K,M) and transposed; likewise for B
 * ((K,N) or stored (N,K)). Row-major, contiguous. Backed by oneDNN's matmul primitive, built
 * once per (trans_a, trans_b, accumulate) with runtime sizes and reused for every shape; tiny
 * products (M*N*K <= 32768) run in plain loops. gc_matmul_ref is the plain reference kept
 * beside it. M, N or K of 0 is a no-op (K == 0 with accumulate == 0 zeroes C). */
gc_status gc_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                    int trans_b, int accumulate);
void gc_matmul_ref(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                   int trans_b, int accumulate);
/* Free cached primitives (optional; for leak checkers). */
void gc_matmul_cleanup(void);

/* ------------------------------------------------------------------------------------------ */
/* Counter-based random numbers (Philox-4x32-10).
 *
 * A number is addressed, not drawn: the same address always gives the same value, so the
 * dropout mask of an example does not depend on which chunk it is in or whether it is computed
 * in pass 1 or pass 2 of a gradient-cache step. */

typedef struct gc_rng_addr {
    uint64_t seed;    /* the run's seed */
    uint32_t step;    /* optimizer step (or micro-batch counter) */
    uint32_t side;    /* 0 = query, 1 = passage */
    uint32_t example; /* the example's index in the global batch of its side */
    uint32_t stream;  /* which use inside the model: GC_RNG_STREAM(layer, site) */
} gc_rng_addr;

#define GC_RNG_STREAM(layer, site) ((uint32_t)(layer) * 16u + (uint32_t)(site))

/* Philox-4x32-10 block: out = philox(counter, key). */
void gc_philox4x32(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);
/* Uniform in [0, 1) for element `element` of the stream at addr (element: position within
 * the example, e.g. token * width + feature). */
float gc_rng_uniform(const gc_rng_addr *addr, uint32_t element);
/* out[i] = gc_rng_uniform(addr, first + i) for i < n, computed four at a time. */
void gc_rng_uniform_fill(float *out, const gc_rng_addr *addr, uint32_t first, size_t n);
/* Dropout scale for elements [first, first+n): 0 where dropped, 1/(1-p) where kept. p in
 * [0,1); p == 0 fills with 1. */
void gc_dropout_mask(float *mask, const gc_rng_addr *addr, uint32_t first, size_t n, float p);

/* ------------------------------------------------------------------------------------------ */
/* Inputs of text encoders: a list of token-id sequences (already with [CLS]/[SEP]). Sequence i
 * is ids[offsets[i] .. offsets[i+1]). The engine passes it through without looking inside. */
typedef struct gc_token_batch {
    int n;                  /* number of sequences */
    const int32_t *ids;     /* all ids, concatenated */
    const int64_t *offsets; /* n + 1 offsets into ids */
} gc_token_batch;

/* ------------------------------------------------------------------------------------------ */
/* The encoder interface: a table of functions plus a context, implemented by every model.
 *
 * An encoder maps examples [first, first+count) of one side's inputs to representations
 * reps (count, dim). It owns its parameters and their gradients as flat float buffers.
 *  - encode:   representations only; nothing is kept for a backward pass.
 *  - forward:  representations, keeping activations for the next backward call.
 *  - backward: given d loss / d reps (count, dim) for the same range as the last forward,
 *              accumulate (+=) into the parameter gradients.
 * `inputs` is whatever the model consumes (gc_token_batch for text encoders). Dropout is on
 * when train != 0 and addresses random numbers with (seed, step, side, first + i, ...). */
typedef struct gc_encode_args {
    const void *inputs; /* the whole side's inputs for this step */
    int side;           /* 0 = query, 1 = passage */
    int first;          /* first example (global index within the side) */
    int count;          /* examples in this chunk */
    int train;          /* dropout on */
    int slot;           /* activation slot forward keeps into and backward reads (0 or 1);
                           the engine uses slot = side only in no-cache mode, where both
                           sides' activations of a shared encoder must live at once */
    uint64_t seed;
    uint32_t step;
} gc_encode_args;

typedef struct gc_encoder_ops {
    int (*dim)(void *ctx);
    size_t (*num_params)(void *ctx);
    float *(*params)(void *ctx); /* flat parameter buffer, num_params floats */
    float *(*grads)(void *ctx);  /* flat gradient buffer, num_params floats */
    gc_status (*encode)(void *ctx, const gc_encode_args *a, float *reps);
    gc_status (*forward)(void *ctx, const gc_encode_args *a, float *reps);
    gc_status (*backward)(void *ctx, const gc_encode_args *a, const float *dreps);
    void (*free)(void *ctx);
} gc_encoder_ops;

typedef struct gc_encoder {
    const gc_encoder_ops *ops;
    void *ctx;
} gc_encoder;

/* Zero an encoder's gradient buffer. */
void gc_encoder_zero_grad(gc_encoder *enc);
/* Frees ctx through ops->free; NULL is fine. */
void gc_encoder_free(gc_encoder *enc);

/* ------------------------------------------------------------------------------------------ */
/* The communicator seam: gathering representations across processes and reducing gradients.
 * Only the single-process implementation exists today. */
typedef struct gc_comm_ops {
    int (*rank)(void *ctx);
    int (*size)(void *ctx);
    /* global (rows_local * size, d) = concatenation of every rank's local (rows_local, d). */
    gc_status (*all_gather)(void *ctx, const float *local, size_t rows_local, size_t d,
                            float *global);
    /* buf (n) = sum over ranks, in place. */
    gc_status (*all_reduce_sum)(void *ctx, float *buf, size_t n);
} gc_comm_ops;

typedef struct gc_comm {
    const gc_comm_ops *ops;
    void *ctx;
} gc_comm;

/* The single-process communicator (static, nothing to free). */
gc_comm gc_comm_single(void);

/* ------------------------------------------------------------------------------------------ */
/* The contrastive loss: InfoNCE with in-batch negatives.
 *
 * q (B, d) queries; p (P, d) passages with P = B * (1 + K): rows [0, B) are the positives
 * (query i's positive is row i), rows B + i*K + k are query i's hard negatives. Every query
 * scores every passage: s_ij = sim(q_i, p_j) / tau, where sim is the dot product, or the cosine
 * when cosine != 0.
 *   L = mean_i [ logsumexp_j s_ij - s_ii ]
 * With symmetric != 0 the term of each positive against all queries is added and the two are
 * averaged: L = (L_q + L_p) / 2 with L_p = mean_i [ logsumexp_j s_ji - s_ii ] (j over queries).
 * The tiled version never holds a B x P matrix: it makes one pass with an online log-sum-exp
 * (running max and sum) per row and per column, and a backward pass that recomputes tiles. */
typedef struct gc_loss_config {
    float temperature; /* tau > 0 */
    int symmetric;
    int cosine;
    int tile; /* tile edge in rows; <= 0 picks a default */
} gc_loss_config;

typedef struct gc_loss_out {
    double loss;
    double dlog_tau; /* d loss / d log(tau) */
    double accuracy; /* fraction of queries whose positive scores highest */
} gc_loss_out;

/* Workspace bytes gc_infonce needs for these sizes (so a training step never allocates). */
size_t gc_infonce_workspace_size(int B, int P, int d, const gc_loss_config *cfg);
/* Loss and gradients dq (B,d), dp (P,d) (assigned, not accumulated; either may be NULL to
 * skip the backward pass). workspace: gc_infonce_workspace_size bytes, or NULL to allocate. */
gc_status gc_infonce(const float *q, const float *p, int B, int P, int d,
                     const gc_loss_config *cfg, gc_loss_out *out, float *dq, float *dp,
                     void *workspace);
/* The plain dense reference (holds the full B x P matrix, computes in double). */
gc_status gc_infonce_ref(const float *q, const float *p, int B, int P, int d,
                         const gc_loss_config *cfg, gc_loss_out *out, float *dq, float *dp);
/* The same in double precision throughout, for finite-difference checks. */
gc_status gc_infonce_ref_f64(const double *q, const double *p, int B, int P, int d,
                             const gc_loss_config *cfg, double *loss, double *dq, double *dp,
                             double *dlog_tau);

/* ------------------------------------------------------------------------------------------ */
/* The gradient-cache engine.
 *
 * One step over a global batch of B queries and P = B*(1+K) passages:
 *  pass 1: encode every chunk of both sides (no activations kept) -> representations;
 *  loss:   gc_infonce over all representations -> d loss / d rep for every example (cached);
 *  pass 2: per chunk, forward with activations and backward the cached gradients, which
 *          accumulates into the encoders' parameter gradients.
 * With no_cache each side is one chunk with activations kept and there is no pass 1.
 * The engine zeroes the encoders' gradients at the start of a step, and all-reduces them at
 * the end through the communicator. It never sees model internals. */
typedef struct gc_engine gc_engine;

typedef struct gc_engine_config {
    int max_batch;     /* largest B (global) a step will see */
    int max_negatives; /* largest K */
    int query_chunk;   /* examples per chunk on the query side (>= 1) */
    int passage_chunk; /* examples per chunk on the passage side (>= 1) */
    int no_cache;      /* 1: each side in one pass with activations kept */
    gc_loss_config loss;
    int learn_temperature; /* compute d loss / d log tau for the caller's optimizer */
    uint64_t seed;
} gc_engine_config;

typedef struct gc_step_stats {
    double loss;
    double accuracy;
    double dlog_tau; /* valid when learn_temperature */
} gc_step_stats;

/* query_enc and passage_enc may be the same encoder (shared weights) or two towers.
 * comm may be NULL (single process). The engine does not own the encoders. */
gc_status gc_engine_create(gc_engine **out, const gc_engine_config *cfg, gc_encoder *query_enc,
                           gc_encoder *passage_enc, const gc_comm *comm);
void gc_engine_free(gc_engine *e);
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
gc_status gc_engine_step_opts(gc_engine *e, const void *queries, const void *passages, int B,
                              int K, uint32_t step, const gc_step_options *opts,
                              gc_step_stats *stats);
/* All-reduce the encoders' gradients through the communicator (after skip_reduce steps). */
gc_status gc_engine_reduce_grads(gc_engine *e);

/* Representations of the last step (B,d) and (P,d), for tests and diagnostics. */
const float *gc_engine_query_reps(const gc_engine *e);
const float *gc_engine_passage_reps(const gc_engine *e);

/* ------------------------------------------------------------------------------------------ */
/* A small test encoder: mean of token embeddings -> dense + bias -> tanh -> dropout -> dense
 * -> L2 normalize. Exists so the engine is tested without BERT. */
typedef struct gc_toy_config {
    int vocab;
    int embed;   /* embedding width */
    int hidden;  /* hidden width */
    int dim;     /* output representation width */
    float dropout;
    int max_chunk; /* largest chunk forward/backward will see */
    int slots;     /* activation slots (1, or 2 for no-cache mode with a shared encoder) */
    int max_tokens_per_chunk; /* total tokens of the largest chunk */
    uint64_t init_seed;
} gc_toy_config;

gc_status gc_toy_encoder_create(gc_encoder *out, const gc_toy_config *cfg);

#ifdef __cplusplus
}
#endif

#endif /* GRADCACHE_H */

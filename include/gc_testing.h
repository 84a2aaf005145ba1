/* gc_testing.h: the test-only API: reference kernels, the engine's representation accessors and
 * the toy encoder. Not part of the stable library interface. */
#ifndef GC_TESTING_H
#define GC_TESTING_H

#include "gc_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Plain reference kernels kept beside the optimized ones, for tests. */

void gc_matmul_ref(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                   int trans_b, int accumulate);
/* How many per-shape primitives this thread's cache holds (bounded; for tests). */
int gc_matmul_shape_cache_used(void);
/* The plain optimizer loop (double arithmetic per element), kept beside gc_optim_step. */
void gc_optim_step_ref(gc_optim *o, float *params, const float *grads, float lr, float grad_scale);
/* The plain dense reference (holds the full B x P matrix, computes in double). */
gc_status gc_infonce_ref(const float *q, const float *p, int B, int P, int d,
                         const gc_loss_config *cfg, gc_loss_out *out, float *dq, float *dp);
/* The same in double precision throughout, for finite-difference checks. */
gc_status gc_infonce_ref_f64(const double *q, const double *p, int B, int P, int d,
                             const gc_loss_config *cfg, double *loss, double *dq, double *dp,
                             double *dlog_tau);

/* ------------------------------------------------------------------------------------------ */
/* Representations of the last step (B,d) and (P,d), for tests and diagnostics. */
const float *gc_engine_query_reps(const gc_engine *e);
const float *gc_engine_passage_reps(const gc_engine *e);

/* ------------------------------------------------------------------------------------------ */
/* A small test encoder: mean of token embeddings -> dense + bias -> tanh -> dropout -> dense
 * -> L2 normalize. Exists so the engine is tested without BERT. */
typedef struct gc_toy_config {
    int vocab;
    int embed;  /* embedding width */
    int hidden; /* hidden width */
    int dim;    /* output representation width */
    float dropout;
    int max_chunk; /* largest chunk forward/backward will see */
    int slots;     /* activation slots (1, or 2 for no-cache mode with a shared encoder) */
    int max_tokens_per_chunk; /* total tokens of the largest chunk */
    uint64_t init_seed;
} gc_toy_config;

gc_status gc_toy_encoder_create(gc_encoder *out, const gc_toy_config *cfg);
/* The toy's host buffers (its store is a gc_host_store), for tests that poke at them. */
float *gc_toy_params(const gc_encoder *toy);
float *gc_toy_grads(const gc_encoder *toy);

#ifdef __cplusplus
}
#endif

#endif /* GC_TESTING_H */

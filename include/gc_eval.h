/* gc_eval.h: exact retrieval evaluation of embeddings.
 *
 * Query i's one relevant document is document i; every query is scored against every
 * document by dot product (normalize the embeddings first for cosine). Scores are computed in
 * blocks through gc_matmul and only a top-`depth` heap per query of the current query block is
 * kept, so memory is O(block^2 + block * depth), never nq x nd. Ranking is by score, higher
 * first; equal scores rank the lower document index first (a stable sort's order).
 *
 * gc_encode_sequences and gc_eval_pairs produce the embeddings through any encoder
 * (gc_encoder.h) from token-id sequences. */
#ifndef GC_EVAL_H
#define GC_EVAL_H

#include "gradcache.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GC_EVAL_MAX_K 16

typedef struct gc_retrieval_metrics {
    int n;                        /* queries */
    int nk;                       /* number of recall cut-offs */
    int ks[GC_EVAL_MAX_K];        /* the cut-offs, as given */
    double recall[GC_EVAL_MAX_K]; /* recall@ks[i]: fraction with rank <= K */
    double mrr10;                 /* mean of 1/rank over ranks <= 10 (0 beyond) */
    double ndcg10;                /* mean of 1/log2(1+rank) over ranks <= 10 (0 beyond) */
} gc_retrieval_metrics;

typedef struct gc_eval_config {
    int query_block; /* queries per block; <= 0 picks a default */
    int doc_block;   /* documents per block; <= 0 picks a default */
} gc_eval_config;

/* q (nq, d) and docs (nd, d) with nd >= nq; ks: nk (1..GC_EVAL_MAX_K) cut-offs >= 1.
 * ranks, when not NULL, gets nq 1-based ranks of each relevant document, or 0 where it falls
 * below the deepest cut-off (max(ks, 10), at most nd). cfg may be NULL. Non-finite embeddings
 * are an error (GC_ERR_NUMERIC). */
gc_status gc_eval_retrieval(const float *q, const float *docs, int nq, int nd, int d, const int *ks,
                            int nk, const gc_eval_config *cfg, gc_retrieval_metrics *out,
                            int *ranks);

/* The plain reference: every score in double, the rank of each relevant document counted
 * directly (full nq x nd work, nothing stored). Same arguments and tie rule. */
gc_status gc_eval_retrieval_ref(const float *q, const float *docs, int nq, int nd, int d,
                                const int *ks, int nk, gc_retrieval_metrics *out, int *ranks);

/* ---- encoding and evaluating pairs through an encoder ---- */

/* Embeddings (n, dim) of the sequences of tb through enc's encode (no dropout), `batch`
 * sequences per call (the encoder must hold that many of the longest; sequences are grouped by
 * length so a call's lengths are similar). out is (tb->n, dim) in tb's order. */
gc_status gc_encode_sequences(gc_encoder *enc, const gc_token_batch *tb, int batch, float *out);
/* L2-normalize rows in place (zero rows stay zero). */
void gc_normalize_rows(float *x, size_t rows, int dim);
/* Encode every query and positive, normalize (cosine) and rank each query's positive among all
 * positives (gc_eval_retrieval). */
gc_status gc_eval_pairs(gc_encoder *enc, const gc_token_batch *queries,
                        const gc_token_batch *positives, int batch, const int *ks, int nk,
                        gc_retrieval_metrics *out);
/* Matryoshka truncation: rows (rows, dim) become (rows, keep) in place (packed, the first keep
 * components of each row), then L2-normalized. keep in [1, dim]. */
void gc_truncate_rows(float *x, size_t rows, int dim, int keep);
/* gc_eval_pairs on embeddings truncated to their first `keep` components and re-normalized
 * (keep 0: the full width; otherwise in [1, the encoder's dim]). */
gc_status gc_eval_pairs_dim(gc_encoder *enc, const gc_token_batch *queries,
                            const gc_token_batch *positives, int batch, int keep, const int *ks,
                            int nk, gc_retrieval_metrics *out);

#ifdef __cplusplus
}
#endif

#endif

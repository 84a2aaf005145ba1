/* gc_loss.h: the tiled contrastive loss (InfoNCE with in-batch negatives). */
#ifndef GC_LOSS_H
#define GC_LOSS_H

#include "gc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

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
gc_status gc_infonce(const float *q, const float *p, int B, int P, int d, const gc_loss_config *cfg,
                     gc_loss_out *out, float *dq, float *dp, void *workspace);

#ifdef __cplusplus
}
#endif

#endif /* GC_LOSS_H */

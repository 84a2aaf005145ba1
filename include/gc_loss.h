/* gc_loss.h: the tiled contrastive loss (InfoNCE with in-batch negatives). */
#ifndef GC_LOSS_H
#define GC_LOSS_H

#include "gc_comm.h"
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

/* The loss sharded over the ranks of a communicator (Inf-CL style: no rank computes all B x P
 * scores). Every rank holds the gathered q (B, d) and p (P, d) but scores only its own query
 * rows [row0, row0 + rows) against all passages: the row statistics are complete on the rank,
 * the positive columns' log-sum-exp statistics (symmetric) are merged across ranks (an
 * all-reduce of the maxima, then of the rescaled sums), and loss, d loss / d log tau and the
 * hit count are summed across ranks, so `out` is the whole batch's on every rank, bit-identical.
 * dq gets rows [row0, row0 + rows) only (at their global place); dp (P, d) gets this rank's
 * part: summed over the ranks (a reduce-scatter to the passages' owners) it is the full
 * gradient. Every rank calls it with the same B, P, d and cfg. shard NULL, or comm NULL or of
 * one rank with row0 = 0 and rows = B, is exactly gc_infonce. */
typedef struct gc_loss_shard {
    int row0, rows;
    const gc_comm *comm;
} gc_loss_shard;
/* Workspace bytes of a shard of `rows` rows; sharded: the communicator has several ranks. */
size_t gc_infonce_shard_workspace_size(int B, int P, int d, int rows, int sharded,
                                       const gc_loss_config *cfg);
gc_status gc_infonce_shard(const float *q, const float *p, int B, int P, int d,
                           const gc_loss_config *cfg, const gc_loss_shard *shard, gc_loss_out *out,
                           float *dq, float *dp, void *workspace);

/* ------------------------------------------------------------------------------------------ */
/* The loss in two halves, so no representation gradient need be cached for the whole batch.
 *
 * gc_infonce_stats makes the forward pass only: loss, accuracy, d loss / d log tau, and the
 * per-row and (symmetric) per-positive-column log-sum-exp statistics, which stay in the
 * workspace. gc_infonce_rep_grad then gives the gradient of any rows of either side, assigned
 * to a (count, d) buffer, from the tiles that involve those rows: queries [first, first+count)
 * against every passage, or passages against every query. Called over a partition of both
 * sides it does the work of gc_infonce's backward pass plus one more score product per tile,
 * and its rows equal gc_infonce's (to float rounding: the tiles sum in another order).
 *
 * Sharded (shard->comm of several ranks): stats scores only the rank's query rows, merges the
 * column statistics, and all-reduces the row statistics, so every rank holds all B rows' and
 * rep_grad of ANY rows is complete on the rank (no reduce-scatter of passage gradients). The
 * workspace holds per-example statistics (about 40 bytes a pair) and tile buffers; between
 * stats and rep_grad, v must describe the same values. */
typedef struct gc_rep_view {
    const void *q; /* (B, ld) query rows: float, or uint16_t bf16 when bf16 != 0 */
    const void *p; /* (P, ld) passage rows */
    int ld;        /* row stride in elements; the loss reads the first d columns */
    int bf16;
} gc_rep_view;

size_t gc_infonce_stats_workspace_size(int B, int P, int d, int rows, int sharded,
                                       const gc_loss_config *cfg);
gc_status gc_infonce_stats(const gc_rep_view *v, int B, int P, int d, const gc_loss_config *cfg,
                           const gc_loss_shard *shard, gc_loss_out *out, void *workspace);
/* side 0: queries, 1: passages. grad (count, d) = scale * d loss / d rows, assigned. */
gc_status gc_infonce_rep_grad(const gc_rep_view *v, int side, int first, int count, float scale,
                              float *grad, void *workspace);

#ifdef __cplusplus
}
#endif

#endif /* GC_LOSS_H */

/* retrieval.c: exact retrieval metrics (recall@K, MRR@10, nDCG@10) of a pairs file, where the
 * relevant document of query i is document i, by the blocked top-k search of topk.c. The
 * relevant document's score comes from the same matmul output as every other score, so its
 * comparison with the others is consistent whatever the block shapes. */
#include "gc_eval.h"

#include "eval/topk.h"

#include <math.h>
#include <stdlib.h>

static gc_status check_args(const char *fn, const float *q, const float *docs, int nq, int nd,
                            int d, const int *ks, int nk, gc_retrieval_metrics *out) {
    if (!q || !docs || !ks || !out)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: NULL argument", fn);
    if (nq < 1 || d < 1 || nd < nq)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "%s: need nq >= 1, d >= 1, nd >= nq (got %d, %d, %d)", fn, nq, d, nd);
    if (nk < 1 || nk > GC_EVAL_MAX_K)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: between 1 and %d cut-offs, got %d", fn,
                            GC_EVAL_MAX_K, nk);
    for (int i = 0; i < nk; i++)
        if (ks[i] < 1)
            return gc_set_error(GC_ERR_INVALID_ARG, "%s: cut-off %d is not >= 1", fn, ks[i]);
    for (size_t i = 0; i < (size_t)nq * d; i++)
        if (!isfinite(q[i]))
            return gc_set_error(GC_ERR_NUMERIC, "%s: query %zu has a non-finite value", fn, i / d);
    for (size_t i = 0; i < (size_t)nd * d; i++)
        if (!isfinite(docs[i]))
            return gc_set_error(GC_ERR_NUMERIC, "%s: document %zu has a non-finite value", fn,
                                i / d);
    return GC_OK;
}

static int depth_of(const int *ks, int nk, int nd) {
    int depth = 10;
    for (int i = 0; i < nk; i++)
        if (ks[i] > depth) depth = ks[i];
    return depth < nd ? depth : nd;
}

static void summarize(const int *rank, int nq, const int *ks, int nk, gc_retrieval_metrics *out) {
    out->n = nq;
    out->nk = nk;
    double mrr = 0, ndcg = 0;
    for (int k = 0; k < nk; k++) {
        out->ks[k] = ks[k];
        out->recall[k] = 0;
    }
    for (int i = 0; i < nq; i++) {
        int r = rank[i];
        if (r < 1) continue;
        for (int k = 0; k < nk; k++)
            if (r <= ks[k]) out->recall[k] += 1;
        if (r <= 10) {
            mrr += 1.0 / r;
            ndcg += 1.0 / log2(1.0 + r);
        }
    }
    for (int k = 0; k < nk; k++) out->recall[k] /= nq;
    out->mrr10 = mrr / nq;
    out->ndcg10 = ndcg / nq;
}

/* rank[q] = 1 + the place of document q among query q's best, 0 when it is not among them. */
static gc_status rank_block(void *ctx, int q0, int mq, const int32_t *ranked, int stride,
                            const int *n) {
    int *rank = ctx;
    for (int i = 0; i < mq; i++) {
        const int32_t *row = ranked + (size_t)i * stride;
        rank[q0 + i] = 0;
        for (int k = 0; k < n[i]; k++)
            if (row[k] == q0 + i) {
                rank[q0 + i] = k + 1;
                break;
            }
    }
    return GC_OK;
}

gc_status gc_eval_retrieval(const float *q, const float *docs, int nq, int nd, int d, const int *ks,
                            int nk, const gc_eval_config *cfg, gc_retrieval_metrics *out,
                            int *ranks) {
    gc_status st = check_args("gc_eval_retrieval", q, docs, nq, nd, d, ks, nk, out);
    if (st != GC_OK) return st;
    const int depth = depth_of(ks, nk, nd);
    int *rank = calloc((size_t)nq, sizeof(int));
    if (!rank) return gc_set_error(GC_ERR_NOMEM, "gc_eval_retrieval: out of memory");
    st = gc_topk_search(q, nq, docs, nd, d, depth, NULL, cfg, rank_block, rank);
    if (st != GC_OK) goto done;
    summarize(rank, nq, ks, nk, out);
    if (ranks)
        for (int i = 0; i < nq; i++) ranks[i] = rank[i];
done:
    free(rank);
    return st;
}

gc_status gc_eval_retrieval_ref(const float *q, const float *docs, int nq, int nd, int d,
                                const int *ks, int nk, gc_retrieval_metrics *out, int *ranks) {
    gc_status st = check_args("gc_eval_retrieval_ref", q, docs, nq, nd, d, ks, nk, out);
    if (st != GC_OK) return st;
    const int depth = depth_of(ks, nk, nd);
    int *rank = calloc((size_t)nq, sizeof(int));
    if (!rank) return gc_set_error(GC_ERR_NOMEM, "gc_eval_retrieval_ref: out of memory");
    for (int i = 0; i < nq; i++) {
        const float *qi = q + (size_t)i * d;
        double rel = 0;
        for (int c = 0; c < d; c++) rel += (double)qi[c] * docs[(size_t)i * d + c];
        int r = 1;
        for (int j = 0; j < nd; j++) {
            double s = 0;
            for (int c = 0; c < d; c++) s += (double)qi[c] * docs[(size_t)j * d + c];
            if (s > rel || (s == rel && j < i)) r++;
        }
        rank[i] = r <= depth ? r : 0;
    }
    summarize(rank, nq, ks, nk, out);
    if (ranks)
        for (int i = 0; i < nq; i++) ranks[i] = rank[i];
    free(rank);
    return GC_OK;
}

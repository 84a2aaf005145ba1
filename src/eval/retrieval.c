/* retrieval.c: exact retrieval metrics (recall@K, MRR@10, nDCG@10) by blocked scoring.
 *
 * For each block of queries, score blocks of documents with gc_matmul and push every score
 * into a bounded heap per query (the worst kept entry at the root). The relevant document's
 * score is read from the same matmul output as every other score, so its comparison with the
 * others is consistent whatever the block shapes. */
#include "gc_eval.h"

#include <math.h>
#include <stdlib.h>

typedef struct hit {
    float score;
    int doc;
} hit;

/* a ranks before b: higher score, then lower index */
static inline int better(float sa, int da, float sb, int db) {
    return sa > sb || (sa == sb && da < db);
}

/* Min-heap on "better": h[0] is the worst kept hit. */
static void heap_sift_down(hit *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(h[w].score, h[w].doc, h[l].score, h[l].doc)) w = l;
        if (r < n && better(h[w].score, h[w].doc, h[r].score, h[r].doc)) w = r;
        if (w == i) return;
        hit t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_push(hit *h, int *n, int cap, float s, int doc) {
    if (*n < cap) {
        int i = (*n)++;
        h[i].score = s;
        h[i].doc = doc;
        while (i > 0) { /* sift up: parent must be worse than child */
            int p = (i - 1) / 2;
            if (!better(h[p].score, h[p].doc, h[i].score, h[i].doc)) break;
            hit t = h[p];
            h[p] = h[i];
            h[i] = t;
            i = p;
        }
    } else if (better(s, doc, h[0].score, h[0].doc)) {
        h[0].score = s;
        h[0].doc = doc;
        heap_sift_down(h, *n, 0);
    }
}

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

gc_status gc_eval_retrieval(const float *q, const float *docs, int nq, int nd, int d, const int *ks,
                            int nk, const gc_eval_config *cfg, gc_retrieval_metrics *out,
                            int *ranks) {
    gc_status st = check_args("gc_eval_retrieval", q, docs, nq, nd, d, ks, nk, out);
    if (st != GC_OK) return st;
    int qb = cfg && cfg->query_block > 0 ? cfg->query_block : 256;
    int db = cfg && cfg->doc_block > 0 ? cfg->doc_block : 2048;
    if (qb > nq) qb = nq;
    if (db > nd) db = nd;
    const int depth = depth_of(ks, nk, nd);

    float *scores = malloc((size_t)qb * db * sizeof(float));
    hit *heaps = malloc((size_t)qb * depth * sizeof(hit));
    int *heap_n = malloc((size_t)qb * sizeof(int));
    int *rank = calloc((size_t)nq, sizeof(int));
    if (!scores || !heaps || !heap_n || !rank) {
        st = gc_set_error(GC_ERR_NOMEM, "gc_eval_retrieval: out of memory");
        goto done;
    }
    for (int q0 = 0; q0 < nq; q0 += qb) {
        const int mq = nq - q0 < qb ? nq - q0 : qb;
        for (int i = 0; i < mq; i++) heap_n[i] = 0;
        for (int d0 = 0; d0 < nd; d0 += db) {
            const int md = nd - d0 < db ? nd - d0 : db;
            /* scores (mq, md) = q[q0:q0+mq] (mq, d) @ docs[d0:d0+md]^T (d, md) */
            st = gc_matmul(scores, q + (size_t)q0 * d, docs + (size_t)d0 * d, mq, md, d, 0, 1, 0);
            if (st != GC_OK) goto done;
#pragma omp parallel for schedule(static)
            for (int i = 0; i < mq; i++) {
                const float *row = scores + (size_t)i * md;
                hit *h = heaps + (size_t)i * depth;
                for (int j = 0; j < md; j++) heap_push(h, &heap_n[i], depth, row[j], d0 + j);
            }
        }
#pragma omp parallel for schedule(static)
        for (int i = 0; i < mq; i++) {
            const hit *h = heaps + (size_t)i * depth;
            const int rel = q0 + i;
            int found = -1;
            for (int k = 0; k < heap_n[i]; k++)
                if (h[k].doc == rel) found = k;
            int r = 0;
            if (found >= 0) {
                r = 1;
                for (int k = 0; k < heap_n[i]; k++)
                    if (better(h[k].score, h[k].doc, h[found].score, rel)) r++;
            }
            rank[rel] = r;
        }
    }
    summarize(rank, nq, ks, nk, out);
    if (ranks)
        for (int i = 0; i < nq; i++) ranks[i] = rank[i];
done:
    free(scores);
    free(heaps);
    free(heap_n);
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

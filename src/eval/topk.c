/* topk.c: exact top-k search by blocks (see topk.h).
 *
 * For each block of queries, score blocks of documents with gc_matmul and push every score
 * into a bounded heap per query (the worst kept entry at the root); then sort each heap, best
 * first, and hand the block to the caller. */
#include "eval/topk.h"

#include <stdlib.h>

typedef struct hit {
    float score;
    int32_t key; /* tie order: lower first */
    int32_t doc;
} hit;

/* a ranks before b: higher score, then lower key */
static inline int better(const hit *a, const hit *b) {
    return a->score > b->score || (a->score == b->score && a->key < b->key);
}

/* Min-heap on "better": h[0] is the worst kept hit. */
static void heap_push(hit *h, int *n, int cap, hit x) {
    if (*n < cap) {
        int i = (*n)++;
        h[i] = x;
        while (i > 0) { /* sift up: a parent must be worse than its children */
            int p = (i - 1) / 2;
            if (!better(&h[p], &h[i])) break;
            hit t = h[p];
            h[p] = h[i];
            h[i] = t;
            i = p;
        }
        return;
    }
    if (!better(&x, &h[0])) return;
    h[0] = x;
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < *n && better(&h[w], &h[l])) w = l;
        if (r < *n && better(&h[w], &h[r])) w = r;
        if (w == i) return;
        hit t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static int hit_cmp(const void *a, const void *b) {
    const hit *x = a, *y = b;
    return better(x, y) ? -1 : better(y, x);
}

gc_status gc_topk_search(const float *q, int nq, const float *docs, int nd, int d, int depth,
                         const int32_t *key, const gc_eval_config *cfg, gc_topk_block_fn fn,
                         void *ctx) {
    if (!q || !docs || !fn || nq < 1 || nd < 1 || d < 1 || depth < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "top-k search: bad arguments");
    int qb = cfg && cfg->query_block > 0 ? cfg->query_block : 256;
    int db = cfg && cfg->doc_block > 0 ? cfg->doc_block : 2048;
    if (qb > nq) qb = nq;
    if (db > nd) db = nd;
    if (depth > nd) depth = nd;
    gc_status st = GC_OK;
    float *scores = malloc((size_t)qb * db * sizeof(float));
    hit *heaps = malloc((size_t)qb * depth * sizeof(hit));
    int *heap_n = malloc((size_t)qb * sizeof(int));
    int32_t *ranked = malloc((size_t)qb * depth * sizeof(int32_t));
    if (!scores || !heaps || !heap_n || !ranked) {
        st = gc_set_error(GC_ERR_NOMEM, "top-k search: out of memory");
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
                for (int j = 0; j < md; j++) {
                    int32_t doc = d0 + j;
                    heap_push(h, &heap_n[i], depth, (hit){row[j], key ? key[doc] : doc, doc});
                }
            }
        }
#pragma omp parallel for schedule(static)
        for (int i = 0; i < mq; i++) {
            hit *h = heaps + (size_t)i * depth;
            qsort(h, (size_t)heap_n[i], sizeof *h, hit_cmp);
            for (int k = 0; k < heap_n[i]; k++) ranked[(size_t)i * depth + k] = h[k].doc;
        }
        if ((st = fn(ctx, q0, mq, ranked, depth, heap_n)) != GC_OK) goto done;
    }
done:
    free(scores);
    free(heaps);
    free(heap_n);
    free(ranked);
    return st;
}

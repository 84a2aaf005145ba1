/* test_eval.c: blocked retrieval metrics against the brute-force reference: random embeddings,
 * block sizes that do not divide n, small-integer embeddings full of exact ties (exact in any
 * summation order, so both sides see the same scores), hand-made rankings with known metrics,
 * and bad arguments. */
#include "gc_eval.h"
#include "test_util.h"

#include <stdint.h>
#include <string.h>

static uint64_t g_state = 0x9E3779B97F4A7C15ULL;
static double uniform(void) {
    g_state ^= g_state << 13;
    g_state ^= g_state >> 7;
    g_state ^= g_state << 17;
    return (double)(g_state >> 11) / 9007199254740992.0;
}

static void fill_random(float *x, size_t n, int integers) {
    for (size_t i = 0; i < n; i++) {
        if (integers)
            x[i] = (float)((int)(uniform() * 3) - 1); /* -1, 0, 1 */
        else
            x[i] = (float)(uniform() * 2 - 1);
    }
}

static void compare(const char *what, const float *q, const float *docs, int nq, int nd, int d,
                    const int *ks, int nk, int qb, int db) {
    gc_retrieval_metrics a, b;
    int *ra = malloc((size_t)nq * sizeof(int)), *rb = malloc((size_t)nq * sizeof(int));
    gc_eval_config cfg = {qb, db};
    CHECK_OK(gc_eval_retrieval(q, docs, nq, nd, d, ks, nk, &cfg, &a, ra));
    CHECK_OK(gc_eval_retrieval_ref(q, docs, nq, nd, d, ks, nk, &b, rb));
    int mism = 0;
    for (int i = 0; i < nq; i++) mism += ra[i] != rb[i];
    CHECK(mism == 0, "%s (blocks %d x %d): %d ranks differ", what, qb, db, mism);
    CHECK(a.n == nq && a.nk == nk, "%s: n %d nk %d", what, a.n, a.nk);
    for (int k = 0; k < nk; k++)
        CHECK(a.recall[k] == b.recall[k], "%s: recall@%d %g vs %g", what, ks[k], a.recall[k],
              b.recall[k]);
    CHECK(fabs(a.mrr10 - b.mrr10) < 1e-12, "%s: mrr %g vs %g", what, a.mrr10, b.mrr10);
    CHECK(fabs(a.ndcg10 - b.ndcg10) < 1e-12, "%s: ndcg %g vs %g", what, a.ndcg10, b.ndcg10);
    free(ra);
    free(rb);
}

static void test_random(void) {
    const int nq = 203, nd = 251, d = 16;
    float *q = malloc((size_t)nq * d * sizeof(float)),
          *docs = malloc((size_t)nd * d * sizeof(float));
    fill_random(q, (size_t)nq * d, 0);
    fill_random(docs, (size_t)nd * d, 0);
    /* pull each relevant document towards its query so ranks spread over 1..many */
    for (int i = 0; i < nq; i++)
        for (int c = 0; c < d; c++) docs[i * d + c] += (float)(0.5 * (i % 5)) * q[i * d + c];
    const int ks[3] = {1, 10, 100};
    compare("random", q, docs, nq, nd, d, ks, 3, 0, 0);
    compare("random", q, docs, nq, nd, d, ks, 3, 7, 13);
    compare("random", q, docs, nq, nd, d, ks, 3, 64, 100);
    compare("random", q, docs, nq, nd, d, ks, 3, 1, 1);
    const int ks2[2] = {3, 500}; /* a cut-off beyond nd */
    compare("random deep", q, docs, nq, nd, d, ks2, 2, 50, 31);
    gc_retrieval_metrics m;
    CHECK_OK(gc_eval_retrieval(q, docs, nq, nd, d, ks2, 2, NULL, &m, NULL));
    CHECK(m.recall[1] == 1.0, "recall beyond nd is 1: %g", m.recall[1]);
    free(q);
    free(docs);
}

static void test_ties(void) {
    /* values in {-1, 0, 1}, d = 4: only 9 possible dot products, so ties everywhere */
    const int nq = 97, nd = 97, d = 4;
    float *q = malloc((size_t)nq * d * sizeof(float)),
          *docs = malloc((size_t)nd * d * sizeof(float));
    fill_random(q, (size_t)nq * d, 1);
    fill_random(docs, (size_t)nd * d, 1);
    const int ks[4] = {1, 5, 10, 50};
    compare("ties", q, docs, nq, nd, d, ks, 4, 0, 0);
    compare("ties", q, docs, nq, nd, d, ks, 4, 10, 9);
    compare("ties", q, docs, nq, nd, d, ks, 4, 96, 2);
    free(q);
    free(docs);

    /* all documents equal: every score ties, so query i's document ranks i + 1 */
    float one[2 * 12];
    for (int i = 0; i < 24; i++) one[i] = 1;
    int ranks[12];
    gc_retrieval_metrics m;
    const int k1[1] = {5};
    gc_eval_config cfg = {5, 7};
    CHECK_OK(gc_eval_retrieval(one, one, 12, 12, 2, k1, 1, &cfg, &m, ranks));
    for (int i = 0; i < 12; i++)
        CHECK(ranks[i] == (i < 10 ? i + 1 : 0), "all-tie rank of %d is %d", i, ranks[i]);
    CHECK(fabs(m.recall[0] - 5 / 12.0) < 1e-12, "all-tie recall@5 %g", m.recall[0]);
}

static void test_by_hand(void) {
    /* 1-d embeddings: docs 3, 2, 1 and queries 1, -1, 1 (scores are products). Query 0 (1):
     * docs score 3, 2, 1 -> its doc 0 ranks 1. Query 1 (-1): scores -3, -2, -1 -> doc 1 ranks
     * 2. Query 2 (1): doc 2 scores 1, the lowest -> rank 3. */
    const float q[3] = {1, -1, 1}, docs[3] = {3, 2, 1};
    const int ks[2] = {1, 2};
    gc_retrieval_metrics m;
    int ranks[3];
    CHECK_OK(gc_eval_retrieval(q, docs, 3, 3, 1, ks, 2, NULL, &m, ranks));
    CHECK(ranks[0] == 1 && ranks[1] == 2 && ranks[2] == 3, "ranks %d %d %d", ranks[0], ranks[1],
          ranks[2]);
    CHECK(fabs(m.recall[0] - 1 / 3.0) < 1e-12, "recall@1 %g", m.recall[0]);
    CHECK(fabs(m.recall[1] - 2 / 3.0) < 1e-12, "recall@2 %g", m.recall[1]);
    CHECK(fabs(m.mrr10 - (1 + 0.5 + 1 / 3.0) / 3) < 1e-12, "mrr %g", m.mrr10);
    CHECK(fabs(m.ndcg10 - (1 + 1 / log2(3.0) + 0.5) / 3) < 1e-12, "ndcg %g", m.ndcg10);
}

static void test_errors(void) {
    float x[4] = {1, 2, 3, 4};
    const int ks[1] = {1}, bad[1] = {0};
    gc_retrieval_metrics m;
    CHECK(gc_eval_retrieval(x, x, 2, 1, 2, ks, 1, NULL, &m, NULL) == GC_ERR_INVALID_ARG, "nd < nq");
    CHECK(gc_eval_retrieval(x, x, 2, 2, 2, bad, 1, NULL, &m, NULL) == GC_ERR_INVALID_ARG, "k 0");
    CHECK(gc_eval_retrieval(x, x, 2, 2, 2, ks, 0, NULL, &m, NULL) == GC_ERR_INVALID_ARG, "no ks");
    CHECK(gc_eval_retrieval(NULL, x, 2, 2, 2, ks, 1, NULL, &m, NULL) == GC_ERR_INVALID_ARG, "NULL");
    x[3] = NAN;
    CHECK(gc_eval_retrieval(x, x, 2, 2, 2, ks, 1, NULL, &m, NULL) == GC_ERR_NUMERIC, "NaN");
    CHECK(strstr(gc_last_error(), "non-finite") != NULL, "message: %s", gc_last_error());
}

int main(void) {
    test_random();
    test_ties();
    test_by_hand();
    test_errors();
    gc_matmul_cleanup();
    return test_summary("test_eval");
}

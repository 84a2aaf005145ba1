/* test_encode_many.c: gc_tokenize_many (packing, first failure, threads), and
 * gc_encode_sequences / gc_normalize_rows / gc_eval_pairs through a small fake encoder whose
 * embedding of a sequence is a fixed function of its ids, so every row can be checked. */
#include "gc_eval.h"
#include "gc_tokenizer.h"
#include "test_util.h"

#include <omp.h>
#include <string.h>

enum { DIM = 4, MAX_CALLS = 64 };

typedef struct fake {
    int calls, counts[MAX_CALLS];
    int64_t min_len[MAX_CALLS], max_len[MAX_CALLS];
} fake;

static int fake_dim(void *ctx) {
    (void)ctx;
    return DIM;
}

/* row = (len, sum of ids, first id, 1) */
static gc_status fake_encode(void *ctx, const gc_encode_args *a, float *reps) {
    fake *f = ctx;
    const gc_token_batch *tb = a->inputs;
    if (a->train || a->first != 0 || a->count != tb->n)
        return gc_set_error(GC_ERR_INVALID_ARG, "fake: unexpected call");
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < a->count; i++) {
        int64_t len = tb->offsets[i + 1] - tb->offsets[i];
        double sum = 0;
        for (int64_t j = 0; j < len; j++) sum += tb->ids[tb->offsets[i] + j];
        float *r = reps + (size_t)i * DIM;
        r[0] = (float)len;
        r[1] = (float)sum;
        r[2] = len ? (float)tb->ids[tb->offsets[i]] : -1.0f;
        r[3] = 1.0f;
        if (len < lo) lo = len;
        if (len > hi) hi = len;
    }
    if (f->calls < MAX_CALLS) {
        f->counts[f->calls] = a->count;
        f->min_len[f->calls] = lo;
        f->max_len[f->calls] = hi;
    }
    f->calls++;
    return GC_OK;
}

static const gc_encoder_ops FAKE_OPS = {.dim = fake_dim, .encode = fake_encode};

static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\na\nb\nc\n";

static void test_tokenize_many(const gc_tokenizer *tok) {
    enum { N = 300 };
    static char buf[N][64];
    const char *texts[N];
    for (int i = 0; i < N; i++) {
        buf[i][0] = '\0';
        for (int w = 0; w < i % 7; w++) strcat(buf[i], w % 2 ? "world " : "hello ");
        texts[i] = buf[i];
    }
    gc_token_list t;
    size_t bad = 99;
    CHECK_OK(gc_tokenize_many(tok, texts, N, 5, &t, &bad));
    CHECK(t.n == N && t.offsets[0] == 0, "n %zu", t.n);
    CHECK(t.max_len == 5, "max_len %d", t.max_len);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        int32_t want[64];
        int nw = 0;
        CHECK_OK(gc_tokenizer_encode(tok, texts[i], strlen(texts[i]), 5, want, &nw));
        int64_t len = t.offsets[i + 1] - t.offsets[i];
        if (len != nw || memcmp(t.ids + t.offsets[i], want, (size_t)nw * sizeof(int32_t))) ok = 0;
    }
    CHECK(ok, "packed ids differ from gc_tokenizer_encode");
    gc_token_batch tb = gc_token_list_batch(&t);
    CHECK(tb.n == N && tb.ids == t.ids && tb.offsets == t.offsets, "batch view");
    gc_token_list_free(&t);
    CHECK(t.ids == NULL && t.offsets == NULL && t.n == 0, "freed list is empty");
    gc_token_list_free(NULL);

    /* invalid UTF-8 in two texts: the lower index is reported, whatever the thread order */
    texts[211] = "bad \xff";
    texts[97] = "also \xc3";
    omp_set_num_threads(4);
    CHECK(gc_tokenize_many(tok, texts, N, 16, &t, &bad) == GC_ERR_FORMAT, "bad text");
    CHECK(bad == 97, "bad %zu", bad);
    CHECK(t.ids == NULL && t.offsets == NULL && t.n == 0, "empty on failure");
    CHECK(strlen(gc_last_error()) > 0, "message kept");

    CHECK_OK(gc_tokenize_many(tok, texts, 0, 16, &t, &bad));
    CHECK(t.n == 0 && t.offsets && t.offsets[0] == 0, "empty list");
    gc_token_list_free(&t);
    CHECK(gc_tokenize_many(tok, texts, 3, 1, &t, &bad) == GC_ERR_INVALID_ARG, "max_len 1");
}

static void test_encode_sequences(void) {
    /* 11 sequences of lengths 1..6 in a scrambled order */
    enum { N = 11 };
    const int lens[N] = {3, 1, 6, 2, 6, 4, 5, 1, 3, 2, 5};
    int32_t ids[64];
    int64_t off[N + 1];
    off[0] = 0;
    for (int i = 0; i < N; i++) {
        off[i + 1] = off[i] + lens[i];
        for (int j = 0; j < lens[i]; j++) ids[off[i] + j] = 10 * i + j;
    }
    gc_token_batch tb = {N, ids, off};
    fake f = {0};
    gc_encoder enc = {&FAKE_OPS, &f};
    float out[N * DIM];
    CHECK_OK(gc_encode_sequences(&enc, &tb, 4, out));
    CHECK(f.calls == 3, "calls %d", f.calls);
    CHECK(f.counts[0] == 4 && f.counts[1] == 4 && f.counts[2] == 3, "counts %d %d %d", f.counts[0],
          f.counts[1], f.counts[2]);
    /* longest first: {6,6,5,5} {4,3,3,2} {2,1,1} */
    CHECK(f.min_len[0] == 5 && f.max_len[0] == 6, "call 0 lengths");
    CHECK(f.min_len[1] == 2 && f.max_len[1] == 4, "call 1 lengths");
    CHECK(f.min_len[2] == 1 && f.max_len[2] == 2, "call 2 lengths");
    int ok = 1;
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int j = 0; j < lens[i]; j++) sum += 10 * i + j;
        const float *r = out + i * DIM;
        if (r[0] != (float)lens[i] || r[1] != (float)sum || r[2] != (float)(10 * i) || r[3] != 1)
            ok = 0;
    }
    CHECK(ok, "rows come back in the input's order");

    /* one sequence per call, and a batch larger than n */
    f.calls = 0;
    float out1[N * DIM];
    CHECK_OK(gc_encode_sequences(&enc, &tb, 1, out1));
    CHECK(f.calls == N && memcmp(out, out1, sizeof out) == 0, "batch 1");
    f.calls = 0;
    CHECK_OK(gc_encode_sequences(&enc, &tb, 100, out1));
    CHECK(f.calls == 1 && memcmp(out, out1, sizeof out) == 0, "batch 100");
    CHECK(gc_encode_sequences(&enc, &tb, 0, out1) == GC_ERR_INVALID_ARG, "batch 0");
    gc_token_batch empty = {0, ids, off};
    CHECK_OK(gc_encode_sequences(&enc, &empty, 4, NULL));
}

static void test_normalize(void) {
    float x[3 * 2] = {3, 4, 0, 0, -1e-3f, 0};
    gc_normalize_rows(x, 3, 2);
    CHECK(fabsf(x[0] - 0.6f) < 1e-7f && fabsf(x[1] - 0.8f) < 1e-7f, "3,4");
    CHECK(x[2] == 0 && x[3] == 0, "zero row stays zero");
    CHECK(x[4] == -1.0f && x[5] == 0, "tiny row");
}

static void test_eval_pairs(const gc_tokenizer *tok) {
    /* each query is its own positive's text: every positive ranks first unless two rows tie */
    const char *texts[] = {"hello", "world world", "a b c", "hello world a", "c c c c"};
    gc_token_list tq;
    size_t bad;
    CHECK_OK(gc_tokenize_many(tok, texts, 5, 16, &tq, &bad));
    gc_token_batch q = gc_token_list_batch(&tq);
    fake f = {0};
    gc_encoder enc = {&FAKE_OPS, &f};
    const int ks[] = {1, 3};
    gc_retrieval_metrics m;
    CHECK_OK(gc_eval_pairs(&enc, &q, &q, 2, ks, 2, &m));
    CHECK(m.n == 5 && m.nk == 2, "n %d nk %d", m.n, m.nk);
    CHECK(m.recall[0] == 1.0 && m.recall[1] == 1.0 && m.mrr10 == 1.0, "recall@1 %g mrr %g",
          m.recall[0], m.mrr10);
    CHECK(f.calls == 6, "calls %d", f.calls);

    /* the same as encoding, normalizing and ranking by hand */
    float qe[5 * DIM];
    CHECK_OK(gc_encode_sequences(&enc, &q, 2, qe));
    gc_normalize_rows(qe, 5, DIM);
    gc_retrieval_metrics ref;
    CHECK_OK(gc_eval_retrieval(qe, qe, 5, 5, DIM, ks, 2, NULL, &ref, NULL));
    CHECK(ref.recall[0] == m.recall[0] && ref.ndcg10 == m.ndcg10, "matches gc_eval_retrieval");

    gc_token_batch shorter = q;
    shorter.n = 4;
    CHECK(gc_eval_pairs(&enc, &q, &shorter, 2, ks, 2, &m) == GC_ERR_INVALID_ARG, "n mismatch");
    gc_token_list_free(&tq);
}

int main(void) {
    gc_tokenizer *tok = NULL;
    CHECK_OK(gc_tokenizer_from_memory(&tok, VOCAB, strlen(VOCAB), NULL));
    if (!tok) return test_summary("test_encode_many");
    test_tokenize_many(tok);
    test_encode_sequences();
    test_normalize();
    test_eval_pairs(tok);
    gc_tokenizer_free(tok);
    return test_summary("test_encode_many");
}

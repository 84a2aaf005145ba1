/* test_beir.c: BEIR-format data: the committed fixture (tests/fixtures/beir/, written by
 * scripts/make-beir-fixture.py) read as BEIR reads it, its metrics against pytrec_eval's
 * (expected_*.json, exact-integer embeddings with many tied scores), the blocked search against
 * the plain reference, and hostile folders refused with file:line. */
#include "gc_beir.h"
#include "gc_io.h"
#include "test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define FIX GC_SOURCE_DIR "/tests/fixtures/beir"

static double expected(const char *split, const char *key) {
    char path[512];
    snprintf(path, sizeof path, "%s/expected_%s.json", FIX, split);
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL, "%s reads", path);
    double v = root ? json_number_value(json_object_get(root, key)) : -1;
    json_decref(root);
    return v;
}

static void compare(const char *split, const gc_beir_metrics *m, const char *what) {
    CHECK(m->n == (int)expected(split, "n"), "%s %s: n %d", what, split, m->n);
    const struct {
        const char *key;
        double got;
    } v[6] = {{"ndcg@10", m->ndcg10},     {"mrr@10", m->mrr10},         {"recall@1", m->recall1},
              {"recall@10", m->recall10}, {"recall@100", m->recall100}, {"map@100", m->map100}};
    for (int i = 0; i < 6; i++) {
        double want = expected(split, v[i].key);
        CHECK(fabs(v[i].got - want) < 1e-9, "%s %s %s: %.12f, pytrec_eval %.12f", what, split,
              v[i].key, v[i].got, want);
    }
}

/* The fixture's embeddings in b's query order (rows of emb_queries.npy are q0, q1, ...). */
static void embeddings(const gc_beir *b, float **q, float **d, size_t *dim) {
    float *qa = NULL;
    size_t qr = 0, qc = 0, dr = 0;
    CHECK_OK(gc_npy_read_f32(FIX "/emb_queries.npy", &qa, &qr, &qc));
    CHECK_OK(gc_npy_read_f32(FIX "/emb_corpus.npy", d, &dr, dim));
    CHECK(dr == b->ndocs && qc == *dim, "embedding shapes");
    *q = malloc(b->nqueries * qc * sizeof(float));
    for (size_t i = 0; i < b->nqueries; i++) {
        int row = atoi(b->query_ids[i] + 1);
        CHECK(row >= 0 && (size_t)row < qr, "query row %d", row);
        memcpy(*q + i * qc, qa + (size_t)row * qc, qc * sizeof(float));
    }
    free(qa);
}

static void test_fixture(const char *split, size_t nq) {
    gc_beir *b = NULL;
    CHECK_OK(gc_beir_load(&b, FIX, split));
    if (!b) return;
    CHECK(b->ndocs == 150 && b->nqueries == nq, "%s: %zu docs, %zu queries", split, b->ndocs,
          b->nqueries);
    CHECK(!strcmp(b->doc_texts[0], "theme database theme theme driver shell audio graphics"),
          "title + ' ' + text, stripped: '%s'", b->doc_texts[0]);
    CHECK(!strcmp(b->doc_texts[1], "driver kernel compiler terminal graphics server"),
          "null title: '%s'", b->doc_texts[1]);
    CHECK(!strcmp(b->doc_texts[2], "theme  python client tool database compiler library"),
          "padded title: '%s'", b->doc_texts[2]);
    for (size_t i = 0; i < b->nqueries; i++)
        CHECK(strcmp(b->query_ids[i], "q13") != 0, "q13 has no judgements and is left out");
    float *q = NULL, *d = NULL;
    size_t dim = 0;
    embeddings(b, &q, &d, &dim);
    gc_beir_metrics m, r, s;
    CHECK_OK(gc_beir_evaluate(b, q, d, (int)dim, NULL, &m));
    compare(split, &m, "blocked");
    gc_eval_config small = {3, 7};
    CHECK_OK(gc_beir_evaluate(b, q, d, (int)dim, &small, &s));
    compare(split, &s, "small blocks");
    CHECK_OK(gc_beir_evaluate_ref(b, q, d, (int)dim, &r));
    compare(split, &r, "reference");
    /* the comparison can fail: other embeddings give other numbers */
    for (size_t i = 0; i < dim; i++) q[i] = -q[i];
    CHECK_OK(gc_beir_evaluate(b, q, d, (int)dim, NULL, &m));
    CHECK(fabs(m.ndcg10 - expected(split, "ndcg@10")) > 1e-6, "a changed query changes nDCG");
    free(q);
    free(d);
    gc_beir_free(b);
}

static void test_random_against_ref(void) {
    gc_beir *b = NULL;
    CHECK_OK(gc_beir_load(&b, FIX, "test"));
    if (!b) return;
    const int dim = 16;
    float *q = malloc(b->nqueries * dim * sizeof(float)),
          *d = malloc(b->ndocs * dim * sizeof(float));
    uint64_t s = 12345;
    for (size_t i = 0; i < b->nqueries * dim; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        q[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    for (size_t i = 0; i < b->ndocs * dim; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        d[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    gc_beir_metrics m, r;
    gc_eval_config cfg = {4, 33};
    CHECK_OK(gc_beir_evaluate(b, q, d, dim, &cfg, &m));
    CHECK_OK(gc_beir_evaluate_ref(b, q, d, dim, &r));
    CHECK(m.n == r.n && fabs(m.ndcg10 - r.ndcg10) < 1e-12 && fabs(m.map100 - r.map100) < 1e-12 &&
              fabs(m.recall100 - r.recall100) < 1e-12 && fabs(m.mrr10 - r.mrr10) < 1e-12,
          "blocked equals the reference on random embeddings");
    q[3] = NAN;
    CHECK(gc_beir_evaluate(b, q, d, dim, NULL, &m) == GC_ERR_NUMERIC, "NaN refused");
    free(q);
    free(d);
    gc_beir_free(b);
}

static const char *CORPUS = "{\"_id\": \"d1\", \"title\": \"t\", \"text\": \"x\"}\n"
                            "{\"_id\": \"d2\", \"text\": \"y\"}\n";
static const char *QUERIES =
    "{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q2\", \"text\": \"b\"}\n";
static const char *QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n";

static void expect_bad(const char *corpus, const char *queries, const char *qrels,
                       const char *where, const char *what) {
    gc_beir *b = (gc_beir *)1;
    gc_status st = gc_beir_load_memory(&b, corpus, strlen(corpus), queries, strlen(queries), qrels,
                                       strlen(qrels), "mem");
    CHECK(st == GC_ERR_FORMAT, "%s: got %s", what, gc_status_str(st));
    CHECK(b == NULL, "cleared on failure");
    CHECK(strstr(gc_last_error(), where) && strstr(gc_last_error(), what), "'%s' lacks '%s' '%s'",
          gc_last_error(), where, what);
    if (st == GC_OK) gc_beir_free(b);
}

static void test_hostile(void) {
    gc_beir *b = NULL;
    CHECK_OK(gc_beir_load_memory(&b, CORPUS, strlen(CORPUS), QUERIES, strlen(QUERIES), QRELS,
                                 strlen(QRELS), "mem"));
    CHECK(b && b->ndocs == 2 && b->nqueries == 2 && !strcmp(b->doc_texts[0], "t x"), "good");
    gc_beir_free(b);
    /* no header line, CRLF, a blank line, a BOM */
    b = NULL;
    const char *crlf = "\xef\xbb\xbfq1\td1\t1\r\n\r\nq2\td9\t1\r\n";
    CHECK_OK(gc_beir_load_memory(&b, CORPUS, strlen(CORPUS), QUERIES, strlen(QUERIES), crlf,
                                 strlen(crlf), "mem"));
    CHECK(b && b->nqueries == 2 && b->qrel_docs[1] == -1, "headerless, CRLF, a missing doc");
    gc_beir_free(b);

    expect_bad("{\"title\": \"t\", \"text\": \"x\"}\n", QUERIES, QRELS,
               "mem/corpus.jsonl:1:", "missing \"_id\"");
    expect_bad("{\"_id\": 5, \"text\": \"x\"}\n", QUERIES, QRELS, "mem/corpus.jsonl:1:", "\"_id\"");
    expect_bad("{\"_id\": \"d1\"}\n", QUERIES, QRELS, "mem/corpus.jsonl:1:", "missing \"text\"");
    expect_bad("{\"_id\": \"d1\", \"text\": \"x\", \"title\": [1]}\n", QUERIES, QRELS,
               "mem/corpus.jsonl:1:", "\"title\"");
    expect_bad("\n{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"d1\", \"text\": \"y\"", QUERIES,
               QRELS, "mem/corpus.jsonl:3:", "malformed JSON");
    expect_bad("{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"d1\", \"text\": \"y\"}\n", QUERIES,
               QRELS, "mem/corpus.jsonl", "appears twice");
    expect_bad("", QUERIES, QRELS, "mem/corpus.jsonl", "no documents");
    expect_bad(CORPUS, "", QRELS, "mem/queries.jsonl", "no queries");
    expect_bad(CORPUS, "{\"_id\": \"q1\", \"text\": \"caf\xe9\"}\n", QRELS,
               "mem/queries.jsonl:1:", "invalid UTF-8");
    expect_bad(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\n",
               "mem/qrels.tsv:2:", "three tab-separated");
    expect_bad(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\t1\tx\n",
               "mem/qrels.tsv:2:", "three tab-separated");
    expect_bad(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\t1.5\n",
               "mem/qrels.tsv:2:", "not an integer");
    expect_bad(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\t99999999999\n",
               "mem/qrels.tsv:2:", "not an integer");
    expect_bad(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq9\td1\t1\n",
               "mem/qrels.tsv:2:", "\"q9\" is not in queries.jsonl");
    expect_bad(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td1\t1\nq1\td1\t0\n",
               "mem/qrels.tsv:4:", "judged again (first at line 2)");
    expect_bad(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\n", "mem/qrels.tsv", "no judgements");
    const char nul[] = "query-id\tcorpus-id\tscore\nq1\td\0\t1\n";
    gc_beir *x = NULL;
    CHECK(gc_beir_load_memory(&x, CORPUS, strlen(CORPUS), QUERIES, strlen(QUERIES), nul,
                              sizeof nul - 1, "mem") == GC_ERR_FORMAT &&
              strstr(gc_last_error(), "mem/qrels.tsv:2: NUL"),
          "NUL in qrels: %s", gc_last_error());

    /* folders */
    CHECK(gc_beir_load(&x, GC_BINARY_DIR "/no-such-beir", "test") == GC_ERR_IO, "missing folder");
    CHECK(strstr(gc_last_error(), "no-such-beir/corpus.jsonl"), "%s", gc_last_error());
    CHECK(gc_beir_load(&x, FIX, "../x") == GC_ERR_INVALID_ARG, "split with a path");
    CHECK(gc_beir_load(&x, FIX, "train") == GC_ERR_IO && strstr(gc_last_error(), "train.tsv"),
          "a split without qrels: %s", gc_last_error());
}

int main(void) {
    test_fixture("test", 13);
    test_fixture("dev", 4);
    test_random_against_ref();
    test_hostile();
    return test_summary("test_beir");
}

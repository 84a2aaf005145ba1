/* test_data_shapes.c: the shapes of training data lines (ours, sentence-transformers',
 * FlagEmbedding's and Tevatron's, named fields), a file mixing shapes, `pos` lists expanded into
 * pairs, and the batch order never putting two pairs of one query into one batch. */
#include "gc_io.h"
#include "gc_train.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>

static gc_dataset *load(const char *text, const gc_data_fields *f) {
    gc_dataset *d = NULL;
    gc_status s = gc_dataset_load_memory_with(&d, text, strlen(text), "mem.jsonl", f);
    CHECK(s == GC_OK, "load: %s", gc_last_error());
    return d;
}

static void expect_bad(const char *text, const gc_data_fields *f, const char *where,
                       const char *what) {
    gc_dataset *d = (gc_dataset *)1;
    gc_status s = gc_dataset_load_memory_with(&d, text, strlen(text), "mem.jsonl", f);
    CHECK(s == GC_ERR_FORMAT, "%s: got %s", what, gc_status_str(s));
    CHECK(d == NULL, "dataset cleared on failure");
    CHECK(strstr(gc_last_error(), where) != NULL, "message '%s' lacks '%s'", gc_last_error(),
          where);
    CHECK(strstr(gc_last_error(), what) != NULL, "message '%s' lacks '%s'", gc_last_error(), what);
    if (s == GC_OK) gc_dataset_free(d);
}

static int pair_is(const gc_pair *p, const char *q, const char *pos, int nneg, const char *neg0) {
    return !strcmp(p->query, q) && !strcmp(p->positive, pos) && p->num_negatives == nneg &&
           (nneg == 0 || !strcmp(p->negatives[0], neg0));
}

static void test_ours(void) {
    gc_dataset *d = load("{\"query\": \"q\", \"positive\": \"p\", \"negatives\": [\"n\"]}\n"
                         "{\"query\": \"r\", \"positive\": [\"p1\", \"p2\"]}\n",
                         NULL);
    if (!d) return;
    CHECK(d->shape == GC_SHAPE_PAIRS, "shape %d", d->shape);
    CHECK(d->n == 3, "3 pairs, got %zu", d->n);
    if (d->n == 3) {
        CHECK(pair_is(&d->pairs[0], "q", "p", 1, "n") && d->pairs[0].line == 1, "pair 0");
        CHECK(pair_is(&d->pairs[1], "r", "p1", 0, NULL) && d->pairs[1].line == 2, "pair 1");
        CHECK(pair_is(&d->pairs[2], "r", "p2", 0, NULL) && d->pairs[2].line == 2, "pair 2");
    }
    gc_dataset_free(d);
}

static void test_sentence_transformers(void) {
    gc_dataset *d = load("{\"anchor\": \"a\", \"positive\": \"p\"}\n"
                         "{\"anchor\": \"b\", \"positive\": \"p2\", \"negative\": \"n\"}\n",
                         NULL);
    if (d) {
        CHECK(d->shape == GC_SHAPE_ST, "shape %d", d->shape);
        CHECK(d->n == 2 && pair_is(&d->pairs[0], "a", "p", 0, NULL) &&
                  pair_is(&d->pairs[1], "b", "p2", 1, "n"),
              "anchor/positive/negative");
    }
    gc_dataset_free(d);
    d = load("{\"negative_2\": \"n2\", \"anchor\": \"a\", \"positive\": \"p\", \"negative_1\": "
             "\"n1\", \"negative_x\": 3, \"negative_3\": \"n3\"}\n",
             NULL);
    if (d) {
        CHECK(d->n == 1 && pair_is(&d->pairs[0], "a", "p", 3, "n1") &&
                  !strcmp(d->pairs[0].negatives[1], "n2") &&
                  !strcmp(d->pairs[0].negatives[2], "n3"),
              "negative_1..3 in number order");
    }
    gc_dataset_free(d);
    expect_bad("{\"anchor\": \"a\", \"positive\": \"p\", \"negative_1\": \"x\", \"negative_3\": "
               "\"y\"}\n",
               NULL, "mem.jsonl:1:", "no \"negative_2\"");
    expect_bad("{\"anchor\": \"a\", \"positive\": \"p\", \"negative_1\": 5}\n", NULL,
               "mem.jsonl:1:", "\"negative_1\" is not a string");
    expect_bad(
        "{\"anchor\": \"a\", \"positive\": \"p\"}\n{\"anchor\": \"\", \"positive\": \"p\"}\n", NULL,
        "mem.jsonl:2:", "\"anchor\" is empty");
    expect_bad("{\"anchor\": \"a\"}\n", NULL, "mem.jsonl:1:", "missing \"positive\"");
}

static void test_flag_embedding(void) {
    gc_dataset *d = load("{\"query\": \"q\", \"pos\": [\"p1\", \"p2\", \"p3\"], \"neg\": [\"n1\", "
                         "\"n2\"], \"prompt\": \"Represent this\"}\n"
                         "\n"
                         "{\"query\": \"r\", \"pos\": [\"s\"], \"neg\": []}\n",
                         NULL);
    if (d) {
        CHECK(d->shape == GC_SHAPE_FLAG, "shape %d", d->shape);
        CHECK(d->n == 4, "3 + 1 pairs, got %zu", d->n);
        if (d->n == 4) {
            for (int j = 0; j < 3; j++) {
                char pos[8];
                snprintf(pos, sizeof pos, "p%d", j + 1);
                CHECK(pair_is(&d->pairs[j], "q", pos, 2, "n1") &&
                          !strcmp(d->pairs[j].negatives[1], "n2") && d->pairs[j].line == 1,
                      "pos[%d] is a pair with the line's query and negatives", j);
            }
            CHECK(pair_is(&d->pairs[3], "r", "s", 0, NULL) && d->pairs[3].line == 3, "line 3");
        }
    }
    gc_dataset_free(d);
    expect_bad("{\"query\": \"q\", \"pos\": []}\n", NULL, "mem.jsonl:1:", "\"pos\" is an empty");
    expect_bad("{\"query\": \"q\", \"pos\": [\"a\", 1]}\n", NULL,
               "mem.jsonl:1:", "\"pos\"[1] is not a string");
    expect_bad("{\"query\": \"q\", \"pos\": [\"a\", \"\"]}\n", NULL,
               "mem.jsonl:1:", "\"pos\"[1] is empty");
    expect_bad("{\"query\": \"q\", \"pos\": {\"a\": 1}}\n", NULL,
               "mem.jsonl:1:", "\"pos\" is not a string or an array");
    expect_bad("{\"query\": \"q\", \"pos\": [\"a\"], \"neg\": \"n\"}\n", NULL,
               "mem.jsonl:1:", "\"neg\" is not an array");
    expect_bad("{\"pos\": [\"a\"]}\n", NULL, "mem.jsonl:1:", "missing \"query\"");
}

static void test_mixed(void) {
    const char *ours = "{\"query\": \"q\", \"positive\": \"p\"}\n";
    const char *st = "{\"anchor\": \"a\", \"positive\": \"p\"}\n";
    const char *flag = "{\"query\": \"q\", \"pos\": [\"p\"]}\n";
    const char *lines[3] = {ours, st, flag};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            if (a == b) continue;
            char buf[512];
            snprintf(buf, sizeof buf, "\n%s%s\n%s", lines[a], lines[a], lines[b]);
            expect_bad(buf, NULL, "mem.jsonl:5:", "one shape per file");
            CHECK(strstr(gc_last_error(), "line 2 has the shape") != NULL, "names line 2: %s",
                  gc_last_error());
        }
}

static void test_fields(void) {
    gc_data_fields f = {"question", "answers", NULL};
    gc_dataset *d =
        load("{\"question\": \"q\", \"answers\": [\"a\", \"b\"], \"negatives\": [\"n\"], "
             "\"anchor\": 1}\n"
             "{\"question\": \"r\", \"answers\": \"c\"}\n",
             &f);
    if (d) {
        CHECK(d->shape == GC_SHAPE_FIELDS, "shape %d", d->shape);
        CHECK(d->n == 3 && pair_is(&d->pairs[0], "q", "a", 1, "n") &&
                  pair_is(&d->pairs[1], "q", "b", 1, "n") &&
                  pair_is(&d->pairs[2], "r", "c", 0, NULL),
              "named fields");
    }
    gc_dataset_free(d);
    gc_data_fields g = {NULL, NULL, "hard"};
    d = load("{\"query\": \"q\", \"positive\": \"p\", \"hard\": [\"h\"], \"negatives\": 5}\n", &g);
    CHECK(d && d->n == 1 && pair_is(&d->pairs[0], "q", "p", 1, "h"), "--negatives-field alone");
    gc_dataset_free(d);
    expect_bad("{\"query\": \"q\", \"answers\": \"a\"}\n", &f,
               "mem.jsonl:1:", "missing \"question\"");
    expect_bad("{\"question\": \"q\", \"answer\": \"a\"}\n", &f,
               "mem.jsonl:1:", "missing \"answers\"");
}

/* Pairs from one line's pos list share a query: grouped by query text as the trainer does
 * (gc_text_groups), no batch of any epoch holds two of them. */
static void test_batches_keep_pos_apart(void) {
    char text[1 << 15];
    size_t used = 0;
    /* 8 queries with 4 positives each, 16 with one */
    for (int i = 0; i < 24; i++) {
        if (i < 8)
            used += (size_t)snprintf(text + used, sizeof text - used,
                                     "{\"query\": \"q%d\", \"pos\": [\"a%d\", \"b%d\", \"c%d\", "
                                     "\"d%d\"]}\n",
                                     i, i, i, i, i);
        else
            used += (size_t)snprintf(text + used, sizeof text - used,
                                     "{\"query\": \"q%d\", \"pos\": [\"a%d\"]}\n", i, i);
    }
    gc_dataset *d = load(text, NULL);
    if (!d) return;
    CHECK(d->n == 48, "48 pairs, got %zu", d->n);
    const char *qt[48], *pt[48];
    int32_t qg[48], pg[48], order[48];
    for (size_t i = 0; i < d->n && i < 48; i++) {
        qt[i] = d->pairs[i].query;
        pt[i] = d->pairs[i].positive;
    }
    size_t nq = 0, np = 0;
    CHECK_OK(gc_text_groups(qt, d->n, qg, &nq));
    CHECK_OK(gc_text_groups(pt, d->n, pg, &np));
    CHECK(nq == 24 && np == 48, "groups %zu %zu", nq, np);
    gc_pair_groups g = {qg, nq, pg, NULL, 0, np};
    size_t together = 0, batches = 0;
    for (uint64_t epoch = 0; epoch < 20; epoch++) {
        size_t nb = 0;
        CHECK_OK(gc_epoch_order_pairs(&g, d->n, 8, 7, epoch, order, &nb));
        batches += nb;
        for (size_t b = 0; b < nb; b++)
            for (size_t i = 0; i < 8; i++)
                for (size_t j = i + 1; j < 8; j++)
                    together += qg[order[b * 8 + i]] == qg[order[b * 8 + j]];
    }
    CHECK(batches >= 20 * 4, "at least 4 batches per epoch, got %zu", batches);
    CHECK(together == 0, "%zu batches hold two positives of one query", together);
    /* the check can fail: without query groups the shuffle does put them together */
    gc_pair_groups no_q = {NULL, 0, pg, NULL, 0, np};
    together = 0;
    for (uint64_t epoch = 0; epoch < 20; epoch++) {
        size_t nb = 0;
        CHECK_OK(gc_epoch_order_pairs(&no_q, d->n, 8, 7, epoch, order, &nb));
        for (size_t b = 0; b < nb; b++)
            for (size_t i = 0; i < 8; i++)
                for (size_t j = i + 1; j < 8; j++)
                    together += qg[order[b * 8 + i]] == qg[order[b * 8 + j]];
    }
    CHECK(together > 0, "without query groups some batch holds two positives of one query");
    gc_dataset_free(d);
}

int main(void) {
    test_ours();
    test_sentence_transformers();
    test_flag_embedding();
    test_mixed();
    test_fields();
    test_batches_keep_pos_apart();
    return test_summary("test_data_shapes");
}

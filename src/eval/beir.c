/* beir.c: BEIR-format evaluation data (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) and its
 * metrics as pytrec_eval computes them (see gc_beir.h).
 *
 * Ranking is the blocked top-k search of topk.c (the best 100 per query), as for the pairs
 * metrics. Ties are broken as trec_eval breaks them
 * (greater document id first), through a precomputed rank of every id, so the comparison
 * stays an integer one. */
#include "gc_beir.h"

#include "eval/topk.h"
#include "io/jsonl_internal.h"

#include "gc_io.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DEPTH = 100 }; /* the deepest cut-off reported (recall@100, MAP@100) */

/* ---- ids: a string -> index map (open addressing) ---- */

typedef struct id_map {
    int32_t *slot; /* 1 + index, 0 = empty */
    size_t cap;
    char **ids;
} id_map;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static int map_build(id_map *m, char **ids, size_t n) {
    m->cap = 16;
    while (m->cap < 2 * n) m->cap *= 2;
    m->ids = ids;
    m->slot = calloc(m->cap, sizeof *m->slot);
    return m->slot ? 0 : -1;
}

/* The index of id, or -1; with insert (index i), -2 when id is already there. */
static int64_t map_find(id_map *m, const char *id, int insert, size_t i) {
    size_t h = (size_t)fnv1a(id) & (m->cap - 1);
    for (;;) {
        if (!m->slot[h]) {
            if (!insert) return -1;
            m->slot[h] = (int32_t)i + 1;
            return (int64_t)i;
        }
        size_t j = (size_t)m->slot[h] - 1;
        if (strcmp(m->ids[j], id) == 0) return insert ? -2 : (int64_t)j;
        h = (h + 1) & (m->cap - 1);
    }
}

/* ---- corpus.jsonl and queries.jsonl ---- */

typedef struct text_list {
    int corpus; /* join title and text */
    char **ids, **texts;
    size_t n, cap;
} text_list;

/* A Python str.strip() of ASCII whitespace. */
static char *strip_copy(const char *s, size_t n) {
    while (n && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) s++, n--;
    while (n && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r'))) n--;
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static gc_status line_error(const char *name, size_t line, const char *what, const char *key) {
    return gc_set_error(GC_ERR_FORMAT, "%s:%zu: %s \"%s\"", name, line, what, key);
}

static gc_status take_text(void *ctx, json_t *obj, const char *name, size_t line) {
    text_list *l = ctx;
    json_t *id = json_object_get(obj, "_id"), *text = json_object_get(obj, "text");
    json_t *title = l->corpus ? json_object_get(obj, "title") : NULL;
    if (!id) return line_error(name, line, "missing", "_id");
    if (!json_is_string(id)) return line_error(name, line, "not a string:", "_id");
    if (!text) return line_error(name, line, "missing", "text");
    if (!json_is_string(text)) return line_error(name, line, "not a string:", "text");
    if (title && !json_is_null(title) && !json_is_string(title))
        return line_error(name, line, "not a string:", "title");
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 1024;
        if (ncap > (size_t)INT32_MAX)
            return gc_set_error(GC_ERR_FORMAT, "%s:%zu: too many lines", name, line);
        char **ni = realloc(l->ids, ncap * sizeof *ni);
        if (ni) l->ids = ni;
        char **nt = ni ? realloc(l->texts, ncap * sizeof *nt) : NULL;
        if (nt) l->texts = nt;
        if (!ni || !nt) return gc_set_error(GC_ERR_NOMEM, "%s:%zu: out of memory", name, line);
        l->cap = ncap;
    }
    size_t idn = json_string_length(id);
    char *idc = malloc(idn + 1);
    char *tc = NULL;
    if (idc) {
        memcpy(idc, json_string_value(id), idn);
        idc[idn] = '\0';
    }
    if (title && json_is_string(title)) {
        /* BEIR: (title + " " + text).strip() */
        size_t a = json_string_length(title), b = json_string_length(text);
        char *joined = malloc(a + b + 2);
        if (joined) {
            memcpy(joined, json_string_value(title), a);
            joined[a] = ' ';
            memcpy(joined + a + 1, json_string_value(text), b);
            tc = strip_copy(joined, a + b + 1);
            free(joined);
        }
    } else {
        tc = strip_copy(json_string_value(text), json_string_length(text));
    }
    if (!idc || !tc) {
        free(idc);
        free(tc);
        return gc_set_error(GC_ERR_NOMEM, "%s:%zu: out of memory", name, line);
    }
    l->ids[l->n] = idc;
    l->texts[l->n] = tc;
    l->n++;
    return GC_OK;
}

static void free_strings(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Ids unique, reported at the line of the second (lines of a JSONL count blank lines, so the
 * line is found again by id). */
static gc_status check_unique(id_map *m, char **ids, size_t n, const char *file) {
    if (map_build(m, ids, n) != 0) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", file);
    for (size_t i = 0; i < n; i++)
        if (map_find(m, ids[i], 1, i) == -2)
            return gc_set_error(GC_ERR_FORMAT, "%s: \"_id\" \"%.80s\" appears twice (entry %zu)",
                                file, ids[i], i + 1);
    return GC_OK;
}

/* ---- qrels/SPLIT.tsv ---- */

typedef struct qrel {
    int32_t query, doc, grade;
    size_t line;
} qrel;

static int by_query(const void *a, const void *b) {
    const qrel *x = a, *y = b;
    if (x->query != y->query) return x->query < y->query ? -1 : 1;
    return x->line < y->line ? -1 : (x->line > y->line);
}

/* Split a line at tabs into exactly three fields. */
static int three_fields(char *p, char **f) {
    int k = 0;
    f[k++] = p;
    for (; *p; p++)
        if (*p == '\t') {
            if (k == 3) return 0;
            *p = '\0';
            f[k++] = p + 1;
        }
    return k == 3;
}

static int parse_grade(const char *s, int32_t *out) {
    char *end = NULL;
    errno = 0;
    if (!*s || *s == ' ') return 0;
    long v = strtol(s, &end, 10);
    if (*end || errno == ERANGE || v < INT32_MIN || v > INT32_MAX) return 0;
    *out = (int32_t)v;
    return 1;
}

static gc_status read_qrels(const char *text, size_t len, const char *file, id_map *qmap,
                            id_map *dmap, qrel **out, size_t *nout) {
    qrel *v = NULL;
    size_t n = 0, cap = 0, line = 0;
    char *buf = malloc(len + 1);
    if (!buf) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", file);
    memcpy(buf, text, len);
    buf[len] = '\0';
    gc_status st = GC_OK;
    char *p = buf, *end = buf + len;
    while (p < end && st == GC_OK) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        if (memchr(p, '\0', (size_t)(le - p))) {
            st = gc_set_error(GC_ERR_FORMAT, "%s:%zu: NUL byte in the line", file, line);
            break;
        }
        *le = '\0';
        if (le > p && le[-1] == '\r') le[-1] = '\0';
        if (line == 1 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
            (unsigned char)p[2] == 0xbf)
            p += 3;
        char *f[3];
        int32_t grade = 0;
        if (*p == '\0') {
            /* a blank line */
        } else if (!three_fields(p, f)) {
            st = gc_set_error(GC_ERR_FORMAT,
                              "%s:%zu: not three tab-separated fields (query-id, corpus-id, "
                              "score)",
                              file, line);
        } else if (!parse_grade(f[2], &grade)) {
            if (line != 1) /* the first line is the header */
                st = gc_set_error(GC_ERR_FORMAT, "%s:%zu: the score '%.40s' is not an integer",
                                  file, line, f[2]);
        } else {
            int64_t q = map_find(qmap, f[0], 0, 0);
            if (q < 0) {
                st = gc_set_error(GC_ERR_FORMAT, "%s:%zu: query \"%.80s\" is not in queries.jsonl",
                                  file, line, f[0]);
                break;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 1024;
                qrel *nv = realloc(v, cap * sizeof *nv);
                if (!nv) {
                    st = gc_set_error(GC_ERR_NOMEM, "%s: out of memory", file);
                    break;
                }
                v = nv;
            }
            /* a judged id missing from the corpus gets doc -1: it still counts as relevant */
            v[n++] = (qrel){(int32_t)q, (int32_t)map_find(dmap, f[1], 0, 0), grade, line};
        }
        p = nl ? nl + 1 : end;
    }
    if (st == GC_OK && n == 0) st = gc_set_error(GC_ERR_FORMAT, "%s: no judgements", file);
    free(buf);
    if (st != GC_OK) {
        free(v);
        return st;
    }
    *out = v;
    *nout = n;
    return GC_OK;
}

/* ---- the whole folder ---- */

void gc_beir_free(gc_beir *b) {
    if (!b) return;
    free_strings(b->doc_ids, b->ndocs);
    free_strings(b->doc_texts, b->ndocs);
    free_strings(b->query_ids, b->nqueries);
    free_strings(b->query_texts, b->nqueries);
    free(b->qrel_offsets);
    free(b->qrel_docs);
    free(b->qrel_grades);
    free((char *)b->path);
    free(b);
}

/* Keep the queries that have judgements and lay the judgements out per query. */
static gc_status assemble(gc_beir *b, text_list *docs, text_list *queries, qrel *r, size_t nr,
                          const char *qrels_file) {
    qsort(r, nr, sizeof *r, by_query);
    /* the same (query, document) twice: within a query, by document (missing ids by line) */
    for (size_t i = 0, j; i < nr; i = j) {
        for (j = i; j < nr && r[j].query == r[i].query; j++) {
        }
        for (size_t a = i; a < j; a++)
            for (size_t c = a + 1; c < j && r[a].doc >= 0; c++)
                if (r[c].doc == r[a].doc)
                    return gc_set_error(GC_ERR_FORMAT,
                                        "%s:%zu: query \"%.80s\" and document \"%.80s\" are "
                                        "judged again (first at line %zu)",
                                        qrels_file, r[c].line, queries->ids[r[a].query],
                                        docs->ids[r[a].doc], r[a].line);
    }
    size_t nq = 0;
    int32_t *newq = malloc((queries->n ? queries->n : 1) * sizeof *newq);
    b->qrel_offsets = calloc(queries->n + 1, sizeof *b->qrel_offsets);
    b->qrel_docs = malloc(nr * sizeof *b->qrel_docs);
    b->qrel_grades = malloc(nr * sizeof *b->qrel_grades);
    b->query_ids = malloc((queries->n ? queries->n : 1) * sizeof(char *));
    b->query_texts = malloc((queries->n ? queries->n : 1) * sizeof(char *));
    if (!newq || !b->qrel_offsets || !b->qrel_docs || !b->qrel_grades || !b->query_ids ||
        !b->query_texts) {
        free(newq);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", b->path);
    }
    for (size_t i = 0; i < queries->n; i++) newq[i] = -1;
    for (size_t i = 0; i < nr; i++) newq[r[i].query] = 0;
    for (size_t i = 0; i < queries->n; i++) {
        if (newq[i] < 0) continue; /* no judgements: left out, as BEIR does */
        newq[i] = (int32_t)nq;
        b->query_ids[nq] = queries->ids[i];
        b->query_texts[nq] = queries->texts[i];
        queries->ids[i] = queries->texts[i] = NULL;
        nq++;
    }
    b->nqueries = nq;
    /* counting sort of the judgements into the new query order, keeping file order within */
    for (size_t i = 0; i < nr; i++) b->qrel_offsets[newq[r[i].query] + 1]++;
    for (size_t i = 0; i < nq; i++) b->qrel_offsets[i + 1] += b->qrel_offsets[i];
    int64_t *fill = calloc(nq + 1, sizeof *fill);
    if (!fill) {
        free(newq);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", b->path);
    }
    for (size_t i = 0; i < nr; i++) {
        int32_t q = newq[r[i].query];
        int64_t at = b->qrel_offsets[q] + fill[q]++;
        b->qrel_docs[at] = r[i].doc;
        b->qrel_grades[at] = r[i].grade;
    }
    free(fill);
    free(newq);
    b->ndocs = docs->n;
    b->doc_ids = docs->ids;
    b->doc_texts = docs->texts;
    docs->ids = docs->texts = NULL;
    docs->n = 0;
    return GC_OK;
}

typedef struct beir_src {
    const char *corpus_name, *queries_name, *qrels_name;
    const void *corpus, *queries; /* buffers, or NULL to read the files */
    size_t corpus_len, queries_len;
    const char *qrels;
    size_t qrels_len;
} beir_src;

static gc_status load(gc_beir **out, const char *name, const beir_src *s) {
    *out = NULL;
    gc_beir *b = calloc(1, sizeof *b);
    text_list docs = {1, NULL, NULL, 0, 0}, queries = {0, NULL, NULL, 0, 0};
    id_map dmap = {0}, qmap = {0};
    qrel *r = NULL;
    size_t nr = 0;
    char *qtext = NULL;
    size_t qlen = 0;
    gc_status st = GC_OK;
    if (!b || !(b->path = strdup(name))) {
        st = gc_set_error(GC_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    st = s->corpus
             ? gc_jsonl_each_memory(s->corpus, s->corpus_len, s->corpus_name, take_text, &docs)
             : gc_jsonl_each(s->corpus_name, take_text, &docs);
    if (st == GC_OK && docs.n == 0)
        st = gc_set_error(GC_ERR_FORMAT, "%s: no documents (empty file)", s->corpus_name);
    if (st == GC_OK)
        st = s->queries ? gc_jsonl_each_memory(s->queries, s->queries_len, s->queries_name,
                                               take_text, &queries)
                        : gc_jsonl_each(s->queries_name, take_text, &queries);
    if (st == GC_OK && queries.n == 0)
        st = gc_set_error(GC_ERR_FORMAT, "%s: no queries (empty file)", s->queries_name);
    if (st == GC_OK) st = check_unique(&dmap, docs.ids, docs.n, s->corpus_name);
    if (st == GC_OK) st = check_unique(&qmap, queries.ids, queries.n, s->queries_name);
    if (st != GC_OK) goto done;
    if (s->qrels) {
        st = read_qrels(s->qrels, s->qrels_len, s->qrels_name, &qmap, &dmap, &r, &nr);
    } else {
        st = gc_read_file(s->qrels_name, &qtext, &qlen);
        if (st == GC_OK) st = read_qrels(qtext, qlen, s->qrels_name, &qmap, &dmap, &r, &nr);
    }
    if (st == GC_OK) st = assemble(b, &docs, &queries, r, nr, s->qrels_name);
done:
    free(dmap.slot);
    free(qmap.slot);
    free(r);
    free(qtext);
    free_strings(docs.ids, docs.n);
    free_strings(docs.texts, docs.n);
    free_strings(queries.ids, queries.n);
    free_strings(queries.texts, queries.n);
    if (st != GC_OK) {
        gc_beir_free(b);
        return st;
    }
    *out = b;
    return GC_OK;
}

gc_status gc_beir_load(gc_beir **out, const char *dir, const char *split) {
    if (!out || !dir) return gc_set_error(GC_ERR_INVALID_ARG, "gc_beir_load: NULL argument");
    if (!split) split = "test";
    if (strchr(split, '/') || !*split || strstr(split, ".."))
        return gc_set_error(GC_ERR_INVALID_ARG, "BEIR split '%.64s' is not a plain name", split);
    char c[4096], q[4096], r[4096];
    if (snprintf(c, sizeof c, "%s/corpus.jsonl", dir) >= (int)sizeof c ||
        snprintf(q, sizeof q, "%s/queries.jsonl", dir) >= (int)sizeof q ||
        snprintf(r, sizeof r, "%s/qrels/%s.tsv", dir, split) >= (int)sizeof r)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: path too long", dir);
    beir_src s = {c, q, r, NULL, NULL, 0, 0, NULL, 0};
    *out = NULL;
    return load(out, dir, &s);
}

gc_status gc_beir_load_memory(gc_beir **out, const void *corpus, size_t corpus_len,
                              const void *queries, size_t queries_len, const char *qrels,
                              size_t qrels_len, const char *name) {
    if (!out || (!corpus && corpus_len) || (!queries && queries_len) || (!qrels && qrels_len))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_beir_load_memory: NULL argument");
    if (!name) name = "<memory>";
    char c[512], q[512], r[512];
    snprintf(c, sizeof c, "%.400s/corpus.jsonl", name);
    snprintf(q, sizeof q, "%.400s/queries.jsonl", name);
    snprintf(r, sizeof r, "%.400s/qrels.tsv", name);
    beir_src s = {c,
                  q,
                  r,
                  corpus ? corpus : "",
                  queries ? queries : "",
                  corpus_len,
                  queries_len,
                  qrels ? qrels : "",
                  qrels_len};
    *out = NULL;
    return load(out, name, &s);
}

/* ---- metrics ---- */

/* A query's metrics from its ranked documents (best first) and its judgements. */
static void query_metrics(const gc_beir *b, size_t qi, const int32_t *ranked, int len,
                          double m[6]) {
    const int64_t r0 = b->qrel_offsets[qi], r1 = b->qrel_offsets[qi + 1];
    int nrel = 0;
    double ideal[10];
    int nideal = 0;
    for (int64_t j = r0; j < r1; j++) {
        int32_t g = b->qrel_grades[j];
        if (g < 1) continue;
        nrel++;
        /* the 10 largest grades, sorted down (insertion) */
        int at = nideal < 10 ? nideal++ : 10;
        if (at == 10 && g <= ideal[9]) continue;
        if (at == 10) at = 9;
        while (at > 0 && ideal[at - 1] < g) {
            ideal[at] = ideal[at - 1];
            at--;
        }
        ideal[at] = g;
    }
    for (int k = 0; k < 6; k++) m[k] = 0;
    if (nrel == 0) return; /* trec_eval: every measure 0 */
    double dcg = 0, idcg = 0, ap = 0, rr = 0;
    int hits = 0, hits1 = 0, hits10 = 0;
    for (int i = 0; i < nideal; i++) idcg += ideal[i] / log2(i + 2.0);
    for (int r = 0; r < len; r++) {
        int32_t g = 0;
        for (int64_t j = r0; j < r1; j++)
            if (b->qrel_docs[j] == ranked[r]) g = b->qrel_grades[j];
        if (g < 1) continue;
        hits++;
        if (r < 1) hits1++;
        if (r < 10) {
            hits10++;
            dcg += g / log2(r + 2.0);
            if (rr == 0) rr = 1.0 / (r + 1);
        }
        ap += (double)hits / (r + 1);
    }
    m[0] = dcg / idcg;
    m[1] = rr;
    m[2] = (double)hits1 / nrel;
    m[3] = (double)hits10 / nrel;
    m[4] = (double)hits / nrel;
    m[5] = ap / nrel;
}

static void add_metrics(gc_beir_metrics *out, const double *sum, size_t n) {
    out->n = (int)n;
    out->ndcg10 = sum[0] / (double)n;
    out->mrr10 = sum[1] / (double)n;
    out->recall1 = sum[2] / (double)n;
    out->recall10 = sum[3] / (double)n;
    out->recall100 = sum[4] / (double)n;
    out->map100 = sum[5] / (double)n;
}

static gc_status check_args(const char *fn, const gc_beir *b, const float *q, const float *docs,
                            int d, const void *out) {
    if (!b || !q || !docs || !out) return gc_set_error(GC_ERR_INVALID_ARG, "%s: NULL argument", fn);
    if (d < 1 || b->nqueries < 1 || b->ndocs < 1 || b->nqueries > INT_MAX || b->ndocs > INT_MAX)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: %zu queries, %zu documents, d %d", fn,
                            b->nqueries, b->ndocs, d);
    for (size_t i = 0; i < b->nqueries * (size_t)d; i++)
        if (!isfinite(q[i]))
            return gc_set_error(GC_ERR_NUMERIC, "%s: query %zu has a non-finite value", fn, i / d);
    for (size_t i = 0; i < b->ndocs * (size_t)d; i++)
        if (!isfinite(docs[i]))
            return gc_set_error(GC_ERR_NUMERIC, "%s: document %zu has a non-finite value", fn,
                                i / d);
    return GC_OK;
}

/* order[i]: the place of document i among all ids sorted down by strcmp (0 = greatest). */
static const char *const *g_sort_ids;
static int by_id_desc(const void *a, const void *b) {
    return strcmp(g_sort_ids[*(const int32_t *)b], g_sort_ids[*(const int32_t *)a]);
}

static int32_t *tie_order(const gc_beir *b) {
    int32_t *idx = malloc(b->ndocs * sizeof *idx), *key = malloc(b->ndocs * sizeof *key);
    if (!idx || !key) {
        free(idx);
        free(key);
        return NULL;
    }
    for (size_t i = 0; i < b->ndocs; i++) idx[i] = (int32_t)i;
        /* qsort has no context argument in C11; the ids are only read */
#pragma omp critical(gc_beir_tie_order)
    {
        g_sort_ids = (const char *const *)b->doc_ids;
        qsort(idx, b->ndocs, sizeof *idx, by_id_desc);
        g_sort_ids = NULL;
    }
    for (size_t i = 0; i < b->ndocs; i++) key[idx[i]] = (int32_t)i;
    free(idx);
    return key;
}

typedef struct beir_ctx {
    const gc_beir *b;
    double *per; /* (nq, 6) per-query metrics */
} beir_ctx;

static gc_status metrics_block(void *ctx, int q0, int mq, const int32_t *ranked, int stride,
                               const int *n) {
    beir_ctx *c = ctx;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < mq; i++)
        query_metrics(c->b, (size_t)(q0 + i), ranked + (size_t)i * stride, n[i],
                      c->per + (size_t)(q0 + i) * 6);
    return GC_OK;
}

gc_status gc_beir_evaluate(const gc_beir *b, const float *q, const float *docs, int d,
                           const gc_eval_config *cfg, gc_beir_metrics *out) {
    gc_status st = check_args("gc_beir_evaluate", b, q, docs, d, out);
    if (st != GC_OK) return st;
    const int nq = (int)b->nqueries, nd = (int)b->ndocs;
    int32_t *key = tie_order(b);
    double *per = malloc((size_t)nq * 6 * sizeof(double));
    if (!key || !per) {
        st = gc_set_error(GC_ERR_NOMEM, "gc_beir_evaluate: out of memory");
        goto done;
    }
    beir_ctx ctx = {b, per};
    st = gc_topk_search(q, nq, docs, nd, d, DEPTH, key, cfg, metrics_block, &ctx);
    if (st != GC_OK) goto done;
    double sum[6] = {0};
    for (int i = 0; i < nq; i++)
        for (int k = 0; k < 6; k++) sum[k] += per[(size_t)i * 6 + k];
    add_metrics(out, sum, (size_t)nq);
done:
    free(key);
    free(per);
    return st;
}

typedef struct dhit {
    double score;
    int32_t key, doc;
} dhit;

static int dhit_cmp(const void *a, const void *b) {
    const dhit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->key < y->key ? -1 : (x->key > y->key);
}

gc_status gc_beir_evaluate_ref(const gc_beir *b, const float *q, const float *docs, int d,
                               gc_beir_metrics *out) {
    gc_status st = check_args("gc_beir_evaluate_ref", b, q, docs, d, out);
    if (st != GC_OK) return st;
    const size_t nd = b->ndocs;
    int32_t *key = tie_order(b);
    dhit *all = malloc(nd * sizeof *all);
    int32_t ranked[DEPTH];
    if (!key || !all) {
        free(key);
        free(all);
        return gc_set_error(GC_ERR_NOMEM, "gc_beir_evaluate_ref: out of memory");
    }
    double sum[6] = {0};
    for (size_t i = 0; i < b->nqueries; i++) {
        for (size_t j = 0; j < nd; j++) {
            double s = 0;
            for (int c = 0; c < d; c++) s += (double)q[i * d + c] * docs[j * d + c];
            all[j] = (dhit){s, key[j], (int32_t)j};
        }
        qsort(all, nd, sizeof *all, dhit_cmp);
        int len = nd < DEPTH ? (int)nd : DEPTH;
        for (int k = 0; k < len; k++) ranked[k] = all[k].doc;
        double m[6];
        query_metrics(b, i, ranked, len, m);
        for (int k = 0; k < 6; k++) sum[k] += m[k];
    }
    add_metrics(out, sum, b->nqueries);
    free(key);
    free(all);
    return GC_OK;
}

gc_status gc_eval_beir(gc_encoder *enc, const gc_beir *b, const gc_token_batch *queries,
                       const gc_token_batch *docs, int batch, gc_beir_metrics *out) {
    if (!enc || !enc->ops || !b || !queries || !docs || !out)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_eval_beir: NULL argument");
    if ((size_t)queries->n != b->nqueries || (size_t)docs->n != b->ndocs)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "gc_eval_beir: %d queries and %d documents for a set of %zu and %zu",
                            queries->n, docs->n, b->nqueries, b->ndocs);
    const int dim = enc->ops->dim(enc->ctx);
    float *qe = malloc(b->nqueries * (size_t)dim * sizeof(float));
    float *de = malloc(b->ndocs * (size_t)dim * sizeof(float));
    gc_status st;
    if (!qe || !de) {
        st = gc_set_error(GC_ERR_NOMEM, "out of memory for %zu embeddings", b->nqueries + b->ndocs);
        goto done;
    }
    st = gc_encode_sequences(enc, queries, batch, qe);
    if (st == GC_OK) st = gc_encode_sequences(enc, docs, batch, de);
    if (st != GC_OK) goto done;
    gc_normalize_rows(qe, b->nqueries, dim);
    gc_normalize_rows(de, b->ndocs, dim);
    st = gc_beir_evaluate(b, qe, de, dim, NULL, out);
done:
    free(qe);
    free(de);
    return st;
}

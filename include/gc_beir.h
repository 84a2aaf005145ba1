/* gc_beir.h: retrieval evaluation on BEIR-format data: a folder with corpus.jsonl ({"_id",
 * "title"?, "text"}), queries.jsonl ({"_id", "text"}) and qrels/SPLIT.tsv (a header line, then
 * query-id, corpus-id and an integer grade per line, tab-separated).
 *
 * Metrics are those of pytrec_eval (trec_eval) as BEIR reports them: nDCG@10 (gain = the grade,
 * ideal ranking from every judged document), MRR@10 (recip_rank of the top 10), recall@1/10/100
 * and MAP@100 (both over all documents graded >= 1 in the qrels, in the corpus or not), averaged
 * over the queries of the qrels, a query with no relevant document counting as 0. Ranking is
 * exact (blocked products through gc_matmul, a top-100 heap per query), by score, higher first;
 * equal scores rank the greater document id (strcmp) first, as trec_eval does. */
#ifndef GC_BEIR_H
#define GC_BEIR_H

#include "gc_encoder.h"
#include "gc_eval.h"
#include "gradcache.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_beir {
    const char *path; /* the folder (or the name given to gc_beir_load_memory) */
    size_t ndocs;
    char **doc_ids, **doc_texts; /* texts: (title + " " + text) stripped, as BEIR joins them */
    size_t nqueries;             /* the queries that have qrels, in queries.jsonl's order */
    char **query_ids, **query_texts;
    int64_t *qrel_offsets; /* query i's judgements: [qrel_offsets[i], qrel_offsets[i+1]) */
    int32_t *qrel_docs;    /* document index, or -1 for a judged id not in the corpus */
    int32_t *qrel_grades;
} gc_beir;

/* Load DIR/corpus.jsonl, DIR/queries.jsonl and DIR/qrels/SPLIT.tsv (the JSONL files may be
 * gzip-compressed, detected by their bytes). Errors name file:line: malformed JSON, a missing or
 * non-string "_id"/"text" (a "title" may be absent or null), a repeated id, a qrels line without
 * three tab-separated fields or with a grade that is not an integer, a query id of the qrels not
 * in queries.jsonl, a (query, document) pair judged twice, no qrels at all. Queries without
 * qrels are left out, as BEIR does. */
gc_status gc_beir_load(gc_beir **out, const char *dir, const char *split);
/* The same from three buffers; `name` stands for the folder in messages. */
gc_status gc_beir_load_memory(gc_beir **out, const void *corpus, size_t corpus_len,
                              const void *queries, size_t queries_len, const char *qrels,
                              size_t qrels_len, const char *name);
void gc_beir_free(gc_beir *b);

typedef struct gc_beir_metrics {
    int n; /* queries evaluated */
    double ndcg10, mrr10, recall1, recall10, recall100, map100;
} gc_beir_metrics;

/* q (nqueries, d) and docs (ndocs, d) embeddings, scored by dot product (normalize first for
 * cosine). cfg may be NULL. Non-finite embeddings are GC_ERR_NUMERIC. */
gc_status gc_beir_evaluate(const gc_beir *b, const float *q, const float *docs, int d,
                           const gc_eval_config *cfg, gc_beir_metrics *out);
/* The plain reference: every score in double, a full sort per query; same tie rule. */
gc_status gc_beir_evaluate_ref(const gc_beir *b, const float *q, const float *docs, int d,
                               gc_beir_metrics *out);
/* Encode the tokenized queries and documents (in b's order) through enc, normalize (cosine) and
 * evaluate. */
gc_status gc_eval_beir(gc_encoder *enc, const gc_beir *b, const gc_token_batch *queries,
                       const gc_token_batch *docs, int batch, gc_beir_metrics *out);

#ifdef __cplusplus
}
#endif

#endif

/* topk.h: exact top-k search by blocks, shared by the pairs metrics (retrieval.c) and the BEIR
 * metrics (beir.c). Internal to the library. */
#ifndef GC_EVAL_TOPK_H
#define GC_EVAL_TOPK_H

#include "gc_eval.h"

/* Called once per block of queries, after the block's search: ranked holds mq rows of stride
 * entries, row i the documents of query q0 + i best first, of which the first n[i] are valid
 * (n[i] = stride = min(depth, nd)). A non-OK return stops the search and is returned. */
typedef gc_status (*gc_topk_block_fn)(void *ctx, int q0, int mq, const int32_t *ranked, int stride,
                                      const int *n);

/* For each of the nq queries (rows of q, (nq, d)), the depth best of the nd documents (rows of
 * docs, (nd, d)) by dot product. Ties go to the lower key[j] (key NULL: the lower index j).
 * Every score comes from the same gc_matmul blocks (cfg: block sizes, NULL or <= 0 for the
 * defaults), so a document's comparison with the others does not depend on the block shapes.
 * Memory: one block of scores and one heap of depth entries per query of a block. */
gc_status gc_topk_search(const float *q, int nq, const float *docs, int nd, int d, int depth,
                         const int32_t *key, const gc_eval_config *cfg, gc_topk_block_fn fn,
                         void *ctx);

#endif /* GC_EVAL_TOPK_H */

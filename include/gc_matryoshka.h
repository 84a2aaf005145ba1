/* gc_matryoshka.h: Matryoshka representation learning on top of the InfoNCE loss: the loss of
 * each truncated, re-normalised prefix of the representations, weighted and summed, with one
 * gradient for the whole representation (so the gradient cache still needs one pass 1 and one
 * pass 2 per step). */
#ifndef GC_MATRYOSHKA_H
#define GC_MATRYOSHKA_H

#include "gc_loss.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GC_MATRYOSHKA_MAX 16 /* most sizes one configuration may list */

/* count == 0 means off (the plain loss). Otherwise the loss is
 *   L = sum_s weights[s] * L_s,   L_s = InfoNCE over the first dims[s] components,
 * where a prefix shorter than the representation is re-normalised (the cosine loss, whatever
 * gc_loss_config.cosine says) and the full size uses the loss as configured. dims are distinct,
 * in [1, d], in any order; weights are finite and >= 0. */
typedef struct gc_matryoshka_config {
    int count;
    int dims[GC_MATRYOSHKA_MAX];
    float weights[GC_MATRYOSHKA_MAX];
} gc_matryoshka_config;

/* Parse "384,256,128" or "384:1,128:0.5" (a size without ":w" has weight 1). Checks what it
 * can without the representation width (sizes >= 1, distinct; weights finite and >= 0). */
gc_status gc_matryoshka_parse(const char *spec, gc_matryoshka_config *out);
/* The canonical text of a configuration ("384:1,128:0.5"; "" when off) for fingerprints and
 * logs; returns what snprintf returns. */
int gc_matryoshka_format(const gc_matryoshka_config *m, char *buf, size_t size);
/* Valid for representations of width d? */
gc_status gc_matryoshka_check(const gc_matryoshka_config *m, int d);

/* Workspace bytes gc_matryoshka_infonce needs for a shard of `rows` query rows (B when not
 * sharded; sharded: the communicator has several ranks); covers the loss's own. */
size_t gc_matryoshka_workspace_size(int B, int P, int d, int rows, int sharded,
                                    const gc_loss_config *cfg, const gc_matryoshka_config *m);
/* As gc_infonce_shard (same layout of q, p, the same shard and assigned gradients: dq rows
 * [row0, row0 + rows) only, dp this rank's part; either may be NULL), for the combined loss:
 * out->loss and out->dlog_tau are the weighted sums, out->accuracy is that of the largest
 * listed size. shard NULL: the whole batch (gc_infonce). With m->count == 0 this is
 * gc_infonce_shard. workspace: gc_matryoshka_workspace_size bytes, or NULL to allocate. */
gc_status gc_matryoshka_infonce(const float *q, const float *p, int B, int P, int d,
                                const gc_loss_config *cfg, const gc_matryoshka_config *m,
                                const gc_loss_shard *shard, gc_loss_out *out, float *dq, float *dp,
                                void *workspace);

/* The combined loss in two halves (see gc_infonce_stats / gc_infonce_rep_grad): stats keeps
 * every size's statistics (each size reads its prefix through the view's stride, so nothing is
 * copied), rep_grad gives grad (count, d) = scale * the weighted sum of the sizes' gradients,
 * assigned. m->count == 0: the plain halves; rep_grad takes the same m as stats. */
size_t gc_matryoshka_stats_workspace_size(int B, int P, int d, int rows, int sharded,
                                          const gc_loss_config *cfg, const gc_matryoshka_config *m);
gc_status gc_matryoshka_stats(const gc_rep_view *v, int B, int P, int d, const gc_loss_config *cfg,
                              const gc_matryoshka_config *m, const gc_loss_shard *shard,
                              gc_loss_out *out, void *workspace);
gc_status gc_matryoshka_rep_grad(const gc_rep_view *v, const gc_matryoshka_config *m, int side,
                                 int first, int count, float scale, float *grad, void *workspace);

#ifdef __cplusplus
}
#endif

#endif /* GC_MATRYOSHKA_H */

/* comm.c: the single-process communicator and the encoder helpers. */
#include "gradcache.h"

#include <string.h>

static int single_rank(void *ctx) {
    (void)ctx;
    return 0;
}

static int single_size(void *ctx) {
    (void)ctx;
    return 1;
}

static gc_status single_all_gather(void *ctx, const float *local, size_t rows_local, size_t d,
                                   float *global) {
    (void)ctx;
    if (local != global && rows_local * d > 0) memmove(global, local, rows_local * d * sizeof(float));
    return GC_OK;
}

static gc_status single_all_reduce_sum(void *ctx, float *buf, size_t n) {
    (void)ctx, (void)buf, (void)n;
    return GC_OK;
}

static const gc_comm_ops g_single_ops = {single_rank, single_size, single_all_gather,
                                         single_all_reduce_sum};

gc_comm gc_comm_single(void) {
    gc_comm c = {&g_single_ops, NULL};
    return c;
}

void gc_encoder_zero_grad(gc_encoder *enc) {
    if (!enc || !enc->ops) return;
    size_t n = enc->ops->num_params(enc->ctx);
    float *g = enc->ops->grads(enc->ctx);
    if (g && n) memset(g, 0, n * sizeof(float));
}

void gc_encoder_free(gc_encoder *enc) {
    if (!enc || !enc->ops) return;
    if (enc->ops->free) enc->ops->free(enc->ctx);
    enc->ops = NULL;
    enc->ctx = NULL;
}

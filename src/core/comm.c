/* comm.c: the single-process communicator. */
#include "gc_comm.h"

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
    if (local != global && rows_local * d > 0)
        memmove(global, local, rows_local * d * sizeof(float));
    return GC_OK;
}

static gc_status single_all_reduce_sum(void *ctx, float *buf, size_t n, gc_mem where) {
    (void)ctx, (void)buf, (void)n, (void)where;
    return GC_OK;
}

static const gc_comm_ops g_single_ops = {single_rank, single_size, single_all_gather,
                                         single_all_reduce_sum};

gc_comm gc_comm_single(void) {
    gc_comm c = {&g_single_ops, NULL};
    return c;
}

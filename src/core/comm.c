/* comm.c: the single-process communicator, and what every communicator shares: rank and size
 * of a possibly NULL communicator, and agreeing on a failure across ranks. */
#include "gc_comm.h"

#include <stdio.h>
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

static gc_status single_reduce_scatter_sum(void *ctx, const float *in, float *out, size_t n) {
    (void)ctx;
    if (in != out && n > 0) memmove(out, in, n * sizeof(float));
    return GC_OK;
}

static gc_status single_all_reduce_f64(void *ctx, double *buf, size_t n, gc_comm_op op) {
    (void)ctx, (void)buf, (void)n, (void)op;
    return GC_OK;
}

static gc_status single_broadcast(void *ctx, void *buf, size_t bytes, int root) {
    (void)ctx, (void)buf, (void)bytes, (void)root;
    return GC_OK;
}

static const gc_comm_ops g_single_ops = {single_rank,
                                         single_size,
                                         single_all_gather,
                                         single_all_reduce_sum,
                                         single_reduce_scatter_sum,
                                         single_all_reduce_f64,
                                         single_broadcast};

gc_comm gc_comm_single(void) {
    gc_comm c = {&g_single_ops, NULL};
    return c;
}

int gc_comm_rank(const gc_comm *c) {
    return c && c->ops && c->ops->rank ? c->ops->rank(c->ctx) : 0;
}

int gc_comm_size(const gc_comm *c) {
    return c && c->ops && c->ops->size ? c->ops->size(c->ctx) : 1;
}

gc_status gc_comm_check(const gc_comm *c, const char *who) {
    if (gc_comm_size(c) <= 1) return GC_OK;
    const gc_comm_ops *o = c->ops;
    if (!o->all_gather || !o->all_reduce_sum || !o->reduce_scatter_sum || !o->all_reduce_f64 ||
        !o->broadcast)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "%s: a communicator of %d ranks without every collective", who,
                            gc_comm_size(c));
    return GC_OK;
}

gc_status gc_comm_barrier(const gc_comm *c) {
    if (gc_comm_size(c) <= 1) return GC_OK;
    double v = 0;
    return c->ops->all_reduce_f64(c->ctx, &v, 1, GC_COMM_SUM);
}

gc_status gc_comm_any(const gc_comm *c, int flag, int *first_rank) {
    const int size = gc_comm_size(c), rank = gc_comm_rank(c);
    *first_rank = flag ? rank : -1;
    if (size <= 1) return GC_OK;
    /* max of size - rank over the flagged ranks picks the lowest of them */
    double v = flag ? (double)(size - rank) : 0.0;
    gc_status st = c->ops->all_reduce_f64(c->ctx, &v, 1, GC_COMM_MAX);
    if (st != GC_OK) return st;
    *first_rank = v > 0 ? size - (int)v : -1;
    return GC_OK;
}

gc_status gc_comm_agree(const gc_comm *c, gc_status st) {
    if (gc_comm_size(c) <= 1) return st;
    int bad = -1;
    gc_status cst = gc_comm_any(c, st != GC_OK, &bad);
    if (cst != GC_OK) return cst;
    if (bad < 0) return GC_OK;
    struct {
        int32_t status;
        char msg[508];
    } m;
    memset(&m, 0, sizeof m);
    if (gc_comm_rank(c) == bad) {
        m.status = (int32_t)st;
        snprintf(m.msg, sizeof m.msg, "%s", gc_last_error());
    }
    if ((cst = c->ops->broadcast(c->ctx, &m, sizeof m, bad)) != GC_OK) return cst;
    m.msg[sizeof m.msg - 1] = 0;
    return gc_set_error((gc_status)m.status, "rank %d: %s", bad, m.msg);
}

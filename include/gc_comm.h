/* gc_comm.h: the communicator seam: gathering representations across processes and reducing
 * gradients. Only the single-process implementation exists today. */
#ifndef GC_COMM_H
#define GC_COMM_H

#include "gc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_comm_ops {
    int (*rank)(void *ctx);
    int (*size)(void *ctx);
    /* global (rows_local * size, d) = concatenation of every rank's local (rows_local, d);
     * host memory. */
    gc_status (*all_gather)(void *ctx, const float *local, size_t rows_local, size_t d,
                            float *global);
    /* buf (n) = sum over ranks, in place; buf lives at `where` (a device store's gradients are
     * reduced in device memory). */
    gc_status (*all_reduce_sum)(void *ctx, float *buf, size_t n, gc_mem where);
} gc_comm_ops;

typedef struct gc_comm {
    const gc_comm_ops *ops;
    void *ctx;
} gc_comm;

/* The single-process communicator (static, nothing to free). */
gc_comm gc_comm_single(void);

#ifdef __cplusplus
}
#endif

#endif /* GC_COMM_H */

/* gc_comm.h: the communicator seam: gathering representations across processes, reducing
 * gradients, merging loss statistics and agreeing on failures. Implementations: one process
 * (gc_comm_single, here) and MPI (gc_comm_mpi.h). */
#ifndef GC_COMM_H
#define GC_COMM_H

#include "gc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gc_comm_op { GC_COMM_SUM = 0, GC_COMM_MAX = 1 } gc_comm_op;

typedef struct gc_comm_ops {
    int (*rank)(void *ctx);
    int (*size)(void *ctx);
    /* global (rows_local * size, d) = concatenation of every rank's local (rows_local, d);
     * host memory. local may be this rank's own block of global (in place), nothing else of
     * it. */
    gc_status (*all_gather)(void *ctx, const float *local, size_t rows_local, size_t d,
                            float *global);
    /* buf (n) = sum over ranks, in place; buf lives at `where` (a device store's gradients are
     * reduced in device memory). */
    gc_status (*all_reduce_sum)(void *ctx, float *buf, size_t n, gc_mem where);
    /* The rest may be NULL in a one-rank communicator; several ranks need them all. */
    /* out (n) = sum over ranks of block `rank` of in (size * n): each rank gets its block.
     * in and out must not overlap. */
    gc_status (*reduce_scatter_sum)(void *ctx, const float *in, float *out, size_t n);
    /* buf (n) = element-wise sum or max over ranks, in place. Every rank gets bit-identical
     * values (so that every rank takes the same decisions from them). */
    gc_status (*all_reduce_f64)(void *ctx, double *buf, size_t n, gc_comm_op op);
    /* buf (bytes) of rank root to every rank. */
    gc_status (*broadcast)(void *ctx, void *buf, size_t bytes, int root);
} gc_comm_ops;

typedef struct gc_comm {
    const gc_comm_ops *ops;
    void *ctx;
} gc_comm;

/* The single-process communicator (static, nothing to free). */
gc_comm gc_comm_single(void);

/* Rank and size of c (NULL: the single process). */
int gc_comm_rank(const gc_comm *c);
int gc_comm_size(const gc_comm *c);
/* Several ranks: are the optional functions there? GC_ERR_INVALID_ARG naming `who` if not. */
gc_status gc_comm_check(const gc_comm *c, const char *who);
/* Every rank calls this with its own status; all return GC_OK only if every rank had GC_OK.
 * Otherwise every rank returns the status of the lowest failing rank, with that rank's error
 * message prefixed by "rank R: ", so one rank's failure stops all of them at the same point
 * instead of leaving the others waiting in the next collective. One rank: returns st. */
gc_status gc_comm_agree(const gc_comm *c, gc_status st);
/* Return once every rank has called it (a one-number all-reduce). */
gc_status gc_comm_barrier(const gc_comm *c);
/* The lowest rank whose flag is non-zero, or -1 when none is (every rank calls it). */
gc_status gc_comm_any(const gc_comm *c, int flag, int *first_rank);

#ifdef __cplusplus
}
#endif

#endif /* GC_COMM_H */

/* comm_mpi.c: gc_comm on MPI.
 *
 * Every collective is a plain MPI call on a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN,
 * so a failure comes back as a gc_status. MPI counts are int: a message above max_count
 * elements is sent in pieces (a gather through a resized datatype, so each piece still lands
 * at its rank's place). Sums that every rank must see bit-identically are formed once and
 * distributed: the float all-reduce is a reduce-scatter (each block summed on one rank) then
 * an all-gather, in buckets through a buffer allocated at create; the double reductions are a
 * reduce to rank 0 then a broadcast. */
#include "gc_comm_mpi.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef GC_HAVE_MPI
#include <mpi.h>

#define GC_MPI_BUCKET ((size_t)1 << 20) /* floats per rank per all-reduce bucket */

static size_t g_max_count = INT_MAX;

typedef struct mpi_ctx {
    MPI_Comm comm;
    int rank, size;
    float *bucket; /* GC_MPI_BUCKET floats */
    int finalize;  /* this module initialized MPI */
} mpi_ctx;

static gc_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return gc_set_error(GC_ERR_IO, "%s failed: %s", what, msg);
}

static int mpi_rank(void *ctx) {
    return ((mpi_ctx *)ctx)->rank;
}

static int mpi_size(void *ctx) {
    return ((mpi_ctx *)ctx)->size;
}

static gc_status mpi_all_gather(void *ctx, const float *local, size_t rows, size_t d,
                                float *global) {
    mpi_ctx *c = ctx;
    const size_t n = rows * d;
    if (n == 0) return GC_OK;
    if (n <= g_max_count) {
        const void *send = local == global + (size_t)c->rank * n ? MPI_IN_PLACE : local;
        int rc = MPI_Allgather(send, (int)n, MPI_FLOAT, global, (int)n, MPI_FLOAT, c->comm);
        return rc == MPI_SUCCESS ? GC_OK : mpi_fail(rc, "MPI_Allgather");
    }
    /* piece [off, off + m) of every rank's block: one element of a type of m floats whose
     * extent is a whole block, so rank r's piece lands at global + r * n + off */
    for (size_t off = 0; off < n; off += g_max_count) {
        const size_t m = n - off < g_max_count ? n - off : g_max_count;
        MPI_Datatype piece, block;
        int rc = MPI_Type_contiguous((int)m, MPI_FLOAT, &piece);
        if (rc == MPI_SUCCESS)
            rc = MPI_Type_create_resized(piece, 0, (MPI_Aint)(n * sizeof(float)), &block);
        if (rc == MPI_SUCCESS) rc = MPI_Type_commit(&block);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Type_create_resized");
        rc = MPI_Allgather(local + off, (int)m, MPI_FLOAT, global + off, 1, block, c->comm);
        MPI_Type_free(&block);
        MPI_Type_free(&piece);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allgather");
    }
    return GC_OK;
}

static gc_status mpi_reduce_scatter_sum(void *ctx, const float *in, float *out, size_t n) {
    mpi_ctx *c = ctx;
    if (n == 0) return GC_OK;
    if (n <= g_max_count) {
        int rc = MPI_Reduce_scatter_block(in, out, (int)n, MPI_FLOAT, MPI_SUM, c->comm);
        return rc == MPI_SUCCESS ? GC_OK : mpi_fail(rc, "MPI_Reduce_scatter_block");
    }
    /* pieces: each rank's block reduced onto that rank */
    for (int r = 0; r < c->size; r++)
        for (size_t off = 0; off < n; off += g_max_count) {
            const size_t m = n - off < g_max_count ? n - off : g_max_count;
            int rc = MPI_Reduce(in + (size_t)r * n + off, c->rank == r ? out + off : NULL, (int)m,
                                MPI_FLOAT, MPI_SUM, r, c->comm);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Reduce");
        }
    return GC_OK;
}

static gc_status mpi_all_reduce_sum(void *ctx, float *buf, size_t n, gc_mem where) {
    mpi_ctx *c = ctx;
    if (where != GC_MEM_HOST)
        return gc_set_error(GC_ERR_UNSUPPORTED, "MPI all-reduce of device memory");
    const size_t per = GC_MPI_BUCKET < g_max_count ? GC_MPI_BUCKET : g_max_count;
    const size_t R = (size_t)c->size;
    size_t off = 0;
    while (n - off >= R) { /* a bucket: R blocks of blk, each summed on one rank */
        const size_t blk = (n - off) / R < per ? (n - off) / R : per;
        int rc =
            MPI_Reduce_scatter_block(buf + off, c->bucket, (int)blk, MPI_FLOAT, MPI_SUM, c->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Reduce_scatter_block");
        rc = MPI_Allgather(c->bucket, (int)blk, MPI_FLOAT, buf + off, (int)blk, MPI_FLOAT, c->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allgather");
        off += blk * R;
    }
    if (off < n) { /* fewer than R left */
        int rc = MPI_Reduce(c->rank == 0 ? MPI_IN_PLACE : buf + off, buf + off, (int)(n - off),
                            MPI_FLOAT, MPI_SUM, 0, c->comm);
        if (rc == MPI_SUCCESS) rc = MPI_Bcast(buf + off, (int)(n - off), MPI_FLOAT, 0, c->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Reduce");
    }
    return GC_OK;
}

static gc_status mpi_all_reduce_f64(void *ctx, double *buf, size_t n, gc_comm_op op) {
    mpi_ctx *c = ctx;
    for (size_t off = 0; off < n; off += g_max_count) {
        const int m = (int)(n - off < g_max_count ? n - off : g_max_count);
        int rc = MPI_Reduce(c->rank == 0 ? MPI_IN_PLACE : buf + off, buf + off, m, MPI_DOUBLE,
                            op == GC_COMM_MAX ? MPI_MAX : MPI_SUM, 0, c->comm);
        if (rc == MPI_SUCCESS) rc = MPI_Bcast(buf + off, m, MPI_DOUBLE, 0, c->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Reduce");
    }
    return GC_OK;
}

static gc_status mpi_broadcast(void *ctx, void *buf, size_t bytes, int root) {
    mpi_ctx *c = ctx;
    for (size_t off = 0; off < bytes; off += g_max_count) {
        const int m = (int)(bytes - off < g_max_count ? bytes - off : g_max_count);
        int rc = MPI_Bcast((char *)buf + off, m, MPI_BYTE, root, c->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    return GC_OK;
}

static const gc_comm_ops g_mpi_ops = {
    mpi_rank,           mpi_size,     mpi_all_gather, mpi_all_reduce_sum, mpi_reduce_scatter_sum,
    mpi_all_reduce_f64, mpi_broadcast};

int gc_comm_mpi_available(void) {
    return 1;
}

gc_status gc_comm_mpi_create(gc_comm *out) {
    if (!out) return gc_set_error(GC_ERR_INVALID_ARG, "MPI communicator: NULL output");
    memset(out, 0, sizeof *out);
    mpi_ctx *c = calloc(1, sizeof *c);
    if (!c) return gc_set_error(GC_ERR_NOMEM, "MPI communicator: out of memory");
    int inited = 0, rc;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0; /* only the main thread calls MPI (OpenMP regions never do) */
        rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            free(c);
            return gc_set_error(GC_ERR_IO, "MPI_Init_thread failed (code %d)", rc);
        }
        c->finalize = 1;
    }
    rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) {
        gc_status st = mpi_fail(rc, "MPI_Comm_dup");
        if (c->finalize) MPI_Finalize();
        free(c);
        return st;
    }
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->bucket = malloc(GC_MPI_BUCKET * sizeof(float));
    if (!c->bucket) {
        MPI_Comm_free(&c->comm);
        if (c->finalize) MPI_Finalize();
        free(c);
        return gc_set_error(GC_ERR_NOMEM, "MPI communicator: out of memory for a bucket");
    }
    out->ops = &g_mpi_ops;
    out->ctx = c;
    return GC_OK;
}

void gc_comm_mpi_free(gc_comm *comm) {
    if (!comm || comm->ops != &g_mpi_ops) return;
    mpi_ctx *c = comm->ctx;
    MPI_Comm_free(&c->comm);
    if (c->finalize) MPI_Finalize();
    free(c->bucket);
    free(c);
    comm->ops = NULL, comm->ctx = NULL;
}

void gc_comm_mpi_set_max_count(size_t n) {
    g_max_count = n > 0 && n < INT_MAX ? n : INT_MAX;
}

#else /* no MPI */

int gc_comm_mpi_available(void) {
    return 0;
}

gc_status gc_comm_mpi_create(gc_comm *out) {
    if (out) memset(out, 0, sizeof *out);
    return gc_set_error(GC_ERR_UNSUPPORTED,
                        "this gradcache was built without MPI (install libopenmpi-dev and "
                        "rebuild)");
}

void gc_comm_mpi_free(gc_comm *comm) {
    (void)comm;
}

void gc_comm_mpi_set_max_count(size_t n) {
    (void)n;
}

#endif

int gc_comm_mpi_launched(void) {
    /* Open MPI's launcher sets these in every process it starts; PMI_RANK covers MPICH */
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

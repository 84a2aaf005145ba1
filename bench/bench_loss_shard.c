/* bench_loss_shard.c: the loss sharded over ranks (gc_infonce_shard) is not replicated.
 *
 *   mpirun -np N bench_loss_shard [--batch 8192] [--dim 32] [--negatives 0] [--tile 1024]
 *                                 [--symmetric] [--reps 3]
 *   (or without mpirun: one process)
 *
 * Every rank holds the same gathered representations (random, as after the all-gather) and
 * computes its shard: rows [r*B/N, (r+1)*B/N) (B need not divide by N here) against all P
 * passages, forward and backward. Rank 0 prints, per rank: the workspace bytes (what grows with
 * the rank's rows, what grows with B or P, and the one score tile), the scores it computes,
 * and the mean wall and CPU seconds of one call (CPU time shows the work when ranks share
 * cores). A replicated loss would compute B x P on every rank. */
#include "gc_comm_mpi.h"
#include "gc_loss.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void) { /* this process's CPU time: the work, whatever else runs */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, gc_status st) {
    fprintf(stderr, "bench_loss_shard: %s: %s: %s\n", what, gc_status_str(st), gc_last_error());
    return 1;
}

int main(int argc, char **argv) {
    int B = 8192, d = 32, K = 0, tile = 0, sym = 0, reps = 3;
    for (int i = 1; i < argc; i++) {
        int *dst = NULL;
        if (strcmp(argv[i], "--symmetric") == 0) {
            sym = 1;
            continue;
        }
        if (i + 1 < argc) {
            if (strcmp(argv[i], "--batch") == 0) dst = &B;
            if (strcmp(argv[i], "--dim") == 0) dst = &d;
            if (strcmp(argv[i], "--negatives") == 0) dst = &K;
            if (strcmp(argv[i], "--tile") == 0) dst = &tile;
            if (strcmp(argv[i], "--reps") == 0) dst = &reps;
        }
        if (!dst) {
            fprintf(stderr, "usage: bench_loss_shard [--batch N] [--dim N] [--negatives K] "
                            "[--tile N] [--symmetric] [--reps N]\n");
            return 2;
        }
        *dst = atoi(argv[++i]);
    }
    if (B < 1 || d < 1 || K < 0 || reps < 1) return 2;
    gc_comm comm = gc_comm_single();
    gc_status st;
    const int mpi = gc_comm_mpi_launched();
    if (mpi && (st = gc_comm_mpi_create(&comm)) != GC_OK) return fail("MPI", st);
    const int rank = gc_comm_rank(&comm), size = gc_comm_size(&comm);
    const int P = B * (1 + K);
    const int row0 = (int)((long long)B * rank / size);
    const int rows = (int)((long long)B * (rank + 1) / size) - row0;
    float *q = malloc(sizeof(float) * (size_t)B * d), *p = malloc(sizeof(float) * (size_t)P * d);
    float *dq = malloc(sizeof(float) * (size_t)B * d), *dp = malloc(sizeof(float) * (size_t)P * d);
    if (!q || !p || !dq || !dp) return fail("memory", GC_ERR_NOMEM);
    uint64_t s = 7;
    for (size_t i = 0; i < (size_t)P * d; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((s >> 40) / (double)(1 << 24)) - 0.5f;
        if (i < (size_t)B * d) q[i] = p[i] + 0.1f * ((float)((s >> 20) & 1023) / 1024.0f - 0.5f);
    }
    gc_loss_config cfg = {.temperature = 0.05f, .symmetric = sym, .cosine = 1, .tile = tile};
    const size_t ws_size = gc_infonce_shard_workspace_size(B, P, d, rows, size > 1, &cfg);
    /* the parts: rows-proportional (5 per-row values, the query scales) and the score tile */
    const int T = tile > 0 ? (tile < P ? tile : P) : (1024 < P ? 1024 : P);
    const size_t tile_bytes = sizeof(float) * (size_t)(T < rows ? T : rows) * T;
    const size_t row_bytes = (3 * sizeof(double) + 3 * sizeof(float)) * (size_t)rows;
    void *ws = malloc(ws_size);
    gc_loss_shard sh = {row0, rows, &comm};
    gc_loss_out out;
    if ((st = gc_infonce_shard(q, p, B, P, d, &cfg, &sh, &out, dq, dp, ws)) != GC_OK)
        return fail("warm-up", st);
    double t0 = now(), c0 = cpu_now();
    for (int k = 0; k < reps; k++)
        if ((st = gc_infonce_shard(q, p, B, P, d, &cfg, &sh, &out, dq, dp, ws)) != GC_OK)
            return fail("loss", st);
    double fig[6] = {(double)ws_size, (double)row_bytes,   (double)tile_bytes,
                     (double)rows,    (now() - t0) / reps, (cpu_now() - c0) / reps};
    double *all = calloc((size_t)size * 6, sizeof(double));
    memcpy(all + (size_t)rank * 6, fig, sizeof fig);
    if (size > 1 &&
        (st = comm.ops->all_reduce_f64(comm.ctx, all, (size_t)size * 6, GC_COMM_SUM)) != GC_OK)
        return fail("gathering the figures", st);
    if (rank == 0) {
        printf("%d rank%s: B=%d, P=%d, d=%d, %s, tile %d, %d thread%s per rank, loss %.6f\n", size,
               size > 1 ? "s" : "", B, P, d, sym ? "symmetric" : "one-sided", T,
               omp_get_max_threads(), omp_get_max_threads() > 1 ? "s" : "", out.loss);
        for (int r = 0; r < size; r++) {
            const double *x = all + (size_t)r * 6;
            printf("  rank %d: %5.0f query rows, %6.1f M scores; workspace %7.1f KiB (rows %6.1f, "
                   "tile %6.1f, B/P-sized %6.1f); loss fwd+bwd %.3f s (CPU %.3f s)\n",
                   r, x[3], x[3] * P / 1e6, x[0] / 1024, x[1] / 1024, x[2] / 1024,
                   (x[0] - x[1] - x[2]) / 1024, x[4], x[5]);
        }
    }
    free(all), free(ws), free(q), free(p), free(dq), free(dp);
    gc_matmul_cleanup();
    if (mpi) gc_comm_mpi_free(&comm);
    return 0;
}

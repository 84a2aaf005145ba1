/* bench_mpi_step.c: what each rank of a multi-process step does and how long it takes.
 *
 *   mpirun -np N bench_mpi_step [--model DIR] [--batch 8192] [--chunk 256] [--qlen 16]
 *                               [--plen 32] [--steps 2]
 *   (or without mpirun: one process)
 *
 * Random token batches ([CLS] ids [SEP]) of the global size, InfoNCE over in-batch negatives
 * (cosine, tau 0.05, symmetric), gradient cache. One warm-up step, then `steps` timed steps;
 * rank 0 prints every rank's loss workspace (bytes of gc_infonce_shard's workspace: it holds
 * per-row statistics of the rank's B / N queries only, plus one score tile) and the mean
 * seconds per step of each phase: encode (pass 1 + pass 2), gather (all-gather of the
 * representations), loss (the rank's shard of the loss), scatter (reduce-scatter of passage
 * gradients), reduce (gradient all-reduce). With the loss replicated the loss time would not
 * fall with N; sharded, each rank scores B / N x P. Threads per rank: OMP_NUM_THREADS. */
#include "gc_bert.h"
#include "gc_comm_mpi.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, gc_status st) {
    fprintf(stderr, "bench_mpi_step: %s: %s: %s\n", what, gc_status_str(st), gc_last_error());
    return 1;
}

static void make_batch(gc_token_batch *tb, int32_t *ids, int64_t *offs, int n, int len, int vocab,
                       uint64_t *state) {
    const int lo = vocab > 2000 ? 1000 : 104; /* past the special tokens */
    for (int i = 0; i < n; i++) {
        offs[i] = (int64_t)i * len;
        for (int t = 0; t < len; t++) {
            *state = *state * 6364136223846793005ull + 1442695040888963407ull;
            int id = lo + (int)((*state >> 33) % (uint64_t)(vocab - lo));
            ids[(size_t)i * len + t] = t == 0 ? 101 : t == len - 1 ? 102 : id;
        }
    }
    offs[n] = (int64_t)n * len;
    tb->n = n, tb->ids = ids, tb->offsets = offs;
}

int main(int argc, char **argv) {
    const char *model_dir = GC_MODEL_DIR;
    int batch = 8192, chunk = 256, qlen = 16, plen = 32, steps = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *dst = NULL;
        if (i + 1 < argc && strcmp(a, "--model") == 0) {
            model_dir = argv[++i];
            continue;
        }
        if (i + 1 < argc) {
            if (strcmp(a, "--batch") == 0) dst = &batch;
            if (strcmp(a, "--chunk") == 0) dst = &chunk;
            if (strcmp(a, "--qlen") == 0) dst = &qlen;
            if (strcmp(a, "--plen") == 0) dst = &plen;
            if (strcmp(a, "--steps") == 0) dst = &steps;
        }
        if (!dst) {
            fprintf(stderr, "usage: bench_mpi_step [--model DIR] [--batch N] [--chunk N] "
                            "[--qlen N] [--plen N] [--steps N]\n");
            return 2;
        }
        *dst = atoi(argv[++i]);
    }
    if (batch < 1 || chunk < 1 || qlen < 2 || plen < 2 || steps < 1) return 2;
    gc_comm comm = gc_comm_single();
    gc_status st;
    const int mpi = gc_comm_mpi_launched();
    if (mpi && (st = gc_comm_mpi_create(&comm)) != GC_OK) return fail("MPI", st);
    const int rank = gc_comm_rank(&comm), size = gc_comm_size(&comm);
    if (batch % size) {
        if (rank == 0) fprintf(stderr, "bench_mpi_step: batch %d over %d ranks\n", batch, size);
        return 2;
    }
    gc_bert *m = NULL;
    if ((st = gc_bert_load(&m, model_dir)) != GC_OK) return fail(model_dir, st);
    const gc_bert_config *cfg = gc_bert_get_config(m);

    uint64_t rng = 42; /* the same global batch on every rank */
    gc_token_batch qb, pb;
    int32_t *qids = malloc(sizeof(int32_t) * (size_t)batch * qlen),
            *pids = malloc(sizeof(int32_t) * (size_t)batch * plen);
    int64_t *qoff = malloc(sizeof(int64_t) * (batch + 1)),
            *poff = malloc(sizeof(int64_t) * (batch + 1));
    make_batch(&qb, qids, qoff, batch, qlen, cfg->vocab_size, &rng);
    make_batch(&pb, pids, poff, batch, plen, cfg->vocab_size, &rng);

    gc_encoder enc = gc_bert_encoder(m);
    gc_engine_config ec;
    memset(&ec, 0, sizeof ec);
    ec.max_batch = batch;
    ec.query_chunk = ec.passage_chunk = chunk;
    ec.max_len = qlen > plen ? qlen : plen;
    ec.loss = (gc_loss_config){.temperature = 0.05f, .symmetric = 1, .cosine = 1};
    ec.seed = 1;
    gc_engine *e = NULL;
    if ((st = gc_engine_create(&e, &ec, &enc, &enc, &comm)) != GC_OK) return fail("engine", st);

    gc_step_stats s;
    if ((st = gc_engine_step(e, &qb, &pb, batch, 0, 0, &s)) != GC_OK) return fail("warm-up", st);
    double t[6] = {0}; /* encode, gather, loss, scatter, reduce, workspace */
    for (int k = 1; k <= steps; k++) {
        if ((st = gc_engine_step(e, &qb, &pb, batch, 0, (uint32_t)k, &s)) != GC_OK)
            return fail("step", st);
        t[0] += s.time_encode / steps, t[1] += s.time_gather / steps;
        t[2] += s.time_loss / steps, t[3] += s.time_scatter / steps;
        t[4] += s.time_reduce / steps;
    }
    t[5] = (double)gc_engine_loss_workspace(e);
    /* every rank's figures to rank 0 (one slot each, summed) */
    double *all = calloc((size_t)size * 6, sizeof(double));
    memcpy(all + (size_t)rank * 6, t, sizeof t);
    if (size > 1 &&
        (st = comm.ops->all_reduce_f64(comm.ctx, all, (size_t)size * 6, GC_COMM_SUM)) != GC_OK)
        return fail("gathering the figures", st);
    if (rank == 0) {
        printf("%d rank%s, %s (d=%d, %d layers), B=%d, chunk %d, %d/%d tokens, %d thread%s per "
               "rank, loss %.4f\n",
               size, size > 1 ? "s" : "", model_dir, cfg->hidden, cfg->layers, batch, chunk, qlen,
               plen, omp_get_max_threads(), omp_get_max_threads() > 1 ? "s" : "", s.loss);
        for (int r = 0; r < size; r++) {
            const double *x = all + (size_t)r * 6;
            printf("  rank %d: loss workspace %8.1f KiB (%d query rows x %d passages)  s/step: "
                   "encode %.3f gather %.4f loss %.3f scatter %.4f reduce %.4f\n",
                   r, x[5] / 1024.0, batch / size, batch, x[0], x[1], x[2], x[3], x[4]);
        }
    }
    free(all);
    free(qids), free(pids), free(qoff), free(poff);
    gc_engine_free(e);
    gc_bert_free(m);
    gc_matmul_cleanup();
    if (mpi) gc_comm_mpi_free(&comm);
    return 0;
}

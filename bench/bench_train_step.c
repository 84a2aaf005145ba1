/* bench_train_step.c: time the gradient-cache training step on a BERT model folder.
 *
 *   bench_train_step [--model DIR] [--batch 64] [--chunk 32] [--qlen 32] [--plen 128]
 *                    [--steps 3] [--no-cache] [--precision fp32|bf16]
 *                    [--memory-budget BYTES]  (K/M/G suffix: KiB/MiB/GiB; the engine's planner)
 *                    [--no-warmup]
 *
 * Every query has qlen tokens and every passage plen tokens ([CLS], random ids, [SEP]), the
 * loss is InfoNCE over in-batch negatives (tau 0.05), dropout as in the model's config. One
 * warm-up step, then `steps` timed steps; prints seconds per step and pairs per second, and the
 * time of one chunk's encode / forward / backward, then the process's peak resident memory and
 * the engine's own buffers (bench/pair_memory.sh takes the per-pair cost from two batch sizes).
 * Threads: OMP_NUM_THREADS. The PyTorch
 * counterpart is scripts/bench_torch_step.py. */
#include "gc_bert.h"

#include <omp.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, gc_status st) {
    fprintf(stderr, "bench_train_step: %s: %s: %s\n", what, gc_status_str(st), gc_last_error());
    return 1;
}

/* n sequences of len tokens: [CLS] random word pieces [SEP]. */
static void make_batch(gc_token_batch *tb, int32_t *ids, int64_t *offs, int n, int len, int vocab,
                       uint64_t *state) {
    for (int i = 0; i < n; i++) {
        offs[i] = (int64_t)i * len;
        for (int t = 0; t < len; t++) {
            *state = *state * 6364136223846793005ull + 1442695040888963407ull;
            int lo = vocab > 2000 ? 1000 : vocab / 4; /* past the special tokens */
            int id = lo + (int)((*state >> 33) % (uint64_t)(vocab - lo));
            ids[(size_t)i * len + t] = t == 0 ? 101 : t == len - 1 ? 102 : id;
        }
    }
    offs[n] = (int64_t)n * len;
    tb->n = n, tb->ids = ids, tb->offsets = offs;
}

int main(int argc, char **argv) {
    const char *model_dir = GC_MODEL_DIR;
    int batch = 64, chunk = 32, qlen = 32, plen = 128, steps = 3, no_cache = 0, warmup = 1;
    size_t budget = 0;
    gc_precision prec = GC_PRECISION_FP32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && strcmp(a, "--model") == 0)
            model_dir = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--batch") == 0)
            batch = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--chunk") == 0)
            chunk = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--qlen") == 0)
            qlen = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--plen") == 0)
            plen = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--steps") == 0)
            steps = atoi(argv[++i]);
        else if (strcmp(a, "--no-cache") == 0)
            no_cache = 1;
        else if (strcmp(a, "--no-warmup") == 0)
            warmup = 0;
        else if (i + 1 < argc && strcmp(a, "--memory-budget") == 0) {
            char *end;
            double v = strtod(argv[++i], &end);
            double unit = *end == 'K'   ? 1024.0
                          : *end == 'M' ? 1048576.0
                          : *end == 'G' ? 1 << 30
                                        : 1;
            budget = v > 0 ? (size_t)(v * unit) : 0;
            if (!budget) return 2;
        } else if (i + 1 < argc && strcmp(a, "--precision") == 0) {
            if (gc_precision_parse(argv[++i], &prec) != GC_OK) return 2;
        } else {
            fprintf(stderr, "usage: bench_train_step [--model DIR] [--batch N] [--chunk N] "
                            "[--qlen N] [--plen N] [--steps N] [--no-cache] "
                            "[--precision fp32|bf16] [--memory-budget BYTES[K|M|G]] "
                            "[--no-warmup]\n");
            return 2;
        }
    }
    if (batch < 1 || chunk < 1 || qlen < 2 || plen < 2 || steps < 1) return 2;
    gc_bert *m = NULL;
    gc_status st = gc_bert_load(&m, model_dir);
    if (st) return fail(model_dir, st);
    const gc_bert_config *cfg = gc_bert_get_config(m);
    if ((st = gc_bert_set_precision(m, prec))) return fail("precision", st);
    int maxlen = qlen > plen ? qlen : plen;
    if (no_cache) chunk = batch;

    uint64_t rng = 42;
    gc_token_batch qb, pb;
    int32_t *qids = malloc(sizeof(int32_t) * batch * qlen),
            *pids = malloc(sizeof(int32_t) * batch * plen);
    int64_t *qoff = malloc(sizeof(int64_t) * (batch + 1)),
            *poff = malloc(sizeof(int64_t) * (batch + 1));
    make_batch(&qb, qids, qoff, batch, qlen, cfg->vocab_size, &rng);
    make_batch(&pb, pids, poff, batch, plen, cfg->vocab_size, &rng);

    gc_encoder enc = gc_bert_encoder(m);
    gc_engine_config ec;
    memset(&ec, 0, sizeof ec);
    ec.max_batch = batch;
    ec.query_chunk = chunk;
    ec.passage_chunk = chunk;
    ec.no_cache = no_cache;
    ec.memory_budget = budget;
    ec.reps_bf16 = gc_bert_get_precision(m) == GC_PRECISION_BF16;
    ec.max_len = maxlen; /* the engine reserves the model's buffers for its chunks */
    ec.loss.temperature = 0.05f;
    ec.seed = 1;
    gc_engine *e = NULL;
    if ((st = gc_engine_create(&e, &ec, &enc, &enc, NULL))) return fail("engine", st);

    gc_step_stats stats;
    if (warmup && (st = gc_engine_step(e, &qb, &pb, batch, 0, 0, &stats)))
        return fail("warm-up step", st);
    double t0 = now();
    for (int s = 1; s <= steps; s++)
        if ((st = gc_engine_step(e, &qb, &pb, batch, 0, (uint32_t)s, &stats)))
            return fail("step", st);
    double per_step = (now() - t0) / steps;

    /* one passage chunk's phases, for the breakdown */
    float *reps = malloc(sizeof(float) * chunk * cfg->hidden);
    gc_encode_args a = {&pb, 1, 0, chunk < batch ? chunk : batch, 1, 0, 1, 9};
    double t1 = now();
    st = enc.ops->encode(enc.ctx, &a, reps);
    double t2 = now();
    if (!st) st = enc.ops->forward(enc.ctx, &a, reps);
    double t3 = now();
    if (!st) st = enc.ops->backward(enc.ctx, &a, reps);
    double t4 = now();
    if (st) return fail("phases", st);
    gc_encode_args aq = {&qb, 0, 0, chunk < batch ? chunk : batch, 1, 0, 1, 9};
    double t5 = now();
    st = enc.ops->encode(enc.ctx, &aq, reps);
    double tq = now() - t5;
    if (st) return fail("query encode", st);

    printf("gradcache C: MiniLM-L%d, batch %d, chunk %d, query %d / passage %d tokens, %s, %s, "
           "%d threads: %.3f s/step, %.2f pairs/s (loss %.4f)\n",
           cfg->layers, batch, chunk, qlen, plen,
           no_cache ? "no cache"
           : budget ? "gradient cache, memory budget"
                    : "gradient cache",
           gc_precision_name(prec), omp_get_max_threads(), per_step, batch / per_step, stats.loss);
    if (budget) {
        gc_engine_plan p;
        gc_engine_get_plan(e, &p);
        printf("  memory plan: budget %.2f GiB, chunks %d/%d, kept %d of %d query and %d of %d "
               "passage chunks (%d examples re-encoded), expected peak %.2f GiB\n",
               p.budget / 1073741824.0, p.query_chunk, p.passage_chunk, p.kept_query,
               p.query_chunks, p.kept_passage, p.passage_chunks, p.reencoded_examples,
               p.peak_bytes / 1073741824.0);
    }
    printf("  one passage chunk of %d: encode %.3f s, forward %.3f s, backward %.3f s; one query "
           "chunk: encode %.3f s\n",
           a.count, t2 - t1, t3 - t2, t4 - t3, tq);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    gc_engine_plan pl;
    gc_engine_get_plan(e, &pl);
    printf("  peak RSS %.2f MiB; engine buffers %.2f MiB, encoder reservation %.2f MiB, step "
           "times: encode %.3f s, loss %.3f s\n",
           ru.ru_maxrss / 1024.0, pl.engine_bytes / 1048576.0, pl.encoder_bytes / 1048576.0,
           stats.time_encode, stats.time_loss);
    free(reps);
    free(qids), free(pids), free(qoff), free(poff);
    gc_engine_free(e);
    gc_bert_free(m);
    gc_matmul_cleanup();
    return 0;
}

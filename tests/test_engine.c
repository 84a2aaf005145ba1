/* test_engine.c: the gradient-cache engine on the toy encoder.
 *
 *  - with dropout on, cached gradients equal no-cache gradients for every chunking (shared
 *    encoder, hard negatives, symmetric loss, two towers), per tensor;
 *  - the no-cache gradient matches finite differences of the step's loss, plain and with the
 *    Matryoshka loss (cache = no-cache holds for Matryoshka too, in the list above);
 *  - bitwise determinism for one seed, different gradients for another;
 *  - accumulation with loss_scale equals the average of single steps;
 *  - the communicator seam: call counts, skip_reduce, and a two-rank run on threads that
 *    reproduces the single-process gradients;
 *  - the memory-budget planner: with the smallest budget, one in between and one that holds
 *    the batch (given and chosen chunk sizes, shared / two towers / Matryoshka, two ranks) the
 *    gradient equals the planner-off one within 1e-6, and the encoder calls show that exactly
 *    the chunks not kept are re-encoded (none when the budget holds the batch); a budget
 *    below one chunk of one example is refused;
 *  - bad calls return a status with a message. */
#include "gc_testing.h"
#include "test_util.h"

#include <omp.h>
#include <pthread.h>
#include <string.h>

enum { VOCAB = 50, EMBED = 8, HIDDEN = 16, DIM = 8, BATCH = 16, MAXK = 2, MAXP = BATCH * 3 };

/* ------------------------------------------------------------------------------------------ */
/* Data: random token sequences of 1..8 ids, addressed by (data seed, side, example). */

typedef struct side_data {
    int32_t ids[MAXP * 8];
    int64_t offsets[MAXP + 1];
    gc_token_batch tb;
} side_data;

static void make_side(side_data *s, int n, uint64_t seed, int side) {
    s->offsets[0] = 0;
    for (int i = 0; i < n; i++) {
        float u[9];
        gc_rng_addr a = {seed, 0, (uint32_t)side, (uint32_t)i, 0};
        gc_rng_uniform_fill(u, &a, 0, 9);
        int len = 1 + (int)(u[0] * 8);
        for (int t = 0; t < len; t++) s->ids[s->offsets[i] + t] = (int32_t)(u[1 + t] * VOCAB);
        s->offsets[i + 1] = s->offsets[i] + len;
    }
    s->tb = (gc_token_batch){n, s->ids, s->offsets};
}

static side_data g_q[2], g_p[2]; /* two batches */

/* ------------------------------------------------------------------------------------------ */
/* Toy tensors, in the order of the flat buffer documented in src/models/toy.c. */

static const char *g_tensor[5] = {"emb", "w1", "b1", "w2", "b2"};
static const size_t g_size[5] = {VOCAB * EMBED, HIDDEN *EMBED, HIDDEN, DIM *HIDDEN, DIM};
#define NPARAMS (VOCAB * EMBED + HIDDEN * EMBED + HIDDEN + DIM * HIDDEN + DIM)

static gc_status make_toy(gc_encoder *enc, uint64_t init_seed, int dim) {
    gc_toy_config c = {VOCAB, EMBED, HIDDEN, dim, 0.1f, MAXP, 2, MAXP * 8, init_seed};
    return gc_toy_encoder_create(enc, &c);
}

typedef struct variant {
    const char *name;
    int K, symmetric, cosine, two_towers;
    const char *matryoshka; /* NULL: the plain loss */
} variant;

static int g_reps_bf16; /* engine_cfg's reps_bf16 */

static gc_engine_config engine_cfg(const variant *v, int qc, int pc, int no_cache, uint64_t seed) {
    gc_engine_config c;
    memset(&c, 0, sizeof c);
    c.reps_bf16 = g_reps_bf16;
    c.max_batch = BATCH;
    c.max_negatives = MAXK;
    c.query_chunk = qc;
    c.passage_chunk = pc;
    c.no_cache = no_cache;
    c.max_len = 8;
    c.loss.temperature = 0.1f;
    c.loss.symmetric = v->symmetric;
    c.loss.cosine = v->cosine;
    c.learn_temperature = 1;
    c.seed = seed;
    if (v->matryoshka) CHECK_OK(gc_matryoshka_parse(v->matryoshka, &c.matryoshka));
    return c;
}

/* One step with fresh encoders; grads (2 * NPARAMS: query tower, then passage tower, which is
 * the query tower again when shared) and stats out. */
static gc_status run_step(const variant *v, int qc, int pc, int no_cache, uint64_t seed,
                          float *grads, gc_step_stats *stats) {
    gc_encoder eq, ep;
    gc_status st = make_toy(&eq, 11, DIM);
    if (st != GC_OK) return st;
    if (v->two_towers && (st = make_toy(&ep, 12, DIM)) != GC_OK) return st;
    gc_encoder *penc = v->two_towers ? &ep : &eq;
    gc_engine *e = NULL;
    gc_engine_config cfg = engine_cfg(v, qc, pc, no_cache, seed);
    st = gc_engine_create(&e, &cfg, &eq, penc, NULL);
    if (st == GC_OK) st = gc_engine_step(e, &g_q[0].tb, &g_p[0].tb, BATCH, v->K, 3, stats);
    if (st == GC_OK) {
        memcpy(grads, gc_toy_grads(&eq), sizeof(float) * NPARAMS);
        memcpy(grads + NPARAMS, gc_toy_grads(penc), sizeof(float) * NPARAMS);
    }
    gc_engine_free(e);
    gc_encoder_free(&eq);
    if (v->two_towers) gc_encoder_free(&ep);
    return st;
}

/* Per-tensor norm-relative error of both towers; returns the largest, updates worst[]. */
static double tensor_errors(const float *a, const float *ref, double worst[10]) {
    double m = 0.0;
    size_t off = 0;
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < 5; k++) {
            double err = norm_rel_err(a + off, ref + off, g_size[k]);
            if (err > worst[t * 5 + k]) worst[t * 5 + k] = err;
            if (err > m) m = err;
            off += g_size[k];
        }
    }
    return m;
}

/* ------------------------------------------------------------------------------------------ */

static void test_cache_equals_no_cache(void) {
    static const variant variants[] = {
        {"shared, K=0", 0, 0, 0, 0, NULL},
        {"shared, K=2", 2, 0, 0, 0, NULL},
        {"shared, symmetric", 0, 1, 0, 0, NULL},
        {"two towers, K=2", 2, 0, 0, 1, NULL},
        {"two towers, K=2, symmetric, cosine", 2, 1, 1, 1, NULL},
        {"shared, K=2, matryoshka 8,4:0.5,2", 2, 0, 0, 0, "8,4:0.5,2"},
        {"two towers, sym, cos, matryoshka 6,3:2", 2, 1, 1, 1, "6,3:2"},
    };
    static const int chunks[][2] = {{1, 1}, {3, 3},     {8, 8}, {BATCH, BATCH},
                                    {1, 8}, {3, BATCH}, {8, 3}, {BATCH, 1}};
    float *ref = malloc(sizeof(float) * 2 * NPARAMS), *g = malloc(sizeof(float) * 2 * NPARAMS);
    double worst[10] = {0};
    double worst_loss = 0.0, worst_dlt = 0.0;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const variant *var = &variants[v];
        gc_step_stats sref, s;
        CHECK_OK(run_step(var, BATCH, BATCH, 1, 5, ref, &sref));
        double vmax = 0.0;
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            int qc = chunks[c][0], pc = chunks[c][1];
            CHECK_OK(run_step(var, qc, pc, 0, 5, g, &s));
            double err = tensor_errors(g, ref, worst);
            CHECK(err <= 1e-5, "%s, chunks %d/%d: gradient differs by %.3e", var->name, qc, pc,
                  err);
            double lerr = fabs(s.loss - sref.loss) / fabs(sref.loss);
            double derr = fabs(s.dlog_tau - sref.dlog_tau) / fmax(fabs(sref.dlog_tau), 1e-12);
            CHECK(lerr <= 1e-6, "%s, chunks %d/%d: loss %.9g vs %.9g", var->name, qc, pc, s.loss,
                  sref.loss);
            CHECK(derr <= 1e-5, "%s, chunks %d/%d: dlog_tau %.9g vs %.9g", var->name, qc, pc,
                  s.dlog_tau, sref.dlog_tau);
            CHECK(s.accuracy == sref.accuracy, "%s: accuracy", var->name);
            if (err > vmax) vmax = err;
            if (lerr > worst_loss) worst_loss = lerr;
            if (derr > worst_dlt) worst_dlt = derr;
        }
        printf("  %-36s loss %.5f  acc %.3f  max per-tensor err over chunkings %.2e\n", var->name,
               sref.loss, sref.accuracy, vmax);
    }
    printf("  cache vs no-cache, worst per tensor over all variants and chunkings:\n   ");
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 5; k++)
            printf(" %s.%s %.1e", t ? "p" : "q", g_tensor[k], worst[t * 5 + k]);
    printf("\n  worst loss rel err %.1e, dlog_tau rel err %.1e\n", worst_loss, worst_dlt);
    free(ref), free(g);
}

/* The no-cache gradient against finite differences of the loss a step reports, on the
 * largest-gradient entries of each tensor (dropout on: masks are fixed by the address). */
static void test_finite_differences(const variant *v) {
    gc_encoder enc;
    CHECK_OK(make_toy(&enc, 11, DIM));
    printf("  %s:\n", v->name);
    gc_engine_config cfg = engine_cfg(v, BATCH, BATCH, 1, 5);
    gc_engine *e = NULL;
    CHECK_OK(gc_engine_create(&e, &cfg, &enc, &enc, NULL));
    if (!e) return;
    gc_step_stats s;
    CHECK_OK(gc_engine_step(e, &g_q[0].tb, &g_p[0].tb, BATCH, 2, 3, &s));
    float *grad = malloc(sizeof(float) * NPARAMS);
    memcpy(grad, gc_toy_grads(&enc), sizeof(float) * NPARAMS);
    float *p = gc_toy_params(&enc);
    const float eps = 5e-3f;
    size_t off = 0;
    for (int k = 0; k < 5; k++) {
        enum { PICK = 6 };
        float an[PICK], fd[PICK];
        int used[PICK];
        for (int j = 0; j < PICK; j++) { /* the PICK largest |grad| entries of tensor k */
            size_t best = off;
            float bv = -1.0f;
            for (size_t i = off; i < off + g_size[k]; i++) {
                int taken = 0;
                for (int q = 0; q < j; q++) taken |= used[q] == (int)i;
                if (!taken && fabsf(grad[i]) > bv) bv = fabsf(grad[i]), best = i;
            }
            used[j] = (int)best;
            float keep = p[best];
            double l[4];
            const float steps[4] = {2.0f, 1.0f, -1.0f, -2.0f};
            for (int q = 0; q < 4; q++) {
                p[best] = keep + steps[q] * eps;
                gc_step_stats sq;
                CHECK_OK(gc_engine_step(e, &g_q[0].tb, &g_p[0].tb, BATCH, 2, 3, &sq));
                l[q] = sq.loss;
            }
            p[best] = keep;
            an[j] = grad[best];
            fd[j] = (float)((8.0 * (l[1] - l[2]) - (l[0] - l[3])) / (12.0 * eps));
        }
        double err = norm_rel_err(an, fd, PICK);
        printf("  no-cache gradient vs finite differences of the loss, %-3s: %.2e\n", g_tensor[k],
               err);
        CHECK(err < 1e-2, "%s: finite-difference error %.3e", g_tensor[k], err);
        off += g_size[k];
    }
    free(grad);
    gc_engine_free(e);
    gc_encoder_free(&enc);
}

static void test_determinism(void) {
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    variant v = {"", 2, 1, 0, 1, NULL};
    float *a = malloc(sizeof(float) * 2 * NPARAMS), *b = malloc(sizeof(float) * 2 * NPARAMS);
    gc_step_stats sa, sb;
    CHECK_OK(run_step(&v, 3, 8, 0, 5, a, &sa));
    CHECK_OK(run_step(&v, 3, 8, 0, 5, b, &sb));
    int same = memcmp(a, b, sizeof(float) * 2 * NPARAMS) == 0 && sa.loss == sb.loss;
    CHECK(same, "same seed: gradients are bitwise identical");
    CHECK_OK(run_step(&v, 3, 8, 0, 6, b, &sb));
    double diff = norm_rel_err(b, a, 2 * NPARAMS);
    printf("  seed 5 twice: bitwise %s; seed 6 vs seed 5: norm rel diff %.2e\n",
           same ? "identical" : "different", diff);
    CHECK(diff > 1e-3, "a different dropout seed changes the gradient (%.3e)", diff);
    free(a), free(b);
    omp_set_num_threads(threads);
}

static void test_accumulation(void) {
    gc_encoder enc;
    CHECK_OK(make_toy(&enc, 11, DIM));
    variant v = {"", 2, 0, 0, 0, NULL};
    gc_engine_config cfg = engine_cfg(&v, 3, 8, 0, 5);
    gc_engine *e = NULL;
    CHECK_OK(gc_engine_create(&e, &cfg, &enc, &enc, NULL));
    if (!e) return;
    float *g1 = malloc(sizeof(float) * NPARAMS), *g2 = malloc(sizeof(float) * NPARAMS);
    float *avg = malloc(sizeof(float) * NPARAMS);
    float *g = gc_toy_grads(&enc);
    gc_step_stats s1, s2, h1, h2;
    CHECK_OK(gc_engine_step(e, &g_q[0].tb, &g_p[0].tb, BATCH, 2, 0, &s1));
    memcpy(g1, g, sizeof(float) * NPARAMS);
    CHECK_OK(gc_engine_step(e, &g_q[1].tb, &g_p[1].tb, BATCH, 2, 1, &s2));
    memcpy(g2, g, sizeof(float) * NPARAMS);
    for (int i = 0; i < NPARAMS; i++) avg[i] = 0.5f * (g1[i] + g2[i]);

    gc_step_options o = {0, 0.5f, 0};
    CHECK_OK(gc_engine_step_opts(e, &g_q[0].tb, &g_p[0].tb, BATCH, 2, 0, &o, &h1));
    o.accumulate = 1;
    CHECK_OK(gc_engine_step_opts(e, &g_q[1].tb, &g_p[1].tb, BATCH, 2, 1, &o, &h2));
    double err = norm_rel_err(g, avg, NPARAMS);
    printf("  two half-scaled accumulated calls vs average of single calls: %.2e\n", err);
    CHECK(err <= 1e-6, "accumulation differs by %.3e", err);
    CHECK(h1.loss == s1.loss && h2.loss == s2.loss, "stats.loss is unscaled");
    CHECK(fabs(h1.dlog_tau - 0.5 * s1.dlog_tau) <= 1e-9 * fabs(s1.dlog_tau) + 1e-12,
          "dlog_tau carries loss_scale: %.9g vs %.9g", h1.dlog_tau, 0.5 * s1.dlog_tau);
    CHECK(norm_rel_err(g1, g2, NPARAMS) > 1e-2, "the two batches differ");

    /* Without accumulate the second call replaces the first. */
    o.accumulate = 0;
    o.loss_scale = 0.0f; /* 0 means 1 */
    CHECK_OK(gc_engine_step_opts(e, &g_q[1].tb, &g_p[1].tb, BATCH, 2, 1, &o, &h2));
    CHECK(norm_rel_err(g, g2, NPARAMS) <= 1e-6, "a plain call zeroes first");
    free(g1), free(g2), free(avg);
    gc_engine_free(e);
    gc_encoder_free(&enc);
}

/* ------------------------------------------------------------------------------------------ */
/* Communicators for tests. */

/* Single process that counts calls; its all-reduce doubles, as two identical ranks would. */
typedef struct counting_comm {
    int gathers, reduces;
} counting_comm;

static int cc_rank(void *ctx) {
    (void)ctx;
    return 0;
}
static int cc_size(void *ctx) {
    (void)ctx;
    return 1;
}
static gc_status cc_gather(void *ctx, const float *local, size_t rows, size_t d, float *global) {
    ((counting_comm *)ctx)->gathers++;
    if (local != global) memmove(global, local, rows * d * sizeof(float));
    return GC_OK;
}
static gc_status cc_reduce(void *ctx, float *buf, size_t n, gc_mem where) {
    (void)where;
    ((counting_comm *)ctx)->reduces++;
    for (size_t i = 0; i < n; i++) buf[i] *= 2.0f;
    return GC_OK;
}
static const gc_comm_ops g_cc_ops = {cc_rank, cc_size, cc_gather, cc_reduce, NULL, NULL, NULL};

static void test_comm_seam(void) {
    variant v = {"", 2, 0, 0, 1, NULL};
    float *ref = malloc(sizeof(float) * 2 * NPARAMS);
    CHECK_OK(run_step(&v, 3, 8, 0, 5, ref, NULL));
    gc_encoder eq, ep;
    CHECK_OK(make_toy(&eq, 11, DIM));
    CHECK_OK(make_toy(&ep, 12, DIM));
    counting_comm cc = {0, 0};
    gc_comm comm = {&g_cc_ops, &cc};
    gc_engine_config cfg = engine_cfg(&v, 3, 8, 0, 5);
    gc_engine *e = NULL;
    CHECK_OK(gc_engine_create(&e, &cfg, &eq, &ep, &comm));
    if (!e) return;
    gc_step_options o = {0, 1.0f, 1};
    CHECK_OK(gc_engine_step_opts(e, &g_q[0].tb, &g_p[0].tb, BATCH, 2, 3, &o, NULL));
    CHECK(cc.gathers == 3 && cc.reduces == 0, "skip_reduce: %d gathers, %d reduces", cc.gathers,
          cc.reduces);
    CHECK(norm_rel_err(gc_toy_grads(&eq), ref, NPARAMS) <= 1e-6, "unreduced grads");
    CHECK_OK(gc_engine_reduce_grads(e));
    CHECK(cc.reduces == 2, "two towers reduce twice (%d)", cc.reduces);
    for (int i = 0; i < 2 * NPARAMS; i++) ref[i] *= 2.0f;
    CHECK(norm_rel_err(gc_toy_grads(&eq), ref, NPARAMS) <= 1e-6 &&
              norm_rel_err(gc_toy_grads(&ep), ref + NPARAMS, NPARAMS) <= 1e-6,
          "the reduction reaches both towers' gradients");
    gc_engine_free(e);
    gc_encoder_free(&ep);

    cc.gathers = cc.reduces = 0;
    CHECK_OK(gc_engine_create(&e, &cfg, &eq, &eq, &comm));
    CHECK_OK(gc_engine_step(e, &g_q[0].tb, &g_p[0].tb, BATCH, 0, 3, NULL));
    CHECK(cc.gathers == 2 && cc.reduces == 1, "shared, K=0: %d gathers, %d reduces", cc.gathers,
          cc.reduces);
    gc_engine_free(e);
    gc_encoder_free(&eq);
    free(ref);
}

/* Two ranks on two threads sharing a staging area; barriers order the exchanges. */
enum { NRANKS = 2, STAGE = 4096 };
typedef struct thread_world {
    pthread_barrier_t bar;
    float stage[NRANKS][STAGE];
    double dstage[NRANKS][STAGE];
} thread_world;

typedef struct thread_comm {
    thread_world *w;
    int rank;
} thread_comm;

static int tc_rank(void *ctx) {
    return ((thread_comm *)ctx)->rank;
}
static int tc_size(void *ctx) {
    (void)ctx;
    return NRANKS;
}
static gc_status tc_gather(void *ctx, const float *local, size_t rows, size_t d, float *global) {
    thread_comm *c = ctx;
    size_t n = rows * d;
    if (n > STAGE) return gc_set_error(GC_ERR_INTERNAL, "test comm: %zu floats to gather", n);
    memcpy(c->w->stage[c->rank], local, n * sizeof(float));
    pthread_barrier_wait(&c->w->bar);
    for (int r = 0; r < NRANKS; r++) memcpy(global + r * n, c->w->stage[r], n * sizeof(float));
    pthread_barrier_wait(&c->w->bar);
    return GC_OK;
}
static gc_status tc_reduce(void *ctx, float *buf, size_t n, gc_mem where) {
    (void)where;
    thread_comm *c = ctx;
    if (n > STAGE) return gc_set_error(GC_ERR_INTERNAL, "test comm: %zu floats to reduce", n);
    memcpy(c->w->stage[c->rank], buf, n * sizeof(float));
    pthread_barrier_wait(&c->w->bar);
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int r = 0; r < NRANKS; r++) s += c->w->stage[r][i];
        buf[i] = s;
    }
    pthread_barrier_wait(&c->w->bar);
    return GC_OK;
}
static gc_status tc_reduce_scatter(void *ctx, const float *in, float *out, size_t n) {
    thread_comm *c = ctx;
    if (n * NRANKS > STAGE)
        return gc_set_error(GC_ERR_INTERNAL, "test comm: %zu floats to reduce-scatter", n);
    memcpy(c->w->stage[c->rank], in, n * NRANKS * sizeof(float));
    pthread_barrier_wait(&c->w->bar);
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int r = 0; r < NRANKS; r++) s += c->w->stage[r][(size_t)c->rank * n + i];
        out[i] = s;
    }
    pthread_barrier_wait(&c->w->bar);
    return GC_OK;
}
static gc_status tc_reduce_f64(void *ctx, double *buf, size_t n, gc_comm_op op) {
    thread_comm *c = ctx;
    if (n > STAGE) return gc_set_error(GC_ERR_INTERNAL, "test comm: %zu doubles to reduce", n);
    memcpy(c->w->dstage[c->rank], buf, n * sizeof(double));
    pthread_barrier_wait(&c->w->bar);
    for (size_t i = 0; i < n; i++) {
        double s = c->w->dstage[0][i];
        for (int r = 1; r < NRANKS; r++) {
            double x = c->w->dstage[r][i];
            s = op == GC_COMM_MAX ? (x > s ? x : s) : s + x;
        }
        buf[i] = s;
    }
    pthread_barrier_wait(&c->w->bar);
    return GC_OK;
}
static gc_status tc_broadcast(void *ctx, void *buf, size_t bytes, int root) {
    thread_comm *c = ctx;
    if (bytes > sizeof c->w->dstage[0])
        return gc_set_error(GC_ERR_INTERNAL, "test comm: %zu bytes to broadcast", bytes);
    if (c->rank == root) memcpy(c->w->dstage[root], buf, bytes);
    pthread_barrier_wait(&c->w->bar);
    if (c->rank != root) memcpy(buf, c->w->dstage[root], bytes);
    pthread_barrier_wait(&c->w->bar);
    return GC_OK;
}
static const gc_comm_ops g_tc_ops = {tc_rank,           tc_size,       tc_gather,   tc_reduce,
                                     tc_reduce_scatter, tc_reduce_f64, tc_broadcast};

typedef struct rank_job {
    thread_comm comm;
    const variant *v;
    gc_status st;
    char msg[256];
    float grads[2 * NPARAMS];
    float qreps[BATCH * DIM], preps[MAXP * DIM];
    gc_step_stats stats;
} rank_job;

static size_t g_rank_budget; /* memory_budget of the two-rank runs (0: off) */

static void *rank_main(void *arg) {
    rank_job *j = arg;
    gc_encoder eq, ep;
    j->st = make_toy(&eq, 11, DIM);
    if (j->st == GC_OK) j->st = make_toy(&ep, 12, DIM);
    gc_encoder *penc = j->v->two_towers ? &ep : &eq;
    gc_comm comm = {&g_tc_ops, &j->comm};
    gc_engine_config cfg = engine_cfg(j->v, 3, 5, 0, 5);
    cfg.memory_budget = g_rank_budget;
    gc_engine *e = NULL;
    if (j->st == GC_OK) j->st = gc_engine_create(&e, &cfg, &eq, penc, &comm);
    /* every rank must reach every barrier, so a failure here would hang: check before */
    if (j->st == GC_OK)
        j->st = gc_engine_step(e, &g_q[0].tb, &g_p[0].tb, BATCH, j->v->K, 3, &j->stats);
    if (j->st == GC_OK) {
        memcpy(j->grads, gc_toy_grads(&eq), sizeof(float) * NPARAMS);
        memcpy(j->grads + NPARAMS, gc_toy_grads(penc), sizeof(float) * NPARAMS);
        /* (bf16 representations are not readable as floats: the ranks' gradients still are) */
        if (gc_engine_query_reps(e)) memcpy(j->qreps, gc_engine_query_reps(e), sizeof j->qreps);
        if (gc_engine_passage_reps(e))
            memcpy(j->preps, gc_engine_passage_reps(e),
                   sizeof(float) * BATCH * (1 + j->v->K) * DIM);
    }
    snprintf(j->msg, sizeof j->msg, "%s", gc_last_error());
    gc_engine_free(e);
    gc_encoder_free(&eq);
    gc_encoder_free(&ep);
    gc_matmul_cleanup(); /* the primitive cache is per thread */
    return NULL;
}

static void test_two_ranks(void) {
    static const variant variants[] = {{"two ranks, shared, K=2", 2, 0, 0, 0, NULL},
                                       {"two ranks, two towers, K=2, symmetric", 2, 1, 0, 1, NULL},
                                       {"two ranks, shared, K=0", 0, 0, 0, 0, NULL}};
    thread_world *w = malloc(sizeof *w);
    rank_job *jobs = malloc(sizeof(rank_job) * NRANKS);
    float *ref = malloc(sizeof(float) * 2 * NPARAMS);
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        gc_step_stats sref;
        CHECK_OK(run_step(&variants[v], BATCH, BATCH, 1, 5, ref, &sref));
        pthread_barrier_init(&w->bar, NULL, NRANKS);
        pthread_t th[NRANKS];
        for (int r = 0; r < NRANKS; r++) {
            jobs[r].comm = (thread_comm){w, r};
            jobs[r].v = &variants[v];
            pthread_create(&th[r], NULL, rank_main, &jobs[r]);
        }
        for (int r = 0; r < NRANKS; r++) pthread_join(th[r], NULL);
        pthread_barrier_destroy(&w->bar);
        double worst[10] = {0}, m = 0.0;
        for (int r = 0; r < NRANKS; r++) {
            CHECK(jobs[r].st == GC_OK, "rank %d: %s", r, jobs[r].msg);
            double err = tensor_errors(jobs[r].grads, ref, worst);
            if (err > m) m = err;
            CHECK(fabs(jobs[r].stats.loss - sref.loss) <= 1e-6 * fabs(sref.loss),
                  "rank %d loss %.9g vs %.9g", r, jobs[r].stats.loss, sref.loss);
        }
        CHECK(m <= 1e-5, "%s: gradient differs from one process by %.3e", variants[v].name, m);
        CHECK(memcmp(jobs[0].preps, jobs[1].preps,
                     sizeof(float) * BATCH * (1 + variants[v].K) * DIM) == 0 &&
                  memcmp(jobs[0].qreps, jobs[1].qreps, sizeof jobs[0].qreps) == 0,
              "ranks gather the same representations");
        printf("  %-40s max per-tensor err vs one process %.2e\n", variants[v].name, m);
    }
    free(ref), free(jobs), free(w);
}

/* ------------------------------------------------------------------------------------------ */
/* bf16 representations: chunk sizes still give the whole-batch bf16 gradient (each example's
 * representation is rounded on its own), at least 10x closer than that is to the float one. */
static void test_bf16_reps(void) {
    static const variant variants[] = {
        {"bf16 reps, shared, K=2", 2, 0, 0, 0, NULL},
        {"bf16 reps, two towers, K=2, sym, cos", 2, 1, 1, 1, NULL},
        {"bf16 reps, shared, matryoshka 8,4:0.5,2", 2, 0, 0, 0, "8,4:0.5,2"},
    };
    static const int chunks[][2] = {{1, 1}, {3, 3}, {16, 16}, {3, BATCH}, {8, 1}};
    float *ref = malloc(sizeof(float) * 2 * NPARAMS), *f32 = malloc(sizeof(float) * 2 * NPARAMS);
    float *g = malloc(sizeof(float) * 2 * NPARAMS);
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const variant *var = &variants[v];
        gc_step_stats sref, s32, s;
        g_reps_bf16 = 0;
        CHECK_OK(run_step(var, BATCH, BATCH, 1, 5, f32, &s32));
        g_reps_bf16 = 1;
        CHECK_OK(run_step(var, BATCH, BATCH, 1, 5, ref, &sref));
        double w32[10] = {0}, wc[10] = {0}, chunk_err = 0;
        double e32 = tensor_errors(ref, f32, w32);
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            CHECK_OK(run_step(var, chunks[c][0], chunks[c][1], 0, 5, g, &s));
            double err = tensor_errors(g, ref, wc);
            if (err > chunk_err) chunk_err = err;
            CHECK(fabs(s.loss - sref.loss) <= 1e-6 * fabs(sref.loss), "%s: loss %.9g vs %.9g",
                  var->name, s.loss, sref.loss);
        }
        CHECK(chunk_err <= 1e-5, "%s: chunked bf16 gradient differs from the whole batch's by %.3e",
              var->name, chunk_err);
        CHECK(chunk_err * 10 <= e32,
              "%s: chunking moves the bf16 gradient %.3e, bf16 vs float %.3e", var->name, chunk_err,
              e32);
        printf("  %-40s chunked vs whole (bf16) %.2e; bf16 vs float %.2e; loss %.6f vs %.6f\n",
               var->name, chunk_err, e32, sref.loss, s32.loss);
    }
    g_reps_bf16 = 0;
    free(ref), free(f32), free(g);
}

/* What one more pair costs the engine: its buffers at two batch sizes (planner off, chunk 8,
 * K = 0, symmetric). Only the representations (2 d elements a pair) and the loss's statistics
 * (under 72 bytes a pair) may grow: no gradient of the whole batch is held. */
static void test_pair_bytes(void) {
    const variant var = {"pair bytes", 0, 1, 0, 0, NULL};
    for (int bf = 0; bf < 2; bf++) {
        size_t bytes[2];
        const int batch[2] = {2048, 4096};
        for (int i = 0; i < 2; i++) {
            gc_encoder enc;
            CHECK_OK(make_toy(&enc, 11, DIM));
            gc_engine_config cfg = engine_cfg(&var, 8, 8, 0, 5);
            cfg.max_batch = batch[i];
            cfg.max_negatives = 0;
            cfg.reps_bf16 = bf;
            gc_engine *e = NULL;
            gc_engine_plan p;
            CHECK_OK(gc_engine_create(&e, &cfg, &enc, &enc, NULL));
            CHECK_OK(gc_engine_get_plan(e, &p));
            bytes[i] = p.engine_bytes;
            gc_engine_free(e);
            gc_encoder_free(&enc);
        }
        double per = (double)(bytes[1] - bytes[0]) / (batch[1] - batch[0]);
        double reps = 2.0 * DIM * (bf ? 2 : 4);
        printf("  engine bytes a pair (%s representations): %.1f (representations %.0f)\n",
               bf ? "bf16" : "float", per, reps);
        CHECK(per <= reps + 72, "%s: %.1f bytes a pair, more than %.0f + 72", bf ? "bf16" : "float",
              per, reps);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The memory-budget planner: kept pass-1 chunks give the same gradient as re-encoded ones, and
 * the encoder calls say which chunks were re-encoded. */

typedef struct counting {
    gc_encoder inner;
    int encode, forward, backward;
} counting;

static int ct_dim(void *ctx) {
    counting *c = ctx;
    return c->inner.ops->dim(c->inner.ctx);
}
static gc_status ct_reserve(void *ctx, const gc_encoder_reserve *r) {
    counting *c = ctx;
    return c->inner.ops->reserve(c->inner.ctx, r);
}
static gc_status ct_encode(void *ctx, const gc_encode_args *a, float *reps) {
    counting *c = ctx;
    c->encode++;
    return c->inner.ops->encode(c->inner.ctx, a, reps);
}
static gc_status ct_forward(void *ctx, const gc_encode_args *a, float *reps) {
    counting *c = ctx;
    c->forward++;
    return c->inner.ops->forward(c->inner.ctx, a, reps);
}
static gc_status ct_backward(void *ctx, const gc_encode_args *a, const float *dreps) {
    counting *c = ctx;
    c->backward++;
    return c->inner.ops->backward(c->inner.ctx, a, dreps);
}
static gc_param_store ct_store(void *ctx) {
    counting *c = ctx;
    return c->inner.ops->store(c->inner.ctx);
}
static void ct_free(void *ctx) {
    (void)ctx;
}
static size_t ct_reserve_bytes(void *ctx, const gc_encoder_reserve *r) {
    counting *c = ctx;
    return c->inner.ops->reserve_bytes(c->inner.ctx, r);
}
static const gc_encoder_ops g_ct_ops = {ct_dim,      ct_reserve, ct_encode, ct_forward,
                                        ct_backward, ct_store,   ct_free,   ct_reserve_bytes};

/* One step with the planner at `budget` (0: off) through counting wrappers; calls[3] gets
 * encode/forward/backward summed over the encoders, plan the engine's plan. Returns the
 * create or step status. */
static gc_status run_planned(const variant *v, int qc, int pc, size_t budget, float *grads,
                             gc_step_stats *stats, int calls[3], gc_engine_plan *plan) {
    /* toys that start with the least, so what the engine reserves is what they hold */
    gc_toy_config c1 = {VOCAB, EMBED, HIDDEN, DIM, 0.1f, 1, 1, MAXP * 8, 11}, c2 = c1;
    c2.init_seed = 12;
    gc_encoder tq, tp;
    gc_status st = gc_toy_encoder_create(&tq, &c1);
    if (st != GC_OK) return st;
    if (v->two_towers && (st = gc_toy_encoder_create(&tp, &c2)) != GC_OK) return st;
    counting cq = {tq, 0, 0, 0}, cp = {v->two_towers ? tp : tq, 0, 0, 0};
    gc_encoder eq = {&g_ct_ops, &cq}, ep = {&g_ct_ops, &cp};
    gc_encoder *penc = v->two_towers ? &ep : &eq;
    gc_engine *e = NULL;
    gc_engine_config cfg = engine_cfg(v, qc, pc, 0, 5);
    cfg.memory_budget = budget;
    st = gc_engine_create(&e, &cfg, &eq, penc, NULL);
    if (st == GC_OK) st = gc_engine_get_plan(e, plan);
    if (st == GC_OK) st = gc_engine_step(e, &g_q[0].tb, &g_p[0].tb, BATCH, v->K, 3, stats);
    if (st == GC_OK) {
        memcpy(grads, gc_toy_grads(&tq), sizeof(float) * NPARAMS);
        memcpy(grads + NPARAMS, gc_toy_grads(v->two_towers ? &tp : &tq), sizeof(float) * NPARAMS);
    }
    calls[0] = cq.encode + (v->two_towers ? cp.encode : 0);
    calls[1] = cq.forward + (v->two_towers ? cp.forward : 0);
    calls[2] = cq.backward + (v->two_towers ? cp.backward : 0);
    gc_engine_free(e);
    gc_encoder_free(&tq);
    if (v->two_towers) gc_encoder_free(&tp);
    return st;
}

static void test_memory_budget(void) {
    static const variant variants[] = {
        {"shared, K=2", 2, 0, 0, 0, NULL},
        {"two towers, K=2, symmetric", 2, 1, 0, 1, NULL},
        {"shared, K=2, matryoshka 8,4:0.5,2", 2, 0, 0, 0, "8,4:0.5,2"},
    };
    float *ref = malloc(sizeof(float) * 2 * NPARAMS), *g = malloc(sizeof(float) * 2 * NPARAMS);
    for (size_t vi = 0; vi < sizeof variants / sizeof variants[0]; vi++) {
        const variant *v = &variants[vi];
        gc_step_stats sref, s;
        gc_engine_plan plan;
        int calls[3];
        CHECK_OK(run_planned(v, 3, 5, 0, ref, &sref, calls, &plan));
        CHECK(plan.budget == 0 && plan.peak_bytes > 0, "%s: plan without a budget", v->name);
        /* the smallest budget that plans: a bisection over create's answer */
        size_t lo = 1, hi = (size_t)1 << 40;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            gc_clear_error();
            if (run_planned(v, 3, 5, mid, g, &s, calls, &plan) == GC_OK)
                hi = mid;
            else
                lo = mid + 1;
        }
        CHECK_OK(run_planned(v, 3, 5, (size_t)1 << 40, g, &s, calls, &plan));
        size_t full = plan.peak_bytes;
        size_t budgets[3] = {lo, lo + (full - lo) / 2, (size_t)1 << 40};
        for (int b = 0; b < 3; b++) {
            CHECK_OK(run_planned(v, 3, 5, budgets[b], g, &s, calls, &plan));
            int n = plan.query_chunks + plan.passage_chunks,
                kept = plan.kept_query + plan.kept_passage;
            double err = tensor_errors(g, ref, (double[10]){0});
            CHECK(err <= 1e-6, "%s, budget %zu: gradient differs by %.3e", v->name, budgets[b],
                  err);
            CHECK(fabs(s.loss - sref.loss) <= 1e-6 * fabs(sref.loss), "%s: loss", v->name);
            CHECK(plan.peak_bytes <= budgets[b], "%s: peak %zu over budget %zu", v->name,
                  plan.peak_bytes, budgets[b]);
            CHECK(kept >= 1, "%s: the last chunk of pass 1 is kept", v->name);
            CHECK(calls[0] == n - kept && calls[1] == n && calls[2] == n,
                  "%s, budget %zu: %d encode, %d forward, %d backward calls for %d chunks, %d "
                  "kept",
                  v->name, budgets[b], calls[0], calls[1], calls[2], n, kept);
            if (b == 2)
                CHECK(kept == n && calls[0] == 0, "%s: a budget that holds the batch re-encodes",
                      v->name);
            if (b == 0) CHECK(kept < n, "%s: the smallest budget keeps every chunk", v->name);
            printf("  %-36s budget %8zu: %d of %d chunks kept, %d encode calls, err %.1e\n",
                   v->name, budgets[b], kept, n, calls[0], err);
        }
        /* chunk sizes chosen: the whole batch fits, so nothing is re-encoded */
        CHECK_OK(run_planned(v, 0, 0, (size_t)1 << 40, g, &s, calls, &plan));
        CHECK(plan.query_chunk == BATCH && plan.passage_chunk == GC_ENGINE_PLAN_MAX_CHUNK,
              "%s: chosen chunks %d/%d", v->name, plan.query_chunk, plan.passage_chunk);
        CHECK(calls[0] == 0 && plan.reencoded_examples == 0, "%s: chosen plan re-encodes", v->name);
        CHECK(tensor_errors(g, ref, (double[10]){0}) <= 1e-6, "%s: chosen-chunk gradient", v->name);
        gc_clear_error();
        CHECK(run_planned(v, 0, 0, 1000, g, &s, calls, &plan) == GC_ERR_INVALID_ARG &&
                  strstr(gc_last_error(), "too small"),
              "%s: budget below one chunk of one example: %s", v->name, gc_last_error());
    }
    free(ref), free(g);
}

/* ------------------------------------------------------------------------------------------ */

#define CHECK_REFUSED(expr, what)                                                                  \
    do {                                                                                           \
        gc_clear_error();                                                                          \
        gc_status st_r = (expr);                                                                   \
        CHECK(st_r != GC_OK && gc_last_error()[0], "%s: status %d, message '%s'", what, (int)st_r, \
              gc_last_error());                                                                    \
        printf("  refused %-28s %s\n", what, gc_last_error());                                     \
    } while (0)

static void test_bad_calls(void) {
    gc_encoder eq, e6, broken = {NULL, NULL};
    CHECK_OK(make_toy(&eq, 11, DIM));
    CHECK_OK(make_toy(&e6, 13, 6));
    variant v = {"", 0, 0, 0, 0, NULL};
    gc_engine_config good = engine_cfg(&v, 3, 8, 0, 5), c;
    gc_engine *e = NULL;

    CHECK_REFUSED(gc_engine_create(NULL, &good, &eq, &eq, NULL), "NULL engine pointer");
    CHECK_REFUSED(gc_engine_create(&e, NULL, &eq, &eq, NULL), "NULL config");
    CHECK_REFUSED(gc_engine_create(&e, &good, NULL, &eq, NULL), "NULL query encoder");
    CHECK_REFUSED(gc_engine_create(&e, &good, &eq, NULL, NULL), "NULL passage encoder");
    CHECK_REFUSED(gc_engine_create(&e, &good, &broken, &eq, NULL), "encoder without ops");
    CHECK_REFUSED(gc_engine_create(&e, &good, &eq, &e6, NULL), "towers of different dim");
    c = good, c.query_chunk = 0;
    CHECK_REFUSED(gc_engine_create(&e, &c, &eq, &eq, NULL), "query chunk 0");
    c = good, c.passage_chunk = -2;
    CHECK_REFUSED(gc_engine_create(&e, &c, &eq, &eq, NULL), "passage chunk -2");
    c = good, c.max_batch = 0;
    CHECK_REFUSED(gc_engine_create(&e, &c, &eq, &eq, NULL), "max_batch 0");
    c = good, c.max_len = 0;
    CHECK_REFUSED(gc_engine_create(&e, &c, &eq, &eq, NULL), "max_len 0");
    c = good, c.max_negatives = -1;
    CHECK_REFUSED(gc_engine_create(&e, &c, &eq, &eq, NULL), "max_negatives -1");
    c = good, c.loss.temperature = 0.0f;
    CHECK_REFUSED(gc_engine_create(&e, &c, &eq, &eq, NULL), "temperature 0");
    c = good, c.loss.temperature = NAN;
    CHECK_REFUSED(gc_engine_create(&e, &c, &eq, &eq, NULL), "temperature NaN");
    CHECK(e == NULL, "no engine from refused creates");

    CHECK_OK(gc_engine_create(&e, &good, &eq, &eq, NULL));
    if (!e) return;
    const void *q = &g_q[0].tb, *p = &g_p[0].tb;
    gc_step_stats s;
    CHECK_REFUSED(gc_engine_step(NULL, q, p, BATCH, 0, 0, &s), "step on NULL engine");
    CHECK_REFUSED(gc_engine_step(e, NULL, p, BATCH, 0, 0, &s), "NULL queries");
    CHECK_REFUSED(gc_engine_step(e, q, NULL, BATCH, 0, 0, &s), "NULL passages");
    CHECK_REFUSED(gc_engine_step(e, q, p, 0, 0, 0, &s), "B = 0");
    CHECK_REFUSED(gc_engine_step(e, q, p, BATCH + 1, 0, 0, &s), "B > max_batch");
    CHECK_REFUSED(gc_engine_step(e, q, p, BATCH, -1, 0, &s), "K = -1");
    CHECK_REFUSED(gc_engine_step(e, q, p, BATCH, MAXK + 1, 0, &s), "K > max_negatives");
    gc_engine_set_temperature(e, -1.0f);
    CHECK_REFUSED(gc_engine_step(e, q, p, BATCH, 0, 0, &s), "temperature -1");
    gc_engine_set_temperature(e, 0.1f);
    /* An encoder failure comes back with the engine's context and the encoder's reason. */
    side_data *bad = malloc(sizeof *bad);
    *bad = g_q[0];
    bad->tb.ids = bad->ids, bad->tb.offsets = bad->offsets;
    bad->ids[bad->offsets[7]] = VOCAB + 4;
    CHECK_REFUSED(gc_engine_step(e, &bad->tb, p, BATCH, 0, 0, &s), "token id outside vocab");
    CHECK(strstr(gc_last_error(), "vocab") != NULL, "message names the cause");
    bad->tb.n = 4; /* fewer sequences than B */
    CHECK_REFUSED(gc_engine_step(e, &bad->tb, p, BATCH, 0, 0, &s), "too few sequences");
    free(bad);
    gc_engine_reduce_grads(NULL);
    CHECK_OK(gc_engine_step(e, q, p, BATCH, 0, 0, &s)); /* still usable */
    gc_engine_free(e);

    /* No-cache mode on a shared encoder created with one slot and a chunk of 2: the engine's
     * reservation gives it the two slots and whole sides it needs (callers never restate the
     * rule). */
    gc_encoder one;
    gc_toy_config tc = {VOCAB, EMBED, HIDDEN, DIM, 0.1f, 2, 1, 16, 11};
    CHECK_OK(gc_toy_encoder_create(&one, &tc));
    c = good, c.no_cache = 1;
    CHECK_OK(gc_engine_create(&e, &c, &one, &one, NULL));
    CHECK_OK(gc_engine_step(e, q, p, BATCH, 0, 0, &s));
    CHECK(gc_engine_reserved_count(e, 1) == BATCH * (1 + MAXK),
          "no-cache reserves the whole side (%d)", gc_engine_reserved_count(e, 1));
    gc_engine_free(e);
    /* and it refuses a step the encoder was never reserved for */
    gc_encoder small;
    tc.max_chunk = 2, tc.slots = 1;
    CHECK_OK(gc_toy_encoder_create(&small, &tc));
    gc_encode_args big = {q, 0, 0, 4, 1, 0, 5, 0};
    float reps[4 * DIM];
    CHECK_REFUSED(small.ops->forward(small.ctx, &big, reps), "a chunk beyond the reservation");
    gc_encoder_free(&small);
    gc_engine_free(NULL);
    gc_encoder_free(&one);
    gc_encoder_free(&eq);
    gc_encoder_free(&e6);
}

int main(void) {
    for (int b = 0; b < 2; b++) {
        make_side(&g_q[b], BATCH, 100 + b, 0);
        make_side(&g_p[b], MAXP, 100 + b, 1);
    }
    test_cache_equals_no_cache();
    const variant plain = {"symmetric, K=2", 2, 1, 0, 0, NULL};
    const variant mat = {"symmetric, K=2, matryoshka 8,6:0.5,4", 2, 1, 0, 0, "8,6:0.5,4"};
    test_finite_differences(&plain);
    test_finite_differences(&mat);
    test_determinism();
    test_accumulation();
    test_comm_seam();
    test_two_ranks();
    g_rank_budget = (size_t)1 << 40;
    test_two_ranks(); /* with the planner keeping every chunk */
    g_reps_bf16 = 1;
    g_rank_budget = 0;
    test_two_ranks(); /* bf16 representations gathered as pairs of floats */
    g_reps_bf16 = 0;
    test_bf16_reps();
    test_pair_bytes();
    test_memory_budget();
    test_bad_calls();
    gc_matmul_cleanup();
    return test_summary("test_engine");
}

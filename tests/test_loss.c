/* test_loss.c: the InfoNCE loss. The double reference against central finite differences,
 * the float reference against the double one, the tiled gc_infonce against the dense
 * reference over batch sizes, tile sizes that do not divide them, hard negatives, symmetric
 * and cosine variants, the two halves (gc_infonce_stats, gc_infonce_rep_grad) against the dense
 * reference and across thread counts (the same bits), numerical stability (large scale,
 * duplicated rows) and bad calls. */
#include "gc_testing.h"
#include "test_util.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

static unsigned g_seed = 12345u;

static double urand(void) { /* uniform in [-1, 1) */
    g_seed = g_seed * 1664525u + 1013904223u;
    return (double)((g_seed >> 8) & 0xFFFFFF) / 8388608.0 - 1.0;
}

static void fill(float *x, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * urand());
}

/* Positives near their queries so the accuracy is neither 0 nor 1. */
static void make_pair(float *q, float *p, int B, int P, int d, double scale) {
    fill(q, (size_t)B * d, scale);
    fill(p, (size_t)P * d, scale);
    for (size_t i = 0; i < (size_t)B * d; i++) p[i] = 0.5f * p[i] + q[i];
}

static double max_abs_diff_d(const double *a, const double *b, size_t n, double *ref_max) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (e > md || e != e) md = e;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    *ref_max = mb;
    return md;
}

static double rel(double a, double b) {
    double e = fabs(a - b) / fmax(fabs(b), 1e-12);
    return e == e ? e : INFINITY;
}

/* ------------------------------------------------------------------------------------------ */

/* The double reference against central differences of itself. */
static void test_finite_differences(void) {
    static const struct {
        const char *name;
        int B, K, sym, cosine;
        float tau;
    } cases[] = {
        {"in-batch", 4, 0, 0, 0, 0.5f},  {"hard negatives K=2", 3, 2, 0, 0, 0.5f},
        {"symmetric", 4, 0, 1, 0, 0.7f}, {"symmetric K=2", 3, 2, 1, 0, 0.7f},
        {"cosine", 4, 0, 0, 1, 0.1f},    {"cosine symmetric K=2", 3, 2, 1, 1, 0.05f},
    };
    const int d = 5;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int B = cases[c].B, P = B * (1 + cases[c].K);
        gc_loss_config cfg = {cases[c].tau, cases[c].sym, cases[c].cosine, 0};
        double *q = malloc(sizeof(double) * B * d), *p = malloc(sizeof(double) * P * d);
        double *dq = malloc(sizeof(double) * B * d), *dp = malloc(sizeof(double) * P * d);
        double *fq = malloc(sizeof(double) * B * d), *fp = malloc(sizeof(double) * P * d);
        for (int i = 0; i < B * d; i++) q[i] = urand();
        for (int i = 0; i < P * d; i++) p[i] = urand() + (i < B * d ? q[i] : 0);
        double loss, dlt, lp, lm;
        CHECK_OK(gc_infonce_ref_f64(q, p, B, P, d, &cfg, &loss, dq, dp, &dlt));
        const double h = 1e-5;
        for (int which = 0; which < 2; which++) {
            double *x = which ? p : q, *fd = which ? fp : fq;
            int n = (which ? P : B) * d;
            for (int k = 0; k < n; k++) {
                double x0 = x[k];
                x[k] = x0 + h;
                gc_infonce_ref_f64(q, p, B, P, d, &cfg, &lp, NULL, NULL, NULL);
                x[k] = x0 - h;
                gc_infonce_ref_f64(q, p, B, P, d, &cfg, &lm, NULL, NULL, NULL);
                x[k] = x0;
                fd[k] = (lp - lm) / (2 * h);
            }
        }
        /* log tau: the temperature is a float, so take the secant between two float
         * temperatures around tau and divide by their actual log distance */
        gc_loss_config c1 = cfg, c2 = cfg;
        c1.temperature = (float)(cfg.temperature * exp(1e-3));
        c2.temperature = (float)(cfg.temperature * exp(-1e-3));
        CHECK_OK(gc_infonce_ref_f64(q, p, B, P, d, &c1, &lp, NULL, NULL, NULL));
        CHECK_OK(gc_infonce_ref_f64(q, p, B, P, d, &c2, &lm, NULL, NULL, NULL));
        double fd_tau = (lp - lm) / (log((double)c1.temperature) - log((double)c2.temperature));
        double mq, mp;
        double eq = max_abs_diff_d(dq, fq, (size_t)B * d, &mq) / mq;
        double ep = max_abs_diff_d(dp, fp, (size_t)P * d, &mp) / mp;
        double et = rel(dlt, fd_tau);
        printf("finite differences, %-22s loss %.6f  dq %.2e  dp %.2e  dlog_tau %.2e (%.5f)\n",
               cases[c].name, loss, eq, ep, et, dlt);
        CHECK(eq < 1e-7, "%s: dq vs finite differences %.3g", cases[c].name, eq);
        CHECK(ep < 1e-7, "%s: dp vs finite differences %.3g", cases[c].name, ep);
        CHECK(et < 1e-5, "%s: dlog_tau %.9g vs finite differences %.9g", cases[c].name, dlt,
              fd_tau);
        free(q), free(p), free(dq), free(dp), free(fq), free(fp);
    }
}

/* ------------------------------------------------------------------------------------------ */

/* The float API of the reference is the double one on widened inputs. */
static void test_ref_float_vs_double(void) {
    const int B = 9, K = 2, P = B * (1 + K), d = 7;
    float *q = malloc(sizeof(float) * B * d), *p = malloc(sizeof(float) * P * d);
    float *dq = malloc(sizeof(float) * B * d), *dp = malloc(sizeof(float) * P * d);
    double *qd = malloc(sizeof(double) * B * d), *pd = malloc(sizeof(double) * P * d);
    double *dqd = malloc(sizeof(double) * B * d), *dpd = malloc(sizeof(double) * P * d);
    float *dqr = malloc(sizeof(float) * B * d), *dpr = malloc(sizeof(float) * P * d);
    make_pair(q, p, B, P, d, 1.0);
    for (int i = 0; i < B * d; i++) qd[i] = q[i];
    for (int i = 0; i < P * d; i++) pd[i] = p[i];
    double worst = 0;
    for (int v = 0; v < 4; v++) {
        gc_loss_config cfg = {0.2f, v & 1, v >> 1, 0};
        gc_loss_out o;
        double loss, dlt;
        CHECK_OK(gc_infonce_ref(q, p, B, P, d, &cfg, &o, dq, dp));
        CHECK_OK(gc_infonce_ref_f64(qd, pd, B, P, d, &cfg, &loss, dqd, dpd, &dlt));
        for (int i = 0; i < B * d; i++) dqr[i] = (float)dqd[i];
        for (int i = 0; i < P * d; i++) dpr[i] = (float)dpd[i];
        double e[4] = {rel(o.loss, loss), rel(o.dlog_tau, dlt), max_rel_err(dq, dqr, B * d),
                       max_rel_err(dp, dpr, P * d)};
        for (int k = 0; k < 4; k++) {
            CHECK(e[k] < 1e-7, "variant %d quantity %d: %.3g", v, k, e[k]);
            worst = fmax(worst, e[k]);
        }
        CHECK(o.accuracy >= 0 && o.accuracy <= 1, "accuracy %g", o.accuracy);
    }
    printf("float reference vs double reference: max error %.2e\n", worst);
    free(q), free(p), free(dq), free(dp), free(qd), free(pd), free(dqd), free(dpd), free(dqr),
        free(dpr);
}

/* ------------------------------------------------------------------------------------------ */

typedef struct errs {
    double loss, dq, dp, dlt, acc;
} errs;

/* gc_infonce against precomputed reference results; returns the errors. */
static errs compare_tiled(const float *q, const float *p, int B, int P, int d,
                          const gc_loss_config *cfg, const gc_loss_out *ro, const float *rdq,
                          const float *rdp, int own_workspace) {
    float *dq = malloc(sizeof(float) * B * d), *dp = malloc(sizeof(float) * (size_t)P * d);
    void *ws = NULL;
    if (own_workspace) {
        size_t n = gc_infonce_workspace_size(B, P, d, cfg);
        CHECK(n > 0, "workspace size");
        ws = malloc(n);
    }
    /* stale values must be overwritten, not accumulated into */
    for (size_t i = 0; i < (size_t)B * d; i++) dq[i] = 1e3f;
    for (size_t i = 0; i < (size_t)P * d; i++) dp[i] = -1e3f;
    gc_loss_out o = {0};
    errs e = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
    gc_status st = gc_infonce(q, p, B, P, d, cfg, &o, dq, dp, ws);
    CHECK(st == GC_OK, "gc_infonce B=%d P=%d tile=%d: %s", B, P, cfg->tile, gc_last_error());
    if (st == GC_OK) {
        e.loss = rel(o.loss, ro->loss);
        e.dlt = rel(o.dlog_tau, ro->dlog_tau);
        e.dq = max_rel_err(dq, rdq, (size_t)B * d);
        e.dp = max_rel_err(dp, rdp, (size_t)P * d);
        e.acc = fabs(o.accuracy - ro->accuracy);
    }
    free(dq), free(dp), free(ws);
    return e;
}

static void test_tiled_vs_dense(void) {
    const int batches[] = {1, 7, 64, 1000};
    const int tiles[] = {3, 5, 100, 256, 333, 0}; /* 0: the default */
    const int d = 24;
    errs worst = {0, 0, 0, 0, 0};
    int runs = 0;
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++)
        for (int K = 0; K <= 2; K += 2)
            for (int v = 0; v < 4; v++) {
                const int B = batches[bi], P = B * (1 + K);
                gc_loss_config cfg = {v & 2 ? 0.05f : 0.3f, v & 1, v >> 1, 0};
                float *q = malloc(sizeof(float) * B * d), *p = malloc(sizeof(float) * P * d);
                float *rdq = malloc(sizeof(float) * B * d), *rdp = malloc(sizeof(float) * P * d);
                make_pair(q, p, B, P, d, v & 2 ? 1.0 : 0.4);
                gc_loss_out ro;
                CHECK_OK(gc_infonce_ref(q, p, B, P, d, &cfg, &ro, rdq, rdp));
                errs bw = {0, 0, 0, 0, 0};
                for (size_t ti = 0; ti < sizeof tiles / sizeof tiles[0]; ti++) {
                    cfg.tile = tiles[ti];
                    /* tiny tiles over the largest batch only cost time */
                    if (cfg.tile > 0 && (double)B * P / ((double)cfg.tile * cfg.tile) > 20000)
                        continue;
                    errs e = compare_tiled(q, p, B, P, d, &cfg, &ro, rdq, rdp, (int)(ti & 1));
                    runs++;
                    CHECK(e.loss <= 1e-5 && e.dq <= 1e-5 && e.dp <= 1e-5 && e.dlt <= 1e-5,
                          "B=%d K=%d sym=%d cos=%d tile=%d: loss %.3g dq %.3g dp %.3g "
                          "dlog_tau %.3g",
                          B, K, cfg.symmetric, cfg.cosine, cfg.tile, e.loss, e.dq, e.dp, e.dlt);
                    /* a near tie may flip one query between float and double scores */
                    CHECK(e.acc <= 1.0 / B + 1e-12, "B=%d accuracy off by %g", B, e.acc);
                    bw.loss = fmax(bw.loss, e.loss), bw.dq = fmax(bw.dq, e.dq);
                    bw.dp = fmax(bw.dp, e.dp), bw.dlt = fmax(bw.dlt, e.dlt);
                    bw.acc = fmax(bw.acc, e.acc);
                }
                printf("tiled vs dense B=%-4d K=%d sym=%d cos=%d: loss %.2e dq %.2e dp %.2e "
                       "dlog_tau %.2e accuracy %.3f (diff %.3f)\n",
                       B, K, cfg.symmetric, cfg.cosine, bw.loss, bw.dq, bw.dp, bw.dlt, ro.accuracy,
                       bw.acc);
                worst.loss = fmax(worst.loss, bw.loss), worst.dq = fmax(worst.dq, bw.dq);
                worst.dp = fmax(worst.dp, bw.dp), worst.dlt = fmax(worst.dlt, bw.dlt);
                free(q), free(p), free(rdq), free(rdp);
            }
    printf("tiled vs dense, %d runs: max errors loss %.2e dq %.2e dp %.2e dlog_tau %.2e\n", runs,
           worst.loss, worst.dq, worst.dp, worst.dlt);
}

/* The loss in two halves (gc_infonce_stats, then gc_infonce_rep_grad over groups of rows of
 * uneven sizes) against the dense reference: float views read in place and strided (a prefix of
 * wider rows), and bf16 views against the reference on the same values widened. */
static void split_grads(const gc_rep_view *v, int B, int P, int d, const gc_loss_config *cfg,
                        gc_loss_out *o, float *dq, float *dp) {
    size_t n = gc_infonce_stats_workspace_size(B, P, d, B, 0, cfg);
    CHECK(n > 0, "stats workspace size");
    void *ws = malloc(n);
    memset(ws, 0xA5, n); /* stale bytes must not matter */
    gc_status st = gc_infonce_stats(v, B, P, d, cfg, NULL, o, ws);
    CHECK(st == GC_OK, "gc_infonce_stats B=%d P=%d: %s", B, P, gc_last_error());
    static const int groups[] = {1, 3, 16, 5, 64};
    for (int side = 0; side < 2 && st == GC_OK; side++) {
        int n_side = side ? P : B, g = 0;
        float *out = side ? dp : dq;
        for (int i = 0; i < n_side && st == GC_OK; g++) {
            int c = groups[g % 5] < n_side - i ? groups[g % 5] : n_side - i;
            for (size_t k = 0; k < (size_t)c * d; k++) out[(size_t)i * d + k] = 1e3f; /* stale */
            st = gc_infonce_rep_grad(v, side, i, c, 1.0f, out + (size_t)i * d, ws);
            CHECK(st == GC_OK, "gc_infonce_rep_grad side %d [%d, %d): %s", side, i, i + c,
                  gc_last_error());
            i += c;
        }
    }
    free(ws);
}

/* The two halves give the same bits whatever the thread count: each row's (and each positive
 * column's) statistics and each gradient row are summed by one thread in a fixed order. Many
 * row blocks, partial tiles, hard negatives, both score kinds, float and bf16 views. */
static void split_run(const gc_rep_view *v, int B, int P, int d, const gc_loss_config *cfg,
                      int threads, gc_loss_out *o, float *dq, float *dp) {
    omp_set_num_threads(threads);
    size_t n = gc_infonce_stats_workspace_size(B, P, d, B, 0, cfg);
    void *ws = malloc(n);
    CHECK(ws != NULL, "workspace");
    memset(ws, 0x5A, n);
    CHECK_OK(gc_infonce_stats(v, B, P, d, cfg, NULL, o, ws));
    CHECK_OK(gc_infonce_rep_grad(v, 0, 0, B, 1.0f, dq, ws));
    CHECK_OK(gc_infonce_rep_grad(v, 1, 0, P, 1.0f, dp, ws));
    free(ws);
}

static void test_split_threads(void) {
    const int B = 700, P = 1400, d = 24;
    float *q = malloc(sizeof(float) * B * d), *p = malloc(sizeof(float) * P * d);
    uint16_t *qh = malloc(sizeof(uint16_t) * B * d), *ph = malloc(sizeof(uint16_t) * P * d);
    float *g[2][2];
    for (int r = 0; r < 2; r++)
        g[r][0] = malloc(sizeof(float) * B * d), g[r][1] = malloc(sizeof(float) * P * d);
    make_pair(q, p, B, P, d, 0.5);
    gc_bf16_from_f32(qh, q, (size_t)B * d);
    gc_bf16_from_f32(ph, p, (size_t)P * d);
    const int saved = omp_get_max_threads();
    for (int kind = 0; kind < 4; kind++) {
        gc_loss_config cfg = {0.05f, kind & 1, kind & 1, 96}; /* tiles of 96: partial ones */
        gc_rep_view v = kind & 2 ? (gc_rep_view){qh, ph, d, 1} : (gc_rep_view){q, p, d, 0};
        gc_loss_out o1, o2;
        split_run(&v, B, P, d, &cfg, 1, &o1, g[0][0], g[0][1]);
        for (int t = 2; t <= 3; t++) {
            split_run(&v, B, P, d, &cfg, t, &o2, g[1][0], g[1][1]);
            CHECK(o1.loss == o2.loss && o1.dlog_tau == o2.dlog_tau && o1.accuracy == o2.accuracy,
                  "kind %d, %d threads: loss %.17g vs %.17g", kind, t, o2.loss, o1.loss);
            CHECK(!memcmp(g[0][0], g[1][0], sizeof(float) * B * d),
                  "kind %d, %d threads: query gradients differ from 1 thread's", kind, t);
            CHECK(!memcmp(g[0][1], g[1][1], sizeof(float) * P * d),
                  "kind %d, %d threads: passage gradients differ from 1 thread's", kind, t);
        }
    }
    omp_set_num_threads(saved);
    free(q), free(p), free(qh), free(ph);
    for (int r = 0; r < 2; r++) free(g[r][0]), free(g[r][1]);
}

/* misuse: gradients before statistics, rows outside the side, another view */
static void test_split_misuse(void);

static void test_split_vs_dense(void) {
    const int batches[] = {1, 7, 64, 300};
    const int tiles[] = {5, 100, 0};
    const int d = 24, wide = 27;
    double worst[3] = {0, 0, 0}; /* float in place, float strided, bf16 */
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++)
        for (int K = 0; K <= 2; K += 2)
            for (int var = 0; var < 4; var++) {
                const int B = batches[bi], P = B * (1 + K);
                gc_loss_config cfg = {var & 2 ? 0.05f : 0.3f, var & 1, var >> 1, 0};
                float *q = malloc(sizeof(float) * B * d), *p = malloc(sizeof(float) * P * d);
                float *qw = malloc(sizeof(float) * B * wide),
                      *pw = malloc(sizeof(float) * P * wide);
                uint16_t *qh = malloc(2 * (size_t)B * d), *ph = malloc(2 * (size_t)P * d);
                float *qr = malloc(sizeof(float) * B * d), *pr = malloc(sizeof(float) * P * d);
                float *rdq = malloc(sizeof(float) * B * d), *rdp = malloc(sizeof(float) * P * d);
                float *hdq = malloc(sizeof(float) * B * d), *hdp = malloc(sizeof(float) * P * d);
                float *dq = malloc(sizeof(float) * B * d), *dp = malloc(sizeof(float) * P * d);
                make_pair(q, p, B, P, d, var & 2 ? 1.0 : 0.4);
                for (int i = 0; i < B + P; i++) { /* strided copies: d values, then junk */
                    const float *src = i < B ? q + (size_t)i * d : p + (size_t)(i - B) * d;
                    float *dst = i < B ? qw + (size_t)i * wide : pw + (size_t)(i - B) * wide;
                    memcpy(dst, src, sizeof(float) * d);
                    for (int k = d; k < wide; k++) dst[k] = NAN;
                }
                gc_bf16_from_f32_ref(qh, q, (size_t)B * d);
                gc_bf16_from_f32_ref(ph, p, (size_t)P * d);
                gc_bf16_to_f32(qr, qh, (size_t)B * d);
                gc_bf16_to_f32(pr, ph, (size_t)P * d);
                gc_loss_out ro, rh;
                CHECK_OK(gc_infonce_ref(q, p, B, P, d, &cfg, &ro, rdq, rdp));
                CHECK_OK(gc_infonce_ref(qr, pr, B, P, d, &cfg, &rh, hdq, hdp));
                for (size_t ti = 0; ti < sizeof tiles / sizeof tiles[0]; ti++) {
                    cfg.tile = tiles[ti];
                    if (cfg.tile > 0 && (double)B * P / ((double)cfg.tile * cfg.tile) > 20000)
                        continue;
                    const gc_rep_view views[3] = {{q, p, d, 0}, {qw, pw, wide, 0}, {qh, ph, d, 1}};
                    for (int vi = 0; vi < 3; vi++) {
                        const gc_loss_out *r = vi == 2 ? &rh : &ro;
                        const float *gq = vi == 2 ? hdq : rdq, *gp = vi == 2 ? hdp : rdp;
                        gc_loss_out o = {0};
                        split_grads(&views[vi], B, P, d, &cfg, &o, dq, dp);
                        double e[4] = {rel(o.loss, r->loss), rel(o.dlog_tau, r->dlog_tau),
                                       max_rel_err(dq, gq, (size_t)B * d),
                                       max_rel_err(dp, gp, (size_t)P * d)};
                        double m = fmax(fmax(e[0], e[1]), fmax(e[2], e[3]));
                        CHECK(m <= 1e-5 && fabs(o.accuracy - r->accuracy) <= 1.0 / B + 1e-12,
                              "split view %d B=%d K=%d sym=%d cos=%d tile=%d: loss %.3g "
                              "dlog_tau %.3g dq %.3g dp %.3g",
                              vi, B, K, cfg.symmetric, cfg.cosine, cfg.tile, e[0], e[1], e[2],
                              e[3]);
                        worst[vi] = fmax(worst[vi], m);
                    }
                }
                free(q), free(p), free(qw), free(pw), free(qh), free(ph), free(qr), free(pr);
                free(rdq), free(rdp), free(hdq), free(hdp), free(dq), free(dp);
            }
    printf("split (stats + rep grad) vs dense: max error float %.2e, strided %.2e, bf16 %.2e\n",
           worst[0], worst[1], worst[2]);

    test_split_misuse();
}

static void test_split_misuse(void) {
    const int B = 4, P = 8, d = 3;
    float q[12], p[24], g[24];
    make_pair(q, p, B, P, d, 0.5);
    gc_loss_config cfg = {0.5f, 1, 0, 0};
    gc_rep_view v = {q, p, d, 0}, vb = {q, p, d, 1}, vs = {q, p, 2, 0};
    size_t n = gc_infonce_stats_workspace_size(B, P, d, B, 0, &cfg);
    void *ws = calloc(1, n);
    gc_loss_out o;
    CHECK(gc_infonce_rep_grad(&v, 0, 0, 1, 1.0f, g, ws) == GC_ERR_INVALID_ARG, "before stats");
    CHECK(gc_infonce_stats(&vs, B, P, d, &cfg, NULL, &o, ws) == GC_ERR_INVALID_ARG,
          "stride below d");
    CHECK_OK(gc_infonce_stats(&v, B, P, d, &cfg, NULL, &o, ws));
    CHECK(gc_infonce_rep_grad(&v, 0, 2, 3, 1.0f, g, ws) == GC_ERR_INVALID_ARG, "rows past B");
    CHECK(gc_infonce_rep_grad(&v, 1, -1, 2, 1.0f, g, ws) == GC_ERR_INVALID_ARG, "row -1");
    CHECK(gc_infonce_rep_grad(&v, 2, 0, 1, 1.0f, g, ws) == GC_ERR_INVALID_ARG, "side 2");
    CHECK(gc_infonce_rep_grad(&vb, 1, 0, 1, 1.0f, g, ws) == GC_ERR_INVALID_ARG, "other view");
    CHECK_OK(gc_infonce_rep_grad(&v, 1, 0, 8, 1.0f, g, ws));
    free(ws);
}

/* Loss only (no gradients), and one gradient at a time. */
static void test_partial_outputs(void) {
    const int B = 20, K = 1, P = B * (1 + K), d = 16;
    float *q = malloc(sizeof(float) * B * d), *p = malloc(sizeof(float) * P * d);
    float *dq = malloc(sizeof(float) * B * d), *dp = malloc(sizeof(float) * P * d);
    float *dq2 = malloc(sizeof(float) * B * d), *dp2 = malloc(sizeof(float) * P * d);
    make_pair(q, p, B, P, d, 1.0);
    gc_loss_config cfg = {0.1f, 1, 1, 6};
    gc_loss_out a, b, c, e;
    CHECK_OK(gc_infonce(q, p, B, P, d, &cfg, &a, dq, dp, NULL));
    CHECK_OK(gc_infonce(q, p, B, P, d, &cfg, &b, NULL, NULL, NULL));
    CHECK_OK(gc_infonce(q, p, B, P, d, &cfg, &c, dq2, NULL, NULL));
    CHECK_OK(gc_infonce(q, p, B, P, d, &cfg, &e, NULL, dp2, NULL));
    CHECK(a.loss == b.loss && a.dlog_tau == b.dlog_tau && a.accuracy == b.accuracy,
          "loss without gradients differs");
    CHECK(memcmp(dq, dq2, sizeof(float) * B * d) == 0, "dq alone differs");
    CHECK(memcmp(dp, dp2, sizeof(float) * P * d) == 0, "dp alone differs");
    free(q), free(p), free(dq), free(dp), free(dq2), free(dp2);
}

/* ------------------------------------------------------------------------------------------ */

static int all_finite_f(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Tiled against dense where the result may be extreme. With degenerate != 0 the exact
 * gradients and d loss / d log tau vanish (every competitor ties), the reference holds only
 * rounding noise, and errors are measured against the natural gradient scale
 * 1 / (tau B |row|) instead. */
static void check_stable(const char *name, const float *q, const float *p, int B, int P, int d,
                         const gc_loss_config *cfg0, int degenerate) {
    float *rdq = malloc(sizeof(float) * B * d), *rdp = malloc(sizeof(float) * P * d);
    float *dq = malloc(sizeof(float) * B * d), *dp = malloc(sizeof(float) * P * d);
    gc_loss_out ro, o;
    gc_loss_config cfg = *cfg0;
    double gfloor = 0, tfloor = 1e-12;
    if (degenerate) {
        double n = 0;
        for (int k = 0; k < d; k++) n += (double)q[k] * q[k];
        gfloor = 1.0 / (cfg.temperature * B * sqrt(n)), tfloor = 1.0;
    }
    CHECK_OK(gc_infonce_ref(q, p, B, P, d, &cfg, &ro, rdq, rdp));
    double worst = 0;
    const int tiles[] = {7, 0};
    for (int t = 0; t < 2; t++) {
        cfg.tile = tiles[t];
        CHECK_OK(gc_infonce(q, p, B, P, d, &cfg, &o, dq, dp, NULL));
        CHECK(isfinite(o.loss) && isfinite(o.dlog_tau), "%s: loss %g", name, o.loss);
        CHECK(all_finite_f(dq, (size_t)B * d) && all_finite_f(dp, (size_t)P * d),
              "%s: non-finite gradient", name);
        double e[4] = {rel(o.loss, ro.loss),
                       fabs(o.dlog_tau - ro.dlog_tau) / fmax(fabs(ro.dlog_tau), tfloor),
                       max_rel_err(dq, rdq, (size_t)B * d), max_rel_err(dp, rdp, (size_t)P * d)};
        double mq = 0, mp = 0;
        for (size_t i = 0; i < (size_t)B * d; i++) mq = fmax(mq, fabs(rdq[i]));
        for (size_t i = 0; i < (size_t)P * d; i++) mp = fmax(mp, fabs(rdp[i]));
        if (mq < gfloor) e[2] *= fmax(mq, 1e-30) / gfloor;
        if (mp < gfloor) e[3] *= fmax(mp, 1e-30) / gfloor;
        for (int k = 0; k < 4; k++) {
            /* absolute scores near 100 carry float rounding near 1e-5 */
            CHECK(e[k] < 1e-4, "%s tile %d: quantity %d error %.3g", name, cfg.tile, k, e[k]);
            worst = fmax(worst, e[k]);
        }
    }
    printf("stability, %-36s loss %.6g  max error vs dense %.2e\n", name, ro.loss, worst);
    free(rdq), free(rdp), free(dq), free(dp);
}

static void test_stability(void) {
    const int B = 50, K = 2, P = B * (1 + K), d = 32;
    float *q = malloc(sizeof(float) * B * d), *p = malloc(sizeof(float) * P * d);
    make_pair(q, p, B, P, d, 1.0);
    gc_loss_config cfg = {0.01f, 0, 1, 0};
    check_stable("cosine, scale 100", q, p, B, P, d, &cfg, 0);
    cfg.symmetric = 1;
    check_stable("cosine, scale 100, symmetric", q, p, B, P, d, &cfg, 0);
    /* dot products in the thousands: exp would overflow without the running max */
    fill(q, (size_t)B * d, 8.0);
    fill(p, (size_t)P * d, 8.0);
    gc_loss_config dot = {0.05f, 1, 0, 0};
    check_stable("dot, scores in the thousands", q, p, B, P, d, &dot, 0);
    /* duplicated representations: every query and passage the same vector */
    for (int i = 1; i < B; i++) memcpy(q + (size_t)i * d, q, sizeof(float) * d);
    for (int j = 0; j < P; j++) memcpy(p + (size_t)j * d, q, sizeof(float) * d);
    check_stable("identical rows, cosine, scale 100", q, p, B, P, d, &cfg, 1);
    gc_loss_out o;
    CHECK_OK(gc_infonce(q, p, B, P, d, &cfg, &o, NULL, NULL, NULL));
    /* all scores equal: each query term is log P, each positive's term log B */
    const double want = 0.5 * (log((double)P) + log((double)B));
    CHECK(fabs(o.loss - want) < 1e-4, "identical rows: loss %g, want %g", o.loss, want);
    CHECK(o.accuracy == 0, "identical rows: nothing strictly wins, accuracy %g", o.accuracy);
    /* duplicated pairs: query i equal to passage i, some rows repeated */
    make_pair(q, p, B, P, d, 1.0);
    for (int i = 0; i < B; i++) memcpy(p + (size_t)i * d, q + (size_t)i * d, sizeof(float) * d);
    for (int i = 0; i < B; i += 5) {
        memcpy(q + (size_t)(i + 1) * d, q + (size_t)i * d, sizeof(float) * d);
        memcpy(p + (size_t)(i + 1) * d, q + (size_t)i * d, sizeof(float) * d);
    }
    check_stable("duplicated pairs, cosine, scale 100", q, p, B, P, d, &cfg, 1);
    /* a zero vector has no direction; it must not produce NaN */
    memset(q, 0, sizeof(float) * d);
    memset(p + (size_t)3 * d, 0, sizeof(float) * d);
    check_stable("zero rows, cosine", q, p, B, P, d, &cfg, 0);
    free(q), free(p);
}

/* ------------------------------------------------------------------------------------------ */

static void expect(gc_status got, gc_status want, const char *what) {
    CHECK(got == want, "%s: got %s, want %s", what, gc_status_str(got), gc_status_str(want));
    CHECK(strlen(gc_last_error()) > 0, "%s: no message", what);
}

static void test_bad_calls(void) {
    const int B = 4, P = 8, d = 3;
    float q[4 * 3], p[8 * 3], dq[4 * 3], dp[8 * 3];
    double qd[4 * 3], pd[8 * 3], loss;
    fill(q, sizeof q / sizeof q[0], 1.0);
    fill(p, sizeof p / sizeof p[0], 1.0);
    for (int i = 0; i < B * d; i++) qd[i] = q[i];
    for (int i = 0; i < P * d; i++) pd[i] = p[i];
    gc_loss_config cfg = {0.1f, 0, 0, 0}, bad = cfg;
    gc_loss_out o;
    const gc_status E = GC_ERR_INVALID_ARG;
    for (int f = 0; f < 3; f++) { /* 0: tiled, 1: float reference, 2: double reference */
        const float *fq[2] = {NULL, q}, *fp[2] = {NULL, p};
        const double *dq2[2] = {NULL, qd}, *dp2[2] = {NULL, pd};
#define CALL(QOK, POK, B_, PP, D, CFG, OUTOK)                                                      \
    (gc_clear_error(),                                                                             \
     f == 0   ? gc_infonce(fq[QOK], fp[POK], B_, PP, D, CFG, (OUTOK) ? &o : NULL, dq, dp, NULL)    \
     : f == 1 ? gc_infonce_ref(fq[QOK], fp[POK], B_, PP, D, CFG, (OUTOK) ? &o : NULL, dq, dp)      \
              : gc_infonce_ref_f64(dq2[QOK], dp2[POK], B_, PP, D, CFG, (OUTOK) ? &loss : NULL,     \
                                   NULL, NULL, NULL))
        expect(CALL(0, 1, B, P, d, &cfg, 1), E, "NULL q");
        expect(CALL(1, 0, B, P, d, &cfg, 1), E, "NULL p");
        expect(CALL(1, 1, B, P, d, NULL, 1), E, "NULL config");
        expect(CALL(1, 1, B, P, d, &cfg, 0), E, "NULL output");
        expect(CALL(1, 1, 0, P, d, &cfg, 1), E, "B = 0");
        expect(CALL(1, 1, -3, P, d, &cfg, 1), E, "B < 0");
        expect(CALL(1, 1, B, 3, d, &cfg, 1), E, "P < B");
        expect(CALL(1, 1, B, 6, d, &cfg, 1), E, "P not a multiple of B");
        expect(CALL(1, 1, B, P, 0, &cfg, 1), E, "d = 0");
        expect(CALL(1, 1, B, P, -1, &cfg, 1), E, "d < 0");
        const float taus[] = {0.0f, -1.0f, NAN, INFINITY};
        for (int t = 0; t < 4; t++) {
            bad.temperature = taus[t];
            expect(CALL(1, 1, B, P, d, &bad, 1), E, "bad temperature");
        }
#undef CALL
    }
    /* non-finite inputs and a loss that overflows */
    float keep = q[5];
    q[5] = NAN;
    qd[5] = NAN;
    expect(gc_infonce(q, p, B, P, d, &cfg, &o, dq, dp, NULL), GC_ERR_NUMERIC, "NaN query");
    expect(gc_infonce_ref(q, p, B, P, d, &cfg, &o, dq, dp), GC_ERR_NUMERIC, "NaN query (ref)");
    expect(gc_infonce_ref_f64(qd, pd, B, P, d, &cfg, &loss, NULL, NULL, NULL), GC_ERR_NUMERIC,
           "NaN query (f64)");
    q[5] = keep, qd[5] = keep;
    p[7] = INFINITY;
    expect(gc_infonce(q, p, B, P, d, &cfg, &o, dq, dp, NULL), GC_ERR_NUMERIC, "inf passage");
    expect(gc_infonce_ref(q, p, B, P, d, &cfg, &o, dq, dp), GC_ERR_NUMERIC, "inf passage (ref)");
    /* finite inputs whose scores overflow (float in the tiled version, double in the
     * reference) */
    for (int i = 0; i < B * d; i++) q[i] = 1e30f, qd[i] = 1e200;
    for (int i = 0; i < P * d; i++) {
        p[i] = (i & 1) ? 1e30f : -1e30f;
        pd[i] = (i & 1) ? 1e200 : -1e200;
    }
    expect(gc_infonce(q, p, B, P, d, &cfg, &o, dq, dp, NULL), GC_ERR_NUMERIC, "overflowing loss");
    expect(gc_infonce_ref_f64(qd, pd, B, P, d, &cfg, &loss, NULL, NULL, NULL), GC_ERR_NUMERIC,
           "overflowing loss (f64)");
    CHECK(gc_infonce_workspace_size(0, 4, 3, &cfg) == 0, "workspace size of a bad call");
    CHECK(gc_infonce_workspace_size(4, 8, 3, NULL) == 0, "workspace size without config");
}

int main(void) {
    test_finite_differences();
    test_ref_float_vs_double();
    test_tiled_vs_dense();
    test_split_vs_dense();
    test_split_threads();
    test_partial_outputs();
    test_stability();
    test_bad_calls();
    gc_matmul_cleanup();
    return test_summary("test_loss");
}

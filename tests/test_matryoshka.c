/* test_matryoshka.c: the Matryoshka loss (gc_matryoshka_*).
 *
 *  - parsing of "384,128" and "384:1,128:0.5", and the refusals;
 *  - off (count 0) is gc_infonce bit for bit;
 *  - the combined loss and its gradient against an independent double-precision composition
 *    (the test re-normalises each prefix itself and sums the dense reference losses) and
 *    central finite differences of it, for several loss settings;
 *  - accuracy is that of the largest size; a size beyond the width is refused;
 *  - gc_truncate_rows (eval/encode --dim) packs the prefixes and re-normalizes them. */
#include "gc_eval.h"
#include "gc_matryoshka.h"
#include "gc_testing.h"
#include "test_util.h"

#include <string.h>

enum { B = 6, K = 1, P = B * (1 + K), D = 8 };

static void test_parse(void) {
    gc_matryoshka_config m;
    CHECK_OK(gc_matryoshka_parse("384,256,128,64", &m));
    CHECK(m.count == 4 && m.dims[0] == 384 && m.dims[3] == 64 && m.weights[2] == 1.0f,
          "plain list: %d sizes", m.count);
    CHECK_OK(gc_matryoshka_parse("384:1,128:0.5", &m));
    CHECK(m.count == 2 && m.dims[1] == 128 && m.weights[1] == 0.5f, "weights: %d %g", m.count,
          (double)m.weights[1]);
    char buf[64];
    gc_matryoshka_format(&m, buf, sizeof buf);
    CHECK(strcmp(buf, "384:1,128:0.5") == 0, "format: %s", buf);
    m.count = 0;
    gc_matryoshka_format(&m, buf, sizeof buf);
    CHECK(buf[0] == 0, "format of off: '%s'", buf);
    static const char *bad[] = {
        "",  "0",    "12,12",  "12:-1", "12,",
        "a", "12;3", "12:nan", "-4",    "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gc_status st = gc_matryoshka_parse(bad[i], &m);
        CHECK(st == GC_ERR_INVALID_ARG && strstr(gc_last_error(), "matryoshka"),
              "'%s' refused with a message (%s)", bad[i], gc_last_error());
    }
    CHECK_OK(gc_matryoshka_parse("8,4", &m));
    CHECK(gc_matryoshka_check(&m, 4) == GC_ERR_INVALID_ARG && strstr(gc_last_error(), "[1, 4]"),
          "size 8 on width 4 refused: %s", gc_last_error());
}

static void fill(float *x, size_t n, uint64_t seed) {
    gc_rng_addr a = {seed, 0, 0, 0, 0};
    gc_rng_uniform_fill(x, &a, 0, n);
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * x[i] - 1.0f;
}

/* The combined loss, independently: each prefix copied, re-normalised here when shorter than D,
 * and scored by the dense double reference (dot product on the normalised copy). */
static double reference_loss(const double *q, const double *p, const gc_loss_config *cfg,
                             const gc_matryoshka_config *m) {
    double total = 0.0;
    double *qs = malloc(sizeof(double) * B * D), *ps = malloc(sizeof(double) * P * D);
    for (int s = 0; s < m->count; s++) {
        int w = m->dims[s];
        for (int side = 0; side < 2; side++) {
            const double *src = side ? p : q;
            double *dst = side ? ps : qs;
            int n = side ? P : B;
            for (int i = 0; i < n; i++) {
                double ss = 0.0;
                for (int k = 0; k < w; k++) ss += src[i * D + k] * src[i * D + k];
                double scale = w < D ? 1.0 / sqrt(ss) : 1.0;
                for (int k = 0; k < w; k++) dst[i * w + k] = src[i * D + k] * scale;
            }
        }
        gc_loss_config c = *cfg;
        if (w < D) c.cosine = 0; /* normalised above */
        double l = 0.0;
        gc_status st = gc_infonce_ref_f64(qs, ps, B, P, w, &c, &l, NULL, NULL, NULL);
        if (st != GC_OK) l = NAN;
        total += m->weights[s] * l;
    }
    free(qs), free(ps);
    return total;
}

static void test_gradient(const char *name, const gc_loss_config *cfg, const char *spec) {
    gc_matryoshka_config m;
    CHECK_OK(gc_matryoshka_parse(spec, &m));
    float q[B * D], p[P * D], dq[B * D], dp[P * D];
    fill(q, B * D, 3);
    fill(p, P * D, 4);
    for (int i = 0; i < P * D; i++) p[i] = 0.5f * p[i] + (i < B * D ? 0.8f * q[i] : 0.0f);
    gc_loss_out o;
    CHECK_OK(gc_matryoshka_infonce(q, p, B, P, D, cfg, &m, NULL, &o, dq, dp, NULL));
    /* the same through a caller's workspace */
    size_t ws_size = gc_matryoshka_workspace_size(B, P, D, B, 0, cfg, &m);
    void *ws = malloc(ws_size);
    float dq2[B * D], dp2[P * D];
    gc_loss_out o2;
    CHECK_OK(gc_matryoshka_infonce(q, p, B, P, D, cfg, &m, NULL, &o2, dq2, dp2, ws));
    CHECK(o2.loss == o.loss && !memcmp(dq, dq2, sizeof dq) && !memcmp(dp, dp2, sizeof dp),
          "%s: own workspace gives the same numbers", name);
    free(ws);
    /* the two halves: statistics, then the gradient of groups of 1, 2 and 3 rows */
    ws_size = gc_matryoshka_stats_workspace_size(B, P, D, B, 0, cfg, &m);
    ws = malloc(ws_size);
    gc_rep_view v = {q, p, D, 0};
    gc_loss_out o3;
    CHECK_OK(gc_matryoshka_stats(&v, B, P, D, cfg, &m, NULL, &o3, ws));
    for (int side = 0, g = 0; side < 2; side++) {
        float *out = side ? dp2 : dq2;
        for (int i = 0, n = side ? P : B; i < n; i += 1 + g % 3, g++) {
            int c = 1 + g % 3 < n - i ? 1 + g % 3 : n - i;
            CHECK_OK(gc_matryoshka_rep_grad(&v, &m, side, i, c, 0.5f, out + (size_t)i * D, ws));
        }
    }
    for (int i = 0; i < B * D; i++) dq2[i] *= 2.0f;
    for (int i = 0; i < P * D; i++) dp2[i] *= 2.0f;
    double sq = max_rel_err(dq2, dq, B * D), sp = max_rel_err(dp2, dp, P * D);
    printf("%-50s split vs whole: loss %.2e dq %.2e dp %.2e\n", name,
           fabs(o3.loss - o.loss) / fabs(o.loss), sq, sp);
    CHECK(fabs(o3.loss - o.loss) <= 1e-6 * fabs(o.loss) && sq <= 1e-5 && sp <= 1e-5,
          "%s: the two halves give the whole loss's gradient (dq %.3g dp %.3g)", name, sq, sp);
    free(ws);

    double qd[B * D], pd[P * D];
    for (int i = 0; i < B * D; i++) qd[i] = q[i];
    for (int i = 0; i < P * D; i++) pd[i] = p[i];
    double lref = reference_loss(qd, pd, cfg, &m);
    double lerr = fabs(o.loss - lref) / fabs(lref);
    CHECK(lerr < 1e-5, "%s: loss %.9g vs reference %.9g", name, o.loss, lref);

    /* central differences of the reference, every entry of q and p */
    float fq[B * D], fp[P * D];
    const double eps = 1e-5;
    for (int side = 0; side < 2; side++) {
        double *x = side ? pd : qd;
        float *f = side ? fp : fq;
        int n = side ? P * D : B * D;
        for (int i = 0; i < n; i++) {
            double keep = x[i];
            x[i] = keep + eps;
            double lp = reference_loss(qd, pd, cfg, &m);
            x[i] = keep - eps;
            double lm = reference_loss(qd, pd, cfg, &m);
            x[i] = keep;
            f[i] = (float)((lp - lm) / (2 * eps));
        }
    }
    double eq = norm_rel_err(dq, fq, B * D), ep = norm_rel_err(dp, fp, P * D);
    printf("  %-44s loss %.6f  dq vs FD %.2e  dp vs FD %.2e\n", name, o.loss, eq, ep);
    CHECK(eq < 1e-4 && ep < 1e-4, "%s: gradient vs finite differences: dq %.3e dp %.3e", name, eq,
          ep);

    /* accuracy is the largest size's */
    int widest = 0;
    for (int s = 0; s < m.count; s++)
        if (m.dims[s] > widest) widest = m.dims[s];
    gc_matryoshka_config one = {1, {widest}, {1.0f}};
    gc_loss_out ow;
    CHECK_OK(gc_matryoshka_infonce(q, p, B, P, D, cfg, &one, NULL, &ow, NULL, NULL, NULL));
    CHECK(ow.accuracy == o.accuracy, "%s: accuracy %g is the size-%d one %g", name, o.accuracy,
          widest, ow.accuracy);
}

static void test_off_is_plain(void) {
    float q[B * D], p[P * D], dq[B * D], dp[P * D], rq[B * D], rp[P * D];
    fill(q, B * D, 7);
    fill(p, P * D, 8);
    gc_loss_config cfg = {0.05f, 1, 1, 0};
    gc_matryoshka_config off = {0, {0}, {0}};
    gc_loss_out a, b;
    CHECK_OK(gc_matryoshka_infonce(q, p, B, P, D, &cfg, &off, NULL, &a, dq, dp, NULL));
    CHECK_OK(gc_infonce(q, p, B, P, D, &cfg, &b, rq, rp, NULL));
    CHECK(a.loss == b.loss && a.dlog_tau == b.dlog_tau && !memcmp(dq, rq, sizeof dq) &&
              !memcmp(dp, rp, sizeof dp),
          "count 0 is gc_infonce bit for bit");
    CHECK(gc_matryoshka_workspace_size(B, P, D, B, 0, &cfg, &off) ==
              gc_infonce_workspace_size(B, P, D, &cfg),
          "count 0 needs gc_infonce's workspace");
    gc_matryoshka_config big = {1, {D + 1}, {1.0f}};
    CHECK(gc_matryoshka_infonce(q, p, B, P, D, &cfg, &big, NULL, &a, dq, dp, NULL) ==
              GC_ERR_INVALID_ARG,
          "a size wider than the representations is refused");
}

static void test_truncate(void) {
    float x[3 * 4] = {3, 4, 100, 100, 0, 0, 7, 7, -1, 0, 0, 0};
    gc_truncate_rows(x, 3, 4, 2);
    const float want[6] = {0.6f, 0.8f, 0, 0, -1, 0};
    int same = 1;
    for (int i = 0; i < 6; i++) same &= fabsf(x[i] - want[i]) < 1e-6f;
    CHECK(same,
          "rows truncated to 2, packed and re-normalized (zero rows stay zero): %g %g %g %g "
          "%g %g",
          x[0], x[1], x[2], x[3], x[4], x[5]);
}

int main(void) {
    test_truncate();
    test_parse();
    test_off_is_plain();
    gc_loss_config dot = {0.1f, 0, 0, 0}, dot_sym = {0.07f, 1, 0, 2}, cos = {0.05f, 0, 1, 0},
                   cos_sym = {0.2f, 1, 1, 3};
    test_gradient("dot, 8:1,5:0.5,2:2", &dot, "8:1,5:0.5,2:2");
    test_gradient("dot, symmetric, tiled, 2,8,3", &dot_sym, "2,8,3");
    test_gradient("cosine, 8,4", &cos, "8,4");
    test_gradient("cosine, symmetric, tiled, prefixes only 6:0.3,1", &cos_sym, "6:0.3,1");
    return test_summary("test_matryoshka");
}

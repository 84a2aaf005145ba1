/* loss.c: the contrastive (InfoNCE) loss with in-batch and hard negatives.
 *
 * The plain dense reference (the whole B x P score matrix, in double) serves gc_infonce_ref_f64
 * and, on widened inputs, gc_infonce_ref; gc_infonce is the tiled version that production
 * uses and the tests hold against it. */
#include "gc_comm.h"
#include "gc_loss.h"
#include "gc_testing.h"
#include "core/vexp.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows with a smaller norm are divided by this instead (as torch's F.normalize does), so a
 * zero vector has a zero direction rather than a NaN. */
#define GC_NORM_EPS 1e-12

static gc_status check_args(const void *q, const void *p, int B, int P, int d,
                            const gc_loss_config *cfg, const void *out, const char *fn) {
    if (!q || !p || !cfg || !out)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: NULL %s", fn,
                            !q     ? "q"
                            : !p   ? "p"
                            : !cfg ? "config"
                                   : "output");
    if (B <= 0) return gc_set_error(GC_ERR_INVALID_ARG, "%s: batch size %d <= 0", fn, B);
    if (d <= 0) return gc_set_error(GC_ERR_INVALID_ARG, "%s: dimension %d <= 0", fn, d);
    if (P < B || P % B != 0)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "%s: %d passages is not a positive multiple of the batch size %d", fn,
                            P, B);
    if (!(cfg->temperature > 0.0f) || !isfinite(cfg->temperature))
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: temperature %g must be finite and > 0", fn,
                            (double)cfg->temperature);
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Dense reference */

/* xh (n,d) = x / max(|x|, eps) row by row; norm (n) keeps the divisor. */
static void normalize_rows_f64(double *xh, double *norm, const double *x, int n, int d) {
    for (int i = 0; i < n; i++) {
        const double *xi = x + (size_t)i * d;
        double ss = 0;
        for (int k = 0; k < d; k++) ss += xi[k] * xi[k];
        double nr = sqrt(ss);
        if (nr < GC_NORM_EPS) nr = GC_NORM_EPS;
        norm[i] = nr;
        for (int k = 0; k < d; k++) xh[(size_t)i * d + k] = xi[k] / nr;
    }
}

/* Through xh = x / n: dx = (dxh - xh (xh . dxh)) / n, in place on g (n,d). Where the norm was
 * clamped to eps the division is by a constant, so dx = dxh / eps. */
static void normalize_rows_backward_f64(double *g, const double *xh, const double *norm,
                                        const double *x, int n, int d) {
    for (int i = 0; i < n; i++) {
        double *gi = g + (size_t)i * d;
        const double *hi = xh + (size_t)i * d;
        double ss = 0;
        for (int k = 0; k < d; k++) ss += x[(size_t)i * d + k] * x[(size_t)i * d + k];
        double dot = 0;
        if (sqrt(ss) >= GC_NORM_EPS)
            for (int k = 0; k < d; k++) dot += hi[k] * gi[k];
        for (int k = 0; k < d; k++) gi[k] = (gi[k] - hi[k] * dot) / norm[i];
    }
}

/* Accuracy from a dense (B,P) score matrix: the positive must strictly beat every other
 * passage. */
static double dense_accuracy(const double *S, int B, int P) {
    int hit = 0;
    for (int i = 0; i < B; i++) {
        const double *s = S + (size_t)i * P;
        int ok = 1;
        for (int j = 0; j < P && ok; j++)
            if (j != i && !(s[i] > s[j])) ok = 0;
        hit += ok;
    }
    return (double)hit / B;
}

/* The dense reference; accuracy may be NULL. */
static gc_status infonce_dense(const double *q, const double *p, int B, int P, int d,
                               const gc_loss_config *cfg, double *loss, double *dq, double *dp,
                               double *dlog_tau, double *accuracy) {
    gc_status st = check_args(q, p, B, P, d, cfg, loss, "infonce_ref");
    if (st != GC_OK) return st;
    for (size_t i = 0; i < (size_t)B * d; i++)
        if (!isfinite(q[i]))
            return gc_set_error(GC_ERR_NUMERIC, "infonce_ref: non-finite value in the queries");
    for (size_t i = 0; i < (size_t)P * d; i++)
        if (!isfinite(p[i]))
            return gc_set_error(GC_ERR_NUMERIC, "infonce_ref: non-finite value in the passages");

    const double tau = cfg->temperature;
    const int sym = cfg->symmetric != 0, cosine = cfg->cosine != 0;
    double *qh = NULL, *ph = NULL, *qn = NULL, *pn = NULL;
    double *S = malloc(sizeof(double) * (size_t)B * P); /* (B,P) scores */
    double *dS = calloc((size_t)B * P, sizeof(double)); /* (B,P) d loss / d scores */
    double *gq = NULL, *gp = NULL;
    if (cosine) {
        qh = malloc(sizeof(double) * (size_t)B * d), ph = malloc(sizeof(double) * (size_t)P * d);
        qn = malloc(sizeof(double) * B), pn = malloc(sizeof(double) * P);
        gq = malloc(sizeof(double) * (size_t)B * d), gp = malloc(sizeof(double) * (size_t)P * d);
    }
    if (!S || !dS || (cosine && (!qh || !ph || !qn || !pn || !gq || !gp))) {
        st = gc_set_error(GC_ERR_NOMEM, "infonce_ref: out of memory for %d x %d scores", B, P);
        goto done;
    }
    const double *qs = q, *ps = p;
    if (cosine) {
        normalize_rows_f64(qh, qn, q, B, d);
        normalize_rows_f64(ph, pn, p, P, d);
        qs = qh, ps = ph;
    }
    for (int i = 0; i < B; i++)
        for (int j = 0; j < P; j++) {
            double acc = 0;
            for (int k = 0; k < d; k++) acc += qs[(size_t)i * d + k] * ps[(size_t)j * d + k];
            S[(size_t)i * P + j] = acc / tau;
        }

    /* each term is a mean over B rows; symmetric averages the two terms */
    const double w = (sym ? 0.5 : 1.0) / B;
    double L = 0;
    for (int i = 0; i < B; i++) { /* query i against all passages */
        const double *s = S + (size_t)i * P;
        double m = -INFINITY, z = 0;
        for (int j = 0; j < P; j++) m = s[j] > m ? s[j] : m;
        for (int j = 0; j < P; j++) z += exp(s[j] - m);
        L += w * (m + log(z) - s[i]);
        for (int j = 0; j < P; j++) dS[(size_t)i * P + j] += w * exp(s[j] - m) / z;
        dS[(size_t)i * P + i] -= w;
    }
    if (sym)
        for (int j = 0; j < B; j++) { /* positive j against all queries */
            double m = -INFINITY, z = 0;
            for (int i = 0; i < B; i++) m = S[(size_t)i * P + j] > m ? S[(size_t)i * P + j] : m;
            for (int i = 0; i < B; i++) z += exp(S[(size_t)i * P + j] - m);
            L += w * (m + log(z) - S[(size_t)j * P + j]);
            for (int i = 0; i < B; i++)
                dS[(size_t)i * P + j] += w * exp(S[(size_t)i * P + j] - m) / z;
            dS[(size_t)j * P + j] -= w;
        }
    if (!isfinite(L)) {
        st = gc_set_error(GC_ERR_NUMERIC, "infonce_ref: the loss is not finite");
        goto done;
    }
    *loss = L;
    if (accuracy) *accuracy = dense_accuracy(S, B, P);
    if (dlog_tau) { /* s = sim * exp(-log tau), so d s / d log tau = -s */
        double g = 0;
        for (size_t k = 0; k < (size_t)B * P; k++) g -= dS[k] * S[k];
        *dlog_tau = g;
    }
    double *oq = cosine ? gq : dq, *op = cosine ? gp : dp;
    if (dq) { /* dq (B,d) = dS (B,P) @ p (P,d) / tau */
        for (int i = 0; i < B; i++)
            for (int k = 0; k < d; k++) {
                double acc = 0;
                for (int j = 0; j < P; j++) acc += dS[(size_t)i * P + j] * ps[(size_t)j * d + k];
                oq[(size_t)i * d + k] = acc / tau;
            }
        if (cosine) {
            normalize_rows_backward_f64(gq, qh, qn, q, B, d);
            memcpy(dq, gq, sizeof(double) * (size_t)B * d);
        }
    }
    if (dp) { /* dp (P,d) = dS^T (P,B) @ q (B,d) / tau */
        for (int j = 0; j < P; j++)
            for (int k = 0; k < d; k++) {
                double acc = 0;
                for (int i = 0; i < B; i++) acc += dS[(size_t)i * P + j] * qs[(size_t)i * d + k];
                op[(size_t)j * d + k] = acc / tau;
            }
        if (cosine) {
            normalize_rows_backward_f64(gp, ph, pn, p, P, d);
            memcpy(dp, gp, sizeof(double) * (size_t)P * d);
        }
    }
done:
    free(S), free(dS), free(qh), free(ph), free(qn), free(pn), free(gq), free(gp);
    return st;
}

gc_status gc_infonce_ref_f64(const double *q, const double *p, int B, int P, int d,
                             const gc_loss_config *cfg, double *loss, double *dq, double *dp,
                             double *dlog_tau) {
    return infonce_dense(q, p, B, P, d, cfg, loss, dq, dp, dlog_tau, NULL);
}

gc_status gc_infonce_ref(const float *q, const float *p, int B, int P, int d,
                         const gc_loss_config *cfg, gc_loss_out *out, float *dq, float *dp) {
    gc_status st = check_args(q, p, B, P, d, cfg, out, "infonce_ref");
    if (st != GC_OK) return st;
    const size_t nq = (size_t)B * d, np = (size_t)P * d;
    double *buf = malloc(sizeof(double) * 2 * (nq + np));
    if (!buf)
        return gc_set_error(GC_ERR_NOMEM, "infonce_ref: out of memory for %zu values",
                            2 * (nq + np));
    double *qd = buf, *pd = qd + nq, *gq = pd + np, *gp = gq + nq;
    for (size_t i = 0; i < nq; i++) qd[i] = q[i];
    for (size_t i = 0; i < np; i++) pd[i] = p[i];
    double loss = 0, dlt = 0, acc = 0;
    st = infonce_dense(qd, pd, B, P, d, cfg, &loss, dq ? gq : NULL, dp ? gp : NULL, &dlt, &acc);
    if (st == GC_OK) {
        out->loss = loss;
        out->dlog_tau = dlt;
        out->accuracy = acc;
        if (dq)
            for (size_t i = 0; i < nq; i++) dq[i] = (float)gq[i];
        if (dp)
            for (size_t i = 0; i < np; i++) dp[i] = (float)gp[i];
    }
    free(buf);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Tiled version
 *
 * Scores are formed as s_ij = raw_ij * a_i * b_j with raw = q p^T computed tile by tile: for
 * the dot product a_i = 1/tau and b_j = 1, for the cosine a_i = 1/(tau |q_i|), b_j = 1/|p_j|.
 * The cosine therefore needs no normalized copies of q and p, only the norms: the gradient
 * is first taken with the scales held fixed, and the normalization is accounted for at the end
 * by projecting each row's gradient off its own direction.
 *
 * Forward, per score row (query) and, when symmetric, per positive column, a running max m,
 * sum z = sum exp(s - m) and e = sum exp(s - m) s. e/z is the softmax-expected score, which
 * gives d loss / d log tau without a backward pass. Backward recomputes every tile, turns it
 * into H = dS * a_i * b_j in place and accumulates dq += H p, dp += H^T q.
 *
 * The tiles are visited one at a time: each product is large enough for oneDNN to spread over
 * all threads, and the element-wise work on a tile is split over threads with OpenMP, so no
 * two threads ever write the same rows of dq or dp. */

#define GC_LOSS_DEFAULT_TILE 1024
/* The two halves' default: their tile buffers (a score tile and two row blocks) are all the
 * memory they need beyond ~40 bytes a pair, so they stop growing at a smaller batch; 512-edge
 * products (512 x 512 x d) still keep oneDNN at its full rate. */
#define GC_LOSS_SPLIT_TILE 512
#define GC_LOSS_COL_BLOCK 64
/* Tile rows go through the vector exp (core/vexp.h) this many scores at a time. */
#define EXP_BLOCK 256
/* Independent accumulators of a row's max and sums (combined in a fixed order). */
#define LANES 8
/* Loops over fewer elements than this stay on one thread: for small batches and tiles the
 * fork and join would cost more than the work (and much more on an oversubscribed machine). */
#define PAR(n) ((n) >= 32768 && !omp_in_parallel())

/* Offsets of the pieces of the workspace, each aligned to 64 bytes. Per-row pieces cover this
 * rank's rows only; the column statistics cover every positive (all B). */
typedef struct loss_layout {
    int tile, tq, tp;                       /* tile edge; tile rows and columns actually used */
    size_t row_m, row_z, row_e, pos, other; /* per query of this rank */
    size_t col_m, col_z, col_e, col_g;      /* per positive column (symmetric only; col_g: the
                                               global max when sharded) */
    size_t a, b;                            /* score scales of this rank's queries, passages */
    size_t S;                               /* (tq, tp) score tile */
    size_t total;
} loss_layout;

static size_t take(size_t *at, size_t bytes) {
    size_t off = *at;
    *at += (bytes + 63) & ~(size_t)63;
    return off;
}

static void loss_plan(loss_layout *L, int B, int P, int rows, int sharded,
                      const gc_loss_config *cfg) {
    size_t at = 0;
    L->tile = cfg->tile > 0 ? cfg->tile : GC_LOSS_DEFAULT_TILE;
    if (L->tile > P) L->tile = P; /* also keeps I0 + tile from overflowing */
    L->tq = L->tile < rows ? L->tile : rows;
    L->tp = L->tile < P ? L->tile : P;
    L->row_m = take(&at, sizeof(double) * rows);
    L->row_z = take(&at, sizeof(double) * rows);
    L->row_e = take(&at, sizeof(double) * rows);
    L->pos = take(&at, sizeof(float) * rows);
    L->other = take(&at, sizeof(float) * rows);
    size_t ncol = cfg->symmetric ? (size_t)B : 0;
    L->col_m = take(&at, sizeof(double) * ncol);
    L->col_z = take(&at, sizeof(double) * ncol);
    L->col_e = take(&at, sizeof(double) * ncol);
    L->col_g = take(&at, sizeof(double) * (sharded ? ncol : 0));
    L->a = take(&at, sizeof(float) * rows);
    L->b = take(&at, sizeof(float) * P);
    L->S = take(&at, sizeof(float) * (size_t)L->tq * L->tp);
    L->total = at + 64; /* room to align a caller's pointer */
}

size_t gc_infonce_workspace_size(int B, int P, int d, const gc_loss_config *cfg) {
    if (!cfg || B <= 0 || P < B || d <= 0) return 0;
    loss_layout L;
    loss_plan(&L, B, P, B, 0, cfg);
    return L.total;
}

size_t gc_infonce_shard_workspace_size(int B, int P, int d, int rows, int sharded,
                                       const gc_loss_config *cfg) {
    if (!cfg || B <= 0 || P < B || d <= 0 || rows <= 0 || rows > B) return 0;
    loss_layout L;
    loss_plan(&L, B, P, rows, sharded, cfg);
    return L.total;
}

/* Merge a partial (m2, z2, e2) into a running (m, z, e); m == -inf means empty. */
static inline void lse_merge(double *m, double *z, double *e, double m2, double z2, double e2) {
    if (m2 > *m) {
        double r = exp(*m - m2); /* exp(-inf) = 0 for the empty start */
        *z = *z * r + z2, *e = *e * r + e2, *m = m2;
    } else {
        double r = exp(m2 - *m);
        *z += z2 * r, *e += e2 * r;
    }
}

/* out (n) = 1 / (scale * max(|x_i|, eps)) for the cosine, else 1 / scale. */
static void score_scales(float *out, const float *x, int n, int d, double scale, int cosine) {
#pragma omp parallel for schedule(static) if (PAR((size_t)n * d))
    for (int i = 0; i < n; i++) {
        double nr = 1.0;
        if (cosine) {
            double ss = 0;
            const float *xi = x + (size_t)i * d;
            for (int k = 0; k < d; k++) ss += (double)xi[k] * xi[k];
            nr = fmax(sqrt(ss), GC_NORM_EPS);
        }
        out[i] = (float)(1.0 / (scale * nr));
    }
}

/* For the cosine, g_i (row of a gradient taken with the scales fixed) becomes
 * g_i - x_i (x_i . g_i) / |x_i|^2, the part the normalization lets through. Rows whose norm
 * was clamped keep g_i (the scale was a constant there). */
static void cosine_project(float *g, const float *x, int n, int d) {
#pragma omp parallel for schedule(static) if (PAR((size_t)n * d))
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *gi = g + (size_t)i * d;
        double ss = 0, dot = 0;
        for (int k = 0; k < d; k++) ss += (double)xi[k] * xi[k], dot += (double)xi[k] * gi[k];
        if (sqrt(ss) < GC_NORM_EPS) continue;
        float c = (float)(dot / ss);
        for (int k = 0; k < d; k++) gi[k] -= c * xi[k];
    }
}

static int all_finite(const float *x, size_t n) {
    int ok = 1;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (PAR(n))
    for (size_t i = 0; i < n; i++) ok = ok && isfinite(x[i]);
    return ok;
}

/* Tile (I0.., J0..) of ti x tj: S = raw scores scaled to s_ij. */
static gc_status score_tile(float *S, const float *q, const float *p, const float *a,
                            const float *b, int I0, int J0, int ti, int tj, int d) {
    gc_status st = gc_matmul(S, q + (size_t)I0 * d, p + (size_t)J0 * d, ti, tj, d, 0, 1, 0);
    if (st != GC_OK) return st;
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tj))
    for (int i = 0; i < ti; i++) {
        float *s = S + (size_t)i * tj;
        const float ai = a[I0 + i];
        const float *bj = b + J0;
        for (int j = 0; j < tj; j++) s[j] = s[j] * ai * bj[j];
    }
    return GC_OK;
}

/* One score row s (tj) of a tile whose positive, if any, is column dg: merge its running
 * (max, sum, expected score) *rm, *rz, *re; keep its positive's score and the best other. */
static void stats_row(const float *s, int tj, int dg, double *rm, double *rz, double *re,
                      float *pos, float *other) {
    /* LANES independent maxima and sums, so the loops vectorize and no add waits on the one
     * before it; the lanes are combined in a fixed order */
    float mx[LANES];
    for (int l = 0; l < LANES; l++) mx[l] = -INFINITY;
    int j = 0;
    for (; j + LANES <= tj; j += LANES)
        for (int l = 0; l < LANES; l++) mx[l] = s[j + l] > mx[l] ? s[j + l] : mx[l];
    float m = -INFINITY;
    for (int l = 0; l < LANES; l++) m = mx[l] > m ? mx[l] : m;
    for (; j < tj; j++) m = s[j] > m ? s[j] : m;
    double zl[LANES], el[LANES];
    for (int l = 0; l < LANES; l++) zl[l] = 0, el[l] = 0;
    float x[EXP_BLOCK];
    for (int j0 = 0; j0 < tj; j0 += EXP_BLOCK) {
        const int n = tj - j0 < EXP_BLOCK ? tj - j0 : EXP_BLOCK;
        const float *sj = s + j0;
        for (int k = 0; k < n; k++) x[k] = sj[k] - m;
        gc_exp_array(x, x, (size_t)n);
        int k = 0;
        for (; k + LANES <= n; k += LANES)
            for (int l = 0; l < LANES; l++)
                zl[l] += x[k + l], el[l] += (double)x[k + l] * sj[k + l];
        for (; k < n; k++) zl[0] += x[k], el[0] += (double)x[k] * sj[k];
    }
    const double z = ((zl[0] + zl[1]) + (zl[2] + zl[3])) + ((zl[4] + zl[5]) + (zl[6] + zl[7]));
    const double e = ((el[0] + el[1]) + (el[2] + el[3])) + ((el[4] + el[5]) + (el[6] + el[7]));
    lse_merge(rm, rz, re, m, z, e);
    if (dg >= 0 && dg < tj) {
        float o = -INFINITY;
        for (int jj = 0; jj < tj; jj++)
            if (jj != dg) o = s[jj] > o ? s[jj] : o;
        *pos = s[dg];
        m = o;
    }
    if (m > *other) *other = m;
}

/* Columns [0, nc) of a tile's rows S (ti rows of stride ld; nc <= GC_LOSS_COL_BLOCK): merge
 * their running statistics cm, cz, ce (nc long, this block's columns). */
static void stats_cols(const float *S, int ld, int ti, int nc, double *cm, double *cz, double *ce) {
    float m[GC_LOSS_COL_BLOCK];
    double z[GC_LOSS_COL_BLOCK], e[GC_LOSS_COL_BLOCK];
    for (int c = 0; c < nc; c++) m[c] = -INFINITY, z[c] = 0, e[c] = 0;
    for (int i = 0; i < ti; i++) {
        const float *s = S + (size_t)i * ld;
        for (int c = 0; c < nc; c++) m[c] = s[c] > m[c] ? s[c] : m[c];
    }
    for (int i = 0; i < ti; i++) {
        const float *s = S + (size_t)i * ld;
        float x[GC_LOSS_COL_BLOCK];
        for (int c = 0; c < nc; c++) x[c] = s[c] - m[c];
        gc_exp_array(x, x, (size_t)nc);
        for (int c = 0; c < nc; c++) z[c] += x[c], e[c] += (double)x[c] * s[c];
    }
    for (int c = 0; c < nc; c++) lse_merge(&cm[c], &cz[c], &ce[c], m[c], z[c], e[c]);
}

/* Merge the statistics of a score tile S (ti, tj) of global query rows gi0.. and passage
 * columns J0..: each row's running (max, sum, expected score) rm, rz, re, its positive's score
 * and the best other score (ti long, the tile's rows); with sym, the positive columns' running
 * statistics cm, cz, ce (indexed by global column). */
static void tile_stats(const float *S, int ti, int tj, int gi0, int J0, int B, int sym, double *rm,
                       double *rz, double *re, float *pos, float *other, double *cm, double *cz,
                       double *ce) {
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tj))
    for (int i = 0; i < ti; i++)
        stats_row(S + (size_t)i * tj, tj, gi0 + i - J0, &rm[i], &rz[i], &re[i], &pos[i], &other[i]);
    if (sym && J0 < B) {
        const int tc = B - J0 < tj ? B - J0 : tj; /* positive columns in this tile */
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tc))
        for (int c0 = 0; c0 < tc; c0 += GC_LOSS_COL_BLOCK) {
            const int nc = tc - c0 < GC_LOSS_COL_BLOCK ? tc - c0 : GC_LOSS_COL_BLOCK;
            stats_cols(S + c0, tj, ti, nc, cm + J0 + c0, cz + J0 + c0, ce + J0 + c0);
        }
    }
}

/* One score row s (tj) of global query row ig, against passage columns J0.. of which the first
 * tc are positives and dg is its own, becomes H = dS * a_i * b_j in place. mi, zi: the row's
 * max and 1 / sum; cm, cz: the positive columns' (indexed by global column); ai, bj: the
 * scales; w: a term's weight. */
static void grad_row(float *s, int tj, int tc, int dg, int ig, int J0, double mi_d, double zi_d,
                     const double *cm, const double *cz, float ai, const float *bj, double w) {
    const float mi = (float)mi_d, ri = (float)(w * zi_d);
    const float sd = dg >= 0 && dg < tj ? s[dg] : 0.0f;
    float u[EXP_BLOCK], v[EXP_BLOCK];
    for (int j0 = 0; j0 < tc; j0 += EXP_BLOCK) {
        const int n = tc - j0 < EXP_BLOCK ? tc - j0 : EXP_BLOCK;
        for (int k = 0; k < n; k++)
            u[k] = s[j0 + k] - mi, v[k] = s[j0 + k] - (float)cm[J0 + j0 + k];
        gc_exp_array(u, u, (size_t)n);
        gc_exp_array(v, v, (size_t)n);
        for (int k = 0; k < n; k++) {
            const int j = j0 + k;
            float g = u[k] * ri + v[k] * (float)(w * cz[J0 + j]);
            s[j] = g * ai * bj[j];
        }
    }
    for (int j0 = tc; j0 < tj; j0 += EXP_BLOCK) {
        const int n = tj - j0 < EXP_BLOCK ? tj - j0 : EXP_BLOCK;
        for (int k = 0; k < n; k++) u[k] = s[j0 + k] - mi;
        gc_exp_array(u, u, (size_t)n);
        for (int k = 0; k < n; k++) s[j0 + k] = u[k] * ri * ai * bj[j0 + k];
    }
    /* softmax_ii - 1 cancels badly in float when the positive takes nearly all the mass (a
     * well-trained model, or scale 100): form it in double from the running statistics, whose
     * z holds the other passages' mass to double precision */
    if (dg >= 0 && dg < tj) {
        double g = exp((double)sd - mi_d) * zi_d - 1.0;
        if (dg < tc) g += exp((double)sd - cm[ig]) * cz[ig] - 1.0;
        s[dg] = (float)(w * g * ai * bj[dg]);
    }
}

/* A score tile S (ti, tj) of global query rows gi0.. and passage columns J0.. becomes, in place,
 * H = dS * a_i * b_j, the gradient with the scales held fixed. rm, rz: the rows' max and
 * 1 / sum (ti long); cm, cz: the positive columns' (indexed by global column; tc of this tile's
 * columns are positives); a: the rows' scales (ti), bj: the columns' (tj); w: a term's weight. */
static void tile_to_grad(float *S, int ti, int tj, int gi0, int J0, int tc, const double *rm,
                         const double *rz, const double *cm, const double *cz, const float *a,
                         const float *bj, double w) {
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tj))
    for (int i = 0; i < ti; i++)
        grad_row(S + (size_t)i * tj, tj, tc, gi0 + i - J0, gi0 + i, J0, rm[i], rz[i], cm, cz, a[i],
                 bj, w);
}

/* Merge the positive columns' partial statistics of every rank: the global max first, then
 * each rank rescales its sums to it and the sums are added. */
static gc_status merge_columns(const gc_comm *comm, double *col_m, double *col_z, double *col_e,
                               double *col_g, int B) {
    memcpy(col_g, col_m, sizeof(double) * B);
    gc_status st = comm->ops->all_reduce_f64(comm->ctx, col_g, (size_t)B, GC_COMM_MAX);
    if (st != GC_OK) return st;
    for (int j = 0; j < B; j++) {
        const double r = col_m[j] == -INFINITY ? 0.0 : exp(col_m[j] - col_g[j]);
        col_z[j] *= r, col_e[j] *= r, col_m[j] = col_g[j];
    }
    st = comm->ops->all_reduce_f64(comm->ctx, col_z, (size_t)B, GC_COMM_SUM);
    if (st == GC_OK) st = comm->ops->all_reduce_f64(comm->ctx, col_e, (size_t)B, GC_COMM_SUM);
    return st;
}

gc_status gc_infonce_shard(const float *q, const float *p, int B, int P, int d,
                           const gc_loss_config *cfg, const gc_loss_shard *shard, gc_loss_out *out,
                           float *dq, float *dp, void *workspace) {
    gc_status st = check_args(q, p, B, P, d, cfg, out, "infonce");
    if (st != GC_OK) return st;
    const gc_comm *comm = shard ? shard->comm : NULL;
    const int R0 = shard ? shard->row0 : 0, NR = shard ? shard->rows : B;
    const int sharded = gc_comm_size(comm) > 1;
    if (R0 < 0 || NR < 1 || R0 > B - NR)
        return gc_set_error(GC_ERR_INVALID_ARG, "infonce: rows [%d, %d) outside the batch of %d",
                            R0, R0 + NR, B);
    if (sharded && (st = gc_comm_check(comm, "infonce")) != GC_OK) return st;
    /* every rank checks the same gathered values, so they all fail here together */
    if (!all_finite(q, (size_t)B * d))
        return gc_set_error(GC_ERR_NUMERIC, "infonce: non-finite value in the queries");
    if (!all_finite(p, (size_t)P * d))
        return gc_set_error(GC_ERR_NUMERIC, "infonce: non-finite value in the passages");

    loss_layout L;
    loss_plan(&L, B, P, NR, sharded, cfg);
    void *owned = NULL;
    if (!workspace) {
        workspace = owned = malloc(L.total);
        if (!owned)
            return gc_set_error(GC_ERR_NOMEM, "infonce: out of memory for a %zu-byte workspace",
                                L.total);
    }
    char *ws = (char *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    double *row_m = (double *)(ws + L.row_m), *row_z = (double *)(ws + L.row_z);
    double *row_e = (double *)(ws + L.row_e);
    float *pos = (float *)(ws + L.pos), *other = (float *)(ws + L.other);
    double *col_m = (double *)(ws + L.col_m), *col_z = (double *)(ws + L.col_z);
    double *col_e = (double *)(ws + L.col_e), *col_g = (double *)(ws + L.col_g);
    float *a = (float *)(ws + L.a), *b = (float *)(ws + L.b), *S = (float *)(ws + L.S);
    const int sym = cfg->symmetric != 0, cosine = cfg->cosine != 0, T = L.tile;
    /* this rank's queries: local row i is global row R0 + i */
    const float *ql = q + (size_t)R0 * d;
    float *dql = dq ? dq + (size_t)R0 * d : NULL;

    score_scales(a, ql, NR, d, cfg->temperature, cosine);
    score_scales(b, p, P, d, 1.0, cosine);
    for (int i = 0; i < NR; i++)
        row_m[i] = -INFINITY, row_z[i] = 0, row_e[i] = 0, other[i] = -INFINITY, pos[i] = 0;
    if (sym)
        for (int j = 0; j < B; j++) col_m[j] = -INFINITY, col_z[j] = 0, col_e[j] = 0;

    /* forward: running statistics of rows and positive columns */
    for (int I0 = 0; I0 < NR && st == GC_OK; I0 += T) {
        const int ti = NR - I0 < T ? NR - I0 : T;
        for (int J0 = 0; J0 < P; J0 += T) {
            const int tj = P - J0 < T ? P - J0 : T;
            if ((st = score_tile(S, ql, p, a, b, I0, J0, ti, tj, d)) != GC_OK) break;
            tile_stats(S, ti, tj, R0 + I0, J0, B, sym, row_m + I0, row_z + I0, row_e + I0, pos + I0,
                       other + I0, col_m, col_z, col_e);
        }
    }
    if (st != GC_OK) goto done;
    if (sym && sharded && (st = merge_columns(comm, col_m, col_z, col_e, col_g, B)) != GC_OK)
        goto done;

    /* L = w sum_i (lse_i - s_ii) [+ w sum_j (lse_j - s_jj)]; d L / d log tau = -sum dS s, where
     * sum_j dS_ij s_ij = w (e_i / z_i - s_ii) for each term. A rank adds the terms of its own
     * rows and of their positives' columns; the sums are then added over ranks. */
    const double w = (sym ? 0.5 : 1.0) / B;
    double tot[3] = {0, 0, 0}; /* loss, d loss / d log tau, hits */
    for (int i = 0; i < NR; i++) {
        const int ig = R0 + i;
        tot[0] += w * (row_m[i] + log(row_z[i]) - pos[i]);
        tot[1] -= w * (row_e[i] / row_z[i] - pos[i]);
        tot[2] += pos[i] > other[i];
        if (sym) {
            tot[0] += w * (col_m[ig] + log(col_z[ig]) - pos[i]);
            tot[1] -= w * (col_e[ig] / col_z[ig] - pos[i]);
        }
    }
    if (sharded && (st = comm->ops->all_reduce_f64(comm->ctx, tot, 3, GC_COMM_SUM)) != GC_OK)
        goto done;
    if (!isfinite(tot[0]) || !isfinite(tot[1])) {
        st = gc_set_error(GC_ERR_NUMERIC, "infonce: the loss is not finite (%g)", tot[0]);
        goto done;
    }
    out->loss = tot[0];
    out->dlog_tau = tot[1];
    out->accuracy = tot[2] / B;
    if (!dq && !dp) goto done;

    /* backward: keep 1/z instead of z so the tile loop only multiplies */
    for (int i = 0; i < NR; i++) row_z[i] = 1.0 / row_z[i];
    if (sym)
        for (int j = 0; j < B; j++) col_z[j] = 1.0 / col_z[j];
    for (int I0 = 0; I0 < NR && st == GC_OK; I0 += T) {
        const int ti = NR - I0 < T ? NR - I0 : T;
        for (int J0 = 0; J0 < P; J0 += T) {
            const int tj = P - J0 < T ? P - J0 : T;
            const int tc = sym && J0 < B ? (B - J0 < tj ? B - J0 : tj) : 0;
            if ((st = score_tile(S, ql, p, a, b, I0, J0, ti, tj, d)) != GC_OK) break;
            tile_to_grad(S, ti, tj, R0 + I0, J0, tc, row_m + I0, row_z + I0, col_m, col_z, a + I0,
                         b + J0, w);
            if (dql && (st = gc_matmul(dql + (size_t)I0 * d, S, p + (size_t)J0 * d, ti, d, tj, 0, 0,
                                       J0 > 0)) != GC_OK)
                break;
            if (dp && (st = gc_matmul(dp + (size_t)J0 * d, S, ql + (size_t)I0 * d, tj, d, ti, 1, 0,
                                      I0 > 0)) != GC_OK)
                break;
        }
    }
    if (st != GC_OK) goto done;
    if (cosine) { /* linear in the gradient: a rank's partial dp projects on its own */
        if (dql) cosine_project(dql, ql, NR, d);
        if (dp) cosine_project(dp, p, P, d);
    }
done:
    free(owned);
    return st;
}

gc_status gc_infonce(const float *q, const float *p, int B, int P, int d, const gc_loss_config *cfg,
                     gc_loss_out *out, float *dq, float *dp, void *workspace) {
    return gc_infonce_shard(q, p, B, P, d, cfg, NULL, out, dq, dp, workspace);
}

/* ------------------------------------------------------------------------------------------ */
/* The loss in two halves: gc_infonce_stats, then gc_infonce_rep_grad per group of rows.
 *
 * The workspace starts with a header (sizes, configuration, whether stats has run), then the
 * statistics of every row (all B, gathered across ranks) and of every positive column, the
 * score scales of every query and passage, the forward-only per-row values of this rank's rows,
 * and the tile buffers: a score tile and two (tile, d) float blocks into which rows are widened
 * when the view is bf16 or strided (a float view of stride d is read in place). */

typedef struct stats_header {
    int B, P, d, R0, NR, sharded, ld, bf16, ready;
    gc_loss_config cfg;
} stats_header;

typedef struct stats_layout {
    int tile, threads;
    size_t hdr, row_m, row_z, col_m, col_z, col_e, col_g, a, b, ps, row_e, pos, other;
    size_t thr, thr_stride, S, own, blk; /* per thread: the block S, own rows, a tile's rows */
    size_t total;
} stats_layout;

/* Rows (or columns) one thread takes at a time in the two halves: its score blocks, (OWN_ROWS,
 * tile), stay in its cache between the product that forms them and the statistics or gradient
 * that read them, and no other thread writes its rows' statistics or gradients. */
#define OWN_ROWS 64

static void stats_plan(stats_layout *L, int B, int P, int d, int rows, int sharded,
                       const gc_loss_config *cfg) {
    size_t at = 0;
    int T = cfg->tile > 0 ? cfg->tile : GC_LOSS_SPLIT_TILE;
    if (T > P) T = P;
    L->tile = T;
    size_t ncol = cfg->symmetric ? (size_t)B : 0;
    L->hdr = take(&at, sizeof(stats_header));
    L->row_m = take(&at, sizeof(double) * B);
    L->row_z = take(&at, sizeof(double) * B);
    L->col_m = take(&at, sizeof(double) * ncol);
    L->col_z = take(&at, sizeof(double) * ncol);
    L->col_e = take(&at, sizeof(double) * ncol);
    L->col_g = take(&at, sizeof(double) * (sharded ? ncol : 0));
    L->a = take(&at, sizeof(float) * B);
    L->b = take(&at, sizeof(float) * P);
    L->ps = take(&at, sizeof(float) * B);
    L->row_e = take(&at, sizeof(double) * rows);
    L->pos = take(&at, sizeof(float) * rows);
    L->other = take(&at, sizeof(float) * rows);
    /* each thread's buffers: its (OWN_ROWS, T) score block, its own rows and a tile's rows,
     * widened to float (the latter also serves the score scales before the passes) */
    size_t t = 0;
    L->S = take(&t, sizeof(float) * (size_t)OWN_ROWS * T);
    L->own = take(&t, sizeof(float) * (size_t)OWN_ROWS * d);
    L->blk = take(&t, sizeof(float) * (size_t)T * d);
    L->thr_stride = t;
    /* the processors rather than the thread count of the moment, so the layout cannot change
     * between sizing the workspace and using it; the passes use at most this many threads */
    L->threads = omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
    L->thr = take(&at, t * (size_t)L->threads);
    L->total = at + 64;
}

size_t gc_infonce_stats_workspace_size(int B, int P, int d, int rows, int sharded,
                                       const gc_loss_config *cfg) {
    if (!cfg || B <= 0 || P < B || d <= 0 || rows <= 0 || rows > B) return 0;
    stats_layout L;
    stats_plan(&L, B, P, d, rows, sharded, cfg);
    return L.total;
}

/* Rows [r0, r0 + n) of a view's side as (n, d) floats: in place for a float view of stride d,
 * else widened into buf. */
static const float *load_rows(const void *x, int ld, int bf16, int r0, int n, int d, float *buf) {
    if (!bf16 && ld == d) return (const float *)x + (size_t)r0 * d;
#pragma omp parallel for schedule(static) if (PAR((size_t)n * d))
    for (int i = 0; i < n; i++) {
        float *o = buf + (size_t)i * d;
        if (bf16) {
            const uint16_t *r = (const uint16_t *)x + (size_t)(r0 + i) * ld;
            for (int k = 0; k < d; k++) o[k] = gc_bf16_value(r[k]);
        } else {
            memcpy(o, (const float *)x + (size_t)(r0 + i) * ld, sizeof(float) * d);
        }
    }
    return buf;
}

/* Score scales of rows [0, n) of a view's side (see score_scales), through a (T, d) buffer. */
static void view_scales(float *out, const void *x, int ld, int bf16, int n, int d, int T,
                        double scale, int cosine, float *buf) {
    if (!cosine) {
        for (int i = 0; i < n; i++) out[i] = (float)(1.0 / scale);
        return;
    }
    for (int r0 = 0; r0 < n; r0 += T) {
        int m = n - r0 < T ? n - r0 : T;
        score_scales(out + r0, load_rows(x, ld, bf16, r0, m, d, buf), m, d, scale, 1);
    }
}

static int view_finite(const void *x, int ld, int bf16, int n, int d) {
    int ok = 1;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (PAR((size_t)n * d))
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < d && ok; k++) {
            float v = bf16 ? gc_bf16_value(((const uint16_t *)x)[(size_t)i * ld + k])
                           : ((const float *)x)[(size_t)i * ld + k];
            ok = ok && isfinite(v);
        }
    }
    return ok;
}

/* S (ti, tj) = scaled scores of loaded rows qb (ti, d), pb (tj, d); a, b: their scales. */
static gc_status score_block(float *S, const float *qb, const float *pb, const float *a,
                             const float *b, int ti, int tj, int d) {
    gc_status st = gc_matmul(S, qb, pb, ti, tj, d, 0, 1, 0);
    if (st != GC_OK) return st;
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tj))
    for (int i = 0; i < ti; i++) {
        float *s = S + (size_t)i * tj;
        const float ai = a[i];
        for (int j = 0; j < tj; j++) s[j] = s[j] * ai * b[j];
    }
    return GC_OK;
}

/* ps (B) = every positive's score s_ii, from a dot product in double in a fixed order. The
 * gradient tiles recompute scores in products of other shapes than the statistics' tiles, and
 * a product's rounding depends on its shape; softmax_ii - 1 cancels, so the positive's score
 * must be the very value the statistics saw: both passes write these into their tiles. */
static void positive_scores(float *ps, const gc_rep_view *v, int B, int d, const float *a,
                            const float *b) {
#pragma omp parallel for schedule(static) if (PAR((size_t)B * d))
    for (int i = 0; i < B; i++) {
        double acc = 0;
        for (int k = 0; k < d; k++) {
            size_t at = (size_t)i * v->ld + k;
            double x =
                v->bf16 ? gc_bf16_value(((const uint16_t *)v->q)[at]) : ((const float *)v->q)[at];
            double y =
                v->bf16 ? gc_bf16_value(((const uint16_t *)v->p)[at]) : ((const float *)v->p)[at];
            acc += x * y;
        }
        ps[i] = (float)acc * a[i] * b[i];
    }
}

/* In a tile of rows gi0.. and columns J0.. (ti, tj), the positives' scores from ps. */
static void set_positives(float *S, int ti, int tj, int gi0, int J0, const float *ps) {
    for (int i = 0; i < ti; i++) {
        int dg = gi0 + i - J0;
        if (dg >= 0 && dg < tj) S[(size_t)i * tj + dg] = ps[gi0 + i];
    }
}

/* The two halves' passes run in one OpenMP region each: a thread takes OWN_ROWS rows (or
 * columns) at a time through every tile of the other side with its own buffers, its products
 * run single-threaded inside the region, and only it writes those rows' statistics or
 * gradient, so every value is summed in the same order whatever the thread count. */
typedef struct thr_bufs {
    float *S, *own, *blk;
} thr_bufs;

static thr_bufs thread_bufs(char *ws, const stats_layout *L, int t) {
    char *base = ws + L->thr + (size_t)t * L->thr_stride;
    return (thr_bufs){(float *)(base + L->S), (float *)(base + L->own), (float *)(base + L->blk)};
}

static int pass_threads(const stats_layout *L, int blocks) {
    int n = omp_get_max_threads();
    if (n > L->threads) n = L->threads;
    if (n > blocks) n = blocks;
    return n < 1 ? 1 : n;
}

/* The first failure inside a region, with its message (which is per thread). */
typedef struct pass_error {
    gc_status st;
    char msg[512];
} pass_error;

static void pass_fail(pass_error *e, gc_status st) {
#pragma omp critical(gc_loss_pass_error)
    if (e->st == GC_OK) {
        e->st = st;
        snprintf(e->msg, sizeof e->msg, "%s", gc_last_error());
    }
}

static int pass_failed(pass_error *e) {
    gc_status st;
#pragma omp atomic read
    st = e->st;
    return st != GC_OK;
}

static gc_status pass_result(const pass_error *e) {
    return e->st == GC_OK ? GC_OK : gc_set_error(e->st, "%s", e->msg);
}

/* Statistics of rows [R0, R0 + NR) against every passage (rm, rz: all B; re, pos, other: the
 * NR rows). */
static gc_status stats_rows_pass(const gc_rep_view *v, int P, int d, int R0, int NR, int T,
                                 const float *a, const float *b, const float *ps, double *rm,
                                 double *rz, double *re, float *pos, float *other, char *ws,
                                 const stats_layout *L) {
    const int nblk = (NR + OWN_ROWS - 1) / OWN_ROWS;
    pass_error err = {GC_OK, ""};
#pragma omp parallel num_threads(pass_threads(L, nblk))
    {
        const thr_bufs tb = thread_bufs(ws, L, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < nblk; k++) {
            if (pass_failed(&err)) continue;
            const int I0 = k * OWN_ROWS, ti = NR - I0 < OWN_ROWS ? NR - I0 : OWN_ROWS;
            const int gi0 = R0 + I0;
            const float *qb = load_rows(v->q, v->ld, v->bf16, gi0, ti, d, tb.own);
            for (int J0 = 0; J0 < P; J0 += T) {
                const int tj = P - J0 < T ? P - J0 : T;
                const float *pb = load_rows(v->p, v->ld, v->bf16, J0, tj, d, tb.blk);
                gc_status st = score_block(tb.S, qb, pb, a + gi0, b + J0, ti, tj, d);
                if (st != GC_OK) {
                    pass_fail(&err, st);
                    break;
                }
                set_positives(tb.S, ti, tj, gi0, J0, ps);
                for (int i = 0; i < ti; i++)
                    stats_row(tb.S + (size_t)i * tj, tj, gi0 + i - J0, &rm[gi0 + i], &rz[gi0 + i],
                              &re[I0 + i], &pos[I0 + i], &other[I0 + i]);
            }
        }
    }
    return pass_result(&err);
}

/* Statistics of the B positive columns against rows [R0, R0 + NR) (cm, cz, ce: all B). */
static gc_status stats_cols_pass(const gc_rep_view *v, int B, int d, int R0, int NR, int T,
                                 const float *a, const float *b, const float *ps, double *cm,
                                 double *cz, double *ce, char *ws, const stats_layout *L) {
    const int nblk = (B + OWN_ROWS - 1) / OWN_ROWS;
    pass_error err = {GC_OK, ""};
#pragma omp parallel num_threads(pass_threads(L, nblk))
    {
        const thr_bufs tb = thread_bufs(ws, L, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < nblk; k++) {
            if (pass_failed(&err)) continue;
            const int c0 = k * OWN_ROWS, nc = B - c0 < OWN_ROWS ? B - c0 : OWN_ROWS;
            const float *pb = load_rows(v->p, v->ld, v->bf16, c0, nc, d, tb.own);
            for (int I0 = 0; I0 < NR; I0 += T) {
                const int ti = NR - I0 < T ? NR - I0 : T, gi0 = R0 + I0;
                const float *qb = load_rows(v->q, v->ld, v->bf16, gi0, ti, d, tb.blk);
                gc_status st = score_block(tb.S, qb, pb, a + gi0, b + c0, ti, nc, d);
                if (st != GC_OK) {
                    pass_fail(&err, st);
                    break;
                }
                set_positives(tb.S, ti, nc, gi0, c0, ps);
                stats_cols(tb.S, nc, ti, nc, cm + c0, cz + c0, ce + c0);
            }
        }
    }
    return pass_result(&err);
}

gc_status gc_infonce_stats(const gc_rep_view *v, int B, int P, int d, const gc_loss_config *cfg,
                           const gc_loss_shard *shard, gc_loss_out *out, void *workspace) {
    if (!v || !workspace)
        return gc_set_error(GC_ERR_INVALID_ARG, "infonce stats: NULL %s",
                            !v ? "view" : "workspace");
    gc_status st = check_args(v->q, v->p, B, P, d, cfg, out, "infonce stats");
    if (st != GC_OK) return st;
    if (v->ld < d)
        return gc_set_error(GC_ERR_INVALID_ARG, "infonce stats: row stride %d < dimension %d",
                            v->ld, d);
    const gc_comm *comm = shard ? shard->comm : NULL;
    const int R0 = shard ? shard->row0 : 0, NR = shard ? shard->rows : B;
    const int sharded = gc_comm_size(comm) > 1;
    if (R0 < 0 || NR < 1 || R0 > B - NR)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "infonce stats: rows [%d, %d) outside the batch of %d", R0, R0 + NR, B);
    if (sharded && (st = gc_comm_check(comm, "infonce stats")) != GC_OK) return st;
    if (!view_finite(v->q, v->ld, v->bf16, B, d))
        return gc_set_error(GC_ERR_NUMERIC, "infonce: non-finite value in the queries");
    if (!view_finite(v->p, v->ld, v->bf16, P, d))
        return gc_set_error(GC_ERR_NUMERIC, "infonce: non-finite value in the passages");

    stats_layout L;
    stats_plan(&L, B, P, d, NR, sharded, cfg);
    char *ws = (char *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    stats_header *h = (stats_header *)(ws + L.hdr);
    *h = (stats_header){B, P, d, R0, NR, sharded, v->ld, v->bf16 != 0, 0, *cfg};
    double *row_m = (double *)(ws + L.row_m), *row_z = (double *)(ws + L.row_z);
    double *col_m = (double *)(ws + L.col_m), *col_z = (double *)(ws + L.col_z);
    double *col_e = (double *)(ws + L.col_e), *col_g = (double *)(ws + L.col_g);
    double *row_e = (double *)(ws + L.row_e);
    float *pos = (float *)(ws + L.pos), *other = (float *)(ws + L.other);
    float *a = (float *)(ws + L.a), *b = (float *)(ws + L.b), *ps = (float *)(ws + L.ps);
    float *buf = thread_bufs(ws, &L, 0).blk; /* (T, d) */
    const int sym = cfg->symmetric != 0, cosine = cfg->cosine != 0, T = L.tile;

    view_scales(a, v->q, v->ld, v->bf16, B, d, T, cfg->temperature, cosine, buf);
    view_scales(b, v->p, v->ld, v->bf16, P, d, T, 1.0, cosine, buf);
    positive_scores(ps, v, B, d, a, b);
    for (int i = 0; i < B; i++) row_m[i] = -INFINITY, row_z[i] = 0;
    for (int i = 0; i < NR; i++) row_e[i] = 0, other[i] = -INFINITY, pos[i] = 0;
    if (sym)
        for (int j = 0; j < B; j++) col_m[j] = -INFINITY, col_z[j] = 0, col_e[j] = 0;

    st = stats_rows_pass(v, P, d, R0, NR, T, a, b, ps, row_m, row_z, row_e, pos, other, ws, &L);
    if (st == GC_OK && sym)
        st = stats_cols_pass(v, B, d, R0, NR, T, a, b, ps, col_m, col_z, col_e, ws, &L);
    if (st != GC_OK) return st;
    if (sym && sharded && (st = merge_columns(comm, col_m, col_z, col_e, col_g, B)) != GC_OK)
        return st;

    const double w = (sym ? 0.5 : 1.0) / B;
    double tot[3] = {0, 0, 0}; /* loss, d loss / d log tau, hits (as gc_infonce_shard) */
    for (int i = 0; i < NR; i++) {
        const int ig = R0 + i;
        tot[0] += w * (row_m[ig] + log(row_z[ig]) - pos[i]);
        tot[1] -= w * (row_e[i] / row_z[ig] - pos[i]);
        tot[2] += pos[i] > other[i];
        if (sym) {
            tot[0] += w * (col_m[ig] + log(col_z[ig]) - pos[i]);
            tot[1] -= w * (col_e[ig] / col_z[ig] - pos[i]);
        }
    }
    if (sharded && (st = comm->ops->all_reduce_f64(comm->ctx, tot, 3, GC_COMM_SUM)) != GC_OK)
        return st;
    if (!isfinite(tot[0]) || !isfinite(tot[1]))
        return gc_set_error(GC_ERR_NUMERIC, "infonce: the loss is not finite (%g)", tot[0]);
    out->loss = tot[0];
    out->dlog_tau = tot[1];
    out->accuracy = tot[2] / B;

    /* every rank gets every row's statistics: the others' rows are zero here, so a sum is an
     * exact gather; then keep 1 / z so the gradient tiles only multiply */
    for (int i = 0; i < NR; i++) row_z[R0 + i] = 1.0 / row_z[R0 + i];
    if (sharded) {
        for (int i = 0; i < B; i++)
            if (i < R0 || i >= R0 + NR) row_m[i] = 0, row_z[i] = 0;
        if ((st = comm->ops->all_reduce_f64(comm->ctx, row_m, (size_t)B, GC_COMM_SUM)) != GC_OK ||
            (st = comm->ops->all_reduce_f64(comm->ctx, row_z, (size_t)B, GC_COMM_SUM)) != GC_OK)
            return st;
    }
    if (sym)
        for (int j = 0; j < B; j++) col_z[j] = 1.0 / col_z[j];
    h->ready = 1;
    return GC_OK;
}

gc_status gc_infonce_rep_grad(const gc_rep_view *v, int side, int first, int count, float scale,
                              float *grad, void *workspace) {
    if (!v || !grad || !workspace)
        return gc_set_error(GC_ERR_INVALID_ARG, "infonce rep grad: NULL %s",
                            !v      ? "view"
                            : !grad ? "gradient"
                                    : "workspace");
    char *ws = (char *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    stats_header *h = (stats_header *)ws; /* the header is first */
    if (!h->ready)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "infonce rep grad: the workspace holds no statistics "
                            "(gc_infonce_stats first)");
    const int B = h->B, P = h->P, d = h->d, n_side = side ? P : B;
    if (v->ld != h->ld || (v->bf16 != 0) != h->bf16)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "infonce rep grad: the view differs from the one of the statistics");
    if (side < 0 || side > 1 || first < 0 || count < 0 || first > n_side - count)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "infonce rep grad: rows [%d, %d) of side %d outside [0, %d)", first,
                            first + count, side, n_side);
    const gc_loss_config *cfg = &h->cfg;
    stats_layout L;
    stats_plan(&L, B, P, d, h->NR, h->sharded, cfg);
    const double *row_m = (const double *)(ws + L.row_m), *row_z = (const double *)(ws + L.row_z);
    const double *col_m = (const double *)(ws + L.col_m), *col_z = (const double *)(ws + L.col_z);
    const float *a = (const float *)(ws + L.a), *b = (const float *)(ws + L.b);
    const float *ps = (const float *)(ws + L.ps);
    const int sym = cfg->symmetric != 0, cosine = cfg->cosine != 0, T = L.tile;
    const double w = (sym ? 0.5 : 1.0) / B;
    const int nblk = (count + OWN_ROWS - 1) / OWN_ROWS;
    pass_error err = {GC_OK, ""};
#pragma omp parallel num_threads(pass_threads(&L, nblk))
    {
        const thr_bufs tb = thread_bufs(ws, &L, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < nblk; k++) {
            if (pass_failed(&err)) continue;
            const int c0 = first + k * OWN_ROWS;
            const int n = first + count - c0 < OWN_ROWS ? first + count - c0 : OWN_ROWS;
            float *g = grad + (size_t)(c0 - first) * d;
            const float *own;
            gc_status st = GC_OK;
            if (side == 0) { /* these queries against every passage: g = sum_J H_J p_J */
                own = load_rows(v->q, v->ld, v->bf16, c0, n, d, tb.own);
                for (int J0 = 0; J0 < P && st == GC_OK; J0 += T) {
                    const int tj = P - J0 < T ? P - J0 : T;
                    const int tc = sym && J0 < B ? (B - J0 < tj ? B - J0 : tj) : 0;
                    const float *pb = load_rows(v->p, v->ld, v->bf16, J0, tj, d, tb.blk);
                    if ((st = score_block(tb.S, own, pb, a + c0, b + J0, n, tj, d)) != GC_OK) break;
                    set_positives(tb.S, n, tj, c0, J0, ps);
                    for (int i = 0; i < n; i++)
                        grad_row(tb.S + (size_t)i * tj, tj, tc, c0 + i - J0, c0 + i, J0,
                                 row_m[c0 + i], row_z[c0 + i], col_m, col_z, a[c0 + i], b + J0, w);
                    st = gc_matmul(g, tb.S, pb, n, d, tj, 0, 0, J0 > 0);
                }
            } else { /* these passages against every query: g = sum_I H_I^T q_I */
                own = load_rows(v->p, v->ld, v->bf16, c0, n, d, tb.own);
                const int tc = sym && c0 < B ? (B - c0 < n ? B - c0 : n) : 0;
                for (int I0 = 0; I0 < B && st == GC_OK; I0 += T) {
                    const int ti = B - I0 < T ? B - I0 : T;
                    const float *qb = load_rows(v->q, v->ld, v->bf16, I0, ti, d, tb.blk);
                    if ((st = score_block(tb.S, qb, own, a + I0, b + c0, ti, n, d)) != GC_OK) break;
                    set_positives(tb.S, ti, n, I0, c0, ps);
                    for (int i = 0; i < ti; i++)
                        grad_row(tb.S + (size_t)i * n, n, tc, I0 + i - c0, I0 + i, c0,
                                 row_m[I0 + i], row_z[I0 + i], col_m, col_z, a[I0 + i], b + c0, w);
                    st = gc_matmul(g, tb.S, qb, n, d, ti, 1, 0, I0 > 0);
                }
            }
            if (st != GC_OK) {
                pass_fail(&err, st);
                continue;
            }
            if (cosine) cosine_project(g, own, n, d);
            if (scale != 1.0f)
                for (size_t k2 = 0; k2 < (size_t)n * d; k2++) g[k2] *= scale;
        }
    }
    return pass_result(&err);
}

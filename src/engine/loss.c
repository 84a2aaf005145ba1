/* loss.c: the contrastive (InfoNCE) loss with in-batch and hard negatives.
 *
 * The plain dense reference (the whole B x P score matrix, in double) serves gc_infonce_ref_f64
 * and, on widened inputs, gc_infonce_ref; gc_infonce is the tiled version that production
 * uses and the tests hold against it. */
#include "gc_comm.h"
#include "gc_loss.h"
#include "gc_testing.h"

#include <math.h>
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
#define GC_LOSS_COL_BLOCK 64
/* Loops over fewer elements than this stay on one thread: for small batches and tiles the
 * fork and join would cost more than the work (and much more on an oversubscribed machine). */
#define PAR(n) ((n) >= 32768)

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
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tj))
            for (int i = 0; i < ti; i++) {
                const float *s = S + (size_t)i * tj;
                const int dg = R0 + I0 + i - J0; /* the positive's column in this tile, if any */
                float m = -INFINITY;
                for (int j = 0; j < tj; j++) m = s[j] > m ? s[j] : m;
                double z = 0, e = 0;
                for (int j = 0; j < tj; j++) {
                    float x = expf(s[j] - m);
                    z += x, e += (double)x * s[j];
                }
                lse_merge(&row_m[I0 + i], &row_z[I0 + i], &row_e[I0 + i], m, z, e);
                if (dg >= 0 && dg < tj) {
                    float o = -INFINITY;
                    for (int j = 0; j < tj; j++)
                        if (j != dg) o = s[j] > o ? s[j] : o;
                    pos[I0 + i] = s[dg];
                    m = o;
                }
                if (m > other[I0 + i]) other[I0 + i] = m;
            }
            if (sym && J0 < B) {
                const int tc = B - J0 < tj ? B - J0 : tj; /* positive columns in this tile */
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tc))
                for (int c0 = 0; c0 < tc; c0 += GC_LOSS_COL_BLOCK) {
                    const int nc = tc - c0 < GC_LOSS_COL_BLOCK ? tc - c0 : GC_LOSS_COL_BLOCK;
                    float m[GC_LOSS_COL_BLOCK];
                    double z[GC_LOSS_COL_BLOCK], e[GC_LOSS_COL_BLOCK];
                    for (int c = 0; c < nc; c++) m[c] = -INFINITY, z[c] = 0, e[c] = 0;
                    for (int i = 0; i < ti; i++) {
                        const float *s = S + (size_t)i * tj + c0;
                        for (int c = 0; c < nc; c++) m[c] = s[c] > m[c] ? s[c] : m[c];
                    }
                    for (int i = 0; i < ti; i++) {
                        const float *s = S + (size_t)i * tj + c0;
                        for (int c = 0; c < nc; c++) {
                            float x = expf(s[c] - m[c]);
                            z[c] += x, e[c] += (double)x * s[c];
                        }
                    }
                    for (int c = 0; c < nc; c++) {
                        const int j = J0 + c0 + c;
                        lse_merge(&col_m[j], &col_z[j], &col_e[j], m[c], z[c], e[c]);
                    }
                }
            }
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
#pragma omp parallel for schedule(static) if (PAR((size_t)ti * tj))
            for (int i = 0; i < ti; i++) {
                float *s = S + (size_t)i * tj;
                const float mi = (float)row_m[I0 + i], ri = (float)(w * row_z[I0 + i]);
                const float ai = a[I0 + i];
                const float *bj = b + J0;
                const int dg = R0 + I0 + i - J0; /* the positive's column in this tile, if any */
                const float sd = dg >= 0 && dg < tj ? s[dg] : 0.0f;
                /* H_ij = dS_ij a_i b_j */
                for (int j = 0; j < tc; j++) {
                    const int jg = J0 + j;
                    float g = expf(s[j] - mi) * ri +
                              expf(s[j] - (float)col_m[jg]) * (float)(w * col_z[jg]);
                    s[j] = g * ai * bj[j];
                }
                for (int j = tc; j < tj; j++) s[j] = expf(s[j] - mi) * ri * ai * bj[j];
                /* softmax_ii - 1 cancels badly in float when the positive takes nearly all
                 * the mass (a well-trained model, or scale 100): form it in double from the
                 * running statistics, whose z holds the other passages' mass to double
                 * precision */
                if (dg >= 0 && dg < tj) {
                    const int il = I0 + i, ig = R0 + il;
                    double g = exp((double)sd - row_m[il]) * row_z[il] - 1.0;
                    if (dg < tc) g += exp((double)sd - col_m[ig]) * col_z[ig] - 1.0;
                    s[dg] = (float)(w * g * ai * bj[dg]);
                }
            }
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

/* bert_kernels.c: the BERT layer kernels (embeddings, LayerNorm, linear, GELU, dropout,
 * attention, pooling), forward and backward, with OpenMP for the element-wise loops and
 * gc_matmul for every matrix product; and the plain attention reference beside the optimized
 * attention. */
#include "models/bert_kernels.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/vexp.h"

#ifdef GC_HAVE_X86_PATHS
#include <immintrin.h>
#endif

/* Column blocks for reductions over tokens (bias and LayerNorm parameter gradients, the
 * embedding scatter): each thread owns whole columns, so nothing is summed twice and the
 * order of the sum does not depend on the number of threads.
 *
 * PARAM_SUMS: these sums add up in double and reach the float gradient once per chunk. The
 * terms of a bias or LayerNorm gradient largely cancel (with hard negatives, the last
 * LayerNorm bias sums hundreds of terms to something far smaller than they are), so float
 * partial sums would leave the gradient depending on how the batch is cut into chunks. */
#define COL_BLOCK 16

/* Row reductions in eight interleaved lanes. A single float accumulator is a chain of
 * dependent additions the compiler may not reorder (so it cannot vectorize); eight lanes
 * vectorize, and the order of the sum still depends only on the length. */
static inline float lanes_total(const float acc[8]) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static inline float row_sum(const float *x, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[i + l];
    for (; i < n; i++) acc[i & 7] += x[i];
    return lanes_total(acc);
}

static inline float row_dot(const float *x, const float *y, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[i + l] * y[i + l];
    for (; i < n; i++) acc[i & 7] += x[i] * y[i];
    return lanes_total(acc);
}

static inline float row_max(const float *x, int n) {
    float acc[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                    -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    for (; i < n; i++) acc[i & 7] = x[i] > acc[i & 7] ? x[i] : acc[i & 7];
    float m = acc[0];
    for (int l = 1; l < 8; l++) m = acc[l] > m ? acc[l] : m;
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* embeddings */

void bert_embed_forward(float *out, const bert_chunk *ck, const int32_t *ids, const float *wte,
                        const float *wpe, const float *wtt, int C, int nthr) {
    // out is (N,C); wte (V,C), wpe (maxP,C), wtt (TV,C)
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int n = 0; n < ck->N; n++) {
        const float *we = wte + (size_t)ids[n] * C;
        const float *pe = wpe + (size_t)ck->tok_pos[n] * C;
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = we[i] + pe[i] + wtt[i];
    }
}

void bert_embed_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                         const bert_chunk *ck, const int32_t *ids, const int *by_id, int C,
                         int nthr) {
    // dout (N,C); each row of a table gets one double sum per call (see PARAM_SUMS)
    int N = ck->N, nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        double acc[COL_BLOCK], all[COL_BLOCK] = {0};
        // word embeddings: the tokens in id order, one sum per run of equal ids
        for (int r = 0; r < N;) {
            int32_t id = ids[by_id[r]];
            for (int i = c0; i < c1; i++) acc[i - c0] = 0.0;
            for (; r < N && ids[by_id[r]] == id; r++) {
                const float *d = dout + (size_t)by_id[r] * C;
                for (int i = c0; i < c1; i++) acc[i - c0] += d[i];
            }
            float *we = dwte + (size_t)id * C;
            for (int i = c0; i < c1; i++) we[i] = (float)(we[i] + acc[i - c0]);
        }
        // positions: token t of every sequence that long; token type 0: every token
        for (int t = 0; t < ck->max_T; t++) {
            for (int i = c0; i < c1; i++) acc[i - c0] = 0.0;
            for (int b = 0; b < ck->B; b++) {
                if (ck->off[b + 1] - ck->off[b] <= t) continue;
                const float *d = dout + (size_t)(ck->off[b] + t) * C;
                for (int i = c0; i < c1; i++) acc[i - c0] += d[i];
            }
            float *pe = dwpe + (size_t)t * C;
            for (int i = c0; i < c1; i++)
                pe[i] = (float)(pe[i] + acc[i - c0]), all[i - c0] += acc[i - c0];
        }
        for (int i = c0; i < c1; i++) dwtt[i] = (float)(dwtt[i] + all[i - c0]);
    }
}

void bert_embed_backward_ref(float *dwte, float *dwpe, float *dwtt, const float *dout,
                             const bert_chunk *ck, const int32_t *ids, int C) {
    int N = ck->N;
    for (int i = 0; i < C; i++) {
        double tt = 0.0;
        for (int n = 0; n < N; n++) tt += dout[(size_t)n * C + i];
        dwtt[i] = (float)(dwtt[i] + tt);
    }
    // the first token of each id and of each position collects all of them
    for (int n = 0; n < N; n++) {
        int seen_id = 0, seen_pos = 0;
        for (int m = 0; m < n; m++) {
            seen_id |= ids[m] == ids[n];
            seen_pos |= ck->tok_pos[m] == ck->tok_pos[n];
        }
        for (int i = 0; i < C && !(seen_id && seen_pos); i++) {
            double sw = 0.0, sp = 0.0;
            for (int m = n; m < N; m++) {
                if (ids[m] == ids[n]) sw += dout[(size_t)m * C + i];
                if (ck->tok_pos[m] == ck->tok_pos[n]) sp += dout[(size_t)m * C + i];
            }
            float *we = dwte + (size_t)ids[n] * C + i, *pe = dwpe + (size_t)ck->tok_pos[n] * C + i;
            if (!seen_id) *we = (float)(*we + sw);
            if (!seen_pos) *pe = (float)(*pe + sp);
        }
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void bert_order_by_id(int *by_id, uint64_t *keys, const int32_t *ids, int N) {
    // ids are non-negative, so (id, index) packed high to low sorts as the pair
    for (int n = 0; n < N; n++) keys[n] = (uint64_t)(uint32_t)ids[n] << 32 | (uint32_t)n;
    qsort(keys, (size_t)N, sizeof *keys, cmp_u64);
    for (int n = 0; n < N; n++) by_id[n] = (int)(uint32_t)keys[n];
}

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm */

void bert_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                            const float *b, int N, int C, float eps, int nthr) {
    // inp, out are (N,C); mean, rstd (N); w, b (C)
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = row_sum(x, C) / C;
        float acc[8] = {0};
        int i = 0;
        for (; i + 8 <= C; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += (x[i + l] - m) * (x[i + l] - m);
        for (; i < C; i++) acc[i & 7] += (x[i] - m) * (x[i] - m);
        float v = lanes_total(acc) / C;
        float s = 1.0f / sqrtf(v + eps);
        for (i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

void bert_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                             const float *w, const float *mean, const float *rstd, int N, int C,
                             int nthr) {
#pragma omp parallel num_threads(nthr)
    {
        // dinp = rstd * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)), dnorm = dout * w
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            float am[8] = {0}, ap[8] = {0};
            int i = 0;
            for (; i + 8 <= C; i += 8)
                for (int l = 0; l < 8; l++) {
                    float dn = d[i + l] * w[i + l];
                    am[l] += dn;
                    ap[l] += dn * (x[i + l] - m) * s;
                }
            for (; i < C; i++) {
                float dn = d[i] * w[i];
                am[i & 7] += dn;
                ap[i & 7] += dn * (x[i] - m) * s;
            }
            float dmean = lanes_total(am) / C, dproj = lanes_total(ap) / C;
            for (i = 0; i < C; i++) {
                float xhat = (x[i] - m) * s;
                dx[i] = s * (d[i] * w[i] - dmean - xhat * dproj);
            }
        }
        // dw, db: sums over tokens, in double (see PARAM_SUMS)
        int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
            double aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
                float m = mean[n], s = rstd[n];
                for (int i = c0; i < c1; i++) {
                    float xhat = (x[i] - m) * s;
                    aw[i - c0] += (double)d[i] * xhat;
                    ab[i - c0] += d[i];
                }
            }
            for (int i = c0; i < c1; i++)
                dw[i] = (float)(dw[i] + aw[i - c0]), db[i] = (float)(db[i] + ab[i - c0]);
        }
    }
}

void bert_layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C) {
    for (int i = 0; i < C; i++) {
        double sw = 0.0, sb = 0.0;
        for (int n = 0; n < N; n++) {
            float xhat = (inp[(size_t)n * C + i] - mean[n]) * rstd[n];
            sw += (double)dout[(size_t)n * C + i] * xhat;
            sb += dout[(size_t)n * C + i];
        }
        dw[i] = (float)(dw[i] + sw);
        db[i] = (float)(db[i] + sb);
    }
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        double dmean = 0.0, dproj = 0.0;
        for (int i = 0; i < C; i++) {
            double xhat = ((double)x[i] - mean[n]) * rstd[n];
            dmean += (double)d[i] * w[i];
            dproj += (double)d[i] * w[i] * xhat;
        }
        dmean /= C;
        dproj /= C;
        for (int i = 0; i < C; i++) {
            double xhat = ((double)x[i] - mean[n]) * rstd[n];
            dinp[(size_t)n * C + i] =
                (float)(rstd[n] * ((double)d[i] * w[i] - dmean - xhat * dproj));
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* linear layers */

gc_status bert_linear_forward(float *out, const float *inp, const float *w, const float *b, int N,
                              int OC, int IC, int nthr) {
    gc_status st = gc_matmul(out, inp, w, N, OC, IC, 0, 1, 0);
    if (st != GC_OK) return st;
    if (b) {
#pragma omp parallel for num_threads(nthr) schedule(static)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int i = 0; i < OC; i++) o[i] += b[i];
        }
    }
    return GC_OK;
}

void bert_bias_backward(float *db, const float *dout, int N, int OC, int nthr) {
    // db (OC) += column sums of dout (N,OC), in double (see PARAM_SUMS)
    int nblk = (OC + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < OC ? c0 + COL_BLOCK : OC;
        double acc[COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int i = c0; i < c1; i++) acc[i - c0] += d[i];
        }
        for (int i = c0; i < c1; i++) db[i] = (float)(db[i] + acc[i - c0]);
    }
}

void bert_bias_backward_ref(float *db, const float *dout, int N, int OC) {
    for (int i = 0; i < OC; i++) {
        double acc = 0.0;
        for (int n = 0; n < N; n++) acc += dout[(size_t)n * OC + i];
        db[i] = (float)(db[i] + acc);
    }
}

gc_status bert_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, int N, int OC, int IC,
                               int accumulate_dinp, int nthr) {
    gc_status st = GC_OK;
    if (dinp) st = gc_matmul(dinp, dout, w, N, IC, OC, 0, 0, accumulate_dinp);
    if (st == GC_OK) st = gc_matmul(dw, dout, inp, OC, IC, N, 1, 0, 1);
    if (st != GC_OK) return st;
    if (db) bert_bias_backward(db, dout, N, OC, nthr);
    return GC_OK;
}

/* bf16 forms (--precision bf16): the matrix inputs rounded to bf16, fp32 accumulation and
 * outputs. Each element is rounded on its own, so an example's numbers do not depend on its
 * chunk-mates. */

void bert_to_bf16(uint16_t *out, const float *in, size_t n, int nthr) {
    const size_t blk = 16384;
    long nb = (long)((n + blk - 1) / blk);
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (long b = 0; b < nb; b++) {
        size_t i0 = (size_t)b * blk, len = n - i0 < blk ? n - i0 : blk;
        gc_bf16_from_f32(out + i0, in + i0, len);
    }
}

gc_status bert_linear_forward_bf16(float *out, const uint16_t *inp16, const uint16_t *w16,
                                   const float *b, int N, int OC, int IC, int nthr) {
    gc_status st = gc_matmul_ex(out, inp16, w16, N, OC, IC, 0, 1, 0, GC_MM_BF16);
    if (st != GC_OK) return st;
    if (b) {
#pragma omp parallel for num_threads(nthr) schedule(static)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int i = 0; i < OC; i++) o[i] += b[i];
        }
    }
    return GC_OK;
}

gc_status bert_linear_backward_bf16(float *dinp, float *dw, float *db, const float *dout,
                                    const uint16_t *inp16, const uint16_t *w16, int N, int OC,
                                    int IC, int accumulate_dinp, uint16_t *dout16, int nthr) {
    gc_status st = GC_OK;
    bert_to_bf16(dout16, dout, (size_t)N * OC, nthr);
    if (dinp) st = gc_matmul_ex(dinp, dout16, w16, N, IC, OC, 0, 0, accumulate_dinp, GC_MM_BF16);
    if (st == GC_OK) st = gc_matmul_ex(dw, dout16, inp16, OC, IC, N, 1, 0, 1, GC_MM_BF16);
    if (st != GC_OK) return st;
    if (db) bert_bias_backward(db, dout, N, OC, nthr);
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* vector exp and erf
 *
 * libm's expf and erff are scalar calls, and the GELU (an erf per element of the intermediate
 * layer, several times per training step) and the softmax (an exp per attention score) spend
 * more time in them than in the matrix products around them. These eight-wide versions keep
 * float accuracy: exp by range reduction to [-ln2/2, ln2/2] and a degree-7 Taylor polynomial
 * (~1 ulp); erf as x P(x^2) / Q(x^2), a rational fit (relative error 2e-8 on [0, 3.92], where
 * float erf reaches 1) evaluated in double. The exp is the project's (core/vexp.h, shared with
 * the loss). bert_exp / bert_erf below are the same math one value at a time, for the tails of
 * arrays and the generic path, with the same fused steps so every path gives the same bits; the
 * tests hold both to libm's expf / erff. */

static const double ERF_P[6] = {1.1283791462876034,     0.19039975514717059,
                                0.05274786474125645,    0.0037653432167172422,
                                0.00028487857200374636, 2.050159240946998e-06};
static const double ERF_Q[6] = {1.0,
                                0.5020701319082401,
                                0.11410636439385133,
                                0.014968659596570125,
                                0.0011624734086573083,
                                3.809225791799038e-05};
#define ERF_CLAMP 3.92

float bert_erf(float xf) {
    double x = xf < -ERF_CLAMP ? -ERF_CLAMP : xf > ERF_CLAMP ? ERF_CLAMP : (double)xf;
    double x2 = x * x, p = ERF_P[5], q = ERF_Q[5];
    for (int k = 4; k >= 0; k--) p = fma(p, x2, ERF_P[k]), q = fma(q, x2, ERF_Q[k]);
    return (float)(x * p / q);
}

float bert_exp(float x) {
    return gc_exp1(x);
}

#ifdef GC_HAVE_X86_PATHS
static inline GC_TARGET_AVX2 __m256d erf4d(__m256d x) {
    x = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-ERF_CLAMP)), _mm256_set1_pd(ERF_CLAMP));
    __m256d x2 = _mm256_mul_pd(x, x);
    __m256d p = _mm256_set1_pd(ERF_P[5]), q = _mm256_set1_pd(ERF_Q[5]);
    for (int k = 4; k >= 0; k--) {
        p = _mm256_fmadd_pd(p, x2, _mm256_set1_pd(ERF_P[k]));
        q = _mm256_fmadd_pd(q, x2, _mm256_set1_pd(ERF_Q[k]));
    }
    return _mm256_div_pd(_mm256_mul_pd(x, p), q);
}

static inline GC_TARGET_AVX2 __m256 erf8(__m256 x) {
    __m128 lo = _mm256_cvtpd_ps(erf4d(_mm256_cvtps_pd(_mm256_castps256_ps128(x))));
    __m128 hi = _mm256_cvtpd_ps(erf4d(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

/* The same math eight lanes wide in double, step for step, so erf16 gives erf8's bits. */
static inline GC_TARGET_AVX512 __m512d erf8d(__m512d x) {
    x = _mm512_min_pd(_mm512_max_pd(x, _mm512_set1_pd(-ERF_CLAMP)), _mm512_set1_pd(ERF_CLAMP));
    __m512d x2 = _mm512_mul_pd(x, x);
    __m512d p = _mm512_set1_pd(ERF_P[5]), q = _mm512_set1_pd(ERF_Q[5]);
    for (int k = 4; k >= 0; k--) {
        p = _mm512_fmadd_pd(p, x2, _mm512_set1_pd(ERF_P[k]));
        q = _mm512_fmadd_pd(q, x2, _mm512_set1_pd(ERF_Q[k]));
    }
    return _mm512_div_pd(_mm512_mul_pd(x, p), q);
}

static inline GC_TARGET_AVX512 __m512 erf16(__m512 x) {
    __m256 lo = _mm512_cvtpd_ps(erf8d(_mm512_cvtps_pd(_mm512_castps512_ps256(x))));
    __m256 hi = _mm512_cvtpd_ps(
        erf8d(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))));
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}
#endif

/* ------------------------------------------------------------------------------------------ */
/* GELU (exact) */

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

/* Each thread takes whole blocks of 8 so the vector loop covers all but the array's tail. */
#define GELU_BLOCK 1024

#ifdef GC_HAVE_X86_PATHS
/* The AVX2 and AVX-512 bodies of the GELU loops: each does the whole groups of eight
 * in [i, end) and returns where the scalar tail starts. */
static GC_TARGET_AVX2 size_t gelu_forward_avx2(float *out, const float *inp, size_t i, size_t end) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 s2 = _mm256_set1_ps(INV_SQRT2);
    for (; i + 8 <= end; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i);
        __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, erf8(_mm256_mul_ps(x, s2))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(x, cdf));
    }
    return i;
}

static GC_TARGET_AVX2 size_t gelu_backward_avx2(float *dinp, const float *inp, const float *dout,
                                                size_t i, size_t end) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 s2 = _mm256_set1_ps(INV_SQRT2), nhalf = _mm256_set1_ps(-0.5f),
                 c = _mm256_set1_ps(INV_SQRT_2PI);
    for (; i + 8 <= end; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i);
        __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, erf8(_mm256_mul_ps(x, s2))));
        __m256 pdf = _mm256_mul_ps(c, gc_exp8(_mm256_mul_ps(nhalf, _mm256_mul_ps(x, x))));
        __m256 g = _mm256_fmadd_ps(x, pdf, cdf);
        _mm256_storeu_ps(dinp + i, _mm256_mul_ps(_mm256_loadu_ps(dout + i), g));
    }
    return i;
}

static GC_TARGET_AVX512 size_t gelu_forward_avx512(float *out, const float *inp, size_t i,
                                                   size_t end) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f),
                 s2 = _mm512_set1_ps(INV_SQRT2);
    for (; i + 16 <= end; i += 16) {
        __m512 x = _mm512_loadu_ps(inp + i);
        __m512 cdf = _mm512_mul_ps(half, _mm512_add_ps(one, erf16(_mm512_mul_ps(x, s2))));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(x, cdf));
    }
    return i;
}

static GC_TARGET_AVX512 size_t gelu_backward_avx512(float *dinp, const float *inp,
                                                    const float *dout, size_t i, size_t end) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f),
                 s2 = _mm512_set1_ps(INV_SQRT2), nhalf = _mm512_set1_ps(-0.5f),
                 c = _mm512_set1_ps(INV_SQRT_2PI);
    for (; i + 16 <= end; i += 16) {
        __m512 x = _mm512_loadu_ps(inp + i);
        __m512 cdf = _mm512_mul_ps(half, _mm512_add_ps(one, erf16(_mm512_mul_ps(x, s2))));
        __m512 pdf = _mm512_mul_ps(c, gc_exp16(_mm512_mul_ps(nhalf, _mm512_mul_ps(x, x))));
        __m512 g = _mm512_fmadd_ps(x, pdf, cdf);
        _mm512_storeu_ps(dinp + i, _mm512_mul_ps(_mm512_loadu_ps(dout + i), g));
    }
    return i;
}
#endif

/* One block [i, end) of the GELU and of its derivative, vector loop then scalar tail: every
 * GELU entry point below goes through these, so all give the same bits. */
static void gelu_forward_block(float *out, const float *inp, size_t i, size_t end,
                               gc_cpu_path path) {
    (void)path;
#ifdef GC_HAVE_X86_PATHS
    if (path == GC_CPU_AVX512) i = gelu_forward_avx512(out, inp, i, end);
    if (path == GC_CPU_AVX2) i = gelu_forward_avx2(out, inp, i, end);
#endif
    for (; i < end; i++) {
        float x = inp[i];
        out[i] = x * (0.5f * (1.0f + bert_erf(x * INV_SQRT2)));
    }
}

static void gelu_backward_block(float *dinp, const float *inp, const float *dout, size_t i,
                                size_t end, gc_cpu_path path) {
    (void)path;
#ifdef GC_HAVE_X86_PATHS
    if (path == GC_CPU_AVX512) i = gelu_backward_avx512(dinp, inp, dout, i, end);
    if (path == GC_CPU_AVX2) i = gelu_backward_avx2(dinp, inp, dout, i, end);
#endif
    for (; i < end; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + bert_erf(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * bert_exp(-0.5f * x * x);
        dinp[i] = dout[i] * fmaf(x, pdf, cdf);
    }
}

void bert_gelu_forward(float *out, const float *inp, size_t n, int nthr) {
    // x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
    size_t nblk = (n + GELU_BLOCK - 1) / GELU_BLOCK;
    gc_cpu_path path = gc_cpu_path_get();
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t i = blk * GELU_BLOCK, end = i + GELU_BLOCK < n ? i + GELU_BLOCK : n;
        gelu_forward_block(out, inp, i, end, path);
    }
}

void bert_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n, int nthr) {
    // d/dx x Phi(x) = Phi(x) + x phi(x)
    size_t nblk = (n + GELU_BLOCK - 1) / GELU_BLOCK;
    gc_cpu_path path = gc_cpu_path_get();
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t i = blk * GELU_BLOCK, end = i + GELU_BLOCK < n ? i + GELU_BLOCK : n;
        gelu_backward_block(dinp, inp, dout, i, end, path);
    }
}

void bert_gelu_forward_bf16(uint16_t *out16, uint16_t *inp16, const float *inp, size_t n,
                            int nthr) {
    // each block's GELU in float on the stack, then rounded: the bits of
    // bert_to_bf16(bert_gelu_forward(inp)) without the float array
    size_t nblk = (n + GELU_BLOCK - 1) / GELU_BLOCK;
    gc_cpu_path path = gc_cpu_path_get();
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t i = blk * GELU_BLOCK, len = i + GELU_BLOCK < n ? GELU_BLOCK : n - i;
        float g[GELU_BLOCK];
        gelu_forward_block(g, inp + i, 0, len, path);
        gc_bf16_from_f32(out16 + i, g, len);
        if (inp16) gc_bf16_from_f32(inp16 + i, inp + i, len);
    }
}

void bert_gelu_backward_bf16(float *dinp, const uint16_t *inp16, const float *dout, size_t n,
                             int nthr) {
    // each block's input widened to float on the stack (exact), then bert_gelu_backward's math
    size_t nblk = (n + GELU_BLOCK - 1) / GELU_BLOCK;
    gc_cpu_path path = gc_cpu_path_get();
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t i = blk * GELU_BLOCK, len = i + GELU_BLOCK < n ? GELU_BLOCK : n - i;
        float x[GELU_BLOCK];
        gc_bf16_to_f32(x, inp16 + i, len);
        gelu_backward_block(dinp + i, x, dout + i, 0, len, path);
    }
}

void bert_gelu_forward_ref(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * INV_SQRT2));
}

void bert_gelu_backward_ref(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        dinp[i] = dout[i] * (cdf + x * INV_SQRT_2PI * expf(-0.5f * x * x));
    }
}

void bert_gelu_forward_bf16_ref(uint16_t *out16, uint16_t *inp16, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g;
        bert_gelu_forward_ref(&g, inp + i, 1);
        gc_bf16_from_f32_ref(out16 + i, &g, 1);
        if (inp16) gc_bf16_from_f32_ref(inp16 + i, inp + i, 1);
    }
}

void bert_gelu_backward_bf16_ref(float *dinp, const uint16_t *inp16, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)inp16[i] << 16; /* bf16 is the top half of a float */
        float x;
        memcpy(&x, &u, sizeof x);
        bert_gelu_backward_ref(dinp + i, &x, dout + i, 1);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* dropout and residual */

void bert_dropout(float *out, const float *inp, const bert_chunk *ck, uint32_t stream, float p,
                  int C, float *scratch, int nthr) {
    size_t total = (size_t)ck->N * C;
    if (!ck->train || p <= 0.0f) {
        if (out != inp) memcpy(out, inp, total * sizeof(float));
        return;
    }
#pragma omp parallel num_threads(nthr)
    {
        float *mask = scratch + (size_t)omp_get_thread_num() * C;
#pragma omp for schedule(static)
        for (int n = 0; n < ck->N; n++) {
            gc_rng_addr a = {ck->seed, ck->step, ck->side, ck->first + (uint32_t)ck->tok_seq[n],
                             stream};
            gc_dropout_mask(mask, &a, (uint32_t)ck->tok_pos[n] * (uint32_t)C, (size_t)C, p);
            const float *x = inp + (size_t)n * C;
            float *o = out + (size_t)n * C;
            for (int i = 0; i < C; i++) o[i] = x[i] * mask[i];
        }
    }
}

void bert_residual_forward(float *out, const float *a, const float *b, size_t n, int nthr) {
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ------------------------------------------------------------------------------------------ */
/* attention */

static inline uint32_t att_element(const bert_chunk *ck, int h, int i) {
    return ((uint32_t)h * (uint32_t)ck->max_position + (uint32_t)i) * (uint32_t)ck->max_position;
}

size_t bert_attention_scratch_floats(int max_T, int hs) {
    /* forward: dropped probabilities, probabilities, context, q, k, v of one head;
     * backward: mask, dropped probabilities, their gradient, dctx and a result of one head */
    return 3 * (size_t)max_T * max_T + 4 * (size_t)max_T * hs;
}

/* A matmul failing inside a parallel loop: keep the first message and stop the other tasks. */
typedef struct par_fail {
    gc_status st;
    char msg[256];
} par_fail;

static void par_fail_set(par_fail *f, gc_status st) {
#pragma omp critical(bert_par_fail)
    {
        if (f->st == GC_OK) {
            f->st = st;
            snprintf(f->msg, sizeof f->msg, "%s", gc_last_error());
        }
    }
}

static int par_failed(par_fail *f) {
    gc_status s;
#pragma omp atomic read
    s = f->st;
    return s != GC_OK;
}

static gc_status par_fail_report(const par_fail *f) {
    if (f->st == GC_OK) return GC_OK;
    return gc_set_error(f->st, "%s", f->msg);
}

/* row (T) = softmax(row * scale), in place. */
static void softmax_row(float *row, int T, float scale) {
    float mx = row_max(row, T) * scale;
    for (int j = 0; j < T; j++) row[j] = row[j] * scale - mx;
    gc_exp_array(row, row, (size_t)T);
    float inv = 1.0f / row_sum(row, T);
    for (int j = 0; j < T; j++) row[j] *= inv;
}

gc_status bert_attention_forward(float *ctx, float *att, float *qkvh, const float *qkv,
                                 const bert_chunk *ck, int C, int NH, uint32_t stream, float p,
                                 float *scratch, int nthr) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int drop = ck->train && p > 0.0f;
    size_t per_thread = bert_attention_scratch_floats(ck->max_T, hs);
    par_fail fail = {GC_OK, ""};

#pragma omp parallel num_threads(nthr)
    {
        // qkv (N,3C) token-major -> per sequence q, k, v blocks of (NH, T, hs)
#pragma omp for schedule(static)
        for (int n = 0; n < (qkvh ? ck->N : 0); n++) {
            int b = ck->tok_seq[n], t = ck->tok_pos[n], T = ck->off[b + 1] - ck->off[b];
            float *blk = qkvh + 3 * (size_t)ck->off[b] * C;
            const float *row = qkv + (size_t)n * 3 * C;
            for (int part = 0; part < 3; part++)
                for (int h = 0; h < NH; h++)
                    memcpy(blk + (size_t)part * T * C + ((size_t)h * T + t) * hs,
                           row + (size_t)part * C + (size_t)h * hs, sizeof(float) * hs);
        }

        size_t TT = (size_t)ck->max_T * ck->max_T, Ths = (size_t)ck->max_T * hs;
        float *sc = scratch + (size_t)omp_get_thread_num() * per_thread;
        float *pd = sc;         // (T,T) dropped probabilities
        float *ps = sc + TT;    // (T,T) probabilities when att is NULL
        float *o = sc + 2 * TT; // (T,hs) context of one head
        float *hq = o + Ths;    // (3,T,hs) q, k, v of one head when qkvh is NULL
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < ck->B * NH; task++) {
            if (par_failed(&fail)) continue;
            int b = task / NH, h = task % NH, T = ck->off[b + 1] - ck->off[b];
            const float *q, *k, *v;
            if (qkvh) {
                const float *blk = qkvh + 3 * (size_t)ck->off[b] * C;
                q = blk + (size_t)h * T * hs;
                k = blk + (size_t)T * C + (size_t)h * T * hs;
                v = blk + 2 * (size_t)T * C + (size_t)h * T * hs;
            } else {
                for (int part = 0; part < 3; part++)
                    for (int i = 0; i < T; i++)
                        memcpy(hq + ((size_t)part * T + i) * hs,
                               qkv + (size_t)(ck->off[b] + i) * 3 * C + (size_t)part * C +
                                   (size_t)h * hs,
                               sizeof(float) * hs);
                q = hq, k = hq + (size_t)T * hs, v = hq + 2 * (size_t)T * hs;
            }
            float *P = att ? att + ck->att_off[b] + (size_t)h * T * T : ps;
            gc_status st = gc_matmul(P, q, k, T, T, hs, 0, 1, 0); // raw scores q k^T
            if (st != GC_OK) {
                par_fail_set(&fail, st);
                continue;
            }
            for (int i = 0; i < T; i++) softmax_row(P + (size_t)i * T, T, scale);
            const float *pv = P;
            if (drop) {
                gc_rng_addr a = {ck->seed, ck->step, ck->side, ck->first + (uint32_t)b, stream};
                for (int i = 0; i < T; i++) {
                    float *row = pd + (size_t)i * T;
                    gc_dropout_mask(row, &a, att_element(ck, h, i), (size_t)T, p);
                    for (int j = 0; j < T; j++) row[j] *= P[(size_t)i * T + j];
                }
                pv = pd;
            }
            st = gc_matmul(o, pv, v, T, hs, T, 0, 0, 0); // (T,T) @ (T,hs)
            if (st != GC_OK) {
                par_fail_set(&fail, st);
                continue;
            }
            for (int i = 0; i < T; i++)
                memcpy(ctx + (size_t)(ck->off[b] + i) * C + (size_t)h * hs, o + (size_t)i * hs,
                       sizeof(float) * hs);
        }
    }
    return par_fail_report(&fail);
}

gc_status bert_attention_backward(float *dqkv, const float *dctx, const float *att,
                                  const float *qkvh, const bert_chunk *ck, int C, int NH,
                                  uint32_t stream, float p, float *scratch, int nthr) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int drop = ck->train && p > 0.0f;
    size_t per_thread = bert_attention_scratch_floats(ck->max_T, hs);
    size_t TT = (size_t)ck->max_T * ck->max_T;
    par_fail fail = {GC_OK, ""};

#pragma omp parallel num_threads(nthr)
    {
        float *sc = scratch + (size_t)omp_get_thread_num() * per_thread;
        float *mask = sc, *pd = sc + TT, *dp = sc + 2 * TT;
        float *g = sc + 3 * TT, *o = g + (size_t)ck->max_T * hs;
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < ck->B * NH; task++) {
            if (par_failed(&fail)) continue;
            int b = task / NH, h = task % NH, T = ck->off[b + 1] - ck->off[b];
            int t0 = ck->off[b];
            const float *blk = qkvh + 3 * (size_t)t0 * C;
            const float *q = blk + (size_t)h * T * hs;
            const float *k = blk + (size_t)T * C + (size_t)h * T * hs;
            const float *v = blk + 2 * (size_t)T * C + (size_t)h * T * hs;
            const float *P = att + ck->att_off[b] + (size_t)h * T * T;
            for (int i = 0; i < T; i++) // this head's dctx, (T,hs)
                memcpy(g + (size_t)i * hs, dctx + (size_t)(t0 + i) * C + (size_t)h * hs,
                       sizeof(float) * hs);
            const float *pv = P;
            if (drop) {
                gc_rng_addr a = {ck->seed, ck->step, ck->side, ck->first + (uint32_t)b, stream};
                for (int i = 0; i < T; i++)
                    gc_dropout_mask(mask + (size_t)i * T, &a, att_element(ck, h, i), (size_t)T, p);
                for (size_t e = 0; e < (size_t)T * T; e++) pd[e] = mask[e] * P[e];
                pv = pd;
            }
            gc_status st = gc_matmul(dp, g, v, T, T, hs, 0, 1, 0);        // d(dropped probs)
            if (st == GC_OK) st = gc_matmul(o, pv, g, T, hs, T, 1, 0, 0); // dv
            if (st != GC_OK) {
                par_fail_set(&fail, st);
                continue;
            }
            for (int i = 0; i < T; i++)
                memcpy(dqkv + (size_t)(t0 + i) * 3 * C + 2 * (size_t)C + (size_t)h * hs,
                       o + (size_t)i * hs, sizeof(float) * hs);
            if (drop)
                for (size_t e = 0; e < (size_t)T * T; e++) dp[e] *= mask[e];
            // softmax backward, with the score scale folded in: dS = scale * P (dP - <P, dP>)
            for (int i = 0; i < T; i++) {
                const float *pr = P + (size_t)i * T;
                float *dr = dp + (size_t)i * T;
                float dot = row_dot(pr, dr, T);
                for (int j = 0; j < T; j++) dr[j] = scale * pr[j] * (dr[j] - dot);
            }
            st = gc_matmul(o, dp, k, T, hs, T, 0, 0, 0); // dq = dS k
            if (st != GC_OK) {
                par_fail_set(&fail, st);
                continue;
            }
            for (int i = 0; i < T; i++)
                memcpy(dqkv + (size_t)(t0 + i) * 3 * C + (size_t)h * hs, o + (size_t)i * hs,
                       sizeof(float) * hs);
            st = gc_matmul(o, dp, q, T, hs, T, 1, 0, 0); // dk = dS^T q
            if (st != GC_OK) {
                par_fail_set(&fail, st);
                continue;
            }
            for (int i = 0; i < T; i++)
                memcpy(dqkv + (size_t)(t0 + i) * 3 * C + (size_t)C + (size_t)h * hs,
                       o + (size_t)i * hs, sizeof(float) * hs);
        }
    }
    return par_fail_report(&fail);
}

void bert_attention_forward_ref(float *ctx, float *att, const float *qkv, const bert_chunk *ck,
                                int C, int NH, uint32_t stream, float p) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int drop = ck->train && p > 0.0f;
    for (int b = 0; b < ck->B; b++) {
        int t0 = ck->off[b], T = ck->off[b + 1] - t0;
        gc_rng_addr a = {ck->seed, ck->step, ck->side, ck->first + (uint32_t)b, stream};
        for (int h = 0; h < NH; h++) {
            float *P = att + ck->att_off[b] + (size_t)h * T * T;
            for (int i = 0; i < T; i++) {
                const float *qi = qkv + (size_t)(t0 + i) * 3 * C + h * hs;
                float *row = P + (size_t)i * T;
                float mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    const float *kj = qkv + (size_t)(t0 + j) * 3 * C + C + h * hs;
                    float s = 0.0f;
                    for (int d = 0; d < hs; d++) s += qi[d] * kj[d];
                    row[j] = s * scale;
                    if (row[j] > mx) mx = row[j];
                }
                float sum = 0.0f;
                for (int j = 0; j < T; j++) {
                    row[j] = expf(row[j] - mx);
                    sum += row[j];
                }
                for (int j = 0; j < T; j++) row[j] /= sum;
                float *out = ctx + (size_t)(t0 + i) * C + h * hs;
                for (int d = 0; d < hs; d++) out[d] = 0.0f;
                for (int j = 0; j < T; j++) {
                    float pj = row[j];
                    if (drop) {
                        float u = gc_rng_uniform(&a, att_element(ck, h, i) + (uint32_t)j);
                        pj = u < p ? 0.0f : pj / (1.0f - p);
                    }
                    const float *vj = qkv + (size_t)(t0 + j) * 3 * C + 2 * C + h * hs;
                    for (int d = 0; d < hs; d++) out[d] += pj * vj[d];
                }
            }
        }
    }
}

void bert_attention_backward_ref(float *dqkv, const float *dctx, const float *att, const float *qkv,
                                 const bert_chunk *ck, int C, int NH, uint32_t stream, float p) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int drop = ck->train && p > 0.0f;
    memset(dqkv, 0, sizeof(float) * (size_t)ck->N * 3 * C);
    for (int b = 0; b < ck->B; b++) {
        int t0 = ck->off[b], T = ck->off[b + 1] - t0;
        gc_rng_addr a = {ck->seed, ck->step, ck->side, ck->first + (uint32_t)b, stream};
        for (int h = 0; h < NH; h++) {
            const float *P = att + ck->att_off[b] + (size_t)h * T * T;
            for (int i = 0; i < T; i++) {
                const float *g = dctx + (size_t)(t0 + i) * C + h * hs;
                const float *row = P + (size_t)i * T;
                // dP_ij = <g, v_j> * mask_ij ; dv_j += P_ij mask_ij g
                float dpr[T > 0 ? T : 1];
                for (int j = 0; j < T; j++) {
                    float m = 1.0f;
                    if (drop) {
                        float u = gc_rng_uniform(&a, att_element(ck, h, i) + (uint32_t)j);
                        m = u < p ? 0.0f : 1.0f / (1.0f - p);
                    }
                    const float *vj = qkv + (size_t)(t0 + j) * 3 * C + 2 * C + h * hs;
                    float *dvj = dqkv + (size_t)(t0 + j) * 3 * C + 2 * C + h * hs;
                    float s = 0.0f;
                    for (int d = 0; d < hs; d++) {
                        s += g[d] * vj[d];
                        dvj[d] += row[j] * m * g[d];
                    }
                    dpr[j] = s * m;
                }
                float dot = 0.0f;
                for (int j = 0; j < T; j++) dot += row[j] * dpr[j];
                const float *qi = qkv + (size_t)(t0 + i) * 3 * C + h * hs;
                float *dqi = dqkv + (size_t)(t0 + i) * 3 * C + h * hs;
                for (int j = 0; j < T; j++) {
                    float ds = row[j] * (dpr[j] - dot) * scale;
                    const float *kj = qkv + (size_t)(t0 + j) * 3 * C + C + h * hs;
                    float *dkj = dqkv + (size_t)(t0 + j) * 3 * C + C + h * hs;
                    for (int d = 0; d < hs; d++) {
                        dqi[d] += ds * kj[d];
                        dkj[d] += ds * qi[d];
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* pooling and normalization */

#define NORM_EPS 1e-12f

void bert_pool_forward(float *out, float *norm, const float *h, const bert_chunk *ck, int C,
                       gc_pooling pool, int normalize, int nthr) {
    // h (N,C) -> out (B,C)
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int b = 0; b < ck->B; b++) {
        int t0 = ck->off[b], T = ck->off[b + 1] - t0;
        float *o = out + (size_t)b * C;
        const float *hb = h + (size_t)t0 * C;
        if (pool == GC_POOL_CLS) {
            memcpy(o, hb, sizeof(float) * C);
        } else if (pool == GC_POOL_MAX) {
            memcpy(o, hb, sizeof(float) * C);
            for (int t = 1; t < T; t++)
                for (int i = 0; i < C; i++) o[i] = fmaxf(o[i], hb[(size_t)t * C + i]);
        } else {
            for (int i = 0; i < C; i++) o[i] = 0.0f;
            for (int t = 0; t < T; t++)
                for (int i = 0; i < C; i++) o[i] += hb[(size_t)t * C + i];
            for (int i = 0; i < C; i++) o[i] /= (float)T;
        }
        float ss = 0.0f;
        for (int i = 0; i < C; i++) ss += o[i] * o[i];
        norm[b] = sqrtf(ss);
        if (normalize) {
            float inv = 1.0f / fmaxf(norm[b], NORM_EPS);
            for (int i = 0; i < C; i++) o[i] *= inv;
        }
    }
}

void bert_pool_backward(float *dh, const float *dout, const float *out, const float *norm,
                        const float *h, const bert_chunk *ck, int C, gc_pooling pool, int normalize,
                        int nthr) {
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int b = 0; b < ck->B; b++) {
        int t0 = ck->off[b], T = ck->off[b + 1] - t0;
        const float *dy = dout + (size_t)b * C, *y = out + (size_t)b * C;
        float *dhb = dh + (size_t)t0 * C;
        const float *hb = h + (size_t)t0 * C;
        // y = x / max(|x|, eps): dx = (dy - y <y, dy>) / |x| above eps, dy / eps below
        float dot = 0.0f, inv = 1.0f;
        if (normalize) {
            if (norm[b] > NORM_EPS) {
                for (int i = 0; i < C; i++) dot += y[i] * dy[i];
                inv = 1.0f / norm[b];
            } else {
                inv = 1.0f / NORM_EPS;
            }
        }
        // d pooled, into the sequence's first row, then spread over its rows
        for (int i = 0; i < C; i++) dhb[i] = (dy[i] - y[i] * dot) * inv;
        if (pool == GC_POOL_MEAN) {
            for (int i = 0; i < C; i++) dhb[i] /= (float)T;
            for (int t = 1; t < T; t++) memcpy(dhb + (size_t)t * C, dhb, sizeof(float) * C);
        } else {
            memset(dhb + C, 0, sizeof(float) * (size_t)(T - 1) * C);
            if (pool == GC_POOL_MAX) {
                for (int i = 0; i < C; i++) { // the gradient goes to the first maximum
                    int arg = 0;
                    for (int t = 1; t < T; t++)
                        if (hb[(size_t)t * C + i] > hb[(size_t)arg * C + i]) arg = t;
                    float g = dhb[i];
                    dhb[i] = 0.0f;
                    dhb[(size_t)arg * C + i] = g;
                }
            }
        }
    }
}

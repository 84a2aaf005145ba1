/* vexp.h: exp(x) for float arrays, the same bits on every kernel path (portable, AVX2,
 * AVX-512): x is clamped to [-87, 88] (below -87: 0), n = round(x log2 e), r = x - n ln 2 in two
 * fused steps, a degree-7 Taylor polynomial by fused multiply-adds, times 2^n. Relative error
 * within 2e-7 of libm's expf over the range (test_vexp). Used where a loop of expf dominates
 * (the loss tiles); the scalar and vector bodies are inline so other kernels can use them. */
#ifndef GC_CORE_VEXP_H
#define GC_CORE_VEXP_H

#include "core/cpu.h"

#include <math.h>
#include <stddef.h>
#ifdef GC_HAVE_X86_PATHS
#include <immintrin.h>
#endif

#define GC_EXP_LO -87.0f /* below: 0 (the float result would be subnormal) */
#define GC_EXP_HI 88.0f

/* out[i] = exp(x[i]) for i < n (out may alias x); gc_exp_array_ref is one gc_exp1 at a time. */
void gc_exp_array(float *out, const float *x, size_t n);
void gc_exp_array_ref(float *out, const float *x, size_t n);

static inline float gc_exp1(float x) {
    if (x < GC_EXP_LO) return 0.0f;
    if (x > GC_EXP_HI) x = GC_EXP_HI;
    float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693145751953125f, x); /* ln 2 in two parts, the first exact */
    r = fmaf(n, -1.428606820309417232e-6f, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    return ldexpf(p, (int)n);
}

#ifdef GC_HAVE_X86_PATHS
static inline GC_TARGET_AVX2 __m256 gc_exp8(__m256 x) {
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(GC_EXP_LO), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(GC_EXP_LO)), _mm256_set1_ps(GC_EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693145751953125f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-1.428606820309417232e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* The same math sixteen lanes wide, step for step, so it gives gc_exp8's bits. */
static inline GC_TARGET_AVX512 __m512 gc_exp16(__m512 x) {
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(GC_EXP_LO), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(GC_EXP_LO)), _mm512_set1_ps(GC_EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606820309417232e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps((__mmask16)~under, p, _mm512_castsi512_ps(e));
}
#endif

#endif /* GC_CORE_VEXP_H */

/* rng.c: Philox-4x32-10 counter-based generator and the dropout masks built on it.
 *
 * Counter layout for an address (seed, step, side, example, stream) and element e:
 *   counter = { e / 4, example, step, side << 24 | stream },  key = { seed_lo, seed_hi }
 * and the value is lane e % 4 of the block. Nothing here depends on chunking or on which pass
 * asks, which is what lets pass 2 of a gradient-cache step reproduce pass 1 exactly. */
#include "core/cpu.h"
#include "gradcache.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void gc_philox4x32(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n1 = lo1;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        uint32_t n3 = lo0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* 24 random bits -> [0, 1), exactly representable in float. */
static inline float to_unit(uint32_t x) {
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

static inline void block(uint32_t out[4], const gc_rng_addr *a, uint32_t quad) {
    uint32_t ctr[4] = {quad, a->example, a->step, (a->side << 24) | (a->stream & 0xFFFFFFu)};
    uint32_t key[2] = {(uint32_t)a->seed, (uint32_t)(a->seed >> 32)};
    gc_philox4x32(out, ctr, key);
}

float gc_rng_uniform(const gc_rng_addr *addr, uint32_t element) {
    uint32_t r[4];
    block(r, addr, element >> 2);
    return to_unit(r[element & 3u]);
}

#define LANES 8

#ifdef GC_HAVE_X86_PATHS
#include <immintrin.h>
/* hi and lo 32-bit halves of m * x for eight lanes (vpmuludq works on the even lanes only, so
 * the odd lanes are shifted down, multiplied, and the halves blended back in place). */
static inline GC_TARGET_AVX2 void mulhilo8(__m256i m, __m256i x, __m256i *hi, __m256i *lo) {
    __m256i pe = _mm256_mul_epu32(x, m);
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

/* The same eight blocks as block8, as uniform floats: u[k][l] is lane k of quad q0 + l. */
static GC_TARGET_AVX2 void uniform8_avx2(float u[4][LANES], const gc_rng_addr *a, uint32_t q0) {
    __m256i c0 =
        _mm256_add_epi32(_mm256_set1_epi32((int)q0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c1 = _mm256_set1_epi32((int)a->example);
    __m256i c2 = _mm256_set1_epi32((int)a->step);
    __m256i c3 = _mm256_set1_epi32((int)((a->side << 24) | (a->stream & 0xFFFFFFu)));
    const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    uint32_t k0 = (uint32_t)a->seed, k1 = (uint32_t)(a->seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo8(m0, c0, &hi0, &lo0);
        mulhilo8(m1, c2, &hi1, &lo1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c1 = lo1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    const __m256 scale = _mm256_set1_ps(1.0f / 16777216.0f);
    __m256i c[4] = {c0, c1, c2, c3};
    for (int k = 0; k < 4; k++)
        _mm256_storeu_ps(u[k],
                         _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(c[k], 8)), scale));
}
#endif

/* Eight Philox blocks side by side (structure of arrays), so the compiler can keep each round
 * in vector registers: quads q0 .. q0+7 of one address. Same arithmetic as gc_philox4x32. */
static void block8(uint32_t out[4][LANES], const gc_rng_addr *a, uint32_t q0) {
    uint32_t c0[LANES], c1[LANES], c2[LANES], c3[LANES];
    uint32_t k0 = (uint32_t)a->seed, k1 = (uint32_t)(a->seed >> 32);
    uint32_t side_stream = (a->side << 24) | (a->stream & 0xFFFFFFu);
    for (int l = 0; l < LANES; l++) {
        c0[l] = q0 + (uint32_t)l, c1[l] = a->example, c2[l] = a->step, c3[l] = side_stream;
    }
    for (int r = 0; r < 10; r++) {
        for (int l = 0; l < LANES; l++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[l];
            uint64_t p1 = (uint64_t)PHILOX_M1 * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int l = 0; l < LANES; l++) {
        out[0][l] = c0[l], out[1][l] = c1[l], out[2][l] = c2[l], out[3][l] = c3[l];
    }
}

static void uniform8(float u[4][LANES], const gc_rng_addr *a, uint32_t q0) {
    uint32_t b[4][LANES];
    block8(b, a, q0);
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < LANES; l++) u[k][l] = to_unit(b[k][l]);
}

void gc_rng_uniform_fill(float *out, const gc_rng_addr *addr, uint32_t first, size_t n) {
    size_t i = 0;
    uint32_t r[4];
    /* head: the rest of the first quad when `first` is not on a quad boundary */
    if (first & 3u) {
        block(r, addr, first >> 2);
        for (uint32_t lane = first & 3u; lane < 4 && i < n; lane++, i++) out[i] = to_unit(r[lane]);
    }
    /* body: eight quads (32 values) at a time */
    float u[4][LANES];
    int avx2 = gc_cpu_path_get() >= GC_CPU_AVX2; /* AVX-512 CPUs run the AVX2 Philox */
    while (n - i >= 4 * LANES) {
#ifdef GC_HAVE_X86_PATHS
        if (avx2)
            uniform8_avx2(u, addr, (first + (uint32_t)i) >> 2);
        else
#endif
            uniform8(u, addr, (first + (uint32_t)i) >> 2);
        for (int l = 0; l < LANES; l++)
            for (int k = 0; k < 4; k++) out[i + 4 * (size_t)l + k] = u[k][l];
        i += 4 * LANES;
    }
    /* tail */
    while (i < n) {
        uint32_t e = first + (uint32_t)i;
        block(r, addr, e >> 2);
        for (uint32_t lane = e & 3u; lane < 4 && i < n; lane++, i++) out[i] = to_unit(r[lane]);
    }
}

void gc_dropout_mask(float *mask, const gc_rng_addr *addr, uint32_t first, size_t n, float p) {
    if (p <= 0.0f) {
        for (size_t i = 0; i < n; i++) mask[i] = 1.0f;
        return;
    }
    float scale = 1.0f / (1.0f - p);
    gc_rng_uniform_fill(mask, addr, first, n);
    for (size_t i = 0; i < n; i++) mask[i] = mask[i] < p ? 0.0f : scale;
}

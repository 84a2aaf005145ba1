/* rng.c: Philox-4x32-10 counter-based generator and the dropout masks built on it.
 *
 * Counter layout for an address (seed, step, side, example, stream) and element e:
 *   counter = { e / 4, example, step, side << 24 | stream },  key = { seed_lo, seed_hi }
 * and the value is lane e % 4 of the block. Nothing here depends on chunking or on which pass
 * asks, which is what lets pass 2 of a gradient-cache step reproduce pass 1 exactly. */
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

void gc_rng_uniform_fill(float *out, const gc_rng_addr *addr, uint32_t first, size_t n) {
    size_t i = 0;
    uint32_t r[4];
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

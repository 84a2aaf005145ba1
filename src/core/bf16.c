/* bf16.c: float to bfloat16 conversion, round to nearest even: the plain reference, the
 * portable loop and the AVX512_BF16 one (chosen at run time, see cpu.h), all giving the same
 * bits; and the exact conversion back. */
#include "core/cpu.h"

#include <string.h>

#ifdef GC_HAVE_X86_PATHS
#include <immintrin.h>
#endif

static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);   /* NaN: quiet, sign kept */
    if (mag < 0x00800000u) return (uint16_t)((u >> 16) & 0x8000u); /* subnormal: signed zero */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void gc_bf16_from_f32_ref(uint16_t *out, const float *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = to_bf16(in[i]);
}

/* The same rule without branches, so the compiler may vectorize it on any target. */
static void from_f32_portable(uint16_t *out, const float *in, size_t i, size_t n) {
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, &in[i], sizeof u);
        uint32_t mag = u & 0x7fffffffu;
        uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        uint32_t nan = (u >> 16) | 0x40u, zero = (u >> 16) & 0x8000u;
        uint32_t r = mag > 0x7f800000u ? nan : mag < 0x00800000u ? zero : rounded;
        out[i] = (uint16_t)r;
    }
}

#ifdef GC_HAVE_X86_PATHS
static GC_TARGET_AVX512BF16 size_t from_f32_avx512bf16(uint16_t *out, const float *in, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
        _mm512_storeu_si512((void *)(out + i), (__m512i)r);
    }
    return i;
}
#endif

void gc_bf16_from_f32(uint16_t *out, const float *in, size_t n) {
    size_t i = 0;
#ifdef GC_HAVE_X86_PATHS
    if (gc_cpu_has_bf16()) i = from_f32_avx512bf16(out, in, n);
#endif
    from_f32_portable(out, in, i, n);
}

void gc_bf16_to_f32(float *out, const uint16_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gc_bf16_value(in[i]);
}

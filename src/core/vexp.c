/* vexp.c: gc_exp_array on the kernel path gc_cpu_path_get() chose (see vexp.h). */
#include "core/vexp.h"

#ifdef GC_HAVE_X86_PATHS
static GC_TARGET_AVX2 size_t exp_avx2(float *out, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, gc_exp8(_mm256_loadu_ps(x + i)));
    return i;
}

static GC_TARGET_AVX512 size_t exp_avx512(float *out, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, gc_exp16(_mm512_loadu_ps(x + i)));
    return i;
}
#endif

void gc_exp_array(float *out, const float *x, size_t n) {
    size_t i = 0;
#ifdef GC_HAVE_X86_PATHS
    gc_cpu_path path = gc_cpu_path_get();
    if (path == GC_CPU_AVX512) i = exp_avx512(out, x, n);
    if (path == GC_CPU_AVX2) i = exp_avx2(out, x, n);
#endif
    for (; i < n; i++) out[i] = gc_exp1(x[i]);
}

void gc_exp_array_ref(float *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gc_exp1(x[i]);
}

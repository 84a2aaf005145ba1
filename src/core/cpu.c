/* cpu.c: the run-time choice of the project's own kernel path (see cpu.h): the best the CPU
 * supports, capped by GC_CPU; and whether the AVX-512 path may use AVX512_BF16. */
#include "core/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static gc_cpu_path g_path = GC_CPU_GENERIC;
static int g_bf16;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void decide(void) {
    gc_cpu_path cap = GC_CPU_AVX512;
    const char *want = getenv("GC_CPU");
    if (want && strcmp(want, "generic") == 0) cap = GC_CPU_GENERIC;
    if (want && strcmp(want, "avx2") == 0) cap = GC_CPU_AVX2;
    gc_cpu_path best = GC_CPU_GENERIC;
#ifdef GC_HAVE_X86_PATHS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        best = GC_CPU_AVX2;
        if (__builtin_cpu_supports("avx512f")) best = GC_CPU_AVX512;
    }
#endif
    g_path = best < cap ? best : cap;
#ifdef GC_HAVE_X86_PATHS
    g_bf16 = g_path == GC_CPU_AVX512 && __builtin_cpu_supports("avx512bf16");
#endif
}

int gc_cpu_has_bf16(void) {
    pthread_once(&g_once, decide);
    return g_bf16;
}

gc_cpu_path gc_cpu_path_get(void) {
    pthread_once(&g_once, decide);
    return g_path;
}

const char *gc_cpu_path_name(gc_cpu_path p) {
    switch (p) {
    case GC_CPU_AVX512:
        return "avx512";
    case GC_CPU_AVX2:
        return "avx2";
    case GC_CPU_GENERIC:
        break;
    }
    return "generic";
}

/* cpu.c: the run-time choice of the project's own kernel path (see cpu.h). */
#include "core/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static gc_cpu_path g_path = GC_CPU_GENERIC;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void decide(void) {
    const char *want = getenv("GC_CPU");
    if (want && strcmp(want, "generic") == 0) return;
#ifdef GC_HAVE_X86_PATHS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) g_path = GC_CPU_AVX2;
#endif
}

gc_cpu_path gc_cpu_path_get(void) {
    pthread_once(&g_once, decide);
    return g_path;
}

const char *gc_cpu_path_name(gc_cpu_path p) {
    switch (p) {
    case GC_CPU_AVX2:
        return "avx2";
    case GC_CPU_GENERIC:
        break;
    }
    return "generic";
}

/* cpu.h: which of the project's own vectorized kernel paths this CPU runs (decided once, at
 * run time, from the CPU's features), and the attributes that compile one function for AVX2 or
 * AVX-512.
 *
 * The library is compiled for baseline x86-64; only functions marked GC_TARGET_AVX2 (AVX2 and
 * FMA) or GC_TARGET_AVX512 (AVX-512F) use those instructions, and they are called only when
 * gc_cpu_path_get() says so. The generic path
 * computes the same numbers bit for bit (the scalar code uses fma/fmaf where the vector code
 * fuses), so the choice changes speed, never results. oneDNN makes its own choice for matrix
 * products (ONEDNN_MAX_CPU_ISA limits it). */
#ifndef GC_CORE_CPU_H
#define GC_CORE_CPU_H

#include "gc_core.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define GC_HAVE_X86_PATHS 1
#define GC_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define GC_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
/* AVX512_BF16 (the bf16 conversion), called only when gc_cpu_has_bf16() */
#define GC_TARGET_AVX512BF16 __attribute__((target("avx512bf16,avx512f,avx2,fma")))
#endif

#endif /* GC_CORE_CPU_H */

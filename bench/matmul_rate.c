/* matmul_rate.c: the machine's matrix-product rate through gc_matmul_ex, fp32 and bf16, at
 * MiniLM-sized products (a chunk of 32 passages of 128 tokens: 4096 rows; the feed-forward
 * 384 -> 1536 and 1536 -> 384, the attention projections 384 -> 1152 and 384 -> 384), the
 * forward form (x @ w^T). Prints GFLOP/s (2 M N K per product) per shape and type, and the
 * rate of all of them together, the figure bench/vs_pytorch.sh compares steps against. Each
 * shape's figure is the best of ROUNDS timed rounds (the machine's rate, not its load).
 *
 *   matmul_rate [--rows 4096] [--reps 10]      (threads: OMP_NUM_THREADS) */
#include "gc_core.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 3

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int M = 4096, reps = 10;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--rows") == 0)
            M = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: matmul_rate [--rows N] [--reps N]\n");
            return 2;
        }
    }
    if (M < 1 || reps < 1) return 2;
    static const int shapes[][2] = {{1536, 384}, {384, 1536}, {1152, 384}, {384, 384}};
    const int ns = 4;
    size_t maxa = (size_t)M * 1536, maxb = 1536 * 384, maxc = (size_t)M * 1536;
    float *A = malloc(maxa * sizeof(float)), *B = malloc(maxb * sizeof(float));
    float *C = malloc(maxc * sizeof(float));
    uint16_t *A16 = malloc(maxa * 2), *B16 = malloc(maxb * 2);
    for (size_t i = 0; i < maxa; i++) A[i] = (float)((i * 2654435761u) % 1000) / 1000 - 0.5f;
    for (size_t i = 0; i < maxb; i++) B[i] = (float)((i * 40503u) % 1000) / 1000 - 0.5f;
    gc_bf16_from_f32(A16, A, maxa);
    gc_bf16_from_f32(B16, B, maxb);
    const char *isa = NULL;
    int native = gc_matmul_bf16_native(&isa);
    printf("oneDNN ISA %s (bf16 %s), %d threads, %d rows, best of %d rounds of %d\n", isa,
           native ? "native" : "not native", omp_get_max_threads(), M, ROUNDS, reps);
    for (int t = 0; t < 2; t++) {
        gc_mm_type dt = t ? GC_MM_BF16 : GC_MM_F32;
        const void *a = t ? (const void *)A16 : A, *b = t ? (const void *)B16 : B;
        double flops = 0, secs = 0;
        for (int s = 0; s < ns; s++) {
            int N = shapes[s][0], K = shapes[s][1];
            gc_status st = gc_matmul_ex(C, a, b, M, N, K, 0, 1, 0, dt); /* warm-up */
            if (st != GC_OK) {
                printf("%s: %s\n", t ? "bf16" : "fp32", gc_last_error());
                break;
            }
            double dtm = 0, f = 2.0 * M * N * K * reps;
            for (int round = 0; round < ROUNDS; round++) {
                double t0 = now();
                for (int r = 0; r < reps; r++) gc_matmul_ex(C, a, b, M, N, K, 0, 1, 0, dt);
                double el = now() - t0;
                if (round == 0 || el < dtm) dtm = el;
            }
            printf("%s %dx%dx%d: %.1f GFLOP/s\n", t ? "bf16" : "fp32", M, N, K, f / dtm / 1e9);
            flops += f, secs += dtm;
        }
        if (secs > 0)
            printf("matmul rate %s: %.1f GFLOP/s\n", t ? "bf16" : "fp32", flops / secs / 1e9);
    }
    free(A), free(B), free(C), free(A16), free(B16);
    gc_matmul_cleanup();
    return 0;
}

/* matmul_prims.c: which kind of oneDNN primitive serves each product kind faster on this
 * machine: built with runtime dimensions (one for every shape) or per exact shape (a bounded
 * cache). Times gc_matmul_ex both ways, alternating, on the products of a MiniLM step (d 384,
 * feed-forward 1536; forward x @ w^T, input gradient dy @ w, weight gradient dy^T @ x
 * accumulated; attention scores and context at sequence length 128, head size 32), fp32 and
 * bf16, and prints GFLOP/s, shape/runtime and the kind gc_matmul_prims picks by default (a
 * fixed default, so a run's numbers never depend on a timing; this program and
 * bench/prims_step.sh, the same at the level of a training step, are how it is checked on a new
 * machine). Per-shape products of independent rows run in blocks of a fixed row count.
 *
 *   matmul_prims [--rows 4096] [--reps 5]      (threads: OMP_NUM_THREADS) */
#include "gc_core.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct product {
    const char *kind;
    int M, N, K, ta, tb, acc;
} product;

static double run(float *C, const void *a, const void *b, const product *p, gc_mm_type dt,
                  int reps) {
    if (gc_matmul_ex(C, a, b, p->M, p->N, p->K, p->ta, p->tb, p->acc, dt) != GC_OK) return -1;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        gc_matmul_ex(C, a, b, p->M, p->N, p->K, p->ta, p->tb, p->acc, dt);
    return 2.0 * p->M * p->N * p->K * reps / (now() - t0) / 1e9;
}

int main(int argc, char **argv) {
    int T = 4096, reps = 5;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--rows") == 0)
            T = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: matmul_prims [--rows N] [--reps N]\n");
            return 2;
        }
    }
    if (T < 1 || reps < 1) return 2;
    const product prods[] = {
        {"forward x w^T (ffn in)", T, 1536, 384, 0, 1, 0},
        {"forward x w^T (ffn out)", T, 384, 1536, 0, 1, 0},
        {"forward x w^T (qkv)", T, 1152, 384, 0, 1, 0},
        {"input grad dy w (ffn in)", T, 384, 1536, 0, 0, 0},
        {"input grad dy w (ffn out)", T, 1536, 384, 0, 0, 0},
        {"weight grad dy^T x (ffn in)", 1536, 384, T, 1, 0, 1},
        {"weight grad dy^T x (qkv)", 1152, 384, T, 1, 0, 1},
        {"attention q k^T", 128, 128, 32, 0, 1, 0},
        {"attention p v", 128, 32, 128, 0, 0, 0},
    };
    const int np = (int)(sizeof prods / sizeof prods[0]);
    size_t big = (size_t)T * 1536 + 1536 * 384;
    float *A = malloc(big * sizeof(float)), *B = malloc(big * sizeof(float));
    float *C = malloc(big * sizeof(float));
    uint16_t *A16 = malloc(big * 2), *B16 = malloc(big * 2);
    if (!A || !B || !C || !A16 || !B16) return 1;
    for (size_t i = 0; i < big; i++) A[i] = (float)((i * 2654435761u) % 1000) / 1000 - 0.5f;
    for (size_t i = 0; i < big; i++) B[i] = (float)((i * 40503u) % 1000) / 1000 - 0.5f;
    memset(C, 0, big * sizeof(float));
    gc_bf16_from_f32(A16, A, big);
    gc_bf16_from_f32(B16, B, big);
    const char *isa = NULL;
    int native = gc_matmul_bf16_native(&isa);
    printf("oneDNN ISA %s (bf16 %s), %d threads, %d token rows, %d reps, best of 3 rounds\n", isa,
           native ? "native" : "not native", omp_get_max_threads(), T, reps);
    for (int t = 0; t < 2; t++) {
        gc_mm_type dt = t ? GC_MM_BF16 : GC_MM_F32;
        gc_matmul_set_prims(dt, GC_MM_PRIMS_AUTO);
        gc_mm_prims def = gc_matmul_prims(dt);
        const void *a = t ? (const void *)A16 : A, *b = t ? (const void *)B16 : B;
        double fl_rt = 0, s_rt = 0, fl_sh = 0, s_sh = 0;
        for (int i = 0; i < np; i++) {
            const product *p = &prods[i];
            double best[2] = {0, 0}; /* runtime, shape */
            for (int round = 0; round < 3; round++)
                for (int k = 0; k < 2; k++) {
                    gc_matmul_set_prims(dt, k ? GC_MM_PRIMS_SHAPE : GC_MM_PRIMS_RUNTIME);
                    double g = run(C, a, b, p, dt, reps);
                    if (g > best[k]) best[k] = g;
                }
            if (best[0] <= 0 || best[1] <= 0) {
                printf("%s: %s\n", t ? "bf16" : "fp32", gc_last_error());
                break;
            }
            double f = 2.0 * p->M * p->N * p->K;
            fl_rt += f, s_rt += f / best[0], fl_sh += f, s_sh += f / best[1];
            printf("%s %-28s %5dx%5dx%5d  runtime %7.1f  shape %7.1f GFLOP/s  shape/runtime %.2f\n",
                   t ? "bf16" : "fp32", p->kind, p->M, p->N, p->K, best[0], best[1],
                   best[1] / best[0]);
        }
        if (s_rt > 0 && s_sh > 0)
            printf("%s all products: runtime %.1f  shape %.1f GFLOP/s -> faster: %s; default: %s\n",
                   t ? "bf16" : "fp32", fl_rt / s_rt, fl_sh / s_sh,
                   s_sh < s_rt ? "shape" : "runtime", gc_matmul_prims_name(def));
        gc_matmul_set_prims(dt, GC_MM_PRIMS_AUTO);
    }
    free(A), free(B), free(C), free(A16), free(B16);
    gc_matmul_cleanup();
    return 0;
}

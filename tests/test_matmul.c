/* test_matmul.c: gc_matmul (oneDNN) against gc_matmul_ref for every transpose and accumulate
 * combination, odd shapes, repeated shapes (cached primitives), through both kinds of primitive
 * (runtime dimensions and per shape); the per-shape cache stays bounded; bad arguments. */
#include "gc_testing.h"
#include "test_util.h"

#include <string.h>

static void fill(float *x, size_t n, unsigned *s) {
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        x[i] = (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
}

int main(void) {
    /* small ones take the plain-loop path, large ones oneDNN */
    const int shapes[][3] = {{1, 1, 1},    {7, 5, 3},      {64, 33, 17},   {12, 12, 32},
                             {13, 32, 11}, {128, 384, 96}, {3, 1536, 384}, {40, 40, 32}};
    unsigned seed = 1;
    double worst = 0;
    for (int kind = GC_MM_PRIMS_RUNTIME; kind <= GC_MM_PRIMS_SHAPE; kind++) {
        gc_matmul_set_prims(GC_MM_F32, (gc_mm_prims)kind);
        CHECK(gc_matmul_prims(GC_MM_F32) == (gc_mm_prims)kind, "kind set");
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
            float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
            fill(A, (size_t)M * K, &seed);
            fill(B, (size_t)K * N, &seed);
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int acc = 0; acc < 2; acc++)
                        for (int rep = 0; rep < 2; rep++) {
                            fill(C, (size_t)M * N, &seed);
                            memcpy(R, C, sizeof(float) * M * N);
                            CHECK_OK(gc_matmul(C, A, B, M, N, K, ta, tb, acc));
                            gc_matmul_ref(R, A, B, M, N, K, ta, tb, acc);
                            double e = max_rel_err(C, R, (size_t)M * N);
                            if (e > worst) worst = e;
                            CHECK(e < 1e-5, "%s %dx%dx%d ta=%d tb=%d acc=%d err %.3g",
                                  gc_matmul_prims_name((gc_mm_prims)kind), M, N, K, ta, tb, acc, e);
                        }
            free(A), free(B), free(C), free(R);
        }
    }
    printf("matmul vs reference (runtime and per-shape primitives): max relative error %.3g\n",
           worst);

    /* many shapes through the per-shape kind: the cache stays bounded and stays right */
    {
        const int K = 48, N = 40, maxM = 300;
        float *A = malloc(sizeof(float) * maxM * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * maxM * N), *R = malloc(sizeof(float) * maxM * N);
        fill(A, (size_t)maxM * K, &seed);
        fill(B, (size_t)K * N, &seed);
        double e_many = 0;
        for (int M = 20; M <= maxM; M += 2)
            for (int ta = 0; ta < 2; ta++) { /* row blocks; then one primitive per shape */
                CHECK_OK(gc_matmul(C, A, B, M, N, K, ta, 1, 0));
                gc_matmul_ref(R, A, B, M, N, K, ta, 1, 0);
                double e = max_rel_err(C, R, (size_t)M * N);
                if (e > e_many) e_many = e;
            }
        int cached = gc_matmul_shape_cache_used();
        printf("141 row counts, both layouts, per shape: %d primitives cached, max relative "
               "error %.3g\n",
               cached, e_many);
        CHECK(cached == 64, "per-shape cache full and bounded (%d entries)", cached);
        CHECK(e_many < 1e-5, "many shapes err %.3g", e_many);
        free(A), free(B), free(C), free(R);
    }
    gc_matmul_set_prims(GC_MM_F32, GC_MM_PRIMS_AUTO);
    CHECK(gc_matmul_prims(GC_MM_F32) != GC_MM_PRIMS_AUTO, "auto resolves to a kind");

    float one = 1.0f, c = 5.0f;
    CHECK(gc_matmul(&c, &one, &one, -1, 1, 1, 0, 0, 0) == GC_ERR_INVALID_ARG, "negative size");
    CHECK(gc_matmul(NULL, &one, &one, 1, 1, 1, 0, 0, 0) == GC_ERR_INVALID_ARG, "NULL C");
    CHECK(gc_matmul(&c, NULL, &one, 1, 1, 1, 0, 0, 0) == GC_ERR_INVALID_ARG, "NULL A");
    CHECK(strlen(gc_last_error()) > 0, "message kept");
    CHECK_OK(gc_matmul(&c, NULL, NULL, 1, 1, 0, 0, 0, 0));
    CHECK(c == 0.0f, "K=0 zeroes C");
    gc_matmul_cleanup();
    return test_summary("test_matmul");
}

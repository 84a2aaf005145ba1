/* test_bf16.c: the bf16 conversion (vectorized, as dispatched, against the one-element
 * reference, bit for bit, special values included) and the typed product gc_matmul_ex in bf16
 * against gc_matmul_bf16_ref for every transpose and accumulate combination, small (plain
 * loops) and large (oneDNN) shapes. */
#include "gc_testing.h"
#include "test_util.h"

#include <string.h>

static uint32_t lcg(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static float bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int main(void) {
    /* conversion: every value class, lengths that leave a tail after the 32-wide loop */
    enum { NC = 4099 };
    float *x = malloc(NC * sizeof(float));
    uint16_t *a = malloc(NC * sizeof(uint16_t)), *b = malloc(NC * sizeof(uint16_t));
    unsigned seed = 7;
    for (int i = 0; i < NC; i++) x[i] = bits(lcg(&seed)); /* any bit pattern */
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0x3f808001u, 0x7f7fffffu, 0x7f800000u,
                                0xff800000u, 0x7f800001u, 0xffc12345u, 0x00400000u, 0x80000001u,
                                0x00800000u, 0x80000000u, 0x00000000u, 0xbf7fffffu};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[i * 3] = bits(special[i]);
    for (int i = 0; i < 64; i++) x[NC - 1 - i] = (float)(i - 32) / 7.0f;
    gc_bf16_from_f32_ref(a, x, NC);
    for (int n = 0; n <= NC; n += n < 70 ? 1 : 997) {
        memset(b, 0xAB, NC * sizeof(uint16_t));
        gc_bf16_from_f32(b, x, (size_t)n);
        CHECK(memcmp(a, b, (size_t)n * sizeof(uint16_t)) == 0, "conversion of %d differs", n);
    }
    CHECK(a[0] == 0x3f80 && a[3] == 0x3f82 && a[6] == 0x3f81, "ties to even, above the tie");
    CHECK(a[9] == 0x7f80 && a[12] == 0x7f80 && a[15] == 0xff80, "overflow and infinities");
    CHECK(a[18] == 0x7fc0 && a[21] == 0xffc1, "NaN quiet, sign and payload kept");
    CHECK(a[24] == 0x0000 && a[27] == 0x8000, "subnormals to signed zero");
    float back[4];
    gc_bf16_to_f32(back, a, 4);
    CHECK(back[0] == 1.0f, "back to float");
    printf("bf16 conversion: %s path, AVX512_BF16 %s\n", gc_cpu_path_name(gc_cpu_path_get()),
           gc_cpu_has_bf16() ? "used" : "not used");

    /* products */
    const char *isa = NULL;
    int native = gc_matmul_bf16_native(&isa);
    printf("oneDNN ISA %s: bf16 products %s\n", isa, native ? "native" : "emulated or refused");
    const int shapes[][3] = {{1, 1, 1},      {7, 5, 3},    {12, 12, 32},
                             {64, 33, 17},   {13, 32, 11}, {128, 384, 96},
                             {3, 1536, 384}, {40, 40, 32}, {200, 96, 32}};
    double worst = 0;
    int unsupported = 0;
    for (int kind = GC_MM_PRIMS_RUNTIME; kind <= GC_MM_PRIMS_SHAPE && !unsupported; kind++) {
        gc_matmul_set_prims(GC_MM_BF16, (gc_mm_prims)kind);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && !unsupported; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *Af = malloc(sizeof(float) * M * K), *Bf = malloc(sizeof(float) * K * N);
            uint16_t *A = malloc(sizeof(uint16_t) * M * K), *B = malloc(sizeof(uint16_t) * K * N);
            float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
            float *S = malloc(sizeof(float) * M * N);
            for (int i = 0; i < M * K; i++) Af[i] = (float)((lcg(&seed) >> 8) & 0xFFFF) / 32768 - 1;
            for (int i = 0; i < K * N; i++) Bf[i] = (float)((lcg(&seed) >> 8) & 0xFFFF) / 32768 - 1;
            gc_bf16_from_f32(A, Af, (size_t)M * K);
            gc_bf16_from_f32(B, Bf, (size_t)K * N);
            for (int ta = 0; ta < 2 && !unsupported; ta++)
                for (int tb = 0; tb < 2 && !unsupported; tb++)
                    for (int acc = 0; acc < 2; acc++) {
                        for (int i = 0; i < M * N; i++) C[i] = (float)(lcg(&seed) & 255) / 64;
                        memcpy(R, C, sizeof(float) * M * N);
                        memcpy(S, C, sizeof(float) * M * N);
                        gc_status st = gc_matmul_ex(C, A, B, M, N, K, ta, tb, acc, GC_MM_BF16);
                        if (st == GC_ERR_UNSUPPORTED) {
                            printf("bf16 products unsupported here (%s): skipped\n",
                                   gc_last_error());
                            unsupported = 1;
                            break;
                        }
                        CHECK_OK(st);
                        gc_matmul_bf16_ref(R, A, B, M, N, K, ta, tb, acc);
                        double e = max_rel_err(C, R, (size_t)M * N);
                        if (e > worst) worst = e;
                        CHECK(e < 1e-5, "bf16 %dx%dx%d ta=%d tb=%d acc=%d err %.3g", M, N, K, ta,
                              tb, acc, e);
                        /* the float product of the same (bf16-exact) values: only sums differ */
                        float *Ae = malloc(sizeof(float) * M * K),
                              *Be = malloc(sizeof(float) * K * N);
                        gc_bf16_to_f32(Ae, A, (size_t)M * K);
                        gc_bf16_to_f32(Be, B, (size_t)K * N);
                        CHECK_OK(gc_matmul(S, Ae, Be, M, N, K, ta, tb, acc));
                        CHECK(max_rel_err(C, S, (size_t)M * N) < 1e-5, "bf16 vs f32 of the same");
                        free(Ae), free(Be);
                    }
            free(Af), free(Bf), free(A), free(B), free(C), free(R), free(S);
        }
        /* A row's sums do not depend on how many rows the product has (from 3 rows on) nor on
         * where the row sits: what keeps an example's bf16 numbers independent of its
         * chunk-mates. Runtime primitives keep it by themselves; the per-shape kind runs every
         * product of independent rows in zero-padded blocks of one fixed row count. */
        if (!unsupported) {
            const int KN = 1536, Mbig = 300; /* buffers for the widest shapes */
            uint16_t *A = malloc(sizeof(uint16_t) * Mbig * KN),
                     *B = malloc(sizeof(uint16_t) * KN * KN);
            float *Cb = malloc(sizeof(float) * Mbig * KN), *Cs = malloc(sizeof(float) * Mbig * KN);
            for (int i = 0; i < Mbig * KN; i++)
                A[i] =
                    (uint16_t)(0x3c00 + (lcg(&seed) & 0x3ff) + ((lcg(&seed) & 1) << 15)); /* +- */
            for (int i = 0; i < KN * KN; i++) B[i] = (uint16_t)(0xbc00 + (lcg(&seed) & 0x7ff));
            static const int nk[][2] = {{1152, 384}, {384, 1536}, {1536, 384}, {384, 384}};
            int checked = 0, differ = 0;
            for (int w = 0; w < 16; w++) {
                /* input gradient (dy w) and forward (x w^T) at MiniLM's widths, = and += */
                int tb = w & 1, acc = (w >> 1) & 1, N = nk[w / 4][0], K = nk[w / 4][1];
                for (int i = 0; i < Mbig * N; i++) Cb[i] = (float)(i % 97) / 8;
                CHECK_OK(gc_matmul_ex(Cb, A, B, Mbig, N, K, 0, tb, acc, GC_MM_BF16));
                const int rows[] = {3, 5, 8, 12, 15, 16, 17, 64, 100};
                for (int r = 0; r < 9; r++) {
                    int M = rows[r], off = 100; /* rows off.. of the big product (across its first
                                                 row block's end), alone */
                    for (int i = 0; i < M * N; i++) Cs[i] = (float)((i + off * N) % 97) / 8;
                    CHECK_OK(
                        gc_matmul_ex(Cs, A + (size_t)off * K, B, M, N, K, 0, tb, acc, GC_MM_BF16));
                    int same = memcmp(Cs, Cb + (size_t)off * N, sizeof(float) * M * N) == 0;
                    checked++, differ += !same;
                    CHECK(same,
                          "%s %dx%d tb=%d acc=%d: %d rows alone differ from the same rows of %d",
                          gc_matmul_prims_name((gc_mm_prims)kind), N, K, tb, acc, M, Mbig);
                }
            }
            printf("bf16 %s primitives: %d of %d products of a few rows differ from the same "
                   "rows of a taller product%s\n",
                   gc_matmul_prims_name((gc_mm_prims)kind), differ, checked, "");
            free(A), free(B), free(Cb), free(Cs);
        }
    }
    gc_matmul_set_prims(GC_MM_BF16, GC_MM_PRIMS_AUTO);
    printf("bf16 default primitives: %s\n", gc_matmul_prims_name(gc_matmul_prims(GC_MM_BF16)));
    if (native) CHECK(!unsupported, "native bf16 but the product was refused");
    printf("bf16 matmul vs reference: max relative error %.3g\n", worst);
    float c = 1;
    uint16_t one = 0x3f80;
    CHECK(gc_matmul_ex(&c, &one, &one, 1, 1, 1, 0, 0, 0, (gc_mm_type)7) == GC_ERR_INVALID_ARG,
          "unknown type");
    free(x), free(a), free(b);
    gc_matmul_cleanup();
    return test_summary("test_bf16");
}

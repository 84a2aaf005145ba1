/* test_rng.c: Philox known-answer vectors, addressing (the value depends on the address only,
 * never on how a range is split), and dropout keep rate. */
#include "gradcache.h"
#include "test_util.h"

#include <string.h>

int main(void) {
    /* Known-answer tests from the Random123 distribution (philox4x32-10). */
    uint32_t out[4];
    uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    gc_philox4x32(out, c0, k0);
    CHECK(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu &&
              out[3] == 0x9b00dbd8u,
          "zero vector: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
    uint32_t c1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    uint32_t k1[2] = {0xffffffffu, 0xffffffffu};
    gc_philox4x32(out, c1, k1);
    CHECK(out[0] == 0x408f276du && out[1] == 0x41c83b0eu && out[2] == 0xa20bc7c6u &&
              out[3] == 0x6d5451fdu,
          "ones vector: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
    uint32_t c2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    uint32_t k2[2] = {0xa4093822u, 0x299f31d0u};
    gc_philox4x32(out, c2, k2);
    CHECK(out[0] == 0xd16cfe09u && out[1] == 0x94fdccebu && out[2] == 0x5001e420u &&
              out[3] == 0x24126ea1u,
          "pi vector: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);

    /* Filling a range equals element-wise draws, however the range is split. */
    gc_rng_addr a = {42, 7, 1, 123, GC_RNG_STREAM(3, 2)};
    enum { N = 1001 };
    float whole[N], parts[N];
    gc_rng_uniform_fill(whole, &a, 5, N);
    int same = 1;
    for (int i = 0; i < N; i++) same &= whole[i] == gc_rng_uniform(&a, 5 + i);
    CHECK(same, "fill equals single draws");
    gc_rng_uniform_fill(parts, &a, 5, 3);
    gc_rng_uniform_fill(parts + 3, &a, 8, 500);
    gc_rng_uniform_fill(parts + 503, &a, 508, N - 503);
    CHECK(memcmp(whole, parts, sizeof whole) == 0, "split fill equals whole fill");

    /* Different addresses give different streams. */
    gc_rng_addr b = a;
    b.example = 124;
    CHECK(gc_rng_uniform(&a, 0) != gc_rng_uniform(&b, 0), "example changes the value");
    b = a, b.side = 0;
    CHECK(gc_rng_uniform(&a, 0) != gc_rng_uniform(&b, 0), "side changes the value");

    /* Dropout: keep rate near 1-p, kept values scaled by 1/(1-p). */
    enum { M = 200000 };
    float *mask = malloc(sizeof(float) * M);
    gc_dropout_mask(mask, &a, 0, M, 0.1f);
    size_t kept = 0;
    int scaled = 1;
    for (int i = 0; i < M; i++) {
        if (mask[i] != 0.0f) kept++, scaled &= fabsf(mask[i] - 1.0f / 0.9f) < 1e-6f;
    }
    double rate = (double)kept / M;
    CHECK(fabs(rate - 0.9) < 0.005, "keep rate %.4f", rate);
    CHECK(scaled, "kept values are 1/(1-p)");
    gc_dropout_mask(mask, &a, 0, 16, 0.0f);
    CHECK(mask[0] == 1.0f && mask[15] == 1.0f, "p = 0 keeps everything");
    free(mask);
    return test_summary("test_rng");
}

/* bench_loss_split.c: time the loss in the two halves the engine uses (gc_infonce_stats, then
 * gc_infonce_rep_grad for every window of queries and of passages) at a batch of random
 * representations, and print a hash of the gradients, so a change to the loss kernels can be
 * timed and checked for identical bits in one go.
 *
 * usage: bench_loss_split [--batch B] [--dim d] [--window W] [--symmetric] [--cosine]
 *                         [--bf16] [--temperature tau]
 * Defaults: B 32768, d 32 (the tiny model), W 1024, dot-product scores, tau 0.05. */
#include "gradcache.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* uniform in [-r, r) from a 64-bit LCG */
static void fill(float *x, size_t n, float r, uint64_t seed) {
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = r * ((float)(s >> 40) / 8388608.0f - 1.0f);
    }
}

/* FNV-1a over the bytes of n floats */
static uint64_t hash_floats(const float *x, size_t n, uint64_t h) {
    const unsigned char *b = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    int B = 32768, d = 32, W = 1024, bf16 = 0;
    gc_loss_config cfg = {0.05f, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--cosine"))
            cfg.cosine = 1;
        else if (!strcmp(a, "--symmetric"))
            cfg.symmetric = 1;
        else if (!strcmp(a, "--bf16"))
            bf16 = 1;
        else if (!strcmp(a, "--batch") && v)
            B = atoi(v), i++;
        else if (!strcmp(a, "--dim") && v)
            d = atoi(v), i++;
        else if (!strcmp(a, "--window") && v)
            W = atoi(v), i++;
        else if (!strcmp(a, "--temperature") && v)
            cfg.temperature = (float)atof(v), i++;
        else {
            fprintf(stderr,
                    "usage: %s [--batch B] [--dim d] [--window W] [--symmetric] [--cosine] "
                    "[--bf16] [--temperature tau]\n",
                    argv[0]);
            return 2;
        }
    }
    if (B <= 0 || d <= 0 || W <= 0) {
        fprintf(stderr, "bench_loss_split: bad sizes\n");
        return 2;
    }
    const size_t n = (size_t)B * d;
    float *q = malloc(n * sizeof(float)), *p = malloc(n * sizeof(float));
    uint16_t *qh = bf16 ? malloc(n * sizeof(uint16_t)) : NULL;
    uint16_t *ph = bf16 ? malloc(n * sizeof(uint16_t)) : NULL;
    float *g = malloc((size_t)W * d * sizeof(float));
    size_t wsz = gc_infonce_stats_workspace_size(B, B, d, B, 0, &cfg);
    void *ws = malloc(wsz);
    if (!q || !p || !g || !ws || (bf16 && (!qh || !ph))) {
        fprintf(stderr, "bench_loss_split: out of memory\n");
        return 1;
    }
    const float r = sqrtf(3.0f / d);
    fill(q, n, r, 1);
    fill(p, n, r, 2);
    for (size_t i = 0; i < n; i++) p[i] += 0.3f * q[i]; /* positives resemble their queries */
    gc_rep_view view = {q, p, d, 0};
    if (bf16) {
        gc_bf16_from_f32(qh, q, n);
        gc_bf16_from_f32(ph, p, n);
        view = (gc_rep_view){qh, ph, d, 1};
    }
    gc_loss_out out;
    double t0 = now_s();
    gc_status st = gc_infonce_stats(&view, B, B, d, &cfg, NULL, &out, ws);
    double t1 = now_s(), tg[2] = {0, 0};
    uint64_t h[2] = {1469598103934665603ull, 1469598103934665603ull};
    double gn[2] = {0, 0};
    for (int side = 0; side < 2 && st == GC_OK; side++) {
        for (int c0 = 0; c0 < B && st == GC_OK; c0 += W) {
            int m = B - c0 < W ? B - c0 : W;
            double a = now_s();
            st = gc_infonce_rep_grad(&view, side, c0, m, 1.0f, g, ws);
            tg[side] += now_s() - a;
            h[side] = hash_floats(g, (size_t)m * d, h[side]);
            for (size_t k = 0; k < (size_t)m * d; k++) gn[side] += (double)g[k] * g[k];
        }
    }
    if (st != GC_OK) {
        fprintf(stderr, "bench_loss_split: %s: %s\n", gc_status_str(st), gc_last_error());
        return 1;
    }
    double sc = (double)B * B;
    printf("loss split B=%d d=%d window=%d cosine=%d symmetric=%d bf16=%d\n", B, d, W, cfg.cosine,
           cfg.symmetric, bf16);
    printf("  stats %.3f s, query grads %.3f s, passage grads %.3f s, total %.3f s\n", t1 - t0,
           tg[0], tg[1], t1 - t0 + tg[0] + tg[1]);
    printf("  scores/s: stats %.3g, query grads %.3g, passage grads %.3g\n", sc / (t1 - t0),
           sc / tg[0], sc / tg[1]);
    printf("  loss %.9g accuracy %.6f dlog_tau %.9g\n", out.loss, out.accuracy, out.dlog_tau);
    printf("  |dq| %.9g |dp| %.9g hash %016llx %016llx\n", sqrt(gn[0]), sqrt(gn[1]),
           (unsigned long long)h[0], (unsigned long long)h[1]);
    free(q), free(p), free(qh), free(ph), free(g), free(ws);
    gc_matmul_cleanup();
    return 0;
}

/* bench_loss_memory.c: peak memory and time of one forward+backward pass of the tiled InfoNCE
 * loss at a batch far beyond what a dense B x P logits matrix allows (65,536 x 65,536 floats
 * would be 16 GiB).
 *
 * usage: bench_loss_memory [--cosine] [--symmetric] [--batch B] [--dim d] [--negatives K]
 *                          [--tile T] [--temperature tau]
 * Inputs are random; dq, dp and the workspace are allocated (and touched) before the loss
 * runs, so the RSS reported before the call is the floor the loss adds to. */
#include "gradcache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* uniform in [-r, r) from a 64-bit LCG: rows have norm near 1 for r = sqrt(3/d) */
static void fill(float *x, size_t n, float r, uint64_t seed) {
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = r * ((float)(s >> 40) / 8388608.0f - 1.0f);
    }
}

int main(int argc, char **argv) {
    int B = 65536, d = 384, K = 0;
    gc_loss_config cfg = {0.05f, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--cosine"))
            cfg.cosine = 1;
        else if (!strcmp(a, "--symmetric"))
            cfg.symmetric = 1;
        else if (!strcmp(a, "--batch") && v)
            B = atoi(v), i++;
        else if (!strcmp(a, "--dim") && v)
            d = atoi(v), i++;
        else if (!strcmp(a, "--negatives") && v)
            K = atoi(v), i++;
        else if (!strcmp(a, "--tile") && v)
            cfg.tile = atoi(v), i++;
        else if (!strcmp(a, "--temperature") && v)
            cfg.temperature = (float)atof(v), i++;
        else {
            fprintf(stderr,
                    "usage: %s [--cosine] [--symmetric] [--batch B] [--dim d] "
                    "[--negatives K] [--tile T] [--temperature tau]\n",
                    argv[0]);
            return 2;
        }
    }
    if (B <= 0 || d <= 0 || K < 0) {
        fprintf(stderr, "bench_loss_memory: bad sizes\n");
        return 2;
    }
    const int P = B * (1 + K);
    const size_t nq = (size_t)B * d, np = (size_t)P * d;
    size_t wsz = gc_infonce_workspace_size(B, P, d, &cfg);
    float *q = malloc(nq * sizeof(float)), *p = malloc(np * sizeof(float));
    float *dq = malloc(nq * sizeof(float)), *dp = malloc(np * sizeof(float));
    void *ws = malloc(wsz);
    if (!q || !p || !dq || !dp || !ws) {
        fprintf(stderr, "bench_loss_memory: out of memory\n");
        return 1;
    }
    const float r = sqrtf(3.0f / d);
    fill(q, nq, r, 1);
    fill(p, np, r, 2);
    for (size_t i = 0; i < nq; i++) p[i] += 0.3f * q[i]; /* positives resemble their queries */
    /* touch every page now (a zero memset may become calloc and touch nothing) */
    for (size_t i = 0; i < nq; i++) dq[i] = 1.0f;
    for (size_t i = 0; i < np; i++) dp[i] = 1.0f;
    memset(ws, 1, wsz);
    double rss0 = peak_rss_mib();

    gc_loss_out out;
    double t0 = now_s();
    gc_status st = gc_infonce(q, p, B, P, d, &cfg, &out, dq, dp, ws);
    double t1 = now_s();
    if (st != GC_OK) {
        fprintf(stderr, "bench_loss_memory: %s: %s\n", gc_status_str(st), gc_last_error());
        return 1;
    }
    double gn = 0;
    for (size_t i = 0; i < nq; i++) gn += (double)dq[i] * dq[i];
    double rss1 = peak_rss_mib();
    double dense = (double)B * P * sizeof(float) / (1024.0 * 1024.0);
    printf("infonce B=%d P=%d d=%d tau=%g cosine=%d symmetric=%d tile=%d\n", B, P, d,
           (double)cfg.temperature, cfg.cosine, cfg.symmetric, cfg.tile);
    printf("  inputs+grads %.1f MiB, workspace %.1f MiB, dense logits would be %.0f MiB\n",
           2.0 * (nq + np) * sizeof(float) / (1024.0 * 1024.0), wsz / (1024.0 * 1024.0), dense);
    printf("  peak RSS before loss %.1f MiB, after %.1f MiB\n", rss0, rss1);
    printf("  wall %.2f s (forward+backward)\n", t1 - t0);
    printf("  loss %.6f accuracy %.4f dlog_tau %.6f |dq| %.6g\n", out.loss, out.accuracy,
           out.dlog_tau, sqrt(gn));
    free(q), free(p), free(dq), free(dp), free(ws);
    gc_matmul_cleanup();
    return 0;
}

/* st_diff.c: compare the weight changes of two trained models against their common start.
 *
 *   st_diff START.safetensors A.safetensors B.safetensors [TOL]
 *
 * For every tensor of START: dA = A - START, dB = B - START, and the norm-relative difference
 * ||dA - dB|| / ||dB|| (computed in double). Prints each tensor and the largest difference;
 * exits 1 if any exceeds TOL (default 1e-5), if a tensor is missing or mis-shaped, or if dB is
 * zero where dA is not. Used by the CLI tests to check that gradient caching, chunk sizes and
 * the no-cache path give the same update.
 *
 * A tensor whose true gradient is zero (attention key biases: softmax ignores a shift that is
 * the same for every key) changes only by rounding noise, so each denominator is at least
 * 1e-5 of the whole model's update norm: such tensors are compared on the model's scale. */
#include "gc_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *read_tensor(const gc_safetensors *st, const char *name, size_t n, const char *file) {
    const gc_st_tensor *t = gc_st_find(st, name);
    if (!t || t->numel != n) {
        fprintf(stderr, "st_diff: %s: tensor %s %s\n", file, name,
                t ? "has another size" : "missing");
        return NULL;
    }
    float *x = malloc((n ? n : 1) * sizeof(float));
    if (!x || gc_st_read_f32(t, x, n) != GC_OK) {
        fprintf(stderr, "st_diff: %s: cannot read %s: %s\n", file, name, gc_last_error());
        free(x);
        return NULL;
    }
    return x;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: st_diff START.safetensors A.safetensors B.safetensors [TOL]\n");
        return 2;
    }
    double tol = argc == 5 ? strtod(argv[4], NULL) : 1e-5;
    gc_safetensors *s0 = NULL, *sa = NULL, *sb = NULL;
    if (gc_st_open(&s0, argv[1]) != GC_OK || gc_st_open(&sa, argv[2]) != GC_OK ||
        gc_st_open(&sb, argv[3]) != GC_OK) {
        fprintf(stderr, "st_diff: %s\n", gc_last_error());
        return 2;
    }
    const int nt = gc_st_count(s0);
    double *dd = calloc((size_t)nt + 1, sizeof(double)),
           *nb = calloc((size_t)nt + 1, sizeof(double));
    double *na = calloc((size_t)nt + 1, sizeof(double));
    int *ok = calloc((size_t)nt + 1, sizeof(int));
    if (!dd || !nb || !na || !ok) return 2;
    double total = 0;
    for (int i = 0; i < nt; i++) {
        const gc_st_tensor *t = gc_st_get(s0, i);
        float *x0 = read_tensor(s0, t->name, t->numel, argv[1]);
        float *xa = x0 ? read_tensor(sa, t->name, t->numel, argv[2]) : NULL;
        float *xb = xa ? read_tensor(sb, t->name, t->numel, argv[3]) : NULL;
        if (xb) {
            ok[i] = 1;
            for (size_t k = 0; k < t->numel; k++) {
                double da = (double)xa[k] - x0[k], db = (double)xb[k] - x0[k];
                dd[i] += (da - db) * (da - db);
                nb[i] += db * db;
                na[i] += da * da;
            }
            total += nb[i];
        }
        free(x0);
        free(xa);
        free(xb);
    }
    const double floor = 1e-5 * sqrt(total);
    int failed = 0, compared = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < nt; i++) {
        const gc_st_tensor *t = gc_st_get(s0, i);
        if (!ok[i]) {
            failed++;
            continue;
        }
        double den = sqrt(nb[i]) > floor ? sqrt(nb[i]) : floor;
        double err = den > 0 ? sqrt(dd[i]) / den : (na[i] > 0 ? INFINITY : 0);
        int bad = !(err <= tol);
        printf("%-60s |dB| %.3e  rel diff %.3e%s\n", t->name, sqrt(nb[i]), err,
               bad ? "  FAIL" : "");
        failed += bad;
        compared++;
        if (!(err <= worst)) {
            worst = err;
            worst_name = t->name;
        }
    }
    printf("st_diff: %d tensors, largest relative difference %.3e (%s), tolerance %.1e: %s\n",
           compared, worst, worst_name, tol, failed || compared == 0 ? "FAIL" : "ok");
    free(dd);
    free(nb);
    free(na);
    free(ok);
    gc_st_close(s0);
    gc_st_close(sa);
    gc_st_close(sb);
    return failed || compared == 0 ? 1 : 0;
}

/* test_util.h: the small checking helpers every C test uses. A test counts its checks,
 * prints each failure, and returns non-zero from main when any failed. */
#ifndef GC_TEST_UTIL_H
#define GC_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int g_checks, g_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        g_checks++;                                                                                \
        if (!(cond)) {                                                                             \
            g_failures++;                                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        gc_status st_ = (expr);                                                                    \
        g_checks++;                                                                                \
        if (st_ != GC_OK) {                                                                        \
            g_failures++;                                                                          \
            fprintf(stderr, "FAIL %s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #expr,         \
                    gc_status_str(st_), gc_last_error());                                          \
        }                                                                                          \
    } while (0)

/* max |a-b| / max(max|b|, tiny): a per-tensor norm-relative error. */
static inline double max_rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || d != d) md = d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return md / (mb > 1e-30 ? mb : 1e-30);
}

/* ||a-b||_2 / ||b||_2 */
static inline double norm_rel_err(const float *a, const float *b, size_t n) {
    double dd = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        dd += d * d;
        bb += (double)b[i] * b[i];
    }
    return sqrt(dd) / (bb > 0 ? sqrt(bb) : 1e-30);
}

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, g_checks - g_failures, g_failures);
    return g_failures ? 1 : 0;
}

#endif

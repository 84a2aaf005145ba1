/* test_vexp.c: gc_exp_array (the vector exp of the loss tiles) on this process's kernel path
 * against gc_exp_array_ref bit for bit (so every path gives the same bits: the test also runs
 * under GC_CPU=generic and avx2), and against libm's expf within 2e-7 relative over
 * [-87, 88], with the clamps at both ends. */
#include "core/vexp.h"
#include "gc_core.h"
#include "test_util.h"

#include <math.h>
#include <string.h>

int main(void) {
    enum { N = 100003 }; /* odd, so the scalar tail runs too */
    static float x[N], v[N], r[N];
    unsigned s = 9;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = -87.0f + 175.0f * (float)(s >> 8) / 16777216.0f;
    }
    x[0] = -87.5f, x[1] = -200.0f, x[2] = 88.0f, x[3] = 0.0f, x[4] = -0.0f, x[5] = 1e-30f;
    gc_exp_array(v, x, N);
    gc_exp_array_ref(r, x, N);
    CHECK(memcmp(v, r, sizeof v) == 0, "%s path differs from the reference",
          gc_cpu_path_name(gc_cpu_path_get()));
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (x[i] < -87.0f) {
            CHECK(v[i] == 0.0f, "exp(%g) = %g, want 0", x[i], v[i]);
            continue;
        }
        double want = expf(x[i]), e = fabs(v[i] - want) / want;
        if (e > worst) worst = e;
    }
    CHECK(worst <= 2e-7, "max relative error %.3g against expf", worst);
    CHECK(v[3] == 1.0f && v[4] == 1.0f && v[5] == 1.0f, "exp(0) = 1");
    /* in place */
    memcpy(r, x, sizeof r);
    gc_exp_array(r, r, N);
    CHECK(memcmp(v, r, sizeof v) == 0, "in place");
    printf("vexp (%s path): max relative error %.3g against expf, reference bits equal\n",
           gc_cpu_path_name(gc_cpu_path_get()), worst);
    return test_summary("test_vexp");
}

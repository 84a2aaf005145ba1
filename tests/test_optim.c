/* test_optim.c: AdamW and SGD against hand-computed updates (with and without weight decay),
 * the decay rule by tensor name, the schedules, clipping, and the OpenMP loop against the
 * plain reference. */
#include "gc_optim.h"
#include "gc_testing.h"
#include "test_util.h"

#include <string.h>

static int close_to(double a, double b, double tol) {
    return fabs(a - b) <= tol * (fabs(b) > 1 ? fabs(b) : 1);
}

static void test_adamw_by_hand(void) {
    /* element 0 decays, element 1 does not; p = 1 for both, g = 0.5, -0.25, 1.0; lr 0.1,
     * wd 0.01. Step 1: decay 1 -> 0.999; m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25,
     * update 0.1 * 0.5 / (0.5 + 1e-8) -> 0.899000002. Steps 2 and 3 worked the same way. */
    const double want_decay[3] = {0.8990000019999999, 0.8714672987058462, 0.8047846723763838};
    const double want_plain[3] = {0.9000000019999999, 0.8733662987078462, 0.8075551396770897};
    const float gs[3] = {0.5f, -0.25f, 1.0f};
    for (int ref = 0; ref < 2; ref++) {
        gc_optim *o = NULL;
        gc_optim_config cfg = {.kind = GC_OPTIM_ADAMW, .weight_decay = 0.01f};
        CHECK_OK(gc_optim_create(&o, &cfg, 2));
        if (!o) return;
        CHECK_OK(gc_optim_set_decay(o, 1, 1, 0));
        float p[2] = {1, 1};
        for (int t = 0; t < 3; t++) {
            float g[2] = {gs[t], gs[t]};
            if (ref)
                gc_optim_step_ref(o, p, g, 0.1f, 1.0f);
            else
                gc_optim_step(o, p, g, 0.1f, 1.0f);
            CHECK(close_to(p[0], want_decay[t], 1e-6), "ref %d step %d decayed %.9f want %.9f", ref,
                  t, p[0], want_decay[t]);
            CHECK(close_to(p[1], want_plain[t], 1e-6), "ref %d step %d plain %.9f want %.9f", ref,
                  t, p[1], want_plain[t]);
        }
        CHECK(gc_optim_get_step(o) == 3, "step count %llu",
              (unsigned long long)gc_optim_get_step(o));
        CHECK(gc_optim_state_size(o) == 4, "state size %zu", gc_optim_state_size(o));
        /* m after the three steps: 0.9*(0.9*0.05 - 0.025) + 0.1 = 0.118 */
        CHECK(close_to(gc_optim_state(o)[0], 0.118, 1e-6), "m %.9f", gc_optim_state(o)[0]);
        gc_optim_free(o);
    }
}

static void test_sgd_by_hand(void) {
    gc_optim *o = NULL;
    gc_optim_config cfg = {.kind = GC_OPTIM_SGD, .weight_decay = 0.01f};
    CHECK_OK(gc_optim_create(&o, &cfg, 3));
    if (!o) return;
    CHECK_OK(gc_optim_set_decay(o, 2, 1, 0));
    CHECK(gc_optim_state_size(o) == 0 && gc_optim_state(o) == NULL, "SGD keeps no state");
    float p[3] = {1, 2, 1};
    float g[3] = {0.5f, 0.5f, 0.5f};
    /* grad_scale 0.5: g = 0.25 (+ 0.01 * p where decaying) */
    gc_optim_step(o, p, g, 0.1f, 0.5f);
    CHECK(close_to(p[0], 1 - 0.1 * (0.25 + 0.01), 1e-7), "p0 %.9f", p[0]);
    CHECK(close_to(p[1], 2 - 0.1 * (0.25 + 0.02), 1e-7), "p1 %.9f", p[1]);
    CHECK(close_to(p[2], 1 - 0.1 * 0.25, 1e-7), "p2 %.9f", p[2]);
    gc_optim_free(o);

    /* lr 1000, no decay: the update is exactly -lr * g (the CLI's exactness check uses this) */
    cfg.weight_decay = 0;
    CHECK_OK(gc_optim_create(&o, &cfg, 1));
    if (!o) return;
    float q = 0.25f, gq = 0.125f;
    gc_optim_step(o, &q, &gq, 1000.0f, 1.0f);
    CHECK(q == 0.25f - 125.0f, "sgd lr 1000: %.9f", q);
    gc_optim_free(o);
}

static void test_decay_names(void) {
    CHECK(gc_optim_default_decay("embeddings.word_embeddings.weight") == 1,
          "word embeddings decay");
    CHECK(gc_optim_default_decay("encoder.layer.0.attention.self.query.weight") == 1,
          "query weight");
    CHECK(gc_optim_default_decay("encoder.layer.0.attention.self.query.bias") == 0, "bias");
    CHECK(gc_optim_default_decay("encoder.layer.3.output.LayerNorm.weight") == 0,
          "LayerNorm weight");
    CHECK(gc_optim_default_decay("embeddings.LayerNorm.bias") == 0, "LayerNorm bias");
    CHECK(gc_optim_default_decay("final_layer_norm.weight") == 0, "layer_norm");
}

static void test_schedules(void) {
    /* linear, warmup 2, total 10: 0, .5, then (10 - t) / 8 down to 0 */
    const double lin[12] = {0, .5, 1, 7 / 8., 6 / 8., 5 / 8., 4 / 8., 3 / 8., 2 / 8., 1 / 8., 0, 0};
    for (int t = 0; t < 12; t++) {
        float lr = gc_lr_at(GC_SCHED_LINEAR, 2.0f, (uint64_t)t, 2, 10);
        CHECK(close_to(lr, 2 * lin[t], 1e-7), "linear step %d: %g want %g", t, lr, 2 * lin[t]);
    }
    /* no warmup: step 0 runs at the full rate */
    CHECK(gc_lr_at(GC_SCHED_LINEAR, 1.0f, 0, 0, 4) == 1.0f, "linear step 0 without warmup");
    CHECK(close_to(gc_lr_at(GC_SCHED_LINEAR, 1.0f, 3, 0, 4), 0.25, 1e-7), "linear last step");
    const double cst[5] = {0, 1 / 3., 2 / 3., 1, 1};
    for (int t = 0; t < 5; t++) {
        float lr = gc_lr_at(GC_SCHED_CONSTANT, 1.0f, (uint64_t)t, 3, 4);
        CHECK(close_to(lr, cst[t], 1e-7), "constant step %d: %g", t, lr);
    }
    CHECK(gc_lr_at(GC_SCHED_CONSTANT, 0.5f, 100, 0, 4) == 0.5f, "constant past total");
}

static void test_clipping(void) {
    const float a[1] = {3}, b[1] = {4};
    const float *bufs[2] = {a, b};
    const size_t counts[2] = {1, 1};
    double norm = gc_grad_norm(bufs, counts, 2);
    CHECK(close_to(norm, 5, 1e-12), "norm %g", norm);
    CHECK(close_to(gc_clip_scale(norm, 1.0), 1.0 / (5 + 1e-6), 1e-7), "clip to 1");
    CHECK(gc_clip_scale(norm, 10.0) == 1.0f, "no clip when under the limit");
    CHECK(gc_clip_scale(norm, 0.0) == 1.0f, "0 disables");

    /* a large buffer whose size does not divide the segment count */
    size_t n = 100003;
    float *g = malloc(n * sizeof(float));
    double want = 0;
    for (size_t i = 0; i < n; i++) {
        g[i] = (float)((double)(i % 17) - 8.0) * 0.01f;
        want += (double)g[i] * g[i];
    }
    const float *gb[1] = {g};
    size_t gn[1] = {n};
    CHECK(close_to(gc_grad_norm(gb, gn, 1), sqrt(want), 1e-12), "large norm");
    free(g);
}

static void test_against_reference(void) {
    const size_t n = 5003;
    for (int kind = 0; kind < 2; kind++) {
        gc_optim *o1 = NULL, *o2 = NULL;
        gc_optim_config cfg = {.kind = (gc_optim_kind)kind, .weight_decay = 0.1f};
        CHECK_OK(gc_optim_create(&o1, &cfg, n));
        CHECK_OK(gc_optim_create(&o2, &cfg, n));
        if (!o1 || !o2) return;
        CHECK_OK(gc_optim_set_decay(o1, 100, 1000, 0));
        CHECK_OK(gc_optim_set_decay(o2, 100, 1000, 0));
        float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float));
        float *g = malloc(n * sizeof(float));
        uint64_t s = 12345;
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            p1[i] = p2[i] = (float)((double)(s >> 40) / (double)(1 << 24) - 0.5);
        }
        for (int t = 0; t < 5; t++) {
            for (size_t i = 0; i < n; i++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                g[i] = (float)((double)(s >> 40) / (double)(1 << 24) - 0.5) * 0.1f;
            }
            gc_optim_step(o1, p1, g, 1e-2f, 0.7f);
            gc_optim_step_ref(o2, p2, g, 1e-2f, 0.7f);
        }
        double err = max_rel_err(p1, p2, n);
        CHECK(err < 1e-5, "kind %d: optimized vs reference %.3g", kind, err);
        free(p1);
        free(p2);
        free(g);
        gc_optim_free(o1);
        gc_optim_free(o2);
    }
}

static void test_errors(void) {
    gc_optim *o = NULL;
    gc_optim_config cfg = {.kind = GC_OPTIM_ADAMW};
    CHECK_OK(gc_optim_create(&o, &cfg, 10));
    CHECK(gc_optim_set_decay(o, 5, 6, 0) == GC_ERR_INVALID_ARG, "range past the end");
    CHECK(strstr(gc_last_error(), "outside") != NULL, "message: %s", gc_last_error());
    gc_optim_free(o);
    cfg.weight_decay = -1;
    CHECK(gc_optim_create(&o, &cfg, 10) == GC_ERR_INVALID_ARG && o == NULL, "negative decay");
    cfg.weight_decay = 0;
    cfg.kind = (gc_optim_kind)7;
    CHECK(gc_optim_create(&o, &cfg, 10) == GC_ERR_INVALID_ARG, "unknown kind");
    gc_optim_free(NULL);
}

int main(void) {
    test_adamw_by_hand();
    test_sgd_by_hand();
    test_decay_names();
    test_schedules();
    test_clipping();
    test_against_reference();
    test_errors();
    return test_summary("test_optim");
}

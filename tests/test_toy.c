/* test_toy.c: the toy encoder's gradients against central finite differences (dropout off and
 * on: masks are addressed, so a perturbed forward sees the same mask), chunk independence,
 * encode == forward, deterministic init, and refusals of bad input. */
#include "gc_testing.h"
#include "test_util.h"

#include <string.h>

enum { V = 23, E = 6, H = 10, D = 5, NSEQ = 7 };

/* Seven sequences; token 3 appears in several of them and twice in one, sequence 5 is empty. */
static const int32_t g_ids[] = {1, 3, 5, 7,  3,  3, 2,  22, 0,  9,  11, 3,
                                4, 8, 6, 15, 17, 3, 12, 13, 21, 19, 20};
static const int64_t g_offsets[NSEQ + 1] = {0, 4, 6, 10, 12, 17, 17, 23};

static gc_toy_config toy_cfg(float dropout, int max_chunk, uint64_t seed) {
    gc_toy_config c = {V, E, H, D, dropout, max_chunk, 1, 64, seed};
    return c;
}

/* Tensor layout of the flat buffers, as documented in src/models/toy.c. */
static const char *g_names[5] = {"emb", "w1", "b1", "w2", "b2"};
static const size_t g_sizes[5] = {V * E, H *E, H, D *H, D};

/* L = sum w * reps over examples [0, NSEQ), in double. */
static double loss_of(gc_encoder *enc, const gc_encode_args *a, const float *w, float *reps) {
    gc_status st = enc->ops->encode(enc->ctx, a, reps);
    if (st != GC_OK) return NAN;
    double l = 0.0;
    for (int i = 0; i < NSEQ * D; i++) l += (double)w[i] * reps[i];
    return l;
}

static void check_gradients(float dropout, int train) {
    gc_encoder enc;
    gc_toy_config cfg = toy_cfg(dropout, 8, 1234);
    CHECK_OK(gc_toy_encoder_create(&enc, &cfg));
    gc_token_batch tb = {NSEQ, g_ids, g_offsets};
    gc_encode_args a = {&tb, 1, 0, NSEQ, train, 0, 99, 5};

    float w[NSEQ * D], reps[NSEQ * D];
    gc_rng_addr wa = {7, 0, 0, 0, 0};
    gc_rng_uniform_fill(w, &wa, 0, NSEQ * D);
    for (int i = 0; i < NSEQ * D; i++) w[i] = 2.0f * w[i] - 1.0f;

    gc_encoder_zero_grad(&enc);
    CHECK_OK(enc.ops->forward(enc.ctx, &a, reps));
    CHECK_OK(enc.ops->backward(enc.ctx, &a, w));

    size_t n = gc_encoder_num_params(&enc);
    float *p = gc_toy_params(&enc), *g = gc_toy_grads(&enc);
    float *fd = malloc(sizeof(float) * n);
    const float eps = 5e-3f;
    for (size_t i = 0; i < n; i++) {
        /* fourth-order central difference: the normalization makes the loss curved enough
         * that the plain two-point stencil's truncation error dominates */
        float keep = p[i];
        double l[4];
        const float steps[4] = {2.0f, 1.0f, -1.0f, -2.0f};
        for (int k = 0; k < 4; k++) {
            p[i] = keep + steps[k] * eps;
            l[k] = loss_of(&enc, &a, w, reps);
        }
        p[i] = keep;
        fd[i] = (float)((8.0 * (l[1] - l[2]) - (l[0] - l[3])) / (12.0 * eps));
    }
    size_t off = 0;
    for (int k = 0; k < 5; k++) {
        double err = norm_rel_err(g + off, fd + off, g_sizes[k]);
        printf("  dropout %.1f train %d  %-3s  norm-rel err vs finite differences %.2e\n",
               (double)dropout, train, g_names[k], err);
        CHECK(err < 5e-4, "%s gradient err %.3e (dropout %g)", g_names[k], err, (double)dropout);
        off += g_sizes[k];
    }
    free(fd);
    gc_encoder_free(&enc);
}

int main(void) {
    gc_token_batch tb = {NSEQ, g_ids, g_offsets};
    gc_encoder enc, enc2;

    /* Bad configurations are refused with a message. */
    gc_toy_config bad = toy_cfg(0.1f, 8, 1);
    bad.vocab = 0;
    gc_clear_error();
    CHECK(gc_toy_encoder_create(&enc, &bad) == GC_ERR_INVALID_ARG && gc_last_error()[0], "vocab 0");
    bad = toy_cfg(1.0f, 8, 1);
    gc_clear_error();
    CHECK(gc_toy_encoder_create(&enc, &bad) == GC_ERR_INVALID_ARG && gc_last_error()[0],
          "dropout 1");
    bad = toy_cfg(0.1f, 0, 1);
    gc_clear_error();
    CHECK(gc_toy_encoder_create(&enc, &bad) == GC_ERR_INVALID_ARG && gc_last_error()[0],
          "max_chunk 0");
    bad = toy_cfg(0.1f, 8, 1);
    bad.slots = 3;
    gc_clear_error();
    CHECK(gc_toy_encoder_create(&enc, &bad) == GC_ERR_INVALID_ARG && gc_last_error()[0], "slots 3");
    CHECK(gc_toy_encoder_create(NULL, &bad) == GC_ERR_INVALID_ARG, "NULL out");

    /* Gradients against finite differences. */
    check_gradients(0.0f, 1);
    check_gradients(0.3f, 0); /* dropout configured but not training */
    check_gradients(0.3f, 1);

    /* Deterministic init: the seed alone fixes the parameters. */
    gc_toy_config cfg = toy_cfg(0.3f, 8, 42);
    CHECK_OK(gc_toy_encoder_create(&enc, &cfg));
    CHECK_OK(gc_toy_encoder_create(&enc2, &cfg));
    size_t n = gc_encoder_num_params(&enc);
    CHECK(n == V * E + H * E + H + D * H + D, "num_params %zu", n);
    CHECK(enc.ops->dim(enc.ctx) == D, "dim");
    CHECK(memcmp(gc_toy_params(&enc), gc_toy_params(&enc2), n * sizeof(float)) == 0,
          "same seed, same parameters");
    gc_encoder_free(&enc2);
    gc_toy_config cfg43 = toy_cfg(0.3f, 8, 43);
    CHECK_OK(gc_toy_encoder_create(&enc2, &cfg43));
    CHECK(memcmp(gc_toy_params(&enc), gc_toy_params(&enc2), n * sizeof(float)) != 0,
          "different seed, different parameters");
    gc_encoder_free(&enc2);

    /* encode == forward; outputs unit norm; chunking does not change any example. */
    float whole[NSEQ * D], parts[NSEQ * D], fwd[NSEQ * D], eval[NSEQ * D];
    gc_encode_args a = {&tb, 0, 0, NSEQ, 1, 0, 77, 3};
    CHECK_OK(enc.ops->encode(enc.ctx, &a, whole));
    CHECK_OK(enc.ops->forward(enc.ctx, &a, fwd));
    CHECK(max_rel_err(fwd, whole, NSEQ * D) <= 1e-6, "forward equals encode");
    double worst_norm = 0.0;
    for (int i = 0; i < NSEQ; i++) {
        double s = 0.0;
        for (int c = 0; c < D; c++) s += (double)whole[i * D + c] * whole[i * D + c];
        if (fabs(sqrt(s) - 1.0) > worst_norm) worst_norm = fabs(sqrt(s) - 1.0);
    }
    CHECK(worst_norm < 1e-5, "unit norm (off by %.2e)", worst_norm);
    gc_encode_args a1 = a, a2 = a;
    a1.count = 2, a2.first = 2, a2.count = NSEQ - 2;
    CHECK_OK(enc.ops->encode(enc.ctx, &a1, parts));
    CHECK_OK(enc.ops->encode(enc.ctx, &a2, parts + 2 * D));
    double chunk_err = max_rel_err(parts, whole, NSEQ * D);
    printf("  encode in chunks vs whole: max rel err %.2e\n", chunk_err);
    CHECK(chunk_err <= 1e-6, "chunking changes reps by %.3e", chunk_err);
    gc_encode_args ae = a;
    ae.train = 0;
    CHECK_OK(enc.ops->encode(enc.ctx, &ae, eval));
    CHECK(max_rel_err(eval, whole, NSEQ * D) > 1e-3, "dropout changes the output");
    gc_encode_args as = a;
    as.step = 4;
    CHECK_OK(enc.ops->encode(enc.ctx, &as, parts));
    CHECK(max_rel_err(parts, whole, NSEQ * D) > 1e-3, "the step changes the dropout mask");

    /* Backward in two chunks equals backward of the whole. */
    float *gwhole = malloc(sizeof(float) * n);
    float *g = gc_toy_grads(&enc);
    float dreps[NSEQ * D];
    for (int i = 0; i < NSEQ * D; i++) dreps[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    gc_encoder_zero_grad(&enc);
    CHECK_OK(enc.ops->forward(enc.ctx, &a, fwd));
    CHECK_OK(enc.ops->backward(enc.ctx, &a, dreps));
    memcpy(gwhole, g, sizeof(float) * n);
    gc_encoder_zero_grad(&enc);
    CHECK_OK(enc.ops->forward(enc.ctx, &a1, fwd));
    CHECK_OK(enc.ops->backward(enc.ctx, &a1, dreps));
    CHECK_OK(enc.ops->forward(enc.ctx, &a2, fwd));
    CHECK_OK(enc.ops->backward(enc.ctx, &a2, dreps + 2 * D));
    double bw_err = norm_rel_err(g, gwhole, n);
    printf("  backward in chunks vs whole: norm rel err %.2e\n", bw_err);
    CHECK(bw_err <= 1e-6, "chunked backward differs by %.3e", bw_err);
    free(gwhole);

    /* Refusals: each returns INVALID_ARG with a message and leaves the encoder usable. */
    int32_t bad_ids[] = {1, 2, 23};
    int32_t neg_ids[] = {1, -1, 2};
    int64_t bad_offsets[] = {0, 2, 1, 3};
    int64_t ok_offsets[] = {0, 1, 2, 3};
    gc_token_batch b_vocab = {3, bad_ids, ok_offsets}, b_neg = {3, neg_ids, ok_offsets};
    gc_token_batch b_offs = {3, g_ids, bad_offsets}, b_null = {3, NULL, ok_offsets};
    struct {
        const char *what;
        gc_encode_args args;
        int op; /* 0 encode, 1 forward, 2 backward */
    } cases[] = {
        {"id >= vocab", {&b_vocab, 0, 0, 3, 1, 0, 1, 1}, 0},
        {"id < 0", {&b_neg, 0, 0, 3, 1, 0, 1, 1}, 1},
        {"decreasing offsets", {&b_offs, 0, 0, 3, 1, 0, 1, 1}, 0},
        {"NULL ids", {&b_null, 0, 0, 3, 1, 0, 1, 1}, 0},
        {"NULL inputs", {NULL, 0, 0, 3, 1, 0, 1, 1}, 0},
        {"count 0", {&tb, 0, 0, 0, 1, 0, 1, 1}, 0},
        {"count > max_chunk", {&tb, 0, 0, 9, 1, 0, 1, 1}, 1},
        {"range past the batch", {&tb, 0, 5, 3, 1, 0, 1, 1}, 0},
        {"negative first", {&tb, 0, -1, 3, 1, 0, 1, 1}, 0},
        {"slot 1 of 1", {&tb, 0, 0, 3, 1, 1, 1, 1}, 1},
        {"backward of another range", {&tb, 0, 1, 3, 1, 0, 1, 1}, 2},
    };
    CHECK_OK(enc.ops->forward(enc.ctx, &a1, fwd)); /* slot 0 holds [0, 2) */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gc_clear_error();
        gc_status st = cases[i].op == 0   ? enc.ops->encode(enc.ctx, &cases[i].args, parts)
                       : cases[i].op == 1 ? enc.ops->forward(enc.ctx, &cases[i].args, parts)
                                          : enc.ops->backward(enc.ctx, &cases[i].args, dreps);
        CHECK(st == GC_ERR_INVALID_ARG && gc_last_error()[0], "%s: status %d, message '%s'",
              cases[i].what, (int)st, gc_last_error());
        printf("  refused %-26s %s\n", cases[i].what, gc_last_error());
    }
    /* Refused calls touch nothing: slot 0 still holds the forward of [0, 2). */
    CHECK_OK(enc.ops->backward(enc.ctx, &a1, dreps));
    /* A fresh encoder has no forward to go backward through. */
    CHECK_OK(gc_toy_encoder_create(&enc2, &cfg));
    gc_clear_error();
    CHECK(enc2.ops->backward(enc2.ctx, &a1, dreps) == GC_ERR_INVALID_ARG && gc_last_error()[0],
          "backward without forward");
    gc_encoder_free(&enc2);
    CHECK_OK(enc.ops->encode(enc.ctx, &a, parts));
    CHECK(max_rel_err(parts, whole, NSEQ * D) <= 1e-6, "still usable after refusals");

    gc_encoder_free(&enc);
    gc_encoder_free(&enc); /* twice is fine */
    gc_encoder_free(NULL);
    gc_matmul_cleanup();
    return test_summary("test_toy");
}

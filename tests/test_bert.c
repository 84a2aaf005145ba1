/* test_bert.c: the BERT encoder against PyTorch and against itself.
 *
 *  - the optimized attention kernel against the plain reference (forward and backward, with
 *    attention dropout on), also without kept activations;
 *  - the parameter-gradient sums over tokens (LayerNorm, bias, embeddings) against their
 *    references on rows that cancel, where float sums would be visibly off;
 *  - the tiny fixture model (tests/fixtures/bert/tiny, made by scripts/make_bert_fixtures.py)
 *    loaded with gc_bert_load: last hidden states, pooled outputs (mean, CLS, max), normalized
 *    embeddings, the InfoNCE loss and its gradient, and every parameter gradient, each within
 *    1e-4 of PyTorch's float64 values (max error relative to the tensor's largest value);
 *  - encode equals forward; chunking does not change outputs or gradients with dropout on;
 *  - the inference reservation encodes the same, refuses forward and backward;
 *  - the bf16 GELU kernels against the float ones and their references;
 *  - the parameter layout (one table: count, pointers, names) and the parameter store;
 *  - finite differences of the whole model (dropout on, each pooling mode);
 *  - save -> load round trips; random init;
 *  - hostile model folders and bad encoder arguments give clear errors. */
#include "gc_bert.h"
#include "gc_io.h"
#include "models/bert_internal.h"

#include "bert_fixture.h"
#include "test_util.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY_DIR GC_SOURCE_DIR "/tests/fixtures/bert/tiny"
#define TINY_REF GC_SOURCE_DIR "/tests/fixtures/bert/tiny_ref.bin"
#define TOL 1e-4

static uint64_t g_lcg = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    g_lcg = g_lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_lcg >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void report(const char *what, double err, double tol) {
    printf("  %-60s max rel err %.3e%s\n", what, err, err <= tol ? "" : "  <-- FAIL");
    CHECK(err <= tol, "%s: error %.3e > %.1e", what, err, tol);
}

/* ------------------------------------------------------------------------------------------ */
/* attention: optimized against reference */

static void test_attention_kernel(void) {
    enum { B = 3, C = 12, NH = 3, MAXP = 16 };
    int lens[B] = {1, 5, 9}, off[B + 1], tok_seq[32], tok_pos[32];
    size_t att_off[B + 1];
    off[0] = 0, att_off[0] = 0;
    int N = 0, maxT = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < lens[b]; t++) tok_seq[N] = b, tok_pos[N] = t, N++;
        off[b + 1] = N;
        att_off[b + 1] = att_off[b] + (size_t)NH * lens[b] * lens[b];
        if (lens[b] > maxT) maxT = lens[b];
    }
    bert_chunk ck = {B, N, maxT, off, att_off, tok_seq, tok_pos, MAXP, 1, 99, 3, 1, 40};
    size_t natt = att_off[B];
    float qkv[15 * 3 * C], dctx[15 * C];
    for (int i = 0; i < N * 3 * C; i++) qkv[i] = 2.0f * frand();
    for (int i = 0; i < N * C; i++) dctx[i] = frand();
    float ctx[15 * C], ctx_r[15 * C], att[3 * 107], att_r[3 * 107], qkvh[15 * 3 * C];
    float dqkv[15 * 3 * C], dqkv_r[15 * 3 * C];
    int nthr = 2;
    float *scratch = malloc(sizeof(float) * nthr * bert_attention_scratch_floats(maxT, C / NH));
    for (int pass = 0; pass < 2; pass++) {
        float p = pass ? 0.3f : 0.0f;
        uint32_t stream = GC_RNG_STREAM(2, BERT_SITE_ATT_PROBS);
        CHECK_OK(bert_attention_forward(ctx, att, qkvh, qkv, &ck, C, NH, stream, p, scratch, nthr));
        bert_attention_forward_ref(ctx_r, att_r, qkv, &ck, C, NH, stream, p);
        CHECK_OK(
            bert_attention_backward(dqkv, dctx, att, qkvh, &ck, C, NH, stream, p, scratch, nthr));
        bert_attention_backward_ref(dqkv_r, dctx, att_r, qkv, &ck, C, NH, stream, p);
        char what[80];
        snprintf(what, sizeof what, "attention probs vs reference (p=%.1f)", p);
        report(what, max_rel_err(att, att_r, natt), 1e-5);
        snprintf(what, sizeof what, "attention context vs reference (p=%.1f)", p);
        report(what, max_rel_err(ctx, ctx_r, (size_t)N * C), 1e-5);
        snprintf(what, sizeof what, "attention d qkv vs reference (p=%.1f)", p);
        report(what, max_rel_err(dqkv, dqkv_r, (size_t)N * 3 * C), 1e-5);
        /* nothing kept (encode): probabilities and heads in scratch, the same context */
        float ctx_nk[15 * C];
        CHECK_OK(
            bert_attention_forward(ctx_nk, NULL, NULL, qkv, &ck, C, NH, stream, p, scratch, nthr));
        snprintf(what, sizeof what, "attention context, nothing kept (p=%.1f)", p);
        report(what, max_rel_err(ctx_nk, ctx, (size_t)N * C), 0.0);
        if (pass == 1) {
            /* dropout must change the context */
            float ctx0[15 * C];
            bert_attention_forward_ref(ctx0, att_r, qkv, &ck, C, NH, stream, 0.0f);
            CHECK(max_rel_err(ctx, ctx0, (size_t)N * C) > 1e-3, "attention dropout had no effect");
        }
    }
    free(scratch);
}

/* ------------------------------------------------------------------------------------------ */
/* parameter-gradient sums over tokens: optimized against reference */

/* Rows in pairs that nearly cancel (row 2k+1 = -row 2k + 1e-4 noise): a column sum is far
 * smaller than its terms, as for the last LayerNorm bias with hard negatives. Float partial
 * sums would be off by ~1e-3 of the result; the double ones agree to rounding. */
static void cancelling_rows(float *d, int N, int C) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C; i++)
            d[(size_t)n * C + i] =
                n % 2 ? -d[(size_t)(n - 1) * C + i] + 1e-4f * frand() : 3.0f * frand();
}

static void test_param_sums(void) {
    enum { N = 4000, C = 40, B = 7, V = 9, MAXP = 1000 }; /* C not a multiple of the block */
    float *d = malloc(sizeof(float) * N * C), *x = malloc(sizeof(float) * N * C);
    float *dx = malloc(sizeof(float) * N * C), *dx_r = malloc(sizeof(float) * N * C);
    float w[C], mean[N], rstd[N], g[4][C];
    cancelling_rows(d, N, C);
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int i = 0; i < C; i++)
            x[(size_t)n * C + i] = 2.0f * frand() + 0.5f, m += x[(size_t)n * C + i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[(size_t)n * C + i] - m) * (x[(size_t)n * C + i] - m);
        mean[n] = (float)m, rstd[n] = (float)(1.0 / sqrt(v / C + 1e-12));
    }
    for (int i = 0; i < C; i++) w[i] = 1.0f + 0.5f * frand();
    /* gradients accumulate: start all four from the same values */
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < C; i++) g[k][i] = 1e-5f * (float)i;
    printf("parameter-gradient sums over %d tokens (cancelling), optimized vs reference:\n", N);
    bert_layernorm_backward(dx, g[0], g[1], d, x, w, mean, rstd, N, C, 2);
    bert_layernorm_backward_ref(dx_r, g[2], g[3], d, x, w, mean, rstd, N, C);
    report("LayerNorm d weight", max_rel_err(g[0], g[2], C), 1e-6);
    report("LayerNorm d bias", max_rel_err(g[1], g[3], C), 1e-6);
    report("LayerNorm d input", max_rel_err(dx, dx_r, (size_t)N * C), 1e-5);
    for (int i = 0; i < C; i++) g[0][i] = g[1][i] = 1e-5f * (float)i;
    bert_bias_backward(g[0], d, N, C, 2);
    bert_bias_backward_ref(g[1], d, N, C);
    report("bias gradient", max_rel_err(g[0], g[1], C), 1e-6);
    /* the data is hostile: a float sum of a column is off by more than the tolerances above */
    float fs = 0.0f;
    double ds = 0.0;
    for (int n = 0; n < N; n++) fs += d[(size_t)n * C], ds += d[(size_t)n * C];
    printf("  column 0 summed in double %.6e, in float %.6e\n", ds, (double)fs);
    CHECK(fabs(fs - ds) > 1e-4 * fabs(ds), "the test columns do not cancel");

    /* embeddings: B sequences of a small vocabulary, so ids and positions repeat */
    int lens[B] = {1, 800, 3, 999, 700, 997, 500}, off[B + 1], tok_seq[N], tok_pos[N], by_id[N];
    int32_t ids[N];
    uint64_t keys[N];
    size_t att_off[B + 1] = {0};
    off[0] = 0;
    int n = 0, maxT = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < lens[b]; t++, n++)
            tok_seq[n] = b, tok_pos[n] = t, ids[n] = (int32_t)((frand() + 1.0f) * 0.5f * V);
        off[b + 1] = n;
        if (lens[b] > maxT) maxT = lens[b];
    }
    CHECK(n == N, "token count %d", n);
    bert_chunk ck = {B, N, maxT, off, att_off, tok_seq, tok_pos, MAXP, 0, 1, 0, 0, 0};
    float *tab = calloc(2 * (V + MAXP + 1) * C, sizeof(float));
    float *wte = tab, *wpe = wte + V * C, *wtt = wpe + MAXP * C;
    float *wte_r = wtt + C, *wpe_r = wte_r + V * C, *wtt_r = wpe_r + MAXP * C;
    for (int i = 0; i < (V + MAXP + 1) * C; i++) tab[i] = tab[(V + MAXP + 1) * C + i] = frand();
    bert_order_by_id(by_id, keys, ids, N);
    int sorted = 1;
    for (int k = 1; k < N; k++)
        sorted &= ids[by_id[k - 1]] < ids[by_id[k]] ||
                  (ids[by_id[k - 1]] == ids[by_id[k]] && by_id[k - 1] < by_id[k]);
    CHECK(sorted, "bert_order_by_id: ids ascending, ties by index");
    bert_embed_backward(wte, wpe, wtt, d, &ck, ids, by_id, C, 2);
    bert_embed_backward_ref(wte_r, wpe_r, wtt_r, d, &ck, ids, C);
    report("word embedding gradient", max_rel_err(wte, wte_r, V * C), 1e-6);
    report("position embedding gradient", max_rel_err(wpe, wpe_r, MAXP * C), 1e-6);
    report("token type embedding gradient", max_rel_err(wtt, wtt_r, C), 1e-6);
    free(tab);
    free(d), free(x), free(dx), free(dx_r);
}

/* ------------------------------------------------------------------------------------------ */
/* vector exp / erf / GELU against libm */

static void test_math(void) {
    double ex = 0, er = 0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.0f + 175.0f * (float)i / 400000.0f;
        double ref = exp((double)x);
        ex = fmax(ex, fabs(bert_exp(x) - ref) / ref);
        float y = -6.0f + 12.0f * (float)i / 400000.0f;
        er = fmax(er, fabs(bert_erf(y) - erf((double)y)));
    }
    printf("vector math against double-precision libm:\n");
    report("bert_exp on [-87, 88] (relative)", ex, 3e-7);
    report("bert_erf on [-6, 6] (absolute)", er, 1.2e-7);
    CHECK(bert_exp(-100.0f) == 0.0f && bert_exp(-1e30f) == 0.0f, "exp underflows to 0");
    CHECK(bert_erf(50.0f) == 1.0f && bert_erf(-50.0f) == -1.0f, "erf saturates");

    enum { N = 1003 }; /* not a multiple of 8: the scalar tail runs too */
    float x[N], d[N], a[N], b[N];
    for (int i = 0; i < N; i++) x[i] = 8.0f * frand() * (i % 3 ? 1.0f : 0.1f), d[i] = frand();
    x[0] = 0.0f, x[1] = -30.0f, x[2] = 30.0f, x[N - 1] = -3.0f;
    bert_gelu_forward(a, x, N, 2);
    bert_gelu_forward_ref(b, x, N);
    report("GELU forward vs libm reference", max_rel_err(a, b, N), 1e-6);
    bert_gelu_backward(a, x, d, N, 2);
    bert_gelu_backward_ref(b, x, d, N);
    report("GELU backward vs libm reference", max_rel_err(a, b, N), 1e-6);
}

/* The bf16 GELU kernels (--precision bf16) against the float kernel then rounding (bit for
 * bit) and against their references (the rounding of libm's GELU: within one bf16 step). */
static void test_gelu_bf16(void) {
    enum { N = 2 * 1024 + 1003 }; /* three blocks, the last with a scalar tail */
    static float x[N], d[N], a[N], b[N], xw[N];
    static uint16_t g16[N], x16[N], want16[N], r16[N], rx16[N];
    uint64_t saved = g_lcg; /* the later tests' random values stay as they were */
    for (int i = 0; i < N; i++) x[i] = 8.0f * frand() * (i % 3 ? 1.0f : 0.1f), d[i] = frand();
    x[0] = 0.0f, x[1] = -30.0f, x[2] = 30.0f, x[N - 1] = -3.0f;
    bert_gelu_forward_bf16(g16, x16, x, N, 2);
    bert_gelu_forward(a, x, N, 2);
    gc_bf16_from_f32_ref(want16, a, N);
    CHECK(memcmp(g16, want16, sizeof g16) == 0, "bf16 GELU: the float GELU's rounding");
    gc_bf16_from_f32_ref(want16, x, N);
    CHECK(memcmp(x16, want16, sizeof x16) == 0, "bf16 GELU: the input's rounding");
    memset(g16, 0, sizeof g16);
    bert_gelu_forward_bf16(g16, NULL, x, N, 1);
    gc_bf16_from_f32_ref(want16, a, N);
    CHECK(memcmp(g16, want16, sizeof g16) == 0, "bf16 GELU without the input, one thread");
    bert_gelu_forward_bf16_ref(r16, rx16, x, N);
    gc_bf16_to_f32(a, g16, N);
    gc_bf16_to_f32(b, r16, N);
    int steps = 0, far = 0;
    for (int i = 0; i < N; i++) {
        /* one bf16 step is at most 2^-7 of the value; the float GELU's own error (1e-6 of
         * the largest value, see test_math) can flip the rounding of values near 0 */
        double diff = fabs((double)a[i] - b[i]), big = fmax(fabs(a[i]), fabs(b[i]));
        steps += diff != 0, far += diff > 0x1p-7 * big + 1e-6;
    }
    printf("  bf16 GELU forward vs reference: %d of %d roundings differ, %d by more than a step\n",
           steps, N, far);
    CHECK(far == 0, "bf16 GELU forward: %d values more than one bf16 step off", far);
    CHECK(memcmp(rx16, x16, sizeof x16) == 0, "bf16 GELU reference: the input's rounding");

    gc_bf16_to_f32(xw, x16, N);
    bert_gelu_backward_bf16(a, x16, d, N, 2);
    bert_gelu_backward(b, xw, d, N, 2);
    CHECK(memcmp(a, b, sizeof a) == 0, "bf16 GELU backward: the float kernel at the bf16 inputs");
    bert_gelu_backward_bf16_ref(b, x16, d, N);
    report("bf16 GELU backward vs libm reference", max_rel_err(a, b, N), 1e-6);
    memcpy(b, d, sizeof b);
    bert_gelu_backward_bf16(b, x16, b, N, 2); /* in place */
    CHECK(memcmp(a, b, sizeof a) == 0, "bf16 GELU backward in place");
    g_lcg = saved;
}

/* ------------------------------------------------------------------------------------------ */
/* the parameter layout and the store */

/* The offset of the named tensor, or SIZE_MAX. */
static size_t tensor_offset(const gc_bert *m, const char *want) {
    for (int i = 0; i < gc_bert_num_tensors(m); i++) {
        const char *name;
        size_t off;
        if (gc_bert_tensor_info(m, i, &name, &off, NULL) == GC_OK && strcmp(name, want) == 0)
            return off;
    }
    return SIZE_MAX;
}

static void test_layout(void) {
    gc_bert_config cfg = {0};
    cfg.vocab_size = 37, cfg.hidden = 12, cfg.layers = 3, cfg.heads = 3, cfg.intermediate = 20;
    cfg.max_position = 17, cfg.type_vocab = 2, cfg.layer_norm_eps = 1e-12f;
    cfg.max_seq_length = 17;
    gc_bert *m = NULL;
    CHECK_OK(gc_bert_init_random(&m, &cfg, 3));
    if (!m) return;
    size_t V = 37, C = 12, L = 3, I = 20, P = 17, TV = 2;
    size_t n = gc_bert_num_params(m);
    CHECK(n == (V + P + TV + 2) * C + L * (4 * C * C + 9 * C + 2 * I * C + I),
          "parameter count %zu", n);
    int nt = gc_bert_num_tensors(m);
    CHECK(nt == 5 + 16 * (int)L, "%d tensors", nt);
    /* the tensors tile the flat buffer exactly once */
    unsigned char *hit = calloc(n, 1);
    int overlap = 0;
    size_t covered = 0;
    for (int i = 0; i < nt; i++) {
        size_t off = 0, cnt = 0;
        CHECK_OK(gc_bert_tensor_info(m, i, NULL, &off, &cnt));
        CHECK(off + cnt <= n, "tensor %d inside the buffer", i);
        for (size_t k = off; k < off + cnt && k < n; k++) overlap |= hit[k]++, covered++;
    }
    CHECK(!overlap && covered == n, "tensors tile the buffer (overlap %d, %zu of %zu)", overlap,
          covered, n);
    free(hit);
    /* names, order and the named pointers agree */
    const char *name;
    CHECK_OK(gc_bert_tensor_info(m, 5, &name, NULL, NULL));
    CHECK(strcmp(name, "encoder.layer.0.attention.self.query.weight") == 0, "tensor 5: %s", name);
    CHECK_OK(gc_bert_tensor_info(m, 7, &name, NULL, NULL));
    CHECK(strcmp(name, "encoder.layer.0.attention.self.key.weight") == 0, "tensor 7: %s", name);
    const bert_params *p = &m->w.p, *g = &m->w.g;
    const float *base = m->w.params;
    struct {
        const char *name;
        const float *at;
    } named[] = {
        {"embeddings.word_embeddings.weight", p->wte},
        {"embeddings.position_embeddings.weight", p->wpe},
        {"embeddings.token_type_embeddings.weight", p->wtt},
        {"embeddings.LayerNorm.bias", p->emb_lnb},
        {"encoder.layer.0.attention.self.query.weight", p->qkvw},
        {"encoder.layer.1.attention.self.value.weight", p->qkvw + (1 * 3 + 2) * C * C},
        {"encoder.layer.2.attention.self.key.bias", p->qkvb + 2 * 3 * C + C},
        {"encoder.layer.1.attention.output.dense.weight", p->attprojw + C * C},
        {"encoder.layer.2.attention.output.LayerNorm.weight", p->ln1w + 2 * C},
        {"encoder.layer.1.intermediate.dense.weight", p->fcw + I * C},
        {"encoder.layer.2.intermediate.dense.bias", p->fcb + 2 * I},
        {"encoder.layer.1.output.dense.weight", p->fcprojw + C * I},
        {"encoder.layer.2.output.LayerNorm.bias", p->ln2b + 2 * C},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        CHECK(tensor_offset(m, named[i].name) == (size_t)(named[i].at - base), "%s", named[i].name);
    CHECK(g->ln2b - m->w.grads == p->ln2b - base && g->qkvw - m->w.grads == p->qkvw - base,
          "gradient pointers mirror the parameter pointers");
    CHECK(p->ln2b + L * C == base + n, "the last field ends the buffer");

    /* the store: the same tensors, zero_grad zeroes, reads and writes reach the buffers */
    gc_param_store s = gc_bert_store(m);
    CHECK(s.ops && s.ops->num_params(s.ctx) == n && s.ops->num_tensors(s.ctx) == nt, "store size");
    for (int i = 0; i < nt; i++) {
        gc_tensor_view t;
        size_t off = 0, cnt = 0;
        CHECK_OK(s.ops->tensor(s.ctx, i, &t));
        CHECK_OK(gc_bert_tensor_info(m, i, &name, &off, &cnt));
        CHECK(strcmp(t.name, name) == 0 && t.offset == off && t.count == cnt, "store tensor %d", i);
    }
    float *gr = gc_bert_grads(m);
    for (size_t k = 0; k < n; k++) gr[k] = 1.0f;
    CHECK_OK(s.ops->zero_grad(s.ctx));
    double sq = -1;
    CHECK_OK(s.ops->grad_sq_norm(s.ctx, &sq));
    CHECK(sq == 0.0, "zero_grad zeroes the gradients (%g)", sq);
    gc_encoder enc = gc_bert_encoder(m);
    float one = 2.5f, back = 0;
    CHECK_OK(gc_encoder_store(&enc).ops->write(s.ctx, GC_PART_GRADS, n - 1, 1, &one));
    CHECK(gr[n - 1] == 2.5f, "a store write reaches the gradient buffer");
    CHECK_OK(s.ops->read(s.ctx, GC_PART_PARAMS, 5, 1, &back));
    CHECK(back == gc_bert_params(m)[5], "a store read reaches the parameter buffer");
    CHECK_OK(gc_encoder_zero_grad(&enc));
    CHECK(gr[n - 1] == 0.0f, "gc_encoder_zero_grad zeroes through the store");
    gc_bert_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* the fixture model against PyTorch */

static gc_encode_args args_for(const side_in *s, int side, int first, int count, int train,
                               int slot, uint32_t step) {
    gc_encode_args a = {&s->tb, side, first, count, train, slot, 1234, step};
    return a;
}

static void test_fixture(void) {
    fx_file fx;
    if (fx_load(&fx, TINY_REF) != 0) {
        CHECK(0, "cannot read %s", TINY_REF);
        return;
    }
    gc_bert *m = NULL;
    CHECK_OK(gc_bert_load(&m, TINY_DIR));
    if (!m) {
        fx_free(&fx);
        return;
    }
    const gc_bert_config *c = gc_bert_get_config(m);
    CHECK(c->hidden == 32 && c->layers == 2 && c->heads == 4 && c->intermediate == 64 &&
              c->vocab_size == 100 && c->max_position == 64,
          "tiny config read wrong");
    CHECK(c->pooling == GC_POOL_MEAN && c->normalize == 1, "pooling %d normalize %d",
          (int)c->pooling, c->normalize);
    CHECK(c->max_seq_length == 64, "max_seq_length %d", c->max_seq_length);
    CHECK(c->hidden_dropout > 0.09f && c->attn_dropout > 0.09f, "dropout read from config");
    CHECK(m->w.pooler != NULL, "the pooler is kept for saving");

    side_in q, p;
    if (side_load(&q, &fx, "q") || side_load(&p, &fx, "p")) {
        CHECK(0, "fixture inputs missing");
        gc_bert_free(m);
        fx_free(&fx);
        return;
    }
    int B = q.tb.n, C = c->hidden, L = c->layers;
    CHECK(B == 8 && p.tb.n == 8, "batch sizes %d %d", B, p.tb.n);
    CHECK_OK(gc_bert_reserve(m, 8, 64, 2));
    gc_encoder enc = gc_bert_encoder(m);
    CHECK(enc.ops->dim(enc.ctx) == 32, "dim");
    CHECK(gc_encoder_num_params(&enc) == gc_bert_num_params(m), "num_params");
    gc_param_store ps = gc_encoder_store(&enc);
    CHECK(ps.ctx == gc_bert_store(m).ctx && ps.ops->location(ps.ctx) == GC_MEM_HOST &&
              ps.ops->grad_buffer(ps.ctx) == gc_bert_grads(m) &&
              ps.ops->num_tensors(ps.ctx) == gc_bert_num_tensors(m),
          "the encoder's store is the model's host store");
    gc_bert_set_dropout(m, 0.0f); /* the fixture ran in train mode with dropout 0 */

    float qr[8 * 32], pr[8 * 32], tmp[8 * 32], norm[8];
    gc_encode_args aq = args_for(&q, 0, 0, B, 1, 0, 5), ap = args_for(&p, 1, 0, B, 1, 1, 5);
    CHECK_OK(enc.ops->forward(enc.ctx, &aq, qr));
    CHECK_OK(enc.ops->forward(enc.ctx, &ap, pr));
    printf("fixture forward (vs PyTorch float64):\n");
    const side_in *sides[2] = {&q, &p};
    const char *names[2] = {"q", "p"};
    for (int s = 0; s < 2; s++) {
        bert_slot *sl = &m->rt.slots[s];
        const float *h = sl->resid + (size_t)L * m->rt.max_tokens * C;
        char key[32], what[80];
        size_t n = 0;
        snprintf(key, sizeof key, "%s_hidden", names[s]);
        const float *ref = fx_f32(&fx, key, &n);
        CHECK(ref && n == (size_t)sl->ck.N * C, "%s size", key);
        if (ref && n == (size_t)sl->ck.N * C) {
            snprintf(what, sizeof what, "%s last hidden states", names[s]);
            report(what, max_rel_err(h, ref, n), TOL);
        }
        static const struct {
            const char *suffix;
            gc_pooling pool;
        } pools[3] = {{"mean", GC_POOL_MEAN}, {"cls", GC_POOL_CLS}, {"max", GC_POOL_MAX}};
        for (int k = 0; k < 3; k++) {
            snprintf(key, sizeof key, "%s_%s", names[s], pools[k].suffix);
            ref = fx_f32(&fx, key, &n);
            bert_pool_forward(tmp, norm, h, &sl->ck, C, pools[k].pool, 0, 1);
            if (ref && n == (size_t)B * C) {
                snprintf(what, sizeof what, "%s %s pooling", names[s], pools[k].suffix);
                report(what, max_rel_err(tmp, ref, n), TOL);
            } else {
                CHECK(0, "%s missing", key);
            }
        }
        snprintf(key, sizeof key, "%s_reps", names[s]);
        ref = fx_f32(&fx, key, &n);
        if (ref && n == (size_t)B * C) {
            snprintf(what, sizeof what, "%s normalized embeddings", names[s]);
            report(what, max_rel_err(s ? pr : qr, ref, n), TOL);
        } else {
            CHECK(0, "%s missing", key);
        }
    }
    (void)sides;

    /* the loss and its gradient, through the library's InfoNCE */
    gc_loss_config lc = {0.05f, 0, 0, 0};
    gc_loss_out lo;
    float dq[8 * 32], dp[8 * 32];
    CHECK_OK(gc_infonce(qr, pr, B, B, C, &lc, &lo, dq, dp, NULL));
    const float *ref_loss = fx_f32(&fx, "loss", NULL);
    const float *ref_dq = fx_f32(&fx, "q_dreps", NULL), *ref_dp = fx_f32(&fx, "p_dreps", NULL);
    if (ref_loss && ref_dq && ref_dp) {
        float l32 = (float)lo.loss;
        printf("  loss: ours %.7f, PyTorch %.7f\n", lo.loss, (double)ref_loss[0]);
        report("InfoNCE loss", max_rel_err(&l32, ref_loss, 1), TOL);
        report("d loss / d query embeddings", max_rel_err(dq, ref_dq, (size_t)B * C), TOL);
        report("d loss / d passage embeddings", max_rel_err(dp, ref_dp, (size_t)B * C), TOL);

        /* every parameter gradient, from PyTorch's embedding gradients */
        CHECK_OK(gc_encoder_zero_grad(&enc));
        CHECK_OK(enc.ops->backward(enc.ctx, &aq, ref_dq));
        CHECK_OK(enc.ops->backward(enc.ctx, &ap, ref_dp));
        printf("fixture parameter gradients (vs PyTorch float64):\n");
        int matched = fx_check_grads(&fx, m, TOL);
        CHECK(matched == 5 + 16 * L, "%d gradient tensors compared", matched);
    } else {
        CHECK(0, "fixture loss tensors missing");
    }

    /* encode gives what forward gives */
    float er[8 * 32];
    gc_encode_args ae = args_for(&p, 1, 0, B, 1, 0, 5);
    CHECK_OK(enc.ops->encode(enc.ctx, &ae, er));
    report("encode vs forward", max_rel_err(er, pr, (size_t)B * C), 1e-6);
    /* encode borrowed slot 0: a backward of slot 0 must now be refused */
    CHECK(enc.ops->backward(enc.ctx, &aq, dq) == GC_ERR_INVALID_ARG, "stale slot refused");

    gc_bert_free(m);
    fx_free(&fx);
}

/* ------------------------------------------------------------------------------------------ */
/* chunking and dropout */

static void test_chunking(void) {
    fx_file fx;
    gc_bert *m = NULL;
    if (fx_load(&fx, TINY_REF) != 0) return;
    CHECK_OK(gc_bert_load(&m, TINY_DIR));
    side_in p;
    if (!m || side_load(&p, &fx, "p")) {
        CHECK(0, "setup");
        gc_bert_free(m);
        fx_free(&fx);
        return;
    }
    int B = p.tb.n, C = 32;
    size_t np = gc_bert_num_params(m);
    gc_bert_set_dropout(m, 0.2f);
    CHECK_OK(gc_bert_reserve(m, 8, 64, 1));
    gc_encoder enc = gc_bert_encoder(m);
    float whole[8 * 32], parts[8 * 32], dr[8 * 32], evald[8 * 32], other[8 * 32];
    for (int i = 0; i < B * C; i++) dr[i] = frand();
    float *g_whole = malloc(sizeof(float) * np);

    gc_encode_args a = args_for(&p, 1, 0, B, 1, 0, 11);
    CHECK_OK(gc_encoder_zero_grad(&enc));
    CHECK_OK(enc.ops->forward(enc.ctx, &a, whole));
    CHECK_OK(enc.ops->backward(enc.ctx, &a, dr));
    memcpy(g_whole, gc_bert_grads(m), sizeof(float) * np);

    CHECK_OK(gc_encoder_zero_grad(&enc));
    for (int first = 0; first < B; first += 2) {
        gc_encode_args ac = args_for(&p, 1, first, 2, 1, 0, 11);
        CHECK_OK(enc.ops->forward(enc.ctx, &ac, parts + first * C));
        CHECK_OK(enc.ops->backward(enc.ctx, &ac, dr + first * C));
    }
    printf("chunking with dropout 0.2 (one chunk of 8 vs chunks of 2):\n");
    report("embeddings", max_rel_err(parts, whole, (size_t)B * C), 1e-5);
    report("parameter gradients", max_rel_err(gc_bert_grads(m), g_whole, np), 1e-5);

    /* chunks encoded in a different order give the same embeddings */
    for (int first = B - 1; first >= 0; first--) {
        gc_encode_args ac = args_for(&p, 1, first, 1, 1, 0, 11);
        CHECK_OK(enc.ops->encode(enc.ctx, &ac, parts + first * C));
    }
    report("embeddings, one at a time in reverse", max_rel_err(parts, whole, (size_t)B * C), 1e-5);

    /* dropout is on in training, off in evaluation, and follows the step */
    a.train = 0;
    CHECK_OK(enc.ops->encode(enc.ctx, &a, evald));
    CHECK(max_rel_err(evald, whole, (size_t)B * C) > 1e-3, "dropout changes training outputs");
    a.train = 1, a.step = 12;
    CHECK_OK(enc.ops->encode(enc.ctx, &a, other));
    CHECK(max_rel_err(other, whole, (size_t)B * C) > 1e-3, "the step changes the masks");

    free(g_whole);
    gc_bert_free(m);
    fx_free(&fx);
}

/* ------------------------------------------------------------------------------------------ */
/* the inference reservation */

static void test_inference(void) {
    fx_file fx;
    gc_bert *m = NULL;
    if (fx_load(&fx, TINY_REF) != 0) return;
    CHECK_OK(gc_bert_load(&m, TINY_DIR));
    side_in p;
    if (!m || side_load(&p, &fx, "p")) {
        CHECK(0, "setup");
        gc_bert_free(m);
        fx_free(&fx);
        return;
    }
    int B = p.tb.n, C = 32;
    gc_bert_set_dropout(m, 0.2f);
    gc_encoder enc = gc_bert_encoder(m);
    float fwd[8 * 32], enc_train[2][8 * 32], enc_eval[2][8 * 32], dr[8 * 32] = {0};
    gc_encode_args a = args_for(&p, 1, 0, B, 1, 0, 4);
    CHECK_OK(gc_bert_reserve(m, 8, 64, 1));
    CHECK_OK(enc.ops->forward(enc.ctx, &a, fwd));
    for (int r = 0; r < 2; r++) {
        if (r == 1) CHECK_OK(gc_bert_reserve_inference(m, 8, 64));
        a.train = 1;
        CHECK_OK(enc.ops->encode(enc.ctx, &a, enc_train[r]));
        a.train = 0;
        CHECK_OK(enc.ops->encode(enc.ctx, &a, enc_eval[r]));
    }
    printf("inference reservation (dropout 0.2):\n");
    report("encode (train) vs forward", max_rel_err(enc_train[0], fwd, (size_t)B * C), 1e-6);
    report("encode (train), inference vs training buffers",
           max_rel_err(enc_train[1], enc_train[0], (size_t)B * C), 0.0);
    report("encode (eval), inference vs training buffers",
           max_rel_err(enc_eval[1], enc_eval[0], (size_t)B * C), 0.0);
    CHECK(max_rel_err(enc_eval[1], enc_train[1], (size_t)B * C) > 1e-3, "dropout is on in train");
    /* nothing kept: forward and backward are refused, a chunk too big too */
    a.train = 1;
    CHECK(enc.ops->forward(enc.ctx, &a, fwd) == GC_ERR_INVALID_ARG, "forward refused");
    CHECK(strstr(gc_last_error(), "reserve_inference") != NULL, "message: %s", gc_last_error());
    CHECK(enc.ops->backward(enc.ctx, &a, dr) == GC_ERR_INVALID_ARG, "backward refused");
    CHECK_OK(gc_bert_reserve_inference(m, 4, 64));
    CHECK(enc.ops->encode(enc.ctx, &a, fwd) == GC_ERR_INVALID_ARG, "8 > max_chunk 4 refused");
    CHECK(gc_bert_reserve_inference(m, 0, 64) == GC_ERR_INVALID_ARG, "zero chunk");
    CHECK(gc_bert_reserve_inference(m, 1, 65) == GC_ERR_INVALID_ARG, "max_len over positions");
    CHECK(gc_bert_reserve_inference(NULL, 1, 8) == GC_ERR_INVALID_ARG, "NULL model");
    /* a training reservation after it works again */
    CHECK_OK(gc_bert_reserve(m, 8, 64, 1));
    CHECK_OK(enc.ops->forward(enc.ctx, &a, fwd));
    CHECK_OK(enc.ops->backward(enc.ctx, &a, dr));
    report("forward after the inference reservation", max_rel_err(fwd, enc_train[0], (size_t)B * C),
           1e-6);
    gc_bert_free(m);
    fx_free(&fx);
}

/* ------------------------------------------------------------------------------------------ */
/* finite differences of the whole model */

static double weighted_loss(gc_encoder *enc, const gc_encode_args *a, const float *w, int n) {
    float reps[4 * 16];
    if (enc->ops->encode(enc->ctx, a, reps) != GC_OK) return NAN;
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)reps[i] * w[i];
    return s;
}

static void test_finite_differences(void) {
    gc_bert_config cfg = {0};
    cfg.vocab_size = 40, cfg.hidden = 16, cfg.layers = 2, cfg.heads = 2, cfg.intermediate = 24;
    cfg.max_position = 20, cfg.type_vocab = 2, cfg.layer_norm_eps = 1e-5f;
    cfg.hidden_dropout = 0.1f, cfg.attn_dropout = 0.1f, cfg.pad_id = 0;
    cfg.max_seq_length = 20;
    int32_t ids[] = {2, 7, 9, 11, 3, 2, 5, 3, 2, 30, 31, 32, 33, 34, 35, 3, 2, 8, 9, 3};
    int64_t offs[] = {0, 5, 8, 16, 20};
    gc_token_batch tb = {4, ids, offs};
    static const char *pool_names[3] = {"mean", "cls", "max"};
    printf("finite differences (dropout 0.1, train):\n");
    for (int pool = 0; pool < 3; pool++) {
        cfg.pooling = (gc_pooling)pool;
        cfg.normalize = pool == 0;
        gc_bert *m = NULL;
        CHECK_OK(gc_bert_init_random(&m, &cfg, 77 + pool));
        if (!m) return;
        /* larger weights than the init so every path carries signal */
        size_t np = gc_bert_num_params(m);
        float *par = gc_bert_params(m);
        for (size_t i = 0; i < np; i++) par[i] += 0.15f * frand();
        CHECK_OK(gc_bert_reserve(m, 4, 8, 1));
        gc_encoder enc = gc_bert_encoder(m);
        gc_encode_args a = {&tb, 0, 0, 4, 1, 0, 5, 2};
        float w[4 * 16], reps[4 * 16];
        for (int i = 0; i < 4 * 16; i++) w[i] = frand();
        CHECK_OK(gc_encoder_zero_grad(&enc));
        CHECK_OK(enc.ops->forward(enc.ctx, &a, reps));
        CHECK_OK(enc.ops->backward(enc.ctx, &a, w));
        const float *g = gc_bert_grads(m);
        float *dir = malloc(sizeof(float) * np), *saved = malloc(sizeof(float) * np);
        memcpy(saved, par, sizeof(float) * np);
        double worst = 0;
        for (int trial = 0; trial < 3; trial++) {
            double nn = 0, an = 0;
            for (size_t i = 0; i < np; i++) dir[i] = frand(), nn += (double)dir[i] * dir[i];
            nn = sqrt(nn);
            for (size_t i = 0; i < np; i++) dir[i] /= (float)nn, an += (double)g[i] * dir[i];
            /* big enough to rise above float noise in the loss, small enough that max
             * pooling's argmax seldom changes between the two points */
            const double eps = pool == GC_POOL_MAX ? 1e-2 : 5e-2;
            for (size_t i = 0; i < np; i++) par[i] = saved[i] + (float)eps * dir[i];
            double lp = weighted_loss(&enc, &a, w, 4 * 16);
            for (size_t i = 0; i < np; i++) par[i] = saved[i] - (float)eps * dir[i];
            double lm = weighted_loss(&enc, &a, w, 4 * 16);
            memcpy(par, saved, sizeof(float) * np);
            double fd = (lp - lm) / (2 * eps);
            double err = fabs(fd - an) / fmax(fabs(an), 5e-2);
            if (err > worst || err != err) worst = err;
        }
        char what[64];
        snprintf(what, sizeof what, "directional derivatives, %s pooling", pool_names[pool]);
        report(what, worst, 5e-3);
        free(dir);
        free(saved);
        gc_bert_free(m);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* saving, loading, random init */

static char g_tmp[512];

static void test_save_load(void) {
    gc_bert *m = NULL, *m2 = NULL;
    CHECK_OK(gc_bert_load(&m, TINY_DIR));
    if (!m) return;
    char out[600];
    snprintf(out, sizeof out, "%s/saved", g_tmp);
    CHECK_OK(gc_bert_save(m, out, TINY_DIR));
    CHECK_OK(gc_bert_load(&m2, out));
    if (m2) {
        CHECK(gc_bert_num_params(m2) == gc_bert_num_params(m), "same size");
        CHECK(memcmp(gc_bert_params(m), gc_bert_params(m2),
                     sizeof(float) * gc_bert_num_params(m)) == 0,
              "parameters round trip exactly");
        const gc_bert_config *a = gc_bert_get_config(m), *b = gc_bert_get_config(m2);
        CHECK(a->pooling == b->pooling && a->normalize == b->normalize &&
                  a->max_seq_length == b->max_seq_length &&
                  a->layer_norm_eps == b->layer_norm_eps &&
                  a->hidden_dropout == b->hidden_dropout && a->vocab_size == b->vocab_size,
              "config round trips");
        CHECK(m2->w.pooler &&
                  memcmp(m->w.pooler, m2->w.pooler, sizeof(float) * (32 * 32 + 32)) == 0,
              "pooler round trips");
    }
    char path[700];
    snprintf(path, sizeof path, "%s/tokenizer.json", out);
    struct stat sb;
    CHECK(stat(path, &sb) == 0, "tokenizer copied");
    gc_bert_free(m2);
    m2 = NULL;

    /* random init: deterministic, LayerNorm at one, biases zero, weights with std 0.02 */
    gc_bert_config cfg = *gc_bert_get_config(m);
    cfg.pooling = GC_POOL_CLS, cfg.normalize = 0;
    gc_bert *r1 = NULL, *r2 = NULL;
    CHECK_OK(gc_bert_init_random(&r1, &cfg, 5));
    CHECK_OK(gc_bert_init_random(&r2, &cfg, 5));
    if (r1 && r2) {
        size_t np = gc_bert_num_params(r1);
        CHECK(memcmp(gc_bert_params(r1), gc_bert_params(r2), np * 4) == 0, "same seed, same init");
        double ss = 0;
        size_t cnt = r1->w.cfg.hidden * (size_t)r1->w.cfg.hidden * 3;
        for (size_t i = 0; i < cnt; i++) ss += (double)r1->w.p.qkvw[i] * r1->w.p.qkvw[i];
        double sd = sqrt(ss / cnt);
        CHECK(fabs(sd - 0.02) < 0.002, "init std %.4f", sd);
        CHECK(r1->w.p.ln1w[0] == 1.0f && r1->w.p.ln1b[0] == 0.0f && r1->w.p.qkvb[3] == 0.0f,
              "LayerNorm and bias init");
        snprintf(out, sizeof out, "%s/random", g_tmp);
        CHECK_OK(gc_bert_save(r1, out, NULL));
        CHECK_OK(gc_bert_load(&m2, out));
        if (m2) {
            CHECK(memcmp(gc_bert_params(m2), gc_bert_params(r1), np * 4) == 0,
                  "random model round trips");
            CHECK(m2->w.cfg.pooling == GC_POOL_CLS && m2->w.cfg.normalize == 0,
                  "cls, no normalize");
        }
    }
    gc_bert_free(r1);
    gc_bert_free(r2);

    /* float16 weights under "bert." names, extra tensors ignored: the same model to f16
     * rounding, plain folder defaults */
    gc_bert *h = NULL;
    CHECK_OK(gc_bert_load(&h, GC_SOURCE_DIR "/tests/fixtures/bert/tiny_f16"));
    if (h) {
        size_t np = gc_bert_num_params(h);
        report("float16 \"bert.\" checkpoint vs float32 weights",
               norm_rel_err(gc_bert_params(h), gc_bert_params(m), np), 1e-3);
        CHECK(h->w.cfg.pooling == GC_POOL_MEAN && h->w.cfg.normalize == 0 && h->w.pooler != NULL,
              "plain folder: mean pooling, no normalize, pooler kept");
        gc_bert_free(h);
    }
    gc_bert_free(m2);
    gc_bert_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* hostile folders and bad arguments */

static void put(const char *dir, const char *name, const char *text) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(gc_write_file_atomic(path, text, strlen(text)));
}

static void copy_in(const char *dir, const char *name) {
    char src[800], dst[800];
    char *data = NULL;
    size_t len = 0;
    snprintf(src, sizeof src, "%s/%s", TINY_DIR, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    CHECK_OK(gc_read_file(src, &data, &len));
    if (data) CHECK_OK(gc_write_file_atomic(dst, data, len));
    free(data);
}

static const char *k_config =
    "{\"vocab_size\": 100, \"hidden_size\": 32, \"num_hidden_layers\": 2, "
    "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"max_position_embeddings\": 64, "
    "\"hidden_act\": \"gelu\", %s}";

static void expect(gc_status want, const char *dir, const char *case_name, const char *needle) {
    gc_bert *m = NULL;
    gc_status st = gc_bert_load(&m, dir);
    CHECK(st == want, "%s: got %s (%s), want %s", case_name, gc_status_str(st), gc_last_error(),
          gc_status_str(want));
    CHECK(m == NULL || st == GC_OK, "%s: no model on failure", case_name);
    if (st != GC_OK && needle)
        CHECK(strstr(gc_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", case_name,
              gc_last_error(), needle);
    printf("  %-40s -> %s: %s\n", case_name, gc_status_str(st), st ? gc_last_error() : "");
    gc_bert_free(m);
}

static void config_case(const char *dir, const char *extra, gc_status want, const char *name,
                        const char *needle) {
    char text[1024];
    snprintf(text, sizeof text, k_config, extra);
    put(dir, "config.json", text);
    expect(want, dir, name, needle);
}

static void test_hostile(void) {
    char dir[600], sub[700];
    snprintf(dir, sizeof dir, "%s/hostile", g_tmp);
    CHECK_OK(gc_mkdirs(dir));
    gc_bert_config cfg;
    CHECK_OK(gc_bert_config_from_json(&cfg, TINY_DIR "/config.json"));
    CHECK(cfg.hidden == 32 && cfg.pooling == GC_POOL_MEAN && cfg.normalize == 0 &&
              cfg.max_seq_length == 64 && cfg.type_vocab == 2 && cfg.pad_id == 0 &&
              cfg.layer_norm_eps == 1e-12f,
          "config.json alone: sentence-transformers fields get defaults");
    CHECK(gc_bert_config_from_json(NULL, TINY_DIR "/config.json") == GC_ERR_INVALID_ARG, "NULL");
    printf("hostile model folders:\n");
    char missing[700];
    snprintf(missing, sizeof missing, "%s/nope", g_tmp);
    expect(GC_ERR_IO, missing, "missing folder", "no such folder");
    expect(GC_ERR_IO, dir, "empty folder", "config.json");

    /* a plain Hugging Face folder: config + weights, mean pooling, no normalize */
    copy_in(dir, "model.safetensors");
    config_case(dir, "\"layer_norm_eps\": 1e-12", GC_OK, "plain HF folder", NULL);
    gc_bert *m = NULL;
    if (gc_bert_load(&m, dir) == GC_OK) {
        CHECK(m->w.cfg.pooling == GC_POOL_MEAN && m->w.cfg.normalize == 0 &&
                  m->w.cfg.max_seq_length == 64,
              "plain folder defaults");
        gc_bert_free(m);
    }
    config_case(dir, "\"position_embedding_type\": \"relative_key\"", GC_ERR_UNSUPPORTED,
                "relative positions", "position_embedding_type");
    put(dir, "config.json",
        "{\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 32, "
        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 64, "
        "\"max_position_embeddings\": 64, \"hidden_act\": \"relu\"}");
    expect(GC_ERR_UNSUPPORTED, dir, "relu activation", "hidden_act");
    config_case(dir, "\"model_type\": \"roberta\"", GC_ERR_UNSUPPORTED, "roberta", "model_type");
    config_case(dir, "\"type_vocab_size\": \"two\"", GC_ERR_FORMAT, "string where int",
                "type_vocab_size");
    config_case(dir, "\"type_vocab_size\": -3", GC_ERR_UNSUPPORTED, "negative size",
                "type_vocab_size");
    config_case(dir, "\"type_vocab_size\": 99999999999999", GC_ERR_FORMAT, "huge int",
                "type_vocab_size");
    put(dir, "config.json",
        "{\"vocab_size\": 100, \"hidden_size\": 30, \"num_hidden_layers\": 2, "
        "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"max_position_embeddings\": "
        "64}");
    expect(GC_ERR_UNSUPPORTED, dir, "hidden not a multiple of heads", "multiple");
    put(dir, "config.json", "{\"vocab_size\": 100, \"hidden_size\": 32}");
    expect(GC_ERR_FORMAT, dir, "missing key", "num_hidden_layers");
    put(dir, "config.json", "{\"vocab_size\": 100, \"hidden_size\": ");
    expect(GC_ERR_FORMAT, dir, "truncated JSON", "config.json");
    put(dir, "config.json", "[1, 2]");
    expect(GC_ERR_FORMAT, dir, "JSON array", "object");
    put(dir, "config.json", "");
    expect(GC_ERR_FORMAT, dir, "empty config", "config.json");
    config_case(dir, "\"layer_norm_eps\": 1e-12, \"type_vocab_size\": 3", GC_ERR_FORMAT,
                "shape mismatch", "token_type_embeddings");
    put(dir, "config.json",
        "{\"vocab_size\": 100, \"hidden_size\": 32, \"num_hidden_layers\": 3, "
        "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"max_position_embeddings\": "
        "64}");
    expect(GC_ERR_FORMAT, dir, "missing layer tensor", "encoder.layer.2");
    config_case(dir, "\"layer_norm_eps\": 1e-12", GC_OK, "restored", NULL);
    snprintf(sub, sizeof sub, "%s/model.safetensors", dir);
    CHECK_OK(gc_write_file_atomic(sub, "\x10\0\0\0\0\0\0\0{\"a\":", 13));
    expect(GC_ERR_FORMAT, dir, "corrupt safetensors", NULL);
    snprintf(sub, sizeof sub, "%s/model.safetensors", dir);
    unlink(sub);
    expect(GC_ERR_IO, dir, "missing weights", "model.safetensors");
    copy_in(dir, "model.safetensors");

    /* sentence-transformers modules */
    snprintf(sub, sizeof sub, "%s/1_Pooling", dir);
    CHECK_OK(gc_mkdirs(sub));
    const char *mods_ok =
        "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models."
        "Transformer\"},{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":"
        "\"sentence_transformers.models.Pooling\"}]";
    put(dir, "modules.json", mods_ok);
    expect(GC_ERR_IO, dir, "pooling config missing", "1_Pooling");
    put(sub, "config.json", "{\"word_embedding_dimension\": 32, \"pooling_mode_cls_token\": true}");
    expect(GC_OK, dir, "legacy cls pooling", NULL);
    if (gc_bert_load(&m, dir) == GC_OK) {
        CHECK(m->w.cfg.pooling == GC_POOL_CLS && m->w.cfg.normalize == 0, "cls, no normalize");
        gc_bert_free(m);
    }
    put(sub, "config.json", "{\"embedding_dimension\": 32, \"pooling_mode\": [\"max\"]}");
    expect(GC_OK, dir, "new-style max pooling", NULL);
    put(sub, "config.json", "{\"embedding_dimension\": 32, \"pooling_mode\": \"weightedmean\"}");
    expect(GC_ERR_UNSUPPORTED, dir, "weighted mean pooling", "weightedmean");
    put(sub, "config.json", "{\"embedding_dimension\": 32, \"pooling_mode\": [\"cls\", \"max\"]}");
    expect(GC_ERR_UNSUPPORTED, dir, "two pooling modes", "pooling_mode");
    put(sub, "config.json",
        "{\"word_embedding_dimension\": 32, \"pooling_mode_cls_token\": true, "
        "\"pooling_mode_mean_tokens\": true}");
    expect(GC_ERR_UNSUPPORTED, dir, "two legacy pooling modes", "exactly one");
    put(sub, "config.json", "{\"embedding_dimension\": 16, \"pooling_mode\": \"mean\"}");
    expect(GC_ERR_FORMAT, dir, "pooling dimension mismatch", "embedding_dimension");
    put(sub, "config.json", "{\"pooling_mode\": 3}");
    expect(GC_ERR_UNSUPPORTED, dir, "pooling mode not a string", "pooling_mode");
    put(sub, "config.json", "{\"embedding_dimension\": 32, \"pooling_mode\": \"mean\"}");
    put(dir, "sentence_bert_config.json", "{\"max_seq_length\": 40}");
    expect(GC_OK, dir, "max_seq_length 40", NULL);
    if (gc_bert_load(&m, dir) == GC_OK) {
        CHECK(m->w.cfg.max_seq_length == 40, "max_seq_length %d", m->w.cfg.max_seq_length);
        gc_bert_free(m);
    }
    put(dir, "sentence_bert_config.json", "{\"max_seq_length\": 4000}");
    if (gc_bert_load(&m, dir) == GC_OK) {
        CHECK(m->w.cfg.max_seq_length == 64, "max_seq_length clamped to %d",
              m->w.cfg.max_seq_length);
        gc_bert_free(m);
    }
    put(dir, "sentence_bert_config.json", "{\"max_seq_length\": -1}");
    expect(GC_ERR_FORMAT, dir, "negative max_seq_length", "max_seq_length");
    put(dir, "sentence_bert_config.json", "{}");
    put(dir, "tokenizer_config.json", "{\"model_max_length\": 1000000000000000019884624838656}");
    if (gc_bert_load(&m, dir) == GC_OK) {
        CHECK(m->w.cfg.max_seq_length == 64, "unset model_max_length: %d", m->w.cfg.max_seq_length);
        gc_bert_free(m);
    } else {
        CHECK(0, "huge model_max_length refused: %s", gc_last_error());
    }
    put(dir, "modules.json",
        "[{\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},{\"path\":"
        "\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"},{\"path\":\"2_Dense\","
        "\"type\":\"sentence_transformers.models.Dense\"}]");
    expect(GC_ERR_UNSUPPORTED, dir, "Dense module", "Dense");
    put(dir, "modules.json",
        "[{\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"}]");
    expect(GC_ERR_UNSUPPORTED, dir, "no pooling module", "Pooling");
    put(dir, "modules.json", "[{\"path\":\"../..\",\"type\":\"x.Transformer\"}]");
    expect(GC_ERR_FORMAT, dir, "module path escapes", "leaves");
    put(dir, "modules.json", "[{\"path\": 5, \"type\": \"x.Transformer\"}]");
    expect(GC_ERR_FORMAT, dir, "module path not a string", "modules.json");
    put(dir, "modules.json", "{}");
    expect(GC_ERR_FORMAT, dir, "modules not an array", "array");
    put(dir, "modules.json", "[");
    expect(GC_ERR_FORMAT, dir, "modules truncated", "modules.json");
    /* Normalize listed but no 2_Normalize folder (git keeps no empty folders): normalize on */
    put(dir, "modules.json",
        "[{\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},{\"path\":"
        "\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"},{\"path\":"
        "\"2_Normalize\",\"type\":\"sentence_transformers.models.Normalize\"}]");
    expect(GC_OK, dir, "Normalize without its folder", NULL);
    if (gc_bert_load(&m, dir) == GC_OK) {
        CHECK(m->w.cfg.normalize == 1, "Normalize listed: normalize on");
        gc_bert_free(m);
    }
    put(dir, "modules.json", mods_ok);
    expect(GC_OK, dir, "restored", NULL);

    /* bad encoder arguments */
    CHECK_OK(gc_bert_load(&m, dir));
    if (!m) return;
    gc_encoder enc = gc_bert_encoder(m);
    int32_t ids[] = {2, 5, 6, 3, 2, 150, 3};
    int64_t offs[] = {0, 4, 7};
    gc_token_batch tb = {2, ids, offs};
    gc_encode_args a = {&tb, 0, 0, 1, 0, 0, 1, 0};
    float reps[2 * 32];
    CHECK(enc.ops->encode(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "no reserve: refused");
    CHECK(strstr(gc_last_error(), "gc_bert_reserve") != NULL, "message names reserve");
    CHECK_OK(gc_bert_reserve(m, 2, 8, 1));
    CHECK_OK(enc.ops->encode(enc.ctx, &a, reps));
    a.count = 2;
    CHECK(enc.ops->encode(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "token id 150 refused");
    CHECK(strstr(gc_last_error(), "150") != NULL, "message names the id");
    a.count = 3;
    CHECK(enc.ops->encode(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "range past the batch");
    int64_t long_offs[] = {0, 4, 7};
    long_offs[1] = 0;
    gc_token_batch empty = {2, ids, long_offs};
    a.inputs = &empty, a.count = 1;
    CHECK(enc.ops->encode(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "empty sequence refused");
    int32_t many[9] = {2, 5, 5, 5, 5, 5, 5, 5, 3};
    int64_t many_off[] = {0, 9};
    gc_token_batch toolong = {1, many, many_off};
    a.inputs = &toolong;
    CHECK(enc.ops->encode(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "longer than max_len");
    a.inputs = &tb, a.slot = 1;
    CHECK(enc.ops->forward(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "slot 1 not reserved");
    a.slot = 0;
    CHECK(enc.ops->backward(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "backward before forward");
    CHECK_OK(enc.ops->forward(enc.ctx, &a, reps));
    a.first = 1;
    CHECK(enc.ops->backward(enc.ctx, &a, reps) == GC_ERR_INVALID_ARG, "backward of another chunk");
    CHECK(gc_bert_reserve(m, 1, 65, 1) == GC_ERR_INVALID_ARG, "max_len over max_position");
    CHECK(gc_bert_reserve(m, 0, 8, 1) == GC_ERR_INVALID_ARG, "zero chunk");
    CHECK(gc_bert_reserve(m, 1, 8, 0) == GC_ERR_INVALID_ARG, "no slots");
    CHECK(gc_bert_reserve(m, 1, 8, GC_BERT_MAX_SLOTS + 1) == GC_ERR_INVALID_ARG, "too many slots");
    gc_bert_free(m);
    gc_bert_free(NULL);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_bert_tmp_%d", GC_BINARY_DIR, (int)getpid());
    CHECK_OK(gc_mkdirs(g_tmp));
    test_math();
    test_gelu_bf16();
    test_attention_kernel();
    test_param_sums();
    test_layout();
    test_fixture();
    test_chunking();
    test_inference();
    test_finite_differences();
    test_save_load();
    test_hostile();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    gc_matmul_cleanup();
    return test_summary("test_bert");
}

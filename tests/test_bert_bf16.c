/* test_bert_bf16.c: --precision bf16 on the tiny fixture model (dropout 0.1).
 *
 *  - the bf16 gradient of the fixture's batch against the fp32 gradient: within BF16_VS_FP32
 *    (norm-relative; the figure in README);
 *  - chunk invariance in bf16: on a batch of 32 random pairs, the gradient-cache step with
 *    chunks of 1, 3 and 16 against the whole batch in one pass (no cache), all bf16: within
 *    1e-5 norm-relative, and at least 10 times closer than bf16 is to fp32 on that batch (a
 *    rounding that depended on the chunk-mates would fail both);
 *  - the bf16 reservation is smaller than fp32's (the linear layers' inputs kept in bf16), and
 *    encode gives forward's bits in bf16;
 *  - the bf16 weight copy follows the fp32 weights after a store write and an optimizer step,
 *    and the precision cannot change once buffers are reserved. */
#include "gc_bert.h"
#include "models/bert_internal.h"

#include "bert_fixture.h"
#include "test_util.h"

#include <string.h>

#define TINY_DIR GC_SOURCE_DIR "/tests/fixtures/bert/tiny"
#define TINY_REF GC_SOURCE_DIR "/tests/fixtures/bert/tiny_ref.bin"
#define BF16_VS_FP32 2e-2 /* measured: see the printout and README */
#define NB 32

static gc_status step(gc_bert *m, int B, int chunk, int no_cache, const gc_token_batch *q,
                      const gc_token_batch *p, gc_step_stats *stats) {
    gc_encoder enc = gc_bert_encoder(m);
    gc_engine_config ec;
    memset(&ec, 0, sizeof ec);
    ec.max_batch = B;
    ec.max_len = 64;
    ec.query_chunk = chunk;
    ec.passage_chunk = chunk;
    ec.no_cache = no_cache;
    ec.loss.temperature = 0.05f;
    ec.seed = 99;
    gc_engine *e = NULL;
    gc_status st = gc_engine_create(&e, &ec, &enc, &enc, NULL);
    if (st != GC_OK) return st;
    st = gc_engine_step(e, q, p, B, 0, 5, stats);
    gc_engine_free(e);
    return st;
}

/* Whether the model's bf16 copy of qkvw equals the rounding of its fp32 weights. */
static int copy_current(gc_bert *m) {
    size_t n = (size_t)m->w.cfg.layers * 3 * m->w.cfg.hidden * m->w.cfg.hidden;
    uint16_t *want = malloc(n * sizeof(uint16_t));
    gc_bf16_from_f32_ref(want, m->w.p.qkvw, n);
    int same = memcmp(want, m->w.qkvw16, n * sizeof(uint16_t)) == 0;
    free(want);
    return same;
}

int main(void) {
    fx_file fx;
    if (fx_load(&fx, TINY_REF) != 0) {
        CHECK(0, "cannot read %s", TINY_REF);
        return test_summary("test_bert_bf16");
    }
    const char *isa = NULL;
    float c9[9] = {0};
    uint16_t one9[9] = {0};
    gc_matmul_bf16_native(&isa);
    if (gc_matmul_ex(c9, one9, one9, 3, 3, 3, 0, 0, 0, GC_MM_BF16) == GC_ERR_UNSUPPORTED) {
        /* below AVX-512 (the CPU or ONEDNN_MAX_CPU_ISA) oneDNN has no bf16 product at all */
        printf("oneDNN ISA %s: no bf16 products; skipped\n", isa);
        fx_free(&fx);
        return test_summary("test_bert_bf16");
    }
    gc_bert *m32 = NULL, *m16 = NULL;
    side_in q, p;
    CHECK_OK(gc_bert_load(&m32, TINY_DIR));
    CHECK_OK(gc_bert_load(&m16, TINY_DIR));
    if (!m32 || !m16 || side_load(&q, &fx, "q") || side_load(&p, &fx, "p")) {
        CHECK(0, "setup");
        return test_summary("test_bert_bf16");
    }
    CHECK_OK(gc_bert_set_precision(m16, GC_PRECISION_BF16));
    CHECK(gc_bert_get_precision(m16) == GC_PRECISION_BF16, "precision kept");
    gc_bert_set_dropout(m32, 0.1f);
    gc_bert_set_dropout(m16, 0.1f);
    size_t np = gc_bert_num_params(m32);
    float *g32 = malloc(np * sizeof(float)), *g16 = malloc(np * sizeof(float));
    gc_step_stats s32, s16, sc;

    /* the fixture's batch of 8: bf16 against fp32 */
    CHECK_OK(step(m32, 8, 8, 1, &q.tb, &p.tb, &s32));
    CHECK_OK(step(m16, 8, 8, 1, &q.tb, &p.tb, &s16));
    double d_fix = norm_rel_err(gc_bert_grads(m16), gc_bert_grads(m32), np);
    printf("fixture batch 8: loss bf16 %.6f fp32 %.6f; gradient bf16 vs fp32: norm rel %.3e, "
           "max rel %.3e\n",
           s16.loss, s32.loss, d_fix, max_rel_err(gc_bert_grads(m16), gc_bert_grads(m32), np));
    CHECK(d_fix <= BF16_VS_FP32, "bf16 vs fp32 gradient %.3e > %.1e", d_fix, BF16_VS_FP32);
    CHECK(d_fix > 0, "bf16 changed nothing: is it on?");
    CHECK(fabs(s16.loss - s32.loss) <= 1e-2 * fabs(s32.loss), "loss");

    /* 32 random pairs of 4 to 40 tokens */
    int32_t ids[2][NB * 40];
    int64_t off[2][NB + 1];
    unsigned seed = 5;
    for (int side = 0; side < 2; side++) {
        off[side][0] = 0;
        for (int i = 0; i < NB; i++) {
            seed = seed * 1664525u + 1013904223u;
            int len = 4 + (int)((seed >> 16) % 37);
            for (int t = 0; t < len; t++) {
                seed = seed * 1664525u + 1013904223u;
                ids[side][off[side][i] + t] = t == 0 ? 2 : t == len - 1 ? 3 : 5 + (seed >> 16) % 95;
            }
            off[side][i + 1] = off[side][i] + len;
        }
    }
    gc_token_batch bq = {NB, ids[0], off[0]}, bp = {NB, ids[1], off[1]};
    CHECK_OK(step(m32, NB, NB, 1, &bq, &bp, &s32));
    memcpy(g32, gc_bert_grads(m32), np * sizeof(float));
    CHECK_OK(step(m16, NB, NB, 1, &bq, &bp, &s16));
    memcpy(g16, gc_bert_grads(m16), np * sizeof(float));
    double d = norm_rel_err(g16, g32, np);
    printf("random batch %d: gradient bf16 vs fp32 %.3e\n", NB, d);
    static const int chunks[] = {1, 3, 16};
    for (int c = 0; c < 3; c++) {
        CHECK_OK(step(m16, NB, chunks[c], 0, &bq, &bp, &sc));
        double e = norm_rel_err(gc_bert_grads(m16), g16, np);
        printf("bf16, chunks of %d vs the whole batch: loss %.7f vs %.7f, gradient norm rel "
               "%.3e (%.0fx closer than bf16 to fp32)\n",
               chunks[c], sc.loss, s16.loss, e, e > 0 ? d / e : INFINITY);
        CHECK(e <= 1e-5, "chunks of %d: %.3e", chunks[c], e);
        CHECK(e * 10 <= d, "chunks of %d: not 10x closer (%.3e vs %.3e)", chunks[c], e, d);
    }

    /* the slot keeps the linear layers' inputs in bf16: smaller than fp32's; encode (no kept
     * activations, the rounding in scratch) gives forward's bits */
    size_t b32 = gc_bert_reserve_bytes(m32, 8, 64, 1), b16 = gc_bert_reserve_bytes(m16, 8, 64, 1);
    printf("reservation of 8 x 64 tokens, 1 slot: fp32 %zu bytes, bf16 %zu\n", b32, b16);
    CHECK(b16 < b32, "bf16 reservation %zu not below fp32's %zu", b16, b32);
    CHECK_OK(gc_bert_reserve(m16, 8, 64, 1));
    {
        gc_encoder enc = gc_bert_encoder(m16);
        gc_encode_args a = {&q.tb, 0, 0, 8, 1, 0, 1234, 5};
        float *r1 = malloc(8 * 32 * sizeof(float)), *r2 = malloc(8 * 32 * sizeof(float));
        CHECK(enc.ops->dim(enc.ctx) == 32, "dim");
        CHECK_OK(enc.ops->encode(enc.ctx, &a, r1));
        CHECK_OK(enc.ops->forward(enc.ctx, &a, r2));
        CHECK(memcmp(r1, r2, 8 * 32 * sizeof(float)) == 0, "bf16 encode equals forward");
        free(r1), free(r2);
    }

    /* the copy follows the weights; the precision is fixed once reserved */
    CHECK(copy_current(m16), "copy after load");
    gc_param_store st = gc_bert_store(m16);
    float *w = malloc(np * sizeof(float));
    CHECK_OK(st.ops->read(st.ctx, GC_PART_PARAMS, 0, np, w));
    for (size_t i = 0; i < np; i++) w[i] *= 1.01f;
    CHECK_OK(st.ops->write(st.ctx, GC_PART_PARAMS, 0, np, w));
    CHECK(copy_current(m16), "copy after a store write");
    gc_optim_config oc;
    memset(&oc, 0, sizeof oc);
    oc.kind = GC_OPTIM_SGD;
    CHECK_OK(st.ops->optim_init(st.ctx, &oc, NULL));
    CHECK_OK(st.ops->optim_step(st.ctx, 0.5f, 1.0f));
    CHECK(copy_current(m16), "copy after an optimizer step");
    m16->w.p.qkvw[0] += 1.0f;
    CHECK(!copy_current(m16), "a direct write leaves the copy behind");
    gc_bert_sync_weights(m16);
    CHECK(copy_current(m16), "copy after gc_bert_sync_weights");
    CHECK(gc_bert_set_precision(m16, GC_PRECISION_FP32) == GC_ERR_INVALID_ARG,
          "precision change after reserve");
    gc_precision pr;
    CHECK(gc_precision_parse("bf16", &pr) == GC_OK && pr == GC_PRECISION_BF16, "parse bf16");
    CHECK(gc_precision_parse("fp16", &pr) == GC_ERR_INVALID_ARG, "parse fp16");

    free(w), free(g32), free(g16);
    gc_bert_free(m32);
    gc_bert_free(m16);
    fx_free(&fx);
    gc_matmul_cleanup();
    return test_summary("test_bert_bf16");
}

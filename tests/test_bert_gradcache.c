/* test_bert_gradcache.c: the whole gradient-cache step on the BERT encoder.
 *
 * gc_engine_step over the tiny fixture model (batch 8, chunks of 2, InfoNCE with dot products
 * of the normalized embeddings / 0.05, in-batch negatives) must give PyTorch's full-batch
 * gradient for every parameter (tests/fixtures/bert/tiny_ref.bin, dropout 0). With dropout on,
 * the gradient-cache step (chunks of 2 and of 3) must equal the no-cache step (each side in one
 * pass), which holds only if every dropout mask is the same in pass 1, pass 2 and no-cache;
 * and the same under the Matryoshka loss (sizes 32, 16:0.5 and 8). */
#include "gc_bert.h"

#include "bert_fixture.h"
#include "test_util.h"

#include <string.h>

#define TINY_DIR GC_SOURCE_DIR "/tests/fixtures/bert/tiny"
#define TINY_REF GC_SOURCE_DIR "/tests/fixtures/bert/tiny_ref.bin"
#define TOL 1e-4

/* One engine step; the gradient lands in the model's gradient buffer. */
static const char *g_matryoshka; /* sizes of the Matryoshka loss, or NULL */

static gc_status step(gc_bert *m, int qchunk, int pchunk, int no_cache, const side_in *q,
                      const side_in *p, gc_step_stats *stats) {
    gc_encoder enc = gc_bert_encoder(m);
    gc_engine_config ec;
    memset(&ec, 0, sizeof ec);
    ec.max_batch = 8;
    ec.max_len = 64; /* the engine reserves the encoder's buffers for it */
    ec.max_negatives = 0;
    ec.query_chunk = qchunk;
    ec.passage_chunk = pchunk;
    ec.no_cache = no_cache;
    ec.loss.temperature = 0.05f;
    ec.loss.symmetric = 0;
    ec.loss.cosine = 0; /* the embeddings are normalized: dot = cosine */
    ec.seed = 1234;
    if (g_matryoshka) CHECK_OK(gc_matryoshka_parse(g_matryoshka, &ec.matryoshka));
    gc_engine *e = NULL;
    gc_status st = gc_engine_create(&e, &ec, &enc, &enc, NULL);
    if (st != GC_OK) return st;
    st = gc_engine_step(e, &q->tb, &p->tb, 8, 0, 3, stats);
    gc_engine_free(e);
    return st;
}

int main(void) {
    fx_file fx;
    if (fx_load(&fx, TINY_REF) != 0) {
        CHECK(0, "cannot read %s", TINY_REF);
        return test_summary("test_bert_gradcache");
    }
    side_in q, p;
    gc_bert *m = NULL;
    CHECK_OK(gc_bert_load(&m, TINY_DIR));
    if (!m || side_load(&q, &fx, "q") || side_load(&p, &fx, "p")) {
        CHECK(0, "setup");
        gc_bert_free(m);
        fx_free(&fx);
        return test_summary("test_bert_gradcache");
    }
    size_t np = gc_bert_num_params(m);

    /* against PyTorch's full batch: dropout 0, chunks of 2 */
    gc_bert_set_dropout(m, 0.0f);
    gc_step_stats stats;
    CHECK_OK(step(m, 2, 2, 0, &q, &p, &stats));
    const float *ref_loss = fx_f32(&fx, "loss", NULL);
    if (ref_loss) {
        printf("gradient-cache step, batch 8, chunks of 2: loss %.7f (PyTorch %.7f)\n", stats.loss,
               (double)ref_loss[0]);
        CHECK(fabs(stats.loss - ref_loss[0]) <= TOL * fabs(ref_loss[0]), "loss");
    }
    int matched = fx_check_grads(&fx, m, TOL);
    CHECK(matched == gc_bert_num_tensors(m) && matched == 37, "%d tensors", matched);

    /* dropout on: gradient cache (chunks of 2, of 3 and 5) equals no-cache */
    gc_bert_set_dropout(m, 0.1f);
    gc_step_stats s_nc, s_gc;
    float *g_nc = malloc(np * sizeof(float));
    CHECK_OK(step(m, 8, 8, 1, &q, &p, &s_nc));
    memcpy(g_nc, gc_bert_grads(m), np * sizeof(float));
    static const int chunks[2][2] = {{2, 2}, {3, 5}};
    for (int c = 0; c < 2; c++) {
        CHECK_OK(step(m, chunks[c][0], chunks[c][1], 0, &q, &p, &s_gc));
        double err = norm_rel_err(gc_bert_grads(m), g_nc, np);
        double mre = max_rel_err(gc_bert_grads(m), g_nc, np);
        printf("dropout 0.1: cache (query chunk %d, passage chunk %d) vs no-cache: loss %.7f vs "
               "%.7f, gradient norm rel err %.3e, max rel err %.3e\n",
               chunks[c][0], chunks[c][1], s_gc.loss, s_nc.loss, err, mre);
        CHECK(fabs(s_gc.loss - s_nc.loss) <= 1e-5 * fabs(s_nc.loss), "loss with dropout");
        CHECK(mre <= TOL, "gradient with dropout: %.3e", mre);
    }
    CHECK(fabs(s_nc.loss - ref_loss[0]) > 1e-4, "dropout changed the loss");

    /* the same with the Matryoshka loss (sizes 32, 16 and 8 of the 32-wide embeddings) */
    g_matryoshka = "32,16:0.5,8";
    gc_step_stats m_nc, m_gc;
    CHECK_OK(step(m, 8, 8, 1, &q, &p, &m_nc));
    memcpy(g_nc, gc_bert_grads(m), np * sizeof(float));
    for (int c = 0; c < 2; c++) {
        CHECK_OK(step(m, chunks[c][0], chunks[c][1], 0, &q, &p, &m_gc));
        double err = norm_rel_err(gc_bert_grads(m), g_nc, np);
        printf("dropout 0.1, matryoshka %s: cache (chunks %d/%d) vs no-cache: loss %.7f vs "
               "%.7f, gradient norm rel err %.3e\n",
               g_matryoshka, chunks[c][0], chunks[c][1], m_gc.loss, m_nc.loss, err);
        CHECK(fabs(m_gc.loss - m_nc.loss) <= 1e-5 * fabs(m_nc.loss), "matryoshka loss");
        CHECK(err <= 1e-5, "matryoshka gradient with dropout: %.3e", err);
    }
    CHECK(fabs(m_nc.loss - s_nc.loss) > 1e-3, "the Matryoshka loss is not the plain one");
    g_matryoshka = NULL;

    free(g_nc);
    gc_bert_free(m);
    fx_free(&fx);
    gc_matmul_cleanup();
    return test_summary("test_bert_gradcache");
}

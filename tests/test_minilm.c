/* test_minilm.c: the real pretrained all-MiniLM-L6-v2 (GC_MODEL_DIR) against
 * sentence-transformers: 32 texts of the Debian dev split (token ids and embeddings committed in
 * tests/fixtures/bert/minilm_ref.bin by scripts/compare_minilm.py --write-fixture, lengths 9 to
 * 256 tokens) must embed with cosine >= 0.99999 each, the same under the inference
 * reservation. A missing model is a failure: fetch it with `make model`. */
#include "gc_bert.h"

#include "bert_fixture.h"
#include "test_util.h"

#define MINILM_REF GC_SOURCE_DIR "/tests/fixtures/bert/minilm_ref.bin"

int main(void) {
    fx_file fx;
    gc_bert *m = NULL;
    gc_status st = gc_bert_load(&m, GC_MODEL_DIR);
    CHECK(st == GC_OK, "cannot load the pretrained model %s (run `make model`): %s", GC_MODEL_DIR,
          gc_last_error());
    if (st != GC_OK) return test_summary("test_minilm");
    if (fx_load(&fx, MINILM_REF) != 0) {
        CHECK(0, "cannot read %s", MINILM_REF);
        gc_bert_free(m);
        return test_summary("test_minilm");
    }
    const gc_bert_config *c = gc_bert_get_config(m);
    CHECK(c->hidden == 384 && c->layers == 6 && c->heads == 12 && c->vocab_size == 30522,
          "MiniLM-L6 config");
    CHECK(c->pooling == GC_POOL_MEAN && c->normalize && c->max_seq_length == 256,
          "mean pooling, normalize, 256 tokens");

    size_t n_ids = 0, n_off = 0, n_emb = 0;
    const int32_t *ids = fx_i32(&fx, "ids", &n_ids), *off32 = fx_i32(&fx, "offsets", &n_off);
    const float *ref = fx_f32(&fx, "emb", &n_emb);
    if (!ids || !off32 || !ref || n_off < 2 || n_emb != (n_off - 1) * 384) {
        CHECK(0, "fixture tensors missing");
        fx_free(&fx);
        gc_bert_free(m);
        return test_summary("test_minilm");
    }
    int n = (int)n_off - 1, chunk = 8;
    int64_t *offsets = malloc(sizeof(int64_t) * n_off);
    for (size_t i = 0; i < n_off; i++) offsets[i] = off32[i];
    gc_token_batch tb = {n, ids, offsets};
    float *emb = malloc(sizeof(float) * n_emb);
    CHECK_OK(gc_bert_reserve(m, chunk, 256, 1));
    gc_encoder enc = gc_bert_encoder(m);
    for (int first = 0; first < n; first += chunk) {
        int count = n - first < chunk ? n - first : chunk;
        gc_encode_args a = {&tb, 0, first, count, 0, 0, 0, 0};
        CHECK_OK(enc.ops->encode(enc.ctx, &a, emb + (size_t)first * 384));
    }
    double worst = 2.0;
    int worst_i = -1;
    for (int i = 0; i < n; i++) {
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < 384; k++) {
            double a = emb[(size_t)i * 384 + k], b = ref[(size_t)i * 384 + k];
            dot += a * b, na += a * a, nb += b * b;
        }
        double cosv = dot / (sqrt(na) * sqrt(nb));
        CHECK(cosv >= 0.99999, "text %d (%lld tokens): cosine %.8f", i,
              (long long)(offsets[i + 1] - offsets[i]), cosv);
        if (cosv < worst || cosv != cosv) worst = cosv, worst_i = i;
    }
    printf("MiniLM vs sentence-transformers, %d texts: min cosine %.8f (text %d), max abs diff "
           "%.3e\n",
           n, worst, worst_i, max_rel_err(emb, ref, n_emb));

    /* the inference reservation (what `gradcache encode` uses) embeds the same */
    float *emb2 = malloc(sizeof(float) * n_emb);
    CHECK_OK(gc_bert_reserve_inference(m, chunk, 256));
    for (int first = 0; first < n; first += chunk) {
        int count = n - first < chunk ? n - first : chunk;
        gc_encode_args a = {&tb, 0, first, count, 0, 0, 0, 0};
        CHECK_OK(enc.ops->encode(enc.ctx, &a, emb2 + (size_t)first * 384));
    }
    double d = max_rel_err(emb2, emb, n_emb);
    printf("inference reservation vs training reservation: max rel err %.3e\n", d);
    CHECK(d <= 1e-6, "inference reservation differs by %.3e", d);
    free(emb2);
    free(emb);
    free(offsets);
    fx_free(&fx);
    gc_bert_free(m);
    gc_matmul_cleanup();
    return test_summary("test_minilm");
}

/* train_pairs.c: fine-tune a model folder on JSONL query/positive pairs through the library.
 *
 *   train_pairs MODEL_DIR PAIRS.jsonl OUT_DIR [STEPS]
 *
 * Loads the model and its tokenizer, tokenizes the pairs once, trains STEPS (default 3)
 * gradient-cache steps of 16 pairs in chunks of 4 with AdamW, and saves a sentence-transformers
 * folder. Everything that decides the numbers is in gc_trainer. */
#include "gc_bert.h"
#include "gc_io.h"
#include "gc_tokenizer.h"
#include "gc_train.h"

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what) {
    fprintf(stderr, "train_pairs: %s: %s\n", what, gc_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) return fprintf(stderr, "usage: train_pairs MODEL PAIRS OUT [STEPS]\n"), 2;
    gc_bert *model;
    gc_tokenizer *tok;
    gc_dataset *data;
    if (gc_bert_load(&model, argv[1]) || gc_tokenizer_load(&tok, argv[1])) return fail("model");
    if (gc_dataset_load(&data, argv[2])) return fail("data");
    const char **q = malloc(data->n * sizeof *q), **p = malloc(data->n * sizeof *p);
    for (size_t i = 0; i < data->n; i++)
        q[i] = data->pairs[i].query, p[i] = data->pairs[i].positive;
    gc_token_list tq, tp;
    size_t bad;
    if (gc_tokenize_many(tok, q, data->n, 32, &tq, &bad) ||
        gc_tokenize_many(tok, p, data->n, 128, &tp, &bad))
        return fail("tokenizing");

    gc_trainer_config cfg = {
        .batch = 16,
        .accumulation = 1,
        .query_chunk = 4,
        .passage_chunk = 4,
        .max_len = tq.max_len > tp.max_len ? tq.max_len : tp.max_len,
        .loss = {.temperature = 0.05f, .cosine = 1},
        .optim = {.kind = GC_OPTIM_ADAMW, .weight_decay = 0.01f},
        .lr = 1e-4f,
        .schedule = GC_SCHED_LINEAR,
        .max_grad_norm = 1.0,
        .steps = argc > 4 ? (uint64_t)atoi(argv[4]) : 3,
        .seed = 42,
    };
    gc_train_data td = {.n = data->n,
                        .queries = gc_token_list_batch(&tq),
                        .positives = gc_token_list_batch(&tp),
                        .query_text = q,
                        .positive_text = p};
    gc_encoder enc = gc_bert_encoder(model);
    gc_trainer *tr;
    if (gc_trainer_create(&tr, &cfg, &enc, NULL, &td, NULL)) return fail("trainer");
    for (uint64_t s = 0; s < cfg.steps; s++) {
        gc_train_stats st;
        if (gc_trainer_step(tr, &st)) return fail("step");
        printf("step %llu loss %.4f accuracy %.3f\n", (unsigned long long)st.step, st.loss,
               st.accuracy);
    }
    if (gc_bert_save(model, argv[3], argv[1])) return fail("saving");
    gc_trainer_free(tr);
    gc_token_list_free(&tq);
    gc_token_list_free(&tp);
    free(q);
    free(p);
    gc_dataset_free(data);
    gc_tokenizer_free(tok);
    gc_bert_free(model);
    gc_matmul_cleanup();
    return 0;
}

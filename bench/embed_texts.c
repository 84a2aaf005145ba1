/* embed_texts.c: embed texts with a BERT model folder and write them as .npy, for comparison
 * with sentence-transformers (scripts/compare_minilm.py) and for timing inference; or load a
 * model folder and save it again (scripts/roundtrip_check.py).
 *
 *   embed_texts [--model DIR] [--batch N] [--max-len N] INPUT.jsonl OUTPUT.npy
 *   embed_texts [--model DIR] --save OUT_DIR
 *
 * INPUT has one JSON string per line. Texts are tokenized with the folder's tokenizer,
 * truncated to max_seq_length (or --max-len), and embedded N at a time (no dropout). The time
 * spent goes to stderr. Threads: OMP_NUM_THREADS. */
#include "gc_bert.h"
#include "gc_io.h"
#include "gc_tokenizer.h"

#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void) {
    fprintf(stderr, "usage: embed_texts [--model DIR] [--batch N] [--max-len N] INPUT.jsonl "
                    "OUTPUT.npy\n       embed_texts [--model DIR] --save OUT_DIR\n");
    return 2;
}

static int fail(const char *what, gc_status st) {
    fprintf(stderr, "embed_texts: %s: %s: %s\n", what, gc_status_str(st), gc_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *model_dir = GC_MODEL_DIR, *in = NULL, *outp = NULL, *save = NULL;
    int batch = 64, max_len = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && strcmp(a, "--model") == 0)
            model_dir = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--batch") == 0)
            batch = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--max-len") == 0)
            max_len = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--save") == 0)
            save = argv[++i];
        else if (a[0] == '-' && a[1])
            return usage();
        else if (!in)
            in = a;
        else if (!outp)
            outp = a;
        else
            return usage();
    }
    if ((!save && (!in || !outp)) || batch < 1 || max_len < 0) return usage();

    gc_bert *m = NULL;
    gc_status st = gc_bert_load(&m, model_dir);
    if (st) return fail(model_dir, st);
    if (save) {
        st = gc_bert_save(m, save, model_dir);
        gc_bert_free(m);
        if (st) return fail(save, st);
        fprintf(stderr, "embed_texts: saved %s to %s\n", model_dir, save);
        return 0;
    }
    const gc_bert_config *cfg = gc_bert_get_config(m);
    if (max_len == 0 || max_len > cfg->max_seq_length) max_len = cfg->max_seq_length;
    gc_tokenizer *tok = NULL;
    if ((st = gc_tokenizer_load(&tok, model_dir))) return fail("tokenizer", st);

    FILE *f = fopen(in, "rb");
    if (!f) {
        perror(in);
        return 1;
    }
    size_t cap = 1024, n = 0, ntok = 0;
    int32_t *ids = malloc(cap * (size_t)max_len * sizeof *ids);
    int64_t *offsets = malloc((cap + 1) * sizeof *offsets);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    double t0 = now();
    offsets[0] = 0;
    while (ids && offsets && (got = getline(&line, &line_cap, f)) > 0) {
        json_error_t err;
        json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!j || !json_is_string(j)) {
            fprintf(stderr, "embed_texts: %s: line %zu is not a JSON string\n", in, n + 1);
            return 1;
        }
        if (n == cap) {
            cap *= 2;
            ids = realloc(ids, cap * (size_t)max_len * sizeof *ids);
            offsets = realloc(offsets, (cap + 1) * sizeof *offsets);
            if (!ids || !offsets) break;
        }
        int count = 0;
        st = gc_tokenizer_encode(tok, json_string_value(j), json_string_length(j), max_len,
                                 ids + ntok, &count);
        json_decref(j);
        if (st) return fail("tokenize", st);
        ntok += (size_t)count;
        offsets[++n] = (int64_t)ntok;
    }
    free(line);
    fclose(f);
    if (!ids || !offsets) {
        fprintf(stderr, "embed_texts: out of memory\n");
        return 1;
    }
    double t_tok = now() - t0;

    int dim = cfg->hidden;
    float *emb = malloc((n ? n : 1) * (size_t)dim * sizeof *emb);
    if (!emb) {
        fprintf(stderr, "embed_texts: out of memory\n");
        return 1;
    }
    if ((st = gc_bert_reserve(m, batch, max_len, 1))) return fail("reserve", st);
    gc_encoder enc = gc_bert_encoder(m);
    gc_token_batch tb = {(int)n, ids, offsets};
    t0 = now();
    for (size_t first = 0; first < n; first += (size_t)batch) {
        int count = n - first < (size_t)batch ? (int)(n - first) : batch;
        gc_encode_args a = {&tb, 0, (int)first, count, 0, 0, 0, 0};
        if ((st = enc.ops->encode(enc.ctx, &a, emb + first * dim))) return fail("encode", st);
    }
    double t_emb = now() - t0;
    if ((st = gc_npy_write_f32(outp, emb, n, (size_t)dim))) return fail(outp, st);
    fprintf(stderr,
            "embed_texts: %zu texts, %zu tokens; tokenize %.3f s, embed %.3f s (%.1f texts/s, "
            "%d threads)\n",
            n, ntok, t_tok, t_emb, t_emb > 0 ? n / t_emb : 0.0, omp_get_max_threads());
    free(emb);
    free(ids);
    free(offsets);
    gc_tokenizer_free(tok);
    gc_bert_free(m);
    gc_matmul_cleanup();
    return 0;
}

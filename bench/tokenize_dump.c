/* tokenize_dump.c: encode every text of a file and write the ids, for comparison with Hugging
 * Face (scripts/compare_tokenizer.py) and for timing the tokenizer.
 *
 *   tokenize_dump [--model DIR | --vocab FILE [--lower 0|1] [--strip -1|0|1] [--chinese 0|1]]
 *                 [--max-len N] [--repeat R] INPUT.jsonl OUTPUT.txt
 *
 * INPUT has one JSON string per line (any Unicode, \u0000 included). OUTPUT gets one line per
 * text: its ids separated by spaces, or "ERROR <status>" when encoding failed. The time spent
 * encoding (R times over all texts, one thread) goes to stderr. */
#include "gc_tokenizer.h"

#include <jansson.h>
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
    fprintf(stderr, "usage: tokenize_dump [--model DIR | --vocab FILE [--lower 0|1] "
                    "[--strip -1|0|1] [--chinese 0|1]] [--max-len N] [--repeat R] "
                    "INPUT.jsonl OUTPUT.txt\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *model = GC_MODEL_DIR, *vocab = NULL, *in = NULL, *outp = NULL;
    gc_tokenizer_config cfg = {1, -1, 1};
    int max_len = 128, repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && strcmp(a, "--model") == 0)
            model = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--vocab") == 0)
            vocab = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--lower") == 0)
            cfg.lowercase = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--strip") == 0)
            cfg.strip_accents = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--chinese") == 0)
            cfg.tokenize_chinese_chars = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--max-len") == 0)
            max_len = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--repeat") == 0)
            repeat = atoi(argv[++i]);
        else if (a[0] == '-' && a[1])
            return usage();
        else if (!in)
            in = a;
        else if (!outp)
            outp = a;
        else
            return usage();
    }
    if (!in || !outp || max_len < 2 || repeat < 1) return usage();

    gc_tokenizer *tok;
    gc_status st =
        vocab ? gc_tokenizer_from_vocab(&tok, vocab, &cfg) : gc_tokenizer_load(&tok, model);
    if (st) {
        fprintf(stderr, "tokenize_dump: %s: %s\n", gc_status_str(st), gc_last_error());
        return 1;
    }

    /* read all texts first so the timing covers encoding only */
    FILE *f = fopen(in, "rb");
    if (!f) {
        perror(in);
        return 1;
    }
    size_t cap = 1024, n = 0;
    char **texts = malloc(cap * sizeof *texts);
    size_t *lens = malloc(cap * sizeof *lens);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    while (texts && lens && (got = getline(&line, &line_cap, f)) > 0) {
        json_error_t err;
        json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!j || !json_is_string(j)) {
            fprintf(stderr, "tokenize_dump: %s: line %zu is not a JSON string\n", in, n + 1);
            return 1;
        }
        if (n == cap) {
            cap *= 2;
            texts = realloc(texts, cap * sizeof *texts);
            lens = realloc(lens, cap * sizeof *lens);
            if (!texts || !lens) break;
        }
        lens[n] = json_string_length(j);
        texts[n] = malloc(lens[n] + 1);
        if (!texts[n]) break;
        memcpy(texts[n], json_string_value(j), lens[n] + 1);
        n++;
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (!texts || !lens) {
        fprintf(stderr, "tokenize_dump: out of memory\n");
        return 1;
    }

    int32_t *ids = malloc(n * (size_t)max_len * sizeof *ids);
    int *counts = malloc((n ? n : 1) * sizeof *counts);
    gc_status *sts = malloc((n ? n : 1) * sizeof *sts);
    if (!ids || !counts || !sts) {
        fprintf(stderr, "tokenize_dump: out of memory\n");
        return 1;
    }
    long total = 0;
    double t0 = now();
    for (int r = 0; r < repeat; r++)
        for (size_t i = 0; i < n; i++)
            sts[i] = gc_tokenizer_encode(tok, texts[i], lens[i], max_len, ids + i * (size_t)max_len,
                                         &counts[i]);
    double dt = now() - t0;
    for (size_t i = 0; i < n; i++) total += sts[i] ? 0 : counts[i];
    fprintf(stderr, "tokenize_dump: %zu texts x %d, %ld tokens each pass, %.3f s (%.2f us/text)\n",
            n, repeat, total, dt, n ? 1e6 * dt / ((double)n * repeat) : 0.0);

    FILE *o = fopen(outp, "w");
    if (!o) {
        perror(outp);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (sts[i]) {
            fprintf(o, "ERROR %s\n", gc_status_str(sts[i]));
            continue;
        }
        for (int k = 0; k < counts[i]; k++)
            fprintf(o, k ? " %d" : "%d", (int)ids[i * (size_t)max_len + (size_t)k]);
        fputc('\n', o);
    }
    if (fclose(o) != 0) {
        perror(outp);
        return 1;
    }
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(ids);
    free(counts);
    free(sts);
    gc_tokenizer_free(tok);
    return 0;
}

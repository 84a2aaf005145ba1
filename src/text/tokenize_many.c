/* tokenize_many.c: tokenizing a whole list of texts at once (OpenMP over texts) into one packed
 * array of token ids, the form the text encoders take as input, optionally each text behind a
 * prompt. */
#include "gc_tokenizer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gc_status gc_tokenize_many(const gc_tokenizer *tok, const char *const *texts, size_t n, int max_len,
                           gc_token_list *out, size_t *bad) {
    return gc_tokenize_many_prompt(tok, NULL, texts, n, max_len, out, bad);
}

/* The prompt and a text as one string, as sentence-transformers concatenates them. */
static char *with_prompt(const char *prompt, size_t plen, const char *text) {
    size_t tlen = strlen(text);
    char *s = malloc(plen + tlen + 1);
    if (!s) return NULL;
    memcpy(s, prompt, plen);
    memcpy(s + plen, text, tlen + 1);
    return s;
}

gc_status gc_tokenize_many_prompt(const gc_tokenizer *tok, const char *prompt,
                                  const char *const *texts, size_t n, int max_len,
                                  gc_token_list *out, size_t *bad) {
    if (!out || !bad) return gc_set_error(GC_ERR_INVALID_ARG, "gc_tokenize_many: NULL output");
    const size_t plen = prompt ? strlen(prompt) : 0;
    memset(out, 0, sizeof *out);
    *bad = 0;
    if (!tok || (n && !texts))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_tokenize_many: NULL tokenizer or texts");
    if (max_len < 2)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_tokenize_many: max_len %d < 2", max_len);
    if (n > SIZE_MAX / sizeof(int32_t) / (size_t)max_len - 1)
        return gc_set_error(GC_ERR_NOMEM, "too many texts to tokenize (%zu)", n);
    /* every text gets a slot of max_len ids, so threads write without coordinating */
    int32_t *slots = malloc((n ? n : 1) * (size_t)max_len * sizeof(int32_t));
    int *lens = malloc((n ? n : 1) * sizeof(int));
    int64_t *offsets = malloc((n + 1) * sizeof(int64_t));
    if (!slots || !lens || !offsets) {
        free(slots);
        free(lens);
        free(offsets);
        return gc_set_error(GC_ERR_NOMEM, "out of memory tokenizing %zu texts", n);
    }
    /* each thread keeps its own error message; keep the first failure's text */
    size_t first_bad = n;
    gc_status first_st = GC_OK;
    char msg[512] = "";
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < n; i++) {
        char *joined = plen ? with_prompt(prompt, plen, texts[i]) : NULL;
        const char *text = plen ? joined : texts[i];
        gc_status st = text ? gc_tokenizer_encode(tok, text, strlen(text), max_len,
                                                  slots + i * (size_t)max_len, &lens[i])
                            : gc_set_error(GC_ERR_NOMEM, "out of memory adding the prompt");
        free(joined);
        if (st != GC_OK) {
#pragma omp critical(gc_tokenize_many_error)
            if (i < first_bad) {
                first_bad = i;
                first_st = st;
                snprintf(msg, sizeof msg, "%s", gc_last_error());
            }
        }
    }
    if (first_bad < n) {
        free(slots);
        free(lens);
        free(offsets);
        *bad = first_bad;
        return gc_set_error(first_st, "%s", msg);
    }
    int64_t total = 0;
    int longest = 0;
    for (size_t i = 0; i < n; i++) {
        offsets[i] = total;
        total += lens[i];
        if (lens[i] > longest) longest = lens[i];
    }
    offsets[n] = total;
    int32_t *ids = malloc((size_t)(total ? total : 1) * sizeof(int32_t));
    if (!ids) {
        free(slots);
        free(lens);
        free(offsets);
        return gc_set_error(GC_ERR_NOMEM, "out of memory for %lld token ids", (long long)total);
    }
    for (size_t i = 0; i < n; i++)
        memcpy(ids + offsets[i], slots + i * (size_t)max_len, (size_t)lens[i] * sizeof(int32_t));
    free(slots);
    free(lens);
    out->ids = ids;
    out->offsets = offsets;
    out->n = n;
    out->max_len = longest;
    return GC_OK;
}

void gc_token_list_free(gc_token_list *t) {
    if (!t) return;
    free(t->ids);
    free(t->offsets);
    memset(t, 0, sizeof *t);
}

gc_token_batch gc_token_list_batch(const gc_token_list *t) {
    gc_token_batch tb = {(int)t->n, t->ids, t->offsets};
    return tb;
}

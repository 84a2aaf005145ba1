/* tokenizer_unicode.c: character classes of the BERT normalizer and pre-tokenizer. utf8proc
 * supplies categories, decompositions and case maps; the generated flip tables bend them to
 * the Unicode versions Hugging Face's tokenizers was built with, so that ids match exactly. */
#include "text/tokenizer_internal.h"

#include <utf8proc.h>

static int in_ranges(const gc_tok_range *r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid - 1;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int category(uint32_t cp) {
    return (int)utf8proc_get_property((utf8proc_int32_t)cp)->category;
}

int gc_tok_is_control(uint32_t cp) {
    if (cp < 0x80) return (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7F;
    int c = category(cp);
    int other = c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO;
    return other ^ in_ranges(gc_tok_other_flip, gc_tok_other_flip_count, cp);
}

int gc_tok_is_whitespace(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int gc_tok_is_punct(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
               (cp >= 123 && cp <= 126);
    int c = category(cp);
    int p = c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
    return p ^ in_ranges(gc_tok_punct_flip, gc_tok_punct_flip_count, cp);
}

int gc_tok_is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int gc_tok_is_mn(uint32_t cp) {
    if (cp < 0x300) return 0;
    int mn = category(cp) == UTF8PROC_CATEGORY_MN;
    return mn ^ in_ranges(gc_tok_mn_flip, gc_tok_mn_flip_count, cp);
}

int gc_tok_ccc(uint32_t cp) {
    if (cp < 0x300) return 0;
    int c = utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
    if (c && in_ranges(gc_tok_starter_flip, gc_tok_starter_flip_count, cp)) return 0;
    return c;
}

int gc_tok_decompose(uint32_t cp, uint32_t out[8]) {
    if (cp < 0xC0 || in_ranges(gc_tok_nodecomp, gc_tok_nodecomp_count, cp)) {
        out[0] = cp;
        return 1;
    }
    utf8proc_int32_t buf[8];
    int bound = 0;
    utf8proc_ssize_t n =
        utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 8, UTF8PROC_DECOMPOSE, &bound);
    if (n < 1 || n > 8) { /* cannot happen for a valid code point; keep it unchanged */
        out[0] = cp;
        return 1;
    }
    for (int i = 0; i < n; i++) out[i] = (uint32_t)buf[i];
    return (int)n;
}

int gc_tok_lower_full(uint32_t cp, uint32_t out[2]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    int lo = 0, hi = gc_tok_lower_over_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < gc_tok_lower_over[mid].cp)
            hi = mid - 1;
        else if (cp > gc_tok_lower_over[mid].cp)
            lo = mid + 1;
        else {
            out[0] = gc_tok_lower_over[mid].to[0];
            out[1] = gc_tok_lower_over[mid].to[1];
            return out[1] ? 2 : 1;
        }
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    return 1;
}

/* tokenizer_internal.h: the character classes of the BERT normalizer and pre-tokenizer as
 * Hugging Face's tokenizers defines them, shared by tokenizer.c, its tables and the tests. */
#ifndef GC_TOKENIZER_INTERNAL_H
#define GC_TOKENIZER_INTERNAL_H

#include <stdint.h>

typedef struct gc_tok_range {
    uint32_t lo, hi; /* inclusive */
} gc_tok_range;

typedef struct gc_tok_lower {
    uint32_t cp;
    uint32_t to[2]; /* to[1] == 0: one character */
} gc_tok_lower;

/* Generated tables (tokenizer_tables.c): code points where tokenizers' Unicode data differs
 * from utf8proc's, so every predicate below is utf8proc's answer flipped inside these. */
extern const gc_tok_range gc_tok_other_flip[];
extern const int gc_tok_other_flip_count;
extern const gc_tok_range gc_tok_punct_flip[];
extern const int gc_tok_punct_flip_count;
extern const gc_tok_range gc_tok_mn_flip[];
extern const int gc_tok_mn_flip_count;
extern const gc_tok_range gc_tok_starter_flip[];
extern const int gc_tok_starter_flip_count;
extern const gc_tok_range gc_tok_nodecomp[];
extern const int gc_tok_nodecomp_count;
extern const gc_tok_lower gc_tok_lower_over[];
extern const int gc_tok_lower_over_count;

/* Dropped by clean-text: control, format and private-use characters other than \t \n \r. */
int gc_tok_is_control(uint32_t cp);
/* Rust's char::is_whitespace (the White_Space property). */
int gc_tok_is_whitespace(uint32_t cp);
/* Split off as its own token: ASCII punctuation or a P* category character. */
int gc_tok_is_punct(uint32_t cp);
/* The CJK ideograph blocks BERT surrounds with spaces. */
int gc_tok_is_cjk(uint32_t cp);
/* Nonspacing mark (removed when stripping accents). */
int gc_tok_is_mn(uint32_t cp);
/* Canonical combining class used to order marks after decomposition (0 = starter). */
int gc_tok_ccc(uint32_t cp);
/* Canonical decomposition (NFD) of one code point into out (room for 8); returns the count. */
int gc_tok_decompose(uint32_t cp, uint32_t out[8]);
/* Full lowercase mapping (Rust's char::to_lowercase) into out; returns 1 or 2. */
int gc_tok_lower_full(uint32_t cp, uint32_t out[2]);

#endif

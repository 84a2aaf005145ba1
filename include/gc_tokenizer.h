/* gc_tokenizer.h: the WordPiece tokenizer of BERT-family models, equal to Hugging Face's
 * BertTokenizerFast: text cleaning, CJK splitting, lowercasing and accent stripping for
 * uncased models, punctuation splitting, greedy longest-match WordPiece with "##", [UNK] for
 * words over 100 characters, [CLS] ... [SEP] with truncation. */
#ifndef GC_TOKENIZER_H
#define GC_TOKENIZER_H

#include "gradcache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_tokenizer gc_tokenizer;

typedef struct gc_tokenizer_config {
    int lowercase;              /* do_lower_case */
    int strip_accents;          /* -1: follow lowercase (HF's None), 0 or 1 */
    int tokenize_chinese_chars; /* 1 by default */
} gc_tokenizer_config;

/* From a model folder, as transformers loads BertTokenizerFast: the vocabulary and added tokens
 * of tokenizer.json (vocab.txt when there is no tokenizer.json), and the options and special
 * token names of tokenizer_config.json (do_lower_case, strip_accents, tokenize_chinese_chars,
 * unk_token, ...; uncased defaults when absent). tokenizer.json's own normalizer settings are
 * not used, because transformers rebuilds the normalizer from those options. Missing files are
 * GC_ERR_IO, malformed ones GC_ERR_FORMAT (also: no [CLS] [SEP] [PAD] or [UNK] token, a token
 * listed twice), other tokenizer kinds GC_ERR_UNSUPPORTED. */
gc_status gc_tokenizer_load(gc_tokenizer **out, const char *model_dir);
/* From a vocab.txt with explicit options (cfg NULL: uncased defaults). */
gc_status gc_tokenizer_from_vocab(gc_tokenizer **out, const char *vocab_path,
                                  const gc_tokenizer_config *cfg);
/* From vocabulary text in memory (one token per line; id = line number, counting empty lines;
 * lines end with \n, \r\n or \r). */
gc_status gc_tokenizer_from_memory(gc_tokenizer **out, const char *vocab, size_t len,
                                   const gc_tokenizer_config *cfg);
void gc_tokenizer_free(gc_tokenizer *t);

/* Encode UTF-8 text (len bytes) as [CLS] tokens... [SEP], at most max_len ids in all
 * (max_len >= 2), into ids (room for max_len). *n gets the count. Reentrant: may be called
 * from many threads at once on one tokenizer; allocates nothing. Invalid UTF-8 anywhere in
 * text is GC_ERR_FORMAT. Special tokens written in the text ("[SEP]", "[MASK]", added tokens;
 * exact, case-sensitive) become their ids, as in Hugging Face. */
gc_status gc_tokenizer_encode(const gc_tokenizer *t, const char *text, size_t len, int max_len,
                              int32_t *ids, int *n);

/* Token ids of many texts, tokenized once (OpenMP over texts) and packed: text i is
 * ids[offsets[i] .. offsets[i+1]). */
typedef struct gc_token_list {
    int32_t *ids;
    int64_t *offsets; /* n + 1 */
    size_t n;
    int max_len; /* longest sequence */
} gc_token_list;

/* On failure *bad gets the index of the first text that failed (gc_last_error() holds the
 * tokenizer's message) and *out is empty. */
gc_status gc_tokenize_many(const gc_tokenizer *tok, const char *const *texts, size_t n, int max_len,
                           gc_token_list *out, size_t *bad);
/* The same with `prompt` (NULL or "": none) put before every text, as sentence-transformers
 * does (prompt + text, tokenized together: the prompt's tokens count in max_len). */
gc_status gc_tokenize_many_prompt(const gc_tokenizer *tok, const char *prompt,
                                  const char *const *texts, size_t n, int max_len,
                                  gc_token_list *out, size_t *bad);
void gc_token_list_free(gc_token_list *t);
/* The list as the encoders' input (a view; n must fit in int). */
gc_token_batch gc_token_list_batch(const gc_token_list *t);

int gc_tokenizer_vocab_size(const gc_tokenizer *t);
/* id of a token, or -1 */
int gc_tokenizer_token_id(const gc_tokenizer *t, const char *token);
int gc_tokenizer_cls_id(const gc_tokenizer *t);
int gc_tokenizer_sep_id(const gc_tokenizer *t);
int gc_tokenizer_pad_id(const gc_tokenizer *t);
int gc_tokenizer_unk_id(const gc_tokenizer *t);

#ifdef __cplusplus
}
#endif

#endif

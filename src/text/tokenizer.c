/* tokenizer.c: BERT's WordPiece tokenizer, equal to Hugging Face's BertTokenizerFast.
 *
 * Loading builds one immutable vocabulary hash table. Encoding streams the text through the
 * stages of tokenizers (added-token split, clean text, CJK spacing, NFD and mark removal,
 * lowercasing, whitespace/punctuation split, greedy WordPiece) one code point at a time, with
 * all state in a small struct on the caller's stack: nothing is allocated per call and many
 * threads may encode with one tokenizer at once. */
#include "gc_tokenizer.h"

#include "text/tokenizer_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Longer words become [UNK] (WordPiece's max_input_chars_per_word in BertTokenizerFast). */
#define MAX_WORD_CHARS 100
/* Continuation pieces are looked up as "##" + piece. */
#define PREFIX "##"
#define PREFIX_LEN 2
/* Ids past this are not a BERT vocabulary (and would make the id tables huge). */
#define MAX_ID (1 << 24)
/* Larger files are not vocabularies. */
#define MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct vocab_entry {
    uint32_t off; /* into arena */
    uint32_t len;
    uint32_t hash;
    int32_t id;
} vocab_entry;

typedef struct special_token {
    uint32_t off; /* into arena */
    uint32_t len;
    int32_t id;
} special_token;

struct gc_tokenizer {
    char *arena; /* every token's bytes, then every special token's */
    size_t arena_len, arena_cap;
    vocab_entry *entries;
    int n_entries, entries_cap;
    uint32_t *slots; /* open addressing: entry index + 1, 0 = empty */
    uint32_t mask;
    int vocab_size; /* largest id + 1 */
    uint32_t max_token_bytes;

    int lowercase, strip_accents, chinese;
    uint32_t prefix_hash; /* hash state after PREFIX */
    int cls, sep, pad, unk;

    special_token *specials;
    int n_specials;
    unsigned char special_first[256]; /* first bytes of special tokens */
};

/* ------------------------------------------------------------------------------------------ */
/* UTF-8 */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid: overlong forms,
 * surrogates and code points past U+10FFFF are rejected like Rust's str does. */
static int utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;
        if (c == 0xED && s[1] >= 0xA0) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

/* Byte offset of the first invalid sequence, or n if all of s is valid. */
static size_t utf8_check(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_valid_len(u + i, n - i);
        if (!k) return i;
        i += (size_t)k;
    }
    return n;
}

/* Decode one code point of already validated UTF-8; *k gets its length. */
static uint32_t utf8_decode(const unsigned char *s, int *k) {
    unsigned char c = s[0];
    if (c < 0x80) {
        *k = 1;
        return c;
    }
    if (c < 0xE0) {
        *k = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c < 0xF0) {
        *k = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *k = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

static int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ------------------------------------------------------------------------------------------ */
/* The vocabulary table */

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

static uint32_t hash_more(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* id of PREFIX+s (PREFIX only when continuation != 0), or -1. */
static int vocab_find(const gc_tokenizer *t, int continuation, const char *s, size_t n) {
    size_t plen = continuation ? PREFIX_LEN : 0;
    if (plen + n > t->max_token_bytes) return -1;
    uint32_t h = hash_more(continuation ? t->prefix_hash : FNV_OFFSET, s, n);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t e = t->slots[i];
        if (!e) return -1;
        const vocab_entry *v = &t->entries[e - 1];
        const char *tok = t->arena + v->off;
        if (v->hash == h && v->len == plen + n && memcmp(tok, PREFIX, plen) == 0 &&
            memcmp(tok + plen, s, n) == 0)
            return v->id;
    }
}

static gc_status arena_add(gc_tokenizer *t, const char *s, size_t n, uint32_t *off) {
    if (t->arena_len + n + 1 > UINT32_MAX)
        return gc_set_error(GC_ERR_FORMAT, "vocabulary too large");
    if (t->arena_len + n + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 4096;
        while (cap < t->arena_len + n + 1) cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a) return gc_set_error(GC_ERR_NOMEM, "out of memory for the vocabulary");
        t->arena = a;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = '\0';
    *off = (uint32_t)t->arena_len;
    t->arena_len += n + 1;
    return GC_OK;
}

/* Append a token (the table is built afterwards by vocab_index). */
static gc_status vocab_add(gc_tokenizer *t, const char *s, size_t n, int32_t id, const char *where,
                           long line) {
    if (utf8_check(s, n) != n)
        return gc_set_error(GC_ERR_FORMAT, "%s: token %ld is not valid UTF-8", where, line);
    if (memchr(s, '\0', n))
        return gc_set_error(GC_ERR_FORMAT, "%s: token %ld contains a NUL byte", where, line);
    if (t->n_entries == t->entries_cap) {
        int cap = t->entries_cap ? t->entries_cap * 2 : 1024;
        vocab_entry *e = realloc(t->entries, (size_t)cap * sizeof *e);
        if (!e) return gc_set_error(GC_ERR_NOMEM, "out of memory for the vocabulary");
        t->entries = e;
        t->entries_cap = cap;
    }
    vocab_entry *v = &t->entries[t->n_entries];
    gc_status st = arena_add(t, s, n, &v->off);
    if (st) return st;
    v->len = (uint32_t)n;
    v->hash = hash_more(FNV_OFFSET, s, n);
    v->id = id;
    t->n_entries++;
    if (id >= t->vocab_size) t->vocab_size = id + 1;
    if (n > t->max_token_bytes) t->max_token_bytes = (uint32_t)n;
    return GC_OK;
}

/* Build the hash table over all entries; a token seen twice is an error. */
static gc_status vocab_index(gc_tokenizer *t, const char *where) {
    if (t->n_entries == 0) return gc_set_error(GC_ERR_FORMAT, "%s: empty vocabulary", where);
    uint32_t cap = 1024;
    while (cap < (uint32_t)t->n_entries * 2u) cap *= 2;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots) return gc_set_error(GC_ERR_NOMEM, "out of memory for the vocabulary table");
    t->mask = cap - 1;
    for (int k = 0; k < t->n_entries; k++) {
        const vocab_entry *v = &t->entries[k];
        uint32_t i = v->hash & t->mask;
        for (; t->slots[i]; i = (i + 1) & t->mask) {
            const vocab_entry *w = &t->entries[t->slots[i] - 1];
            if (w->hash == v->hash && w->len == v->len &&
                memcmp(t->arena + w->off, t->arena + v->off, v->len) == 0)
                return gc_set_error(GC_ERR_FORMAT,
                                    "%s: token \"%.64s\" appears twice (ids %d and %d)", where,
                                    t->arena + v->off, (int)w->id, (int)v->id);
        }
        t->slots[i] = (uint32_t)k + 1;
    }
    return GC_OK;
}

/* vocab.txt: one token per line, id = line number. Lines end with \n, \r\n or \r (as Python's
 * universal newlines read them); empty lines keep their id but hold no token. */
static gc_status vocab_parse_lines(gc_tokenizer *t, const char *text, size_t len,
                                   const char *where) {
    size_t i = 0;
    long line = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n' && text[j] != '\r') j++;
        if (line >= MAX_ID) return gc_set_error(GC_ERR_FORMAT, "%s: too many lines", where);
        if (j > i) {
            gc_status st = vocab_add(t, text + i, j - i, (int32_t)line, where, line + 1);
            if (st) return st;
        }
        line++;
        if (j < len && text[j] == '\r' && j + 1 < len && text[j + 1] == '\n') j++;
        i = j + 1;
    }
    if (line > t->vocab_size) t->vocab_size = (int)line;
    return vocab_index(t, where);
}

/* ------------------------------------------------------------------------------------------ */
/* Construction */

static gc_tokenizer *tokenizer_new(void) {
    gc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->lowercase = 1;
    t->strip_accents = -1;
    t->chinese = 1;
    t->prefix_hash = hash_more(FNV_OFFSET, PREFIX, PREFIX_LEN);
    t->cls = t->sep = t->pad = t->unk = -1;
    return t;
}

static gc_status set_config(gc_tokenizer *t, const gc_tokenizer_config *cfg) {
    if (!cfg) return GC_OK;
    if ((cfg->lowercase != 0 && cfg->lowercase != 1) ||
        (cfg->strip_accents < -1 || cfg->strip_accents > 1) ||
        (cfg->tokenize_chinese_chars != 0 && cfg->tokenize_chinese_chars != 1))
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "tokenizer config: lowercase and tokenize_chinese_chars must be 0 or "
                            "1, strip_accents -1, 0 or 1");
    t->lowercase = cfg->lowercase;
    t->strip_accents = cfg->strip_accents;
    t->chinese = cfg->tokenize_chinese_chars;
    return GC_OK;
}

static gc_status add_special(gc_tokenizer *t, const char *s, size_t n, int32_t id) {
    if (n == 0) return GC_OK;
    for (int i = 0; i < t->n_specials; i++)
        if (t->specials[i].len == n && memcmp(t->arena + t->specials[i].off, s, n) == 0) {
            t->specials[i].id = id;
            return GC_OK;
        }
    special_token *sp = realloc(t->specials, (size_t)(t->n_specials + 1) * sizeof *sp);
    if (!sp) return gc_set_error(GC_ERR_NOMEM, "out of memory for special tokens");
    t->specials = sp;
    special_token *x = &sp[t->n_specials];
    gc_status st = arena_add(t, s, n, &x->off);
    if (st) return st;
    x->len = (uint32_t)n;
    x->id = id;
    t->n_specials++;
    t->special_first[(unsigned char)s[0]] = 1;
    if (id >= t->vocab_size) t->vocab_size = id + 1;
    return GC_OK;
}

/* Names of the special tokens (tokenizer_config.json may rename them). */
typedef struct special_names {
    char cls[64], sep[64], pad[64], unk[64], mask[64];
} special_names;

static const special_names k_default_names = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};

/* Look up [CLS] [SEP] [PAD] and the unknown token, which must exist, and match all five in raw
 * text as BertTokenizerFast does. */
static gc_status resolve_specials(gc_tokenizer *t, const special_names *nm, const char *where) {
    const char *names[4] = {nm->cls, nm->sep, nm->pad, nm->unk};
    int *dst[4] = {&t->cls, &t->sep, &t->pad, &t->unk};
    for (int i = 0; i < 4; i++) {
        int id = names[i][0] ? vocab_find(t, 0, names[i], strlen(names[i])) : -1;
        if (id < 0)
            return gc_set_error(GC_ERR_FORMAT, "%s: the vocabulary has no %s token", where,
                                names[i][0] ? names[i] : "(unnamed special)");
        *dst[i] = id;
        gc_status st = add_special(t, names[i], strlen(names[i]), id);
        if (st) return st;
    }
    int mask = nm->mask[0] ? vocab_find(t, 0, nm->mask, strlen(nm->mask)) : -1;
    if (mask >= 0) {
        gc_status st = add_special(t, nm->mask, strlen(nm->mask), mask);
        if (st) return st;
    }
    if (t->strip_accents < 0) t->strip_accents = t->lowercase;
    return GC_OK;
}

void gc_tokenizer_free(gc_tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->entries);
    free(t->slots);
    free(t->specials);
    free(t);
}

gc_status gc_tokenizer_from_memory(gc_tokenizer **out, const char *vocab, size_t len,
                                   const gc_tokenizer_config *cfg) {
    if (!out || (!vocab && len))
        return gc_set_error(GC_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    gc_tokenizer *t = tokenizer_new();
    if (!t) return gc_set_error(GC_ERR_NOMEM, "out of memory for the tokenizer");
    gc_status st = set_config(t, cfg);
    if (!st) st = vocab_parse_lines(t, vocab ? vocab : "", len, "vocabulary");
    if (!st) st = resolve_specials(t, &k_default_names, "vocabulary");
    if (st) {
        gc_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GC_OK;
}

/* Whole file into a NUL-terminated buffer. A missing file is GC_ERR_IO. */
static gc_status read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gc_set_error(GC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return gc_set_error(GC_ERR_NOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= MAX_FILE_BYTES) {
                free(buf);
                fclose(f);
                return gc_set_error(GC_ERR_FORMAT, "%s: larger than %zu bytes", path,
                                    (size_t)MAX_FILE_BYTES);
            }
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                fclose(f);
                return gc_set_error(GC_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f), e = errno; /* a folder opens, and its read fails with EISDIR */
    fclose(f);
    if (bad) {
        free(buf);
        return gc_set_error(GC_ERR_IO, "cannot read %s: %s", path, strerror(e));
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return GC_OK;
}

gc_status gc_tokenizer_from_vocab(gc_tokenizer **out, const char *vocab_path,
                                  const gc_tokenizer_config *cfg) {
    if (!out || !vocab_path) return gc_set_error(GC_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    char *data;
    size_t len;
    gc_status st = read_file(vocab_path, &data, &len);
    if (st) return st;
    gc_tokenizer *t = tokenizer_new();
    if (!t) {
        free(data);
        return gc_set_error(GC_ERR_NOMEM, "out of memory for the tokenizer");
    }
    st = set_config(t, cfg);
    if (!st) st = vocab_parse_lines(t, data, len, vocab_path);
    if (!st) st = resolve_specials(t, &k_default_names, vocab_path);
    free(data);
    if (st) {
        gc_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Model folders: tokenizer_config.json, tokenizer.json, vocab.txt */

/* Whether path names anything but a missing file: a folder, a symbolic-link loop or an
 * unreadable file counts, so that reading it reports the real reason. */
static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 || errno != ENOENT;
}

static gc_status load_json(const char *path, json_t **out) {
    char *data;
    size_t len;
    *out = NULL;
    gc_status st = read_file(path, &data, &len);
    if (st) return st;
    json_error_t err;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    free(data);
    if (!j) return gc_set_error(GC_ERR_FORMAT, "%s:%d: %s", path, err.line, err.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return gc_set_error(GC_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *out = j;
    return GC_OK;
}

/* A boolean option: absent leaves *v alone; null gives null_value (-2: not allowed). */
static gc_status json_flag(json_t *obj, const char *key, int *v, int null_value, const char *path) {
    json_t *x = json_object_get(obj, key);
    if (!x) return GC_OK;
    if (json_is_boolean(x))
        *v = json_is_true(x);
    else if (json_is_null(x) && null_value != -2)
        *v = null_value;
    else
        return gc_set_error(GC_ERR_FORMAT, "%s: \"%s\" must be true or false", path, key);
    return GC_OK;
}

/* A special token name: a string, an AddedToken object {"content": ...}, or null (none). */
static gc_status json_token_name(json_t *obj, const char *key, char *dst, size_t cap,
                                 const char *path) {
    json_t *x = json_object_get(obj, key);
    if (!x) return GC_OK;
    if (json_is_null(x)) {
        dst[0] = '\0';
        return GC_OK;
    }
    if (json_is_object(x)) x = json_object_get(x, "content");
    const char *s = json_string_value(x);
    if (!s || strlen(s) >= cap || utf8_check(s, strlen(s)) != strlen(s))
        return gc_set_error(GC_ERR_FORMAT, "%s: bad \"%s\"", path, key);
    strcpy(dst, s);
    return GC_OK;
}

/* One added token ({"content", "normalized", "lstrip", ...}). tokenizers can also match added
 * tokens after normalization or with stripping, which BERT's special tokens never use, so those
 * are refused rather than silently mis-tokenized. */
static gc_status json_added_token(gc_tokenizer *t, json_t *x, json_int_t id, const char *path) {
    const char *content = json_string_value(json_object_get(x, "content"));
    if (!content || id < 0 || id >= MAX_ID)
        return gc_set_error(GC_ERR_FORMAT, "%s: an added token needs an id and content", path);
    static const char *flags[4] = {"normalized", "lstrip", "rstrip", "single_word"};
    for (int f = 0; f < 4; f++)
        if (json_is_true(json_object_get(x, flags[f])))
            return gc_set_error(GC_ERR_UNSUPPORTED, "%s: added token \"%.64s\" has %s true", path,
                                content, flags[f]);
    size_t clen = strlen(content);
    if (utf8_check(content, clen) != clen)
        return gc_set_error(GC_ERR_FORMAT, "%s: an added token is not valid UTF-8", path);
    return add_special(t, content, clen, (int32_t)id);
}

/* tokenizer_config.json: the options BertTokenizerFast is constructed with. They decide the
 * normalizer even when tokenizer.json describes another one, because transformers rebuilds the
 * BertNormalizer from them (their defaults when absent). */
static gc_status read_tokenizer_config(gc_tokenizer *t, special_names *nm, const char *path) {
    json_t *j;
    gc_status st = load_json(path, &j);
    if (st) return st;
    const char *cls = json_string_value(json_object_get(j, "tokenizer_class"));
    static const char *ok_classes[4] = {"BertTokenizer", "BertTokenizerFast", "DistilBertTokenizer",
                                        "DistilBertTokenizerFast"};
    int known = !cls;
    for (int i = 0; i < 4 && !known; i++) known = strcmp(cls, ok_classes[i]) == 0;
    if (!known)
        st = gc_set_error(GC_ERR_UNSUPPORTED, "%s: tokenizer_class %s is not supported", path, cls);
    if (!st) st = json_flag(j, "do_lower_case", &t->lowercase, -2, path);
    if (!st) st = json_flag(j, "strip_accents", &t->strip_accents, -1, path);
    if (!st) st = json_flag(j, "tokenize_chinese_chars", &t->chinese, -2, path);
    if (!st) st = json_token_name(j, "cls_token", nm->cls, sizeof nm->cls, path);
    if (!st) st = json_token_name(j, "sep_token", nm->sep, sizeof nm->sep, path);
    if (!st) st = json_token_name(j, "pad_token", nm->pad, sizeof nm->pad, path);
    if (!st) st = json_token_name(j, "unk_token", nm->unk, sizeof nm->unk, path);
    if (!st) st = json_token_name(j, "mask_token", nm->mask, sizeof nm->mask, path);
    json_t *dec = json_object_get(j, "added_tokens_decoder");
    if (!st && dec) {
        if (!json_is_object(dec)) {
            st = gc_set_error(GC_ERR_FORMAT, "%s: added_tokens_decoder is not an object", path);
        } else {
            const char *key;
            json_t *x;
            json_object_foreach(dec, key, x) {
                char *end;
                long id = strtol(key, &end, 10);
                if (*end || end == key || !json_is_object(x)) {
                    st = gc_set_error(GC_ERR_FORMAT, "%s: bad added_tokens_decoder entry", path);
                    break;
                }
                if ((st = json_added_token(t, x, id, path))) break;
            }
        }
    }
    json_decref(j);
    return st;
}

/* tokenizer.json: its vocabulary and added tokens (its normalizer and WordPiece settings are
 * not what BertTokenizerFast runs; see read_tokenizer_config). *has_vocab says whether it held
 * a vocabulary. */
static gc_status read_tokenizer_json(gc_tokenizer *t, const char *path, int *has_vocab) {
    json_t *j;
    *has_vocab = 0;
    gc_status st = load_json(path, &j);
    if (st) return st;
    json_t *model = json_object_get(j, "model");
    if (!json_is_object(model)) {
        st = gc_set_error(GC_ERR_FORMAT, "%s: no \"model\" object", path);
        goto done;
    }
    json_t *type = json_object_get(model, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "WordPiece") != 0)) {
        st = gc_set_error(GC_ERR_UNSUPPORTED, "%s: model type %s is not supported (only WordPiece)",
                          path, json_is_string(type) ? json_string_value(type) : "?");
        goto done;
    }
    json_t *vocab = json_object_get(model, "vocab");
    if (vocab && !json_is_object(vocab)) {
        st = gc_set_error(GC_ERR_FORMAT, "%s: model.vocab is not an object", path);
        goto done;
    }
    if (vocab && json_object_size(vocab) > 0) {
        const char *key;
        json_t *val;
        json_object_foreach(vocab, key, val) {
            if (!json_is_integer(val) || json_integer_value(val) < 0 ||
                json_integer_value(val) >= MAX_ID) {
                st = gc_set_error(GC_ERR_FORMAT, "%s: model.vocab[\"%.64s\"] is not a valid id",
                                  path, key);
                goto done;
            }
            size_t klen = strlen(key);
            if (klen == 0) continue;
            if ((st = vocab_add(t, key, klen, (int32_t)json_integer_value(val), path,
                                (long)json_integer_value(val))))
                goto done;
        }
        if ((st = vocab_index(t, path))) goto done;
        /* two tokens with one id would make ids ambiguous */
        unsigned char *seen = calloc((size_t)t->vocab_size, 1);
        if (!seen) {
            st = gc_set_error(GC_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int k = 0; k < t->n_entries && !st; k++) {
            if (seen[t->entries[k].id])
                st = gc_set_error(GC_ERR_FORMAT, "%s: id %d is given to two tokens", path,
                                  (int)t->entries[k].id);
            seen[t->entries[k].id] = 1;
        }
        free(seen);
        if (st) goto done;
        *has_vocab = 1;
    }
    json_t *added = json_object_get(j, "added_tokens");
    if (added && !json_is_array(added)) {
        st = gc_set_error(GC_ERR_FORMAT, "%s: added_tokens is not an array", path);
        goto done;
    }
    size_t i;
    json_t *x;
    json_array_foreach(added, i, x) {
        json_t *id = json_object_get(x, "id");
        if (!json_is_integer(id)) {
            st = gc_set_error(GC_ERR_FORMAT, "%s: added_tokens[%zu] has no id", path, i);
            goto done;
        }
        if ((st = json_added_token(t, x, json_integer_value(id), path))) goto done;
    }
done:
    json_decref(j);
    return st;
}

gc_status gc_tokenizer_load(gc_tokenizer **out, const char *model_dir) {
    if (!out || !model_dir) return gc_set_error(GC_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    if (strlen(model_dir) > 4000) return gc_set_error(GC_ERR_INVALID_ARG, "path too long");
    char path[4096 + 32];
    gc_tokenizer *t = tokenizer_new();
    if (!t) return gc_set_error(GC_ERR_NOMEM, "out of memory for the tokenizer");
    special_names names = k_default_names;
    int has_vocab = 0, has_json = 0;
    gc_status st = GC_OK;

    snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
    if (file_exists(path)) st = read_tokenizer_config(t, &names, path);
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    if (!st && file_exists(path)) {
        has_json = 1;
        st = read_tokenizer_json(t, path, &has_vocab);
    }
    if (!st && !has_vocab) {
        snprintf(path, sizeof path, "%s/vocab.txt", model_dir);
        if (!file_exists(path) && !has_json) {
            st = gc_set_error(GC_ERR_IO, "%s: neither vocab.txt nor tokenizer.json found",
                              model_dir);
        } else {
            char *data;
            size_t len;
            st = read_file(path, &data, &len);
            if (!st) {
                st = vocab_parse_lines(t, data, len, path);
                free(data);
            }
        }
    }
    if (!st) st = resolve_specials(t, &names, model_dir);
    if (st) {
        gc_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding */

typedef struct enc_state {
    const gc_tokenizer *t;
    int32_t *ids; /* content ids (after [CLS]) */
    int n, cap;   /* written, allowed */
    /* the current word: UTF-8 bytes of its first MAX_WORD_CHARS characters */
    char word[MAX_WORD_CHARS * 4];
    uint16_t char_end[MAX_WORD_CHARS + 1]; /* byte offset after each character */
    size_t wchars;                         /* characters seen, stored or not */
    /* kept non-starters after decomposition, waiting for canonical ordering; a run longer
     * than any word WordPiece looks into only needs to be counted, not ordered */
    uint32_t run[MAX_WORD_CHARS + 1];
    uint8_t run_ccc[MAX_WORD_CHARS + 1];
    int nrun;
} enc_state;

static void emit(enc_state *s, int32_t id) {
    if (s->n < s->cap) s->ids[s->n++] = id;
}

/* Greedy longest-match-first WordPiece of the current word. */
static void end_word(enc_state *s) {
    const gc_tokenizer *t = s->t;
    size_t seen = s->wchars;
    s->wchars = 0;
    if (seen == 0 || s->n >= s->cap) return;
    if (seen > MAX_WORD_CHARS) {
        emit(s, t->unk);
        return;
    }
    int nch = (int)seen;
    int32_t pieces[MAX_WORD_CHARS];
    int np = 0, ci = 0;
    while (ci < nch) {
        size_t start = ci ? s->char_end[ci - 1] : 0;
        int found = -1, ce = nch;
        for (; ce > ci; ce--) {
            found = vocab_find(t, ci > 0, s->word + start, s->char_end[ce - 1] - start);
            if (found >= 0) break;
        }
        if (found < 0) {
            emit(s, t->unk);
            return;
        }
        pieces[np++] = found;
        ci = ce;
    }
    for (int i = 0; i < np; i++) emit(s, pieces[i]);
}

static void word_add(enc_state *s, uint32_t cp) {
    if (s->wchars < MAX_WORD_CHARS) {
        size_t at = s->wchars ? s->char_end[s->wchars - 1] : 0;
        s->char_end[s->wchars] = (uint16_t)(at + (size_t)utf8_encode(cp, s->word + at));
    }
    s->wchars++;
}

/* Pre-tokenizer: whitespace ends a word, punctuation is a word of its own. */
static void pre_in(enc_state *s, uint32_t cp) {
    if (gc_tok_is_whitespace(cp)) {
        end_word(s);
    } else if (gc_tok_is_punct(cp)) {
        end_word(s);
        word_add(s, cp);
        end_word(s);
    } else {
        word_add(s, cp);
    }
}

static void lower_in(enc_state *s, uint32_t cp) {
    if (!s->t->lowercase) {
        pre_in(s, cp);
        return;
    }
    uint32_t l[2];
    int n = gc_tok_lower_full(cp, l);
    for (int i = 0; i < n; i++) pre_in(s, l[i]);
}

/* Canonical ordering: a stable sort of the pending non-starters by combining class. */
static void flush_run(enc_state *s) {
    for (int i = 1; i < s->nrun; i++) {
        uint32_t c = s->run[i];
        uint8_t k = s->run_ccc[i];
        int j = i - 1;
        for (; j >= 0 && s->run_ccc[j] > k; j--) {
            s->run[j + 1] = s->run[j];
            s->run_ccc[j + 1] = s->run_ccc[j];
        }
        s->run[j + 1] = c;
        s->run_ccc[j + 1] = k;
    }
    for (int i = 0; i < s->nrun; i++) lower_in(s, s->run[i]);
    s->nrun = 0;
}

/* NFD, then drop nonspacing marks. A dropped mark still ends a run of non-starters when it
 * is itself a starter, because ordering happens before the marks are removed. */
static void nfd_in(enc_state *s, uint32_t cp) {
    if (!s->t->strip_accents) {
        lower_in(s, cp);
        return;
    }
    if (cp < 0x80) {
        if (s->nrun) flush_run(s);
        lower_in(s, cp);
        return;
    }
    uint32_t d[8];
    int n = gc_tok_decompose(cp, d);
    for (int i = 0; i < n; i++) {
        int ccc = gc_tok_ccc(d[i]);
        if (gc_tok_is_mn(d[i])) {
            if (ccc == 0 && s->nrun) flush_run(s);
        } else if (ccc == 0) {
            if (s->nrun) flush_run(s);
            lower_in(s, d[i]);
        } else {
            if (s->nrun == MAX_WORD_CHARS + 1) flush_run(s);
            s->run[s->nrun] = d[i];
            s->run_ccc[s->nrun] = (uint8_t)ccc;
            s->nrun++;
        }
    }
}

/* Clean text and CJK spacing. */
static void raw_in(enc_state *s, uint32_t cp) {
    if (cp == 0 || cp == 0xFFFD || gc_tok_is_control(cp)) return;
    if (gc_tok_is_whitespace(cp)) cp = ' ';
    if (s->t->chinese && gc_tok_is_cjk(cp)) {
        nfd_in(s, ' ');
        nfd_in(s, cp);
        nfd_in(s, ' ');
        return;
    }
    nfd_in(s, cp);
}

/* End of a stretch of text between added tokens: each is normalized on its own. */
static void segment_end(enc_state *s) {
    if (s->nrun) flush_run(s);
    end_word(s);
}

/* Length of the longest special token starting at p, with its id. */
static size_t match_special(const gc_tokenizer *t, const char *p, size_t left, int32_t *id) {
    size_t best = 0;
    for (int i = 0; i < t->n_specials; i++) {
        const special_token *x = &t->specials[i];
        if (x->len > best && x->len <= left && memcmp(p, t->arena + x->off, x->len) == 0) {
            best = x->len;
            *id = x->id;
        }
    }
    return best;
}

gc_status gc_tokenizer_encode(const gc_tokenizer *t, const char *text, size_t len, int max_len,
                              int32_t *ids, int *n) {
    if (!t || (!text && len) || !ids || !n)
        return gc_set_error(GC_ERR_INVALID_ARG, "tokenizer_encode: NULL argument");
    if (max_len < 2)
        return gc_set_error(GC_ERR_INVALID_ARG, "tokenizer_encode: max_len %d < 2", max_len);
    *n = 0;
    size_t bad = utf8_check(text, len);
    if (bad != len)
        return gc_set_error(GC_ERR_FORMAT, "tokenizer_encode: invalid UTF-8 at byte %zu", bad);

    enc_state s;
    s.t = t;
    s.ids = ids + 1;
    s.n = 0;
    s.cap = max_len - 2;
    s.wchars = 0;
    s.nrun = 0;
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0;
    while (i < len && s.n < s.cap) {
        int32_t sid;
        size_t m;
        if (t->special_first[u[i]] && (m = match_special(t, text + i, len - i, &sid)) > 0) {
            segment_end(&s);
            emit(&s, sid);
            i += m;
            continue;
        }
        int k;
        uint32_t cp = utf8_decode(u + i, &k);
        i += (size_t)k;
        raw_in(&s, cp);
    }
    segment_end(&s);
    ids[0] = t->cls;
    ids[s.n + 1] = t->sep;
    *n = s.n + 2;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Queries */

int gc_tokenizer_vocab_size(const gc_tokenizer *t) {
    return t ? t->vocab_size : 0;
}

int gc_tokenizer_token_id(const gc_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    return vocab_find(t, 0, token, strlen(token));
}

int gc_tokenizer_cls_id(const gc_tokenizer *t) {
    return t ? t->cls : -1;
}

int gc_tokenizer_sep_id(const gc_tokenizer *t) {
    return t ? t->sep : -1;
}

int gc_tokenizer_pad_id(const gc_tokenizer *t) {
    return t ? t->pad : -1;
}

int gc_tokenizer_unk_id(const gc_tokenizer *t) {
    return t ? t->unk : -1;
}

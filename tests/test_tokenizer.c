/* test_tokenizer.c: the WordPiece tokenizer against ids from Hugging Face's BertTokenizerFast
 * (tests/fixtures/tokenizer/cases.json, made by scripts/make_tokenizer_fixtures.py), plus
 * hostile vocabularies and model folders, invalid UTF-8, and encoding from many threads. */
#include "gc_tokenizer.h"
#include "test_util.h"
#include "text/tokenizer_internal.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXDIR GC_SOURCE_DIR "/tests/fixtures/tokenizer"
#define MAXLEN 512

static int g_printed;

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n;
}

/* A scratch model folder under the build tree. */
static void scratch_dir(char *dir, size_t cap, const char *name) {
    snprintf(dir, cap, "%s/test_tokenizer_tmp", GC_BINARY_DIR);
    mkdir(dir, 0755);
    snprintf(dir, cap, "%s/test_tokenizer_tmp/%s", GC_BINARY_DIR, name);
    mkdir(dir, 0755);
}

static void put(const char *dir, const char *file, const char *text) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (text)
        CHECK(write_file(path, text, strlen(text)), "cannot write %s", path);
    else
        unlink(path);
}

static int copy_file(const char *src, const char *dir, const char *name) {
    FILE *f = fopen(src, "rb");
    if (!f) return 0;
    char *buf = malloc(1 << 22);
    size_t n = buf ? fread(buf, 1, 1 << 22, f) : 0;
    fclose(f);
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int ok = buf && n > 0 && n < (1 << 22) && write_file(path, buf, n);
    free(buf);
    return ok;
}

/* Encode text and compare with want (n_want ids); prints the first mismatches. */
static int check_ids(const gc_tokenizer *t, const char *group, const char *text, size_t len,
                     int max_len, const int32_t *want, int n_want) {
    int32_t got[MAXLEN];
    int n = -1;
    gc_status st = gc_tokenizer_encode(t, text, len, max_len, got, &n);
    int ok = st == GC_OK && n == n_want && memcmp(got, want, (size_t)n * sizeof *got) == 0;
    if (!ok && g_printed++ < 10) {
        fprintf(stderr, "MISMATCH [%s] max_len %d text \"%.80s\"\n  want (%d):", group, max_len,
                text, n_want);
        for (int i = 0; i < n_want && i < 40; i++) fprintf(stderr, " %d", (int)want[i]);
        fprintf(stderr, "\n  got  (%d, %s):", n, gc_status_str(st));
        for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", (int)got[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

static gc_status open_group(gc_tokenizer **t, json_t *g, int source_override) {
    const char *source = json_string_value(json_object_get(g, "source"));
    gc_tokenizer_config cfg = {1, -1, 1};
    json_t *x;
    if ((x = json_object_get(g, "lowercase"))) cfg.lowercase = (int)json_integer_value(x);
    if ((x = json_object_get(g, "strip_accents"))) cfg.strip_accents = (int)json_integer_value(x);
    if ((x = json_object_get(g, "tokenize_chinese_chars")))
        cfg.tokenize_chinese_chars = (int)json_integer_value(x);
    if (!source) return GC_ERR_FORMAT;
    if (strcmp(source, "model") == 0 && !source_override) return gc_tokenizer_load(t, GC_MODEL_DIR);
    if (strcmp(source, "folder") == 0) {
        /* the model's tokenizer.json beside the group's tokenizer_config.json */
        char dir[1024];
        scratch_dir(dir, sizeof dir, json_string_value(json_object_get(g, "name")));
        char *conf = json_dumps(json_object_get(g, "tokenizer_config"), 0);
        put(dir, "tokenizer_config.json", conf);
        free(conf);
        if (!copy_file(GC_MODEL_DIR "/tokenizer.json", dir, "tokenizer.json")) return GC_ERR_IO;
        return gc_tokenizer_load(t, dir);
    }
    if (strcmp(source, "model") == 0 || strcmp(source, "model-vocab") == 0)
        return gc_tokenizer_from_vocab(t, GC_MODEL_DIR "/vocab.txt", &cfg);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FIXDIR, source);
    return gc_tokenizer_from_vocab(t, path, &cfg);
}

/* Every case of every group; source_override reads the model group from vocab.txt instead of
 * the model folder (so both loaders meet the same reference). Returns mismatches. */
static int run_fixtures(json_t *root, int source_override, int *n_seq) {
    int bad = 0;
    size_t gi;
    json_t *g;
    json_array_foreach(json_object_get(root, "groups"), gi, g) {
        const char *name = json_string_value(json_object_get(g, "name"));
        if (source_override && strcmp(name, "minilm") != 0) continue;
        gc_tokenizer *t = NULL;
        gc_status st = open_group(&t, g, source_override);
        CHECK(st == GC_OK, "group %s: cannot load tokenizer: %s", name, gc_last_error());
        if (st) continue;
        size_t ci;
        json_t *c;
        int gbad = 0;
        json_array_foreach(json_object_get(g, "cases"), ci, c) {
            json_t *text = json_object_get(c, "text"), *ids = json_object_get(c, "ids");
            int32_t want[MAXLEN];
            int n_want = (int)json_array_size(ids);
            if (n_want > MAXLEN) n_want = MAXLEN;
            for (int i = 0; i < n_want; i++)
                want[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
            size_t li;
            json_t *lj;
            json_array_foreach(json_object_get(c, "max_len"), li, lj) {
                int L = (int)json_integer_value(lj);
                /* the fixture keeps ids at the largest max_len; shorter ones keep the head */
                int32_t w[MAXLEN];
                int nw = n_want <= L ? n_want : L;
                memcpy(w, want, (size_t)nw * sizeof *w);
                if (n_want > L) w[L - 1] = want[n_want - 1];
                (*n_seq)++;
                if (!check_ids(t, name, json_string_value(text), json_string_length(text), L, w,
                               nw))
                    gbad++;
            }
        }
        CHECK(gbad == 0, "group %s%s: %d mismatching sequences", name,
              source_override ? " (from vocab.txt)" : "", gbad);
        bad += gbad;
        gc_tokenizer_free(t);
    }
    return bad;
}

/* ------------------------------------------------------------------------------------------ */

static void test_model_basics(void) {
    gc_tokenizer *t = NULL;
    gc_status st = gc_tokenizer_load(&t, GC_MODEL_DIR);
    CHECK(st == GC_OK, "the model folder %s must load (%s)", GC_MODEL_DIR, gc_last_error());
    if (st) return;
    CHECK(gc_tokenizer_vocab_size(t) == 30522, "vocab size %d", gc_tokenizer_vocab_size(t));
    CHECK(gc_tokenizer_cls_id(t) == 101, "cls %d", gc_tokenizer_cls_id(t));
    CHECK(gc_tokenizer_sep_id(t) == 102, "sep %d", gc_tokenizer_sep_id(t));
    CHECK(gc_tokenizer_pad_id(t) == 0, "pad %d", gc_tokenizer_pad_id(t));
    CHECK(gc_tokenizer_unk_id(t) == 100, "unk %d", gc_tokenizer_unk_id(t));
    CHECK(gc_tokenizer_token_id(t, "hello") == 7592, "hello %d", gc_tokenizer_token_id(t, "hello"));
    CHECK(gc_tokenizer_token_id(t, "##ing") >= 0, "##ing missing");
    CHECK(gc_tokenizer_token_id(t, "no-such-token") == -1, "unknown token found");
    CHECK(gc_tokenizer_token_id(t, "") == -1, "empty token found");

    int32_t ids[MAXLEN];
    int n = -1;
    CHECK_OK(gc_tokenizer_encode(t, NULL, 0, 8, ids, &n));
    CHECK(n == 2 && ids[0] == 101 && ids[1] == 102, "empty text gives [CLS][SEP] (n=%d)", n);
    CHECK_OK(gc_tokenizer_encode(t, "hello world", 11, 2, ids, &n));
    CHECK(n == 2 && ids[0] == 101 && ids[1] == 102, "max_len 2 keeps only [CLS][SEP]");
    CHECK(gc_tokenizer_encode(t, "x", 1, 1, ids, &n) == GC_ERR_INVALID_ARG, "max_len 1");
    CHECK(gc_tokenizer_encode(t, "x", 1, 0, ids, &n) == GC_ERR_INVALID_ARG, "max_len 0");
    CHECK(gc_tokenizer_encode(NULL, "x", 1, 8, ids, &n) == GC_ERR_INVALID_ARG, "NULL tokenizer");
    CHECK(gc_tokenizer_encode(t, NULL, 3, 8, ids, &n) == GC_ERR_INVALID_ARG, "NULL text");

    /* NUL bytes are dropped by clean-text, like every control character */
    int32_t a[16], b[16];
    int na, nb;
    CHECK_OK(gc_tokenizer_encode(t, "ab\0cd\x01", 6, 16, a, &na));
    CHECK_OK(gc_tokenizer_encode(t, "abcd", 4, 16, b, &nb));
    CHECK(na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0, "NUL inside text not dropped");

    /* invalid UTF-8 is refused wherever it is */
    static const char *bad[] = {
        "\xff",         "\xc0\x80",         "\xc1\xbf",         "\xe0\x80\x80", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5",         "\xe2\x82",
        "\x80",         "ok \xbf",          "caf\xc3",          "\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        n = -1;
        st = gc_tokenizer_encode(t, bad[i], strlen(bad[i]), 16, ids, &n);
        CHECK(st == GC_ERR_FORMAT, "invalid UTF-8 #%zu gave %s", i, gc_status_str(st));
        CHECK(strstr(gc_last_error(), "UTF-8") != NULL, "message: %s", gc_last_error());
    }
    /* an invalid byte far past the truncation point is still an error */
    char longbad[4000];
    memset(longbad, 'a', sizeof longbad);
    for (size_t i = 1; i < sizeof longbad; i += 2) longbad[i] = ' ';
    longbad[sizeof longbad - 1] = '\xff';
    CHECK(gc_tokenizer_encode(t, longbad, sizeof longbad, 8, ids, &n) == GC_ERR_FORMAT,
          "late invalid byte");
    static const char *good[] = {"\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbf", "\xc2\x80",
                                 "\xee\x80\x80"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_OK(gc_tokenizer_encode(t, good[i], strlen(good[i]), 16, ids, &n));
    gc_tokenizer_free(t);
    gc_tokenizer_free(NULL);
}

/* Tokenizer tables: the places where tokenizers' Unicode data differs from utf8proc's. */
static void test_char_classes(void) {
    uint32_t l[2];
    CHECK(gc_tok_lower_full(0x130, l) == 2 && l[0] == 'i' && l[1] == 0x307, "U+0130 lowercase");
    CHECK(gc_tok_lower_full('A', l) == 1 && l[0] == 'a', "A lowercase");
    CHECK(gc_tok_lower_full(0x410, l) == 1 && l[0] == 0x430, "Cyrillic A lowercase");
    CHECK(gc_tok_is_punct(0x3002) && gc_tok_is_punct('-') && gc_tok_is_punct('$') &&
              gc_tok_is_punct('^') && gc_tok_is_punct('`'),
          "punctuation");
    CHECK(!gc_tok_is_punct(0x61D) && !gc_tok_is_punct(0x2E43), "punctuation since Unicode 8");
    CHECK(gc_tok_is_control(0x200B) && gc_tok_is_control(0xAD) && gc_tok_is_control(0xE000) &&
              gc_tok_is_control(0x0B) && gc_tok_is_control(0x85),
          "controls");
    CHECK(!gc_tok_is_control('\t') && !gc_tok_is_control('\n') && !gc_tok_is_control('\r') &&
              !gc_tok_is_control(0x378),
          "not controls");
    CHECK(gc_tok_is_whitespace(0x3000) && gc_tok_is_whitespace(0xA0) &&
              !gc_tok_is_whitespace(0x200B),
          "whitespace");
    CHECK(gc_tok_is_cjk(0x4E2D) && !gc_tok_is_cjk(0x3042) && !gc_tok_is_cjk(0xAC00), "CJK");
    CHECK(gc_tok_is_mn(0x301) && !gc_tok_is_mn(0x7FD) && gc_tok_is_mn(0x1734), "marks");
    uint32_t d[8];
    CHECK(gc_tok_decompose(0xE9, d) == 2 && d[0] == 'e' && d[1] == 0x301, "NFD of e-acute");
    CHECK(gc_tok_decompose(0xAC01, d) == 3, "NFD of Hangul");
    CHECK(gc_tok_decompose(0x11938, d) == 1, "NFD newer than tokenizers");
    CHECK(gc_tok_ccc(0x1D165) == 216 && gc_tok_ccc(0x7FD) == 0 && gc_tok_ccc('a') == 0, "ccc");
}

static gc_status vocab_status(const char *text, size_t n) {
    gc_tokenizer *t = (gc_tokenizer *)1;
    gc_status st = gc_tokenizer_from_memory(&t, text, n, NULL);
    if (st == GC_OK)
        gc_tokenizer_free(t);
    else if (t != NULL)
        return GC_ERR_INTERNAL; /* *out must be NULL on failure */
    return st;
}

static void test_hostile_vocab(void) {
    const char *sp = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    CHECK(vocab_status(sp, strlen(sp)) == GC_OK, "minimal vocabulary: %s", gc_last_error());
    CHECK(vocab_status("", 0) == GC_ERR_FORMAT, "empty vocabulary");
    CHECK(strstr(gc_last_error(), "empty") != NULL, "message: %s", gc_last_error());
    CHECK(vocab_status(NULL, 0) == GC_ERR_FORMAT, "NULL vocabulary");
    CHECK(vocab_status("\n\n\r\n\n", 5) == GC_ERR_FORMAT, "only empty lines");
    const char *no_unk = "[PAD]\n[CLS]\n[SEP]\nhello\n";
    CHECK(vocab_status(no_unk, strlen(no_unk)) == GC_ERR_FORMAT, "no [UNK]");
    CHECK(strstr(gc_last_error(), "[UNK]") != NULL, "message: %s", gc_last_error());
    const char *no_cls = "[PAD]\n[UNK]\n[SEP]\n";
    CHECK(vocab_status(no_cls, strlen(no_cls)) == GC_ERR_FORMAT, "no [CLS]");
    const char *dup = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n";
    CHECK(vocab_status(dup, strlen(dup)) == GC_ERR_FORMAT, "duplicate token");
    CHECK(strstr(gc_last_error(), "hello") != NULL, "message: %s", gc_last_error());
    const char nul[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\0cd\n";
    CHECK(vocab_status(nul, sizeof nul - 1) == GC_ERR_FORMAT, "NUL in a token");
    const char *badutf = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\xff\n";
    CHECK(vocab_status(badutf, strlen(badutf)) == GC_ERR_FORMAT, "invalid UTF-8 token");
    gc_tokenizer_config cfg = {1, 2, 1};
    gc_tokenizer *t = NULL;
    CHECK(gc_tokenizer_from_memory(&t, sp, strlen(sp), &cfg) == GC_ERR_INVALID_ARG, "bad config");
    CHECK(gc_tokenizer_from_memory(NULL, sp, strlen(sp), NULL) == GC_ERR_INVALID_ARG, "NULL out");

    /* CRLF and CR line ends, empty lines keep their ids */
    const char *crlf = "[PAD]\r\n[UNK]\r[CLS]\n\n[SEP]\r\nhello\r\n";
    CHECK_OK(gc_tokenizer_from_memory(&t, crlf, strlen(crlf), NULL));
    if (t) {
        CHECK(gc_tokenizer_token_id(t, "[CLS]") == 2 && gc_tokenizer_token_id(t, "[SEP]") == 4 &&
                  gc_tokenizer_token_id(t, "hello") == 5 && gc_tokenizer_vocab_size(t) == 6,
              "line numbering with CRLF/CR/empty lines");
        int32_t ids[8];
        int n;
        CHECK_OK(gc_tokenizer_encode(t, "Hello hi", 8, 8, ids, &n));
        CHECK(n == 4 && ids[1] == 5 && ids[2] == 1, "encode with a tiny vocabulary (n=%d)", n);
        gc_tokenizer_free(t);
    }

    /* binary garbage: never a crash; an error unless it happens to hold the special tokens */
    uint64_t x = 88172645463325252ull;
    char buf[600];
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)(round * 2);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (char)(x & 0xFF);
        }
        gc_status st = vocab_status(buf, n);
        CHECK(st == GC_ERR_FORMAT, "garbage vocabulary %d gave %s", round, gc_status_str(st));
    }
    /* the specials followed by garbage lines still load or fail cleanly */
    for (int round = 0; round < 100; round++) {
        size_t n = strlen(sp);
        memcpy(buf, sp, n);
        for (size_t i = 0; i < 200; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[n + i] = (char)((x & 3) == 0 ? '\n' : (x >> 8) & 0xFF);
        }
        gc_status st = vocab_status(buf, n + 200);
        CHECK(st == GC_OK || st == GC_ERR_FORMAT, "garbage tail gave %s", gc_status_str(st));
    }

    CHECK(gc_tokenizer_from_vocab(&t, "/nonexistent/vocab.txt", NULL) == GC_ERR_IO,
          "missing vocab file");
    CHECK(strstr(gc_last_error(), "/nonexistent/vocab.txt") != NULL, "message: %s",
          gc_last_error());
}

static gc_status load_status(const char *dir) {
    gc_tokenizer *t = NULL;
    gc_status st = gc_tokenizer_load(&t, dir);
    gc_tokenizer_free(t);
    return st;
}

static void test_hostile_folders(void) {
    char dir[1024];
    scratch_dir(dir, sizeof dir, "empty");
    put(dir, "vocab.txt", NULL);
    put(dir, "tokenizer.json", NULL);
    put(dir, "tokenizer_config.json", NULL);
    CHECK(load_status(dir) == GC_ERR_IO, "folder without vocabulary");
    CHECK(load_status("/nonexistent-folder") == GC_ERR_IO, "missing folder");

    /* vocab.txt with a slow-tokenizer config: cased */
    scratch_dir(dir, sizeof dir, "cased");
    put(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nHello\nhello\n");
    put(dir, "tokenizer_config.json", "{\"do_lower_case\": false, \"strip_accents\": null}");
    gc_tokenizer *t = NULL;
    CHECK_OK(gc_tokenizer_load(&t, dir));
    if (t) {
        int32_t ids[8];
        int n;
        CHECK_OK(gc_tokenizer_encode(t, "Hello hello", 11, 8, ids, &n));
        CHECK(n == 4 && ids[1] == 4 && ids[2] == 5, "cased folder");
        gc_tokenizer_free(t);
    }
    put(dir, "tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
    CHECK(load_status(dir) == GC_ERR_FORMAT, "non-boolean do_lower_case");
    put(dir, "tokenizer_config.json", "{\"do_lower_case\": tru");
    CHECK(load_status(dir) == GC_ERR_FORMAT, "truncated tokenizer_config.json");
    put(dir, "tokenizer_config.json", "[1, 2]");
    CHECK(load_status(dir) == GC_ERR_FORMAT, "tokenizer_config.json not an object");
    put(dir, "tokenizer_config.json", NULL);
    put(dir, "vocab.txt", "");
    CHECK(load_status(dir) == GC_ERR_FORMAT, "empty vocab.txt");
    put(dir, "vocab.txt", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe");
    CHECK(load_status(dir) == GC_ERR_FORMAT, "binary vocab.txt");

    /* tokenizer.json variants: its vocabulary and added tokens count, its normalizer does not
     * (BertTokenizerFast builds that from tokenizer_config.json, defaults included) */
    scratch_dir(dir, sizeof dir, "json");
    put(dir, "vocab.txt", NULL);
    put(dir, "tokenizer_config.json", "{\"unk_token\": \"<unk>\", \"do_lower_case\": false}");
    const char *head = "{\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true,"
                       "\"strip_accents\":null,\"handle_chinese_chars\":true,\"clean_text\":true},"
                       "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},";
    char json[2048];
    snprintf(json, sizeof json,
             "%s\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"<unk>\",\"vocab\":{\"[PAD]\":0,"
             "\"<unk>\":1,\"[CLS]\":2,\"[SEP]\":3,\"Hi\":4,\"hi\":5,\"<x>\":6}},"
             "\"added_tokens\":[{\"id\":6,\"content\":\"<x>\",\"normalized\":false}]}",
             head);
    put(dir, "tokenizer.json", json);
    CHECK_OK(gc_tokenizer_load(&t, dir));
    if (t) {
        int32_t ids[12];
        int n;
        CHECK_OK(gc_tokenizer_encode(t, "Hi[SEP]hi x<x>", 14, 12, ids, &n));
        CHECK(n == 7 && ids[1] == 4 && ids[2] == 3 && ids[3] == 5 && ids[4] == 1 && ids[5] == 6,
              "cased, renamed unk token, added tokens (n=%d)", n);
        CHECK(gc_tokenizer_unk_id(t) == 1, "unk id");
        gc_tokenizer_free(t);
    }
    /* without tokenizer_config.json the defaults (uncased) hold, whatever tokenizer.json says */
    put(dir, "tokenizer_config.json", NULL);
    snprintf(json, sizeof json,
             "{\"normalizer\":{\"type\":\"Lowercase\"},\"pre_tokenizer\":null,\"model\":{"
             "\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
             "\"[SEP]\":3,\"Hi\":4,\"hi\":5}}}");
    put(dir, "tokenizer.json", json);
    CHECK_OK(gc_tokenizer_load(&t, dir));
    if (t) {
        int32_t ids[8];
        int n;
        CHECK_OK(gc_tokenizer_encode(t, "HI Hi", 5, 8, ids, &n));
        CHECK(n == 4 && ids[1] == 5 && ids[2] == 5, "default lowercasing (n=%d)", n);
        gc_tokenizer_free(t);
    }
    static const char *bad_models[] = {
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2}}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
        "\"[SEP]\":2}}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
        "\"[SEP]\":3,\"[SEP]\":4}}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
        "\"[SEP]\":2000000000}}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
        "\"[SEP]\":-3}}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":\"1\"}}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":[1,2,3]}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}",
        "\"model\":17}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
        "\"[SEP]\":3}},\"added_tokens\":[{\"content\":\"x\"}]}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
        "\"[SEP]\":3}},\"added_tokens\":{}}",
        "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
        "\"[SEP]\":3}},\"added_tokens\":[{\"id\":9,\"content\":\"\\u00ff\\ud800\"}]}",
    };
    for (size_t i = 0; i < sizeof bad_models / sizeof *bad_models; i++) {
        snprintf(json, sizeof json, "%s%s", head, bad_models[i]);
        put(dir, "tokenizer.json", json);
        gc_status st = load_status(dir);
        /* the empty-vocab model falls back to vocab.txt, which is absent */
        CHECK(st == GC_ERR_FORMAT || (i == 7 && st == GC_ERR_IO), "bad tokenizer.json #%zu: %s", i,
              gc_status_str(st));
    }
    static const char *bad_configs[] = {
        "{\"unk_token\": 5}",
        "{\"cls_token\": null}",
        "{\"sep_token\": {\"content\": \"[NOPE]\"}}",
        "{\"added_tokens_decoder\": {\"x\": {\"content\": \"[CLS]\"}}}",
        "{\"added_tokens_decoder\": [1]}",
        "{\"tokenize_chinese_chars\": null}"};
    for (size_t i = 0; i < sizeof bad_configs / sizeof *bad_configs; i++) {
        snprintf(json, sizeof json,
                 "%s\"model\":{\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3}}}",
                 head);
        put(dir, "tokenizer.json", json);
        put(dir, "tokenizer_config.json", bad_configs[i]);
        gc_status st = load_status(dir);
        CHECK(st == GC_ERR_FORMAT, "bad tokenizer_config.json #%zu gave %s", i, gc_status_str(st));
    }
    static const char *unsupported[][2] = {
        {"{}", "{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}"},
        {"{}", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,"
               "\"[CLS]\":2,\"[SEP]\":3}},\"added_tokens\":[{\"id\":5,\"content\":\"<x>\","
               "\"normalized\":true}]}"},
        {"{\"tokenizer_class\": \"MPNetTokenizer\"}",
         "{\"model\":{\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3}}}"},
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
        put(dir, "tokenizer_config.json", unsupported[i][0]);
        put(dir, "tokenizer.json", unsupported[i][1]);
        gc_status st = load_status(dir);
        CHECK(st == GC_ERR_UNSUPPORTED, "unsupported folder #%zu gave %s (%s)", i,
              gc_status_str(st), gc_last_error());
    }
    put(dir, "tokenizer_config.json", NULL);
    /* the real tokenizer.json cut short */
    char *real = NULL;
    size_t real_len = 0;
    FILE *f = fopen(GC_MODEL_DIR "/tokenizer.json", "rb");
    CHECK(f != NULL, "cannot open the model's tokenizer.json");
    if (f) {
        real = malloc(1 << 20);
        real_len = real ? fread(real, 1, 1 << 20, f) : 0;
        fclose(f);
    }
    if (real && real_len > 1000) {
        size_t cuts[] = {1, 10, real_len / 3, real_len / 2, real_len - 2};
        for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
            real[cuts[i]] = '\0';
            put(dir, "tokenizer.json", real);
            CHECK(load_status(dir) == GC_ERR_FORMAT, "tokenizer.json cut at %zu", cuts[i]);
        }
    }
    free(real);
    put(dir, "tokenizer.json", NULL);
}

/* Many threads encoding with one tokenizer give the serial answers. */
static void test_threads(json_t *root) {
    gc_tokenizer *t = NULL;
    if (gc_tokenizer_load(&t, GC_MODEL_DIR) != GC_OK) return; /* reported elsewhere */
    json_t *cases = json_object_get(json_array_get(json_object_get(root, "groups"), 0), "cases");
    int nc = (int)json_array_size(cases);
    int32_t *serial = malloc((size_t)nc * 128 * sizeof *serial);
    int *ns = malloc((size_t)nc * sizeof *ns);
    int bad = 0;
    if (!serial || !ns) {
        CHECK(0, "out of memory");
        goto out;
    }
    for (int i = 0; i < nc; i++) {
        json_t *x = json_object_get(json_array_get(cases, (size_t)i), "text");
        if (gc_tokenizer_encode(t, json_string_value(x), json_string_length(x), 128,
                                serial + (size_t)i * 128, &ns[i]))
            ns[i] = -1;
    }
#pragma omp parallel for schedule(dynamic, 7) reduction(+ : bad)
    for (int k = 0; k < nc * 8; k++) {
        int i = (k * 7919) % nc;
        json_t *x = json_object_get(json_array_get(cases, (size_t)i), "text");
        int32_t ids[128];
        int n = -1;
        gc_status st =
            gc_tokenizer_encode(t, json_string_value(x), json_string_length(x), 128, ids, &n);
        if (st || n != ns[i] || memcmp(ids, serial + (size_t)i * 128, (size_t)n * sizeof *ids))
            bad++;
    }
    CHECK(bad == 0, "%d parallel encodings differ from serial ones", bad);
out:
    free(serial);
    free(ns);
    gc_tokenizer_free(t);
}

int main(void) {
    test_char_classes();
    test_model_basics();
    test_hostile_vocab();
    test_hostile_folders();

    json_error_t err;
    json_t *root = json_load_file(FIXDIR "/cases.json", JSON_ALLOW_NUL, &err);
    CHECK(root != NULL, "cannot read %s/cases.json: %s (line %d)", FIXDIR, err.text, err.line);
    if (root) {
        int n_seq = 0;
        int bad = run_fixtures(root, 0, &n_seq);
        int n_seq2 = 0;
        bad += run_fixtures(root, 1, &n_seq2);
        printf("reference sequences: %d (+%d from vocab.txt), mismatches: %d\n", n_seq, n_seq2,
               bad);
        CHECK(n_seq > 1500, "only %d reference sequences", n_seq);
        test_threads(root);
        json_decref(root);
    }
    return test_summary("test_tokenizer");
}

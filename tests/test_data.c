/* test_data.c: JSONL / JSONL.gz training data: good files, every kind of bad line (with
 * file:line in the message), broken gzip streams, files read through a pipe, one string field
 * of every line, and the real dev split. */
#include "gc_io.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define DEV_PATH GC_SOURCE_DIR "/data/debian-pkgs/dev.jsonl.gz"

/* gzip-compress `n` bytes (one member). */
static unsigned char *gz(const void *src, size_t n, size_t *out_len) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (unsigned char *)src;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static gc_dataset *load_text(const char *text) {
    gc_dataset *d = NULL;
    gc_status s = gc_dataset_load_memory(&d, text, strlen(text), "mem.jsonl");
    CHECK(s == GC_OK, "load: %s", gc_last_error());
    return d;
}

/* Expect a FORMAT error whose message holds `where` ("mem.jsonl:3:") and `what`. */
static void expect_bad_len(const char *text, size_t len, const char *where, const char *what) {
    gc_dataset *d = (gc_dataset *)1;
    gc_status s = gc_dataset_load_memory(&d, text, len, "mem.jsonl");
    CHECK(s == GC_ERR_FORMAT, "%s: got %s", what, gc_status_str(s));
    CHECK(d == NULL, "dataset cleared on failure");
    CHECK(strstr(gc_last_error(), where) != NULL, "message '%s' lacks '%s'", gc_last_error(),
          where);
    CHECK(strstr(gc_last_error(), what) != NULL, "message '%s' lacks '%s'", gc_last_error(), what);
    if (s == GC_OK) gc_dataset_free(d);
}

static void expect_bad(const char *text, const char *where, const char *what) {
    expect_bad_len(text, strlen(text), where, what);
}

static void test_good(void) {
    const char *text =
        "{\"query\": \"q one\", \"positive\": \"p one\", \"id\": 7, \"extra\": {\"x\": [1]}}\n"
        "\n"
        "   \t\r\n"
        "{\"positive\": \"caf\xc3\xa9 \\u00e9\\n\\\"x\\\"\", \"query\": \"q two\", "
        "\"negatives\": [\"n1\", \"n2\"]}\r\n"
        "{\"query\": \"\xe6\x97\xa5\xe6\x9c\xac\", \"positive\": \"\\ud83d\\ude00\", "
        "\"negatives\": []}";
    gc_dataset *d = load_text(text);
    if (!d) return;
    CHECK(d->n == 3, "3 pairs, got %zu", d->n);
    CHECK(!strcmp(d->path, "mem.jsonl"), "name kept");
    if (d->n == 3) {
        CHECK(!strcmp(d->pairs[0].query, "q one") && !strcmp(d->pairs[0].positive, "p one"),
              "pair 0");
        CHECK(d->pairs[0].num_negatives == 0 && d->pairs[0].negatives == NULL, "no negatives");
        CHECK(!strcmp(d->pairs[1].positive, "caf\xc3\xa9 \xc3\xa9\n\"x\""), "escapes decoded: %s",
              d->pairs[1].positive);
        CHECK(d->pairs[1].num_negatives == 2 && !strcmp(d->pairs[1].negatives[1], "n2"),
              "negatives");
        CHECK(!strcmp(d->pairs[2].query, "\xe6\x97\xa5\xe6\x9c\xac"), "UTF-8 query");
        CHECK(!strcmp(d->pairs[2].positive, "\xf0\x9f\x98\x80"), "surrogate pair decoded");
        CHECK(d->pairs[2].num_negatives == 0, "empty negatives array");
    }
    gc_dataset_free(d);
    gc_dataset_free(NULL);

    /* a line of several megabytes */
    size_t big = 5u << 20;
    char *line = malloc(big + 64);
    int h = sprintf(line, "{\"query\": \"q\", \"positive\": \"");
    memset(line + h, 'x', big);
    strcpy(line + h + big, "\"}\n");
    d = load_text(line);
    CHECK(d && d->n == 1 && strlen(d->pairs[0].positive) == big, "long line");
    gc_dataset_free(d);

    /* the same data gzip-compressed, in memory and on disk, and as two concatenated members */
    size_t zlen;
    unsigned char *z = gz(line, strlen(line), &zlen);
    d = NULL;
    CHECK_OK(gc_dataset_load_memory(&d, z, zlen, "mem.jsonl.gz"));
    CHECK(d && d->n == 1 && strlen(d->pairs[0].positive) == big, "gzip in memory");
    gc_dataset_free(d);
    char path[256];
    snprintf(path, sizeof path, "%s/test_data_big.jsonl.gz", GC_BINARY_DIR);
    unsigned char *two = malloc(2 * zlen);
    memcpy(two, z, zlen);
    memcpy(two + zlen, z, zlen);
    CHECK_OK(gc_write_file_atomic(path, two, 2 * zlen));
    d = NULL;
    CHECK_OK(gc_dataset_load(&d, path));
    CHECK(d && d->n == 2 && strlen(d->pairs[1].positive) == big, "two gzip members from a file");
    gc_dataset_free(d);
    d = NULL;
    CHECK_OK(gc_dataset_load_memory(&d, two, 2 * zlen, "two.gz"));
    CHECK(d && d->n == 2, "two gzip members in memory");
    gc_dataset_free(d);
    unlink(path);
    free(two);
    free(z);
    free(line);

    /* a plain file on disk */
    snprintf(path, sizeof path, "%s/test_data_plain.jsonl", GC_BINARY_DIR);
    CHECK_OK(gc_write_file_atomic(path, text, strlen(text)));
    d = NULL;
    CHECK_OK(gc_dataset_load(&d, path));
    CHECK(d && d->n == 3 && !strcmp(d->path, path), "plain file");
    gc_dataset_free(d);
    unlink(path);
}

static void test_bad_lines(void) {
    const char *ok = "{\"query\": \"q\", \"positive\": \"p\"}\n";
    char buf[512];
#define BAD(line3, what)                                                                           \
    do {                                                                                           \
        snprintf(buf, sizeof buf, "%s\n%s%s\n%s", ok, ok, line3, ok);                              \
        expect_bad(buf, "mem.jsonl:4:", what);                                                     \
    } while (0)
    BAD("{\"query\": \"q\", \"positive\": \"p\"", "malformed JSON");
    BAD("{\"query\": \"q\", \"positive\": }", "malformed JSON");
    BAD("{\"query\": \"q\" \"positive\": \"p\"}", "malformed JSON");
    BAD("{\"query\": \"q\", \"positive\": \"p\"} {}", "malformed JSON");
    BAD("{\"query\": \"q\", \"positive\": \"p\", \"query\": \"r\"}", "duplicate");
    BAD("[\"q\", \"p\"]", "not a JSON object");
    BAD("\"just a string\"", "not a JSON object");
    BAD("{\"positive\": \"p\"}", "missing \"query\"");
    BAD("{\"query\": \"q\"}", "missing \"positive\"");
    BAD("{\"query\": 5, \"positive\": \"p\"}", "\"query\" is not a string");
    BAD("{\"query\": \"q\", \"positive\": null}", "\"positive\" is not a string");
    BAD("{\"query\": \"\", \"positive\": \"p\"}", "\"query\" is empty");
    BAD("{\"query\": \"q\", \"positive\": \"\"}", "\"positive\" is empty");
    BAD("{\"query\": \"q\", \"positive\": \"p\", \"negatives\": \"n\"}", "not an array of strings");
    BAD("{\"query\": \"q\", \"positive\": \"p\", \"negatives\": [\"n\", 3]}",
        "[1] is not a string");
    BAD("{\"query\": \"q\", \"positive\": \"p\", \"negatives\": [\"\"]}", "[0] is empty");
    BAD("{\"query\": \"q\\u0000\", \"positive\": \"p\"}", "malformed JSON");
    BAD("{\"query\": \"\\ud800\", \"positive\": \"p\"}", "malformed JSON");
    BAD("{\"query\": \"caf\xe9\", \"positive\": \"p\"}", "invalid UTF-8");
    BAD("{\"query\": \"q\", \"positive\": \"\xc3\x28\"}", "invalid UTF-8");
    BAD("{\"query\": \"q\", \"positive\": \"\xed\xa0\x80\"}", "invalid UTF-8"); /* surrogate */
    BAD("{\"query\": \"q\", \"positive\": \"\xc0\xaf\"}", "invalid UTF-8");     /* overlong */
    BAD("{\"query\": \"\xf0\x9f\x98\", \"positive\": \"p\"}", "invalid UTF-8"); /* cut short */
#undef BAD
    /* a NUL byte (needs an explicit length) */
    const char nul[] =
        "{\"query\": \"q\", \"positive\": \"p\"}\n{\"query\": \"q\0\", \"positive\": \"p\"}\n";
    expect_bad_len(nul, sizeof nul - 1, "mem.jsonl:2:", "NUL byte");
    /* truncated at the end of the file, no final newline */
    expect_bad("{\"query\": \"q\", \"positive\": \"p\"}\n{\"query\": \"q\", \"posi",
               "mem.jsonl:2:", "malformed JSON");
    /* nothing to load */
    expect_bad("", "mem.jsonl", "no pairs");
    expect_bad("\n\n  \r\n", "mem.jsonl", "no pairs");

    /* from a file: the message carries the path */
    char path[256];
    snprintf(path, sizeof path, "%s/test_data_bad.jsonl", GC_BINARY_DIR);
    const char *bad = "{\"query\": \"q\", \"positive\": \"p\"}\n\n{\"query\": 1}\n";
    CHECK_OK(gc_write_file_atomic(path, bad, strlen(bad)));
    gc_dataset *d = (gc_dataset *)1;
    CHECK(gc_dataset_load(&d, path) == GC_ERR_FORMAT && d == NULL, "bad file");
    char where[300];
    snprintf(where, sizeof where, "%s:3: ", path);
    CHECK(strstr(gc_last_error(), where) != NULL, "'%s' lacks '%s'", gc_last_error(), where);
    CHECK_OK(gc_write_file_atomic(path, "", 0));
    CHECK(gc_dataset_load(&d, path) == GC_ERR_FORMAT, "empty file");
    CHECK(strstr(gc_last_error(), "no pairs") != NULL, "%s", gc_last_error());
    unlink(path);
    CHECK(gc_dataset_load(&d, path) == GC_ERR_IO, "missing file");
    CHECK(strstr(gc_last_error(), "test_data_bad.jsonl") != NULL, "%s", gc_last_error());
}

static void test_bad_gzip(void) {
    /* enough text that the stream has some length */
    char text[4096];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "{\"query\": \"query %d\", \"positive\": \"passage number %d\"}\n", i,
                              i * 7);
    size_t zlen;
    unsigned char *z = gz(text, n, &zlen);
    char path[256];
    snprintf(path, sizeof path, "%s/test_data_cut.jsonl.gz", GC_BINARY_DIR);

    /* sanity: the whole stream loads both ways */
    gc_dataset *d = NULL;
    CHECK_OK(gc_write_file_atomic(path, z, zlen));
    CHECK_OK(gc_dataset_load(&d, path));
    CHECK(d && d->n == 40, "whole gzip file");
    gc_dataset_free(d);

    /* cut anywhere: inside the header, the data, the CRC, the length */
    size_t cuts[] = {2, 5, 10, 20, zlen / 2, zlen - 9, zlen - 8, zlen - 4, zlen - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        CHECK_OK(gc_write_file_atomic(path, z, cuts[i]));
        d = (gc_dataset *)1;
        gc_status s = gc_dataset_load(&d, path);
        CHECK(s == GC_ERR_FORMAT && d == NULL, "file cut at %zu of %zu: %s (%s)", cuts[i], zlen,
              gc_status_str(s), gc_last_error());
        CHECK(strstr(gc_last_error(), "gzip") && strstr(gc_last_error(), "test_data_cut"),
              "cut at %zu: %s", cuts[i], gc_last_error());
        d = (gc_dataset *)1;
        s = gc_dataset_load_memory(&d, z, cuts[i], "cut.gz");
        CHECK(s == GC_ERR_FORMAT && d == NULL, "memory cut at %zu: %s", cuts[i], gc_last_error());
        CHECK(strstr(gc_last_error(), "gzip"), "cut at %zu: %s", cuts[i], gc_last_error());
    }

    /* a flipped byte in the compressed data or in the CRC */
    size_t flips[] = {zlen / 3, zlen - 6};
    for (size_t i = 0; i < 2; i++) {
        unsigned char *c = malloc(zlen);
        memcpy(c, z, zlen);
        c[flips[i]] ^= 0x55;
        CHECK_OK(gc_write_file_atomic(path, c, zlen));
        d = (gc_dataset *)1;
        gc_status s = gc_dataset_load(&d, path);
        CHECK(s == GC_ERR_FORMAT && d == NULL, "corrupt byte %zu: %s", flips[i], gc_last_error());
        s = gc_dataset_load_memory(&d, c, zlen, "flip.gz");
        CHECK(s == GC_ERR_FORMAT, "memory corrupt byte %zu: %s", flips[i], gc_last_error());
        free(c);
    }

    /* trailing bytes that do not begin another member are ignored (zlib's gzread rule), in
     * memory and on disk alike; bytes that do begin one must complete it */
    unsigned char *t = malloc(zlen + 3);
    memcpy(t, z, zlen);
    memcpy(t + zlen, "abc", 3);
    d = NULL;
    CHECK_OK(gc_dataset_load_memory(&d, t, zlen + 3, "trail.gz"));
    CHECK(d && d->n == 40, "trailing bytes in memory");
    gc_dataset_free(d);
    CHECK_OK(gc_write_file_atomic(path, t, zlen + 3));
    d = NULL;
    CHECK_OK(gc_dataset_load(&d, path));
    CHECK(d && d->n == 40, "trailing bytes on disk");
    gc_dataset_free(d);
    memcpy(t + zlen, "\x1f\x8b\x08", 3);
    CHECK(gc_dataset_load_memory(&d, t, zlen + 3, "trail.gz") == GC_ERR_FORMAT,
          "a second member cut short, in memory");
    CHECK_OK(gc_write_file_atomic(path, t, zlen + 3));
    CHECK(gc_dataset_load(&d, path) == GC_ERR_FORMAT, "a second member cut short, on disk");
    free(t);

    /* an empty gzip stream holds no pairs */
    size_t elen;
    unsigned char *e = gz("", 0, &elen);
    CHECK_OK(gc_write_file_atomic(path, e, elen));
    CHECK(gc_dataset_load(&d, path) == GC_ERR_FORMAT && strstr(gc_last_error(), "no pairs"),
          "empty gzip: %s", gc_last_error());
    free(e);
    unlink(path);
    free(z);
}

/* A pipe holding `n` bytes (less than the pipe's buffer) with its writing end closed, named
 * /dev/fd/N so the readers open it like a file. Returns the reading end (close it after). */
static int pipe_with(const void *data, size_t n, char *name, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    ssize_t w = write(fds[1], data, n);
    close(fds[1]);
    if (w != (ssize_t)n) {
        close(fds[0]);
        return -1;
    }
    snprintf(name, cap, "/dev/fd/%d", fds[0]);
    return fds[0];
}

static void test_pipe(void) {
    const char *text = "{\"query\": \"q1\", \"positive\": \"p1\"}\n"
                       "{\"query\": \"q2\", \"positive\": \"p2\", \"negatives\": [\"n\"]}\n";
    char name[64];
    /* plain and gzip text, like --train <(cat a.jsonl) and --train <(cat a.jsonl.gz) */
    for (int zipped = 0; zipped < 2; zipped++) {
        size_t zlen = strlen(text);
        unsigned char *z = zipped ? gz(text, strlen(text), &zlen) : NULL;
        int fd = pipe_with(zipped ? (const void *)z : text, zlen, name, sizeof name);
        CHECK(fd >= 0, "pipe");
        gc_dataset *d = NULL;
        CHECK_OK(gc_dataset_load(&d, name));
        CHECK(d && d->n == 2 && !strcmp(d->pairs[1].negatives[0], "n"), "pairs through a pipe (%s)",
              zipped ? "gzip" : "plain");
        gc_dataset_free(d);
        if (fd >= 0) close(fd);
        fd = pipe_with(zipped ? (const void *)z : text, zlen, name, sizeof name);
        char **v = NULL;
        size_t n = 0;
        CHECK_OK(gc_jsonl_read_field(name, "query", &v, &n));
        CHECK(n == 2 && !strcmp(v[1], "q2"), "a field through a pipe (%s)",
              zipped ? "gzip" : "plain");
        gc_jsonl_free(v, n);
        if (fd >= 0) close(fd);
        free(z);
    }
    /* a pipe cut inside a gzip member is still a truncated stream */
    size_t zlen;
    unsigned char *z = gz(text, strlen(text), &zlen);
    int fd = pipe_with(z, zlen - 5, name, sizeof name);
    gc_dataset *d = (gc_dataset *)1;
    CHECK(gc_dataset_load(&d, name) == GC_ERR_FORMAT && d == NULL &&
              strstr(gc_last_error(), "gzip"),
          "truncated gzip through a pipe: %s", gc_last_error());
    if (fd >= 0) close(fd);
    free(z);
}

/* Expect gc_jsonl_read_field_memory to fail with FORMAT and a message holding both strings. */
static void expect_bad_field(const char *text, const char *field, const char *where,
                             const char *what) {
    char **v = (char **)1;
    size_t n = 7;
    gc_status s = gc_jsonl_read_field_memory(text, strlen(text), "f.jsonl", field, &v, &n);
    CHECK(s == GC_ERR_FORMAT && v == NULL && n == 0, "%s: got %s", what, gc_status_str(s));
    CHECK(strstr(gc_last_error(), where) && strstr(gc_last_error(), what),
          "'%s' lacks '%s' or '%s'", gc_last_error(), where, what);
}

static void test_field(void) {
    const char *text = "{\"text\": \"first\", \"id\": 1}\n"
                       "\n"
                       "{\"id\": 2, \"text\": \"caf\\u00e9\", \"query\": \"ignored\"}\r\n"
                       "{\"text\": \"\"}";
    char **v = NULL;
    size_t n = 0;
    CHECK_OK(gc_jsonl_read_field_memory(text, strlen(text), "f.jsonl", "text", &v, &n));
    CHECK(n == 3, "3 values, got %zu", n);
    if (n == 3)
        CHECK(!strcmp(v[0], "first") && !strcmp(v[1], "caf\xc3\xa9") && !strcmp(v[2], ""),
              "values in file order, escapes decoded, empty string kept");
    gc_jsonl_free(v, n);
    gc_jsonl_free(NULL, 0);

    /* missing, not a string, not an object, broken JSON, bad UTF-8: file:line */
    expect_bad_field("{\"text\": \"a\"}\n\n{\"other\": \"b\"}\n", "text",
                     "f.jsonl:3:", "missing \"text\"");
    expect_bad_field("{\"text\": \"a\"}\n{\"text\": 5}\n", "text",
                     "f.jsonl:2:", "\"text\" is not a string");
    expect_bad_field("{\"text\": null}\n", "text", "f.jsonl:1:", "\"text\" is not a string");
    expect_bad_field("{\"text\": [\"a\"]}\n", "text", "f.jsonl:1:", "\"text\" is not a string");
    expect_bad_field("{\"text\": \"a\"}\n[\"text\"]\n", "text", "f.jsonl:2:", "not a JSON object");
    expect_bad_field("{\"text\": \"a\"\n", "text", "f.jsonl:1:", "malformed JSON");
    expect_bad_field("{\"text\": \"a\", \"text\": \"b\"}\n", "text", "f.jsonl:1:", "duplicate");
    expect_bad_field("{\"text\": \"caf\xe9\"}\n", "text", "f.jsonl:1:", "invalid UTF-8");
    expect_bad_field("", "text", "f.jsonl", "empty file");
    expect_bad_field(" \n\n", "text", "f.jsonl", "empty file");

    /* gzip on disk, plain on disk, and a cut gzip file */
    size_t zlen;
    unsigned char *z = gz(text, strlen(text), &zlen);
    char path[256];
    snprintf(path, sizeof path, "%s/test_data_field.jsonl.gz", GC_BINARY_DIR);
    CHECK_OK(gc_write_file_atomic(path, z, zlen));
    v = NULL;
    n = 0;
    CHECK_OK(gc_jsonl_read_field(path, "text", &v, &n));
    CHECK(n == 3 && !strcmp(v[1], "caf\xc3\xa9"), "gzip file: %zu values", n);
    gc_jsonl_free(v, n);
    CHECK_OK(gc_jsonl_read_field_memory(z, zlen, "z.gz", "text", &v, &n));
    CHECK(n == 3 && !strcmp(v[0], "first"), "gzip in memory: %zu values", n);
    gc_jsonl_free(v, n);
    CHECK_OK(gc_write_file_atomic(path, z, zlen - 3));
    v = (char **)1;
    CHECK(gc_jsonl_read_field(path, "text", &v, &n) == GC_ERR_FORMAT && v == NULL &&
              strstr(gc_last_error(), "gzip") && strstr(gc_last_error(), "test_data_field"),
          "cut gzip: %s", gc_last_error());
    const char *bad = "{\"text\": \"a\"}\n{\"txt\": \"b\"}\n";
    CHECK_OK(gc_write_file_atomic(path, bad, strlen(bad)));
    char where[300];
    snprintf(where, sizeof where, "%s:2: missing \"text\"", path);
    CHECK(gc_jsonl_read_field(path, "text", &v, &n) == GC_ERR_FORMAT &&
              strstr(gc_last_error(), where),
          "'%s' lacks '%s'", gc_last_error(), where);
    unlink(path);
    CHECK(gc_jsonl_read_field(path, "text", &v, &n) == GC_ERR_IO, "missing file");
    CHECK(gc_jsonl_read_field(NULL, "text", &v, &n) == GC_ERR_INVALID_ARG, "NULL path");
    free(z);
}

/* Issue 12, defects 13 and 14: a valid line with an integer beyond int64 in an ignored field,
 * and a UTF-8 byte-order mark at the start of the file (plain and gzip). */
static void test_big_int_and_bom(void) {
    gc_dataset *d = load_text("{\"id\": 18446744073709551615, \"query\": \"q\", "
                              "\"positive\": \"p\", \"n\": -99999999999999999999999}\n");
    CHECK(d && d->n == 1 && !strcmp(d->pairs[0].query, "q"), "uint64 id in an ignored field");
    gc_dataset_free(d);
    char **v = NULL;
    size_t n = 0;
    const char *big = "{\"id\": 18446744073709551616, \"text\": \"t\"}\n";
    CHECK_OK(gc_jsonl_read_field_memory(big, strlen(big), "mem.jsonl", "text", &v, &n));
    CHECK(n == 1 && v && !strcmp(v[0], "t"), "big integer beside a field");
    gc_jsonl_free(v, n);

    const char *bom = "\xef\xbb\xbf{\"query\": \"q\", \"positive\": \"p\"}\n"
                      "{\"query\": \"q2\", \"positive\": \"p2\"}\n";
    d = load_text(bom);
    CHECK(d && d->n == 2 && !strcmp(d->pairs[0].query, "q"), "BOM skipped");
    gc_dataset_free(d);
    size_t zlen;
    unsigned char *z = gz(bom, strlen(bom), &zlen);
    d = NULL;
    CHECK_OK(gc_dataset_load_memory(&d, z, zlen, "mem.jsonl.gz"));
    CHECK(d && d->n == 2, "BOM skipped in gzip");
    gc_dataset_free(d);
    free(z);
    char path[256];
    snprintf(path, sizeof path, "%s/test_data_bom.jsonl", GC_BINARY_DIR);
    CHECK_OK(gc_write_file_atomic(path, bom, strlen(bom)));
    d = NULL;
    CHECK_OK(gc_dataset_load(&d, path));
    CHECK(d && d->n == 2, "BOM skipped in a file");
    gc_dataset_free(d);
    v = NULL;
    CHECK_OK(gc_jsonl_read_field(path, "query", &v, &n));
    CHECK(n == 2 && v && !strcmp(v[0], "q"), "BOM skipped reading a field");
    gc_jsonl_free(v, n);
    unlink(path);
    /* only at the start of the file: a BOM on a later line is a malformed line */
    expect_bad("{\"query\": \"q\", \"positive\": \"p\"}\n\xef\xbb\xbf{\"query\": \"q\", "
               "\"positive\": \"p\"}\n",
               "mem.jsonl:2:", "byte-order mark");
}

static void test_dev_split(void) {
    /* Part of the repository's test data: a missing file is a failure, not a skip. */
    gc_dataset *d = NULL;
    CHECK_OK(gc_dataset_load(&d, DEV_PATH));
    if (!d) return;
    CHECK(d->n == 5472, "dev split has 5472 pairs, got %zu", d->n);
    CHECK(!strcmp(d->pairs[0].query,
                  "Real-time strategy game of ancient warfare (common data files)"),
          "first query: %s", d->pairs[0].query);
    size_t empty = 0;
    for (size_t i = 0; i < d->n; i++) empty += !*d->pairs[i].query || !*d->pairs[i].positive;
    CHECK(empty == 0, "no empty texts");
    gc_dataset_free(d);
}

int main(void) {
    test_good();
    test_bad_lines();
    test_bad_gzip();
    test_pipe();
    test_field();
    test_big_int_and_bom();
    test_dev_split();
    return test_summary("test_data");
}

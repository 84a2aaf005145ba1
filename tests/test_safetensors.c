/* test_safetensors.c: safetensors round trips, a file written by the Python safetensors
 * package (F16/BF16 conversion included), the real model file, and hostile headers. */
#include "gc_io.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE_DIR GC_SOURCE_DIR "/tests/fixtures/io"

/* A file image: 8-byte length, the header text, then `data_len` bytes (i % 251). */
static uint8_t *make_st(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (uint8_t)(i % 251);
    return b;
}

/* Open the image made from `header`; expect status `want` and every `needle` in the message. */
static void expect_bad(const char *header, size_t data_len, gc_status want, const char *needle1,
                       const char *needle2) {
    size_t len;
    uint8_t *b = make_st(header, data_len, &len);
    gc_safetensors *st = (gc_safetensors *)1;
    gc_status s = gc_st_open_memory(&st, b, len);
    CHECK(s == want, "header %s: got %s (%s), want %s", header, gc_status_str(s), gc_last_error(),
          gc_status_str(want));
    CHECK(st == NULL, "handle cleared on failure");
    CHECK(!needle1 || strstr(gc_last_error(), needle1), "message '%s' lacks '%s'", gc_last_error(),
          needle1);
    CHECK(!needle2 || strstr(gc_last_error(), needle2), "message '%s' lacks '%s'", gc_last_error(),
          needle2);
    if (s == GC_OK) gc_st_close(st);
    free(b);
}

static void test_hostile(void) {
    gc_safetensors *st = NULL;
    CHECK(gc_st_open_memory(&st, "", 0) == GC_ERR_FORMAT, "empty buffer");
    CHECK(strstr(gc_last_error(), "shorter"), "%s", gc_last_error());
    CHECK(gc_st_open_memory(&st, "\x02\0\0\0\0\0\0", 7) == GC_ERR_FORMAT, "7 bytes");

    /* header length past the end, and absurdly large */
    uint8_t b[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(gc_st_open_memory(&st, b, 10) == GC_ERR_FORMAT, "length past the end");
    CHECK(strstr(gc_last_error(), "past the end"), "%s", gc_last_error());
    uint8_t huge[10] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    CHECK(gc_st_open_memory(&st, huge, 10) == GC_ERR_FORMAT, "2^63 header length");
    CHECK(strstr(gc_last_error(), "absurdly"), "%s", gc_last_error());
    uint8_t empty_hdr[8] = {0};
    CHECK(gc_st_open_memory(&st, empty_hdr, 8) == GC_ERR_FORMAT, "zero-length header");

    expect_bad("{\"w\": {\"dtype\": \"F32\"", 0, GC_ERR_FORMAT, "not valid JSON", NULL);
    expect_bad("{\"w\": }", 0, GC_ERR_FORMAT, "not valid JSON", NULL);
    expect_bad("[1, 2]", 0, GC_ERR_FORMAT, "not a JSON object", NULL);
    expect_bad("{\"w\": 3}", 0, GC_ERR_FORMAT, "'w'", "not a JSON object");
    expect_bad("{\"w\": {\"dtype\": \"Q7\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
               GC_ERR_UNSUPPORTED, "Q7", "'w'");
    expect_bad("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, GC_ERR_FORMAT, "dtype",
               "'w'");
    expect_bad("{\"w\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
               GC_ERR_FORMAT, "dtype", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4,
               GC_ERR_FORMAT, "shape", "'w'");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
               GC_ERR_FORMAT, "non-negative", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.0], \"data_offsets\": [0, 4]}}", 4,
               GC_ERR_FORMAT, "non-negative integer", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4,
               GC_ERR_FORMAT, "shape[0]", NULL);
    expect_bad(
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}",
        4, GC_ERR_FORMAT, "9 dimensions", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776, 1048576], "
               "\"data_offsets\": [0, 4]}}",
               4, GC_ERR_FORMAT, "overflow", NULL);
    expect_bad(
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 4]}}",
        4, GC_ERR_FORMAT, "overflow", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, GC_ERR_FORMAT, "data_offsets",
               NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
               GC_ERR_FORMAT, "two integers", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.0]}}", 4,
               GC_ERR_FORMAT, "two integers", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
               GC_ERR_FORMAT, "begin <= end", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
               GC_ERR_FORMAT, "begin <= end", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4,
               GC_ERR_FORMAT, "past the data area", "'w'");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, "
               "18446744073709551615]}}",
               4, GC_ERR_FORMAT, "not valid JSON", NULL); /* above int64: jansson refuses it */
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 12,
               GC_ERR_FORMAT, "need 12", "'w'");
    expect_bad("{\"w\": {\"dtype\": \"F16\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}", 16,
               GC_ERR_FORMAT, "need 8", NULL);
    expect_bad("{\"u\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"v\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
               12, GC_ERR_FORMAT, "overlaps", "'u'");
    expect_bad("{\"v\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]},"
               " \"u\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
               16, GC_ERR_FORMAT, "overlaps", NULL);
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
               " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
               8, GC_ERR_FORMAT, "duplicate", NULL);
    expect_bad("{\"__metadata__\": [1]}", 0, GC_ERR_FORMAT, "__metadata__", NULL);
    expect_bad("{\"__metadata__\": {\"format\": 1}}", 0, GC_ERR_FORMAT, "format", NULL);

    /* what is allowed: gaps between tensors, empty tensors, no tensors at all */
    const char *ok_headers[] = {
        "{}",
        "{\"__metadata__\": {\"format\": \"pt\"}}  ",
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]},"
        " \"b\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [8, 8]},"
        " \"c\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}",
    };
    for (size_t i = 0; i < sizeof ok_headers / sizeof *ok_headers; i++) {
        size_t len;
        uint8_t *img = make_st(ok_headers[i], 12, &len);
        CHECK_OK(gc_st_open_memory(&st, img, len));
        if (st) {
            CHECK(gc_st_count(st) == (i == 2 ? 3 : 0), "count");
            if (i == 2) {
                /* sorted by position in the data area */
                CHECK(!strcmp(gc_st_get(st, 0)->name, "c") && !strcmp(gc_st_get(st, 2)->name, "a"),
                      "file order");
                CHECK(gc_st_find(st, "b")->numel == 0, "empty tensor");
            }
            gc_st_close(st);
        }
        free(img);
    }

    /* on disk: the message names the file */
    char path[256];
    snprintf(path, sizeof path, "%s/test_safetensors_bad.safetensors", GC_BINARY_DIR);
    size_t len;
    uint8_t *img = make_st(
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [9], \"data_offsets\": [0, 36]}}", 8, &len);
    CHECK_OK(gc_write_file_atomic(path, img, len));
    free(img);
    st = (gc_safetensors *)1;
    CHECK(gc_st_open(&st, path) == GC_ERR_FORMAT && st == NULL, "bad file on disk");
    CHECK(strstr(gc_last_error(), "test_safetensors_bad.safetensors") &&
              strstr(gc_last_error(), "'w'"),
          "message names file and tensor: %s", gc_last_error());
    CHECK_OK(gc_write_file_atomic(path, "abc", 3));
    CHECK(gc_st_open(&st, path) == GC_ERR_FORMAT, "3-byte file");
    unlink(path);
    CHECK(gc_st_open(&st, path) == GC_ERR_IO, "missing file");
}

static void test_round_trip(void) {
    float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65536.25f};
    float v[3] = {0.5f, -0.25f, 0.125f};
    float s = 42.0f;
    gc_st_item items[] = {
        {.name = "encoder.weight", .data = a, .ndim = 2, .shape = {2, 3}},
        {.name = "bias", .data = v, .ndim = 1, .shape = {3}},
        {.name = "scale", .data = &s, .ndim = 0},
        {.name = "empty", .data = NULL, .ndim = 2, .shape = {0, 7}},
        {.name = "\xc3\xa9t\xc3\xa9 \"quoted\"", .data = v, .ndim = 1, .shape = {2}},
    };
    const int n = 5;
    char path[256];
    snprintf(path, sizeof path, "%s/test_safetensors_rt.safetensors", GC_BINARY_DIR);
    CHECK_OK(gc_st_write(path, items, n, "pt"));

    char *raw = NULL;
    size_t rawlen = 0;
    CHECK_OK(gc_read_file(path, &raw, &rawlen));
    uint64_t hlen = 0;
    for (int i = 7; i >= 0 && rawlen >= 8; i--) hlen = (hlen << 8) | (uint8_t)raw[i];
    CHECK((8 + hlen) % 8 == 0, "data area 8-byte aligned (header %llu)", (unsigned long long)hlen);
    CHECK(rawlen == 8 + hlen + (6 + 3 + 1 + 0 + 2) * 4, "file size %zu", rawlen);

    gc_safetensors *st = NULL;
    CHECK_OK(gc_st_open(&st, path));
    if (!st) {
        free(raw);
        return;
    }
    CHECK(gc_st_count(st) == n, "count %d", gc_st_count(st));
    CHECK(gc_st_metadata(st, "format") && !strcmp(gc_st_metadata(st, "format"), "pt"), "metadata");
    CHECK(gc_st_metadata(st, "other") == NULL, "absent metadata");
    for (int i = 0; i < n; i++) {
        const gc_st_tensor *t = gc_st_find(st, items[i].name);
        CHECK(t != NULL, "find %s", items[i].name);
        if (!t) continue;
        CHECK(t->dtype == GC_DTYPE_F32 && t->ndim == items[i].ndim, "dtype/ndim of %s", t->name);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == items[i].shape[d], "shape of %s", t->name);
            numel *= (size_t)items[i].shape[d];
        }
        CHECK(t->numel == numel && t->nbytes == numel * 4, "numel of %s", t->name);
        float out[8];
        CHECK_OK(gc_st_read_f32(t, out, numel));
        CHECK(numel == 0 || memcmp(out, items[i].data, numel * 4) == 0, "values of %s", t->name);
    }
    /* file order is write order */
    for (int i = 0; i < n; i++)
        CHECK(!strcmp(gc_st_get(st, i)->name, items[i].name), "order %d", i);
    CHECK(gc_st_get(st, n) == NULL && gc_st_get(st, -1) == NULL, "out-of-range index");
    CHECK(gc_st_find(st, "bert.bias") == gc_st_find(st, "bias"), "bert. prefix stripped");
    CHECK(gc_st_find(st, "nope") == NULL, "missing name");
    float tmp[6];
    CHECK(gc_st_read_f32(gc_st_find(st, "bias"), tmp, 4) == GC_ERR_INVALID_ARG, "wrong count");
    gc_st_close(st);

    /* the same bytes from memory; then every truncation must fail cleanly */
    CHECK_OK(gc_st_open_memory(&st, raw, rawlen));
    gc_st_close(st);
    int all_fail = 1;
    for (size_t cut = 0; cut < rawlen; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* an exact-size copy, so ASan sees overreads */
        memcpy(copy, raw, cut);
        st = NULL;
        if (gc_st_open_memory(&st, copy, cut) == GC_OK) {
            all_fail = 0;
            gc_st_close(st);
        }
        free(copy);
    }
    CHECK(all_fail, "every truncated file is refused");

    /* every header byte replaced by a few values: any outcome but a crash is fine; a success
     * must still describe tensors inside the buffer */
    const uint8_t subst[] = {0, '"', '{', '}', '[', ']', ',', '9', '-', 0xff};
    for (size_t i = 0; i < 8 + hlen; i++) {
        for (size_t k = 0; k < sizeof subst; k++) {
            uint8_t *copy = malloc(rawlen);
            memcpy(copy, raw, rawlen);
            copy[i] = subst[k];
            st = NULL;
            if (gc_st_open_memory(&st, copy, rawlen) == GC_OK) {
                for (int t = 0; t < gc_st_count(st); t++) {
                    const gc_st_tensor *x = gc_st_get(st, t);
                    const uint8_t *p = x->data;
                    CHECK(p >= copy && p + x->nbytes <= copy + rawlen, "tensor inside buffer");
                }
                gc_st_close(st);
            }
            free(copy);
        }
    }
    free(raw);
    unlink(path);

    /* writer refusals */
    gc_st_item dup[] = {{.name = "x", .data = v, .ndim = 1, .shape = {1}},
                        {.name = "x", .data = v, .ndim = 1, .shape = {1}}};
    CHECK(gc_st_write(path, dup, 2, NULL) == GC_ERR_INVALID_ARG, "duplicate names refused");
    gc_st_item neg[] = {{.name = "x", .data = v, .ndim = 1, .shape = {-1}}};
    CHECK(gc_st_write(path, neg, 1, NULL) == GC_ERR_INVALID_ARG, "negative dim refused");
    gc_st_item meta[] = {{.name = "__metadata__", .data = v, .ndim = 1, .shape = {1}}};
    CHECK(gc_st_write(path, meta, 1, NULL) == GC_ERR_INVALID_ARG, "reserved name refused");
    gc_st_item badutf[] = {{.name = "\xff", .data = v, .ndim = 1, .shape = {1}}};
    CHECK(gc_st_write(path, badutf, 1, NULL) == GC_ERR_INVALID_ARG, "non-UTF-8 name refused");
    CHECK(access(path, F_OK) != 0, "no file after refusals");
    CHECK_OK(gc_st_write(path, NULL, 0, NULL));
    CHECK_OK(gc_st_open(&st, path));
    CHECK(st && gc_st_count(st) == 0 && gc_st_metadata(st, "format") == NULL, "empty file");
    gc_st_close(st);
    unlink(path);
}

static int same_float(float a, float b) {
    if (isnan(b)) return isnan(a);
    return a == b && signbit(a) == signbit(b);
}

static void test_python_fixture(void) {
    gc_safetensors *st = NULL;
    CHECK_OK(gc_st_open(&st, FIXTURE_DIR "/py_mixed.safetensors"));
    if (!st) return;
    CHECK(gc_st_count(st) == 6, "6 tensors, got %d", gc_st_count(st));
    CHECK(gc_st_metadata(st, "format") && !strcmp(gc_st_metadata(st, "format"), "pt"), "format pt");

    const gc_st_tensor *t = gc_st_find(st, "a");
    float out[16];
    CHECK(t && t->dtype == GC_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3,
          "a: F32 (2,3)");
    if (t) {
        CHECK_OK(gc_st_read_f32(t, out, 6));
        for (int i = 0; i < 6; i++) CHECK(out[i] == i * 0.5f - 1.0f, "a[%d] = %g", i, out[i]);
    }

    const float h_want[10] = {1.0f,     -2.5f,     65504.0f, 0x1p-14f, 0x1p-24f,
                              INFINITY, -INFINITY, NAN,      -0.0f,    0.333251953125f};
    t = gc_st_find(st, "h");
    CHECK(t && t->dtype == GC_DTYPE_F16 && t->numel == 10, "h: F16 (10)");
    if (t) {
        CHECK_OK(gc_st_read_f32(t, out, 10));
        for (int i = 0; i < 10; i++) CHECK(same_float(out[i], h_want[i]), "h[%d] = %g", i, out[i]);
    }

    const float b_want[8] = {1.0f, -3.140625f, 3.3895313892515355e38f, 0x1p-133f, INFINITY,
                             NAN,  -0.0f,      0.00099945068359375f};
    t = gc_st_find(st, "b");
    CHECK(t && t->dtype == GC_DTYPE_BF16 && t->numel == 8, "b: BF16 (8)");
    if (t) {
        CHECK_OK(gc_st_read_f32(t, out, 8));
        for (int i = 0; i < 8; i++) CHECK(same_float(out[i], b_want[i]), "b[%d] = %g", i, out[i]);
    }

    t = gc_st_find(st, "pooler.dense.bias");
    CHECK(t && !strcmp(t->name, "bert.pooler.dense.bias"), "found without the bert. prefix");
    CHECK(t == gc_st_find(st, "bert.pooler.dense.bias"), "and with it");
    if (t) {
        CHECK_OK(gc_st_read_f32(t, out, 4));
        CHECK(out[0] == 0.25f && out[3] == -1.0f, "bias values");
    }

    t = gc_st_find(st, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1, "scalar shape ()");
    if (t) {
        CHECK_OK(gc_st_read_f32(t, out, 1));
        CHECK(out[0] == 7.0f, "scalar value");
    }

    t = gc_st_find(st, "pos");
    CHECK(t && t->dtype == GC_DTYPE_I64 && t->nbytes == 40, "I64 tensor listed");
    if (t) {
        CHECK(gc_st_read_f32(t, out, 5) == GC_ERR_UNSUPPORTED, "I64 cannot be read as float");
        CHECK(strstr(gc_last_error(), "I64") && strstr(gc_last_error(), "pos"), "%s",
              gc_last_error());
        int64_t v[5];
        memcpy(v, t->data, sizeof v);
        CHECK(v[0] == 0 && v[4] == 4, "I64 bytes");
    }
    gc_st_close(st);
}

/* Every F16 bit pattern against the definition of the format. */
static void test_f16_all(void) {
    uint16_t *bits = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++) bits[i] = (uint16_t)i;
    char header[128];
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}");
    size_t len;
    uint8_t *img = make_st(header, 131072, &len);
    memcpy(img + len - 131072, bits, 131072);
    float *out = malloc(65536 * sizeof(float));
    gc_safetensors *st = NULL;
    CHECK_OK(gc_st_open_memory(&st, img, len));
    int bad = 0;
    if (st) {
        CHECK_OK(gc_st_read_f32(gc_st_get(st, 0), out, 65536));
        for (int i = 0; i < 65536; i++) {
            int sign = i >> 15, e = (i >> 10) & 31, m = i & 1023;
            double want;
            if (e == 0)
                want = ldexp(m, -24);
            else if (e == 31)
                want = m ? NAN : INFINITY;
            else
                want = ldexp(1024 + m, e - 25);
            if (sign) want = -want;
            if (!same_float(out[i], (float)want)) bad++;
        }
        gc_st_close(st);
    }
    CHECK(bad == 0, "%d of 65536 F16 values converted wrongly", bad);
    free(out);
    free(img);
    free(bits);
}

static void test_real_model(void) {
    const char *path = GC_MODEL_DIR "/model.safetensors";
    gc_safetensors *st = NULL;
    CHECK_OK(gc_st_open(&st, path)); /* the model is part of the test setup (make model) */
    if (!st) return;
    CHECK(gc_st_count(st) == 104, "MiniLM has 104 tensors, got %d", gc_st_count(st));
    const gc_st_tensor *t = gc_st_find(st, "bert.embeddings.word_embeddings.weight");
    CHECK(t && t->dtype == GC_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 30522 &&
              t->shape[1] == 384,
          "word embeddings (30522, 384)");
    t = gc_st_find(st, "encoder.layer.5.output.LayerNorm.weight");
    CHECK(t && t->numel == 384, "last LayerNorm weight");
    if (t) {
        float w[384];
        CHECK_OK(gc_st_read_f32(t, w, 384));
        int finite = 1;
        for (int i = 0; i < 384; i++) finite &= isfinite(w[i]) != 0;
        CHECK(finite, "finite weights");
    }
    gc_st_close(st);
}

int main(void) {
    test_hostile();
    test_round_trip();
    test_python_fixture();
    test_f16_all();
    test_real_model();
    return test_summary("test_safetensors");
}

/* test_npy.c: .npy write/read round trips, files written by numpy, and bad headers. */
#include "gc_io.h"
#include "test_util.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE_DIR GC_SOURCE_DIR "/tests/fixtures/io"

static char g_path[256];

/* A version-1.0 file with the given header dict (padded as numpy pads) and data bytes. */
static void write_npy_raw(const char *dict, size_t data_bytes) {
    size_t dl = strlen(dict);
    size_t total = (10 + dl + 1 + 63) / 64 * 64;
    size_t hlen = total - 10;
    unsigned char *b = calloc(1, total + data_bytes);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    memcpy(b + 10, dict, dl);
    memset(b + 10 + dl, ' ', hlen - dl - 1);
    b[total - 1] = '\n';
    CHECK_OK(gc_write_file_atomic(g_path, b, total + data_bytes));
    free(b);
}

static void expect_bad_bytes(const void *bytes, size_t n, gc_status want, const char *what) {
    CHECK_OK(gc_write_file_atomic(g_path, bytes, n));
    float *data = (float *)1;
    size_t r = 9, c = 9;
    gc_status s = gc_npy_read_f32(g_path, &data, &r, &c);
    CHECK(s == want, "%s: got %s (%s)", what, gc_status_str(s), gc_last_error());
    CHECK(data == NULL && r == 0 && c == 0, "%s: outputs cleared", what);
    CHECK(strstr(gc_last_error(), "test_npy_tmp.npy") != NULL, "%s: message names the file: %s",
          what, gc_last_error());
    if (s == GC_OK) free(data);
}

static void expect_bad_dict(const char *dict, size_t data_bytes, gc_status want) {
    write_npy_raw(dict, data_bytes);
    float *data = (float *)1;
    size_t r, c;
    gc_status s = gc_npy_read_f32(g_path, &data, &r, &c);
    CHECK(s == want, "dict %s: got %s (%s)", dict, gc_status_str(s), gc_last_error());
    CHECK(data == NULL, "outputs cleared");
    if (s == GC_OK) free(data);
}

static void test_round_trip(void) {
    float m[15];
    for (int i = 0; i < 15; i++) m[i] = (float)i * 0.75f - 3.0f;
    CHECK_OK(gc_npy_write_f32(g_path, m, 3, 5));

    char *raw = NULL;
    size_t len = 0;
    CHECK_OK(gc_read_file(g_path, &raw, &len));
    if (raw) {
        size_t hlen = (size_t)(unsigned char)raw[8] | (size_t)(unsigned char)raw[9] << 8;
        CHECK(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0, "magic and version 1.0");
        CHECK((10 + hlen) % 64 == 0, "data starts at a multiple of 64 (%zu)", 10 + hlen);
        CHECK(raw[10 + hlen - 1] == '\n', "header ends with a newline");
        const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }";
        CHECK(strncmp(raw + 10, want, strlen(want)) == 0, "header dict: %.60s", raw + 10);
        CHECK(len == 10 + hlen + sizeof m, "file size");
    }
    free(raw);

    float *back = NULL;
    size_t r = 0, c = 0;
    CHECK_OK(gc_npy_read_f32(g_path, &back, &r, &c));
    CHECK(back && r == 3 && c == 5 && memcmp(back, m, sizeof m) == 0, "read back");
    free(back);

    CHECK_OK(gc_npy_write_f32(g_path, NULL, 0, 4));
    back = NULL;
    CHECK_OK(gc_npy_read_f32(g_path, &back, &r, &c));
    CHECK(back && r == 0 && c == 4, "empty (0, 4)");
    free(back);
}

static void test_numpy_files(void) {
    const char *files[] = {FIXTURE_DIR "/py_matrix.npy", FIXTURE_DIR "/py_matrix_v2.npy"};
    for (int f = 0; f < 2; f++) {
        float *m = NULL;
        size_t r = 0, c = 0;
        CHECK_OK(gc_npy_read_f32(files[f], &m, &r, &c));
        CHECK(m && r == 3 && c == 4, "%s: shape (%zu, %zu)", files[f], r, c);
        int ok = m != NULL;
        for (int i = 0; m && i < 12; i++) ok &= m[i] == (float)i / 4;
        CHECK(ok, "%s: values", files[f]);
        free(m);
    }
}

static void test_hostile(void) {
    expect_bad_bytes("", 0, GC_ERR_FORMAT, "empty file");
    expect_bad_bytes("\x93NUMPY\x01", 7, GC_ERR_FORMAT, "too short");
    expect_bad_bytes("\x93NUMPX\x01\x00\x00\x00", 10, GC_ERR_FORMAT, "bad magic");
    expect_bad_bytes("\x93NUMPY\x09\x00\x00\x00", 10, GC_ERR_FORMAT, "version 9");
    expect_bad_bytes("\x93NUMPY\x01\x00\xff\x00{}", 12, GC_ERR_FORMAT, "header past the end");
    expect_bad_bytes("\x93NUMPY\x02\x00\x00\x00\x00\x01", 10, GC_ERR_FORMAT,
                     "v2 header length cut");

    expect_bad_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", 32,
                    GC_ERR_UNSUPPORTED);
    expect_bad_dict("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16,
                    GC_ERR_UNSUPPORTED);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
                    GC_ERR_UNSUPPORTED);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 16, GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 1), }", 16,
                    GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 12,
                    GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 20,
                    GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'shape': (2, 2), }", 16, GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", 16,
                    GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", 16,
                    GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 2)}", 16, GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2)}", 16, GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2)}", 16,
                    GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2 2)}", 16, GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)", 16, GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} junk", 16,
                    GC_ERR_FORMAT);
    expect_bad_dict(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 2)}", 16,
        GC_ERR_FORMAT);
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4)}",
                    16, GC_ERR_FORMAT);
    expect_bad_dict("['descr', '<f4']", 16, GC_ERR_FORMAT);
    /* the same dict without those faults is fine, and so is the spacing numpy never writes */
    write_npy_raw("{ \"shape\" : ( 2 , 2 ) , 'fortran_order':False,'descr':'<f4' }", 16);
    float *m = NULL;
    size_t r, c;
    CHECK_OK(gc_npy_read_f32(g_path, &m, &r, &c));
    CHECK(m && r == 2 && c == 2, "reordered keys and odd spacing");
    free(m);

    /* every truncation of a good file fails */
    float v[6] = {1, 2, 3, 4, 5, 6};
    CHECK_OK(gc_npy_write_f32(g_path, v, 2, 3));
    char *raw = NULL;
    size_t len = 0;
    CHECK_OK(gc_read_file(g_path, &raw, &len));
    int all_fail = 1;
    for (size_t cut = 0; raw && cut < len; cut++) {
        CHECK_OK(gc_write_file_atomic(g_path, raw, cut));
        m = NULL;
        if (gc_npy_read_f32(g_path, &m, &r, &c) == GC_OK) {
            all_fail = 0;
            free(m);
        }
    }
    CHECK(all_fail, "every truncated file is refused");
    free(raw);

    unlink(g_path);
    CHECK(gc_npy_read_f32(g_path, &m, &r, &c) == GC_ERR_IO, "missing file");
}

int main(void) {
    snprintf(g_path, sizeof g_path, "%s/test_npy_tmp.npy", GC_BINARY_DIR);
    test_round_trip();
    test_numpy_files();
    test_hostile();
    return test_summary("test_npy");
}

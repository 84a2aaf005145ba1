/* npy.c: float32 matrices as NumPy .npy files (embeddings and other outputs).
 *
 * A .npy file is the magic "\x93NUMPY", a version (major, minor), a little-endian header
 * length (2 bytes in version 1, 4 in versions 2 and 3), and a Python dict literal giving
 * descr, fortran_order and shape, padded with spaces and a final newline so the data starts
 * at a multiple of 64 bytes; the raw array follows. */
#include "gc_io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "this .npy code writes '<f4' straight from memory; it assumes a little-endian host"
#endif

static const char k_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

gc_status gc_npy_write_f32(const char *path, const float *data, size_t rows, size_t cols) {
    if (!path || (!data && rows && cols))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_npy_write_f32: NULL argument");
    if (cols && rows > SIZE_MAX / sizeof(float) / cols)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: %zu x %zu is too large", path, rows, cols);
    char dict[160];
    int dl =
        snprintf(dict, sizeof dict,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    /* 10 bytes of preamble, the dict, spaces, '\n': a multiple of 64 in all. */
    size_t total = 10 + (size_t)dl + 1;
    total = (total + 63) & ~(size_t)63;
    size_t hlen = total - 10;
    char head[256];
    memcpy(head, k_magic, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (char)(hlen & 0xff);
    head[9] = (char)(hlen >> 8);
    memcpy(head + 10, dict, (size_t)dl);
    memset(head + 10 + dl, ' ', hlen - (size_t)dl - 1);
    head[total - 1] = '\n';

    gc_afile *f = NULL;
    gc_status s = gc_afile_open(&f, path);
    if (s == GC_OK) s = gc_afile_write(f, head, total);
    if (s == GC_OK) s = gc_afile_write(f, data, rows * cols * sizeof(float));
    if (s == GC_OK) return gc_afile_commit(f);
    if (f) gc_afile_abort(f);
    return s;
}

/* ---- reading: a small parser for the header's Python dict literal ---- */

typedef struct hparse {
    const char *p, *end;
} hparse;

static void skip_ws(hparse *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int eat(hparse *h, char c) {
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

/* A quoted string ('...' or "...", no escapes) into out; returns 0 on failure. */
static int parse_str(hparse *h, char *out, size_t cap) {
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return 0;
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *h->p++;
    }
    if (h->p >= h->end) return 0;
    h->p++;
    out[n] = '\0';
    return 1;
}

static int parse_word(hparse *h, const char *w) {
    skip_ws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return 0;
    h->p += n;
    return 1;
}

/* A tuple of non-negative integers; returns the count, or -1. */
static int parse_shape(hparse *h, uint64_t *dims, int maxd) {
    if (!eat(h, '(')) return -1;
    int nd = 0;
    for (;;) {
        if (eat(h, ')')) return nd;
        skip_ws(h);
        if (h->p >= h->end || *h->p < '0' || *h->p > '9' || nd == maxd) return -1;
        uint64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10) return -1;
            v = v * 10 + (uint64_t)(*h->p++ - '0');
        }
        if (h->p < h->end && *h->p == 'L') h->p++; /* Python 2 longs */
        dims[nd++] = v;
        if (eat(h, ',')) continue;
        if (eat(h, ')')) return nd;
        return -1;
    }
}

gc_status gc_npy_read_f32(const char *path, float **data, size_t *rows, size_t *cols) {
    if (!path || !data || !rows || !cols)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_npy_read_f32: NULL argument");
    *data = NULL;
    *rows = *cols = 0;
    char *buf;
    size_t len;
    gc_status s = gc_read_file(path, &buf, &len);
    if (s != GC_OK) return s;
    const unsigned char *u = (const unsigned char *)buf;
    s = GC_ERR_FORMAT;
    if (len < 10 || memcmp(buf, k_magic, 6) != 0) {
        gc_set_error(s, "%s: not a .npy file (bad magic)", path);
        goto fail;
    }
    size_t hlen, pre;
    if (u[6] == 1 && u[7] == 0) {
        hlen = (size_t)u[8] | (size_t)u[9] << 8;
        pre = 10;
    } else if ((u[6] == 2 || u[6] == 3) && u[7] == 0 && len >= 12) {
        hlen = (size_t)u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16 | (size_t)u[11] << 24;
        pre = 12;
    } else {
        gc_set_error(s, "%s: unsupported .npy version %d.%d", path, u[6], u[7]);
        goto fail;
    }
    if (hlen > len - pre) {
        gc_set_error(s, "%s: header length %zu runs past the end of the file", path, hlen);
        goto fail;
    }
    hparse h = {buf + pre, buf + pre + hlen};
    char descr[32] = "";
    int fortran = -1, nd = -1;
    uint64_t dims[8];
    if (!eat(&h, '{')) {
        gc_set_error(s, "%s: header is not a dict", path);
        goto fail;
    }
    for (;;) {
        if (eat(&h, '}')) break;
        char key[32];
        if (!parse_str(&h, key, sizeof key) || !eat(&h, ':')) {
            gc_set_error(s, "%s: malformed header dict", path);
            goto fail;
        }
        int ok;
        if (strcmp(key, "descr") == 0 && !descr[0]) {
            ok = parse_str(&h, descr, sizeof descr) && descr[0];
        } else if (strcmp(key, "fortran_order") == 0 && fortran < 0) {
            ok = 1;
            if (parse_word(&h, "False"))
                fortran = 0;
            else if (parse_word(&h, "True"))
                fortran = 1;
            else
                ok = 0;
        } else if (strcmp(key, "shape") == 0 && nd < 0) {
            nd = parse_shape(&h, dims, 8);
            ok = nd >= 0;
        } else {
            gc_set_error(s, "%s: unexpected or repeated header key '%s'", path, key);
            goto fail;
        }
        if (!ok) {
            gc_set_error(s, "%s: bad value for header key '%s'", path, key);
            goto fail;
        }
        if (eat(&h, ',')) continue;
        if (eat(&h, '}')) break;
        gc_set_error(s, "%s: malformed header dict", path);
        goto fail;
    }
    skip_ws(&h);
    if (h.p != h.end) {
        gc_set_error(s, "%s: trailing bytes after the header dict", path);
        goto fail;
    }
    if (!descr[0] || fortran < 0 || nd < 0) {
        gc_set_error(s, "%s: header lacks descr, fortran_order or shape", path);
        goto fail;
    }
    if (strcmp(descr, "<f4") != 0) {
        s = GC_ERR_UNSUPPORTED;
        gc_set_error(s, "%s: dtype '%s' is not little-endian float32 ('<f4')", path, descr);
        goto fail;
    }
    if (fortran) {
        s = GC_ERR_UNSUPPORTED;
        gc_set_error(s, "%s: Fortran-order arrays are not supported", path);
        goto fail;
    }
    if (nd != 2) {
        gc_set_error(s, "%s: array has %d dimensions, expected 2", path, nd);
        goto fail;
    }
    size_t off = pre + hlen;
    if (dims[0] > SIZE_MAX || dims[1] > SIZE_MAX ||
        (dims[1] && dims[0] > SIZE_MAX / sizeof(float) / dims[1])) {
        gc_set_error(s, "%s: shape is too large", path);
        goto fail;
    }
    size_t nbytes = (size_t)dims[0] * (size_t)dims[1] * sizeof(float);
    if (len - off != nbytes) {
        gc_set_error(s, "%s: data is %zu bytes, shape (%llu, %llu) needs %zu", path, len - off,
                     (unsigned long long)dims[0], (unsigned long long)dims[1], nbytes);
        goto fail;
    }
    float *out = malloc(nbytes ? nbytes : 1);
    if (!out) {
        s = gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (nbytes) memcpy(out, buf + off, nbytes);
    free(buf);
    *data = out;
    *rows = (size_t)dims[0];
    *cols = (size_t)dims[1];
    return GC_OK;
fail:
    free(buf);
    return s;
}

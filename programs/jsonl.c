/* jsonl.c: one string field from every line of a JSONL (or gzip JSONL) file, for `encode`.
 * zlib reads plain files transparently, so detection is by content, not by name; a corrupt
 * or truncated gzip stream is an error. */
#include "jsonl.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static gc_status read_all(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return gc_set_error(GC_ERR_IO, "%s: cannot open: %s", path,
                            errno ? strerror(errno) : "gzopen failed");
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        gzclose(f);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (cap - n < (1 << 15)) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                gzclose(f);
                return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        int r = gzread(f, buf + n, (unsigned)(cap - n - 1));
        if (r < 0) {
            int err = 0;
            const char *msg = gzerror(f, &err);
            gc_status st = err == Z_ERRNO ? gc_set_error(GC_ERR_IO, "%s: %s", path, strerror(errno))
                           : strncmp(msg, path, strlen(path)) == 0
                               ? gc_set_error(GC_ERR_FORMAT, "%s", msg)
                               : gc_set_error(GC_ERR_FORMAT, "%s: %s", path, msg);
            free(buf);
            gzclose(f);
            return st;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    int err = 0;
    const char *msg = gzerror(f, &err);
    if (err != Z_OK && err != Z_STREAM_END) {
        /* zlib's message already starts with the path */
        gc_status st = strncmp(msg, path, strlen(path)) == 0
                           ? gc_set_error(GC_ERR_FORMAT, "%s", msg)
                           : gc_set_error(GC_ERR_FORMAT, "%s: %s", path, msg);
        free(buf);
        gzclose(f);
        return st;
    }
    /* zlib reports a gzip stream cut short as Z_BUF_ERROR only at close */
    int cr = gzclose(f);
    if (cr != Z_OK) {
        free(buf);
        return gc_set_error(GC_ERR_FORMAT, "%s: truncated or corrupt gzip stream", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return GC_OK;
}

static int blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

void cli_texts_free(cli_texts *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->texts[i]);
    free(t->texts);
    memset(t, 0, sizeof *t);
}

gc_status cli_read_field(const char *path, const char *field, cli_texts *out) {
    memset(out, 0, sizeof *out);
    char *data = NULL;
    size_t len = 0;
    gc_status st = read_all(path, &data, &len);
    if (st != GC_OK) return st;
    size_t cap = 1024, line = 0;
    out->texts = malloc(cap * sizeof(char *));
    if (!out->texts) {
        free(data);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t pos = 0;
    while (pos < len) {
        const char *p = data + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        if (blank(p, n)) continue;
        json_error_t jerr;
        json_t *obj = json_loadb(p, n, 0, &jerr);
        if (!obj) {
            st = gc_set_error(GC_ERR_FORMAT, "%s:%zu: invalid JSON: %s", path, line, jerr.text);
            goto fail;
        }
        json_t *v = json_is_object(obj) ? json_object_get(obj, field) : NULL;
        if (!json_is_object(obj)) {
            json_decref(obj);
            st = gc_set_error(GC_ERR_FORMAT, "%s:%zu: expected a JSON object", path, line);
            goto fail;
        }
        if (!json_is_string(v)) {
            json_decref(obj);
            st = gc_set_error(GC_ERR_FORMAT, "%s:%zu: %s field \"%s\"", path, line,
                              v ? "non-string" : "missing", field);
            goto fail;
        }
        if (out->n == cap) {
            char **nt = realloc(out->texts, 2 * cap * sizeof(char *));
            if (!nt) {
                json_decref(obj);
                st = gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            out->texts = nt;
            cap *= 2;
        }
        size_t sl = json_string_length(v);
        char *s = malloc(sl + 1);
        if (!s) {
            json_decref(obj);
            st = gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        memcpy(s, json_string_value(v), sl + 1);
        out->texts[out->n++] = s;
        json_decref(obj);
    }
    free(data);
    if (out->n == 0) {
        cli_texts_free(out);
        return gc_set_error(GC_ERR_FORMAT, "%s: no data lines (empty file)", path);
    }
    return GC_OK;
fail:
    free(data);
    cli_texts_free(out);
    return st;
}

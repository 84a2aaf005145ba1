/* checkpoint.c: the training checkpoint file: write through the atomic writer with a running
 * crc32, read by validating every size against the file before trusting it. */
#include "gc_io.h"
#include "gc_train.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char MAGIC[8] = {'G', 'C', 'C', 'K', 'P', 'T', 0, 0};

static uint32_t crc_update(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n) { /* zlib's length is 32-bit */
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, b, k);
        b += k;
        n -= k;
    }
    return crc;
}

typedef struct writer {
    gc_afile *f;
    uint32_t crc;
    gc_status st;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->st != GC_OK || n == 0) return;
    w->crc = crc_update(w->crc, p, n);
    w->st = gc_afile_write(w->f, p, n);
}

static void put_u64(writer *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 8);
}

static void put_pad(writer *w, size_t n) {
    static const unsigned char zeros[8] = {0};
    if (n % 8) put(w, zeros, 8 - n % 8);
}

/* Float arrays are written in host order; the reader refuses a file from a host of the
 * other byte order (see the version word). */
static void put_floats(writer *w, const float *x, size_t n) {
    put_u64(w, n);
    put(w, x, n * sizeof(float));
    put_pad(w, n * sizeof(float));
}

static int host_is_little(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

gc_status gc_checkpoint_write(const char *path, const gc_checkpoint *ck) {
    if (!path || !ck || (!ck->params && ck->num_params) || (!ck->state && ck->state_size) ||
        (!ck->tau_state && ck->tau_state_size))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_checkpoint_write: NULL argument");
    if (!host_is_little())
        return gc_set_error(GC_ERR_UNSUPPORTED,
                            "gc_checkpoint_write: big-endian hosts are not supported");
    writer w = {NULL, 0, GC_OK};
    gc_status st = gc_afile_open(&w.f, path);
    if (st != GC_OK) return st;
    const char *args = ck->args ? ck->args : "";
    size_t args_len = strlen(args);
    put(&w, MAGIC, 8);
    put_u64(&w, GC_CHECKPOINT_VERSION);
    put_u64(&w, ck->step);
    put_u64(&w, ck->epoch);
    put_u64(&w, ck->position);
    put_u64(&w, ck->seed);
    put_u64(&w, args_len);
    put(&w, args, args_len);
    put_pad(&w, args_len);
    put_floats(&w, ck->params, ck->num_params);
    put_u64(&w, ck->optim_step);
    put_floats(&w, ck->state, ck->state_size);
    float tau[2] = {ck->log_tau, 0};
    put(&w, tau, 8);
    put_u64(&w, ck->tau_step);
    put_floats(&w, ck->tau_state, ck->tau_state_size);
    if (w.st == GC_OK) {
        unsigned char tail[8] = {0};
        for (int i = 0; i < 4; i++) tail[i] = (unsigned char)(w.crc >> (8 * i));
        w.st = gc_afile_write(w.f, tail, 8);
    }
    if (w.st != GC_OK) {
        gc_afile_abort(w.f);
        return w.st;
    }
    return gc_afile_commit(w.f);
}

typedef struct reader {
    const unsigned char *p;
    size_t len, pos;
} reader;

static int get_u64(reader *r, uint64_t *v) {
    if (r->len - r->pos < 8) return 0;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x |= (uint64_t)r->p[r->pos + i] << (8 * i);
    r->pos += 8;
    *v = x;
    return 1;
}

/* n bytes plus padding to 8; returns the start or NULL when the file is too short */
static const void *get_bytes(reader *r, uint64_t n) {
    uint64_t padded = n + (n % 8 ? 8 - n % 8 : 0);
    if (n > r->len || padded > r->len - r->pos) return NULL;
    const void *at = r->p + r->pos;
    r->pos += (size_t)padded;
    return at;
}

static int get_floats(reader *r, size_t *n, const float **x) {
    uint64_t count;
    if (!get_u64(r, &count) || count > r->len / sizeof(float)) return 0;
    const void *at = get_bytes(r, count * sizeof(float));
    if (!at) return 0;
    *n = (size_t)count;
    *x = at;
    return 1;
}

/* Parse a buffer this checkpoint owns (malloc'd, so suitably aligned for floats). */
static gc_status parse_owned(void *buf, size_t len, gc_checkpoint *ck, const char *name) {
    memset(ck, 0, sizeof *ck);
    ck->buffer_ = buf;
    reader r = {buf, len, 0};
    uint64_t version, args_len;
    const char *what = "header";
    if (len < 8 || memcmp(buf, MAGIC, 8) != 0) {
        gc_checkpoint_free(ck);
        return gc_set_error(GC_ERR_FORMAT, "%s: not a gradcache checkpoint (bad magic)", name);
    }
    r.pos = 8;
    if (!get_u64(&r, &version)) goto short_file;
    if (version != GC_CHECKPOINT_VERSION) {
        gc_checkpoint_free(ck);
        return gc_set_error(GC_ERR_FORMAT, "%s: checkpoint version %llu, this build reads %u", name,
                            (unsigned long long)version, GC_CHECKPOINT_VERSION);
    }
    if (len < 16 || len % 8) {
        what = "final block (length not a multiple of 8)";
        goto short_file;
    }
    {
        /* the crc first: nothing below is trusted unless the whole file is intact */
        uint32_t want = 0;
        const unsigned char *t = (const unsigned char *)buf + len - 8;
        for (int i = 0; i < 4; i++) want |= (uint32_t)t[i] << (8 * i);
        if (crc_update(0, buf, len - 8) != want || (t[4] | t[5] | t[6] | t[7])) {
            gc_checkpoint_free(ck);
            return gc_set_error(GC_ERR_FORMAT,
                                "%s: checksum mismatch (truncated or corrupted checkpoint)", name);
        }
        r.len = len - 8;
    }
    if (!get_u64(&r, &ck->step) || !get_u64(&r, &ck->epoch) || !get_u64(&r, &ck->position) ||
        !get_u64(&r, &ck->seed) || !get_u64(&r, &args_len))
        goto short_file;
    what = "arguments";
    const char *args = get_bytes(&r, args_len);
    if (!args) goto short_file;
    if (memchr(args, '\0', (size_t)args_len)) {
        gc_checkpoint_free(ck);
        return gc_set_error(GC_ERR_FORMAT, "%s: NUL inside the argument text", name);
    }
    /* the argument text is padded with zeros to 8 bytes; with no padding, copy it out */
    {
        char *a = malloc((size_t)args_len + 1);
        if (!a) {
            gc_checkpoint_free(ck);
            return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", name);
        }
        memcpy(a, args, (size_t)args_len);
        a[args_len] = '\0';
        ck->args = a;
    }
    what = "parameters";
    if (!get_floats(&r, &ck->num_params, &ck->params)) goto short_file;
    what = "optimizer state";
    if (!get_u64(&r, &ck->optim_step) || !get_floats(&r, &ck->state_size, &ck->state))
        goto short_file;
    what = "temperature";
    const float *tau = get_bytes(&r, 8);
    if (!tau || !get_u64(&r, &ck->tau_step) || !get_floats(&r, &ck->tau_state_size, &ck->tau_state))
        goto short_file;
    ck->log_tau = tau[0];
    if (ck->tau_state_size != 0 && ck->tau_state_size != 2) {
        gc_checkpoint_free(ck);
        return gc_set_error(GC_ERR_FORMAT, "%s: temperature state of %zu floats", name,
                            ck->tau_state_size);
    }
    if (ck->state_size != 0 && ck->state_size != 2 * ck->num_params) {
        gc_checkpoint_free(ck);
        return gc_set_error(GC_ERR_FORMAT, "%s: optimizer state of %zu floats for %zu parameters",
                            name, ck->state_size, ck->num_params);
    }
    if (r.pos != r.len) {
        gc_checkpoint_free(ck);
        return gc_set_error(GC_ERR_FORMAT, "%s: %zu unexpected bytes after the temperature state",
                            name, r.len - r.pos);
    }
    return GC_OK;
short_file:
    gc_checkpoint_free(ck);
    return gc_set_error(GC_ERR_FORMAT, "%s: checkpoint ends inside the %s", name, what);
}

gc_status gc_checkpoint_read(const char *path, gc_checkpoint *ck) {
    if (!path || !ck) return gc_set_error(GC_ERR_INVALID_ARG, "gc_checkpoint_read: NULL argument");
    memset(ck, 0, sizeof *ck);
    char *data = NULL;
    size_t len = 0;
    gc_status st = gc_read_file(path, &data, &len);
    if (st != GC_OK) return st;
    return parse_owned(data, len, ck, path);
}

gc_status gc_checkpoint_parse(const void *buf, size_t len, gc_checkpoint *ck) {
    if ((!buf && len) || !ck)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_checkpoint_parse: NULL argument");
    memset(ck, 0, sizeof *ck);
    void *copy = malloc(len ? len : 1);
    if (!copy) return gc_set_error(GC_ERR_NOMEM, "gc_checkpoint_parse: out of memory");
    if (len) memcpy(copy, buf, len);
    return parse_owned(copy, len, ck, "checkpoint");
}

void gc_checkpoint_free(gc_checkpoint *ck) {
    if (!ck) return;
    free(ck->buffer_);
    free((char *)ck->args);
    memset(ck, 0, sizeof *ck);
}

/* safetensors.c: reading (mmap or caller buffer) and writing .safetensors files.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional "__metadata__" object of
 * strings), then the data area the offsets index into. Everything in the header is checked
 * before any tensor is handed out, so a tensor's bytes always lie inside the file. */
#include "gc_io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

/* The reference implementation refuses headers above 100 MB; so do we, before allocating. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {
    [GC_DTYPE_F32] = {"F32", 4},         [GC_DTYPE_F16] = {"F16", 2},
    [GC_DTYPE_BF16] = {"BF16", 2},       [GC_DTYPE_F64] = {"F64", 8},
    [GC_DTYPE_I64] = {"I64", 8},         [GC_DTYPE_I32] = {"I32", 4},
    [GC_DTYPE_I16] = {"I16", 2},         [GC_DTYPE_I8] = {"I8", 1},
    [GC_DTYPE_U64] = {"U64", 8},         [GC_DTYPE_U32] = {"U32", 4},
    [GC_DTYPE_U16] = {"U16", 2},         [GC_DTYPE_U8] = {"U8", 1},
    [GC_DTYPE_BOOL] = {"BOOL", 1},       [GC_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [GC_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};
#define NUM_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

const char *gc_dtype_str(gc_dtype d) {
    return ((int)d >= 0 && (int)d < NUM_DTYPES) ? k_dtypes[d].name : "?";
}

size_t gc_dtype_size(gc_dtype d) {
    return ((int)d >= 0 && (int)d < NUM_DTYPES) ? k_dtypes[d].size : 0;
}

typedef struct st_entry {
    gc_st_tensor t; /* first, so a gc_st_tensor pointer is an entry pointer */
    size_t begin, end;
} st_entry;

struct gc_safetensors {
    const uint8_t *buf;
    size_t len;
    void *map;    /* non-NULL when we own a mapping of buf */
    char *name;   /* the path, or "<memory>", for messages */
    json_t *root; /* kept alive: tensor names and metadata point into it */
    json_t *meta;
    st_entry *e;
    int n;
};

/* Record "file: tensor 'x': message" (or "file: message" when tensor is NULL). */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static gc_status
st_error(const gc_safetensors *st, gc_status s, const char *tensor, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (tensor) return gc_set_error(s, "%s: tensor '%s': %s", st->name, tensor, msg);
    return gc_set_error(s, "%s: %s", st->name, msg);
}

static int cmp_offsets(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static gc_status parse_entry(gc_safetensors *st, st_entry *e, const char *name, json_t *v,
                             size_t data_len, const uint8_t *data) {
    if (!json_is_object(v)) return st_error(st, GC_ERR_FORMAT, name, "entry is not a JSON object");
    e->t.name = name;

    json_t *jd = json_object_get(v, "dtype");
    if (!json_is_string(jd))
        return st_error(st, GC_ERR_FORMAT, name, "\"dtype\" missing or not a string");
    const char *ds = json_string_value(jd);
    int dt = -1;
    for (int i = 0; i < NUM_DTYPES; i++)
        if (strcmp(ds, k_dtypes[i].name) == 0) dt = i;
    if (dt < 0) return st_error(st, GC_ERR_UNSUPPORTED, name, "unknown dtype '%s'", ds);
    e->t.dtype = (gc_dtype)dt;

    json_t *js = json_object_get(v, "shape");
    if (!json_is_array(js))
        return st_error(st, GC_ERR_FORMAT, name, "\"shape\" missing or not an array");
    size_t nd = json_array_size(js);
    if (nd > GC_ST_MAX_DIMS)
        return st_error(st, GC_ERR_FORMAT, name, "shape has %zu dimensions (at most %d)", nd,
                        GC_ST_MAX_DIMS);
    e->t.ndim = (int)nd;
    size_t numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return st_error(st, GC_ERR_FORMAT, name, "shape[%zu] is not a non-negative integer", i);
        json_int_t dim = json_integer_value(d);
        e->t.shape[i] = (int64_t)dim;
        if ((uint64_t)dim > SIZE_MAX)
            overflow = 1;
        else if (dim != 0 && numel > SIZE_MAX / (size_t)dim)
            overflow = 1;
        else
            numel *= (size_t)dim;
    }
    /* A zero dimension empties the tensor whatever the others say. */
    for (size_t i = 0; i < nd; i++)
        if (e->t.shape[i] == 0) overflow = 0, numel = 0;
    size_t esize = k_dtypes[dt].size;
    if (overflow || numel > SIZE_MAX / esize)
        return st_error(st, GC_ERR_FORMAT, name, "shape is too large (element count overflows)");
    e->t.numel = numel;
    e->t.nbytes = numel * esize;

    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return st_error(st, GC_ERR_FORMAT, name, "\"data_offsets\" is not two integers");
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t en = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || en < b)
        return st_error(st, GC_ERR_FORMAT, name,
                        "data_offsets [%lld, %lld] are not 0 <= begin <= end", (long long)b,
                        (long long)en);
    if ((uint64_t)en > data_len)
        return st_error(st, GC_ERR_FORMAT, name,
                        "data_offsets end %lld is past the data area (%zu bytes)", (long long)en,
                        data_len);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    if (e->end - e->begin != e->t.nbytes)
        return st_error(st, GC_ERR_FORMAT, name,
                        "holds %zu bytes but dtype %s and its shape need %zu", e->end - e->begin,
                        ds, e->t.nbytes);
    e->t.data = data + e->begin;
    return GC_OK;
}

static gc_status st_parse(gc_safetensors *st) {
    if (st->len < 8)
        return st_error(st, GC_ERR_FORMAT, NULL,
                        "file is %zu bytes, shorter than the 8-byte header length", st->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->buf[i];
    if (hlen > ST_MAX_HEADER)
        return st_error(st, GC_ERR_FORMAT, NULL, "header length %llu is absurdly large",
                        (unsigned long long)hlen);
    if (hlen > st->len - 8)
        return st_error(st, GC_ERR_FORMAT, NULL,
                        "header length %llu runs past the end of the file (%zu bytes)",
                        (unsigned long long)hlen, st->len);
    const uint8_t *data = st->buf + 8 + hlen;
    size_t data_len = st->len - 8 - (size_t)hlen;

    json_error_t jerr;
    st->root = json_loadb((const char *)st->buf + 8, (size_t)hlen,
                          JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!st->root)
        return st_error(st, GC_ERR_FORMAT, NULL, "header is not valid JSON: %s (at byte %d)",
                        jerr.text, jerr.position);
    if (!json_is_object(st->root))
        return st_error(st, GC_ERR_FORMAT, NULL, "header is not a JSON object");

    size_t cap = json_object_size(st->root);
    st->e = calloc(cap ? cap : 1, sizeof *st->e);
    if (!st->e) return st_error(st, GC_ERR_NOMEM, NULL, "out of memory for %zu tensors", cap);

    const char *key;
    json_t *v;
    json_object_foreach(st->root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v))
                return st_error(st, GC_ERR_FORMAT, NULL, "\"__metadata__\" is not an object");
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv))
                    return st_error(st, GC_ERR_FORMAT, NULL,
                                    "\"__metadata__\" value '%s' is not a string", mk);
            }
            st->meta = v;
            continue;
        }
        gc_status s = parse_entry(st, &st->e[st->n], key, v, data_len, data);
        if (s != GC_OK) return s;
        st->n++;
    }

    /* Names: JSON_REJECT_DUPLICATES already refuses repeated keys; this also catches names
     * that compare equal as C strings. */
    if (st->n > 1) {
        const char **names = malloc((size_t)st->n * sizeof *names);
        if (!names) return st_error(st, GC_ERR_NOMEM, NULL, "out of memory");
        for (int i = 0; i < st->n; i++) names[i] = st->e[i].t.name;
        qsort(names, (size_t)st->n, sizeof *names, cmp_names);
        for (int i = 1; i < st->n; i++) {
            if (strcmp(names[i - 1], names[i]) == 0) {
                gc_status s = st_error(st, GC_ERR_FORMAT, names[i], "name appears twice");
                free(names);
                return s;
            }
        }
        free(names);
    }

    /* Ranges, in file order: each must end before the next begins. */
    qsort(st->e, (size_t)st->n, sizeof *st->e, cmp_offsets);
    for (int i = 1; i < st->n; i++) {
        if (st->e[i].begin < st->e[i - 1].end)
            return st_error(st, GC_ERR_FORMAT, st->e[i].t.name,
                            "data [%zu, %zu) overlaps tensor '%s' [%zu, %zu)", st->e[i].begin,
                            st->e[i].end, st->e[i - 1].t.name, st->e[i - 1].begin,
                            st->e[i - 1].end);
    }
    return GC_OK;
}

static gc_status st_new(gc_safetensors **out, const char *name) {
    gc_safetensors *st = calloc(1, sizeof *st);
    char *nm = strdup(name);
    if (!st || !nm) {
        free(st);
        free(nm);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", name);
    }
    st->name = nm;
    *out = st;
    return GC_OK;
}

gc_status gc_st_open_memory(gc_safetensors **out, const void *buf, size_t len) {
    if (!out || (!buf && len))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_st_open_memory: NULL argument");
    *out = NULL;
    gc_safetensors *st = NULL;
    gc_status s = st_new(&st, "<memory>");
    if (s != GC_OK) return s;
    st->buf = buf ? buf : (const uint8_t *)"";
    st->len = len;
    s = st_parse(st);
    if (s != GC_OK) {
        gc_st_close(st);
        return s;
    }
    *out = st;
    return GC_OK;
}

gc_status gc_st_open(gc_safetensors **out, const char *path) {
    if (!out || !path) return gc_set_error(GC_ERR_INVALID_ARG, "gc_st_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gc_set_error(GC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return gc_set_error(GC_ERR_IO, "%s: not a regular file", path);
    }
    gc_safetensors *st = NULL;
    gc_status s = st_new(&st, path);
    if (s != GC_OK) {
        close(fd);
        return s;
    }
    st->len = (size_t)sb.st_size;
    if (st->len >= 8) {
        void *m = mmap(NULL, st->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            s = gc_set_error(GC_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
            close(fd);
            gc_st_close(st);
            return s;
        }
        st->map = m;
        st->buf = m;
    } else {
        st->buf = (const uint8_t *)"";
    }
    close(fd);
    s = st_parse(st);
    if (s != GC_OK) {
        gc_st_close(st);
        return s;
    }
    *out = st;
    return GC_OK;
}

void gc_st_close(gc_safetensors *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->len);
    json_decref(st->root);
    free(st->e);
    free(st->name);
    free(st);
}

int gc_st_count(const gc_safetensors *st) {
    return st ? st->n : 0;
}

const gc_st_tensor *gc_st_get(const gc_safetensors *st, int i) {
    if (!st || i < 0 || i >= st->n) return NULL;
    return &st->e[i].t;
}

static const gc_st_tensor *find_exact(const gc_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->e[i].t.name, name) == 0) return &st->e[i].t;
    return NULL;
}

const gc_st_tensor *gc_st_find(const gc_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    const gc_st_tensor *t = find_exact(st, name);
    if (t) return t;
    /* Checkpoints of a bare BertModel and of BertFor* models differ by this prefix. */
    static const char prefix[] = "bert.";
    const size_t plen = sizeof prefix - 1;
    if (strncmp(name, prefix, plen) == 0) return find_exact(st, name + plen);
    for (int i = 0; i < st->n; i++) {
        const char *n = st->e[i].t.name;
        if (strncmp(n, prefix, plen) == 0 && strcmp(n + plen, name) == 0) return &st->e[i].t;
    }
    return NULL;
}

const char *gc_st_metadata(const gc_safetensors *st, const char *key) {
    if (!st || !st->meta || !key) return NULL;
    return json_string_value(json_object_get(st->meta, key));
}

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* IEEE half -> single, exactly (every half is representable as a single). */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        return f32_from_bits(sign | f32_bits((float)mant * 0x1p-24f));
    }
    if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13)); /* inf, nan */
    return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

gc_status gc_st_read_f32(const gc_st_tensor *t, float *dst, size_t n) {
    if (!t || (!dst && n)) return gc_set_error(GC_ERR_INVALID_ARG, "gc_st_read_f32: NULL argument");
    if (t->numel != n)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "tensor '%s' has %zu elements, the caller expected %zu", t->name,
                            t->numel, n);
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case GC_DTYPE_F32:
        if (n) memcpy(dst, src, n * sizeof(float));
        return GC_OK;
    case GC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return GC_OK;
    case GC_DTYPE_BF16:
        /* bfloat16 is the top half of a float32: nan, inf and subnormals carry over. */
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = f32_from_bits((uint32_t)h << 16);
        }
        return GC_OK;
    default:
        return gc_set_error(GC_ERR_UNSUPPORTED, "tensor '%s': dtype %s cannot be read as float32",
                            t->name, gc_dtype_str(t->dtype));
    }
}

gc_status gc_st_write(const char *path, const gc_st_item *items, int n, const char *format_meta) {
    if (!path || n < 0 || (n > 0 && !items))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_st_write: bad arguments");
    gc_status s = GC_OK;
    json_t *root = json_object();
    if (!root) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    if (format_meta) {
        json_t *meta = json_pack("{s:s}", "format", format_meta);
        if (!meta || json_object_set_new(root, "__metadata__", meta) != 0) {
            json_decref(root);
            return gc_set_error(GC_ERR_INVALID_ARG, "%s: metadata format is not valid UTF-8", path);
        }
    }
    size_t offset = 0;
    for (int i = 0; i < n && s == GC_OK; i++) {
        const gc_st_item *it = &items[i];
        if (!it->name || !*it->name || strcmp(it->name, "__metadata__") == 0) {
            s = gc_set_error(GC_ERR_INVALID_ARG, "%s: item %d has no usable name", path, i);
            break;
        }
        if (json_object_get(root, it->name)) {
            s = gc_set_error(GC_ERR_INVALID_ARG, "%s: tensor '%s' appears twice", path, it->name);
            break;
        }
        if (it->ndim < 0 || it->ndim > GC_ST_MAX_DIMS) {
            s = gc_set_error(GC_ERR_INVALID_ARG, "%s: tensor '%s' has %d dimensions", path,
                             it->name, it->ndim);
            break;
        }
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < it->ndim && shape; d++) {
            int64_t dim = it->shape[d];
            if (dim < 0 || (dim != 0 && numel > SIZE_MAX / 4 / (uint64_t)dim)) {
                s = gc_set_error(GC_ERR_INVALID_ARG, "%s: tensor '%s' has a bad shape", path,
                                 it->name);
                break;
            }
            numel *= (size_t)dim;
            json_array_append_new(shape, json_integer((json_int_t)dim));
        }
        if (s == GC_OK && numel && !it->data)
            s = gc_set_error(GC_ERR_INVALID_ARG, "%s: tensor '%s' has no data", path, it->name);
        size_t nbytes = numel * sizeof(float);
        if (s == GC_OK && nbytes > (size_t)INT64_MAX - offset)
            s = gc_set_error(GC_ERR_INVALID_ARG, "%s: tensors add up to too many bytes", path);
        json_t *entry = NULL;
        if (s == GC_OK && shape)
            entry = json_pack("{s:s,s:O,s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                              (json_int_t)offset, (json_int_t)(offset + nbytes));
        json_decref(shape);
        if (s != GC_OK) break;
        if (!entry || json_object_set_new(root, it->name, entry) != 0) {
            s = gc_set_error(GC_ERR_INVALID_ARG, "%s: cannot encode tensor '%s' (name not UTF-8?)",
                             path, it->name);
            break;
        }
        offset += nbytes;
    }
    char *header = NULL;
    if (s == GC_OK) {
        header = json_dumps(root, JSON_COMPACT);
        if (!header) s = gc_set_error(GC_ERR_NOMEM, "%s: cannot encode the header", path);
    }
    json_decref(root);
    if (s != GC_OK) return s;

    /* Pad with spaces so the data area starts 8-byte aligned, as the reference writer does. */
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) & ~(size_t)7;
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";

    gc_afile *f = NULL;
    s = gc_afile_open(&f, path);
    if (s == GC_OK) s = gc_afile_write(f, lenbuf, 8);
    if (s == GC_OK) s = gc_afile_write(f, header, hlen);
    if (s == GC_OK) s = gc_afile_write(f, spaces, padded - hlen);
    for (int i = 0; i < n && s == GC_OK; i++) {
        size_t numel = 1;
        for (int d = 0; d < items[i].ndim; d++) numel *= (size_t)items[i].shape[d];
        s = gc_afile_write(f, items[i].data, numel * sizeof(float));
    }
    free(header);
    if (s == GC_OK) return gc_afile_commit(f);
    if (f) gc_afile_abort(f);
    return s;
}

/* data.c: JSONL files, plain or gzip-compressed: training pairs, and one string field of
 * every line.
 *
 * A file is read front to back as a stream (so a pipe works as well as a file) and the whole
 * decompressed text is held in memory and cut into lines, so a line may be of any length.
 * Each non-blank line is one JSON object: for training pairs one of three shapes (ours
 * {"query", "positive", "negatives"?}, sentence-transformers' {"anchor", "positive", "negative"?
 * or "negative_1".."negative_N"}, FlagEmbedding's and Tevatron's {"query", "pos": [..],
 * "neg": [..]?}), the same in every line, or fields the caller names; or any object holding the
 * requested field. Anything else about a line is an error reported as "file:line: what". */
#include "gc_io.h"
#include "io/jsonl_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- decompression ---- */

typedef struct growbuf {
    char *p;
    size_t n, cap;
} growbuf;

/* Make room for at least `want` more bytes. */
static int growbuf_reserve(growbuf *b, size_t want) {
    if (b->cap - b->n >= want) return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap - b->n < want) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    char *np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int is_gzip(const void *buf, size_t len) {
    const unsigned char *u = buf;
    return len >= 2 && u[0] == 0x1f && u[1] == 0x8b;
}

/* Read a file to its end through zlib's gz* reader, which passes plain text through unchanged
 * and decompresses gzip members; it only reads forward, so pipes work. gzread reports a stream
 * cut short as a short read with Z_BUF_ERROR recorded, not as -1, so gzerror and gzclose must
 * be checked too. Takes over fd. */
static gc_status read_stream(int fd, const char *path, growbuf *out) {
    struct stat sb;
    size_t hint = 0; /* a regular file's size: all the room a plain file needs */
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (uint64_t)sb.st_size < SIZE_MAX / 2)
        hint = (size_t)sb.st_size + 1;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return gc_set_error(GC_ERR_NOMEM, "%s: cannot start the gzip reader", path);
    }
    gzbuffer(gz, 1 << 17);
    if (hint && growbuf_reserve(out, hint) != 0) {
        gzclose_r(gz);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, hint);
    }
    const unsigned chunk = 1u << 20;
    for (;;) {
        if (growbuf_reserve(out, 1) != 0) {
            gzclose_r(gz);
            return gc_set_error(GC_ERR_NOMEM, "%s: out of memory reading", path);
        }
        size_t room = out->cap - out->n;
        int r = gzread(gz, out->p + out->n, room < chunk ? (unsigned)room : chunk);
        if (r < 0) {
            int errnum;
            const char *msg = gzerror(gz, &errnum);
            gc_status s =
                errnum == Z_ERRNO
                    ? gc_set_error(GC_ERR_IO, "%s: cannot read: %s", path, strerror(errno))
                    : gc_set_error(GC_ERR_FORMAT, "%s: corrupt gzip stream: %s", path, msg);
            gzclose_r(gz);
            return s;
        }
        if (r == 0) break;
        out->n += (size_t)r;
    }
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum != Z_OK) {
        gc_status s =
            gc_set_error(GC_ERR_FORMAT, "%s: truncated or corrupt gzip stream: %s", path, msg);
        gzclose_r(gz);
        return s;
    }
    int c = gzclose_r(gz);
    if (c != Z_OK)
        return gc_set_error(c == Z_ERRNO ? GC_ERR_IO : GC_ERR_FORMAT,
                            "%s: gzip stream did not end cleanly (zlib error %d)", path, c);
    return GC_OK;
}

/* The same for a buffer, with inflate, and with gzread's rules: members are decoded one after
 * another, a member cut short is an error, and trailing bytes that do not begin a member are
 * ignored. */
static gc_status gunzip_memory(const unsigned char *in, size_t len, const char *name,
                               growbuf *out) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return gc_set_error(GC_ERR_NOMEM, "%s: cannot start the gzip decoder", name);
    size_t fed = 0; /* input bytes handed to zlib so far */
    gc_status s = GC_OK;
    for (;;) {
        if (zs.avail_in == 0 && fed < len) {
            size_t take = len - fed > UINT_MAX ? UINT_MAX : len - fed;
            zs.next_in = (unsigned char *)(in + fed);
            zs.avail_in = (unsigned)take;
            fed += take;
        }
        if (growbuf_reserve(out, 1 << 16) != 0) {
            s = gc_set_error(GC_ERR_NOMEM, "%s: out of memory decompressing", name);
            break;
        }
        size_t room = out->cap - out->n;
        zs.next_out = (unsigned char *)out->p + out->n;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (unsigned)room;
        unsigned before = zs.avail_out;
        int r = inflate(&zs, Z_NO_FLUSH);
        out->n += before - zs.avail_out;
        if (r == Z_STREAM_END) {
            size_t left = zs.avail_in + (len - fed);
            if (left == 0) break;
            /* Like gzread: bytes after a member that do not start another are ignored. */
            if (!is_gzip(in + len - left, left)) break;
            inflateReset(&zs);
            continue;
        }
        if (r == Z_OK) continue;
        if (r == Z_BUF_ERROR && zs.avail_in == 0 && fed == len) {
            s = gc_set_error(GC_ERR_FORMAT, "%s: truncated gzip stream: unexpected end of file",
                             name);
            break;
        }
        if (r == Z_BUF_ERROR) continue;
        s = gc_set_error(r == Z_MEM_ERROR ? GC_ERR_NOMEM : GC_ERR_FORMAT,
                         "%s: corrupt gzip stream: %s", name, zs.msg ? zs.msg : "inflate failed");
        break;
    }
    inflateEnd(&zs);
    return s;
}

/* ---- lines ---- */

void gc_dataset_free(gc_dataset *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        gc_pair *p = &d->pairs[i];
        free(p->query);
        free(p->positive);
        for (int k = 0; k < p->num_negatives; k++) free(p->negatives[k]);
        free(p->negatives);
    }
    free(d->pairs);
    free((char *)d->path);
    free(d);
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static gc_status
line_error(gc_status s, const char *name, size_t line, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gc_set_error(s, "%s:%zu: %s", name, line, msg);
}

static char *copy_string(const json_t *s) {
    size_t n = json_string_length(s);
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, json_string_value(s), n);
        c[n] = '\0';
    }
    return c;
}

/* A required non-empty string field. */
static gc_status get_text(json_t *obj, const char *key, const char *name, size_t line,
                          const json_t **out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return line_error(GC_ERR_FORMAT, name, line, "missing \"%s\"", key);
    if (!json_is_string(v))
        return line_error(GC_ERR_FORMAT, name, line, "\"%s\" is not a string", key);
    if (json_string_length(v) == 0)
        return line_error(GC_ERR_FORMAT, name, line, "\"%s\" is empty", key);
    *out = v;
    return GC_OK;
}

static int is_invalid_utf8(const json_error_t *e) {
#if JANSSON_VERSION_HEX >= 0x020e00
    return json_error_code(e) == json_error_invalid_utf8;
#else
    return strstr(e->text, "decode byte") != NULL || strstr(e->text, "UTF-8") != NULL;
#endif
}

/* The lines of a JSONL text, each parsed as a JSON object and handed to `take`. */
typedef gc_jsonl_take_fn take_fn;

static int is_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\f' && p[i] != '\v') return 0;
    return 1;
}

static gc_status each_object(const char *buf, size_t len, const char *name, take_fn take,
                             void *ctx) {
    size_t line = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
            /* a UTF-8 byte-order mark (editors on Windows write one) opens the file, nowhere else
             */
            if (p != buf)
                return line_error(
                    GC_ERR_FORMAT, name, line,
                    "a UTF-8 byte-order mark (allowed only at the start of the file)");
            p += 3;
            n -= 3;
        }
        if (memchr(p, '\0', n))
            return line_error(GC_ERR_FORMAT, name, line, "NUL byte in the line");
        if (!is_blank(p, n)) {
            json_error_t jerr;
            /* numbers as doubles: an integer beyond int64 (a uint64 id) in a field nobody reads
             * must not refuse the line; no field read here is a number */
            json_t *obj = json_loadb(
                p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
            if (!obj) {
                if (is_invalid_utf8(&jerr))
                    return line_error(GC_ERR_FORMAT, name, line, "invalid UTF-8 (%s at column %d)",
                                      jerr.text, jerr.column);
                return line_error(GC_ERR_FORMAT, name, line, "malformed JSON: %s (column %d)",
                                  jerr.text, jerr.column);
            }
            gc_status s = json_is_object(obj)
                              ? take(ctx, obj, name, line)
                              : line_error(GC_ERR_FORMAT, name, line, "not a JSON object");
            json_decref(obj);
            if (s != GC_OK) return s;
        }
        p = nl ? nl + 1 : end;
    }
    return GC_OK;
}

/* ---- training pairs ---- */

static const char *const SHAPE_NAMES[] = {
    "none",
    "query/positive/negatives",
    "anchor/positive/negative (sentence-transformers)",
    "query/pos/neg (FlagEmbedding, Tevatron)",
    "the --query-field/--positive-field/--negatives-field names",
};

const char *gc_data_shape_str(gc_data_shape shape) {
    return shape >= GC_SHAPE_NONE && shape <= GC_SHAPE_FIELDS ? SHAPE_NAMES[shape] : "unknown";
}

/* The shape one line has: "anchor" marks sentence-transformers, "pos" without "positive"
 * FlagEmbedding/Tevatron; everything else is read as ours (and missing fields named as ours). */
static gc_data_shape detect_shape(json_t *obj, const gc_data_fields *f) {
    if (f && (f->query || f->positive || f->negatives)) return GC_SHAPE_FIELDS;
    if (json_object_get(obj, "anchor")) return GC_SHAPE_ST;
    if (json_object_get(obj, "pos") && !json_object_get(obj, "positive")) return GC_SHAPE_FLAG;
    return GC_SHAPE_PAIRS;
}

/* A non-empty string, or with `many` a non-empty array of them: the texts go to v[0..*n). */
static gc_status get_texts(json_t *obj, const char *key, int many, const char *name, size_t line,
                           const json_t ***v, size_t *n) {
    json_t *x = json_object_get(obj, key);
    *n = 0;
    if (!x) return line_error(GC_ERR_FORMAT, name, line, "missing \"%s\"", key);
    if (json_is_string(x) || !json_is_array(x)) {
        const json_t *t = NULL;
        gc_status s = get_text(obj, key, name, line, &t);
        if (s != GC_OK && !json_is_string(x))
            return line_error(GC_ERR_FORMAT, name, line, "\"%s\" is not a string%s", key,
                              many ? " or an array of strings" : "");
        if (s != GC_OK) return s;
        if (!(*v = malloc(sizeof **v)))
            return line_error(GC_ERR_NOMEM, name, line, "out of memory");
        (*v)[0] = t;
        *n = 1;
        return GC_OK;
    }
    if (!many) return line_error(GC_ERR_FORMAT, name, line, "\"%s\" is not a string", key);
    size_t m = json_array_size(x);
    if (m == 0) return line_error(GC_ERR_FORMAT, name, line, "\"%s\" is an empty array", key);
    if (m > INT_MAX) return line_error(GC_ERR_FORMAT, name, line, "\"%s\": too many texts", key);
    for (size_t k = 0; k < m; k++) {
        json_t *e = json_array_get(x, k);
        if (!json_is_string(e))
            return line_error(GC_ERR_FORMAT, name, line, "\"%s\"[%zu] is not a string", key, k);
        if (json_string_length(e) == 0)
            return line_error(GC_ERR_FORMAT, name, line, "\"%s\"[%zu] is empty", key, k);
    }
    if (!(*v = malloc(m * sizeof **v)))
        return line_error(GC_ERR_NOMEM, name, line, "out of memory");
    for (size_t k = 0; k < m; k++) (*v)[k] = json_array_get(x, k);
    *n = m;
    return GC_OK;
}

/* An optional array of non-empty strings. */
static gc_status get_negative_array(json_t *obj, const char *key, const char *name, size_t line,
                                    const json_t ***v, size_t *n) {
    json_t *negs = json_object_get(obj, key);
    *n = 0;
    if (!negs) return GC_OK;
    if (!json_is_array(negs))
        return line_error(GC_ERR_FORMAT, name, line, "\"%s\" is not an array of strings", key);
    if (json_array_size(negs) > INT_MAX)
        return line_error(GC_ERR_FORMAT, name, line, "too many negatives");
    size_t m = json_array_size(negs);
    for (size_t k = 0; k < m; k++) {
        json_t *e = json_array_get(negs, k);
        if (!json_is_string(e))
            return line_error(GC_ERR_FORMAT, name, line,
                              "\"%s\"[%zu] is not a string (negatives must be an array of strings)",
                              key, k);
        if (json_string_length(e) == 0)
            return line_error(GC_ERR_FORMAT, name, line, "\"%s\"[%zu] is empty", key, k);
    }
    if (!(*v = malloc((m ? m : 1) * sizeof **v)))
        return line_error(GC_ERR_NOMEM, name, line, "out of memory");
    for (size_t k = 0; k < m; k++) (*v)[k] = json_array_get(negs, k);
    *n = m;
    return GC_OK;
}

/* sentence-transformers' negatives: an optional "negative" string, then negative_1..negative_N
 * (numbered from 1 without gaps). */
static gc_status get_st_negatives(json_t *obj, const char *name, size_t line, const json_t ***v,
                                  size_t *n) {
    *n = 0;
    size_t numbered = 0;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strncmp(key, "negative_", 9) != 0 || !key[9]) continue;
        size_t d = 9;
        while (key[d] >= '0' && key[d] <= '9') d++;
        if (!key[d]) numbered++;
    }
    if (numbered > INT_MAX) return line_error(GC_ERR_FORMAT, name, line, "too many negatives");
    json_t *single = json_object_get(obj, "negative");
    if (!(*v = malloc((numbered + 1) * sizeof **v)))
        return line_error(GC_ERR_NOMEM, name, line, "out of memory");
    const json_t *t = NULL;
    gc_status s;
    if (single) {
        if ((s = get_text(obj, "negative", name, line, &t)) != GC_OK) return s;
        (*v)[(*n)++] = t;
    }
    for (size_t k = 1; k <= numbered; k++) {
        char kname[40];
        snprintf(kname, sizeof kname, "negative_%zu", k);
        if (!json_object_get(obj, kname))
            return line_error(GC_ERR_FORMAT, name, line,
                              "%zu negative_N fields but no \"%s\" (number them from 1 without "
                              "gaps)",
                              numbered, kname);
        if ((s = get_text(obj, kname, name, line, &t)) != GC_OK) return s;
        (*v)[(*n)++] = t;
    }
    return GC_OK;
}

typedef struct pair_list {
    gc_dataset *d;
    size_t cap;
    const gc_data_fields *fields;
    size_t shape_line; /* the first line, which fixed d->shape */
} pair_list;

/* One more pair slot, zeroed and counted (so gc_dataset_free releases what it holds). */
static gc_pair *new_pair(pair_list *l) {
    gc_dataset *d = l->d;
    if (d->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        gc_pair *np = realloc(d->pairs, ncap * sizeof *np);
        if (!np) return NULL;
        d->pairs = np;
        l->cap = ncap;
    }
    gc_pair *pair = &d->pairs[d->n++];
    memset(pair, 0, sizeof *pair);
    return pair;
}

static gc_status add_pairs(pair_list *l, const json_t *q, const json_t *const *pos, size_t npos,
                           const json_t *const *neg, size_t nneg, const char *name, size_t line) {
    for (size_t j = 0; j < npos; j++) {
        gc_pair *pair = new_pair(l);
        if (!pair) return line_error(GC_ERR_NOMEM, name, line, "out of memory");
        pair->line = line;
        pair->query = copy_string(q);
        pair->positive = copy_string(pos[j]);
        int nomem = !pair->query || !pair->positive;
        if (nneg) {
            pair->negatives = calloc(nneg, sizeof *pair->negatives);
            if (pair->negatives) {
                pair->num_negatives = (int)nneg;
                for (size_t k = 0; k < nneg; k++)
                    nomem |= !(pair->negatives[k] = copy_string(neg[k]));
            } else {
                nomem = 1;
            }
        }
        if (nomem) return line_error(GC_ERR_NOMEM, name, line, "out of memory");
    }
    return GC_OK;
}

static gc_status take_pair(void *ctx, json_t *obj, const char *name, size_t line) {
    pair_list *l = ctx;
    gc_dataset *d = l->d;
    const gc_data_shape shape = detect_shape(obj, l->fields);
    if (d->shape == GC_SHAPE_NONE) {
        d->shape = shape;
        l->shape_line = line;
    } else if (shape != d->shape) {
        return line_error(GC_ERR_FORMAT, name, line,
                          "a line of the shape %s, but line %zu has the shape %s (one shape per "
                          "file)",
                          gc_data_shape_str(shape), l->shape_line, gc_data_shape_str(d->shape));
    }
    const gc_data_fields *f = l->fields;
    const char *qkey = "query", *pkey = "positive", *nkey = "negatives";
    if (shape == GC_SHAPE_ST) qkey = "anchor";
    if (shape == GC_SHAPE_FLAG) {
        pkey = "pos";
        nkey = "neg";
    }
    if (shape == GC_SHAPE_FIELDS) {
        if (f->query) qkey = f->query;
        if (f->positive) pkey = f->positive;
        if (f->negatives) nkey = f->negatives;
    }
    const json_t *q = NULL, **pos = NULL, **neg = NULL;
    size_t npos = 0, nneg = 0;
    gc_status s = get_text(obj, qkey, name, line, &q);
    if (s == GC_OK) s = get_texts(obj, pkey, 1, name, line, &pos, &npos);
    if (s == GC_OK)
        s = shape == GC_SHAPE_ST ? get_st_negatives(obj, name, line, &neg, &nneg)
                                 : get_negative_array(obj, nkey, name, line, &neg, &nneg);
    if (s == GC_OK) s = add_pairs(l, q, pos, npos, neg, nneg, name, line);
    free(pos);
    free(neg);
    return s;
}

static gc_status parse_jsonl(gc_dataset **out, const char *buf, size_t len, const char *name,
                             const gc_data_fields *fields) {
    gc_dataset *d = calloc(1, sizeof *d);
    char *path = strdup(name);
    if (!d || !path) {
        free(d);
        free(path);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", name);
    }
    d->path = path;
    pair_list l = {d, 0, fields, 0};
    gc_status s = each_object(buf, len, name, take_pair, &l);
    if (s == GC_OK && d->n == 0) s = gc_set_error(GC_ERR_FORMAT, "%s: no pairs (empty file)", name);
    if (s != GC_OK) {
        gc_dataset_free(d);
        return s;
    }
    *out = d;
    return GC_OK;
}

/* ---- whole files ---- */

/* The decompressed text of a buffer: `buf` itself when it is not gzip, else `plain`. */
static gc_status memory_text(const void *buf, size_t len, const char *name, growbuf *plain,
                             const char **text, size_t *tlen) {
    if (!is_gzip(buf, len)) {
        *text = len ? buf : "";
        *tlen = len;
        return GC_OK;
    }
    gc_status s = gunzip_memory(buf, len, name, plain);
    *text = plain->p ? plain->p : "";
    *tlen = plain->n;
    return s;
}

static gc_status file_text(const char *path, growbuf *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gc_set_error(GC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return read_stream(fd, path, out);
}

gc_status gc_dataset_load_memory_with(gc_dataset **out, const void *buf, size_t len,
                                      const char *name, const gc_data_fields *fields) {
    if (!out || (!buf && len))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_dataset_load_memory: NULL argument");
    *out = NULL;
    if (!name) name = "<memory>";
    growbuf plain = {0};
    const char *text;
    size_t tlen;
    gc_status s = memory_text(buf, len, name, &plain, &text, &tlen);
    if (s == GC_OK) s = parse_jsonl(out, text, tlen, name, fields);
    free(plain.p);
    return s;
}

gc_status gc_dataset_load_memory(gc_dataset **out, const void *buf, size_t len, const char *name) {
    return gc_dataset_load_memory_with(out, buf, len, name, NULL);
}

gc_status gc_dataset_load_with(gc_dataset **out, const char *path, const gc_data_fields *fields) {
    if (!out || !path) return gc_set_error(GC_ERR_INVALID_ARG, "gc_dataset_load: NULL argument");
    *out = NULL;
    growbuf text = {0};
    gc_status s = file_text(path, &text);
    if (s == GC_OK) s = parse_jsonl(out, text.p ? text.p : "", text.n, path, fields);
    free(text.p);
    return s;
}

gc_status gc_dataset_load(gc_dataset **out, const char *path) {
    return gc_dataset_load_with(out, path, NULL);
}

gc_status gc_jsonl_each(const char *path, gc_jsonl_take_fn take, void *ctx) {
    if (!path || !take) return gc_set_error(GC_ERR_INVALID_ARG, "gc_jsonl_each: NULL argument");
    growbuf text = {0};
    gc_status s = file_text(path, &text);
    if (s == GC_OK) s = each_object(text.p ? text.p : "", text.n, path, take, ctx);
    free(text.p);
    return s;
}

gc_status gc_jsonl_each_memory(const void *buf, size_t len, const char *name, gc_jsonl_take_fn take,
                               void *ctx) {
    if ((!buf && len) || !take)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_jsonl_each_memory: NULL argument");
    if (!name) name = "<memory>";
    growbuf plain = {0};
    const char *text;
    size_t tlen;
    gc_status s = memory_text(buf, len, name, &plain, &text, &tlen);
    if (s == GC_OK) s = each_object(text, tlen, name, take, ctx);
    free(plain.p);
    return s;
}

/* ---- one field of every line ---- */

typedef struct field_list {
    const char *field;
    char **v;
    size_t n, cap;
} field_list;

static gc_status take_field(void *ctx, json_t *obj, const char *name, size_t line) {
    field_list *l = ctx;
    json_t *v = json_object_get(obj, l->field);
    if (!v) return line_error(GC_ERR_FORMAT, name, line, "missing \"%s\"", l->field);
    if (!json_is_string(v))
        return line_error(GC_ERR_FORMAT, name, line, "\"%s\" is not a string", l->field);
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        char **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv) return line_error(GC_ERR_NOMEM, name, line, "out of memory");
        l->v = nv;
        l->cap = ncap;
    }
    if (!(l->v[l->n] = copy_string(v)))
        return line_error(GC_ERR_NOMEM, name, line, "out of memory");
    l->n++;
    return GC_OK;
}

void gc_jsonl_free(char **values, size_t n) {
    if (!values) return;
    for (size_t i = 0; i < n; i++) free(values[i]);
    free(values);
}

static gc_status read_field(const char *text, size_t len, const char *name, const char *field,
                            char ***values, size_t *n) {
    field_list l = {field, NULL, 0, 0};
    gc_status s = each_object(text, len, name, take_field, &l);
    if (s == GC_OK && l.n == 0)
        s = gc_set_error(GC_ERR_FORMAT, "%s: no lines with \"%s\" (empty file)", name, field);
    if (s != GC_OK) {
        gc_jsonl_free(l.v, l.n);
        return s;
    }
    *values = l.v;
    *n = l.n;
    return GC_OK;
}

gc_status gc_jsonl_read_field_memory(const void *buf, size_t len, const char *name,
                                     const char *field, char ***values, size_t *n) {
    if ((!buf && len) || !field || !values || !n)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_jsonl_read_field_memory: NULL argument");
    *values = NULL;
    *n = 0;
    if (!name) name = "<memory>";
    growbuf plain = {0};
    const char *text;
    size_t tlen;
    gc_status s = memory_text(buf, len, name, &plain, &text, &tlen);
    if (s == GC_OK) s = read_field(text, tlen, name, field, values, n);
    free(plain.p);
    return s;
}

gc_status gc_jsonl_read_field(const char *path, const char *field, char ***values, size_t *n) {
    if (!path || !field || !values || !n)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_jsonl_read_field: NULL argument");
    *values = NULL;
    *n = 0;
    growbuf text = {0};
    gc_status s = file_text(path, &text);
    if (s == GC_OK) s = read_field(text.p ? text.p : "", text.n, path, field, values, n);
    free(text.p);
    return s;
}

/* common.c: messages, the strict option parser, model loading, tokenizing and batched encoding
 * shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gradcache: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_RUNTIME;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gradcache: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'gradcache %s--help')\n", cmd ? cmd : "");
    va_end(ap);
    return CLI_EXIT_USAGE;
}

void cli_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gradcache: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(gc_status st, const char *what) {
    const char *msg = gc_last_error();
    if (!msg || !*msg) msg = gc_status_str(st);
    if (what && *what) return cli_error("%s: %s", what, msg);
    return cli_error("%s", msg);
}

/* ---- options ---- */

static char g_cmd_prefix[64];

static const char *cmd_prefix(const char *cmd) {
    snprintf(g_cmd_prefix, sizeof g_cmd_prefix, "%s ", cmd);
    return g_cmd_prefix;
}

int cli_parse_long(const char *cmd, const char *opt, const char *s, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = 0;
    if (s && *s && *s != ' ' && *s != '\t') v = strtol(s, &end, 10);
    if (!s || !*s || !end || *end || end == s || errno == ERANGE)
        return cli_usage(cmd_prefix(cmd), "%s expects an integer, got '%s'", opt, s ? s : "");
    if (v < min || v > max)
        return cli_usage(cmd_prefix(cmd), "%s must be between %ld and %ld, got %ld", opt, min, max,
                         v);
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                     double *out) {
    char *end = NULL;
    errno = 0;
    double v = 0;
    if (s && *s && *s != ' ' && *s != '\t') v = strtod(s, &end);
    if (!s || !*s || !end || *end || end == s)
        return cli_usage(cmd_prefix(cmd), "%s expects a number, got '%s'", opt, s ? s : "");
    if (!isfinite(v) || errno == ERANGE)
        return cli_usage(cmd_prefix(cmd), "%s must be a finite number, got '%s'", opt, s);
    if (v < min || v > max)
        return cli_usage(cmd_prefix(cmd), "%s must be between %g and %g, got %g", opt, min, max, v);
    *out = v;
    return 0;
}

const cli_opt *cli_find(const cli_opt *opts, const char *name) {
    for (const cli_opt *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

int cli_parse(const char *cmd, int argc, char **argv, int first, cli_opt *opts) {
    /* --help wins wherever it is, so a half-typed command line still shows help */
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return cli_usage(cmd_prefix(cmd), "unexpected argument '%s'", arg);
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        cli_opt *o = NULL;
        for (cli_opt *c = opts; c->name; c++)
            if (strlen(c->name) == nlen && strncmp(c->name, arg, nlen) == 0) o = c;
        if (!o) return cli_usage(cmd_prefix(cmd), "unknown option '%.*s'", (int)nlen, arg);
        o->seen = 1; /* given twice: the last one wins, so scripts can override a default */
        if (o->kind == OPT_FLAG) {
            if (eq) return cli_usage(cmd_prefix(cmd), "%s takes no value", o->name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) return cli_usage(cmd_prefix(cmd), "%s needs a value", o->name);
            val = argv[++i];
        }
        int rc = 0;
        if (o->kind == OPT_STR) {
            if (!*val) return cli_usage(cmd_prefix(cmd), "%s needs a non-empty value", o->name);
            *(const char **)o->dst = val;
        } else if (o->kind == OPT_INT) {
            rc = cli_parse_long(cmd, o->name, val, (long)o->min, (long)o->max, (long *)o->dst);
        } else {
            rc = cli_parse_double(cmd, o->name, val, o->min, o->max, (double *)o->dst);
        }
        if (rc) return rc;
    }
    return 0;
}

/* ---- models and encoding ---- */

int cli_load_model(const char *dir, gc_bert **model, gc_tokenizer **tok) {
    *model = NULL;
    *tok = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0) return cli_error("model folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return cli_error("model folder %s is not a folder", dir);
    gc_status st = gc_tokenizer_load(tok, dir);
    if (st != GC_OK) return cli_fail(st, "loading the tokenizer");
    st = gc_bert_load(model, dir);
    if (st != GC_OK) {
        gc_tokenizer_free(*tok);
        *tok = NULL;
        return cli_fail(st, "loading the model");
    }
    return 0;
}

gc_status cli_tokenize(const gc_tokenizer *tok, const char *const *texts, size_t n, int max_len,
                       cli_tokens *out, size_t *bad) {
    memset(out, 0, sizeof *out);
    *bad = 0;
    int32_t *slots = malloc((n ? n : 1) * (size_t)max_len * sizeof(int32_t));
    int *lens = malloc((n ? n : 1) * sizeof(int));
    out->off = malloc((n + 1) * sizeof(int64_t));
    if (!slots || !lens || !out->off) {
        free(slots);
        free(lens);
        free(out->off);
        out->off = NULL;
        return gc_set_error(GC_ERR_NOMEM, "out of memory tokenizing %zu texts", n);
    }
    /* each thread keeps its own error message; keep the first failure's text */
    size_t first_bad = n;
    gc_status first_st = GC_OK;
    char msg[512] = "";
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < n; i++) {
        gc_status st = gc_tokenizer_encode(tok, texts[i], strlen(texts[i]), max_len,
                                           slots + i * (size_t)max_len, &lens[i]);
        if (st != GC_OK) {
#pragma omp critical(cli_tokenize_error)
            if (i < first_bad) {
                first_bad = i;
                first_st = st;
                snprintf(msg, sizeof msg, "%s", gc_last_error());
            }
        }
    }
    if (first_bad < n) {
        free(slots);
        free(lens);
        free(out->off);
        out->off = NULL;
        *bad = first_bad;
        return gc_set_error(first_st, "%s", msg);
    }
    int64_t total = 0;
    int longest = 0;
    for (size_t i = 0; i < n; i++) {
        out->off[i] = total;
        total += lens[i];
        if (lens[i] > longest) longest = lens[i];
    }
    out->off[n] = total;
    out->ids = malloc((size_t)(total ? total : 1) * sizeof(int32_t));
    if (!out->ids) {
        free(slots);
        free(lens);
        free(out->off);
        out->off = NULL;
        return gc_set_error(GC_ERR_NOMEM, "out of memory for %lld token ids", (long long)total);
    }
    for (size_t i = 0; i < n; i++)
        memcpy(out->ids + out->off[i], slots + i * (size_t)max_len,
               (size_t)lens[i] * sizeof(int32_t));
    free(slots);
    free(lens);
    out->n = n;
    out->max_len = longest;
    return GC_OK;
}

void cli_tokens_free(cli_tokens *t) {
    if (!t) return;
    free(t->ids);
    free(t->off);
    memset(t, 0, sizeof *t);
}

typedef struct len_index {
    int64_t len;
    size_t i;
} len_index;

static int by_len_desc(const void *a, const void *b) {
    const len_index *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    return x->i < y->i ? -1 : (x->i > y->i);
}

gc_status cli_encode_tokens(gc_bert *model, const cli_tokens *t, int batch, float *out) {
    if (t->n == 0) return GC_OK;
    gc_encoder enc = gc_bert_encoder(model);
    const int dim = enc.ops->dim(enc.ctx);
    /* similar lengths together, so a batch pads (or loops) over little beyond its texts */
    len_index *order = malloc(t->n * sizeof *order);
    int32_t *ids = malloc((size_t)batch * (size_t)(t->max_len ? t->max_len : 1) * sizeof(int32_t));
    int64_t *off = malloc(((size_t)batch + 1) * sizeof(int64_t));
    float *reps = malloc((size_t)batch * (size_t)dim * sizeof(float));
    gc_status st = GC_OK;
    if (!order || !ids || !off || !reps) {
        st = gc_set_error(GC_ERR_NOMEM, "out of memory encoding %zu texts", t->n);
        goto done;
    }
    for (size_t i = 0; i < t->n; i++) order[i] = (len_index){t->off[i + 1] - t->off[i], i};
    qsort(order, t->n, sizeof *order, by_len_desc);
    for (size_t b0 = 0; b0 < t->n; b0 += (size_t)batch) {
        int nb = t->n - b0 < (size_t)batch ? (int)(t->n - b0) : batch;
        off[0] = 0;
        for (int j = 0; j < nb; j++) {
            size_t i = order[b0 + (size_t)j].i;
            int64_t len = t->off[i + 1] - t->off[i];
            memcpy(ids + off[j], t->ids + t->off[i], (size_t)len * sizeof(int32_t));
            off[j + 1] = off[j] + len;
        }
        gc_token_batch tb = {nb, ids, off};
        gc_encode_args a = {.inputs = &tb, .side = 0, .first = 0, .count = nb, .train = 0};
        st = enc.ops->encode(enc.ctx, &a, reps);
        if (st != GC_OK) goto done;
        for (int j = 0; j < nb; j++)
            memcpy(out + order[b0 + (size_t)j].i * (size_t)dim, reps + (size_t)j * dim,
                   (size_t)dim * sizeof(float));
    }
done:
    free(order);
    free(ids);
    free(off);
    free(reps);
    return st;
}

void cli_normalize_rows(float *x, size_t rows, int dim) {
    for (size_t r = 0; r < rows; r++) {
        float *v = x + r * (size_t)dim;
        double s = 0;
        for (int c = 0; c < dim; c++) s += (double)v[c] * v[c];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int c = 0; c < dim; c++) v[c] *= inv;
        }
    }
}

double cli_peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* common.c: messages, the strict option parser and model loading shared by the subcommands. */
#include "cli.h"
#include "gc_io.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

int cli_rank = 0;
static char g_last_message[1024];

const char *cli_last_message(void) {
    return g_last_message;
}

/* Every message goes through gc_quote_text: file names and values from files may hold control
 * bytes (a terminal would act on them) and may be very long. */
static void emit(const char *prefix, const char *msg, const char *suffix) {
    static char quoted[4 * 1024 + 64];
    gc_quote_text(quoted, sizeof quoted, msg, 1024);
    fprintf(stderr, "%s%s%s\n", prefix, quoted, suffix);
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_message, sizeof g_last_message, fmt, ap);
    va_end(ap);
    if (cli_rank == 0) emit("gradcache: error: ", g_last_message, "");
    return CLI_EXIT_RUNTIME;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    char suffix[128];
    snprintf(suffix, sizeof suffix, " (see 'gradcache %s--help')", cmd ? cmd : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_message, sizeof g_last_message, fmt, ap);
    va_end(ap);
    if (cli_rank == 0) emit("gradcache: error: ", g_last_message, suffix);
    return CLI_EXIT_USAGE;
}

void cli_note(const char *fmt, ...) {
    if (cli_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    static char note[4096];
    vsnprintf(note, sizeof note, fmt, ap);
    emit("gradcache: ", note, "");
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
            /* every number option ends up a float32 somewhere: past FLT_MAX it is inf */
            rc = cli_parse_double(cmd, o->name, val, o->min, o->max < FLT_MAX ? o->max : FLT_MAX,
                                  (double *)o->dst);
        }
        if (rc) return rc;
    }
    return 0;
}

/* ---- sizes ---- */

int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t *out) {
    static const struct {
        const char *suffix;
        double scale;
    } units[] = {{"", 1},          {"B", 1},
                 {"KiB", 1024.0},  {"MiB", 1048576.0},
                 {"GiB", 1 << 30}, {"TiB", 1099511627776.0},
                 {"KB", 1e3},      {"MB", 1e6},
                 {"GB", 1e9},      {"TB", 1e12}};
    char *end = NULL;
    errno = 0;
    double v = s && *s && !isspace((unsigned char)*s) ? strtod(s, &end) : -1;
    if (end && errno == 0 && isfinite(v) && v > 0)
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(end, units[i].suffix) == 0 && v * units[i].scale >= 1 &&
                v * units[i].scale < 1.8e19) {
                *out = (size_t)(v * units[i].scale);
                return 0;
            }
    return cli_usage(cmd_prefix(cmd),
                     "%s needs a size in bytes, or with B, KiB, MiB, GiB, TiB, KB, MB, GB or TB "
                     "(such as 3GiB or 512MiB), got '%s'",
                     opt, s ? s : "");
}

void cli_format_size(size_t bytes, char *buf, size_t n) {
    double b = (double)bytes;
    if (b >= 1 << 30)
        snprintf(buf, n, "%.2f GiB", b / (1 << 30));
    else if (b >= 1 << 20)
        snprintf(buf, n, "%.1f MiB", b / (1 << 20));
    else if (b >= 1 << 10)
        snprintf(buf, n, "%.1f KiB", b / (1 << 10));
    else
        snprintf(buf, n, "%zu B", bytes);
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
    if (st == GC_OK) st = gc_bert_check_tokenizer(*model, *tok, dir);
    if (st != GC_OK) {
        gc_bert_free(*model);
        *model = NULL;
        gc_tokenizer_free(*tok);
        *tok = NULL;
        return cli_fail(st, "loading the model");
    }
    return 0;
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

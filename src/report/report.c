/* report.c: the training report (gc_report_*) and its SVG line charts (gc_svg_plot).
 *
 * The page is XHTML-compatible HTML5 (every element closed, attributes quoted) so that a test
 * can check it with a plain XML reader; it has no script and loads nothing. */
#include "gc_io.h"
#include "gc_report.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text ---- */

void gc_text_free(gc_text *t) {
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

static int text_reserve(gc_text *t, size_t more) {
    if (t->failed) return 0;
    if (t->len + more + 1 <= t->cap) return 1;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more + 1) cap *= 2;
    char *d = realloc(t->data, cap);
    if (!d) {
        t->failed = 1;
        return 0;
    }
    t->data = d, t->cap = cap;
    return 1;
}

void gc_text_append(gc_text *t, const char *s, size_t n) {
    if (!text_reserve(t, n)) return;
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
}

void gc_text_printf(gc_text *t, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        gc_text_append(t, small, (size_t)n);
        return;
    }
    if (!text_reserve(t, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void gc_text_escape(gc_text *t, const char *s) {
    if (!s) return;
    const char *run = s;
    for (; *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            continue;
        }
        gc_text_append(t, run, (size_t)(s - run));
        gc_text_append(t, e, strlen(e));
        run = s + 1;
    }
    gc_text_append(t, run, (size_t)(s - run));
}

/* ---- charts ---- */

static const char *const PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define NPALETTE (sizeof PALETTE / sizeof PALETTE[0])

/* A round tick spacing (1, 2 or 5 times a power of ten) giving about `target` ticks. */
static double tick_step(double span, int target) {
    double raw = span / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* The axis range [lo, hi] and tick spacing for data in [mn, mx] (finite). */
static void axis_range(double mn, double mx, int target, double *lo, double *hi, double *step) {
    if (!(mx > mn)) { /* one value: a small range around it */
        double pad = fabs(mn) > 0 ? fabs(mn) * 0.1 : 1.0;
        mn -= pad, mx += pad;
    }
    *step = tick_step(mx - mn, target);
    *lo = floor(mn / *step) * *step;
    *hi = ceil(mx / *step) * *step;
    if (!(*hi > *lo)) *hi = *lo + *step;
}

static void tick_label(char *buf, size_t cap, double v, double step) {
    if (fabs(v) < step * 1e-9) v = 0.0; /* -0 and rounding residue */
    snprintf(buf, cap, "%.4g", v);
}

gc_status gc_svg_plot(gc_text *out, const char *title, const char *xlabel,
                      const gc_plot_series *series, int nseries, int width, int height) {
    if (!out || (nseries > 0 && !series) || nseries < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "svg plot: NULL argument");
    if (width < 120 || height < 100)
        return gc_set_error(GC_ERR_INVALID_ARG, "svg plot: %d x %d is too small", width, height);
    const double L = 64, R = 16, T = nseries > 1 ? 44 : 30, B = 40;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    size_t finite = 0, skipped = 0;
    for (int s = 0; s < nseries; s++) {
        if (series[s].n && (!series[s].x || !series[s].y))
            return gc_set_error(GC_ERR_INVALID_ARG, "svg plot: series %d without data", s);
        for (size_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) {
                skipped++;
                continue;
            }
            finite++;
            xmin = fmin(xmin, x), xmax = fmax(xmax, x);
            ymin = fmin(ymin, y), ymax = fmax(ymax, y);
        }
    }
    gc_text_printf(out,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%d\" "
                   "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
                   width, height, width, height);
    gc_text_printf(out, "<text class=\"title\" x=\"%g\" y=\"18\">", L);
    gc_text_escape(out, title);
    if (skipped) gc_text_printf(out, " (%zu non-finite not drawn)", skipped);
    gc_text_append(out, "</text>\n", 8);
    const double pw = width - L - R, ph = height - T - B;
    gc_text_printf(out,
                   "<rect class=\"frame\" x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
                   "fill=\"none\" stroke=\"#999\"/>\n",
                   L, T, pw, ph);
    if (finite == 0) {
        gc_text_printf(out, "<text class=\"empty\" x=\"%g\" y=\"%g\">no finite values</text>\n",
                       L + pw / 2 - 50, T + ph / 2);
        gc_text_append(out, "</svg>\n", 7);
        return out->failed ? gc_set_error(GC_ERR_NOMEM, "svg plot: out of memory") : GC_OK;
    }
    double x0, x1, xs, y0, y1, ys;
    axis_range(xmin, xmax, 6, &x0, &x1, &xs);
    axis_range(ymin, ymax, 5, &y0, &y1, &ys);
    char lab[64];
    /* grid lines and tick labels */
    for (double v = y0; v <= y1 + ys * 1e-6; v += ys) {
        double py = T + ph - (v - y0) / (y1 - y0) * ph;
        tick_label(lab, sizeof lab, v, ys);
        gc_text_printf(out,
                       "<line class=\"grid\" x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" "
                       "stroke=\"#e4e4e4\"/><text class=\"ytick\" x=\"%g\" y=\"%.1f\" "
                       "text-anchor=\"end\">%s</text>\n",
                       L, py, L + pw, py, L - 5, py + 4, lab);
    }
    for (double v = x0; v <= x1 + xs * 1e-6; v += xs) {
        double px = L + (v - x0) / (x1 - x0) * pw;
        tick_label(lab, sizeof lab, v, xs);
        gc_text_printf(out,
                       "<line class=\"grid\" x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" "
                       "stroke=\"#e4e4e4\"/><text class=\"xtick\" x=\"%.1f\" y=\"%g\" "
                       "text-anchor=\"middle\">%s</text>\n",
                       px, T, px, T + ph, px, T + ph + 15, lab);
    }
    gc_text_printf(out, "<text class=\"xlabel\" x=\"%g\" y=\"%d\" text-anchor=\"middle\">",
                   L + pw / 2, height - 6);
    gc_text_escape(out, xlabel);
    gc_text_append(out, "</text>\n", 8);
    /* the data */
    double lx = L;
    for (int s = 0; s < nseries; s++) {
        const gc_plot_series *sr = &series[s];
        const char *color = PALETTE[(size_t)s % NPALETTE];
        size_t i = 0;
        while (i < sr->n) {
            if (!isfinite(sr->x[i]) || !isfinite(sr->y[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < sr->n && isfinite(sr->x[j]) && isfinite(sr->y[j])) j++;
            if (j - i == 1) {
                gc_text_printf(out,
                               "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" "
                               "fill=\"%s\"/>\n",
                               L + (sr->x[i] - x0) / (x1 - x0) * pw,
                               T + ph - (sr->y[i] - y0) / (y1 - y0) * ph, color);
            } else {
                gc_text_printf(out,
                               "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                               "points=\"",
                               color);
                for (size_t k = i; k < j; k++)
                    gc_text_printf(out, "%s%.1f,%.1f", k > i ? " " : "",
                                   L + (sr->x[k] - x0) / (x1 - x0) * pw,
                                   T + ph - (sr->y[k] - y0) / (y1 - y0) * ph);
                gc_text_append(out, "\"/>\n", 4);
            }
            i = j;
        }
        if (sr->n <= 40) /* few points (evaluations): mark each finite one on its line */
            for (size_t k = 0; k < sr->n; k++)
                if (isfinite(sr->x[k]) && isfinite(sr->y[k]))
                    gc_text_printf(out,
                                   "<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
                                   "fill=\"%s\"/>\n",
                                   L + (sr->x[k] - x0) / (x1 - x0) * pw,
                                   T + ph - (sr->y[k] - y0) / (y1 - y0) * ph, color);
        if (nseries > 1) { /* legend: a swatch and the label, left to right under the title */
            gc_text_printf(out,
                           "<rect x=\"%.0f\" y=\"27\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                           "<text class=\"legend\" x=\"%.0f\" y=\"36\">",
                           lx, color, lx + 14);
            gc_text_escape(out, sr->label);
            gc_text_append(out, "</text>\n", 8);
            lx += 14 + 7.0 * (double)(sr->label ? strlen(sr->label) : 0) + 16;
        }
    }
    gc_text_append(out, "</svg>\n", 7);
    return out->failed ? gc_set_error(GC_ERR_NOMEM, "svg plot: out of memory") : GC_OK;
}

/* ---- the log ---- */

typedef struct entries {
    json_t **v; /* objects, each with a numeric "step" */
    double *step;
    size_t n, cap;
} entries;

static void entries_free(entries *e) {
    for (size_t i = 0; i < e->n; i++) json_decref(e->v[i]);
    free(e->v);
    free(e->step);
    memset(e, 0, sizeof *e);
}

/* Drop the entries at or after `step` (a resumed run logs them again). */
static void entries_cut(entries *e, double step) {
    while (e->n > 0 && e->step[e->n - 1] >= step) json_decref(e->v[--e->n]);
}

static int entries_push(entries *e, json_t *obj, double step) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 256;
        json_t **v = realloc(e->v, cap * sizeof *v);
        if (!v) return 0;
        e->v = v;
        double *s = realloc(e->step, cap * sizeof *s);
        if (!s) return 0;
        e->step = s, e->cap = cap;
    }
    e->v[e->n] = json_incref(obj);
    e->step[e->n++] = step;
    return 1;
}

typedef struct parsed {
    entries steps, devs;
    json_t *options; /* the last options object, or NULL */
    size_t bad_lines, lines;
} parsed;

static void parsed_free(parsed *p) {
    entries_free(&p->steps);
    entries_free(&p->devs);
    json_decref(p->options);
}

static gc_status parse_log(const char *log, size_t len, parsed *p) {
    memset(p, 0, sizeof *p);
    size_t pos = 0;
    while (pos < len) {
        const char *line = log + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        size_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == n) continue; /* blank */
        p->lines++;
        json_error_t err;
        json_t *o = json_loadb(line, n, 0, &err);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            p->bad_lines++;
            continue;
        }
        json_t *opt = json_object_get(o, "options");
        json_t *st = json_object_get(o, "step");
        json_t *dev = json_object_get(o, "dev");
        int ok = 1;
        if (json_is_object(opt)) {
            json_decref(p->options);
            p->options = json_incref(opt);
        } else if (json_is_number(st) && json_is_object(dev)) {
            double s = json_number_value(st);
            entries_cut(&p->devs, s);
            ok = entries_push(&p->devs, dev, s);
        } else if (json_is_number(st)) {
            double s = json_number_value(st);
            entries_cut(&p->steps, s);
            entries_cut(&p->devs, s);
            ok = entries_push(&p->steps, o, s);
        } else {
            p->bad_lines++;
        }
        json_decref(o);
        if (!ok) {
            parsed_free(p);
            return gc_set_error(GC_ERR_NOMEM, "report: out of memory reading the log");
        }
    }
    return GC_OK;
}

/* ---- the page ---- */

/* Step-line fields charted first, with their titles; other numeric fields follow. */
static const char *const KNOWN[][2] = {
    {"loss", "loss"},
    {"accuracy", "in-batch accuracy"},
    {"lr", "learning rate"},
    {"grad_norm", "gradient norm (before clipping)"},
    {"temperature", "temperature"},
    {"pairs_per_s", "pairs per second"},
    {"step_s", "seconds per step"},
};
#define NKNOWN (sizeof KNOWN / sizeof KNOWN[0])
#define MAX_FIELDS 64

/* The numeric fields of the entries' objects in chart order (skipping `skip`). */
static int numeric_fields(const entries *e, const char *const *skip, int nskip, const char **names,
                          int known_first) {
    int n = 0;
    if (known_first)
        for (size_t k = 0; k < NKNOWN; k++)
            for (size_t i = 0; i < e->n; i++)
                if (json_is_number(json_object_get(e->v[i], KNOWN[k][0]))) {
                    names[n++] = KNOWN[k][0];
                    break;
                }
    for (size_t i = 0; i < e->n && n < MAX_FIELDS; i++) {
        const char *key;
        json_t *val;
        json_object_foreach(e->v[i], key, val) {
            if (!json_is_number(val)) continue;
            int seen = 0;
            for (int s = 0; s < nskip; s++) seen |= strcmp(key, skip[s]) == 0;
            for (int s = 0; s < n; s++) seen |= strcmp(key, names[s]) == 0;
            if (!seen && n < MAX_FIELDS) names[n++] = key;
        }
    }
    return n;
}

static const char *field_title(const char *name) {
    for (size_t k = 0; k < NKNOWN; k++)
        if (strcmp(KNOWN[k][0], name) == 0) return KNOWN[k][1];
    return name;
}

/* One field of every entry as (step, value) (NaN where the entry lacks it). */
static void column(const entries *e, const char *name, double *x, double *y) {
    for (size_t i = 0; i < e->n; i++) {
        json_t *v = json_object_get(e->v[i], name);
        x[i] = e->step[i];
        y[i] = json_is_number(v) ? json_number_value(v) : NAN;
    }
}

static void value_text(gc_text *t, json_t *v) {
    if (json_is_string(v)) {
        gc_text_escape(t, json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    if (!s) {
        t->failed = 1;
        return;
    }
    gc_text_escape(t, s);
    free(s);
}

static const char STYLE[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;"
    "color:#222;max-width:1180px}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid "
    "#ddd;padding-bottom:4px}\n"
    "p.sub{color:#555;margin:0 0 8px;font-size:13px}\n"
    ".grid{display:flex;flex-wrap:wrap;gap:12px}\n"
    "svg.chart{background:#fff;border:1px solid #e0e0e0;border-radius:4px}\n"
    "svg text{font-size:11px;fill:#333}svg text.title{font-size:13px;font-weight:600}\n"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px "
    "8px;text-align:left}th{background:#f4f4f4}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums}\n"
    "td.key{font-family:ui-monospace,monospace}\n";

static void chart_or_note(gc_text *out, gc_status *st, const char *title, const char *xlabel,
                          const gc_plot_series *s, int ns, int w, int h) {
    if (*st == GC_OK) *st = gc_svg_plot(out, title, xlabel, s, ns, w, h);
}

gc_status gc_report_html(const char *log, size_t len, const char *title, gc_text *out) {
    if (!out || (!log && len)) return gc_set_error(GC_ERR_INVALID_ARG, "report: NULL argument");
    parsed p;
    gc_status st = parse_log(log ? log : "", len, &p);
    if (st != GC_OK) return st;
    size_t rows = p.steps.n > p.devs.n ? p.steps.n : p.devs.n;
    double *x = malloc((rows ? rows : 1) * sizeof(double));
    double *y = malloc((rows ? rows : 1) * MAX_FIELDS * sizeof(double));
    if (!x || !y) {
        free(x), free(y);
        parsed_free(&p);
        return gc_set_error(GC_ERR_NOMEM, "report: out of memory");
    }
    gc_text_append(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n",
                   strlen("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>"
                          "\n"));
    gc_text_append(out, "<title>gradcache training report: ", 34);
    gc_text_escape(out, title);
    gc_text_printf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", STYLE);
    gc_text_append(out, "<h1>gradcache training report</h1>\n<p class=\"sub\">", 50);
    gc_text_escape(out, title);
    if (p.steps.n)
        gc_text_printf(out, ": %zu steps logged (%.0f to %.0f)", p.steps.n, p.steps.step[0],
                       p.steps.step[p.steps.n - 1]);
    else
        gc_text_append(out, ": no training steps logged", 26);
    json_t *last_loss = p.steps.n ? json_object_get(p.steps.v[p.steps.n - 1], "loss") : NULL;
    if (json_is_number(last_loss))
        gc_text_printf(out, ", last loss %.4f", json_number_value(last_loss));
    gc_text_printf(out, ", %zu dev evaluation%s", p.devs.n, p.devs.n == 1 ? "" : "s");
    if (p.bad_lines)
        gc_text_printf(out, "; %zu of %zu lines were not log records and were skipped", p.bad_lines,
                       p.lines);
    gc_text_append(out, "</p>\n", 5);

    /* training curves */
    const char *names[MAX_FIELDS];
    static const char *const step_skip[] = {"step", "epoch"};
    int nf = numeric_fields(&p.steps, step_skip, 2, names, 1);
    gc_text_append(out, "<h2>Training</h2>\n<div class=\"grid\">\n", 37);
    if (nf == 0) gc_text_append(out, "<p>No step records.</p>\n", 24);
    for (int f = 0; f < nf; f++) {
        column(&p.steps, names[f], x, y);
        gc_plot_series s = {names[f], x, y, p.steps.n};
        chart_or_note(out, &st, field_title(names[f]), "step", &s, 1, 550, 280);
    }
    gc_text_append(out, "</div>\n", 7);

    /* dev metrics */
    gc_text_append(out, "<h2>Dev evaluations</h2>\n", 25);
    static const char *const dev_skip[] = {"n"};
    int nd = numeric_fields(&p.devs, dev_skip, 1, names, 0);
    if (p.devs.n == 0 || nd == 0) {
        gc_text_append(out, "<p>No dev evaluations in this log (train with --dev FILE).</p>\n", 63);
    } else {
        gc_plot_series s[MAX_FIELDS];
        for (int f = 0; f < nd; f++) {
            column(&p.devs, names[f], x, y + (size_t)f * rows);
            s[f] = (gc_plot_series){names[f], x, y + (size_t)f * rows, p.devs.n};
        }
        gc_text_append(out, "<div class=\"grid\">\n", 19);
        chart_or_note(out, &st, "dev metrics", "step", s, nd, 1112, 320);
        gc_text_append(out, "</div>\n<table>\n<tr><th>step</th>", 32);
        for (int f = 0; f < nd; f++) {
            gc_text_append(out, "<th>", 4);
            gc_text_escape(out, names[f]);
            gc_text_append(out, "</th>", 5);
        }
        gc_text_append(out, "</tr>\n", 6);
        for (size_t i = 0; i < p.devs.n; i++) {
            gc_text_printf(out, "<tr><td class=\"num\">%.0f</td>", p.devs.step[i]);
            for (int f = 0; f < nd; f++) {
                double v = y[(size_t)f * rows + i];
                if (isfinite(v))
                    gc_text_printf(out, "<td class=\"num\">%.4f</td>", v);
                else
                    gc_text_append(out, "<td class=\"num\">-</td>", 22);
            }
            gc_text_append(out, "</tr>\n", 6);
        }
        gc_text_append(out, "</table>\n", 9);
    }

    /* options */
    gc_text_append(out, "<h2>Options</h2>\n", 17);
    if (!p.options || json_object_size(p.options) == 0) {
        gc_text_append(out, "<p>The log has no options record.</p>\n", 38);
    } else {
        gc_text_append(out, "<table>\n<tr><th>option</th><th>value</th></tr>\n", 47);
        const char *key;
        json_t *val;
        json_object_foreach(p.options, key, val) {
            gc_text_append(out, "<tr><td class=\"key\">", 20);
            gc_text_escape(out, key);
            gc_text_append(out, "</td><td>", 9);
            value_text(out, val);
            gc_text_append(out, "</td></tr>\n", 11);
        }
        gc_text_append(out, "</table>\n", 9);
    }
    gc_text_append(out, "</body>\n</html>\n", 16);
    free(x), free(y);
    parsed_free(&p);
    if (st == GC_OK && out->failed) st = gc_set_error(GC_ERR_NOMEM, "report: out of memory");
    return st;
}

gc_status gc_report_write(const char *log_path, const char *html_path) {
    if (!log_path || !html_path) return gc_set_error(GC_ERR_INVALID_ARG, "report: NULL path");
    char *log = NULL;
    size_t len = 0;
    gc_status st = gc_read_file(log_path, &log, &len);
    if (st != GC_OK) return st;
    gc_text page = {0};
    st = gc_report_html(log, len, log_path, &page);
    free(log);
    if (st == GC_OK) st = gc_write_file_atomic(html_path, page.data, page.len);
    gc_text_free(&page);
    return st;
}

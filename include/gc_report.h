/* gc_report.h: the training report: one self-contained HTML page (inline SVG, no scripts, no
 * external files) drawn from a run's JSON-lines log, and the small SVG line-chart writer it
 * uses. No plotting library from Debian fits a C library that must not print or pull in a
 * toolkit, so the writer is here: a few hundred lines, tested by tests/test_report.c. */
#ifndef GC_REPORT_H
#define GC_REPORT_H

#include "gc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A growable text buffer. A failed allocation sets `failed` and later appends do nothing, so a
 * writer checks once at the end. data is NUL-terminated (when not failed). */
typedef struct gc_text {
    char *data;
    size_t len, cap;
    int failed;
} gc_text;

void gc_text_free(gc_text *t);
void gc_text_append(gc_text *t, const char *s, size_t n);
void gc_text_printf(gc_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s with & < > " ' replaced by entities, for XML/HTML text and attribute values. */
void gc_text_escape(gc_text *t, const char *s);

/* One line of a chart: n points (x[i], y[i]). Non-finite points are not drawn: the line breaks
 * there; a finite point with no finite neighbour is drawn as a dot. */
typedef struct gc_plot_series {
    const char *label;
    const double *x, *y;
    size_t n;
} gc_plot_series;

/* Append one <svg> element (width x height pixels) with axes, ticks, a legend when there is
 * more than one series, one <polyline> per run of consecutive finite points and one
 * <circle class="pt"> per isolated point (and, for a series of at most 40 points, a
 * <circle class="mark"> on each finite point). Labels are escaped. A chart with no finite point
 * says so. */
gc_status gc_svg_plot(gc_text *out, const char *title, const char *xlabel,
                      const gc_plot_series *series, int nseries, int width, int height);

/* The report page of a log's text (one JSON object per line, as `gradcache train --log`
 * writes): a chart per numeric field of the step lines (loss, accuracy, lr, grad_norm,
 * temperature, pairs_per_s first, then any others), a chart and a table of the dev metrics
 * ({"step": N, "dev": {...}} lines), and the run's options (the last {"options": {...}} line).
 * A step at or before an earlier one (a resumed run) replaces the entries from that step on.
 * Lines that are not JSON objects are counted and skipped. title names the log in the page. */
gc_status gc_report_html(const char *log, size_t len, const char *title, gc_text *out);
/* Read log_path and write the page to html_path atomically. */
gc_status gc_report_write(const char *log_path, const char *html_path);

#ifdef __cplusplus
}
#endif

#endif /* GC_REPORT_H */

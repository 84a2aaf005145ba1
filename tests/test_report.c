/* test_report.c: the SVG chart writer and the training report page (gc_svg_plot,
 * gc_report_html), read back with a small XML checker:
 *  - every chart and the whole page are well formed (tags nest and close, attributes quoted,
 *    '<' and '&' only as markup or entities);
 *  - a chart draws exactly its finite points (polyline vertices plus isolated dots), breaks the
 *    line at NaN/inf and says how many it left out; one point and no point are handled;
 *  - option strings with <&>" are escaped, never copied raw;
 *  - the page has a chart per logged field, the dev table, the options, and after a resume the
 *    re-logged steps replace the old ones; lines that are not records are counted. */
#include "gc_report.h"
#include "test_util.h"

#include <string.h>

/* ---- a minimal XML well-formedness check ---- */

static int name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == ':' || c == '.';
}

/* An entity at s ("&amp;" ...); returns its length or 0. */
static size_t entity(const char *s) {
    static const char *const ok[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strncmp(s, ok[i], strlen(ok[i])) == 0) return strlen(ok[i]);
    return 0;
}

/* 1 when xml (from its first '<') is one well-formed element tree; prints why not. A leading
 * "<!DOCTYPE ...>" is allowed. */
static int well_formed(const char *xml) {
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *s = xml;
    if (strncmp(s, "<!DOCTYPE", 9) == 0) s = strchr(s, '>') + 1;
    while (*s) {
        if (*s == '&') {
            size_t n = entity(s);
            if (!n) return printf("    bad '&' at ...%.20s\n", s), 0;
            s += n;
            continue;
        }
        if (*s == '>') return printf("    stray '>' at ...%.20s\n", s), 0;
        if (*s != '<') {
            if (depth == 0 && !(*s == ' ' || *s == '\n'))
                return printf("    text outside the root at ...%.20s\n", s), 0;
            s++;
            continue;
        }
        s++;
        if (*s == '/') { /* closing tag */
            s++;
            const char *n0 = s;
            while (name_char(*s)) s++;
            size_t n = (size_t)(s - n0);
            if (depth == 0 || strlen(stack[depth - 1]) != n || strncmp(stack[depth - 1], n0, n))
                return printf("    </%.*s> does not close <%s>\n", (int)n, n0,
                              depth ? stack[depth - 1] : "(none)"),
                       0;
            if (*s != '>') return printf("    bad closing tag\n"), 0;
            s++;
            depth--;
            continue;
        }
        const char *n0 = s;
        while (name_char(*s)) s++;
        size_t n = (size_t)(s - n0);
        if (n == 0 || n >= 32) return printf("    bad tag name at ...%.20s\n", n0), 0;
        for (;;) { /* attributes */
            while (*s == ' ' || *s == '\n') s++;
            if (*s == '/' && s[1] == '>') {
                s += 2;
                if (depth == 0) roots++;
                break;
            }
            if (*s == '>') {
                s++;
                if (depth == 0) roots++;
                if (depth == 64) return printf("    too deep\n"), 0;
                memcpy(stack[depth], n0, n);
                stack[depth++][n] = 0;
                break;
            }
            const char *a0 = s;
            while (name_char(*s)) s++;
            if (s == a0 || *s != '=' || s[1] != '"')
                return printf("    bad attribute at ...%.20s\n", a0), 0;
            s += 2;
            while (*s && *s != '"') {
                if (*s == '<') return printf("    '<' in an attribute value\n"), 0;
                if (*s == '&') {
                    size_t e = entity(s);
                    if (!e) return printf("    bad '&' in an attribute\n"), 0;
                    s += e;
                } else {
                    s++;
                }
            }
            if (*s != '"') return printf("    unterminated attribute\n"), 0;
            s++;
        }
    }
    if (depth != 0) return printf("    <%s> never closed\n", stack[depth - 1]), 0;
    if (roots != 1) return printf("    %d root elements\n", roots), 0;
    return 1;
}

/* Drawn points: vertices of every polyline plus every isolated dot. */
static size_t drawn_points(const char *svg, size_t *lines, size_t *dots) {
    size_t pts = 0;
    *lines = *dots = 0;
    for (const char *s = svg; (s = strstr(s, "<polyline")); s++) {
        (*lines)++;
        const char *p = strstr(s, "points=\"") + 8, *end = strchr(p, '"');
        for (const char *c = p; c < end; c++) pts += *c == ',';
    }
    for (const char *s = svg; (s = strstr(s, "<circle class=\"pt\"")); s++) (*dots)++;
    return pts + *dots;
}

static size_t count(const char *s, const char *what) {
    size_t n = 0;
    for (; (s = strstr(s, what)); s += strlen(what)) n++;
    return n;
}

/* ---- charts ---- */

static void test_chart(void) {
    double x[10], y[10];
    for (int i = 0; i < 10; i++) x[i] = i + 1, y[i] = 1.0 / (i + 1);
    gc_plot_series s = {"loss", x, y, 10};
    gc_text t = {0};
    CHECK_OK(gc_svg_plot(&t, "loss", "step", &s, 1, 400, 250));
    size_t lines, dots;
    CHECK(t.data && well_formed(t.data), "a plain chart is well formed");
    CHECK(drawn_points(t.data, &lines, &dots) == 10 && lines == 1 && dots == 0,
          "10 points in one line (%zu lines, %zu dots)", lines, dots);
    CHECK(count(t.data, "<circle class=\"mark\"") == 10, "a short series marks its 10 points");
    gc_text_free(&t);

    /* NaN and inf break the line; an isolated finite point becomes a dot */
    y[2] = NAN, y[5] = INFINITY, x[8] = -INFINITY;
    CHECK_OK(gc_svg_plot(&t, "with holes", "step", &s, 1, 400, 250));
    CHECK(t.data && well_formed(t.data), "a chart with NaN/inf is well formed");
    size_t pts = drawn_points(t.data, &lines, &dots);
    /* finite runs: [0,1] [3,4] [6,7] [9] -> 3 lines, 1 dot, 7 points */
    CHECK(pts == 7 && lines == 3 && dots == 1,
          "7 finite points as 3 lines and 1 dot (%zu, %zu, %zu)", pts, lines, dots);
    CHECK(strstr(t.data, "3 non-finite not drawn") != NULL, "the chart says 3 were left out");
    CHECK(!strstr(t.data, "nan") && !strstr(t.data, "inf"), "no nan/inf in the coordinates");
    gc_text_free(&t);

    /* one point, and a constant series: a dot and a line with a usable axis */
    double one_x = 5, one_y = 0.25;
    gc_plot_series one = {"one", &one_x, &one_y, 1};
    CHECK_OK(gc_svg_plot(&t, "one point", "step", &one, 1, 400, 250));
    CHECK(t.data && well_formed(t.data), "a one-point chart is well formed");
    CHECK(drawn_points(t.data, &lines, &dots) == 1 && dots == 1, "one dot");
    CHECK(!strstr(t.data, "nan") && !strstr(t.data, "inf"), "one point: finite coordinates");
    gc_text_free(&t);
    double cx[3] = {1, 2, 3}, cy[3] = {0, 0, 0};
    gc_plot_series flat = {"flat", cx, cy, 3};
    CHECK_OK(gc_svg_plot(&t, "flat", "step", &flat, 1, 400, 250));
    CHECK(t.data && well_formed(t.data) && drawn_points(t.data, &lines, &dots) == 3,
          "a constant series is drawn");
    CHECK(!strstr(t.data, "nan") && !strstr(t.data, "inf"), "constant: finite coordinates");
    gc_text_free(&t);

    /* nothing finite, and two series with escaped labels */
    double nx[2] = {1, 2}, ny[2] = {NAN, NAN};
    gc_plot_series none = {"none", nx, ny, 2};
    CHECK_OK(gc_svg_plot(&t, "none", "step", &none, 1, 400, 250));
    CHECK(t.data && well_formed(t.data) && strstr(t.data, "no finite values") &&
              drawn_points(t.data, &lines, &dots) == 0,
          "no finite value: an empty, well-formed chart that says so");
    gc_text_free(&t);
    gc_plot_series two[2] = {{"a<b", cx, cx, 3}, {"c&\"d\"", cx, cy, 3}};
    CHECK_OK(gc_svg_plot(&t, "t<i>tle & co", "x>y", two, 2, 400, 250));
    CHECK(t.data && well_formed(t.data), "two series with markup in labels: well formed");
    CHECK(strstr(t.data, "a&lt;b") && strstr(t.data, "c&amp;&quot;d&quot;") &&
              strstr(t.data, "t&lt;i&gt;tle &amp; co") && strstr(t.data, "x&gt;y"),
          "labels and title escaped");
    CHECK(drawn_points(t.data, &lines, &dots) == 6 && lines == 2, "two lines of 3");
    gc_text_free(&t);

    CHECK(gc_svg_plot(&t, "x", "y", &s, 1, 10, 10) == GC_ERR_INVALID_ARG, "tiny size refused");
    gc_text_free(&t);
}

/* ---- the page ---- */

static const char LOG[] =
    "{\"options\": {\"model\": \"m<&>\\\"x\\\"\", \"batch_size\": 64, \"symmetric\": false}}\n"
    "{\"step\": 0, \"dev\": {\"recall@1\": 0.5, \"recall@10\": 0.8, \"mrr@10\": 0.6, \"n\": 100}}\n"
    "{\"step\": 1, \"epoch\": 0, \"loss\": 2.0, \"accuracy\": 0.25, \"lr\": 0.001, "
    "\"temperature\": 0.05, \"grad_norm\": 3.0, \"pairs_per_s\": 10.0, \"step_s\": 0.5}\n"
    "{\"step\": 2, \"epoch\": 0, \"loss\": 1.5, \"accuracy\": 0.5, \"lr\": 0.001, "
    "\"temperature\": 0.05, \"grad_norm\": 2.0, \"pairs_per_s\": 11.0, \"step_s\": 0.5}\n"
    "{\"step\": 3, \"epoch\": 0, \"loss\": 1.0, \"accuracy\": 0.5, \"lr\": 0.0005, "
    "\"temperature\": 0.05, \"grad_norm\": 1.0, \"pairs_per_s\": 12.0, \"step_s\": 0.5}\n"
    "{\"step\": 3, \"dev\": {\"recall@1\": 0.6, \"recall@10\": 0.9, \"mrr@10\": 0.7, \"n\": 100}}\n"
    "not json at all\n"
    "\n"
    /* resumed from step 2: step 3 (and its dev) are logged again */
    "{\"options\": {\"model\": \"m<&>\\\"x\\\"\", \"batch_size\": 64, \"resume\": true}}\n"
    "{\"step\": 3, \"epoch\": 0, \"loss\": 0.9, \"accuracy\": 0.75, \"lr\": 0.0005, "
    "\"temperature\": 0.05, \"grad_norm\": 1.0, \"pairs_per_s\": 12.0, \"step_s\": 0.5}\n"
    "{\"step\": 4, \"epoch\": 0, \"loss\": 0.8, \"accuracy\": 0.75, \"lr\": 0, "
    "\"temperature\": 0.05, \"grad_norm\": 1.0, \"pairs_per_s\": 12.0, \"step_s\": 0.5, "
    "\"extra_field\": 7}\n"
    "{\"step\": 4, \"dev\": {\"recall@1\": 0.7, \"recall@10\": 0.95, \"mrr@10\": 0.8, \"n\": "
    "100}}\n";

static void test_page(void) {
    gc_text t = {0};
    CHECK_OK(gc_report_html(LOG, strlen(LOG), "run<1>.jsonl", &t));
    if (!t.data) return;
    CHECK(strncmp(t.data, "<!DOCTYPE html>", 15) == 0, "an HTML5 page");
    CHECK(well_formed(t.data), "the page is well formed");
    CHECK(!strstr(t.data, "<script") && !strstr(t.data, "href=") && !strstr(t.data, "src="),
          "self-contained: no scripts, links or sources");
    /* 7 known fields + extra_field, plus the dev chart */
    CHECK(count(t.data, "<svg") == 9, "9 charts (%zu)", count(t.data, "<svg"));
    static const char *const titles[] = {
        "loss",        "in-batch accuracy", "learning rate",    "gradient norm",
        "temperature", "pairs per second",  "seconds per step", "extra_field",
        "dev metrics"};
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
        CHECK(strstr(t.data, titles[i]) != NULL, "a chart of %s", titles[i]);
    /* the loss chart: steps 1, 2, 3 (the re-logged one) and 4 */
    const char *loss = strstr(t.data, "<svg");
    const char *loss_end = strstr(loss, "</svg>");
    char one[8192];
    size_t n = (size_t)(loss_end - loss) < sizeof one - 1 ? (size_t)(loss_end - loss) : 0;
    memcpy(one, loss, n);
    one[n] = 0;
    size_t lines, dots;
    CHECK(drawn_points(one, &lines, &dots) == 4,
          "the loss chart has 4 points after the resume (%zu)", drawn_points(one, &lines, &dots));
    CHECK(strstr(t.data, "4 steps logged (1 to 4)") && strstr(t.data, "last loss 0.8000"),
          "summary: 4 steps, last loss");
    CHECK(strstr(t.data, "1 of 11 lines were not log records"), "the bad line is counted");
    /* dev table: steps 0 and 4 (the step-3 evaluation was cut by the re-logged step 3) */
    CHECK(count(t.data, "<tr><td class=\"num\">") == 2, "two dev rows (%zu)",
          count(t.data, "<tr><td class=\"num\">"));
    CHECK(strstr(t.data, "<td class=\"num\">0.9500</td>") && !strstr(t.data, "0.9000</td>"),
          "the dev row of the cut step is gone, the new one is there");
    CHECK(!strstr(t.data, ">n<"), "the dev count n is not charted as a metric");
    /* options: the last record, escaped */
    CHECK(strstr(t.data, "m&lt;&amp;&gt;&quot;x&quot;") && !strstr(t.data, "m<&>"),
          "option strings are escaped");
    CHECK(strstr(t.data, ">resume<") && !strstr(t.data, ">symmetric<"),
          "the last options record is shown");
    CHECK(strstr(t.data, "run&lt;1&gt;.jsonl") && !strstr(t.data, "run<1>"), "title escaped");
    gc_text_free(&t);

    /* an empty log still gives a well-formed page */
    CHECK_OK(gc_report_html("", 0, "empty", &t));
    CHECK(t.data && well_formed(t.data) && count(t.data, "<svg") == 0 &&
              strstr(t.data, "No step records"),
          "an empty log: a page that says so");
    gc_text_free(&t);
    /* one step only */
    const char *single = "{\"step\": 1, \"loss\": 1.5, \"lr\": 0.1}\n";
    CHECK_OK(gc_report_html(single, strlen(single), "single", &t));
    CHECK(t.data && well_formed(t.data) && count(t.data, "<svg") == 2 &&
              count(t.data, "<circle class=\"pt\"") == 2,
          "a one-step log: two charts of one dot each");
    gc_text_free(&t);
}

int main(void) {
    /* the checker itself must reject what it is there to catch */
    CHECK(!well_formed("<a><b></a></b>") && !well_formed("<a x=1/>") && !well_formed("<a>&</a>") &&
              !well_formed("<a>x<y</a>") && !well_formed("<a title=\"<\"/>") &&
              !well_formed("<a>") && well_formed("<a x=\"&amp;\"><b/>t&lt;</a>"),
          "the XML checker rejects bad markup");
    test_chart();
    test_page();
    return test_summary("test_report");
}

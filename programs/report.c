/* report.c: the `report` subcommand (a training log to one HTML page, gc_report_write) and the
 * report `train` writes beside its log at the end of a run. */
#include "cli.h"
#include "gc_report.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char REPORT_HELP[] =
    "Usage: gradcache report LOG.jsonl [-o FILE.html]\n"
    "\n"
    "Draw a training log (train --log) as one self-contained HTML page: SVG charts of the loss,\n"
    "in-batch accuracy, learning rate, gradient norm, temperature and pairs/s by step, the dev\n"
    "metrics at each evaluation (chart and table) and the run's options. The page loads nothing\n"
    "and runs no script; open it in any browser.\n"
    "\n"
    "Options:\n"
    "  -o, --out FILE   the page to write (atomically; default: LOG with its .jsonl, .json or\n"
    "                   .log extension replaced by .html)\n"
    "  --help           this text\n";

int cli_report_path(const char *log, char *buf, size_t cap) {
    size_t n = strlen(log);
    static const char *const ext[] = {".jsonl", ".json", ".log"};
    const char *slash = strrchr(log, '/');
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        const char *dot = log + n - e;
        if (n > e && strcmp(dot, ext[i]) == 0 && (!slash || dot > slash + 1)) {
            n -= e;
            break;
        }
    }
    int w = snprintf(buf, cap, "%.*s.html", (int)n, log);
    return w > 0 && (size_t)w < cap ? 0 : cli_error("report path for %s is too long", log);
}

int cli_write_report(const char *log, const char *html) {
    struct stat sb;
    if (stat(log, &sb) != 0 || !S_ISREG(sb.st_mode)) { /* a FIFO or device: nothing to reread */
        cli_note("no report: the log %s is not a regular file", log);
        return 0;
    }
    gc_status st = gc_report_write(log, html);
    if (st != GC_OK) return cli_fail(st, "writing the training report");
    cli_note("training report in %s", html);
    return 0;
}

int cmd_report(int argc, char **argv) {
    const char *log = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(REPORT_HELP, stdout);
            return CLI_EXIT_OK;
        }
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc || !*argv[i + 1]) return cli_usage("report ", "%s needs a file", a);
            out = argv[++i];
        } else if (strncmp(a, "--out=", 6) == 0 && a[6]) {
            out = a + 6;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("report ", "unknown option '%s'", a);
        } else if (log) {
            return cli_usage("report ", "one log at a time (got '%s' and '%s')", log, a);
        } else {
            log = a;
        }
    }
    if (!log) return cli_usage("report ", "give the log file (train --log)");
    char path[4096];
    if (!out) {
        if (cli_report_path(log, path, sizeof path)) return CLI_EXIT_RUNTIME;
        out = path;
    }
    gc_status st = gc_report_write(log, out);
    if (st != GC_OK) return cli_fail(st, NULL);
    cli_note("wrote %s", out);
    return CLI_EXIT_OK;
}

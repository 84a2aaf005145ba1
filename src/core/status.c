/* status.c: status names and the per-thread error message. */
#include "gradcache.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char g_error[1024];

const char *gc_status_str(gc_status s) {
    switch (s) {
    case GC_OK:
        return "ok";
    case GC_ERR_INVALID_ARG:
        return "invalid argument";
    case GC_ERR_NOMEM:
        return "out of memory";
    case GC_ERR_IO:
        return "I/O error";
    case GC_ERR_FORMAT:
        return "malformed input";
    case GC_ERR_NUMERIC:
        return "non-finite number";
    case GC_ERR_UNSUPPORTED:
        return "unsupported";
    case GC_ERR_INTERNAL:
        return "internal error";
    case GC_ERR_INTERRUPTED:
        return "interrupted";
    }
    return "unknown status";
}

const char *gc_last_error(void) {
    return g_error;
}

gc_status gc_set_error(gc_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    return s;
}

void gc_clear_error(void) {
    g_error[0] = '\0';
}

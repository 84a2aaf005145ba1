/* jsonl_internal.h: the JSONL line reader of data.c for other readers inside the library (it
 * hands out jansson objects): plain or gzip, a stream or a buffer, a byte-order mark skipped,
 * every non-blank line parsed as a JSON object (duplicate keys, invalid UTF-8, NUL bytes and
 * anything but an object are errors naming file:line) and given to `take` with its line. */
#ifndef GC_JSONL_INTERNAL_H
#define GC_JSONL_INTERNAL_H

#include "gradcache.h"

#include <jansson.h>
#include <stddef.h>

typedef gc_status (*gc_jsonl_take_fn)(void *ctx, json_t *obj, const char *name, size_t line);

gc_status gc_jsonl_each(const char *path, gc_jsonl_take_fn take, void *ctx);
gc_status gc_jsonl_each_memory(const void *buf, size_t len, const char *name, gc_jsonl_take_fn take,
                               void *ctx);

#endif

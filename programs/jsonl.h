/* jsonl.h: reading one string field of every line of a JSONL / JSONL.gz file. */
#ifndef GC_CLI_JSONL_H
#define GC_CLI_JSONL_H

#include "gradcache.h"

#include <stddef.h>

typedef struct cli_texts {
    char **texts;
    size_t n;
} cli_texts;

/* Every non-blank line must be a JSON object with a string `field`; errors name file:line.
 * A file with no data lines is an error. */
gc_status cli_read_field(const char *path, const char *field, cli_texts *out);
void cli_texts_free(cli_texts *t);

#endif

/* gc_prompts.h: the named prompts of a sentence-transformers model folder: the "prompts"
 * object of config_sentence_transformers.json (e.g. {"query": "query: ", "passage": "passage: "}
 * for E5, a query instruction for BGE). A prompt is text put before a text before tokenizing
 * (sentence-transformers' encode(x, prompt_name=...)), so it counts in the maximum length.
 *
 * A model read with gc_bert_load carries its folder's prompts; gc_bert_save writes them into the
 * saved folder's config_sentence_transformers.json beside its other fields. */
#ifndef GC_PROMPTS_H
#define GC_PROMPTS_H

#include "gradcache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_prompts {
    int n;
    char **names; /* in the file's order */
    char **texts;
    char *config; /* the whole file as read (JSON), so a save keeps its other fields; or NULL */
} gc_prompts;

/* The prompts of model_dir/config_sentence_transformers.json into *out (emptied first). No
 * file, or no "prompts" in it, gives no prompts; a malformed file, a "prompts" that is not an
 * object of strings, is GC_ERR_FORMAT naming the file. */
gc_status gc_prompts_read(gc_prompts *out, const char *model_dir);
/* The text of a prompt, or NULL. "passage" falls back to "document" (the name some models use). */
const char *gc_prompts_get(const gc_prompts *p, const char *name);
/* Set (replace or add) a prompt; text is copied. Setting "passage" also updates a "document"
 * prompt the folder has, so both names keep meaning the same. */
gc_status gc_prompts_set(gc_prompts *p, const char *name, const char *text);
void gc_prompts_free(gc_prompts *p);

struct gc_bert;
/* The prompts a loaded model carries (read from its folder; gc_prompts_set changes what
 * gc_bert_save writes). Never NULL for a model. */
gc_prompts *gc_bert_prompts(struct gc_bert *m);

#ifdef __cplusplus
}
#endif

#endif

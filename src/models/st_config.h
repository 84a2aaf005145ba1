/* st_config.h: the config_sentence_transformers.json a saved model folder gets (inside the
 * library only: it hands out a jansson object). */
#ifndef GC_ST_CONFIG_H
#define GC_ST_CONFIG_H

#include "gc_prompts.h"

#include <jansson.h>

/* The file p was read from (p->config) with its "prompts" replaced by p's, "gradcache" added
 * to "__version__", "similarity_fn_name" "cosine" (the training loss's) and a null
 * "default_prompt_name" when it had none; without p->config only those fields. NULL when out of
 * memory. */
json_t *gc_st_config_json(const gc_prompts *p);

#endif

/* st_config.c: sentence-transformers' config_sentence_transformers.json: reading a folder's
 * named prompts and building the file a saved folder gets. */
#include "st_config.h"

#include "models/bert_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void gc_prompts_free(gc_prompts *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->names[i]);
        free(p->texts[i]);
    }
    free(p->names);
    free(p->texts);
    free(p->config);
    memset(p, 0, sizeof *p);
}

static int find(const gc_prompts *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0) return i;
    return -1;
}

const char *gc_prompts_get(const gc_prompts *p, const char *name) {
    if (!p || !name) return NULL;
    int i = find(p, name);
    if (i < 0 && strcmp(name, "passage") == 0) i = find(p, "document");
    return i < 0 ? NULL : p->texts[i];
}

static gc_status set_one(gc_prompts *p, const char *name, const char *text) {
    char *t = strdup(text);
    if (!t) return gc_set_error(GC_ERR_NOMEM, "prompts: out of memory");
    int i = find(p, name);
    if (i >= 0) {
        free(p->texts[i]);
        p->texts[i] = t;
        return GC_OK;
    }
    char *nm = strdup(name);
    char **nn = realloc(p->names, (size_t)(p->n + 1) * sizeof *nn);
    if (nn) p->names = nn;
    char **nt = nn ? realloc(p->texts, (size_t)(p->n + 1) * sizeof *nt) : NULL;
    if (nt) p->texts = nt;
    if (!nm || !nn || !nt) {
        free(nm);
        free(t);
        return gc_set_error(GC_ERR_NOMEM, "prompts: out of memory");
    }
    p->names[p->n] = nm;
    p->texts[p->n] = t;
    p->n++;
    return GC_OK;
}

gc_status gc_prompts_set(gc_prompts *p, const char *name, const char *text) {
    if (!p || !name || !text) return gc_set_error(GC_ERR_INVALID_ARG, "gc_prompts_set: NULL");
    gc_status st = set_one(p, name, text);
    if (st == GC_OK && strcmp(name, "passage") == 0 && find(p, "document") >= 0)
        st = set_one(p, "document", text);
    return st;
}

gc_status gc_prompts_read(gc_prompts *out, const char *model_dir) {
    if (!out || !model_dir) return gc_set_error(GC_ERR_INVALID_ARG, "gc_prompts_read: NULL");
    gc_prompts_free(out);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config_sentence_transformers.json", model_dir) >=
        (int)sizeof path)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: path too long", model_dir);
    struct stat sb;
    if (stat(path, &sb) != 0) return GC_OK; /* a plain Hugging Face folder has none */
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!root)
        return gc_set_error(GC_ERR_FORMAT, "%s: malformed JSON: %s (line %d)", path, jerr.text,
                            jerr.line);
    gc_status st = GC_OK;
    json_t *pr = json_is_object(root) ? json_object_get(root, "prompts") : NULL;
    if (!json_is_object(root)) {
        st = gc_set_error(GC_ERR_FORMAT, "%s: not a JSON object", path);
    } else if (pr && !json_is_null(pr)) {
        if (!json_is_object(pr)) {
            st = gc_set_error(GC_ERR_FORMAT, "%s: \"prompts\" is not an object", path);
        } else {
            const char *key;
            json_t *v;
            json_object_foreach(pr, key, v) {
                if (!json_is_string(v)) {
                    st = gc_set_error(GC_ERR_FORMAT, "%s: prompt \"%.64s\" is not a string", path,
                                      key);
                    break;
                }
                if ((st = set_one(out, key, json_string_value(v))) != GC_OK) break;
            }
        }
    }
    if (st == GC_OK && !(out->config = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17))))
        st = gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    json_decref(root);
    if (st != GC_OK) gc_prompts_free(out);
    return st;
}

gc_prompts *gc_bert_prompts(struct gc_bert *m) {
    return m ? &m->prompts : NULL;
}

json_t *gc_st_config_json(const gc_prompts *p) {
    /* the starting folder's file, so fields we do not know (model_type, ...) survive */
    json_t *o = p && p->config ? json_loads(p->config, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    if (!o && !(o = json_object())) return NULL;
    json_t *ver = json_object_get(o, "__version__");
    if (json_is_object(ver))
        json_object_set_new(ver, "gradcache", json_string("0.1.0"));
    else
        json_object_set_new(o, "__version__", json_pack("{s:s}", "gradcache", "0.1.0"));
    json_t *prompts = json_object();
    for (int i = 0; p && prompts && i < p->n; i++)
        json_object_set_new(prompts, p->names[i], json_string(p->texts[i]));
    if (!prompts || json_object_set_new(o, "prompts", prompts) != 0) {
        json_decref(o);
        return NULL;
    }
    if (!json_object_get(o, "default_prompt_name"))
        json_object_set_new(o, "default_prompt_name", json_null());
    /* the trained model's similarity is the one its loss used */
    json_object_set_new(o, "similarity_fn_name", json_string("cosine"));
    return o;
}

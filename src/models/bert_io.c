/* bert_io.c: BERT model folders in and out: Hugging Face config.json, sentence-transformers
 * module files (modules.json, sentence_bert_config.json, 1_Pooling/config.json, Normalize),
 * and model.safetensors weights, every shape checked against the config. */
#define _GNU_SOURCE /* realpath */
#include "models/bert_internal.h"
#include "models/st_config.h"

#include "gc_io.h"
#include "gc_tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define PATH_MAX_LEN 4096

static gc_status join(char *buf, const char *dir, const char *name) {
    int n = (dir && dir[0]) ? snprintf(buf, PATH_MAX_LEN, "%s/%s", dir, name)
                            : snprintf(buf, PATH_MAX_LEN, "%s", name);
    if (n < 0 || n >= PATH_MAX_LEN)
        return gc_set_error(GC_ERR_INVALID_ARG, "path too long: %s/%s", dir ? dir : "", name);
    return GC_OK;
}

/* An optional file: 0 absent, 1 there; an error (with the real reason) when something else is
 * in its place. */
static gc_status optional_file(const char *path, int *present) {
    int k = gc_path_kind(path);
    *present = k == 1;
    return k < 0 ? gc_check_regular_file(path) : GC_OK;
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Put `path: ` before the message already recorded for st. */
static gc_status with_path(gc_status st, const char *path) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", gc_last_error());
    return gc_set_error(st, "%s: %s", path, msg);
}

/* Parse a JSON file that must hold an object. */
static gc_status load_json_object(json_t **out, const char *path, size_t flags) {
    *out = NULL;
    gc_status st0 = gc_check_regular_file(path);
    if (st0 != GC_OK) return st0;
    char *text = NULL;
    size_t len = 0;
    gc_status st = gc_read_file(path, &text, &len);
    if (st != GC_OK) return st;
    json_error_t err;
    json_t *root = json_loadb(text, len, flags, &err);
    free(text);
    if (!root) return gc_set_error(GC_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return gc_set_error(GC_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *out = root;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* config.json */

static gc_status get_int(json_t *root, const char *path, const char *key, int required, int def,
                         int *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return gc_set_error(GC_ERR_FORMAT, "%s: missing \"%s\"", path, key);
        *out = def;
        return GC_OK;
    }
    if (!json_is_integer(v))
        return gc_set_error(GC_ERR_FORMAT, "%s: \"%s\" is not an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x < INT32_MIN || x > INT32_MAX)
        return gc_set_error(GC_ERR_FORMAT, "%s: \"%s\" = %lld is out of range", path, key,
                            (long long)x);
    *out = (int)x;
    return GC_OK;
}

static gc_status get_float(json_t *root, const char *path, const char *key, float def, float *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return GC_OK;
    }
    if (!json_is_number(v))
        return gc_set_error(GC_ERR_FORMAT, "%s: \"%s\" is not a number", path, key);
    *out = (float)json_number_value(v);
    return GC_OK;
}

/* A string field that, when present, must equal one of the accepted values. */
static gc_status check_string(json_t *root, const char *path, const char *key,
                              const char *accepted) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return GC_OK;
    if (!json_is_string(v))
        return gc_set_error(GC_ERR_FORMAT, "%s: \"%s\" is not a string", path, key);
    if (strcmp(json_string_value(v), accepted) != 0)
        return gc_set_error(GC_ERR_UNSUPPORTED, "%s: %s \"%s\" is not supported (only \"%s\")",
                            path, key, json_string_value(v), accepted);
    return GC_OK;
}

gc_status gc_bert_config_from_json(gc_bert_config *cfg, const char *config_path) {
    if (!cfg || !config_path)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert_config_from_json: NULL argument");
    json_t *root = NULL;
    gc_status st = load_json_object(&root, config_path, 0);
    if (st != GC_OK) return st;
    gc_bert_config c;
    memset(&c, 0, sizeof c);
    const char *p = config_path;
    if ((st = check_string(root, p, "model_type", "bert")) != GC_OK ||
        (st = check_string(root, p, "hidden_act", "gelu")) != GC_OK ||
        (st = check_string(root, p, "position_embedding_type", "absolute")) != GC_OK ||
        (st = get_int(root, p, "vocab_size", 1, 0, &c.vocab_size)) != GC_OK ||
        (st = get_int(root, p, "hidden_size", 1, 0, &c.hidden)) != GC_OK ||
        (st = get_int(root, p, "num_hidden_layers", 1, 0, &c.layers)) != GC_OK ||
        (st = get_int(root, p, "num_attention_heads", 1, 0, &c.heads)) != GC_OK ||
        (st = get_int(root, p, "intermediate_size", 1, 0, &c.intermediate)) != GC_OK ||
        (st = get_int(root, p, "max_position_embeddings", 1, 0, &c.max_position)) != GC_OK ||
        (st = get_int(root, p, "type_vocab_size", 0, 2, &c.type_vocab)) != GC_OK ||
        (st = get_int(root, p, "pad_token_id", 0, 0, &c.pad_id)) != GC_OK ||
        (st = get_float(root, p, "layer_norm_eps", 1e-12f, &c.layer_norm_eps)) != GC_OK ||
        (st = get_float(root, p, "hidden_dropout_prob", 0.1f, &c.hidden_dropout)) != GC_OK ||
        (st = get_float(root, p, "attention_probs_dropout_prob", 0.1f, &c.attn_dropout)) != GC_OK) {
        json_decref(root);
        return st;
    }
    json_decref(root);
    c.pooling = GC_POOL_MEAN;
    c.normalize = 0;
    c.max_seq_length = c.max_position;
    st = bert_config_validate(&c);
    if (st != GC_OK) return with_path(st, config_path);
    /* sentence-transformers (and the padding of every batch) need the pad token in the table */
    if (c.pad_id < 0 || c.pad_id >= c.vocab_size)
        return gc_set_error(GC_ERR_FORMAT, "%s: pad_token_id %d is outside the vocabulary (0..%d)",
                            config_path, c.pad_id, c.vocab_size - 1);
    *cfg = c;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* sentence-transformers modules */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

typedef struct st_layout {
    char transformer_dir[PATH_MAX_LEN];
    char pooling_dir[PATH_MAX_LEN];
    int has_pooling;
    int normalize;
} st_layout;

/* Read modules.json: a Transformer, a Pooling, optionally a Normalize; nothing else. */
static gc_status read_modules(st_layout *lay, const char *model_dir, const char *path) {
    char *text = NULL;
    size_t len = 0;
    gc_status st = gc_read_file(path, &text, &len);
    if (st != GC_OK) return st;
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    free(text);
    if (!root) return gc_set_error(GC_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    int has_transformer = 0;
    st = GC_OK;
    if (!json_is_array(root)) {
        st = gc_set_error(GC_ERR_FORMAT, "%s: not a JSON array", path);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(root); i++) {
        json_t *mod = json_array_get(root, i);
        json_t *type = json_object_get(mod, "type"), *mpath = json_object_get(mod, "path");
        if (!json_is_object(mod) || !json_is_string(type) || (mpath && !json_is_string(mpath))) {
            st = gc_set_error(GC_ERR_FORMAT, "%s: module %zu needs a string \"type\" and \"path\"",
                              path, i);
            goto done;
        }
        const char *t = json_string_value(type), *sub = mpath ? json_string_value(mpath) : "";
        if (strstr(sub, "..")) {
            st = gc_set_error(GC_ERR_FORMAT, "%s: module path \"%s\" leaves the folder", path, sub);
            goto done;
        }
        if (ends_with(t, ".Transformer")) {
            if (has_transformer) {
                st = gc_set_error(GC_ERR_UNSUPPORTED, "%s: more than one Transformer module", path);
                goto done;
            }
            has_transformer = 1;
            if ((st = join(lay->transformer_dir, model_dir, sub)) != GC_OK) goto done;
            if (!sub[0]) snprintf(lay->transformer_dir, PATH_MAX_LEN, "%s", model_dir);
        } else if (ends_with(t, ".Pooling")) {
            if (lay->has_pooling) {
                st = gc_set_error(GC_ERR_UNSUPPORTED, "%s: more than one Pooling module", path);
                goto done;
            }
            lay->has_pooling = 1;
            if ((st = join(lay->pooling_dir, model_dir, sub)) != GC_OK) goto done;
        } else if (ends_with(t, ".Normalize")) {
            lay->normalize = 1; /* Normalize has no files: listing it is enough */
        } else {
            st = gc_set_error(GC_ERR_UNSUPPORTED, "%s: module type \"%s\" is not supported", path,
                              t);
            goto done;
        }
    }
    if (!has_transformer)
        st = gc_set_error(GC_ERR_FORMAT, "%s: no Transformer module", path);
    else if (!lay->has_pooling)
        st =
            gc_set_error(GC_ERR_UNSUPPORTED, "%s: no Pooling module (token embeddings only)", path);
done:
    json_decref(root);
    return st;
}

static gc_status read_bool(json_t *root, const char *path, const char *key, int *out) {
    json_t *v = json_object_get(root, key);
    *out = 0;
    if (!v || json_is_null(v)) return GC_OK;
    if (!json_is_boolean(v))
        return gc_set_error(GC_ERR_FORMAT, "%s: \"%s\" is not a boolean", path, key);
    *out = json_is_true(v);
    return GC_OK;
}

/* 1_Pooling/config.json: "pooling_mode" (a name, or a list of one), or the older
 * "pooling_mode_*_token(s)" booleans; mean, cls or max, exactly one. */
static gc_status read_pooling(gc_bert_config *cfg, const char *dir) {
    char path[PATH_MAX_LEN];
    gc_status st = join(path, dir, "config.json");
    if (st != GC_OK) return st;
    json_t *root = NULL;
    if ((st = load_json_object(&root, path, 0)) != GC_OK) return st;
    static const struct {
        const char *key, *mode;
    } legacy[] = {
        {"pooling_mode_mean_tokens", "mean"},
        {"pooling_mode_cls_token", "cls"},
        {"pooling_mode_max_tokens", "max"},
        {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
        {"pooling_mode_weightedmean_tokens", "weightedmean"},
        {"pooling_mode_lasttoken", "lasttoken"},
    };
    const char *mode = NULL;
    int dim = 0;
    json_t *pm = json_object_get(root, "pooling_mode");
    if (json_is_array(pm) && json_array_size(pm) == 1) pm = json_array_get(pm, 0);
    if (pm) {
        if (!json_is_string(pm)) {
            st = gc_set_error(GC_ERR_UNSUPPORTED,
                              "%s: \"pooling_mode\" must be one mode name (several modes "
                              "concatenated are not supported)",
                              path);
            goto done;
        }
        mode = json_string_value(pm);
    } else {
        int on = 0, any = 0;
        for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) {
            int b = 0;
            if (json_object_get(root, legacy[i].key)) any = 1;
            if ((st = read_bool(root, path, legacy[i].key, &b)) != GC_OK) goto done;
            if (b) on++, mode = legacy[i].mode;
        }
        if (!any)
            mode = "mean"; /* sentence-transformers' default */
        else if (on != 1) {
            st = gc_set_error(GC_ERR_UNSUPPORTED,
                              "%s: exactly one pooling mode must be on (got %d)", path, on);
            goto done;
        }
    }
    if (strcmp(mode, "mean") == 0)
        cfg->pooling = GC_POOL_MEAN;
    else if (strcmp(mode, "cls") == 0)
        cfg->pooling = GC_POOL_CLS;
    else if (strcmp(mode, "max") == 0)
        cfg->pooling = GC_POOL_MAX;
    else {
        st = gc_set_error(GC_ERR_UNSUPPORTED, "%s: pooling mode \"%s\" is not supported", path,
                          mode);
        goto done;
    }
    const char *dkey = json_object_get(root, "embedding_dimension") ? "embedding_dimension"
                                                                    : "word_embedding_dimension";
    if ((st = get_int(root, path, dkey, 0, cfg->hidden, &dim)) != GC_OK) goto done;
    if (dim != cfg->hidden)
        st = gc_set_error(GC_ERR_FORMAT, "%s: %s %d differs from hidden_size %d", path, dkey, dim,
                          cfg->hidden);
done:
    json_decref(root);
    return st;
}

/* The longest input: sentence_bert_config.json's max_seq_length (older folders), else the
 * tokenizer's model_max_length (where newer sentence-transformers keep it), else
 * max_position_embeddings; never more than max_position_embeddings. */
static gc_status read_max_seq_length(gc_bert_config *cfg, const char *dir) {
    char path[PATH_MAX_LEN];
    json_t *root = NULL;
    gc_status st = join(path, dir, "sentence_bert_config.json");
    if (st != GC_OK) return st;
    int msl = 0, present = 0;
    if ((st = optional_file(path, &present)) != GC_OK) return st;
    if (present) {
        if ((st = load_json_object(&root, path, 0)) != GC_OK) return st;
        st = get_int(root, path, "max_seq_length", 0, 0, &msl);
        json_t *v = json_object_get(root, "max_seq_length");
        int given = v && !json_is_null(v);
        json_decref(root);
        if (st != GC_OK) return st;
        if (given && msl < 1)
            return gc_set_error(GC_ERR_FORMAT, "%s: max_seq_length %d", path, msl);
    }
    if (msl <= 0) {
        if ((st = join(path, dir, "tokenizer_config.json")) != GC_OK) return st;
        if ((st = optional_file(path, &present)) != GC_OK) return st;
        if (present) {
            /* unset lengths are stored as 1e30-sized integers: read numbers as reals */
            if ((st = load_json_object(&root, path, JSON_DECODE_INT_AS_REAL)) != GC_OK) return st;
            json_t *v = json_object_get(root, "model_max_length");
            if (json_is_number(v) && json_number_value(v) >= 1 &&
                json_number_value(v) <= cfg->max_position)
                msl = (int)json_number_value(v);
            json_decref(root);
        }
    }
    if (msl <= 0 || msl > cfg->max_position) msl = cfg->max_position;
    cfg->max_seq_length = msl;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* weights */

static gc_status read_tensor(const gc_safetensors *sf, const char *path, const char *name, int ndim,
                             const int64_t *shape, float *dst, int required, int *found) {
    const gc_st_tensor *t = gc_st_find(sf, name);
    if (found) *found = t != NULL;
    if (!t) {
        if (!required) return GC_OK;
        return gc_set_error(GC_ERR_FORMAT, "%s: missing tensor \"%s\"", path, name);
    }
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char want[64], got[96];
        int n = 0;
        for (int d = 0; d < ndim; d++)
            n += snprintf(want + n, sizeof want - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
        n = 0;
        for (int d = 0; d < t->ndim && n < (int)sizeof got - 24; d++)
            n += snprintf(got + n, sizeof got - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (t->ndim == 0) got[0] = '\0';
        return gc_set_error(GC_ERR_FORMAT,
                            "%s: tensor \"%s\" has shape [%s], the config needs [%s]", path, name,
                            got, want);
    }
    gc_status st = gc_st_read_f32(t, dst, t->numel);
    if (st != GC_OK) return with_path(st, path);
    for (size_t i = 0; i < t->numel; i++)
        if (!isfinite(dst[i]))
            return gc_set_error(GC_ERR_NUMERIC, "%s: tensor \"%s\" holds a non-finite value", path,
                                name);
    return GC_OK;
}

/* Read every tensor of the table into w (shapes checked), and the pooler when there is one. */
static gc_status load_weights(bert_weights *w, const char *path) {
    int kind = gc_path_kind(path);
    if (kind < 0) return gc_check_regular_file(path);
    if (kind == 0) {
        char other[PATH_MAX_LEN];
        snprintf(other, sizeof other, "%s", path);
        char *slash = strrchr(other, '/');
        if (slash && (size_t)(slash - other) + 20 < sizeof other) {
            strcpy(slash + 1, "pytorch_model.bin");
            if (gc_path_kind(other) == 1)
                return gc_set_error(GC_ERR_UNSUPPORTED,
                                    "%s: missing; only safetensors weights are read (found "
                                    "pytorch_model.bin)",
                                    path);
        }
        return gc_set_error(GC_ERR_IO, "%s: no such file", path);
    }
    gc_safetensors *sf = NULL;
    gc_status st = gc_st_open(&sf, path);
    if (st != GC_OK) return st;
    for (int i = 0; i < w->num_tensors && st == GC_OK; i++) {
        const bert_tensor *t = &w->tensors[i];
        st = read_tensor(sf, path, t->name, t->ndim, t->shape, w->params + t->offset, 1, NULL);
    }
    if (st == GC_OK) {
        /* the pooler is optional, and kept only when both of its tensors are there */
        size_t C = w->cfg.hidden;
        float *pool = malloc((C * C + C) * sizeof(float));
        int64_t ws[2] = {(int64_t)C, (int64_t)C}, bs[1] = {(int64_t)C};
        int fw = 0, fb = 0;
        if (!pool) st = gc_set_error(GC_ERR_NOMEM, "bert: out of memory");
        if (st == GC_OK) st = read_tensor(sf, path, "pooler.dense.weight", 2, ws, pool, 0, &fw);
        if (st == GC_OK)
            st = read_tensor(sf, path, "pooler.dense.bias", 1, bs, pool + C * C, 0, &fb);
        if (st == GC_OK && fw && fb)
            w->pooler = pool;
        else
            free(pool);
    }
    gc_st_close(sf);
    return st;
}

gc_status gc_bert_load(gc_bert **out, const char *model_dir) {
    if (!out || !model_dir) return gc_set_error(GC_ERR_INVALID_ARG, "bert_load: NULL argument");
    *out = NULL;
    if (!is_dir(model_dir)) return gc_set_error(GC_ERR_IO, "%s: no such folder", model_dir);
    char path[PATH_MAX_LEN];
    st_layout lay;
    memset(&lay, 0, sizeof lay);
    gc_status st = join(path, model_dir, "modules.json");
    if (st != GC_OK) return st;
    int sbert = 0;
    if ((st = optional_file(path, &sbert)) != GC_OK) return st;
    if (sbert) {
        if ((st = read_modules(&lay, model_dir, path)) != GC_OK) return st;
    } else {
        snprintf(lay.transformer_dir, PATH_MAX_LEN, "%s", model_dir);
    }
    gc_bert_config cfg;
    if ((st = join(path, lay.transformer_dir, "config.json")) != GC_OK) return st;
    if ((st = gc_bert_config_from_json(&cfg, path)) != GC_OK) return st;
    if (sbert) {
        if ((st = read_max_seq_length(&cfg, lay.transformer_dir)) != GC_OK) return st;
        if ((st = read_pooling(&cfg, lay.pooling_dir)) != GC_OK) return st;
        cfg.normalize = lay.normalize;
    }
    gc_bert *m = NULL;
    if ((st = bert_create(&m, &cfg)) != GC_OK) return st;
    if ((st = join(path, lay.transformer_dir, "model.safetensors")) == GC_OK)
        st = load_weights(&m->w, path);
    if (st == GC_OK) st = gc_prompts_read(&m->prompts, model_dir);
    if (st != GC_OK) {
        gc_bert_free(m);
        return st;
    }
    *out = m;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* saving */

/* The shortest decimal that reads back as the same float, as a JSON real. */
static json_t *json_float(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

static gc_status write_json(const char *dir, const char *name, json_t *root) {
    char path[PATH_MAX_LEN];
    gc_status st = join(path, dir, name);
    if (st != GC_OK) {
        json_decref(root);
        return st;
    }
    if (!root) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory building JSON", path);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory writing JSON", path);
    st = gc_write_file_atomic(path, text, strlen(text));
    free(text);
    return st;
}

static json_t *config_json(const gc_bert_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", "BertModel"));
    json_object_set_new(o, "model_type", json_string("bert"));
    json_object_set_new(o, "attention_probs_dropout_prob", json_float(c->attn_dropout));
    json_object_set_new(o, "hidden_act", json_string("gelu"));
    json_object_set_new(o, "hidden_dropout_prob", json_float(c->hidden_dropout));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden));
    json_object_set_new(o, "initializer_range", json_float(0.02f));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate));
    json_object_set_new(o, "layer_norm_eps", json_float(c->layer_norm_eps));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position));
    json_object_set_new(o, "num_attention_heads", json_integer(c->heads));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->layers));
    json_object_set_new(o, "pad_token_id", json_integer(c->pad_id));
    json_object_set_new(o, "position_embedding_type", json_string("absolute"));
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    json_object_set_new(o, "type_vocab_size", json_integer(c->type_vocab));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    return o;
}

static json_t *modules_json(int normalize) {
    json_t *a = json_array();
    json_array_append_new(a, json_pack("{s:i,s:s,s:s,s:s}", "idx", 0, "name", "0", "path", "",
                                       "type", "sentence_transformers.models.Transformer"));
    json_array_append_new(a,
                          json_pack("{s:i,s:s,s:s,s:s}", "idx", 1, "name", "1", "path", "1_Pooling",
                                    "type", "sentence_transformers.models.Pooling"));
    if (normalize)
        json_array_append_new(a, json_pack("{s:i,s:s,s:s,s:s}", "idx", 2, "name", "2", "path",
                                           "2_Normalize", "type",
                                           "sentence_transformers.models.Normalize"));
    return a;
}

static json_t *pooling_json(const gc_bert_config *c) {
    return json_pack("{s:i,s:b,s:b,s:b,s:b,s:b,s:b,s:b}", "word_embedding_dimension", c->hidden,
                     "pooling_mode_cls_token", c->pooling == GC_POOL_CLS,
                     "pooling_mode_mean_tokens", c->pooling == GC_POOL_MEAN,
                     "pooling_mode_max_tokens", c->pooling == GC_POOL_MAX,
                     "pooling_mode_mean_sqrt_len_tokens", 0, "pooling_mode_weightedmean_tokens", 0,
                     "pooling_mode_lasttoken", 0, "include_prompt", 1);
}

/* Whether a symbolic link of a model folder may be followed when copying: its target must lie
 * inside the folder, or, for a Hugging Face cache snapshot (".../snapshots/<revision>"), inside
 * that model's cache folder (whose blobs/ the snapshot links into). */
static int link_stays_home(const char *src_dir, const char *src) {
    char *home = realpath(src_dir, NULL), *target = realpath(src, NULL);
    int ok = 0;
    if (home && target) {
        size_t n = strlen(home);
        ok = strncmp(target, home, n) == 0 && target[n] == '/';
        char *slash = strrchr(home, '/');
        if (!ok && slash && slash > home) {
            *slash = '\0';
            char *up = strrchr(home, '/');
            if (up && strcmp(up + 1, "snapshots") == 0 && up > home) {
                *up = '\0';
                n = strlen(home);
                ok = n > 0 && strncmp(target, home, n) == 0 && target[n] == '/';
            }
        }
    }
    free(home);
    free(target);
    return ok;
}

/* Copy a tokenizer file when it is a regular file of the model folder (or a link that stays
 * there, see above), with the stricter of its mode and 0644. Anything else is not copied: a
 * link out of the folder could carry any file of the machine into a folder meant for
 * publishing. */
static gc_status copy_file(const char *src_dir, const char *dst_dir, const char *name) {
    char src[PATH_MAX_LEN], dst[PATH_MAX_LEN];
    gc_status st = join(src, src_dir, name);
    if (st == GC_OK) st = join(dst, dst_dir, name);
    if (st != GC_OK) return st;
    struct stat lsb, sb;
    if (lstat(src, &lsb) != 0) return GC_OK; /* a tokenizer need not have every file */
    if (S_ISLNK(lsb.st_mode) && !link_stays_home(src_dir, src)) return GC_OK;
    if (stat(src, &sb) != 0 || !S_ISREG(sb.st_mode)) return GC_OK;
    char *data = NULL;
    size_t len = 0;
    if ((st = gc_read_file(src, &data, &len)) != GC_OK) return st;
    st = gc_write_file_atomic_mode(dst, data, len, (int)(sb.st_mode & 0644));
    free(data);
    return st;
}

static gc_status save_weights(const bert_weights *w, const char *path) {
    int n = w->num_tensors + (w->pooler ? 2 : 0);
    gc_st_item *items = calloc((size_t)n, sizeof *items);
    if (!items) return gc_set_error(GC_ERR_NOMEM, "bert_save: out of memory");
    for (int i = 0; i < w->num_tensors; i++) {
        const bert_tensor *t = &w->tensors[i];
        items[i].name = t->name;
        items[i].data = w->params + t->offset;
        items[i].ndim = t->ndim;
        items[i].shape[0] = t->shape[0];
        items[i].shape[1] = t->shape[1];
    }
    if (w->pooler) {
        int64_t C = w->cfg.hidden;
        gc_st_item *pw = &items[w->num_tensors], *pb = pw + 1;
        pw->name = "pooler.dense.weight", pw->data = w->pooler, pw->ndim = 2;
        pw->shape[0] = C, pw->shape[1] = C;
        pb->name = "pooler.dense.bias", pb->data = w->pooler + C * C, pb->ndim = 1;
        pb->shape[0] = C;
    }
    gc_status st = gc_st_write(path, items, n, "pt");
    free(items);
    return st;
}

gc_status gc_bert_save(const gc_bert *m, const char *out_dir, const char *tokenizer_src_dir) {
    if (!m || !out_dir) return gc_set_error(GC_ERR_INVALID_ARG, "bert_save: NULL argument");
    const gc_bert_config *c = &m->w.cfg;
    char path[PATH_MAX_LEN];
    gc_status st = gc_mkdirs(out_dir);
    if (st != GC_OK) return st;
    if ((st = join(path, out_dir, "model.safetensors")) != GC_OK) return st;
    if ((st = save_weights(&m->w, path)) != GC_OK) return st;
    if ((st = write_json(out_dir, "config.json", config_json(c))) != GC_OK) return st;
    if ((st = write_json(out_dir, "sentence_bert_config.json",
                         json_pack("{s:i,s:b}", "max_seq_length", c->max_seq_length,
                                   "do_lower_case", 0))) != GC_OK)
        return st;
    if ((st = write_json(out_dir, "config_sentence_transformers.json",
                         gc_st_config_json(&m->prompts))) != GC_OK)
        return st;
    if ((st = join(path, out_dir, "1_Pooling")) != GC_OK || (st = gc_mkdirs(path)) != GC_OK ||
        (st = write_json(path, "config.json", pooling_json(c))) != GC_OK)
        return st;
    if (c->normalize) {
        if ((st = join(path, out_dir, "2_Normalize")) != GC_OK || (st = gc_mkdirs(path)) != GC_OK)
            return st;
    }
    if ((st = write_json(out_dir, "modules.json", modules_json(c->normalize))) != GC_OK) return st;
    if (tokenizer_src_dir && strcmp(tokenizer_src_dir, out_dir) != 0) {
        static const char *files[] = {"vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                      "special_tokens_map.json"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
            if ((st = copy_file(tokenizer_src_dir, out_dir, files[i])) != GC_OK) return st;
    }
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* checks across files */

gc_status gc_bert_check_tokenizer(const gc_bert *m, const struct gc_tokenizer *tok,
                                  const char *dir) {
    if (!m || !tok) return gc_set_error(GC_ERR_INVALID_ARG, "bert_check_tokenizer: NULL argument");
    int n = gc_tokenizer_vocab_size(tok);
    if (n > m->w.cfg.vocab_size)
        return gc_set_error(GC_ERR_FORMAT,
                            "%s: the tokenizer has %d token ids but config.json's vocab_size is "
                            "%d (the embedding table has no row for the rest)",
                            dir ? dir : "model", n, m->w.cfg.vocab_size);
    return GC_OK;
}

/* One crc32 over the (name, size, bytes) of the files of a group; absent files count by name. */
static gc_status digest_group(const char *dir, const char *const *names, int n, char *line,
                              size_t cap, const char *key) {
    uint32_t c = (uint32_t)crc32(0L, Z_NULL, 0);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX_LEN];
        gc_status st = join(path, dir, names[i]);
        if (st != GC_OK) return st;
        int present = 0;
        if ((st = optional_file(path, &present)) != GC_OK) return st;
        uint32_t fc = 0;
        uint64_t size = 0;
        if (present && (st = gc_file_crc32(path, &fc, &size)) != GC_OK) return st;
        char rec[320];
        int k = snprintf(rec, sizeof rec, "%s:%d:%llu:%08x;", names[i], present,
                         (unsigned long long)size, fc);
        c = (uint32_t)crc32(c, (const Bytef *)rec, (uInt)k);
        total += size;
    }
    snprintf(line, cap, "%s=crc32:%08x,bytes:%llu\n", key, c, (unsigned long long)total);
    return GC_OK;
}

gc_status gc_bert_model_digest(const char *dir, char *buf, size_t cap) {
    if (!dir || !buf || cap < 200) return gc_set_error(GC_ERR_INVALID_ARG, "bert_model_digest");
    static const char *const config[] = {"config.json", "modules.json", "sentence_bert_config.json",
                                         "1_Pooling/config.json"};
    static const char *const tokenizer[] = {"vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                            "special_tokens_map.json"};
    static const char *const weights[] = {"model.safetensors"};
    char a[128], b[128], c[128];
    gc_status st = digest_group(dir, config, 4, a, sizeof a, "model_config");
    if (st == GC_OK) st = digest_group(dir, tokenizer, 4, b, sizeof b, "model_tokenizer");
    if (st == GC_OK) st = digest_group(dir, weights, 1, c, sizeof c, "model_weights");
    if (st != GC_OK) return st;
    snprintf(buf, cap, "%s%s%s", a, b, c);
    return GC_OK;
}

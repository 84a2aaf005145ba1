/* bert.c: the BERT encoder model: the flat parameter layout and its named tensors, random
 * initialisation, activation slots (gc_bert_reserve), the forward and backward passes over a
 * packed chunk, and the gc_encoder interface over them.
 *
 * A chunk is packed: its sequences are laid end to end with no padding tokens, every token
 * attends to the tokens of its own sequence only. This equals a padded batch with Hugging
 * Face's additive attention mask (padded keys get the dtype minimum, whose softmax weight is
 * exactly zero) on every real token, without computing the padded ones. */
#include "models/bert_internal.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* configuration and parameter layout */

gc_status bert_config_validate(const gc_bert_config *c) {
    if (!c) return gc_set_error(GC_ERR_INVALID_ARG, "bert: NULL config");
    struct {
        const char *name;
        int v, lo, hi;
    } ints[] = {
        {"vocab_size", c->vocab_size, 1, 1 << 24},
        {"hidden_size", c->hidden, 1, 1 << 14},
        {"num_hidden_layers", c->layers, 1, 256},
        {"num_attention_heads", c->heads, 1, 1 << 14},
        {"intermediate_size", c->intermediate, 1, 1 << 17},
        {"max_position_embeddings", c->max_position, 1, 1 << 13},
        {"type_vocab_size", c->type_vocab, 1, 1 << 10},
        {"max_seq_length", c->max_seq_length, 1, 1 << 13},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v < ints[i].lo || ints[i].v > ints[i].hi)
            return gc_set_error(GC_ERR_UNSUPPORTED, "bert: %s = %d is outside [%d, %d]",
                                ints[i].name, ints[i].v, ints[i].lo, ints[i].hi);
    if (c->hidden % c->heads != 0)
        return gc_set_error(GC_ERR_UNSUPPORTED,
                            "bert: hidden_size %d is not a multiple of num_attention_heads %d",
                            c->hidden, c->heads);
    /* attention dropout addresses (head * maxP + query) * maxP + key in 32 bits */
    if ((uint64_t)c->heads * (uint64_t)c->max_position * (uint64_t)c->max_position > UINT32_MAX)
        return gc_set_error(GC_ERR_UNSUPPORTED,
                            "bert: %d heads x %d positions^2 overflow the dropout addresses",
                            c->heads, c->max_position);
    if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps))
        return gc_set_error(GC_ERR_UNSUPPORTED, "bert: layer_norm_eps must be positive");
    if (!(c->hidden_dropout >= 0.0f && c->hidden_dropout < 1.0f) ||
        !(c->attn_dropout >= 0.0f && c->attn_dropout < 1.0f))
        return gc_set_error(GC_ERR_UNSUPPORTED, "bert: dropout probabilities must be in [0, 1)");
    if (c->pooling != GC_POOL_MEAN && c->pooling != GC_POOL_CLS && c->pooling != GC_POOL_MAX)
        return gc_set_error(GC_ERR_UNSUPPORTED, "bert: unknown pooling mode %d", (int)c->pooling);
    return GC_OK;
}

static void add_tensor(gc_bert *m, size_t *at, const char *name, int ndim, int64_t d0, int64_t d1) {
    bert_tensor *t = &m->tensors[m->num_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->count = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    t->offset = *at;
    *at += t->count;
}

/* Point the named pointers of one buffer (parameters or gradients) into it. */
static void point_params(bert_params *p, float *base, const gc_bert_config *c) {
    size_t V = c->vocab_size, C = c->hidden, L = c->layers, I = c->intermediate;
    float *q = base;
    p->wte = q, q += V * C;
    p->wpe = q, q += (size_t)c->max_position * C;
    p->wtt = q, q += (size_t)c->type_vocab * C;
    p->emb_lnw = q, q += C;
    p->emb_lnb = q, q += C;
    p->qkvw = q, q += L * 3 * C * C;
    p->qkvb = q, q += L * 3 * C;
    p->attprojw = q, q += L * C * C;
    p->attprojb = q, q += L * C;
    p->ln1w = q, q += L * C;
    p->ln1b = q, q += L * C;
    p->fcw = q, q += L * I * C;
    p->fcb = q, q += L * I;
    p->fcprojw = q, q += L * C * I;
    p->fcprojb = q, q += L * C;
    p->ln2w = q, q += L * C;
    p->ln2b = q, q += L * C;
}

/* The tensor table: every Hugging Face tensor with its place in the flat buffer. */
static void build_tensors(gc_bert *m) {
    const gc_bert_config *c = &m->cfg;
    int64_t C = c->hidden, I = c->intermediate;
    size_t L = c->layers;
    bert_params *p = &m->p;
    char name[96];
    size_t at;
#define OFF(ptr) ((size_t)((ptr)-m->params))
    at = OFF(p->wte), add_tensor(m, &at, "embeddings.word_embeddings.weight", 2, c->vocab_size, C);
    at = OFF(p->wpe);
    add_tensor(m, &at, "embeddings.position_embeddings.weight", 2, c->max_position, C);
    at = OFF(p->wtt);
    add_tensor(m, &at, "embeddings.token_type_embeddings.weight", 2, c->type_vocab, C);
    at = OFF(p->emb_lnw), add_tensor(m, &at, "embeddings.LayerNorm.weight", 1, C, 0);
    at = OFF(p->emb_lnb), add_tensor(m, &at, "embeddings.LayerNorm.bias", 1, C, 0);
    static const char *qkv[3] = {"query", "key", "value"};
    for (size_t l = 0; l < L; l++) {
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "encoder.layer.%zu.attention.self.%s.weight", l, qkv[k]);
            at = OFF(p->qkvw) + (l * 3 + k) * C * C, add_tensor(m, &at, name, 2, C, C);
            snprintf(name, sizeof name, "encoder.layer.%zu.attention.self.%s.bias", l, qkv[k]);
            at = OFF(p->qkvb) + (l * 3 + k) * C, add_tensor(m, &at, name, 1, C, 0);
        }
        snprintf(name, sizeof name, "encoder.layer.%zu.attention.output.dense.weight", l);
        at = OFF(p->attprojw) + l * C * C, add_tensor(m, &at, name, 2, C, C);
        snprintf(name, sizeof name, "encoder.layer.%zu.attention.output.dense.bias", l);
        at = OFF(p->attprojb) + l * C, add_tensor(m, &at, name, 1, C, 0);
        snprintf(name, sizeof name, "encoder.layer.%zu.attention.output.LayerNorm.weight", l);
        at = OFF(p->ln1w) + l * C, add_tensor(m, &at, name, 1, C, 0);
        snprintf(name, sizeof name, "encoder.layer.%zu.attention.output.LayerNorm.bias", l);
        at = OFF(p->ln1b) + l * C, add_tensor(m, &at, name, 1, C, 0);
        snprintf(name, sizeof name, "encoder.layer.%zu.intermediate.dense.weight", l);
        at = OFF(p->fcw) + l * I * C, add_tensor(m, &at, name, 2, I, C);
        snprintf(name, sizeof name, "encoder.layer.%zu.intermediate.dense.bias", l);
        at = OFF(p->fcb) + l * I, add_tensor(m, &at, name, 1, I, 0);
        snprintf(name, sizeof name, "encoder.layer.%zu.output.dense.weight", l);
        at = OFF(p->fcprojw) + l * C * I, add_tensor(m, &at, name, 2, C, I);
        snprintf(name, sizeof name, "encoder.layer.%zu.output.dense.bias", l);
        at = OFF(p->fcprojb) + l * C, add_tensor(m, &at, name, 1, C, 0);
        snprintf(name, sizeof name, "encoder.layer.%zu.output.LayerNorm.weight", l);
        at = OFF(p->ln2w) + l * C, add_tensor(m, &at, name, 1, C, 0);
        snprintf(name, sizeof name, "encoder.layer.%zu.output.LayerNorm.bias", l);
        at = OFF(p->ln2b) + l * C, add_tensor(m, &at, name, 1, C, 0);
    }
#undef OFF
}

gc_status bert_create(gc_bert **out, const gc_bert_config *cfg) {
    if (!out) return gc_set_error(GC_ERR_INVALID_ARG, "bert: NULL output");
    *out = NULL;
    gc_status st = bert_config_validate(cfg);
    if (st != GC_OK) return st;
    size_t V = cfg->vocab_size, C = cfg->hidden, L = cfg->layers, I = cfg->intermediate;
    size_t n = (V + (size_t)cfg->max_position + (size_t)cfg->type_vocab + 2) * C +
               L * (3 * C * C + 3 * C + C * C + C + 2 * C + I * C + I + C * I + C + 2 * C);
    gc_bert *m = calloc(1, sizeof *m);
    if (!m) return gc_set_error(GC_ERR_NOMEM, "bert: out of memory");
    m->cfg = *cfg;
    m->num_params = n;
    m->params = calloc(n, sizeof(float));
    m->grads = calloc(n, sizeof(float));
    m->tensors = calloc(5 + 16 * L, sizeof(bert_tensor));
    if (!m->params || !m->grads || !m->tensors) {
        gc_bert_free(m);
        return gc_set_error(GC_ERR_NOMEM, "bert: out of memory for %zu parameters", n);
    }
    point_params(&m->p, m->params, cfg);
    point_params(&m->g, m->grads, cfg);
    build_tensors(m);
    *out = m;
    return GC_OK;
}

static void release_activations(gc_bert *m) {
    for (int s = 0; s < 2; s++) {
        free(m->slots[s].mem);
        free(m->slots[s].imem);
        memset(&m->slots[s], 0, sizeof m->slots[s]);
    }
    free(m->scratch);
    m->scratch = NULL;
    m->s_qkv = m->s_a = m->s_b = m->s_t1 = m->s_t2 = m->s_g1 = m->s_g2 = NULL;
    m->max_chunk = m->max_len = m->num_slots = 0;
}

void gc_bert_free(gc_bert *m) {
    if (!m) return;
    release_activations(m);
    free(m->params);
    free(m->grads);
    free(m->tensors);
    free(m->pooler);
    free(m);
}

const gc_bert_config *gc_bert_get_config(const gc_bert *m) {
    return m ? &m->cfg : NULL;
}

void gc_bert_set_dropout(gc_bert *m, float p) {
    if (!m || !(p >= 0.0f && p < 1.0f)) return;
    m->cfg.hidden_dropout = p;
    m->cfg.attn_dropout = p;
}

size_t gc_bert_num_params(const gc_bert *m) {
    return m ? m->num_params : 0;
}

float *gc_bert_params(gc_bert *m) {
    return m ? m->params : NULL;
}

float *gc_bert_grads(gc_bert *m) {
    return m ? m->grads : NULL;
}

int gc_bert_num_tensors(const gc_bert *m) {
    return m ? m->num_tensors : 0;
}

gc_status gc_bert_tensor_info(const gc_bert *m, int i, const char **name, size_t *offset,
                              size_t *count) {
    if (!m || i < 0 || i >= m->num_tensors)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert: no tensor %d", i);
    if (name) *name = m->tensors[i].name;
    if (offset) *offset = m->tensors[i].offset;
    if (count) *count = m->tensors[i].count;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* random initialisation */

/* Normal(0, std) numbers addressed by (seed, tensor, element), by Box-Muller on two uniforms. */
static void fill_normal(float *x, size_t n, float std, uint64_t seed, uint32_t tensor) {
    gc_rng_addr a = {seed, 0, 0, tensor, 0};
    for (size_t i = 0; i < n; i += 2) {
        float u[2];
        gc_rng_uniform_fill(u, &a, (uint32_t)i, 2);
        double r = sqrt(-2.0 * log(1.0 - (double)u[0])); /* 1 - u is in (0, 1] */
        double th = 6.283185307179586 * (double)u[1];
        x[i] = (float)(std * r * cos(th));
        if (i + 1 < n) x[i + 1] = (float)(std * r * sin(th));
    }
}

gc_status gc_bert_init_random(gc_bert **out, const gc_bert_config *cfg, uint64_t seed) {
    gc_bert *m = NULL;
    gc_status st = bert_create(&m, cfg);
    if (st != GC_OK) return st;
    for (int i = 0; i < m->num_tensors; i++) {
        bert_tensor *t = &m->tensors[i];
        float *x = m->params + t->offset;
        size_t len = strlen(t->name);
        int is_ln = strstr(t->name, "LayerNorm") != NULL;
        int is_bias = len > 5 && strcmp(t->name + len - 5, ".bias") == 0;
        if (is_ln && !is_bias) {
            for (size_t k = 0; k < t->count; k++) x[k] = 1.0f;
        } else if (!is_bias) {
            fill_normal(x, t->count, 0.02f, seed, (uint32_t)i);
        } /* biases stay zero */
    }
    /* as Hugging Face does: the padding token's embedding starts at zero */
    if (cfg->pad_id >= 0 && cfg->pad_id < cfg->vocab_size)
        memset(m->p.wte + (size_t)cfg->pad_id * cfg->hidden, 0, sizeof(float) * cfg->hidden);
    *out = m;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* activation buffers */

/* slots 1 or 2: training (every layer's activations per slot, a backward pass's scratch);
 * slots 0: inference (encode only: one layer's buffers in the scratch, reused by each layer). */
static gc_status reserve(gc_bert *m, int max_chunk, int max_len, int slots, const char *fn) {
    if (!m) return gc_set_error(GC_ERR_INVALID_ARG, "%s: NULL model", fn);
    const gc_bert_config *c = &m->cfg;
    if (max_chunk < 1 || max_len < 1)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "%s: need max_chunk >= 1 and max_len >= 1 (got %d, %d)", fn, max_chunk,
                            max_len);
    if (max_len > c->max_position)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: max_len %d exceeds the model's %d positions",
                            fn, max_len, c->max_position);
    if ((int64_t)max_chunk * max_len * 3 * c->hidden > INT32_MAX ||
        (int64_t)max_chunk * max_len * c->intermediate > INT32_MAX)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: %d x %d tokens is too many", fn, max_chunk,
                            max_len);
    release_activations(m);

    int nthr = omp_get_max_threads();
    if (nthr < 1) nthr = 1;
    size_t T = (size_t)max_chunk * max_len, C = c->hidden, I = c->intermediate, L = c->layers,
           NH = c->heads;
    size_t att_cap = slots ? (size_t)max_chunk * NH * max_len * max_len : 0;
    size_t small = (size_t)max_chunk * C + (size_t)max_chunk; /* reps, pnorm */
    size_t per_slot = small;
    if (slots)
        per_slot += T * C + 2 * T + (L + 1) * T * C + L * 3 * T * C + L * att_cap + L * T * C * 3 +
                    L * 4 * T + L * T * I + L * T * C;
    size_t iper_slot = (max_chunk + 1) * sizeof(size_t) + T * sizeof(uint64_t) +
                       T * sizeof(int32_t) + 3 * T * sizeof(int) + (max_chunk + 1) * sizeof(int);
    size_t big = I > 3 * C ? I : 3 * C;
    size_t n_encode = T * C + T * big + 2 * T * C + 2 * T;
    size_t n_train = slots ? T * 3 * C + 4 * T * C + 2 * T * I : 0;
    size_t n_shared = n_train > n_encode ? n_train : n_encode;
    size_t att_scr = bert_attention_scratch_floats(max_len, c->hidden / c->heads);
    size_t nscratch = n_shared + (size_t)nthr * att_scr + (size_t)nthr * C;
    for (int s = 0; s < (slots ? slots : 1); s++) {
        bert_slot *sl = &m->slots[s];
        sl->mem = malloc(per_slot * sizeof(float));
        sl->imem = malloc(iper_slot);
        if (!sl->mem || !sl->imem) goto nomem;
        float *q = sl->mem;
        sl->reps = q, q += (size_t)max_chunk * C;
        sl->pnorm = q, q += (size_t)max_chunk;
        if (slots) {
            sl->emb = q, q += T * C;
            sl->emb_mean = q, q += T;
            sl->emb_rstd = q, q += T;
            sl->resid = q, q += (L + 1) * T * C;
            sl->qkvh = q, q += L * 3 * T * C;
            sl->att = q, q += L * att_cap;
            sl->ctx = q, q += L * T * C;
            sl->r1 = q, q += L * T * C;
            sl->h1 = q, q += L * T * C;
            sl->ln1_mean = q, q += L * T;
            sl->ln1_rstd = q, q += L * T;
            sl->ln2_mean = q, q += L * T;
            sl->ln2_rstd = q, q += L * T;
            sl->fch = q, q += L * T * I;
            sl->r2 = q, q += L * T * C;
        }
        /* wider arrays first, so every array stays aligned */
        char *b = sl->imem;
        sl->att_off = (size_t *)b, b += (max_chunk + 1) * sizeof(size_t);
        sl->id_keys = (uint64_t *)b, b += T * sizeof(uint64_t);
        sl->ids = (int32_t *)b, b += T * sizeof(int32_t);
        sl->by_id = (int *)b, b += T * sizeof(int);
        sl->tok_seq = (int *)b, b += T * sizeof(int);
        sl->tok_pos = (int *)b, b += T * sizeof(int);
        sl->off = (int *)b;
    }
    m->scratch = malloc(nscratch * sizeof(float));
    if (!m->scratch) goto nomem;
    float *q = m->scratch;
    if (slots) {
        m->s_qkv = q, q += T * 3 * C;
        m->s_a = q, q += T * C;
        m->s_b = q, q += T * C;
        m->s_t1 = q, q += T * C;
        m->s_t2 = q, q += T * C;
        m->s_g1 = q, q += T * I;
        m->s_g2 = q;
    }
    q = m->scratch;
    m->e_x = q, q += T * C;
    m->e_big = q, q += T * big;
    m->e_ctx = q, q += T * C;
    m->e_t = q, q += T * C;
    m->e_mean = q, q += T;
    m->e_rstd = q;
    q = m->scratch + n_shared;
    m->s_att = q, q += (size_t)nthr * att_scr;
    m->s_drop = q;
    m->max_chunk = max_chunk;
    m->max_len = max_len;
    m->num_slots = slots;
    m->nthr = nthr;
    m->max_tokens = T;
    m->att_cap = att_cap;
    return GC_OK;
nomem:
    release_activations(m);
    return gc_set_error(GC_ERR_NOMEM, "%s: out of memory for %d x %d tokens (%.1f MB)", fn,
                        max_chunk, max_len,
                        ((slots ? slots : 1) * per_slot + nscratch) * 4.0 / 1e6);
}

gc_status gc_bert_reserve(gc_bert *m, int max_chunk, int max_len, int slots) {
    if (slots < 1 || slots > 2)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert_reserve: slots must be 1 or 2 (got %d)",
                            slots);
    return reserve(m, max_chunk, max_len, slots, "bert_reserve");
}

gc_status gc_bert_reserve_inference(gc_bert *m, int max_chunk, int max_len) {
    return reserve(m, max_chunk, max_len, 0, "bert_reserve_inference");
}

/* ------------------------------------------------------------------------------------------ */
/* forward and backward */

/* Check the chunk [first, first+count) of the side's token batch and lay it out in the slot. */
static gc_status prepare_chunk(gc_bert *m, bert_slot *s, const gc_encode_args *a) {
    const gc_bert_config *c = &m->cfg;
    const gc_token_batch *tb = a->inputs;
    if (!tb || !tb->ids || !tb->offsets || tb->n < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert: inputs are not a token batch");
    if (a->count < 1 || a->first < 0 || a->first > tb->n - a->count)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: examples [%d, %d) are outside the batch of %d", a->first,
                            a->first + a->count, tb->n);
    if (!m->scratch)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: no activation buffers; call gc_bert_reserve first");
    if (a->count > m->max_chunk)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: chunk of %d sequences exceeds the reserved %d", a->count,
                            m->max_chunk);
    int N = 0, maxT = 0;
    s->att_off[0] = 0;
    s->off[0] = 0;
    for (int i = 0; i < a->count; i++) {
        int64_t b0 = tb->offsets[a->first + i], b1 = tb->offsets[a->first + i + 1];
        int64_t T = b1 - b0;
        if (b0 < 0 || T < 1 || T > m->max_len)
            return gc_set_error(GC_ERR_INVALID_ARG,
                                "bert: sequence %d has %lld tokens; allowed 1 to %d (the "
                                "reserved max_len)",
                                a->first + i, (long long)T, m->max_len);
        for (int64_t t = 0; t < T; t++) {
            int32_t id = tb->ids[b0 + t];
            if (id < 0 || id >= c->vocab_size)
                return gc_set_error(GC_ERR_INVALID_ARG,
                                    "bert: sequence %d has token id %d outside the vocabulary "
                                    "of %d",
                                    a->first + i, (int)id, c->vocab_size);
            s->ids[N] = id;
            s->tok_seq[N] = i;
            s->tok_pos[N] = (int)t;
            N++;
        }
        s->off[i + 1] = N;
        s->att_off[i + 1] = s->att_off[i] + (size_t)c->heads * (size_t)(T * T);
        if (T > maxT) maxT = (int)T;
    }
    bert_chunk *ck = &s->ck;
    ck->B = a->count;
    ck->N = N;
    ck->max_T = maxT;
    ck->off = s->off;
    ck->att_off = s->att_off;
    ck->tok_seq = s->tok_seq;
    ck->tok_pos = s->tok_pos;
    ck->max_position = c->max_position;
    ck->train = a->train != 0;
    ck->seed = a->seed;
    ck->step = a->step;
    ck->side = (uint32_t)a->side;
    ck->first = (uint32_t)a->first;
    s->first = a->first;
    s->count = a->count;
    s->side = a->side;
    s->train = ck->train;
    return GC_OK;
}

#define CHECK_ST(expr)                                                                             \
    do {                                                                                           \
        gc_status st_ = (expr);                                                                    \
        if (st_ != GC_OK) return st_;                                                              \
    } while (0)

/* Threads for this pass: OpenMP's current setting, at most as many as the scratch was sized
 * for at gc_bert_reserve. */
static int pass_threads(const gc_bert *m) {
    int n = omp_get_max_threads();
    return n < 1 ? 1 : n > m->nthr ? m->nthr : n;
}

/* The forward pass of the slot's chunk. keep: every layer keeps its own activations in the
 * slot (for a backward pass). Otherwise (encode) the pass runs in the e_ buffers, one layer's
 * worth that each layer overwrites: x is updated in place, e_t carries the attention branch
 * and its LayerNorm, e_big holds q|k|v and later the intermediate layer. */
static gc_status forward_chunk(gc_bert *m, bert_slot *s, int keep, float *reps) {
    const gc_bert_config *c = &m->cfg;
    const bert_chunk *ck = &s->ck;
    const bert_params *p = &m->p;
    int N = ck->N, C = c->hidden, I = c->intermediate, NH = c->heads, nt = pass_threads(m);
    size_t T = m->max_tokens, CC = (size_t)C * C;
    float ph = c->hidden_dropout, pa = c->attn_dropout, eps = c->layer_norm_eps;

    // embeddings -> LayerNorm -> dropout, all (N,C)
    float *x = keep ? s->resid : m->e_x;
    float *emb = keep ? s->emb : x;
    bert_embed_forward(emb, ck, s->ids, p->wte, p->wpe, p->wtt, C, nt);
    bert_layernorm_forward(x, keep ? s->emb_mean : m->e_mean, keep ? s->emb_rstd : m->e_rstd, emb,
                           p->emb_lnw, p->emb_lnb, N, C, eps, nt);
    bert_dropout(x, x, ck, GC_RNG_STREAM(0, BERT_SITE_EMB), ph, C, m->s_drop, nt);

    for (int l = 0; l < c->layers; l++) {
        float *qkv, *qkvh, *att, *ctx, *t1, *r1, *h1, *fch, *g, *t2, *r2, *out, *m1, *rs1, *m2,
            *rs2;
        if (keep) {
            qkv = m->s_qkv, qkvh = s->qkvh + (size_t)l * 3 * T * C, att = s->att + l * m->att_cap;
            ctx = s->ctx + l * T * C, t1 = m->s_t1, r1 = s->r1 + l * T * C, h1 = s->h1 + l * T * C;
            fch = s->fch + l * T * I, g = m->s_g1, t2 = m->s_t1, r2 = s->r2 + l * T * C;
            out = s->resid + (size_t)(l + 1) * T * C;
            m1 = s->ln1_mean + l * T, rs1 = s->ln1_rstd + l * T;
            m2 = s->ln2_mean + l * T, rs2 = s->ln2_rstd + l * T;
        } else {
            qkv = m->e_big, qkvh = att = NULL, ctx = m->e_ctx, t1 = r1 = h1 = m->e_t;
            fch = g = m->e_big, t2 = r2 = out = x;
            m1 = m2 = m->e_mean, rs1 = rs2 = m->e_rstd;
        }

        // self-attention: x (N,C) -> qkv (N,3C) -> ctx (N,C)
        CHECK_ST(bert_linear_forward(qkv, x, p->qkvw + l * 3 * CC, p->qkvb + l * 3 * C, N, 3 * C, C,
                                     nt));
        CHECK_ST(bert_attention_forward(ctx, att, qkvh, qkv, ck, C, NH,
                                        GC_RNG_STREAM(l + 1, BERT_SITE_ATT_PROBS), pa, m->s_att,
                                        nt));
        // output dense -> dropout -> residual -> LayerNorm
        CHECK_ST(
            bert_linear_forward(t1, ctx, p->attprojw + l * CC, p->attprojb + l * C, N, C, C, nt));
        bert_dropout(t1, t1, ck, GC_RNG_STREAM(l + 1, BERT_SITE_ATT_OUT), ph, C, m->s_drop, nt);
        bert_residual_forward(r1, x, t1, (size_t)N * C, nt);
        bert_layernorm_forward(h1, m1, rs1, r1, p->ln1w + l * C, p->ln1b + l * C, N, C, eps, nt);
        // feed-forward: (N,C) -> (N,I) -> GELU -> (N,C) -> dropout -> residual -> LayerNorm
        CHECK_ST(
            bert_linear_forward(fch, h1, p->fcw + l * (size_t)I * C, p->fcb + l * I, N, I, C, nt));
        bert_gelu_forward(g, fch, (size_t)N * I, nt);
        CHECK_ST(bert_linear_forward(t2, g, p->fcprojw + l * (size_t)C * I, p->fcprojb + l * C, N,
                                     C, I, nt));
        bert_dropout(t2, t2, ck, GC_RNG_STREAM(l + 1, BERT_SITE_FFN_OUT), ph, C, m->s_drop, nt);
        bert_residual_forward(r2, h1, t2, (size_t)N * C, nt);
        bert_layernorm_forward(out, m2, rs2, r2, p->ln2w + l * C, p->ln2b + l * C, N, C, eps, nt);
        x = out;
    }
    // pooling (+ normalize): (N,C) -> (B,C)
    bert_pool_forward(s->reps, s->pnorm, x, ck, C, c->pooling, c->normalize, nt);
    memcpy(reps, s->reps, sizeof(float) * (size_t)ck->B * C);
    return GC_OK;
}

static gc_status backward_chunk(gc_bert *m, bert_slot *s, const float *dreps) {
    const gc_bert_config *c = &m->cfg;
    const bert_chunk *ck = &s->ck;
    const bert_params *p = &m->p;
    bert_params *g = &m->g;
    int N = ck->N, C = c->hidden, I = c->intermediate, NH = c->heads, L = c->layers,
        nt = pass_threads(m);
    size_t T = m->max_tokens, CC = (size_t)C * C, CI = (size_t)C * I;
    float ph = c->hidden_dropout, pa = c->attn_dropout;
    float *da = m->s_a, *db = m->s_b, *t1 = m->s_t1, *t2 = m->s_t2;

    // da (N,C) = d loss / d (last layer output)
    bert_pool_backward(da, dreps, s->reps, s->pnorm, s->resid + (size_t)L * T * C, ck, C,
                       c->pooling, c->normalize, nt);
    for (int l = L - 1; l >= 0; l--) {
        const float *x = s->resid + (size_t)l * T * C;
        const float *qkvh = s->qkvh + (size_t)l * 3 * T * C, *att = s->att + l * m->att_cap;
        const float *ctx = s->ctx + (size_t)l * T * C, *r1 = s->r1 + (size_t)l * T * C;
        const float *h1 = s->h1 + (size_t)l * T * C, *fch = s->fch + (size_t)l * T * I;
        const float *r2 = s->r2 + (size_t)l * T * C;

        // output LayerNorm: db = d r2, which is also the residual part of d h1
        bert_layernorm_backward(db, g->ln2w + l * C, g->ln2b + l * C, da, r2, p->ln2w + l * C,
                                s->ln2_mean + l * T, s->ln2_rstd + l * T, N, C, nt);
        bert_dropout(t1, db, ck, GC_RNG_STREAM(l + 1, BERT_SITE_FFN_OUT), ph, C, m->s_drop, nt);
        // output dense: needs GELU(fch) again, recomputed rather than stored
        bert_gelu_forward(m->s_g2, fch, (size_t)N * I, nt);
        CHECK_ST(bert_linear_backward(m->s_g1, g->fcprojw + l * CI, g->fcprojb + l * C, t1, m->s_g2,
                                      p->fcprojw + l * CI, N, C, I, 0, nt));
        bert_gelu_backward(m->s_g1, fch, m->s_g1, (size_t)N * I, nt);
        // intermediate dense: db += d h1 through the feed-forward branch
        CHECK_ST(bert_linear_backward(db, g->fcw + l * CI, g->fcb + l * I, m->s_g1, h1,
                                      p->fcw + l * CI, N, I, C, 1, nt));
        // attention LayerNorm: da = d r1, the residual part of d x
        bert_layernorm_backward(da, g->ln1w + l * C, g->ln1b + l * C, db, r1, p->ln1w + l * C,
                                s->ln1_mean + l * T, s->ln1_rstd + l * T, N, C, nt);
        bert_dropout(t1, da, ck, GC_RNG_STREAM(l + 1, BERT_SITE_ATT_OUT), ph, C, m->s_drop, nt);
        CHECK_ST(bert_linear_backward(t2, g->attprojw + l * CC, g->attprojb + l * C, t1, ctx,
                                      p->attprojw + l * CC, N, C, C, 0, nt));
        CHECK_ST(bert_attention_backward(m->s_qkv, t2, att, qkvh, ck, C, NH,
                                         GC_RNG_STREAM(l + 1, BERT_SITE_ATT_PROBS), pa, m->s_att,
                                         nt));
        // qkv projections: da += d x through the attention branch
        CHECK_ST(bert_linear_backward(da, g->qkvw + l * 3 * CC, g->qkvb + l * 3 * C, m->s_qkv, x,
                                      p->qkvw + l * 3 * CC, N, 3 * C, C, 1, nt));
    }
    // embeddings: dropout -> LayerNorm -> scatter into the tables
    bert_dropout(t1, da, ck, GC_RNG_STREAM(0, BERT_SITE_EMB), ph, C, m->s_drop, nt);
    bert_layernorm_backward(t2, g->emb_lnw, g->emb_lnb, t1, s->emb, p->emb_lnw, s->emb_mean,
                            s->emb_rstd, N, C, nt);
    bert_order_by_id(s->by_id, s->id_keys, s->ids, N);
    bert_embed_backward(g->wte, g->wpe, g->wtt, t2, ck, s->ids, s->by_id, C, nt);
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* the encoder interface */

static int enc_dim(void *ctx) {
    return ((gc_bert *)ctx)->cfg.hidden;
}

static size_t enc_num_params(void *ctx) {
    return ((gc_bert *)ctx)->num_params;
}

static float *enc_params(void *ctx) {
    return ((gc_bert *)ctx)->params;
}

static float *enc_grads(void *ctx) {
    return ((gc_bert *)ctx)->grads;
}

static gc_status enc_encode(void *ctx, const gc_encode_args *a, float *reps) {
    gc_bert *m = ctx;
    if (!m || !a || !reps) return gc_set_error(GC_ERR_INVALID_ARG, "bert_encode: NULL argument");
    /* encode borrows slot 0's chunk layout: a forward kept there can no longer go back */
    bert_slot *s = &m->slots[0];
    s->valid = 0;
    CHECK_ST(prepare_chunk(m, s, a));
    return forward_chunk(m, s, 0, reps);
}

static gc_status enc_forward(void *ctx, const gc_encode_args *a, float *reps) {
    gc_bert *m = ctx;
    if (!m || !a || !reps) return gc_set_error(GC_ERR_INVALID_ARG, "bert_forward: NULL argument");
    if (a->slot < 0 || a->slot >= 2 || (m->scratch && a->slot >= m->num_slots))
        return gc_set_error(
            GC_ERR_INVALID_ARG, "bert_forward: slot %d not reserved (gc_bert_reserve slots = %d%s)",
            a->slot, m->num_slots, m->num_slots ? "" : "; gc_bert_reserve_inference reserves none");
    bert_slot *s = &m->slots[a->slot];
    s->valid = 0;
    CHECK_ST(prepare_chunk(m, s, a));
    CHECK_ST(forward_chunk(m, s, 1, reps));
    s->valid = 1;
    return GC_OK;
}

static gc_status enc_backward(void *ctx, const gc_encode_args *a, const float *dreps) {
    gc_bert *m = ctx;
    if (!m || !a || !dreps) return gc_set_error(GC_ERR_INVALID_ARG, "bert_backward: NULL argument");
    if (a->slot < 0 || a->slot >= m->num_slots || !m->slots[a->slot].valid)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert_backward: no forward pass kept in slot %d",
                            a->slot);
    bert_slot *s = &m->slots[a->slot];
    if (s->first != a->first || s->count != a->count || s->side != a->side ||
        s->train != (a->train != 0) || s->ck.seed != a->seed || s->ck.step != a->step)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert_backward: examples [%d, %d) of side %d do not match the "
                            "forward pass in slot %d ([%d, %d) of side %d)",
                            a->first, a->first + a->count, a->side, a->slot, s->first,
                            s->first + s->count, s->side);
    return backward_chunk(m, s, dreps);
}

static void enc_free(void *ctx) {
    (void)ctx; /* the encoder does not own the model */
}

static const gc_encoder_ops bert_encoder_ops = {
    enc_dim, enc_num_params, enc_params, enc_grads, enc_encode, enc_forward, enc_backward, enc_free,
};

gc_encoder gc_bert_encoder(gc_bert *m) {
    gc_encoder e = {&bert_encoder_ops, m};
    return e;
}

/* bert_weights.c: the weights half of the BERT encoder: config checks, the parameter table
 * (one table from which the parameter count, the named pointers and the Hugging Face tensor
 * names all come), the flat parameter and gradient buffers with the host parameter store over
 * them, and random initialisation. Nothing here knows about activations. */
#include "models/bert_internal.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------------------------------ */
/* the parameter table */

#define F(x) offsetof(bert_params, x)
const bert_param_spec bert_param_table[] = {
    {"embeddings.word_embeddings.weight", 0, BERT_DIM_V, BERT_DIM_C, F(wte)},
    {"embeddings.position_embeddings.weight", 0, BERT_DIM_P, BERT_DIM_C, F(wpe)},
    {"embeddings.token_type_embeddings.weight", 0, BERT_DIM_TV, BERT_DIM_C, F(wtt)},
    {"embeddings.LayerNorm.weight", 0, BERT_DIM_C, BERT_DIM_NONE, F(emb_lnw)},
    {"embeddings.LayerNorm.bias", 0, BERT_DIM_C, BERT_DIM_NONE, F(emb_lnb)},
    {"attention.self.query.weight", 1, BERT_DIM_C, BERT_DIM_C, F(qkvw)},
    {"attention.self.query.bias", 1, BERT_DIM_C, BERT_DIM_NONE, F(qkvb)},
    {"attention.self.key.weight", 1, BERT_DIM_C, BERT_DIM_C, F(qkvw)},
    {"attention.self.key.bias", 1, BERT_DIM_C, BERT_DIM_NONE, F(qkvb)},
    {"attention.self.value.weight", 1, BERT_DIM_C, BERT_DIM_C, F(qkvw)},
    {"attention.self.value.bias", 1, BERT_DIM_C, BERT_DIM_NONE, F(qkvb)},
    {"attention.output.dense.weight", 1, BERT_DIM_C, BERT_DIM_C, F(attprojw)},
    {"attention.output.dense.bias", 1, BERT_DIM_C, BERT_DIM_NONE, F(attprojb)},
    {"attention.output.LayerNorm.weight", 1, BERT_DIM_C, BERT_DIM_NONE, F(ln1w)},
    {"attention.output.LayerNorm.bias", 1, BERT_DIM_C, BERT_DIM_NONE, F(ln1b)},
    {"intermediate.dense.weight", 1, BERT_DIM_I, BERT_DIM_C, F(fcw)},
    {"intermediate.dense.bias", 1, BERT_DIM_I, BERT_DIM_NONE, F(fcb)},
    {"output.dense.weight", 1, BERT_DIM_C, BERT_DIM_I, F(fcprojw)},
    {"output.dense.bias", 1, BERT_DIM_C, BERT_DIM_NONE, F(fcprojb)},
    {"output.LayerNorm.weight", 1, BERT_DIM_C, BERT_DIM_NONE, F(ln2w)},
    {"output.LayerNorm.bias", 1, BERT_DIM_C, BERT_DIM_NONE, F(ln2b)},
};
#undef F
const int bert_param_table_rows = (int)(sizeof bert_param_table / sizeof bert_param_table[0]);

enum {
    NUM_FIELDS = sizeof(bert_params) / sizeof(float *),
    NUM_ROWS = sizeof bert_param_table / sizeof bert_param_table[0],
};

static int64_t dim_size(const gc_bert_config *c, bert_dim d) {
    switch (d) {
    case BERT_DIM_NONE:
        return 1;
    case BERT_DIM_V:
        return c->vocab_size;
    case BERT_DIM_P:
        return c->max_position;
    case BERT_DIM_TV:
        return c->type_vocab;
    case BERT_DIM_C:
        return c->hidden;
    case BERT_DIM_I:
        return c->intermediate;
    }
    return 0;
}

/* The layout the table gives for cfg: where each row lies within its field's (per-layer)
 * block, where each field begins, and the total. */
typedef struct bert_layout {
    size_t row_at[NUM_ROWS];        /* offset of a row within its field's block */
    size_t field_block[NUM_FIELDS]; /* a field's size per layer (or in all, when global) */
    size_t field_at[NUM_FIELDS];    /* a field's offset in the flat buffer */
    size_t total;
    int num_tensors;
} bert_layout;

static void layout(bert_layout *lay, const gc_bert_config *c) {
    memset(lay, 0, sizeof *lay);
    int seen[NUM_FIELDS] = {0};
    for (int r = 0; r < NUM_ROWS; r++) {
        const bert_param_spec *s = &bert_param_table[r];
        size_t f = s->field / sizeof(float *);
        lay->row_at[r] = lay->field_block[f];
        lay->field_block[f] += (size_t)dim_size(c, s->rows) * (size_t)dim_size(c, s->cols);
        lay->num_tensors += s->per_layer ? c->layers : 1;
    }
    for (int r = 0; r < NUM_ROWS; r++) {
        const bert_param_spec *s = &bert_param_table[r];
        size_t f = s->field / sizeof(float *);
        if (seen[f]) continue;
        seen[f] = 1;
        lay->field_at[f] = lay->total;
        lay->total += lay->field_block[f] * (s->per_layer ? (size_t)c->layers : 1);
    }
}

/* Point the named pointers of one buffer (parameters or gradients) into it. */
static void point_params(bert_params *p, float *base, const bert_layout *lay) {
    for (int r = 0; r < NUM_ROWS; r++) {
        size_t field = bert_param_table[r].field;
        *(float **)((char *)p + field) = base + lay->field_at[field / sizeof(float *)];
    }
}

/* The tensor table: every Hugging Face tensor with its place in the flat buffer. */
static void build_tensors(bert_weights *w, const bert_layout *lay) {
    const gc_bert_config *c = &w->cfg;
    int n = 0;
    for (int l = -1; l < c->layers; l++) /* l = -1: the global rows */
        for (int r = 0; r < NUM_ROWS; r++) {
            const bert_param_spec *s = &bert_param_table[r];
            if (s->per_layer != (l >= 0)) continue;
            size_t f = s->field / sizeof(float *);
            bert_tensor *t = &w->tensors[n];
            if (l < 0)
                snprintf(t->name, sizeof t->name, "%s", s->name);
            else
                snprintf(t->name, sizeof t->name, "encoder.layer.%d.%s", l, s->name);
            t->ndim = s->cols == BERT_DIM_NONE ? 1 : 2;
            t->shape[0] = dim_size(c, s->rows);
            t->shape[1] = s->cols == BERT_DIM_NONE ? 0 : dim_size(c, s->cols);
            t->count = (size_t)dim_size(c, s->rows) * (size_t)dim_size(c, s->cols);
            t->offset =
                lay->field_at[f] + (l < 0 ? 0 : (size_t)l * lay->field_block[f]) + lay->row_at[r];
            w->views[n] = (gc_tensor_view){t->name, t->offset, t->count};
            n++;
        }
}

gc_status bert_weights_init(bert_weights *w, const gc_bert_config *cfg) {
    memset(w, 0, sizeof *w);
    gc_status st = bert_config_validate(cfg);
    if (st != GC_OK) return st;
    bert_layout lay;
    layout(&lay, cfg);
    w->cfg = *cfg;
    w->num_params = lay.total;
    w->num_tensors = lay.num_tensors;
    w->params = calloc(lay.total, sizeof(float));
    w->grads = calloc(lay.total, sizeof(float));
    w->tensors = calloc((size_t)lay.num_tensors, sizeof(bert_tensor));
    w->views = calloc((size_t)lay.num_tensors, sizeof(gc_tensor_view));
    if (!w->params || !w->grads || !w->tensors || !w->views) {
        bert_weights_release(w);
        return gc_set_error(GC_ERR_NOMEM, "bert: out of memory for %zu parameters", lay.total);
    }
    point_params(&w->p, w->params, &lay);
    point_params(&w->g, w->grads, &lay);
    build_tensors(w, &lay);
    w->store = (gc_host_store){w->params, w->grads, w->num_params, w->views, w->num_tensors, NULL};
    return GC_OK;
}

void bert_weights_release(bert_weights *w) {
    if (!w) return;
    gc_host_store_release(&w->store);
    free(w->params);
    free(w->grads);
    free(w->tensors);
    free(w->views);
    free(w->pooler);
    free(w->w16);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------------------------------------ */
/* the bf16 copy of the weight matrices */

static void bf16_sizes(const gc_bert_config *c, size_t n[4]) {
    size_t L = (size_t)c->layers, C = (size_t)c->hidden, I = (size_t)c->intermediate;
    n[0] = L * 3 * C * C, n[1] = L * C * C, n[2] = L * I * C, n[3] = L * C * I;
}

void bert_weights_sync_bf16(bert_weights *w) {
    if (!w || !w->w16) return;
    size_t n[4];
    bf16_sizes(&w->cfg, n);
    const float *src[4] = {w->p.qkvw, w->p.attprojw, w->p.fcw, w->p.fcprojw};
    uint16_t *dst[4] = {w->qkvw16, w->attprojw16, w->fcw16, w->fcprojw16};
    for (int i = 0; i < 4; i++) bert_to_bf16(dst[i], src[i], n[i], omp_get_max_threads());
}

gc_status bert_weights_set_precision(bert_weights *w, gc_precision p) {
    if (p != GC_PRECISION_FP32 && p != GC_PRECISION_BF16)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert: unknown precision %d", (int)p);
    if (p == GC_PRECISION_FP32) {
        free(w->w16);
        w->w16 = w->qkvw16 = w->attprojw16 = w->fcw16 = w->fcprojw16 = NULL;
    } else if (!w->w16) {
        size_t n[4];
        bf16_sizes(&w->cfg, n);
        w->w16 = malloc((n[0] + n[1] + n[2] + n[3]) * sizeof(uint16_t));
        if (!w->w16) return gc_set_error(GC_ERR_NOMEM, "bert: out of memory for the bf16 weights");
        w->qkvw16 = w->w16;
        w->attprojw16 = w->qkvw16 + n[0];
        w->fcw16 = w->attprojw16 + n[1];
        w->fcprojw16 = w->fcw16 + n[2];
    }
    w->precision = p;
    bert_weights_sync_bf16(w);
    return GC_OK;
}

/* The store: the host store's functions, and a refresh of the bf16 copy after anything that
 * changes the parameters. */
static gc_param_store host_of(void *ctx) {
    return gc_host_store_view(&((bert_weights *)ctx)->store);
}
static gc_mem bs_location(void *ctx) {
    gc_param_store h = host_of(ctx);
    return h.ops->location(h.ctx);
}
static size_t bs_num_params(void *ctx) {
    gc_param_store h = host_of(ctx);
    return h.ops->num_params(h.ctx);
}
static int bs_num_tensors(void *ctx) {
    gc_param_store h = host_of(ctx);
    return h.ops->num_tensors(h.ctx);
}
static gc_status bs_tensor(void *ctx, int i, gc_tensor_view *out) {
    gc_param_store h = host_of(ctx);
    return h.ops->tensor(h.ctx, i, out);
}
static gc_status bs_zero_grad(void *ctx) {
    gc_param_store h = host_of(ctx);
    return h.ops->zero_grad(h.ctx);
}
static float *bs_grad_buffer(void *ctx) {
    gc_param_store h = host_of(ctx);
    return h.ops->grad_buffer(h.ctx);
}
static gc_status bs_grad_sq_norm(void *ctx, double *out) {
    gc_param_store h = host_of(ctx);
    return h.ops->grad_sq_norm(h.ctx, out);
}
static gc_status bs_read(void *ctx, gc_param_part part, size_t offset, size_t n, float *host) {
    gc_param_store h = host_of(ctx);
    return h.ops->read(h.ctx, part, offset, n, host);
}
static gc_status bs_write(void *ctx, gc_param_part part, size_t offset, size_t n,
                          const float *host) {
    gc_param_store h = host_of(ctx);
    gc_status st = h.ops->write(h.ctx, part, offset, n, host);
    if (st == GC_OK && part == GC_PART_PARAMS) bert_weights_sync_bf16(ctx);
    return st;
}
static gc_status bs_optim_init(void *ctx, const gc_optim_config *cfg, int (*decay)(const char *)) {
    gc_param_store h = host_of(ctx);
    return h.ops->optim_init(h.ctx, cfg, decay);
}
static gc_status bs_optim_step(void *ctx, float lr, float grad_scale) {
    gc_param_store h = host_of(ctx);
    gc_status st = h.ops->optim_step(h.ctx, lr, grad_scale);
    if (st == GC_OK) bert_weights_sync_bf16(ctx);
    return st;
}
static size_t bs_optim_state_size(void *ctx) {
    gc_param_store h = host_of(ctx);
    return h.ops->optim_state_size(h.ctx);
}
static uint64_t bs_optim_get_step(void *ctx) {
    gc_param_store h = host_of(ctx);
    return h.ops->optim_get_step(h.ctx);
}
static void bs_optim_set_step(void *ctx, uint64_t step) {
    gc_param_store h = host_of(ctx);
    h.ops->optim_set_step(h.ctx, step);
}

static const gc_param_store_ops bert_store_ops = {
    bs_location,    bs_num_params,       bs_num_tensors,    bs_tensor,         bs_zero_grad,
    bs_grad_buffer, bs_grad_sq_norm,     bs_read,           bs_write,          bs_optim_init,
    bs_optim_step,  bs_optim_state_size, bs_optim_get_step, bs_optim_set_step,
};

gc_param_store bert_weights_store(bert_weights *w) {
    return (gc_param_store){&bert_store_ops, w};
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

void bert_weights_init_random(bert_weights *w, uint64_t seed) {
    const gc_bert_config *cfg = &w->cfg;
    for (int i = 0; i < w->num_tensors; i++) {
        bert_tensor *t = &w->tensors[i];
        float *x = w->params + t->offset;
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
        memset(w->p.wte + (size_t)cfg->pad_id * cfg->hidden, 0, sizeof(float) * cfg->hidden);
}

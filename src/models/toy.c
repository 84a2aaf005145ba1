/* toy.c: the small test encoder (gc_toy_encoder_create).
 *
 * mean of token embeddings -> dense + bias -> tanh -> dropout -> dense + bias -> L2 normalize.
 * Small enough that its gradients are checked by finite differences, rich enough (dropout,
 * a shared embedding table, a normalization) to exercise everything the engine relies on.
 *
 * Parameters, in this order in one flat buffer (gradients in another of the same layout):
 *   emb (vocab, embed), w1 (hidden, embed), b1 (hidden), w2 (dim, hidden), b2 (dim).
 * Activations for `slots` chunks of up to max_chunk examples live in one allocation; a scratch
 * set beside them serves encode (which keeps nothing) and the backward pass. The engine's
 * reserve call grows them (max_chunk and slots of the config are the starting reservation).
 * The parameters are a host parameter store (gc_host_store). */
#include "gc_testing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct toy_acts {
    float *x;     /* (N, E) mean embedding */
    float *h;     /* (N, H) tanh output */
    float *mask;  /* (N, H) dropout scale */
    float *hd;    /* (N, H) h * mask, the input of the second dense layer */
    float *out;   /* (N, D) normalized representation */
    float *rnorm; /* (N) 1 / ||pre-normalization output|| */
    /* which call filled the slot, so backward can refuse a mismatched range */
    const void *inputs;
    int first, count, side, valid;
} toy_acts;

typedef struct toy {
    gc_toy_config cfg;
    size_t num_params;
    float *params, *grads;
    float *emb, *w1, *b1, *w2, *b2;      /* views into params */
    float *demb, *dw1, *db1, *dw2, *db2; /* views into grads */
    float *act_mem;
    toy_acts *slots; /* cfg.slots of them, then one scratch set */
    gc_tensor_view tensors[5];
    gc_host_store store;
} toy;

/* ------------------------------------------------------------------------------------------ */
/* Layers: forward/backward pairs. Parameter gradients accumulate, activation gradients are
 * assigned. N is the number of examples in the chunk. */

/* x is (N, E); sequence i of the chunk is ids[offsets[first+i] .. offsets[first+i+1]); an empty
 * sequence embeds to zero. */
static void embed_mean_forward(float *x, const gc_token_batch *tb, const float *emb, int first,
                               int N, int E) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *xi = x + (size_t)i * E;
        int64_t b = tb->offsets[first + i], e = tb->offsets[first + i + 1];
        for (int c = 0; c < E; c++) xi[c] = 0.0f;
        for (int64_t t = b; t < e; t++) {
            const float *row = emb + (size_t)tb->ids[t] * E;
            for (int c = 0; c < E; c++) xi[c] += row[c];
        }
        float inv = e > b ? 1.0f / (float)(e - b) : 0.0f;
        for (int c = 0; c < E; c++) xi[c] *= inv;
    }
}

/* dx (N, E) -> demb (V, E). Serial: different sequences may share a token row. */
static void embed_mean_backward(float *demb, const float *dx, const gc_token_batch *tb, int first,
                                int N, int E) {
    for (int i = 0; i < N; i++) {
        const float *dxi = dx + (size_t)i * E;
        int64_t b = tb->offsets[first + i], e = tb->offsets[first + i + 1];
        if (e <= b) continue;
        float inv = 1.0f / (float)(e - b);
        for (int64_t t = b; t < e; t++) {
            float *row = demb + (size_t)tb->ids[t] * E;
            for (int c = 0; c < E; c++) row[c] += dxi[c] * inv;
        }
    }
}

/* out (N, OC) = inp (N, C) @ w^T + b, with w (OC, C), b (OC). */
static gc_status linear_forward(float *out, const float *inp, const float *w, const float *b, int N,
                                int C, int OC) {
    gc_status st = gc_matmul(out, inp, w, N, OC, C, 0, 1, 0);
    if (st != GC_OK) return st;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *o = out + (size_t)i * OC;
        for (int j = 0; j < OC; j++) o[j] += b[j];
    }
    return GC_OK;
}

/* dout (N, OC) -> dinp (N, C) assigned (skipped when NULL), dw (OC, C) and db (OC) += . */
static gc_status linear_backward(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, int N, int C, int OC) {
    gc_status st = gc_matmul(dw, dout, inp, OC, C, N, 1, 0, 1);
    if (st != GC_OK) return st;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < OC; j++) {
        float s = 0.0f;
        for (int i = 0; i < N; i++) s += dout[(size_t)i * OC + j];
        db[j] += s;
    }
    if (dinp) return gc_matmul(dinp, dout, w, N, C, OC, 0, 0, 0);
    return GC_OK;
}

/* In place: x (n) = tanh(x). */
static void tanh_forward(float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
}

/* d (n) *= 1 - out^2, turning d loss / d tanh-output into d loss / d tanh-input. */
static void tanh_backward(float *d, const float *out, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) d[i] *= 1.0f - out[i] * out[i];
}

/* mask (N, H) for examples first.. of one side; out = inp * mask (out may be inp). The mask of
 * an example depends only on its address, never on the chunk it travels in. */
static void dropout_forward(float *out, float *mask, const float *inp, const gc_encode_args *a,
                            float p, int N, int H) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        gc_rng_addr addr = {a->seed, a->step, (uint32_t)a->side, (uint32_t)(a->first + i),
                            GC_RNG_STREAM(0, 0)};
        float *m = mask + (size_t)i * H;
        gc_dropout_mask(m, &addr, 0, (size_t)H, p);
        const float *x = inp + (size_t)i * H;
        float *o = out + (size_t)i * H;
        for (int c = 0; c < H; c++) o[c] = x[c] * m[c];
    }
}

/* In place: d (n) *= mask. */
static void dropout_backward(float *d, const float *mask, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) d[i] *= mask[i];
}

/* In place: x (N, C) row-wise divided by its L2 norm; rnorm (N) keeps 1 / norm. */
static void l2norm_forward(float *x, float *rnorm, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *xi = x + (size_t)i * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)xi[c] * xi[c];
        /* the floor keeps an all-zero row finite; such a row has no direction to learn */
        float r = (float)(1.0 / sqrt(ss > 1e-24 ? ss : 1e-24));
        rnorm[i] = r;
        for (int c = 0; c < C; c++) xi[c] *= r;
    }
}

/* dinp (N, C) = (dout - out * <out, dout>) / norm, the Jacobian of x / ||x|| applied. */
static void l2norm_backward(float *dinp, const float *dout, const float *out, const float *rnorm,
                            int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *g = dout + (size_t)i * C, *y = out + (size_t)i * C;
        float *d = dinp + (size_t)i * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++) dot += (double)y[c] * g[c];
        float fd = (float)dot;
        for (int c = 0; c < C; c++) d[c] = (g[c] - y[c] * fd) * rnorm[i];
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The encoder. */

static gc_status check_args(const toy *t, const gc_encode_args *a, const char *fn, int needs_slot) {
    if (!a || !a->inputs) return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: NULL arguments", fn);
    if (needs_slot && (a->slot < 0 || a->slot >= t->cfg.slots))
        return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: slot %d outside [0, %d)", fn, a->slot,
                            t->cfg.slots);
    if (a->count < 1 || a->count > t->cfg.max_chunk)
        return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: chunk of %d examples (max_chunk %d)", fn,
                            a->count, t->cfg.max_chunk);
    const gc_token_batch *tb = a->inputs;
    if (!tb->offsets) return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: NULL offsets", fn);
    if (a->first < 0 || (int64_t)a->first + a->count > tb->n)
        return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: examples [%d, %lld) outside a batch of %d",
                            fn, a->first, (long long)a->first + a->count, tb->n);
    if (tb->offsets[a->first] < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: negative offset %lld", fn,
                            (long long)tb->offsets[a->first]);
    for (int i = a->first; i < a->first + a->count; i++) {
        int64_t b = tb->offsets[i], e = tb->offsets[i + 1];
        if (e < b)
            return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: offsets of sequence %d decrease", fn,
                                i);
        if (e > b && !tb->ids) return gc_set_error(GC_ERR_INVALID_ARG, "toy %s: NULL ids", fn);
        for (int64_t k = b; k < e; k++) {
            if (tb->ids[k] < 0 || tb->ids[k] >= t->cfg.vocab)
                return gc_set_error(GC_ERR_INVALID_ARG,
                                    "toy %s: token id %d of sequence %d outside vocab %d", fn,
                                    (int)tb->ids[k], i, t->cfg.vocab);
        }
    }
    return GC_OK;
}

/* The whole forward pass into the buffers of `s`; reps (N, D) receives the output. hd may
 * alias h when nothing will go backward. */
static gc_status toy_forward_into(toy *t, const gc_encode_args *a, const toy_acts *s, float *hd,
                                  float *reps) {
    const gc_toy_config *c = &t->cfg;
    int N = a->count;
    embed_mean_forward(s->x, a->inputs, t->emb, a->first, N, c->embed);
    gc_status st = linear_forward(s->h, s->x, t->w1, t->b1, N, c->embed, c->hidden);
    if (st != GC_OK) return st;
    tanh_forward(s->h, (size_t)N * c->hidden);
    float p = a->train ? c->dropout : 0.0f;
    dropout_forward(hd, s->mask, s->h, a, p, N, c->hidden);
    st = linear_forward(reps, hd, t->w2, t->b2, N, c->hidden, c->dim);
    if (st != GC_OK) return st;
    l2norm_forward(reps, s->rnorm, N, c->dim);
    return GC_OK;
}

static int toy_dim(void *ctx) {
    return ((toy *)ctx)->cfg.dim;
}
static gc_param_store toy_store(void *ctx) {
    return gc_host_store_view(&((toy *)ctx)->store);
}

static gc_status alloc_acts(toy *t, int max_chunk, int slots);

static gc_status toy_reserve(void *ctx, const gc_encoder_reserve *r) {
    toy *t = ctx;
    if (!r || r->max_count < 1 || r->slots < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "toy reserve: need max_count >= 1 and slots >= 1");
    if (r->max_count <= t->cfg.max_chunk && r->slots <= t->cfg.slots) return GC_OK;
    int n = r->max_count > t->cfg.max_chunk ? r->max_count : t->cfg.max_chunk;
    int k = r->slots > t->cfg.slots ? r->slots : t->cfg.slots;
    return alloc_acts(t, n, k);
}

/* What toy_reserve would hold (the larger of r and the current reservation). */
static size_t toy_reserve_bytes(void *ctx, const gc_encoder_reserve *r) {
    const toy *t = ctx;
    if (!r || r->max_count < 1 || r->slots < 1) return 0;
    const gc_toy_config *c = &t->cfg;
    size_t N = (size_t)(r->max_count > c->max_chunk ? r->max_count : c->max_chunk);
    size_t k = (size_t)(r->slots > c->slots ? r->slots : c->slots) + 1;
    size_t per_set = N * (size_t)c->embed + 3 * N * (size_t)c->hidden + N * (size_t)c->dim + N;
    return k * (per_set * sizeof(float) + sizeof(toy_acts));
}

static gc_status toy_encode(void *ctx, const gc_encode_args *a, float *reps) {
    toy *t = ctx;
    gc_status st = check_args(t, a, "encode", 0);
    if (st != GC_OK) return st;
    if (!reps) return gc_set_error(GC_ERR_INVALID_ARG, "toy encode: NULL reps");
    const toy_acts *s = &t->slots[t->cfg.slots]; /* scratch */
    return toy_forward_into(t, a, s, s->h, reps);
}

static gc_status toy_forward(void *ctx, const gc_encode_args *a, float *reps) {
    toy *t = ctx;
    gc_status st = check_args(t, a, "forward", 1);
    if (st != GC_OK) return st;
    if (!reps) return gc_set_error(GC_ERR_INVALID_ARG, "toy forward: NULL reps");
    toy_acts *s = &t->slots[a->slot];
    s->valid = 0;
    st = toy_forward_into(t, a, s, s->hd, s->out);
    if (st != GC_OK) return st;
    memcpy(reps, s->out, sizeof(float) * (size_t)a->count * t->cfg.dim);
    s->inputs = a->inputs, s->first = a->first, s->count = a->count, s->side = a->side;
    s->valid = 1;
    return GC_OK;
}

static gc_status toy_backward(void *ctx, const gc_encode_args *a, const float *dreps) {
    toy *t = ctx;
    gc_status st = check_args(t, a, "backward", 1);
    if (st != GC_OK) return st;
    if (!dreps) return gc_set_error(GC_ERR_INVALID_ARG, "toy backward: NULL dreps");
    const toy_acts *s = &t->slots[a->slot];
    if (!s->valid || s->inputs != a->inputs || s->first != a->first || s->count != a->count ||
        s->side != a->side)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "toy backward: slot %d holds no forward of examples [%d, %d) of "
                            "side %d",
                            a->slot, a->first, a->first + a->count, a->side);
    const gc_toy_config *c = &t->cfg;
    const toy_acts *w = &t->slots[c->slots]; /* scratch, reused as gradient buffers */
    int N = a->count;
    float *dy = w->out, *dh = w->h, *dx = w->x;
    l2norm_backward(dy, dreps, s->out, s->rnorm, N, c->dim);                          /* (N, D) */
    st = linear_backward(dh, t->dw2, t->db2, dy, s->hd, t->w2, N, c->hidden, c->dim); /* (N, H) */
    if (st != GC_OK) return st;
    dropout_backward(dh, s->mask, (size_t)N * c->hidden);
    tanh_backward(dh, s->h, (size_t)N * c->hidden);
    st = linear_backward(dx, t->dw1, t->db1, dh, s->x, t->w1, N, c->embed, c->hidden); /* (N, E) */
    if (st != GC_OK) return st;
    embed_mean_backward(t->demb, dx, a->inputs, a->first, N, c->embed);
    return GC_OK;
}

static void toy_free(void *ctx) {
    toy *t = ctx;
    if (!t) return;
    free(t->params);
    free(t->grads);
    free(t->act_mem);
    free(t->slots);
    gc_host_store_release(&t->store);
    free(t);
}

static const gc_encoder_ops g_toy_ops = {toy_dim,      toy_reserve, toy_encode, toy_forward,
                                         toy_backward, toy_store,   toy_free,   toy_reserve_bytes};

/* Activation sets for `slots` chunks of max_chunk examples plus the scratch set, in one
 * allocation (replacing any earlier one). */
static gc_status alloc_acts(toy *t, int max_chunk, int slots) {
    const gc_toy_config *c = &t->cfg;
    size_t E = c->embed, H = c->hidden, D = c->dim, N = (size_t)max_chunk;
    /* per set: x (N,E), h, mask, hd (N,H), out (N,D), rnorm (N) */
    size_t per_set = N * E + 3 * N * H + N * D + N;
    int nsets = slots + 1;
    free(t->act_mem);
    free(t->slots);
    t->act_mem = calloc(per_set * nsets, sizeof(float));
    t->slots = calloc(nsets, sizeof(toy_acts));
    if (!t->act_mem || !t->slots)
        return gc_set_error(GC_ERR_NOMEM, "toy: out of memory for %d x %d activations", max_chunk,
                            slots);
    for (int k = 0; k < nsets; k++) {
        float *m = t->act_mem + per_set * k;
        toy_acts *s = &t->slots[k];
        s->x = m, m += N * E;
        s->h = m, m += N * H;
        s->mask = m, m += N * H;
        s->hd = m, m += N * H;
        s->out = m, m += N * D;
        s->rnorm = m;
    }
    t->cfg.max_chunk = max_chunk;
    t->cfg.slots = slots;
    return GC_OK;
}

/* Uniform in [-scale, scale), addressed by (init_seed, tensor) so every tensor's values are
 * fixed by the seed alone. */
static void init_uniform(float *w, size_t n, uint64_t seed, uint32_t tensor, float scale) {
    gc_rng_addr addr = {seed, 0, 0, tensor, GC_RNG_STREAM(0, 1)};
    gc_rng_uniform_fill(w, &addr, 0, n);
    for (size_t i = 0; i < n; i++) w[i] = (2.0f * w[i] - 1.0f) * scale;
}

gc_status gc_toy_encoder_create(gc_encoder *out, const gc_toy_config *cfg) {
    if (!out || !cfg) return gc_set_error(GC_ERR_INVALID_ARG, "toy create: NULL argument");
    out->ops = NULL, out->ctx = NULL;
    const int limit = 1 << 20; /* keeps every size product far below SIZE_MAX */
    if (cfg->vocab < 1 || cfg->embed < 1 || cfg->hidden < 1 || cfg->dim < 1 || cfg->max_chunk < 1 ||
        cfg->vocab > limit || cfg->embed > limit || cfg->hidden > limit || cfg->dim > limit ||
        cfg->max_chunk > limit)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "toy create: sizes must be in [1, %d] (vocab %d, embed %d, hidden "
                            "%d, dim %d, max_chunk %d)",
                            limit, cfg->vocab, cfg->embed, cfg->hidden, cfg->dim, cfg->max_chunk);
    if (cfg->slots < 1 || cfg->slots > 2)
        return gc_set_error(GC_ERR_INVALID_ARG, "toy create: slots must be 1 or 2 (got %d)",
                            cfg->slots);
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return gc_set_error(GC_ERR_INVALID_ARG, "toy create: dropout %g outside [0, 1)",
                            (double)cfg->dropout);
    /* max_tokens_per_chunk is not needed: the mean embedding keeps no per-token state. */

    toy *t = calloc(1, sizeof *t);
    if (!t) return gc_set_error(GC_ERR_NOMEM, "toy create: out of memory");
    t->cfg = *cfg;
    size_t V = cfg->vocab, E = cfg->embed, H = cfg->hidden, D = cfg->dim;
    size_t sizes[5] = {V * E, H * E, H, D * H, D};
    t->num_params = sizes[0] + sizes[1] + sizes[2] + sizes[3] + sizes[4];
    t->params = malloc(sizeof(float) * t->num_params);
    t->grads = calloc(t->num_params, sizeof(float));
    if (!t->params || !t->grads || alloc_acts(t, cfg->max_chunk, cfg->slots) != GC_OK) {
        size_t n = t->num_params;
        toy_free(t);
        return gc_set_error(GC_ERR_NOMEM, "toy create: out of memory for %zu parameters", n);
    }
    static const char *names[5] = {"emb", "w1", "b1", "w2", "b2"};
    float *ptrs[5], *gptrs[5];
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        t->tensors[i] = (gc_tensor_view){names[i], off, sizes[i]};
        ptrs[i] = t->params + off, gptrs[i] = t->grads + off, off += sizes[i];
    }
    t->emb = ptrs[0], t->w1 = ptrs[1], t->b1 = ptrs[2], t->w2 = ptrs[3], t->b2 = ptrs[4];
    t->demb = gptrs[0], t->dw1 = gptrs[1], t->db1 = gptrs[2], t->dw2 = gptrs[3], t->db2 = gptrs[4];
    t->store = (gc_host_store){t->params, t->grads, t->num_params, t->tensors, 5, NULL};
    init_uniform(t->emb, sizes[0], cfg->init_seed, 0, 1.0f);
    init_uniform(t->w1, sizes[1], cfg->init_seed, 1, 1.5f / sqrtf((float)E));
    init_uniform(t->b1, sizes[2], cfg->init_seed, 2, 0.1f);
    init_uniform(t->w2, sizes[3], cfg->init_seed, 3, 1.5f / sqrtf((float)H));
    init_uniform(t->b2, sizes[4], cfg->init_seed, 4, 0.1f);
    out->ops = &g_toy_ops;
    out->ctx = t;
    return GC_OK;
}

float *gc_toy_params(const gc_encoder *e) {
    return ((toy *)e->ctx)->params;
}

float *gc_toy_grads(const gc_encoder *e) {
    return ((toy *)e->ctx)->grads;
}

/* bert.c: the BERT encoder's CPU runtime: the model handle (weights half + runtime half), the
 * activation slots and scratch (gc_bert_reserve), the forward and backward passes over a
 * packed chunk, and the gc_encoder interface over them. The weights half (parameter layout,
 * store, random initialisation) is bert_weights.c.
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
/* the model */

gc_status bert_create(gc_bert **out, const gc_bert_config *cfg) {
    if (!out) return gc_set_error(GC_ERR_INVALID_ARG, "bert: NULL output");
    *out = NULL;
    gc_status st = bert_config_validate(cfg);
    if (st != GC_OK) return st;
    gc_bert *m = calloc(1, sizeof *m);
    if (!m) return gc_set_error(GC_ERR_NOMEM, "bert: out of memory");
    if ((st = bert_weights_init(&m->w, cfg)) != GC_OK) {
        free(m);
        return st;
    }
    *out = m;
    return GC_OK;
}

static void release_activations(bert_cpu *rt) {
    for (int s = 0; s < rt->alloc_slots; s++) {
        free(rt->slots[s].mem);
        free(rt->slots[s].imem);
    }
    free(rt->slots);
    free(rt->scratch);
    memset(rt, 0, sizeof *rt);
}

void gc_bert_free(gc_bert *m) {
    if (!m) return;
    release_activations(&m->rt);
    bert_weights_release(&m->w);
    gc_prompts_free(&m->prompts);
    free(m);
}

gc_status gc_bert_init_random(gc_bert **out, const gc_bert_config *cfg, uint64_t seed) {
    gc_bert *m = NULL;
    gc_status st = bert_create(&m, cfg);
    if (st != GC_OK) return st;
    bert_weights_init_random(&m->w, seed);
    *out = m;
    return GC_OK;
}

const gc_bert_config *gc_bert_get_config(const gc_bert *m) {
    return m ? &m->w.cfg : NULL;
}

void gc_bert_set_dropout(gc_bert *m, float p) {
    if (!m || !(p >= 0.0f && p < 1.0f)) return;
    m->w.cfg.hidden_dropout = p;
    m->w.cfg.attn_dropout = p;
}

size_t gc_bert_num_params(const gc_bert *m) {
    return m ? m->w.num_params : 0;
}

float *gc_bert_params(gc_bert *m) {
    return m ? m->w.params : NULL;
}

float *gc_bert_grads(gc_bert *m) {
    return m ? m->w.grads : NULL;
}

gc_param_store gc_bert_store(gc_bert *m) {
    if (!m) return (gc_param_store){NULL, NULL};
    return bert_weights_store(&m->w);
}

const char *gc_precision_name(gc_precision p) {
    return p == GC_PRECISION_BF16 ? "bf16" : "fp32";
}

gc_status gc_precision_parse(const char *s, gc_precision *out) {
    if (s && strcmp(s, "fp32") == 0) return *out = GC_PRECISION_FP32, GC_OK;
    if (s && strcmp(s, "bf16") == 0) return *out = GC_PRECISION_BF16, GC_OK;
    return gc_set_error(GC_ERR_INVALID_ARG, "precision must be fp32 or bf16, got '%s'",
                        s ? s : "(null)");
}

gc_status gc_bert_set_precision(gc_bert *m, gc_precision p) {
    if (!m) return gc_set_error(GC_ERR_INVALID_ARG, "bert: NULL model");
    if (m->rt.scratch && p != m->w.precision)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: set the precision before reserving the activation buffers");
    return bert_weights_set_precision(&m->w, p);
}

gc_precision gc_precision_for_cpu(gc_precision want, const char **note) {
    static _Thread_local char buf[200];
    const char *isa = NULL;
    if (note) *note = NULL;
    if (want != GC_PRECISION_BF16 || gc_matmul_bf16_native(&isa)) return want;
    if (note) {
        snprintf(buf, sizeof buf,
                 "no native bf16 on this CPU (oneDNN ISA %s): running fp32, faster than "
                 "oneDNN's bf16 emulation",
                 isa);
        *note = buf;
    }
    return GC_PRECISION_FP32;
}

gc_precision gc_bert_get_precision(const gc_bert *m) {
    return m ? m->w.precision : GC_PRECISION_FP32;
}

void gc_bert_sync_weights(gc_bert *m) {
    if (m) bert_weights_sync_bf16(&m->w);
}

int gc_bert_num_tensors(const gc_bert *m) {
    return m ? m->w.num_tensors : 0;
}

gc_status gc_bert_tensor_info(const gc_bert *m, int i, const char **name, size_t *offset,
                              size_t *count) {
    if (!m || i < 0 || i >= m->w.num_tensors)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert: no tensor %d", i);
    const bert_tensor *t = &m->w.tensors[i];
    if (name) *name = t->name;
    if (offset) *offset = t->offset;
    if (count) *count = t->count;
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* activation buffers */

/* The sizes a reservation lays its buffers out for. */
typedef struct bert_dims {
    size_t B;       /* max_chunk */
    size_t T;       /* max_tokens = max_chunk * max_len */
    size_t att_cap; /* attention probabilities of one layer (0: not kept) */
    size_t att_scr; /* attention scratch of one thread */
    int nthr;
    int training; /* activations kept for a backward pass, and its scratch */
    int bf16;     /* bf16 scratch, and a training slot's bf16 buffers */
} bert_dims;

/* The one layout of a slot: float buffers from fmem, integer arrays from imem. With NULL
 * memory only the sizes are counted (and the pointers set NULL). Returns the floats; *ibytes
 * gets the bytes of the integer arrays. */
static size_t slot_layout(bert_slot *s, float *fmem, char *imem, size_t *ibytes,
                          const gc_bert_config *c, const bert_dims *d) {
    size_t B = d->B, T = d->T, C = c->hidden, I = c->intermediate, L = c->layers;
    size_t at = 0, ib = 0;
#define FBUF(field, n) (s->field = fmem ? fmem + at : NULL, at += (n))
#define HBUF(field, n) (s->field = fmem ? (uint16_t *)(fmem + at) : NULL, at += ((n) + 1) / 2)
#define IBUF(field, type, n)                                                                       \
    (s->field = imem ? (type *)(imem + ib) : NULL, ib += (n) * sizeof(type))
    FBUF(reps, B * C);
    FBUF(pnorm, B);
    s->top = NULL;
    s->x16 = s->ctx16 = s->h1_16 = s->fch16 = s->g16 = NULL;
    if (d->training && !d->bf16) {
        FBUF(emb, T * C);
        FBUF(emb_mean, T);
        FBUF(emb_rstd, T);
        FBUF(resid, (L + 1) * T * C);
        FBUF(qkvh, L * 3 * T * C);
        FBUF(att, L * d->att_cap);
        FBUF(ctx, L * T * C);
        FBUF(r1, L * T * C);
        FBUF(h1, L * T * C);
        FBUF(ln1_mean, L * T);
        FBUF(ln1_rstd, L * T);
        FBUF(ln2_mean, L * T);
        FBUF(ln2_rstd, L * T);
        FBUF(fch, L * T * I);
        FBUF(r2, L * T * C);
        if (fmem) s->top = s->resid + L * T * C;
    } else if (d->training) {
        /* BF16: the linear layers' inputs (and the GELU's) as bf16, two per float */
        FBUF(emb, T * C);
        FBUF(emb_mean, T);
        FBUF(emb_rstd, T);
        s->resid = s->ctx = s->h1 = s->fch = NULL;
        FBUF(top, T * C);
        FBUF(qkvh, L * 3 * T * C);
        FBUF(att, L * d->att_cap);
        FBUF(r1, L * T * C);
        FBUF(ln1_mean, L * T);
        FBUF(ln1_rstd, L * T);
        FBUF(ln2_mean, L * T);
        FBUF(ln2_rstd, L * T);
        FBUF(r2, L * T * C);
        HBUF(x16, L * T * C);
        HBUF(ctx16, L * T * C);
        HBUF(h1_16, L * T * C);
        HBUF(fch16, L * T * I);
        HBUF(g16, L * T * I);
    }
    /* wider arrays first, so every array stays aligned */
    IBUF(att_off, size_t, B + 1);
    IBUF(id_keys, uint64_t, T);
    IBUF(ids, int32_t, T);
    IBUF(by_id, int, T);
    IBUF(tok_seq, int, T);
    IBUF(tok_pos, int, T);
    IBUF(off, int, B + 1);
#undef FBUF
#undef HBUF
#undef IBUF
    *ibytes = ib;
    return at;
}

/* The one layout of the scratch (NULL memory: sizes only). A training step's buffers and
 * encode's share the front; the attention and dropout scratch of both passes follow. */
static size_t scratch_layout(bert_cpu *rt, float *mem, const gc_bert_config *c,
                             const bert_dims *d) {
    size_t T = d->T, C = c->hidden, I = c->intermediate, big = I > 3 * C ? I : 3 * C;
    size_t at = 0;
#define SBUF(field, n) (rt->field = mem ? mem + at : NULL, at += (n))
    if (d->training) {
        SBUF(s_qkv, T * 3 * C);
        SBUF(s_a, T * C);
        SBUF(s_b, T * C);
        SBUF(s_t1, T * C);
        SBUF(s_t2, T * C);
        SBUF(s_g1, T * I);
        /* the GELU recomputed for the backward pass: BF16 keeps it (g16) */
        if (d->bf16)
            rt->s_g2 = NULL;
        else
            SBUF(s_g2, T * I);
    } else {
        rt->s_qkv = rt->s_a = rt->s_b = rt->s_t1 = rt->s_t2 = rt->s_g1 = rt->s_g2 = NULL;
    }
    size_t n_train = at;
    at = 0;
    SBUF(e_h[0], T * C);
    SBUF(e_h[1], T * C);
    SBUF(e_h[2], T * C);
    SBUF(e_big, T * big);
    if (d->bf16)
        rt->e_gelu = NULL; /* BF16's GELU goes straight to bf16 (bf_a) */
    else
        SBUF(e_gelu, T * I);
    SBUF(e_mean, T);
    SBUF(e_rstd, T);
    if (n_train > at) at = n_train;
    SBUF(s_att, (size_t)d->nthr * d->att_scr);
    SBUF(s_drop, (size_t)d->nthr * C);
#undef SBUF
    /* bf16 buffers, two per float */
    rt->bf_a = rt->bf_b = NULL;
    if (d->bf16) {
        size_t na = T * (C > I ? C : I), nb = d->training ? T * big : 0;
        if (mem) rt->bf_a = (uint16_t *)(mem + at);
        at += (na + 1) / 2;
        if (mem && nb) rt->bf_b = (uint16_t *)(mem + at);
        at += (nb + 1) / 2;
    }
    return at;
}

/* The sizes of a reservation (max_chunk, max_len, slots), without allocating. */
static bert_dims reserve_dims(const gc_bert *m, int max_chunk, int max_len, int slots) {
    const gc_bert_config *c = &m->w.cfg;
    bert_dims d;
    d.nthr = omp_get_max_threads();
    if (d.nthr < 1) d.nthr = 1;
    d.training = slots > 0;
    d.bf16 = m->w.precision == GC_PRECISION_BF16;
    d.B = (size_t)max_chunk;
    d.T = (size_t)max_chunk * max_len;
    d.att_cap = slots ? (size_t)max_chunk * c->heads * max_len * max_len : 0;
    d.att_scr = bert_attention_scratch_floats(max_len, c->hidden / c->heads);
    return d;
}

size_t gc_bert_reserve_bytes(const gc_bert *m, int max_chunk, int max_len, int slots) {
    if (!m || max_chunk < 1 || max_len < 1 || slots < 0) return 0;
    bert_dims d = reserve_dims(m, max_chunk, max_len, slots);
    bert_slot sl;
    bert_cpu rt;
    size_t ibytes, per_slot = slot_layout(&sl, NULL, NULL, &ibytes, &m->w.cfg, &d);
    size_t nscratch = scratch_layout(&rt, NULL, &m->w.cfg, &d);
    return (size_t)(slots ? slots : 1) * (per_slot * sizeof(float) + ibytes) +
           nscratch * sizeof(float);
}

/* slots >= 1: training (every layer's activations per slot, a backward pass's scratch);
 * slots 0: inference (encode only: one layer's buffers in the scratch, reused by each layer). */
static gc_status reserve(gc_bert *m, int max_chunk, int max_len, int slots, const char *fn) {
    if (!m) return gc_set_error(GC_ERR_INVALID_ARG, "%s: NULL model", fn);
    const gc_bert_config *c = &m->w.cfg;
    bert_cpu *rt = &m->rt;
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
    release_activations(rt);

    bert_dims d = reserve_dims(m, max_chunk, max_len, slots);
    bert_slot probe;
    size_t ibytes, per_slot = slot_layout(&probe, NULL, NULL, &ibytes, c, &d);
    size_t nscratch = scratch_layout(rt, NULL, c, &d);
    int nslots = slots > 0 ? slots : 1;
    rt->slots = calloc((size_t)(unsigned)nslots, sizeof *rt->slots);
    if (!rt->slots) goto nomem;
    rt->alloc_slots = nslots;
    for (int s = 0; s < nslots; s++) {
        bert_slot *sl = &rt->slots[s];
        sl->mem = malloc(per_slot * sizeof(float));
        sl->imem = malloc(ibytes);
        if (!sl->mem || !sl->imem) goto nomem;
        slot_layout(sl, sl->mem, sl->imem, &ibytes, c, &d);
    }
    rt->scratch = malloc(nscratch * sizeof(float));
    if (!rt->scratch) goto nomem;
    scratch_layout(rt, rt->scratch, c, &d);
    rt->max_chunk = max_chunk;
    rt->max_len = max_len;
    rt->num_slots = slots;
    rt->nthr = d.nthr;
    rt->max_tokens = d.T;
    rt->att_cap = d.att_cap;
    return GC_OK;
nomem:
    release_activations(rt);
    return gc_set_error(
        GC_ERR_NOMEM, "%s: out of memory for %d x %d tokens (%.1f MB)", fn, max_chunk, max_len,
        ((double)(slots ? slots : 1) * (double)(per_slot * 4 + ibytes) + (double)nscratch * 4.0) /
            1e6);
}

gc_status gc_bert_reserve(gc_bert *m, int max_chunk, int max_len, int slots) {
    if (slots < 1 || slots > GC_BERT_MAX_SLOTS)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert_reserve: slots must be in [1, %d] (got %d)",
                            GC_BERT_MAX_SLOTS, slots);
    return reserve(m, max_chunk, max_len, slots, "bert_reserve");
}

gc_status gc_bert_reserve_inference(gc_bert *m, int max_chunk, int max_len) {
    return reserve(m, max_chunk, max_len, 0, "bert_reserve_inference");
}

/* ------------------------------------------------------------------------------------------ */
/* forward and backward */

/* Check the chunk [first, first+count) of the side's token batch and lay it out in the slot. */
static gc_status prepare_chunk(const gc_bert_config *c, const bert_cpu *rt, bert_slot *s,
                               const gc_encode_args *a) {
    const gc_token_batch *tb = a->inputs;
    if (!tb || !tb->ids || !tb->offsets || tb->n < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert: inputs are not a token batch");
    if (a->count < 1 || a->first < 0 || a->first > tb->n - a->count)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: examples [%d, %d) are outside the batch of %d", a->first,
                            a->first + a->count, tb->n);
    if (!rt->scratch)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: no activation buffers; call gc_bert_reserve first");
    if (a->count > rt->max_chunk)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: chunk of %d sequences exceeds the reserved %d", a->count,
                            rt->max_chunk);
    int N = 0, maxT = 0;
    s->att_off[0] = 0;
    s->off[0] = 0;
    for (int i = 0; i < a->count; i++) {
        int64_t b0 = tb->offsets[a->first + i], b1 = tb->offsets[a->first + i + 1];
        int64_t T = b1 - b0;
        if (b0 < 0 || T < 1 || T > rt->max_len)
            return gc_set_error(GC_ERR_INVALID_ARG,
                                "bert: sequence %d has %lld tokens; allowed 1 to %d (the "
                                "reserved max_len)",
                                a->first + i, (long long)T, rt->max_len);
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
static int pass_threads(const bert_cpu *rt) {
    int n = omp_get_max_threads();
    return n < 1 ? 1 : n > rt->nthr ? rt->nthr : n;
}

/* A linear layer in the model's precision: w is the fp32 weight matrix, w16 the start of its
 * field's bf16 copy (NULL in FP32) and off the matrix's offset in the field. In BF16 the input
 * is rounded into in16 (the slot's copy a backward pass reads, or encode's scratch). */
static gc_status linear_fwd(const bert_weights *w, float *out, const float *inp, uint16_t *in16,
                            const float *wf, const uint16_t *w16, size_t off, const float *b, int N,
                            int OC, int IC, int nt) {
    if (w->precision == GC_PRECISION_BF16) {
        bert_to_bf16(in16, inp, (size_t)N * IC, nt);
        return bert_linear_forward_bf16(out, in16, w16 + off, b, N, OC, IC, nt);
    }
    return bert_linear_forward(out, inp, wf + off, b, N, OC, IC, nt);
}

/* The backward pass of one: inp is the forward's fp32 input (FP32), in16 its bf16 rounding
 * kept in the slot (BF16). */
static gc_status linear_bwd(const bert_weights *w, bert_cpu *rt, float *dinp, float *dw, float *db,
                            const float *dout, const float *inp, const uint16_t *in16,
                            const float *wf, const uint16_t *w16, size_t off, int N, int OC, int IC,
                            int acc, int nt) {
    if (w->precision == GC_PRECISION_BF16)
        return bert_linear_backward_bf16(dinp, dw, db, dout, in16, w16 + off, N, OC, IC, acc,
                                         rt->bf_b, nt);
    return bert_linear_backward(dinp, dw, db, dout, inp, wf + off, N, OC, IC, acc, nt);
}

/* The forward pass of the slot's chunk: reps (B,C) from the slot's tokens. keep: every layer
 * keeps its own activations in the slot (for a backward pass). Otherwise (encode) the pass
 * runs in the e_ buffers, one layer's worth that each layer overwrites, with no kernel's
 * output on its own input (dropout aside, which may run in place): the hidden state x and
 * two branch buffers u, v rotate through e_h, e_big holds q|k|v and later the intermediate
 * layer, e_gelu its GELU.
 *
 * BF16: the products' inputs are rounded once, into the slot's x16, ctx16, h1_16, g16 when
 * keeping (into bf_a for encode), and the GELU writes only its bf16 output (and, kept, its
 * bf16 input). The fp32 values a kept pass needs only within the layer live in the training
 * scratch: x in s_a (the last layer's output in top), ctx in s_t2, h1 in s_b, fch in s_g1.
 * Every rounding is the same in both passes, so encode and forward give the same bits. */
static gc_status forward_chunk(const bert_weights *w, bert_cpu *rt, bert_slot *s, int keep,
                               float *reps) {
    const gc_bert_config *c = &w->cfg;
    const bert_chunk *ck = &s->ck;
    const bert_params *p = &w->p;
    int N = ck->N, C = c->hidden, I = c->intermediate, NH = c->heads, L = c->layers,
        nt = pass_threads(rt);
    int bf = w->precision == GC_PRECISION_BF16;
    size_t T = rt->max_tokens, CC = (size_t)C * C;
    float ph = c->hidden_dropout, pa = c->attn_dropout, eps = c->layer_norm_eps;

    // embeddings (N,C) -> LayerNorm -> dropout, x (N,C)
    int cur = 0; /* encode: x is e_h[cur] */
    float *x = !keep ? rt->e_h[0] : !bf ? s->resid : L > 0 ? rt->s_a : s->top;
    float *emb = keep ? s->emb : rt->e_h[1];
    bert_embed_forward(emb, ck, s->ids, p->wte, p->wpe, p->wtt, C, nt);
    bert_layernorm_forward(x, keep ? s->emb_mean : rt->e_mean, keep ? s->emb_rstd : rt->e_rstd, emb,
                           p->emb_lnw, p->emb_lnb, N, C, eps, nt);
    bert_dropout(x, x, ck, GC_RNG_STREAM(0, BERT_SITE_EMB), ph, C, rt->s_drop, nt);

    for (int l = 0; l < L; l++) {
        float *qkv, *qkvh, *att, *ctx, *t1, *r1, *h1, *fch, *g, *t2, *r2, *out, *m1, *rs1, *m2,
            *rs2;
        /* BF16: where each product's input is rounded (NULL in FP32) */
        uint16_t *x16 = NULL, *ctx16 = NULL, *h116 = NULL, *g16 = NULL, *fch16 = NULL;
        if (keep && !bf) {
            qkv = rt->s_qkv, qkvh = s->qkvh + (size_t)l * 3 * T * C;
            att = s->att + l * rt->att_cap;
            ctx = s->ctx + l * T * C, t1 = rt->s_t1, r1 = s->r1 + l * T * C;
            h1 = s->h1 + l * T * C;
            fch = s->fch + l * T * I, g = rt->s_g1, t2 = rt->s_t1, r2 = s->r2 + l * T * C;
            out = s->resid + (size_t)(l + 1) * T * C;
            m1 = s->ln1_mean + l * T, rs1 = s->ln1_rstd + l * T;
            m2 = s->ln2_mean + l * T, rs2 = s->ln2_rstd + l * T;
        } else if (keep) {
            /* x (s_a) is dead after r1, so the layer's output overwrites it */
            qkv = rt->s_qkv, qkvh = s->qkvh + (size_t)l * 3 * T * C;
            att = s->att + l * rt->att_cap;
            ctx = rt->s_t2, t1 = rt->s_t1, r1 = s->r1 + l * T * C, h1 = rt->s_b;
            fch = rt->s_g1, g = NULL, t2 = rt->s_t1, r2 = s->r2 + l * T * C;
            out = l == L - 1 ? s->top : rt->s_a;
            m1 = s->ln1_mean + l * T, rs1 = s->ln1_rstd + l * T;
            m2 = s->ln2_mean + l * T, rs2 = s->ln2_rstd + l * T;
            x16 = s->x16 + l * T * C, ctx16 = s->ctx16 + l * T * C;
            h116 = s->h1_16 + l * T * C, g16 = s->g16 + l * T * I;
            fch16 = s->fch16 + l * T * I;
        } else {
            /* each buffer is written once its last reader is done: u holds ctx, r1, t2 and
             * the output; v holds t1 and h1; x (the input) is dead after r1, so holds r2 */
            float *u = rt->e_h[(cur + 1) % 3], *v = rt->e_h[(cur + 2) % 3];
            qkv = rt->e_big, qkvh = att = NULL, ctx = u, t1 = v, r1 = u, h1 = v;
            fch = rt->e_big, g = rt->e_gelu, t2 = u, r2 = x, out = u;
            m1 = m2 = rt->e_mean, rs1 = rs2 = rt->e_rstd;
            cur = (cur + 1) % 3;
            x16 = ctx16 = h116 = g16 = rt->bf_a;
        }

        // self-attention: x (N,C) -> qkv (N,3C) -> ctx (N,C)
        CHECK_ST(linear_fwd(w, qkv, x, x16, p->qkvw, w->qkvw16, l * 3 * CC, p->qkvb + l * 3 * C, N,
                            3 * C, C, nt));
        CHECK_ST(bert_attention_forward(ctx, att, qkvh, qkv, ck, C, NH,
                                        GC_RNG_STREAM(l + 1, BERT_SITE_ATT_PROBS), pa, rt->s_att,
                                        nt));
        // output dense -> dropout -> residual -> LayerNorm: t1, r1, h1 (N,C)
        CHECK_ST(linear_fwd(w, t1, ctx, ctx16, p->attprojw, w->attprojw16, l * CC,
                            p->attprojb + l * C, N, C, C, nt));
        bert_dropout(t1, t1, ck, GC_RNG_STREAM(l + 1, BERT_SITE_ATT_OUT), ph, C, rt->s_drop, nt);
        bert_residual_forward(r1, x, t1, (size_t)N * C, nt);
        bert_layernorm_forward(h1, m1, rs1, r1, p->ln1w + l * C, p->ln1b + l * C, N, C, eps, nt);
        // feed-forward: h1 (N,C) -> fch (N,I) -> GELU g (N,I) -> t2 (N,C) -> dropout ->
        // residual r2 (N,C) -> LayerNorm out (N,C)
        CHECK_ST(linear_fwd(w, fch, h1, h116, p->fcw, w->fcw16, l * (size_t)I * C, p->fcb + l * I,
                            N, I, C, nt));
        if (bf) {
            // g16 (N,I) = bf16(GELU(fch)), fch16 = bf16(fch) when kept: no float GELU
            bert_gelu_forward_bf16(g16, fch16, fch, (size_t)N * I, nt);
            CHECK_ST(bert_linear_forward_bf16(t2, g16, w->fcprojw16 + l * (size_t)C * I,
                                              p->fcprojb + l * C, N, C, I, nt));
        } else {
            bert_gelu_forward(g, fch, (size_t)N * I, nt);
            CHECK_ST(bert_linear_forward(t2, g, p->fcprojw + l * (size_t)C * I, p->fcprojb + l * C,
                                         N, C, I, nt));
        }
        bert_dropout(t2, t2, ck, GC_RNG_STREAM(l + 1, BERT_SITE_FFN_OUT), ph, C, rt->s_drop, nt);
        bert_residual_forward(r2, h1, t2, (size_t)N * C, nt);
        bert_layernorm_forward(out, m2, rs2, r2, p->ln2w + l * C, p->ln2b + l * C, N, C, eps, nt);
        x = out;
    }
    // pooling (+ normalize): x (N,C) -> reps (B,C)
    bert_pool_forward(s->reps, s->pnorm, x, ck, C, c->pooling, c->normalize, nt);
    memcpy(reps, s->reps, sizeof(float) * (size_t)ck->B * C);
    return GC_OK;
}

/* The backward pass of the slot's chunk: dreps (B,C) -> every parameter gradient (+=). */
static gc_status backward_chunk(bert_weights *w, bert_cpu *rt, bert_slot *s, const float *dreps) {
    const gc_bert_config *c = &w->cfg;
    const bert_chunk *ck = &s->ck;
    const bert_params *p = &w->p;
    bert_params *g = &w->g;
    int N = ck->N, C = c->hidden, I = c->intermediate, NH = c->heads, L = c->layers,
        nt = pass_threads(rt);
    int bf = w->precision == GC_PRECISION_BF16;
    size_t T = rt->max_tokens, CC = (size_t)C * C, CI = (size_t)C * I;
    float ph = c->hidden_dropout, pa = c->attn_dropout;
    float *da = rt->s_a, *db = rt->s_b, *t1 = rt->s_t1, *t2 = rt->s_t2;

    // da (N,C) = d loss / d (last layer output)
    bert_pool_backward(da, dreps, s->reps, s->pnorm, s->top, ck, C, c->pooling, c->normalize, nt);
    for (int l = L - 1; l >= 0; l--) {
        const float *qkvh = s->qkvh + (size_t)l * 3 * T * C, *att = s->att + l * rt->att_cap;
        const float *r1 = s->r1 + (size_t)l * T * C, *r2 = s->r2 + (size_t)l * T * C;
        /* the linear layers' inputs: fp32 (FP32) or the bf16 the forward products used */
        const float *x = NULL, *ctx = NULL, *h1 = NULL, *fch = NULL;
        const uint16_t *x16 = NULL, *ctx16 = NULL, *h116 = NULL, *fch16 = NULL, *g16 = NULL;
        if (bf) {
            x16 = s->x16 + (size_t)l * T * C, ctx16 = s->ctx16 + (size_t)l * T * C;
            h116 = s->h1_16 + (size_t)l * T * C;
            fch16 = s->fch16 + (size_t)l * T * I, g16 = s->g16 + (size_t)l * T * I;
        } else {
            x = s->resid + (size_t)l * T * C, ctx = s->ctx + (size_t)l * T * C;
            h1 = s->h1 + (size_t)l * T * C, fch = s->fch + (size_t)l * T * I;
        }

        // output LayerNorm: db = d r2, which is also the residual part of d h1
        bert_layernorm_backward(db, g->ln2w + l * C, g->ln2b + l * C, da, r2, p->ln2w + l * C,
                                s->ln2_mean + l * T, s->ln2_rstd + l * T, N, C, nt);
        bert_dropout(t1, db, ck, GC_RNG_STREAM(l + 1, BERT_SITE_FFN_OUT), ph, C, rt->s_drop, nt);
        // output dense: needs GELU(fch) again, recomputed in FP32 (BF16 kept it), then the
        // GELU's derivative
        if (bf) {
            CHECK_ST(bert_linear_backward_bf16(rt->s_g1, g->fcprojw + l * CI, g->fcprojb + l * C,
                                               t1, g16, w->fcprojw16 + l * CI, N, C, I, 0, rt->bf_b,
                                               nt));
            bert_gelu_backward_bf16(rt->s_g1, fch16, rt->s_g1, (size_t)N * I, nt);
        } else {
            bert_gelu_forward(rt->s_g2, fch, (size_t)N * I, nt);
            CHECK_ST(bert_linear_backward(rt->s_g1, g->fcprojw + l * CI, g->fcprojb + l * C, t1,
                                          rt->s_g2, p->fcprojw + l * CI, N, C, I, 0, nt));
            bert_gelu_backward(rt->s_g1, fch, rt->s_g1, (size_t)N * I, nt);
        }
        // intermediate dense: db += d h1 through the feed-forward branch
        CHECK_ST(linear_bwd(w, rt, db, g->fcw + l * CI, g->fcb + l * I, rt->s_g1, h1, h116, p->fcw,
                            w->fcw16, l * CI, N, I, C, 1, nt));
        // attention LayerNorm: da = d r1, the residual part of d x
        bert_layernorm_backward(da, g->ln1w + l * C, g->ln1b + l * C, db, r1, p->ln1w + l * C,
                                s->ln1_mean + l * T, s->ln1_rstd + l * T, N, C, nt);
        bert_dropout(t1, da, ck, GC_RNG_STREAM(l + 1, BERT_SITE_ATT_OUT), ph, C, rt->s_drop, nt);
        CHECK_ST(linear_bwd(w, rt, t2, g->attprojw + l * CC, g->attprojb + l * C, t1, ctx, ctx16,
                            p->attprojw, w->attprojw16, l * CC, N, C, C, 0, nt));
        CHECK_ST(bert_attention_backward(rt->s_qkv, t2, att, qkvh, ck, C, NH,
                                         GC_RNG_STREAM(l + 1, BERT_SITE_ATT_PROBS), pa, rt->s_att,
                                         nt));
        // qkv projections: da += d x through the attention branch
        CHECK_ST(linear_bwd(w, rt, da, g->qkvw + l * 3 * CC, g->qkvb + l * 3 * C, rt->s_qkv, x, x16,
                            p->qkvw, w->qkvw16, l * 3 * CC, N, 3 * C, C, 1, nt));
    }
    // embeddings: dropout -> LayerNorm -> scatter into the tables
    bert_dropout(t1, da, ck, GC_RNG_STREAM(0, BERT_SITE_EMB), ph, C, rt->s_drop, nt);
    bert_layernorm_backward(t2, g->emb_lnw, g->emb_lnb, t1, s->emb, p->emb_lnw, s->emb_mean,
                            s->emb_rstd, N, C, nt);
    bert_order_by_id(s->by_id, s->id_keys, s->ids, N);
    bert_embed_backward(g->wte, g->wpe, g->wtt, t2, ck, s->ids, s->by_id, C, nt);
    return GC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* the encoder interface */

static int enc_dim(void *ctx) {
    return ((gc_bert *)ctx)->w.cfg.hidden;
}

static gc_status enc_reserve(void *ctx, const gc_encoder_reserve *r) {
    if (!r) return gc_set_error(GC_ERR_INVALID_ARG, "bert_reserve: NULL reservation");
    return gc_bert_reserve(ctx, r->max_count, r->max_len, r->slots);
}

static size_t enc_reserve_bytes(void *ctx, const gc_encoder_reserve *r) {
    return r ? gc_bert_reserve_bytes(ctx, r->max_count, r->max_len, r->slots) : 0;
}

static gc_status enc_encode(void *ctx, const gc_encode_args *a, float *reps) {
    gc_bert *m = ctx;
    if (!m || !a || !reps) return gc_set_error(GC_ERR_INVALID_ARG, "bert_encode: NULL argument");
    /* encode borrows slot 0's chunk layout: a forward kept there can no longer go back */
    if (!m->rt.slots)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: no activation buffers; call gc_bert_reserve first");
    bert_slot *s = &m->rt.slots[0];
    s->valid = 0;
    CHECK_ST(prepare_chunk(&m->w.cfg, &m->rt, s, a));
    return forward_chunk(&m->w, &m->rt, s, 0, reps);
}

static gc_status enc_forward(void *ctx, const gc_encode_args *a, float *reps) {
    gc_bert *m = ctx;
    if (!m || !a || !reps) return gc_set_error(GC_ERR_INVALID_ARG, "bert_forward: NULL argument");
    bert_cpu *rt = &m->rt;
    if (!rt->slots)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert: no activation buffers; call gc_bert_reserve first");
    if (a->slot < 0 || a->slot >= rt->num_slots)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert_forward: slot %d not reserved (gc_bert_reserve slots = %d%s)",
                            a->slot, rt->num_slots,
                            rt->num_slots ? "" : "; gc_bert_reserve_inference reserves none");
    bert_slot *s = &rt->slots[a->slot];
    s->valid = 0;
    CHECK_ST(prepare_chunk(&m->w.cfg, rt, s, a));
    CHECK_ST(forward_chunk(&m->w, rt, s, 1, reps));
    s->valid = 1;
    return GC_OK;
}

static gc_status enc_backward(void *ctx, const gc_encode_args *a, const float *dreps) {
    gc_bert *m = ctx;
    if (!m || !a || !dreps) return gc_set_error(GC_ERR_INVALID_ARG, "bert_backward: NULL argument");
    bert_cpu *rt = &m->rt;
    if (a->slot < 0 || !rt->slots || a->slot >= rt->num_slots || !rt->slots[a->slot].valid)
        return gc_set_error(GC_ERR_INVALID_ARG, "bert_backward: no forward pass kept in slot %d",
                            a->slot);
    bert_slot *s = &rt->slots[a->slot];
    if (s->first != a->first || s->count != a->count || s->side != a->side ||
        s->train != (a->train != 0) || s->ck.seed != a->seed || s->ck.step != a->step)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "bert_backward: examples [%d, %d) of side %d do not match the "
                            "forward pass in slot %d ([%d, %d) of side %d)",
                            a->first, a->first + a->count, a->side, a->slot, s->first,
                            s->first + s->count, s->side);
    return backward_chunk(&m->w, rt, s, dreps);
}

static gc_param_store enc_store(void *ctx) {
    return gc_bert_store(ctx);
}

static void enc_free(void *ctx) {
    (void)ctx; /* the encoder does not own the model */
}

static const gc_encoder_ops bert_encoder_ops = {
    .dim = enc_dim,
    .reserve = enc_reserve,
    .encode = enc_encode,
    .forward = enc_forward,
    .backward = enc_backward,
    .store = enc_store,
    .free = enc_free,
    .reserve_bytes = enc_reserve_bytes,
};

gc_encoder gc_bert_encoder(gc_bert *m) {
    gc_encoder e = {&bert_encoder_ops, m};
    return e;
}

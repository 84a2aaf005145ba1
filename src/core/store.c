/* store.c: the host parameter store (gc_host_store) and the encoder helpers over any store. */
#include "gc_encoder.h"

#include <stdlib.h>
#include <string.h>

static gc_mem hs_location(void *ctx) {
    (void)ctx;
    return GC_MEM_HOST;
}

static size_t hs_num_params(void *ctx) {
    return ((gc_host_store *)ctx)->n;
}

static int hs_num_tensors(void *ctx) {
    gc_host_store *h = ctx;
    return h->tensors ? h->ntensors : 1;
}

static gc_status hs_tensor(void *ctx, int i, gc_tensor_view *out) {
    gc_host_store *h = ctx;
    if (i < 0 || i >= hs_num_tensors(ctx))
        return gc_set_error(GC_ERR_INVALID_ARG, "parameter store: no tensor %d", i);
    *out = h->tensors ? h->tensors[i] : (gc_tensor_view){"params", 0, h->n};
    return GC_OK;
}

static gc_status hs_zero_grad(void *ctx) {
    gc_host_store *h = ctx;
    if (h->n) memset(h->grads, 0, h->n * sizeof(float));
    return GC_OK;
}

static float *hs_grad_buffer(void *ctx) {
    return ((gc_host_store *)ctx)->grads;
}

static gc_status hs_grad_sq_norm(void *ctx, double *out) {
    gc_host_store *h = ctx;
    *out = gc_grad_sq_sum(h->grads, h->n);
    return GC_OK;
}

/* The host vector of a part and its length. */
static float *part_of(gc_host_store *h, gc_param_part part, size_t *len) {
    switch (part) {
    case GC_PART_PARAMS:
        *len = h->n;
        return h->params;
    case GC_PART_GRADS:
        *len = h->n;
        return h->grads;
    case GC_PART_OPTIM:
        *len = h->opt ? gc_optim_state_size(h->opt) : 0;
        return h->opt ? gc_optim_state(h->opt) : NULL;
    }
    *len = 0;
    return NULL;
}

static gc_status check_range(gc_host_store *h, gc_param_part part, size_t off, size_t n,
                             const void *host, float **at) {
    size_t len;
    float *base = part_of(h, part, &len);
    if (!host && n) return gc_set_error(GC_ERR_INVALID_ARG, "parameter store: NULL host buffer");
    if (off > len || n > len - off)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "parameter store: range [%zu, %zu) outside part %d of %zu values", off,
                            off + n, (int)part, len);
    *at = base ? base + off : NULL;
    return GC_OK;
}

static gc_status hs_read(void *ctx, gc_param_part part, size_t off, size_t n, float *host) {
    float *at = NULL;
    gc_status st = check_range(ctx, part, off, n, host, &at);
    if (st == GC_OK && n) memcpy(host, at, n * sizeof(float));
    return st;
}

static gc_status hs_write(void *ctx, gc_param_part part, size_t off, size_t n, const float *host) {
    float *at = NULL;
    gc_status st = check_range(ctx, part, off, n, host, &at);
    if (st == GC_OK && n) memcpy(at, host, n * sizeof(float));
    return st;
}

static gc_status hs_optim_init(void *ctx, const gc_optim_config *cfg, int (*decay)(const char *)) {
    gc_host_store *h = ctx;
    gc_optim_free(h->opt);
    h->opt = NULL;
    gc_status st = gc_optim_create(&h->opt, cfg, h->n);
    for (int i = 0; st == GC_OK && decay && i < hs_num_tensors(ctx); i++) {
        gc_tensor_view t;
        st = hs_tensor(ctx, i, &t);
        if (st == GC_OK) st = gc_optim_set_decay(h->opt, t.offset, t.count, decay(t.name));
    }
    return st;
}

static gc_status hs_optim_step(void *ctx, float lr, float grad_scale) {
    gc_host_store *h = ctx;
    if (!h->opt) return gc_set_error(GC_ERR_INVALID_ARG, "parameter store: no optimizer");
    gc_optim_step(h->opt, h->params, h->grads, lr, grad_scale);
    return GC_OK;
}

static size_t hs_optim_state_size(void *ctx) {
    gc_host_store *h = ctx;
    return h->opt ? gc_optim_state_size(h->opt) : 0;
}

static uint64_t hs_optim_get_step(void *ctx) {
    gc_host_store *h = ctx;
    return h->opt ? gc_optim_get_step(h->opt) : 0;
}

static void hs_optim_set_step(void *ctx, uint64_t step) {
    gc_host_store *h = ctx;
    if (h->opt) gc_optim_set_step(h->opt, step);
}

static const gc_param_store_ops g_host_store_ops = {
    hs_location,    hs_num_params,       hs_num_tensors,    hs_tensor,         hs_zero_grad,
    hs_grad_buffer, hs_grad_sq_norm,     hs_read,           hs_write,          hs_optim_init,
    hs_optim_step,  hs_optim_state_size, hs_optim_get_step, hs_optim_set_step,
};

gc_param_store gc_host_store_view(gc_host_store *h) {
    return (gc_param_store){&g_host_store_ops, h};
}

void gc_host_store_release(gc_host_store *h) {
    if (!h) return;
    gc_optim_free(h->opt);
    h->opt = NULL;
}

/* ---- helpers over an encoder's store ---- */

gc_param_store gc_encoder_store(const gc_encoder *enc) {
    return enc->ops->store(enc->ctx);
}

size_t gc_encoder_num_params(const gc_encoder *enc) {
    gc_param_store s = gc_encoder_store(enc);
    return s.ops->num_params(s.ctx);
}

gc_status gc_encoder_zero_grad(gc_encoder *enc) {
    if (!enc || !enc->ops) return gc_set_error(GC_ERR_INVALID_ARG, "zero_grad: NULL encoder");
    gc_param_store s = gc_encoder_store(enc);
    return s.ops->zero_grad(s.ctx);
}

gc_status gc_encoder_read(const gc_encoder *enc, gc_param_part part, float *host) {
    gc_param_store s = gc_encoder_store(enc);
    size_t n = part == GC_PART_OPTIM ? s.ops->optim_state_size(s.ctx) : s.ops->num_params(s.ctx);
    return s.ops->read(s.ctx, part, 0, n, host);
}

gc_status gc_encoder_write(gc_encoder *enc, gc_param_part part, const float *host) {
    gc_param_store s = gc_encoder_store(enc);
    size_t n = part == GC_PART_OPTIM ? s.ops->optim_state_size(s.ctx) : s.ops->num_params(s.ctx);
    return s.ops->write(s.ctx, part, 0, n, host);
}

gc_status gc_encoder_check(const gc_encoder *enc, const char *who) {
    if (!enc) return gc_set_error(GC_ERR_INVALID_ARG, "%s: NULL encoder", who);
    const gc_encoder_ops *o = enc->ops;
    if (!o || !o->dim || !o->reserve || !o->encode || !o->forward || !o->backward || !o->store)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "%s: the encoder has a missing operation table or function", who);
    if (o->dim(enc->ctx) < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: the encoder has dim %d", who,
                            o->dim(enc->ctx));
    gc_param_store s = o->store(enc->ctx);
    const gc_param_store_ops *p = s.ops;
    if (!p || !p->location || !p->num_params || !p->num_tensors || !p->tensor || !p->zero_grad ||
        !p->grad_buffer || !p->grad_sq_norm || !p->read || !p->write || !p->optim_init ||
        !p->optim_step || !p->optim_state_size || !p->optim_get_step || !p->optim_set_step)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "%s: the encoder's parameter store has a missing function", who);
    return GC_OK;
}

void gc_encoder_free(gc_encoder *enc) {
    if (!enc || !enc->ops) return;
    if (enc->ops->free) enc->ops->free(enc->ctx);
    enc->ops = NULL;
    enc->ctx = NULL;
}

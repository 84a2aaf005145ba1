/* optim.c: AdamW and SGD over flat buffers, the learning-rate schedules and gradient clipping.
 *
 * AdamW follows torch.optim.AdamW: decoupled decay p *= 1 - lr*wd before the moment update,
 * then p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). Every element is independent, so the
 * OpenMP loop gives the same bits with any thread count. */
#include "gc_optim.h"
#include "gc_testing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gc_optim {
    gc_optim_config cfg;
    size_t n;
    uint64_t t;           /* steps taken */
    float *state;         /* AdamW: m (n) then v (n); NULL for SGD */
    unsigned char *decay; /* per element: 1 = weight decay applies */
};

gc_status gc_optim_create(gc_optim **out, const gc_optim_config *cfg, size_t n) {
    if (!out || !cfg) return gc_set_error(GC_ERR_INVALID_ARG, "gc_optim_create: NULL argument");
    *out = NULL;
    if (cfg->kind != GC_OPTIM_ADAMW && cfg->kind != GC_OPTIM_SGD)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_optim_create: unknown optimizer kind %d",
                            (int)cfg->kind);
    if (!isfinite(cfg->weight_decay) || cfg->weight_decay < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_optim_create: weight decay must be >= 0");
    gc_optim *o = calloc(1, sizeof *o);
    if (!o) return gc_set_error(GC_ERR_NOMEM, "gc_optim_create: out of memory");
    o->cfg = *cfg;
    if (o->cfg.beta1 == 0) o->cfg.beta1 = 0.9f;
    if (o->cfg.beta2 == 0) o->cfg.beta2 = 0.999f;
    if (o->cfg.eps == 0) o->cfg.eps = 1e-8f;
    if (!(o->cfg.beta1 > 0 && o->cfg.beta1 < 1 && o->cfg.beta2 > 0 && o->cfg.beta2 < 1 &&
          o->cfg.eps > 0)) {
        free(o);
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_optim_create: betas must be in (0,1), eps > 0");
    }
    o->n = n;
    o->decay = malloc(n ? n : 1);
    if (cfg->kind == GC_OPTIM_ADAMW) o->state = calloc(2 * n + 1, sizeof(float));
    if (!o->decay || (cfg->kind == GC_OPTIM_ADAMW && !o->state)) {
        gc_optim_free(o);
        return gc_set_error(GC_ERR_NOMEM, "gc_optim_create: out of memory for %zu parameters", n);
    }
    memset(o->decay, 1, n);
    *out = o;
    return GC_OK;
}

void gc_optim_free(gc_optim *o) {
    if (!o) return;
    free(o->state);
    free(o->decay);
    free(o);
}

gc_status gc_optim_set_decay(gc_optim *o, size_t offset, size_t count, int decay) {
    if (!o) return gc_set_error(GC_ERR_INVALID_ARG, "gc_optim_set_decay: NULL optimizer");
    if (offset > o->n || count > o->n - offset)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "gc_optim_set_decay: range [%zu, %zu) outside %zu parameters", offset,
                            offset + count, o->n);
    memset(o->decay + offset, decay ? 1 : 0, count);
    return GC_OK;
}

static int contains_ci(const char *s, const char *w) {
    size_t lw = strlen(w);
    for (; *s; s++) {
        size_t i = 0;
        while (i < lw && s[i] && (s[i] | 0x20) == (w[i] | 0x20)) i++;
        if (i == lw) return 1;
    }
    return 0;
}

int gc_optim_default_decay(const char *name) {
    if (!name) return 1;
    if (contains_ci(name, "bias") || contains_ci(name, "layernorm") ||
        contains_ci(name, "layer_norm"))
        return 0;
    return 1;
}

void gc_optim_step(gc_optim *o, float *params, const float *grads, float lr, float grad_scale) {
    const long n = (long)o->n;
    const float wd = o->cfg.weight_decay;
    const unsigned char *dmask = o->decay;
    o->t++;
    if (o->cfg.kind == GC_OPTIM_SGD) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) {
            float g = grads[i] * grad_scale;
            if (dmask[i]) g += wd * params[i];
            params[i] -= lr * g;
        }
        return;
    }
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    const double bc1 = 1.0 - pow(b1, (double)o->t), bc2 = 1.0 - pow(b2, (double)o->t);
    const float step_size = (float)(lr / bc1);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float decay_factor = 1.0f - lr * wd;
    float *m = o->state, *v = o->state + o->n;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float g = grads[i] * grad_scale;
        float p = params[i];
        if (dmask[i]) p *= decay_factor;
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] = p - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

void gc_optim_step_ref(gc_optim *o, float *params, const float *grads, float lr, float grad_scale) {
    const double wd = o->cfg.weight_decay;
    o->t++;
    for (size_t i = 0; i < o->n; i++) {
        double g = (double)grads[i] * grad_scale;
        double p = params[i];
        if (o->cfg.kind == GC_OPTIM_SGD) {
            if (o->decay[i]) g += wd * p;
            params[i] = (float)(p - lr * g);
            continue;
        }
        double b1 = o->cfg.beta1, b2 = o->cfg.beta2;
        if (o->decay[i]) p -= lr * wd * p;
        double m = b1 * o->state[i] + (1 - b1) * g;
        double v = b2 * o->state[o->n + i] + (1 - b2) * g * g;
        o->state[i] = (float)m;
        o->state[o->n + i] = (float)v;
        double mhat = m / (1 - pow(b1, (double)o->t));
        double vhat = v / (1 - pow(b2, (double)o->t));
        params[i] = (float)(p - lr * mhat / (sqrt(vhat) + o->cfg.eps));
    }
}

size_t gc_optim_state_size(const gc_optim *o) {
    return o->cfg.kind == GC_OPTIM_ADAMW ? 2 * o->n : 0;
}
float *gc_optim_state(gc_optim *o) {
    return o->cfg.kind == GC_OPTIM_ADAMW ? o->state : NULL;
}
uint64_t gc_optim_get_step(const gc_optim *o) {
    return o->t;
}
void gc_optim_set_step(gc_optim *o, uint64_t t) {
    o->t = t;
}
size_t gc_optim_num_params(const gc_optim *o) {
    return o->n;
}

float gc_lr_at(gc_schedule s, float base_lr, uint64_t step, uint64_t warmup, uint64_t total) {
    if (step < warmup) return (float)((double)base_lr * (double)step / (double)warmup);
    if (s == GC_SCHED_CONSTANT) return base_lr;
    if (step >= total || total <= warmup) return 0.0f;
    return (float)((double)base_lr * (double)(total - step) / (double)(total - warmup));
}

double gc_grad_sq_sum(const float *g, size_t n) {
    /* a fixed split into NSEG segments summed in order keeps the result independent of the
     * thread count (the bitwise resume guarantee relies on it) and needs no allocation */
    enum { NSEG = 256 };
    double partial[NSEG], total = 0;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < NSEG; k++) {
        size_t lo = n / NSEG * (size_t)k + (k < (int)(n % NSEG) ? (size_t)k : n % NSEG);
        size_t hi = lo + n / NSEG + (k < (int)(n % NSEG) ? 1 : 0);
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
        partial[k] = s;
    }
    for (int k = 0; k < NSEG; k++) total += partial[k];
    return total;
}

double gc_grad_norm(const float *const *bufs, const size_t *counts, int nbufs) {
    double total = 0;
    for (int b = 0; b < nbufs; b++) total += gc_grad_sq_sum(bufs[b], counts[b]);
    return sqrt(total);
}

float gc_clip_scale(double norm, double max_norm) {
    if (!(max_norm > 0)) return 1.0f;
    double c = max_norm / (norm + 1e-6);
    return c < 1.0 ? (float)c : 1.0f;
}

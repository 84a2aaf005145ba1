/* engine.c: the gradient-cache engine (gc_engine_*).
 *
 * One step over a global batch: pass 1 encodes every chunk without keeping activations, the
 * representations are gathered across ranks, the loss gives d loss / d rep for every example,
 * and pass 2 re-runs each chunk with activations and back-propagates its slice of those cached
 * gradients. Because dropout is addressed by (seed, step, side, global example index), pass 2
 * reproduces pass 1 exactly and the parameter gradient equals the full-batch gradient for any
 * chunking. Everything a step touches is allocated by gc_engine_create.
 *
 * Several ranks: every rank receives the inputs of the whole global batch (token ids are
 * cheap) and encodes only its share, so the example index an encoder sees is always the
 * global one. With R ranks and B = R * b, rank r owns queries [r*b, (r+1)*b), positives
 * [r*b, (r+1)*b) and hard negatives [B + r*b*K, B + (r+1)*b*K). Gathering positives and
 * negatives separately lays the global passages out exactly as gc_infonce expects. The loss
 * is sharded (gc_infonce_shard): each rank scores its own b queries against all P passages,
 * so loss work and workspace are divided by R; its partial passage gradients are
 * reduce-scattered to the passages' owners (positives and negatives, one call each). Each
 * rank back-propagates its own share and the final all-reduce sums the shares. A rank's
 * failure in pass 1 or pass 2 is agreed on (gc_comm_agree) before the next collective, so
 * every rank returns the error instead of waiting. */
#include "gc_engine.h"
#include "gc_testing.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gc_engine {
    gc_engine_config cfg;
    gc_encoder *qenc, *penc;
    int shared; /* both sides use one encoder: zero and reduce its gradients once */
    gc_comm comm;
    int rank, size;
    int dim;
    int max_passages;       /* max_batch * (1 + max_negatives) */
    float *mem;             /* the one float allocation below points into */
    float *qreps, *preps;   /* global (max_batch, d), (max_passages, d) */
    float *dq, *dp;         /* d loss / d reps, same shapes */
    float *qlocal, *plocal; /* this rank's reps before the gather (alias the global ones when
                               there is one rank); plocal then receives this rank's passage
                               gradients from the reduce-scatter */
    float *scratch;         /* (max chunk, d) reps of pass 2, which only its gradient needs */
    int scratch_rows;
    gc_encoder_reserve reserved[2]; /* what each encoder was asked to hold ([0] when shared) */
    void *ws;                       /* loss workspace (of a shard of B / ranks query rows) */
    size_t ws_size;
};

/* A run of consecutive examples of one side owned by this rank. */
typedef struct segment {
    int first; /* global index of the first example */
    int count;
    int local; /* row of the first example in this rank's local buffer */
} segment;

/* The segments of `side` this rank encodes; returns how many (1 or 2). */
static int side_segments(const gc_engine *e, int side, int B, int K, segment seg[2]) {
    int b = B / e->size, r = e->rank;
    seg[0] = (segment){r * b, b, 0};
    if (side == 0 || K == 0) return 1;
    seg[1] = (segment){B + r * b * K, b * K, b};
    if (seg[0].first + seg[0].count == seg[1].first) { /* one rank: one contiguous run */
        seg[0].count += seg[1].count;
        return 1;
    }
    return 2;
}

/* Re-record the current error message with a prefix naming where it happened. */
static gc_status wrap_error(gc_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static gc_status wrap_error(gc_status st, const char *fmt, ...) {
    char inner[512], where[128];
    snprintf(inner, sizeof inner, "%s", gc_last_error());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where, sizeof where, fmt, ap);
    va_end(ap);
    return gc_set_error(st, "engine step: %s: %s", where, inner);
}

/* What one encoder must hold for this engine's chunk rule: pass 1 and pass 2 call it with at
 * most one chunk of its side's local share; no-cache mode calls it once with the whole share
 * (a shared encoder keeps both sides at once, in slots 0 and 1). */
static gc_encoder_reserve reserve_for(const gc_engine_config *cfg, int shared, int side_mask,
                                      int size) {
    int bl = (cfg->max_batch + size - 1) / size;
    int pl = bl * (1 + cfg->max_negatives);
    int qn = cfg->no_cache ? bl : (cfg->query_chunk < bl ? cfg->query_chunk : bl);
    int pn = cfg->no_cache ? pl : (cfg->passage_chunk < pl ? cfg->passage_chunk : pl);
    int n = 0;
    if (side_mask & 1) n = qn;
    if ((side_mask & 2) && pn > n) n = pn;
    gc_encoder_reserve r = {n, cfg->max_len, cfg->no_cache && shared ? 2 : 1};
    return r;
}

/* Slot of a no-cache forward: a shared encoder keeps both sides (slot = side). */
static int nocache_slot(const gc_engine *e, int side) {
    return e->shared ? side : 0;
}

gc_status gc_engine_create(gc_engine **out, const gc_engine_config *cfg, gc_encoder *query_enc,
                           gc_encoder *passage_enc, const gc_comm *comm) {
    if (!out) return gc_set_error(GC_ERR_INVALID_ARG, "engine create: NULL output pointer");
    *out = NULL;
    if (!cfg) return gc_set_error(GC_ERR_INVALID_ARG, "engine create: NULL config");
    gc_status st = gc_encoder_check(query_enc, "engine create: query");
    if (st != GC_OK) return st;
    if ((st = gc_encoder_check(passage_enc, "engine create: passage")) != GC_OK) return st;
    int dq = query_enc->ops->dim(query_enc->ctx), dp = passage_enc->ops->dim(passage_enc->ctx);
    if (dq != dp)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine create: query encoder dim %d differs from passage encoder "
                            "dim %d",
                            dq, dp);
    if (cfg->max_batch < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "engine create: max_batch %d < 1", cfg->max_batch);
    if (cfg->max_negatives < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "engine create: max_negatives %d < 0",
                            cfg->max_negatives);
    if (cfg->max_len < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "engine create: max_len %d < 1", cfg->max_len);
    if (cfg->query_chunk < 1 || cfg->passage_chunk < 1)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine create: chunk sizes must be >= 1 (query %d, passage %d)",
                            cfg->query_chunk, cfg->passage_chunk);
    if (!(cfg->loss.temperature > 0.0f) || !isfinite(cfg->loss.temperature))
        return gc_set_error(GC_ERR_INVALID_ARG, "engine create: temperature %g must be > 0",
                            (double)cfg->loss.temperature);
    int64_t maxp = (int64_t)cfg->max_batch * (1 + (int64_t)cfg->max_negatives);
    if (maxp > INT_MAX / 4)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine create: max_batch %d with %d negatives is too many "
                            "passages",
                            cfg->max_batch, cfg->max_negatives);
    if ((st = gc_matryoshka_check(&cfg->matryoshka, dq)) != GC_OK) return st;
    gc_comm c = comm ? *comm : gc_comm_single();
    if (!c.ops || !c.ops->rank || !c.ops->size || !c.ops->all_gather || !c.ops->all_reduce_sum)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine create: communicator has a missing function");
    int size = c.ops->size(c.ctx), rank = c.ops->rank(c.ctx);
    if (size < 1 || rank < 0 || rank >= size)
        return gc_set_error(GC_ERR_INVALID_ARG, "engine create: communicator rank %d of %d", rank,
                            size);
    if ((st = gc_comm_check(&c, "engine create")) != GC_OK) return st;
    if (cfg->no_cache && size > 1 && cfg->max_negatives > 0)
        return gc_set_error(GC_ERR_UNSUPPORTED,
                            "engine create: no_cache with hard negatives needs a single "
                            "process (a rank's passages are two separate runs)");

    gc_engine *e = calloc(1, sizeof *e);
    if (!e) return gc_set_error(GC_ERR_NOMEM, "engine create: out of memory");
    e->cfg = *cfg;
    e->qenc = query_enc, e->penc = passage_enc;
    e->shared = query_enc == passage_enc ||
                (query_enc->ops == passage_enc->ops && query_enc->ctx == passage_enc->ctx);
    e->comm = c, e->rank = rank, e->size = size;
    e->dim = dq;
    e->max_passages = (int)maxp;
    size_t d = (size_t)dq, B = (size_t)cfg->max_batch, P = (size_t)maxp;
    size_t bl = (B + size - 1) / size; /* largest local share */
    int chunk = cfg->query_chunk > cfg->passage_chunk ? cfg->query_chunk : cfg->passage_chunk;
    e->scratch_rows = cfg->no_cache ? 0 : (chunk < (int)P ? chunk : (int)P);
    size_t local = size > 1 ? bl * d + bl * (1 + (size_t)cfg->max_negatives) * d : 0;
    size_t total = 2 * (B * d + P * d) + local + (size_t)e->scratch_rows * d;
    e->mem = malloc(total * sizeof(float));
    e->ws_size = gc_matryoshka_workspace_size(cfg->max_batch, (int)maxp, dq, (int)bl, size > 1,
                                              &cfg->loss, &cfg->matryoshka);
    e->ws = malloc(e->ws_size > 64 ? e->ws_size : 64); /* never NULL: NULL asks gc_infonce to
                                                          allocate */
    if (!e->mem || !e->ws) {
        gc_engine_free(e);
        return gc_set_error(GC_ERR_NOMEM, "engine create: out of memory for %zu floats", total);
    }
    float *m = e->mem;
    e->qreps = m, m += B * d;
    e->preps = m, m += P * d;
    e->dq = m, m += B * d;
    e->dp = m, m += P * d;
    if (size > 1) {
        e->qlocal = m, m += bl * d;
        e->plocal = m, m += bl * (1 + (size_t)cfg->max_negatives) * d;
    } else {
        e->qlocal = e->qreps, e->plocal = e->preps;
    }
    e->scratch = m;
    /* the encoders hold what this chunk rule needs, allocated now rather than in a step */
    for (int i = 0; i < (e->shared ? 1 : 2); i++) {
        gc_encoder *enc = i == 0 ? e->qenc : e->penc;
        gc_encoder_reserve r = reserve_for(cfg, e->shared, e->shared ? 3 : 1 << i, size);
        e->reserved[i] = r;
        if ((st = enc->ops->reserve(enc->ctx, &r)) != GC_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", gc_last_error());
            gc_engine_free(e);
            return gc_set_error(st, "engine create: %s encoder reserving %d examples of %d: %s",
                                i == 0 ? "query" : "passage", r.max_count, r.max_len, msg);
        }
    }
    *out = e;
    return GC_OK;
}

void gc_engine_free(gc_engine *e) {
    if (!e) return;
    free(e->mem);
    free(e->ws);
    free(e);
}

void gc_engine_set_temperature(gc_engine *e, float temperature) {
    if (e) e->cfg.loss.temperature = temperature; /* the next step checks it */
}

size_t gc_engine_loss_workspace(const gc_engine *e) {
    return e ? e->ws_size : 0;
}

int gc_engine_reserved_count(const gc_engine *e, int side) {
    if (!e) return 0;
    return e->shared ? e->reserved[0].max_count : e->reserved[side ? 1 : 0].max_count;
}

const float *gc_engine_query_reps(const gc_engine *e) {
    return e ? e->qreps : NULL;
}

const float *gc_engine_passage_reps(const gc_engine *e) {
    return e ? e->preps : NULL;
}

gc_status gc_engine_reduce_grads(gc_engine *e) {
    if (!e) return gc_set_error(GC_ERR_INVALID_ARG, "engine reduce: NULL engine");
    gc_encoder *encs[2] = {e->qenc, e->penc};
    for (int i = 0; i < (e->shared ? 1 : 2); i++) {
        gc_param_store s = gc_encoder_store(encs[i]);
        float *g = s.ops->grad_buffer(s.ctx);
        size_t n = s.ops->num_params(s.ctx);
        gc_status st = e->comm.ops->all_reduce_sum(e->comm.ctx, g, n, s.ops->location(s.ctx));
        if (st != GC_OK) return st;
    }
    return GC_OK;
}

/* Gather this rank's reps of both sides into the global buffers. */
static gc_status gather(gc_engine *e, int B, int K) {
    const gc_comm *c = &e->comm;
    size_t d = (size_t)e->dim, b = (size_t)(B / e->size);
    gc_status st = c->ops->all_gather(c->ctx, e->qlocal, b, d, e->qreps);
    if (st == GC_OK) st = c->ops->all_gather(c->ctx, e->plocal, b, d, e->preps);
    if (st == GC_OK && K > 0)
        st = c->ops->all_gather(c->ctx, e->plocal + b * d, b * (size_t)K, d,
                                e->preps + (size_t)B * d);
    return st == GC_OK ? GC_OK : wrap_error(st, "gathering representations");
}

/* Pass 1 of one side: encode every chunk of this rank's share into the local buffer. */
static gc_status pass1(gc_engine *e, gc_encoder *enc, const void *inputs, int side, int chunk,
                       int B, int K, uint32_t step) {
    segment seg[2];
    int nseg = side_segments(e, side, B, K, seg);
    float *local = side == 0 ? e->qlocal : e->plocal;
    size_t d = (size_t)e->dim;
    for (int s = 0; s < nseg; s++) {
        for (int c = 0; c < seg[s].count; c += chunk) {
            int n = seg[s].count - c < chunk ? seg[s].count - c : chunk;
            gc_encode_args a = {inputs, side, seg[s].first + c, n, 1, 0, e->cfg.seed, step};
            gc_status st = enc->ops->encode(enc->ctx, &a, local + (size_t)(seg[s].local + c) * d);
            if (st != GC_OK)
                return wrap_error(st, "pass 1, side %d, examples [%d, %d)", side, a.first,
                                  a.first + n);
        }
    }
    return GC_OK;
}

/* Pass 2 of one side: per chunk, forward with activations and back-propagate the cached
 * gradient rows of those examples. */
static gc_status pass2(gc_engine *e, gc_encoder *enc, const void *inputs, int side, int chunk,
                       int B, int K, uint32_t step) {
    segment seg[2];
    int nseg = side_segments(e, side, B, K, seg);
    const float *grad = side == 0 ? e->dq : e->dp;
    size_t d = (size_t)e->dim;
    for (int s = 0; s < nseg; s++) {
        for (int c = 0; c < seg[s].count; c += chunk) {
            int n = seg[s].count - c < chunk ? seg[s].count - c : chunk;
            gc_encode_args a = {inputs, side, seg[s].first + c, n, 1, 0, e->cfg.seed, step};
            gc_status st = enc->ops->forward(enc->ctx, &a, e->scratch);
            if (st == GC_OK) st = enc->ops->backward(enc->ctx, &a, grad + (size_t)a.first * d);
            if (st != GC_OK)
                return wrap_error(st, "pass 2, side %d, examples [%d, %d)", side, a.first,
                                  a.first + n);
        }
    }
    return GC_OK;
}

/* No-cache mode: each side's share in one forward with activations kept (slot = side). */
static gc_status forward_whole(gc_engine *e, gc_encoder *enc, const void *inputs, int side, int B,
                               int K, uint32_t step, gc_encode_args *a) {
    segment seg[2];
    side_segments(e, side, B, K, seg); /* one segment: create refused the two-run case */
    *a = (gc_encode_args){inputs,      side, seg[0].first, seg[0].count, 1, nocache_slot(e, side),
                          e->cfg.seed, step};
    gc_status st = enc->ops->forward(enc->ctx, a, side == 0 ? e->qlocal : e->plocal);
    return st == GC_OK ? GC_OK
                       : wrap_error(st, "no-cache forward, side %d, examples [%d, %d)", side,
                                    a->first, a->first + a->count);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Several ranks: every passage's gradient summed over the ranks' loss shards, on its owner
 * (positives and negatives separately, as they were gathered), then put back at the global
 * rows pass 2 reads. */
static gc_status scatter_passage_grads(gc_engine *e, int B, int K) {
    const gc_comm *c = &e->comm;
    size_t d = (size_t)e->dim, b = (size_t)(B / e->size), r = (size_t)e->rank;
    gc_status st = c->ops->reduce_scatter_sum(c->ctx, e->dp, e->plocal, b * d);
    if (st == GC_OK && K > 0)
        st = c->ops->reduce_scatter_sum(c->ctx, e->dp + (size_t)B * d, e->plocal + b * d,
                                        b * (size_t)K * d);
    if (st != GC_OK) return wrap_error(st, "reduce-scattering passage gradients");
    memcpy(e->dp + r * b * d, e->plocal, b * d * sizeof(float));
    if (K > 0)
        memcpy(e->dp + ((size_t)B + r * b * (size_t)K) * d, e->plocal + b * d,
               b * (size_t)K * d * sizeof(float));
    return GC_OK;
}

static void scale(float *x, size_t n, float s) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

gc_status gc_engine_step_opts(gc_engine *e, const void *queries, const void *passages, int B, int K,
                              uint32_t step, const gc_step_options *opts, gc_step_stats *stats) {
    if (!e) return gc_set_error(GC_ERR_INVALID_ARG, "engine step: NULL engine");
    if (!queries || !passages)
        return gc_set_error(GC_ERR_INVALID_ARG, "engine step: NULL %s inputs",
                            !queries ? "query" : "passage");
    if (B < 1 || B > e->cfg.max_batch)
        return gc_set_error(GC_ERR_INVALID_ARG, "engine step: batch %d outside [1, %d]", B,
                            e->cfg.max_batch);
    if (K < 0 || K > e->cfg.max_negatives)
        return gc_set_error(GC_ERR_INVALID_ARG, "engine step: %d hard negatives outside [0, %d]", K,
                            e->cfg.max_negatives);
    if (B % e->size != 0)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine step: batch %d does not split evenly over %d ranks", B,
                            e->size);
    float tau = e->cfg.loss.temperature;
    if (!(tau > 0.0f) || !isfinite(tau))
        return gc_set_error(GC_ERR_INVALID_ARG, "engine step: temperature %g must be > 0",
                            (double)tau);
    float loss_scale = opts && opts->loss_scale != 0.0f ? opts->loss_scale : 1.0f;
    if (!isfinite(loss_scale))
        return gc_set_error(GC_ERR_INVALID_ARG, "engine step: loss_scale %g is not finite",
                            (double)loss_scale);
    int P = B * (1 + K), d = e->dim, b = B / e->size;
    if (gc_matryoshka_workspace_size(B, P, d, b, e->size > 1, &e->cfg.loss, &e->cfg.matryoshka) >
        e->ws_size)
        return gc_set_error(GC_ERR_INTERNAL,
                            "engine step: loss workspace for B=%d P=%d exceeds the one sized "
                            "at create",
                            B, P);

    gc_status st;
    if (!(opts && opts->accumulate)) {
        st = gc_encoder_zero_grad(e->qenc);
        if (st == GC_OK && !e->shared) st = gc_encoder_zero_grad(e->penc);
        if (st != GC_OK) return wrap_error(st, "zeroing gradients");
    }

    gc_encode_args qa, pa;
    double t0 = now_s(), t_enc = 0, t_gather = 0, t_loss = 0, t_scatter = 0, t_reduce = 0;
    if (e->cfg.no_cache) {
        st = forward_whole(e, e->qenc, queries, 0, B, K, step, &qa);
        if (st == GC_OK) st = forward_whole(e, e->penc, passages, 1, B, K, step, &pa);
    } else {
        st = pass1(e, e->qenc, queries, 0, e->cfg.query_chunk, B, K, step);
        if (st == GC_OK) st = pass1(e, e->penc, passages, 1, e->cfg.passage_chunk, B, K, step);
    }
    if ((st = gc_comm_agree(&e->comm, st)) != GC_OK) return st;
    double t1 = now_s();
    t_enc += t1 - t0;
    if ((st = gather(e, B, K)) != GC_OK) return st;
    double t2 = now_s();
    t_gather = t2 - t1;

    gc_loss_out lo = {0, 0, 0};
    gc_loss_shard shard = {e->rank * b, b, &e->comm};
    st = gc_matryoshka_infonce(e->qreps, e->preps, B, P, d, &e->cfg.loss, &e->cfg.matryoshka,
                               &shard, &lo, e->dq, e->dp, e->ws); /* gc_infonce_shard when off */
    if (st != GC_OK) return wrap_error(st, "loss over B=%d, P=%d", B, P);
    if (loss_scale != 1.0f) {
        scale(e->dq + (size_t)shard.row0 * d, (size_t)b * d, loss_scale);
        scale(e->dp, (size_t)P * d, loss_scale);
    }
    double t3 = now_s();
    t_loss = t3 - t2;
    if (e->size > 1 && (st = scatter_passage_grads(e, B, K)) != GC_OK) return st;
    double t4 = now_s();
    t_scatter = t4 - t3;

    if (e->cfg.no_cache) {
        const float *gq = e->dq + (size_t)qa.first * d, *gp = e->dp + (size_t)pa.first * d;
        st = e->qenc->ops->backward(e->qenc->ctx, &qa, gq);
        if (st != GC_OK) st = wrap_error(st, "no-cache backward, side %d", 0);
        if (st == GC_OK && (st = e->penc->ops->backward(e->penc->ctx, &pa, gp)) != GC_OK)
            st = wrap_error(st, "no-cache backward, side %d", 1);
    } else {
        st = pass2(e, e->qenc, queries, 0, e->cfg.query_chunk, B, K, step);
        if (st == GC_OK) st = pass2(e, e->penc, passages, 1, e->cfg.passage_chunk, B, K, step);
    }
    if ((st = gc_comm_agree(&e->comm, st)) != GC_OK) return st;
    double t5 = now_s();
    t_enc += t5 - t4;

    if (!(opts && opts->skip_reduce) && (st = gc_engine_reduce_grads(e)) != GC_OK)
        return wrap_error(st, "reducing gradients");
    t_reduce = now_s() - t5;
    if (stats) {
        stats->loss = lo.loss;
        stats->accuracy = lo.accuracy;
        /* a gradient like the parameters', so it carries the same scale and accumulates the
         * same way over micro-batches */
        stats->dlog_tau = e->cfg.learn_temperature ? lo.dlog_tau * loss_scale : 0.0;
        stats->time_encode = t_enc;
        stats->time_gather = t_gather;
        stats->time_loss = t_loss;
        stats->time_scatter = t_scatter;
        stats->time_reduce = t_reduce;
    }
    return GC_OK;
}

gc_status gc_engine_step(gc_engine *e, const void *queries, const void *passages, int B, int K,
                         uint32_t step, gc_step_stats *stats) {
    return gc_engine_step_opts(e, queries, passages, B, K, step, NULL, stats);
}

/* engine.c: the gradient-cache engine (gc_engine_*).
 *
 * One step over a global batch: pass 1 encodes every chunk without keeping activations, the
 * representations are gathered across ranks, the loss's forward half keeps its log-sum-exp
 * statistics, and pass 2, per chunk, computes that chunk's d loss / d rep from the tiles that
 * involve it (for a window of chunks at a time), re-runs it with activations and
 * back-propagates. No (B, d) gradient is held. Because dropout is addressed by (seed, step, side,
 * global example index), pass 2 reproduces pass 1 exactly and the parameter gradient equals the
 * full-batch gradient for any chunking. Everything a step touches is allocated by gc_engine_create.
 *
 * Several ranks: every rank receives the inputs of the whole global batch (token ids are
 * cheap) and encodes only its share, so the example index an encoder sees is always the
 * global one. With R ranks and B = R * b, rank r owns queries [r*b, (r+1)*b), positives
 * [r*b, (r+1)*b) and hard negatives [B + r*b*K, B + (r+1)*b*K). Gathering positives and
 * negatives separately lays the global passages out exactly as gc_infonce expects. The loss
 * is sharded (gc_infonce_stats): each rank scores its own b queries against all P passages
 * and the row statistics are then summed to every rank, so each rank computes the whole
 * gradient of its own queries and passages (each passage against all B queries): the loss work
 * is divided by R and no passage gradient is communicated. Each rank back-propagates its own
 * share and the final all-reduce sums the shares. A rank's
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
    int max_passages;      /* max_batch * (1 + max_negatives) */
    int bf16;              /* representations kept in bf16 */
    size_t es;             /* bytes of one representation element (2 or 4) */
    float *mem;            /* the one allocation below points into */
    void *qreps, *preps;   /* global (max_batch, d), (max_passages, d), float or bf16 */
    void *qlocal, *plocal; /* this rank's reps before the gather (alias the global ones when
                              there is one rank) */
    float *grad;           /* (grad_rows, d) d loss / d reps of the window below */
    int grad_rows;
    int win[2];                /* each side's window: a multiple of its chunk size */
    int gside, gfirst, gcount; /* what grad holds (gside -1: nothing) */
    float gscale;              /* the loss scale it was computed with */
    double t_grad;             /* seconds spent computing it in this step */
    float *scratch;            /* (scratch_rows, d) reps of pass 2, which only the loss needed, and
                                  pass 1's float output before it is rounded to bf16 */
    int scratch_rows;
    gc_encoder_reserve reserved[2]; /* what each encoder was asked to hold ([0] when shared) */
    void *ws;                       /* loss workspace (of a shard of B / ranks query rows) */
    size_t ws_size;
    gc_engine_plan plan;
    struct chunk_ref *chunks; /* a step's chunk list (memory-budget mode), max_chunks long */
    int max_chunks;
};

/* One chunk of a step: which examples, where its reps go, the run of examples it belongs to
 * (the windows of representation gradients are laid over it), and the activation slot its
 * pass-1 forward keeps into (-1: encoded in pass 1, re-encoded in pass 2). */
typedef struct chunk_ref {
    int side, first, count, local, slot;
    int seg_first, seg_count;
} chunk_ref;

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
                                      int size, int slots) {
    int bl = (cfg->max_batch + size - 1) / size;
    int pl = bl * (1 + cfg->max_negatives);
    int qn = cfg->no_cache ? bl : (cfg->query_chunk < bl ? cfg->query_chunk : bl);
    int pn = cfg->no_cache ? pl : (cfg->passage_chunk < pl ? cfg->passage_chunk : pl);
    int n = 0;
    if (side_mask & 1) n = qn;
    if ((side_mask & 2) && pn > n) n = pn;
    gc_encoder_reserve r = {n, cfg->max_len, cfg->no_cache && shared ? 2 : 1};
    if (slots > r.slots) r.slots = slots;
    return r;
}

/* The chunks of one step in pass-1 order (query side, then passage side; each side's
 * segments in order), slots unassigned. out may be NULL (count only). */
static int list_chunks(const gc_engine *e, int B, int K, int qchunk, int pchunk, chunk_ref *out) {
    int n = 0;
    for (int side = 0; side < 2; side++) {
        segment seg[2];
        int nseg = side_segments(e, side, B, K, seg), chunk = side ? pchunk : qchunk;
        for (int s = 0; s < nseg; s++)
            for (int c = 0; c < seg[s].count; c += chunk, n++)
                if (out)
                    out[n] = (chunk_ref){side,
                                         seg[s].first + c,
                                         seg[s].count - c < chunk ? seg[s].count - c : chunk,
                                         seg[s].local + c,
                                         -1,
                                         seg[s].first,
                                         seg[s].count};
    }
    return n;
}

/* Keep the last chunks of pass 1 while their encoder has a free slot (a suffix of the list:
 * no encode call follows a kept forward on the same encoder). Returns how many. */
static int assign_slots(chunk_ref *c, int n, int shared, const int slots[2]) {
    int used[2] = {0, 0}, kept = 0;
    for (int i = n - 1; i >= 0; i--, kept++) {
        int enc = shared ? 0 : c[i].side;
        if (used[enc] >= slots[enc]) break;
        c[i].slot = used[enc]++;
    }
    return kept;
}

/* Examples of one side whose representation gradients pass 2 computes at once: a multiple of
 * the chunk size (windows start at multiples of it within a run, so a chunk never straddles
 * two), at most the side's share. */
static int window_rows(int chunk, int share) {
    int w = chunk >= GC_ENGINE_GRAD_ROWS ? chunk : chunk * (GC_ENGINE_GRAD_ROWS / chunk);
    return w < share ? w : share;
}

static size_t enc_bytes(const gc_encoder *enc, int count, int len, int slots) {
    gc_encoder_reserve r = {count, len, slots};
    return enc->ops->reserve_bytes(enc->ctx, &r);
}

/* The plan for chunk sizes (qn, pn): slots kept within the budget, bytes. Returns 0 when not
 * even one slot per encoder fits. */
static int plan_for(gc_engine *e, int qn, int pn, size_t engine_bytes, size_t model_bytes,
                    gc_engine_plan *p, size_t *need) {
    const gc_engine_config *cfg = &e->cfg;
    gc_encoder *encs[2] = {e->qenc, e->penc};
    int nenc = e->shared ? 1 : 2, B = cfg->max_batch, K = cfg->max_negatives;
    int count[2] = {e->shared ? (qn > pn ? qn : pn) : qn, pn};
    size_t base[2] = {0, 0}, per[2] = {0, 0}, fixed = engine_bytes + model_bytes;
    /* the engine's pass-2 scratch holds one chunk of reps, the gradient window a few chunks */
    int bl = (B + e->size - 1) / e->size, wq = window_rows(qn, bl),
        wp = window_rows(pn, bl * (1 + K));
    size_t scratch = ((size_t)(qn > pn ? qn : pn) + (size_t)(wq > wp ? wq : wp)) * (size_t)e->dim *
                     sizeof(float);
    fixed += scratch;
    for (int i = 0; i < nenc; i++) {
        base[i] = enc_bytes(encs[i], count[i], cfg->max_len, 1);
        size_t two = enc_bytes(encs[i], count[i], cfg->max_len, 2);
        per[i] = two > base[i] ? two - base[i] : 0;
        fixed += base[i];
    }
    if (need) *need = fixed;
    if (fixed > cfg->memory_budget) return 0;
    size_t left = cfg->memory_budget - fixed;
    int n = list_chunks(e, B, K, qn, pn, NULL);
    if (n > e->max_chunks) return 0;
    list_chunks(e, B, K, qn, pn, e->chunks);
    int used[2] = {0, 0}, kept = 0;
    for (int i = n - 1; i >= 0; i--) {
        int enc = e->shared ? 0 : e->chunks[i].side;
        if (used[enc] >= 1) { /* a slot beyond the one reserved anyway */
            if (per[enc] > left) break;
            left -= per[enc];
        }
        used[enc]++, kept++;
    }
    memset(p, 0, sizeof *p);
    p->budget = cfg->memory_budget;
    p->query_chunk = qn, p->passage_chunk = pn;
    p->engine_bytes = engine_bytes + scratch;
    p->model_bytes = model_bytes;
    for (int i = 0; i < nenc; i++) {
        p->slots[i] = used[i] > 0 ? used[i] : 1;
        p->encoder_bytes += base[i] + (size_t)(p->slots[i] - 1) * per[i];
    }
    p->peak_bytes = p->engine_bytes + p->model_bytes + p->encoder_bytes;
    for (int i = 0; i < n; i++) {
        int k = i >= n - kept, side = e->chunks[i].side;
        if (side == 0)
            p->query_chunks++, p->kept_query += k;
        else
            p->passage_chunks++, p->kept_passage += k;
        if (k)
            p->kept_examples += e->chunks[i].count;
        else
            p->reencoded_examples += e->chunks[i].count;
    }
    return 1;
}

static size_t model_bytes_of(const gc_engine *e) {
    size_t n = gc_encoder_num_params(e->qenc);
    if (!e->shared) n += gc_encoder_num_params(e->penc);
    return n * 4 * sizeof(float);
}

/* Choose (or check) the chunk sizes and the slots for cfg->memory_budget. */
static gc_status make_plan(gc_engine *e, size_t engine_bytes) {
    gc_engine_config *cfg = &e->cfg;
    int bl = (cfg->max_batch + e->size - 1) / e->size, pl = bl * (1 + cfg->max_negatives);
    size_t model = model_bytes_of(e);
    gc_engine_plan best, p;
    int found = 0;
    if (cfg->query_chunk > 0) {
        int qn = cfg->query_chunk < bl ? cfg->query_chunk : bl;
        int pn = cfg->passage_chunk < pl ? cfg->passage_chunk : pl;
        found = plan_for(e, qn, pn, engine_bytes, model, &best, NULL);
    } else {
        int cap = GC_ENGINE_PLAN_MAX_CHUNK < pl ? GC_ENGINE_PLAN_MAX_CHUNK : pl;
        /* the largest chunk that fits, unless a smaller one re-encodes nothing */
        for (int c = cap; c >= 1; c--) {
            if (!plan_for(e, c < bl ? c : bl, c, engine_bytes, model, &p, NULL)) continue;
            if (!found || p.reencoded_examples == 0) best = p;
            found = 1;
            if (best.reencoded_examples == 0) break;
        }
    }
    if (!found) {
        int qn = cfg->query_chunk > 0 ? cfg->query_chunk : 1;
        int pn = cfg->passage_chunk > 0 ? cfg->passage_chunk : 1;
        size_t need = 0;
        plan_for(e, qn < bl ? qn : bl, pn < pl ? pn : pl, engine_bytes, model, &p, &need);
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine create: memory budget of %zu bytes is too small: one chunk "
                            "(%d/%d examples) needs %zu bytes",
                            cfg->memory_budget, qn, pn, need);
    }
    e->plan = best;
    cfg->query_chunk = best.query_chunk, cfg->passage_chunk = best.passage_chunk;
    return GC_OK;
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
    int choose = cfg->memory_budget > 0 && cfg->query_chunk == 0 && cfg->passage_chunk == 0;
    if (!choose && (cfg->query_chunk < 1 || cfg->passage_chunk < 1))
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine create: chunk sizes must be >= 1 (query %d, passage %d)",
                            cfg->query_chunk, cfg->passage_chunk);
    if (cfg->memory_budget > 0 && cfg->no_cache)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "engine create: a memory budget plans the gradient cache; no_cache "
                            "keeps every activation");
    if (cfg->memory_budget > 0 &&
        (!query_enc->ops->reserve_bytes || !passage_enc->ops->reserve_bytes))
        return gc_set_error(GC_ERR_UNSUPPORTED,
                            "engine create: a memory budget needs encoders that report their "
                            "reservation's bytes (reserve_bytes)");
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
    e->bf16 = cfg->reps_bf16 && !(size > 1 && dq % 2 != 0);
    e->cfg.reps_bf16 = e->bf16;
    e->es = e->bf16 ? sizeof(uint16_t) : sizeof(float);
    size_t d = (size_t)dq, B = (size_t)cfg->max_batch, P = (size_t)maxp;
    size_t bl = (B + size - 1) / size; /* largest local share */
    size_t pl = bl * (1 + (size_t)cfg->max_negatives);
    size_t local = size > 1 ? (bl + pl) * d : 0; /* elements of the local copies */
    e->ws_size = gc_matryoshka_stats_workspace_size(cfg->max_batch, (int)maxp, dq, (int)bl,
                                                    size > 1, &cfg->loss, &cfg->matryoshka);
    if (cfg->memory_budget > 0) {
        e->max_chunks = (int)(bl * (1 + (size_t)cfg->max_negatives)) + 2;
        e->chunks = malloc((size_t)e->max_chunks * sizeof *e->chunks);
        if (!e->chunks) {
            gc_engine_free(e);
            return gc_set_error(GC_ERR_NOMEM, "engine create: out of memory for the chunk list");
        }
        size_t fixed = (B * d + P * d + local) * e->es + e->ws_size +
                       (size_t)e->max_chunks * sizeof *e->chunks;
        if ((st = make_plan(e, fixed)) != GC_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", gc_last_error());
            gc_engine_free(e);
            return gc_set_error(st, "%s", msg);
        }
    }
    const gc_engine_config *pc = &e->cfg; /* with the planner's chunk sizes */
    int chunk = pc->query_chunk > pc->passage_chunk ? pc->query_chunk : pc->passage_chunk;
    if (cfg->no_cache) { /* each side is one window and one forward of its whole share */
        e->win[0] = (int)bl, e->win[1] = (int)pl;
        e->grad_rows = e->scratch_rows = (int)(bl > pl ? bl : pl);
        if (!e->bf16) e->scratch_rows = 0; /* float reps are written in place */
    } else {
        e->win[0] = window_rows(pc->query_chunk, (int)bl);
        e->win[1] = window_rows(pc->passage_chunk, (int)pl);
        e->grad_rows = e->win[0] > e->win[1] ? e->win[0] : e->win[1];
        e->scratch_rows = chunk < (int)P ? chunk : (int)P;
    }
    size_t rep_bytes = ((B + P) * d + local) * e->es;
    size_t total = (rep_bytes + 63) / 64 * 16 + ((size_t)e->grad_rows + e->scratch_rows) * d;
    e->mem = malloc(total * sizeof(float));
    e->ws = malloc(e->ws_size > 64 ? e->ws_size : 64); /* never NULL: NULL asks gc_infonce to
                                                          allocate */
    if (!e->mem || !e->ws) {
        gc_engine_free(e);
        return gc_set_error(GC_ERR_NOMEM, "engine create: out of memory for %zu floats", total);
    }
    char *rb = (char *)e->mem;
    e->qreps = rb, rb += B * d * e->es;
    e->preps = rb, rb += P * d * e->es;
    if (size > 1) {
        e->qlocal = rb, rb += bl * d * e->es;
        e->plocal = rb;
    } else {
        e->qlocal = e->qreps, e->plocal = e->preps;
    }
    float *m = e->mem + (rep_bytes + 63) / 64 * 16;
    e->grad = m, m += (size_t)e->grad_rows * d;
    e->scratch = m;
    e->gside = -1;
    /* the encoders hold what this chunk rule needs, allocated now rather than in a step */
    for (int i = 0; i < (e->shared ? 1 : 2); i++) {
        gc_encoder *enc = i == 0 ? e->qenc : e->penc;
        gc_encoder_reserve r =
            reserve_for(pc, e->shared, e->shared ? 3 : 1 << i, size, e->plan.slots[i]);
        e->reserved[i] = r;
        if ((st = enc->ops->reserve(enc->ctx, &r)) != GC_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", gc_last_error());
            gc_engine_free(e);
            return gc_set_error(st, "engine create: %s encoder reserving %d examples of %d: %s",
                                i == 0 ? "query" : "passage", r.max_count, r.max_len, msg);
        }
    }
    if (cfg->memory_budget == 0) { /* the plan without a planner: what was asked */
        gc_engine_plan *p = &e->plan;
        p->query_chunk = pc->query_chunk < (int)bl ? pc->query_chunk : (int)bl;
        p->passage_chunk = pc->passage_chunk < (int)pl ? pc->passage_chunk : (int)pl;
        p->engine_bytes = total * sizeof(float) + e->ws_size;
        p->model_bytes = model_bytes_of(e);
        for (int i = 0; i < (e->shared ? 1 : 2); i++) {
            gc_encoder *enc = i == 0 ? e->qenc : e->penc;
            p->slots[i] = e->reserved[i].slots;
            if (enc->ops->reserve_bytes)
                p->encoder_bytes += enc->ops->reserve_bytes(enc->ctx, &e->reserved[i]);
        }
        p->peak_bytes = p->engine_bytes + p->model_bytes + p->encoder_bytes;
    }
    *out = e;
    return GC_OK;
}

gc_status gc_engine_get_plan(const gc_engine *e, gc_engine_plan *out) {
    if (!e || !out) return gc_set_error(GC_ERR_INVALID_ARG, "engine plan: NULL argument");
    *out = e->plan;
    return GC_OK;
}

void gc_engine_free(gc_engine *e) {
    if (!e) return;
    free(e->chunks);
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
    return e && !e->bf16 ? (const float *)e->qreps : NULL;
}

const float *gc_engine_passage_reps(const gc_engine *e) {
    return e && !e->bf16 ? (const float *)e->preps : NULL;
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
    /* bf16 rows travel as floats of two elements each (create made sure d is even) */
    size_t d = (size_t)e->dim, b = (size_t)(B / e->size), w = e->bf16 ? d / 2 : d;
    const float *ql = e->qlocal, *pl = e->plocal;
    float *qg = e->qreps, *pg = e->preps;
    gc_status st = c->ops->all_gather(c->ctx, ql, b, w, qg);
    if (st == GC_OK) st = c->ops->all_gather(c->ctx, pl, b, w, pg);
    if (st == GC_OK && K > 0)
        st = c->ops->all_gather(c->ctx, pl + b * w, b * (size_t)K, w, pg + (size_t)B * w);
    return st == GC_OK ? GC_OK : wrap_error(st, "gathering representations");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Where an encoder writes the reps of local rows from `row`: in place when they are kept in
 * float, else the scratch, which rep_store then rounds into place. */
static float *rep_out(gc_engine *e, int side, int row) {
    if (e->bf16) return e->scratch;
    return (float *)(side == 0 ? e->qlocal : e->plocal) + (size_t)row * e->dim;
}

static void rep_store(gc_engine *e, int side, int row, int n) {
    if (!e->bf16) return;
    uint16_t *dst = (uint16_t *)(side == 0 ? e->qlocal : e->plocal) + (size_t)row * e->dim;
    gc_bf16_from_f32(dst, e->scratch, (size_t)n * e->dim);
}

/* d loss / d reps of examples [first, first + count) of a side (within the run [seg_first,
 * seg_first + seg_count)), computed for the whole window around them unless the last window
 * holds them already. */
static gc_status grad_rows(gc_engine *e, int side, int seg_first, int seg_count, int first,
                           int count, float scale, const float **out) {
    size_t d = (size_t)e->dim;
    if (e->gside == side && e->gscale == scale && first >= e->gfirst &&
        first + count <= e->gfirst + e->gcount) {
        *out = e->grad + (size_t)(first - e->gfirst) * d;
        return GC_OK;
    }
    int W = e->win[side];
    int w0 = seg_first + (first - seg_first) / W * W;
    int wn = seg_first + seg_count - w0 < W ? seg_first + seg_count - w0 : W;
    if (first + count > w0 + wn)
        return gc_set_error(GC_ERR_INTERNAL,
                            "engine step: examples [%d, %d) straddle the gradient window [%d, %d)",
                            first, first + count, w0, w0 + wn);
    gc_rep_view v = {e->qreps, e->preps, e->dim, e->bf16};
    double t0 = now_s();
    e->gside = -1;
    gc_status st =
        gc_matryoshka_rep_grad(&v, &e->cfg.matryoshka, side, w0, wn, scale, e->grad, e->ws);
    e->t_grad += now_s() - t0;
    if (st != GC_OK)
        return wrap_error(st, "loss gradient of side %d, examples [%d, %d)", side, w0, w0 + wn);
    e->gside = side, e->gfirst = w0, e->gcount = wn, e->gscale = scale;
    *out = e->grad + (size_t)(first - w0) * d;
    return GC_OK;
}

/* Pass 1 of one side: encode every chunk of this rank's share into the local buffer. */
static gc_status pass1(gc_engine *e, gc_encoder *enc, const void *inputs, int side, int chunk,
                       int B, int K, uint32_t step) {
    segment seg[2];
    int nseg = side_segments(e, side, B, K, seg);
    for (int s = 0; s < nseg; s++) {
        for (int c = 0; c < seg[s].count; c += chunk) {
            int n = seg[s].count - c < chunk ? seg[s].count - c : chunk;
            gc_encode_args a = {inputs, side, seg[s].first + c, n, 1, 0, e->cfg.seed, step};
            gc_status st = enc->ops->encode(enc->ctx, &a, rep_out(e, side, seg[s].local + c));
            if (st == GC_OK) rep_store(e, side, seg[s].local + c, n);
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
                       int B, int K, uint32_t step, float scale) {
    segment seg[2];
    int nseg = side_segments(e, side, B, K, seg);
    for (int s = 0; s < nseg; s++) {
        for (int c = 0; c < seg[s].count; c += chunk) {
            int n = seg[s].count - c < chunk ? seg[s].count - c : chunk;
            gc_encode_args a = {inputs, side, seg[s].first + c, n, 1, 0, e->cfg.seed, step};
            const float *grad = NULL;
            gc_status st = grad_rows(e, side, seg[s].first, seg[s].count, a.first, n, scale, &grad);
            if (st != GC_OK) return st;
            st = enc->ops->forward(enc->ctx, &a, e->scratch);
            if (st == GC_OK) st = enc->ops->backward(enc->ctx, &a, grad);
            if (st != GC_OK)
                return wrap_error(st, "pass 2, side %d, examples [%d, %d)", side, a.first,
                                  a.first + n);
        }
    }
    return GC_OK;
}

/* Memory-budget mode, pass 1: encode each chunk, except the kept ones (a suffix of the list),
 * which run forward into their slot. */
static gc_status pass1_planned(gc_engine *e, const void *queries, const void *passages, int n,
                               uint32_t step) {
    for (int i = 0; i < n; i++) {
        const chunk_ref *c = &e->chunks[i];
        gc_encoder *enc = c->side ? e->penc : e->qenc;
        float *local = rep_out(e, c->side, c->local);
        gc_encode_args a = {c->side ? passages : queries, c->side,     c->first, c->count, 1,
                            c->slot < 0 ? 0 : c->slot,    e->cfg.seed, step};
        gc_status st = c->slot < 0 ? enc->ops->encode(enc->ctx, &a, local)
                                   : enc->ops->forward(enc->ctx, &a, local);
        if (st == GC_OK) rep_store(e, c->side, c->local, c->count);
        if (st != GC_OK)
            return wrap_error(st, "pass 1, side %d, examples [%d, %d)", c->side, a.first,
                              a.first + a.count);
    }
    return GC_OK;
}

/* Memory-budget mode, pass 2: back-propagate the kept chunks (last first: the last chunk of
 * pass 1 is the first of pass 2), then re-encode the others in slot 0, which is free by then. */
static gc_status pass2_planned(gc_engine *e, const void *queries, const void *passages, int n,
                               int kept, uint32_t step, float scale) {
    for (int k = 0; k < n; k++) {
        int i = k < kept ? n - 1 - k : k - kept;
        const chunk_ref *c = &e->chunks[i];
        gc_encoder *enc = c->side ? e->penc : e->qenc;
        const float *grad = NULL;
        gc_encode_args a = {c->side ? passages : queries, c->side,     c->first, c->count, 1,
                            c->slot < 0 ? 0 : c->slot,    e->cfg.seed, step};
        gc_status st =
            grad_rows(e, c->side, c->seg_first, c->seg_count, c->first, c->count, scale, &grad);
        if (st != GC_OK) return st;
        if (c->slot < 0) st = enc->ops->forward(enc->ctx, &a, e->scratch);
        if (st == GC_OK) st = enc->ops->backward(enc->ctx, &a, grad);
        if (st != GC_OK)
            return wrap_error(st, "pass 2, side %d, examples [%d, %d)", c->side, a.first,
                              a.first + a.count);
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
    gc_status st = enc->ops->forward(enc->ctx, a, rep_out(e, side, 0));
    if (st == GC_OK) rep_store(e, side, 0, a->count);
    return st == GC_OK ? GC_OK
                       : wrap_error(st, "no-cache forward, side %d, examples [%d, %d)", side,
                                    a->first, a->first + a->count);
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
    if (gc_matryoshka_stats_workspace_size(B, P, d, b, e->size > 1, &e->cfg.loss,
                                           &e->cfg.matryoshka) > e->ws_size)
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
    int nchunks = 0, kept = 0;
    if (e->chunks) {
        nchunks = list_chunks(e, B, K, e->cfg.query_chunk, e->cfg.passage_chunk, NULL);
        if (nchunks > e->max_chunks)
            return gc_set_error(GC_ERR_INTERNAL, "engine step: %d chunks exceed the %d planned",
                                nchunks, e->max_chunks);
        list_chunks(e, B, K, e->cfg.query_chunk, e->cfg.passage_chunk, e->chunks);
        kept = assign_slots(e->chunks, nchunks, e->shared, e->plan.slots);
    }
    double t0 = now_s(), t_enc = 0, t_gather = 0, t_loss = 0, t_scatter = 0, t_reduce = 0;
    if (e->chunks) {
        st = pass1_planned(e, queries, passages, nchunks, step);
    } else if (e->cfg.no_cache) {
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
    gc_rep_view view = {e->qreps, e->preps, d, e->bf16};
    e->gside = -1; /* this step's statistics: no window computed yet */
    st = gc_matryoshka_stats(&view, B, P, d, &e->cfg.loss, &e->cfg.matryoshka, &shard, &lo, e->ws);
    if (st != GC_OK) return wrap_error(st, "loss over B=%d, P=%d", B, P);
    double t3 = now_s();
    t_loss = t3 - t2;

    e->t_grad = 0;
    if (e->chunks) {
        st = pass2_planned(e, queries, passages, nchunks, kept, step, loss_scale);
    } else if (e->cfg.no_cache) {
        const float *g = NULL;
        st = grad_rows(e, 0, qa.first, qa.count, qa.first, qa.count, loss_scale, &g);
        if (st == GC_OK && (st = e->qenc->ops->backward(e->qenc->ctx, &qa, g)) != GC_OK)
            st = wrap_error(st, "no-cache backward, side %d", 0);
        if (st == GC_OK)
            st = grad_rows(e, 1, pa.first, pa.count, pa.first, pa.count, loss_scale, &g);
        if (st == GC_OK && (st = e->penc->ops->backward(e->penc->ctx, &pa, g)) != GC_OK)
            st = wrap_error(st, "no-cache backward, side %d", 1);
    } else {
        st = pass2(e, e->qenc, queries, 0, e->cfg.query_chunk, B, K, step, loss_scale);
        if (st == GC_OK)
            st = pass2(e, e->penc, passages, 1, e->cfg.passage_chunk, B, K, step, loss_scale);
    }
    if ((st = gc_comm_agree(&e->comm, st)) != GC_OK) return st;
    double t5 = now_s();
    t_enc += t5 - t3 - e->t_grad;
    t_loss += e->t_grad;

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

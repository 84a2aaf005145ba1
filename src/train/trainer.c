/* trainer.c: the training loop of the library (gc_trainer_*).
 *
 * Everything that decides the numbers of a run lives here: the data order with its
 * false-negative grouping, micro-batch accumulation over engine steps, the global gradient
 * norm and clipping, the learning-rate schedule, the optimizer step of the parameters (through
 * the encoders' parameter stores) and of the learnable log-temperature, and the checkpoint with
 * the fingerprint a resumed run must match. A step's batch is only a list of pair indices: the
 * gather wrapper (batch.c) collects each chunk's token ids from the caller's tokenized data. */
#include "gc_train.h"
#include "train/batch.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct gc_trainer {
    gc_trainer_config cfg;
    gc_train_data data;
    gc_encoder *enc[2]; /* query, passage (the same when shared) */
    int nenc;           /* 1 shared, 2 towers */
    batch_gather gather[2];
    gc_encoder genc[2];
    gc_engine *engine;
    gc_optim *topt; /* log(tau), when learned */
    float log_tau;
    int mb; /* pairs per micro-batch */
    gc_trainer_info info;
    /* data order */
    int32_t *qgroup, *pgroup;
    gc_pair_groups groups;
    int32_t *order;
    size_t nbatches;
    uint64_t order_epoch; /* the epoch `order` holds */
    uint64_t step, epoch, position;
    char *fingerprint;
    float *host; /* checkpoint copies: parameters, then optimizer state (first save) */
    size_t host_size;
    int host_current; /* host holds the state as it is now (cleared by a step or resume) */
};

/* Re-record the current error with a prefix. */
static gc_status wrap(gc_status st, const char *what) {
    char inner[512];
    snprintf(inner, sizeof inner, "%s", gc_last_error());
    return gc_set_error(st, "%s: %s", what, inner);
}

static gc_param_store store_of(const gc_trainer *t, int i) {
    return gc_encoder_store(t->enc[i]);
}

/* Values of a part over every store: parameters (GC_PART_PARAMS) or optimizer state. */
static size_t total(const gc_trainer *t, gc_param_part part) {
    size_t n = 0;
    for (int i = 0; i < t->nenc; i++) {
        gc_param_store s = store_of(t, i);
        n += part == GC_PART_OPTIM ? s.ops->optim_state_size(s.ctx) : s.ops->num_params(s.ctx);
    }
    return n;
}

/* ---- data: checksum, groups, order ---- */

static uint32_t crc_text(uint32_t c, const char *s) {
    return (uint32_t)crc32(c, (const Bytef *)s, (uInt)strlen(s) + 1);
}

static uint32_t data_crc(const gc_train_data *d) {
    uint32_t c = (uint32_t)crc32(0L, Z_NULL, 0);
    for (size_t i = 0; i < d->n; i++) {
        c = crc_text(c, d->query_text[i]);
        c = crc_text(c, d->positive_text[i]);
        for (int k = 0; k < d->K; k++) c = crc_text(c, d->negative_text[i * (size_t)d->K + k]);
    }
    return c;
}

/* Group equal texts: queries, and positives with hard negatives in one id space, so that a hard
 * negative equal to some pair's positive is seen as that positive. */
static gc_status group_texts(gc_trainer *t) {
    const gc_train_data *d = &t->data;
    const size_t n = d->n, K = (size_t)d->K, np = n * (1 + K);
    if (np / (1 + K) != n || np > INT32_MAX)
        return gc_set_error(GC_ERR_INVALID_ARG, "trainer: too many texts (%zu pairs)", n);
    t->qgroup = malloc((n ? n : 1) * sizeof(int32_t));
    t->pgroup = malloc((np ? np : 1) * sizeof(int32_t));
    const char **texts = malloc((np ? np : 1) * sizeof(char *));
    unsigned char *seen = NULL;
    gc_status st = GC_ERR_NOMEM;
    size_t nq = 0, npass = 0;
    if (!t->qgroup || !t->pgroup || !texts) goto done;
    for (size_t i = 0; i < n; i++) texts[i] = d->query_text[i];
    if ((st = gc_text_groups(texts, n, t->qgroup, &nq)) != GC_OK) goto done;
    for (size_t i = 0; i < n; i++) {
        texts[i] = d->positive_text[i];
        for (size_t k = 0; k < K; k++) texts[n + i * K + k] = d->negative_text[i * K + k];
    }
    if ((st = gc_text_groups(texts, np, t->pgroup, &npass)) != GC_OK) goto done;
    st = GC_ERR_NOMEM;
    if (!(seen = calloc(npass ? npass : 1, 1))) goto done;
    for (size_t i = 0; i < n; i++) {
        t->info.distinct_positives += !seen[t->pgroup[i]];
        seen[t->pgroup[i]] = 1;
        int same = 0;
        for (size_t k = 0; k < K; k++) same |= t->pgroup[n + i * K + k] == t->pgroup[i];
        if (same && t->info.self_negatives++ == 0) t->info.first_self_negative = i;
    }
    t->groups = (gc_pair_groups){t->qgroup, nq, t->pgroup, K ? t->pgroup + n : NULL, (int)K, npass};
    st = GC_OK;
done:
    free(texts);
    free(seen);
    return st == GC_ERR_NOMEM ? gc_set_error(st, "trainer: out of memory grouping %zu texts", np)
                              : st;
}

static gc_status order_epoch(gc_trainer *t, uint64_t epoch) {
    gc_status st = gc_epoch_order_pairs(&t->groups, t->data.n, (size_t)t->cfg.batch, t->cfg.seed,
                                        epoch, t->order, &t->nbatches);
    if (st != GC_OK) return wrap(st, "trainer: ordering the data");
    t->order_epoch = epoch;
    if (t->nbatches == 0)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "trainer: epoch %llu has no full batch of %d pairs without duplicate "
                            "texts",
                            (unsigned long long)epoch, t->cfg.batch);
    return GC_OK;
}

/* ---- the fingerprint a checkpoint must agree with ---- */

/* `caller` is the caller's own record (cfg->fingerprint), which t->cfg does not keep. */
static gc_status make_fingerprint(gc_trainer *t, const char *caller) {
    const gc_trainer_config *c = &t->cfg;
    char buf[2048];
    int len = snprintf(
        buf, sizeof buf,
        "data_pairs=%zu\ndata_crc=%08x\nnum_params=%zu\nbatch_size=%d\naccumulation_steps=%d\n"
        "negatives=%d\noptimizer=%s\nlr=%.9g\nweight_decay=%.9g\nwarmup=%llu\nschedule=%s\n"
        "max_grad_norm=%.9g\ntemperature=%.9g\nlearn_temperature=%d\nsymmetric=%d\ncosine=%d\n"
        "seed=%llu\n",
        t->data.n, data_crc(&t->data), total(t, GC_PART_PARAMS), c->batch, c->accumulation,
        t->data.K, c->optim.kind == GC_OPTIM_SGD ? "sgd" : "adamw", (double)c->lr,
        (double)c->optim.weight_decay, (unsigned long long)c->warmup,
        c->schedule == GC_SCHED_CONSTANT ? "constant" : "linear", c->max_grad_norm,
        (double)c->loss.temperature, c->learn_temperature, c->loss.symmetric, c->loss.cosine,
        (unsigned long long)c->seed);
    if (c->matryoshka.count > 0 && len > 0 && (size_t)len < sizeof buf) { /* only when on, so
                                                                           older runs resume */
        len += snprintf(buf + len, sizeof buf - (size_t)len, "matryoshka=");
        len += gc_matryoshka_format(&c->matryoshka, buf + len, sizeof buf - (size_t)len);
        len += snprintf(buf + len, sizeof buf - (size_t)len, "\n");
    }
    size_t extra = caller ? strlen(caller) : 0;
    t->fingerprint = malloc((size_t)len + extra + 2);
    if (!t->fingerprint) return gc_set_error(GC_ERR_NOMEM, "trainer: out of memory");
    memcpy(t->fingerprint, buf, (size_t)len);
    if (extra) memcpy(t->fingerprint + len, caller, extra);
    t->fingerprint[len + extra] = 0;
    if (extra && caller[extra - 1] != '\n') strcat(t->fingerprint, "\n");
    return GC_OK;
}

/* The first line that differs between a checkpoint's fingerprint and this run's. */
static gc_status check_fingerprint(const char *have, const char *want, const char *path) {
    const char *a = have, *b = want;
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0)
            return gc_set_error(GC_ERR_INVALID_ARG,
                                "%s was written with %.*s but this run has %.*s; resume with the "
                                "same options",
                                path, (int)la, a, (int)lb, b);
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    return GC_OK;
}

/* ---- create ---- */

/* A checksum of what must match on every rank besides the data: the options that decide the
 * numbers and the encoders' sizes. */
static uint32_t run_crc(const gc_trainer_config *c, const gc_encoder *const enc[2]) {
    uint64_t v[12] = {(uint64_t)c->batch,
                      (uint64_t)c->accumulation,
                      (uint64_t)c->no_cache,
                      (uint64_t)c->loss.symmetric,
                      (uint64_t)c->loss.cosine,
                      (uint64_t)c->learn_temperature,
                      c->steps,
                      c->epochs,
                      c->seed,
                      0,
                      0,
                      0};
    memcpy(&v[9], &c->lr, sizeof c->lr);
    memcpy(&v[10], &c->loss.temperature, sizeof c->loss.temperature);
    for (int i = 0; i < 2; i++)
        if (enc[i] && enc[i]->ops && enc[i]->ops->store) {
            gc_param_store s = gc_encoder_store(enc[i]);
            if (s.ops && s.ops->num_params) v[11] = v[11] * 1000003u + s.ops->num_params(s.ctx);
        }
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)v, (uInt)sizeof v);
    return c->fingerprint ? crc_text(crc, c->fingerprint) : crc;
}

/* Several ranks: every rank must train on the same data with the same options and model. Each
 * contributes checksums of its data and of the rest; a rank whose checksums differ from rank
 * 0's is named (every rank returns the same error). Called before anything that depends on
 * them, so no rank fails alone before it. */
static gc_status check_same_run(const gc_comm *comm, const gc_trainer_config *c,
                                const gc_encoder *const enc[2], const gc_train_data *d) {
    const int size = gc_comm_size(comm), rank = gc_comm_rank(comm);
    if (size <= 1) return GC_OK;
    gc_status st = gc_comm_check(comm, "trainer");
    if (st != GC_OK) return st;
    double *crc = calloc(2 * (size_t)size, sizeof(double));
    if (!crc) return gc_set_error(GC_ERR_NOMEM, "trainer: out of memory");
    const int usable = d && d->query_text && d->positive_text && (d->K == 0 || d->negative_text);
    crc[rank] = usable ? (double)data_crc(d) : 0.0;
    crc[size + rank] = (double)run_crc(c, enc);
    st = comm->ops->all_reduce_f64(comm->ctx, crc, 2 * (size_t)size, GC_COMM_SUM);
    for (int r = 1; st == GC_OK && r < size; r++)
        if (crc[r] != crc[0])
            st = gc_set_error(GC_ERR_INVALID_ARG,
                              "the training data differs on rank %d (checksum %08lx, rank 0 has "
                              "%08lx): every rank must read the same data",
                              r, (unsigned long)crc[r], (unsigned long)crc[0]);
        else if (crc[size + r] != crc[size])
            st = gc_set_error(GC_ERR_INVALID_ARG,
                              "the options or the model differ on rank %d: every rank must run "
                              "the same command on the same model",
                              r);
    free(crc);
    return st;
}

static gc_status check_config(const gc_trainer_config *c, const gc_train_data *d) {
    if (c->batch < 1 || c->accumulation < 1 || c->batch % c->accumulation)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "trainer: batch %d must be >= 1 and a multiple of the accumulation "
                            "steps %d",
                            c->batch, c->accumulation);
    int choose = c->memory_budget > 0 && c->query_chunk == 0 && c->passage_chunk == 0;
    if ((!choose && (c->query_chunk < 1 || c->passage_chunk < 1)) || c->max_len < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "trainer: chunk sizes and max_len must be >= 1");
    if (!(c->lr >= 0) || !isfinite(c->lr) || !(c->max_grad_norm >= 0) ||
        !isfinite(c->max_grad_norm))
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "trainer: lr and max_grad_norm must be finite and >= 0");
    if (c->steps == 0 && c->epochs == 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "trainer: give steps or epochs");
    if (!d || !d->query_text || !d->positive_text || d->K < 0 || (d->K > 0 && !d->negative_text))
        return gc_set_error(GC_ERR_INVALID_ARG, "trainer: training data without texts");
    if (d->n > INT32_MAX || (size_t)d->queries.n != d->n || (size_t)d->positives.n != d->n ||
        (d->K > 0 && (size_t)d->negatives.n != d->n * (size_t)d->K))
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "trainer: %zu pairs but %d queries, %d positives, %d negatives", d->n,
                            d->queries.n, d->positives.n, d->negatives.n);
    if ((size_t)c->batch > d->n)
        return gc_set_error(GC_ERR_INVALID_ARG, "batch size %d is larger than the data (%zu pairs)",
                            c->batch, d->n);
    if ((double)(c->batch / c->accumulation) * (1.0 + d->K) > (double)INT_MAX / 4)
        return gc_set_error(GC_ERR_INVALID_ARG, "batch size %d with %d negatives is too large",
                            c->batch, d->K);
    return GC_OK;
}

gc_status gc_trainer_create(gc_trainer **out, const gc_trainer_config *cfg, gc_encoder *encoder,
                            gc_encoder *passage_encoder, const gc_train_data *data,
                            const gc_comm *comm) {
    if (!out) return gc_set_error(GC_ERR_INVALID_ARG, "trainer: NULL output");
    *out = NULL;
    if (!cfg) return gc_set_error(GC_ERR_INVALID_ARG, "trainer: NULL config");
    const gc_encoder *const encs[2] = {encoder, passage_encoder};
    gc_status st = check_same_run(comm, cfg, encs, data);
    if (st != GC_OK) return st;
    if ((st = check_config(cfg, data)) != GC_OK) return st;
    const int ranks = gc_comm_size(comm);
    if ((cfg->batch / cfg->accumulation) % ranks != 0)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "batch size %d (micro-batches of %d) does not split evenly over %d "
                            "ranks",
                            cfg->batch, cfg->batch / cfg->accumulation, ranks);
    if ((st = gc_encoder_check(encoder, "trainer")) != GC_OK) return st;
    if (passage_encoder && passage_encoder != encoder &&
        (st = gc_encoder_check(passage_encoder, "trainer: passage")) != GC_OK)
        return st;
    gc_trainer *t = calloc(1, sizeof *t);
    if (!t) return gc_set_error(GC_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *cfg;
    t->cfg.fingerprint = NULL;
    t->data = *data;
    t->enc[0] = encoder;
    t->enc[1] = passage_encoder ? passage_encoder : encoder;
    t->nenc = t->enc[1] == t->enc[0] ? 1 : 2;
    t->mb = cfg->batch / cfg->accumulation;
    const int K = data->K, P = t->mb * (1 + K);
    const size_t n = data->n;

    /* the data order: groups, the length of the run, epoch 0 */
    if ((st = group_texts(t)) != GC_OK) goto fail;
    if (!(t->order = malloc(n * sizeof(int32_t)))) {
        st = gc_set_error(GC_ERR_NOMEM, "trainer: out of memory");
        goto fail;
    }
    if (cfg->steps) {
        t->info.total_steps = cfg->steps;
    } else {
        for (uint64_t e = 0; e < cfg->epochs; e++) {
            st = gc_epoch_order_pairs(&t->groups, n, (size_t)cfg->batch, cfg->seed, e, t->order,
                                      &t->nbatches);
            if (st != GC_OK) goto fail;
            t->info.total_steps += t->nbatches;
        }
    }
    st = gc_epoch_order_pairs(&t->groups, n, (size_t)cfg->batch, cfg->seed, 0, t->order,
                              &t->nbatches);
    if (st != GC_OK) goto fail;
    t->order_epoch = 0;
    t->info.batches_epoch0 = t->nbatches;
    if (t->nbatches == 0 && t->info.distinct_positives < (size_t)cfg->batch) {
        st = gc_set_error(GC_ERR_INVALID_ARG,
                          "batch size %d is larger than the data: %zu distinct positives among "
                          "%zu pairs",
                          cfg->batch, t->info.distinct_positives, n);
        goto fail;
    }
    if (t->nbatches == 0) {
        st = gc_set_error(GC_ERR_INVALID_ARG,
                          "batch size %d: the data has no batch of that size without a repeated "
                          "query or a hard negative equal to another pair's positive",
                          cfg->batch);
        goto fail;
    }

    /* the encoders behind the gather wrappers, and the engine (which reserves for them) */
    for (int i = 0; i < t->nenc; i++) {
        if ((st = batch_gather_init(&t->gather[i], *t->enc[i], P)) != GC_OK) goto fail;
        t->genc[i] = batch_gather_encoder(&t->gather[i]);
    }
    t->info.micro_batch = t->mb;
    t->info.query_chunk = cfg->query_chunk < t->mb ? cfg->query_chunk : t->mb;
    t->info.passage_chunk = cfg->passage_chunk < P ? cfg->passage_chunk : P;
    gc_engine_config ec = {
        .max_batch = t->mb,
        .max_negatives = K,
        .query_chunk = t->info.query_chunk,
        .passage_chunk = t->info.passage_chunk,
        .no_cache = cfg->no_cache,
        .max_len = cfg->max_len,
        .loss = cfg->loss,
        .learn_temperature = cfg->learn_temperature,
        .seed = cfg->seed,
        .matryoshka = cfg->matryoshka,
        .memory_budget = cfg->memory_budget,
        .reps_bf16 = cfg->reps_bf16,
    };
    st = gc_engine_create(&t->engine, &ec, &t->genc[0], t->nenc == 2 ? &t->genc[1] : &t->genc[0],
                          comm);
    if (st != GC_OK) goto fail;
    if ((st = gc_engine_get_plan(t->engine, &t->info.plan)) != GC_OK) goto fail;
    if (cfg->memory_budget > 0) { /* the planner's chunk sizes */
        t->info.query_chunk = t->info.plan.query_chunk;
        t->info.passage_chunk = t->info.plan.passage_chunk;
    }

    /* optimizers: the parameters' in their stores, log(tau)'s here */
    for (int i = 0; i < t->nenc; i++) {
        gc_param_store s = store_of(t, i);
        st =
            s.ops->optim_init(s.ctx, &cfg->optim, cfg->decay ? cfg->decay : gc_optim_default_decay);
        if (st != GC_OK) goto fail;
    }
    t->log_tau = logf(cfg->loss.temperature);
    if (cfg->learn_temperature) {
        gc_optim_config tc = cfg->optim;
        tc.weight_decay = 0;
        if ((st = gc_optim_create(&t->topt, &tc, 1)) != GC_OK) goto fail;
    }
    if ((st = make_fingerprint(t, cfg->fingerprint)) != GC_OK) goto fail;
    *out = t;
    return GC_OK;
fail:
    gc_trainer_free(t);
    return st;
}

void gc_trainer_free(gc_trainer *t) {
    if (!t) return;
    gc_engine_free(t->engine);
    gc_optim_free(t->topt);
    for (int i = 0; i < 2; i++) batch_gather_free(&t->gather[i]);
    free(t->qgroup);
    free(t->pgroup);
    free(t->order);
    free(t->fingerprint);
    free(t->host);
    free(t);
}

const gc_trainer_info *gc_trainer_get_info(const gc_trainer *t) {
    return t ? &t->info : NULL;
}

uint64_t gc_trainer_steps_done(const gc_trainer *t) {
    return t ? t->step : 0;
}

void gc_trainer_position(const gc_trainer *t, uint64_t *epoch, uint64_t *position) {
    if (epoch) *epoch = t ? t->epoch : 0;
    if (position) *position = t ? t->position : 0;
}

float gc_trainer_temperature(const gc_trainer *t) {
    return t ? expf(t->log_tau) : 0.0f;
}

int gc_trainer_encode_batch(const gc_trainer *t) {
    if (!t) return 0;
    int q = gc_engine_reserved_count(t->engine, 0), p = gc_engine_reserved_count(t->engine, 1);
    return q < p ? q : p;
}

/* ---- a step ---- */

gc_status gc_trainer_step_batch(gc_trainer *t, const int32_t *pairs, gc_train_stats *stats) {
    if (!t || !pairs) return gc_set_error(GC_ERR_INVALID_ARG, "trainer step: NULL argument");
    const gc_trainer_config *c = &t->cfg;
    const gc_train_data *d = &t->data;
    for (int i = 0; i < c->batch; i++)
        if (pairs[i] < 0 || (size_t)pairs[i] >= d->n)
            return gc_set_error(GC_ERR_INVALID_ARG, "trainer step: pair %d of %zu", (int)pairs[i],
                                d->n);
    t->host_current = 0; /* the parameters may change from here on */
    if (c->learn_temperature) gc_engine_set_temperature(t->engine, expf(t->log_tau));
    double loss = 0, acc = 0, dlt = 0;
    for (int micro = 0; micro < c->accumulation; micro++) {
        const int32_t *idx = pairs + (size_t)micro * (size_t)t->mb;
        batch_side qb = {&d->queries, NULL, idx, t->mb, 0};
        batch_side pb = {&d->positives, d->K > 0 ? &d->negatives : NULL, idx, t->mb, d->K};
        gc_step_options so = {.accumulate = micro > 0, .loss_scale = 1.0f / (float)c->accumulation};
        gc_step_stats es;
        uint32_t rng_step = (uint32_t)(t->step * (uint64_t)c->accumulation + (uint64_t)micro);
        gc_status st = gc_engine_step_opts(t->engine, &qb, &pb, t->mb, d->K, rng_step, &so, &es);
        if (st != GC_OK) return st;
        loss += es.loss / c->accumulation;
        acc += es.accuracy / c->accumulation;
        dlt += es.dlog_tau; /* already scaled by loss_scale */
    }
    /* the global norm: every store's gradients and d loss / d log(tau) together */
    float dlt_f = (float)dlt;
    double sq = 0;
    for (int i = 0; i < t->nenc; i++) {
        gc_param_store s = store_of(t, i);
        double part;
        gc_status st = s.ops->grad_sq_norm(s.ctx, &part);
        if (st != GC_OK) return wrap(st, "trainer step: gradient norm");
        sq += part;
    }
    if (c->learn_temperature) sq += (double)dlt_f * dlt_f;
    const double gnorm = sqrt(sq);
    if (!isfinite(loss) || !isfinite(gnorm))
        return gc_set_error(
            GC_ERR_NUMERIC, "step %llu: the loss is %s (gradient norm %g): training diverged",
            (unsigned long long)t->step + 1, isfinite(loss) ? "finite" : "not finite", gnorm);
    const float scale = gc_clip_scale(gnorm, c->max_grad_norm);
    const float lr = gc_lr_at(c->schedule, c->lr, t->step, c->warmup, t->info.total_steps);
    for (int i = 0; i < t->nenc; i++) {
        gc_param_store s = store_of(t, i);
        gc_status st = s.ops->optim_step(s.ctx, lr, scale);
        if (st != GC_OK) return wrap(st, "trainer step: optimizer");
    }
    if (t->topt) gc_optim_step(t->topt, &t->log_tau, &dlt_f, lr, scale);
    t->step++;
    if (stats) {
        stats->step = t->step;
        stats->epoch = t->epoch;
        stats->loss = loss;
        stats->accuracy = acc;
        stats->grad_norm = gnorm;
        stats->lr = lr;
        stats->temperature = expf(t->log_tau);
    }
    return GC_OK;
}

gc_status gc_trainer_step(gc_trainer *t, gc_train_stats *stats) {
    if (!t) return gc_set_error(GC_ERR_INVALID_ARG, "trainer step: NULL trainer");
    gc_status st;
    if (t->order_epoch != t->epoch && (st = order_epoch(t, t->epoch)) != GC_OK) return st;
    if (t->position >= t->nbatches) {
        t->epoch++;
        t->position = 0;
        if ((st = order_epoch(t, t->epoch)) != GC_OK) return st;
    }
    st = gc_trainer_step_batch(t, t->order + t->position * (size_t)t->cfg.batch, stats);
    if (st != GC_OK) return st;
    t->position++;
    return GC_OK;
}

/* ---- checkpoints ---- */

/* Copy every store's parameters and optimizer state into the host buffer, unless it already
 * holds them (a check_finite followed by a save copies once). */
static gc_status to_host(gc_trainer *t) {
    size_t np = total(t, GC_PART_PARAMS), ns = total(t, GC_PART_OPTIM);
    if (t->host_current) return GC_OK;
    if (!t->host || t->host_size < np + ns) {
        free(t->host);
        t->host_size = 0;
        if (!(t->host = malloc((np + ns ? np + ns : 1) * sizeof(float))))
            return gc_set_error(GC_ERR_NOMEM, "trainer: out of memory for a checkpoint copy");
        t->host_size = np + ns;
    }
    size_t po = 0, so = np;
    for (int i = 0; i < t->nenc; i++) {
        gc_param_store s = store_of(t, i);
        size_t n = s.ops->num_params(s.ctx), m = s.ops->optim_state_size(s.ctx);
        gc_status st = s.ops->read(s.ctx, GC_PART_PARAMS, 0, n, t->host + po);
        if (st == GC_OK) st = s.ops->read(s.ctx, GC_PART_OPTIM, 0, m, t->host + so);
        if (st != GC_OK) return wrap(st, "trainer: copying the state to host memory");
        po += n, so += m;
    }
    t->host_current = 1;
    return GC_OK;
}

static int all_finite(const float *x, size_t n) {
    int bad = 0;
#pragma omp parallel for reduction(| : bad)
    for (long i = 0; i < (long)n; i++) bad |= !isfinite(x[i]);
    return !bad;
}

gc_status gc_trainer_check_finite(gc_trainer *t) {
    if (!t) return gc_set_error(GC_ERR_INVALID_ARG, "trainer: NULL trainer");
    gc_status st = to_host(t);
    if (st != GC_OK) return st;
    if (!all_finite(t->host, total(t, GC_PART_PARAMS)) || !isfinite(t->log_tau))
        return gc_set_error(GC_ERR_NUMERIC, "step %llu: parameters are not finite",
                            (unsigned long long)t->step);
    return GC_OK;
}

gc_status gc_trainer_save(gc_trainer *t, const char *path) {
    if (!t || !path) return gc_set_error(GC_ERR_INVALID_ARG, "trainer save: NULL argument");
    gc_status st = gc_trainer_check_finite(t);
    if (st != GC_OK) return st;
    const float *p = t->host, *s = t->host + total(t, GC_PART_PARAMS);
    gc_param_store s0 = store_of(t, 0);
    gc_checkpoint ck = {
        .step = t->step,
        .epoch = t->epoch,
        .position = t->position,
        .seed = t->cfg.seed,
        .args = t->fingerprint,
        .num_params = total(t, GC_PART_PARAMS),
        .params = p,
        .optim_step = s0.ops->optim_get_step(s0.ctx),
        .state_size = total(t, GC_PART_OPTIM),
        .state = s,
        .log_tau = t->log_tau,
        .tau_step = t->topt ? gc_optim_get_step(t->topt) : 0,
        .tau_state_size = t->topt ? gc_optim_state_size(t->topt) : 0,
        .tau_state = t->topt ? gc_optim_state(t->topt) : NULL,
    };
    st = gc_checkpoint_write(path, &ck);
    return st == GC_OK ? GC_OK : wrap(st, "writing the checkpoint");
}

/* The longest run a checkpoint can come from (the command line's --steps allows 10^15). */
#define MAX_RUN_STEPS 1000000000000000ull

/* What the crc cannot tell: fields that no run of this data can have written. Checked before
 * anything is restored, so a refused checkpoint leaves the trainer as it was. */
static gc_status check_checkpoint(gc_trainer *t, const gc_checkpoint *ck, const char *path) {
    if (ck->step > MAX_RUN_STEPS || ck->epoch > ck->step || ck->position > ck->step ||
        ck->optim_step > ck->step || ck->tau_step > ck->step)
        return gc_set_error(GC_ERR_FORMAT,
                            "%s: impossible position: step %llu, epoch %llu, batch %llu, optimizer "
                            "steps %llu/%llu",
                            path, (unsigned long long)ck->step, (unsigned long long)ck->epoch,
                            (unsigned long long)ck->position, (unsigned long long)ck->optim_step,
                            (unsigned long long)ck->tau_step);
    if (ck->seed != t->cfg.seed)
        return gc_set_error(GC_ERR_FORMAT, "%s: seed %llu, this run has %llu", path,
                            (unsigned long long)ck->seed, (unsigned long long)t->cfg.seed);
    if (!all_finite(ck->params, ck->num_params) || !all_finite(ck->state, ck->state_size) ||
        !isfinite(ck->log_tau) || !all_finite(ck->tau_state, ck->tau_state_size))
        return gc_set_error(GC_ERR_NUMERIC,
                            "%s: holds non-finite parameters or optimizer state; not resuming",
                            path);
    if (t->cfg.optim.kind == GC_OPTIM_ADAMW) {
        /* every store's state is its first moments, then its second moments (never negative) */
        size_t so = 0;
        for (int i = 0; i < t->nenc; i++) {
            gc_param_store s = store_of(t, i);
            size_t m = s.ops->optim_state_size(s.ctx);
            for (size_t j = so + m / 2; j < so + m; j++)
                if (ck->state[j] < 0)
                    return gc_set_error(GC_ERR_FORMAT,
                                        "%s: a negative second moment (value %zu of the optimizer "
                                        "state)",
                                        path, j);
            so += m;
        }
        if (ck->tau_state_size == 2 && ck->tau_state[1] < 0)
            return gc_set_error(GC_ERR_FORMAT, "%s: a negative second moment of log(tau)", path);
    }
    /* the batch index must lie within its epoch's order (== its length: the epoch is done) */
    gc_status st = order_epoch(t, ck->epoch);
    if (st != GC_OK) return st;
    if (ck->position > t->nbatches)
        return gc_set_error(GC_ERR_FORMAT, "%s: batch %llu of epoch %llu, which has %zu batches",
                            path, (unsigned long long)ck->position, (unsigned long long)ck->epoch,
                            t->nbatches);
    return GC_OK;
}

gc_status gc_trainer_resume(gc_trainer *t, const char *path) {
    if (!t || !path) return gc_set_error(GC_ERR_INVALID_ARG, "trainer resume: NULL argument");
    t->host_current = 0;
    gc_checkpoint ck;
    gc_status st = gc_checkpoint_read(path, &ck);
    if (st != GC_OK) return st;
    st = check_fingerprint(ck.args, t->fingerprint, path);
    if (st == GC_OK &&
        (ck.num_params != total(t, GC_PART_PARAMS) || ck.state_size != total(t, GC_PART_OPTIM) ||
         ck.tau_state_size != (t->topt ? gc_optim_state_size(t->topt) : 0)))
        st = gc_set_error(GC_ERR_INVALID_ARG, "%s does not match this model and optimizer", path);
    if (st == GC_OK) st = check_checkpoint(t, &ck, path);
    size_t po = 0, so = 0;
    for (int i = 0; st == GC_OK && i < t->nenc; i++) {
        gc_param_store s = store_of(t, i);
        size_t n = s.ops->num_params(s.ctx), m = s.ops->optim_state_size(s.ctx);
        st = s.ops->write(s.ctx, GC_PART_PARAMS, 0, n, ck.params + po);
        if (st == GC_OK) st = s.ops->write(s.ctx, GC_PART_OPTIM, 0, m, ck.state + so);
        s.ops->optim_set_step(s.ctx, ck.optim_step);
        po += n, so += m;
    }
    if (st == GC_OK) {
        if (t->topt) {
            if (ck.tau_state_size)
                memcpy(gc_optim_state(t->topt), ck.tau_state, ck.tau_state_size * sizeof(float));
            gc_optim_set_step(t->topt, ck.tau_step);
        }
        t->log_tau = ck.log_tau;
        t->step = ck.step;
        t->epoch = ck.epoch;
        t->position = ck.position;
    }
    gc_checkpoint_free(&ck);
    return st;
}

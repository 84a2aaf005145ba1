/* train.c: the `train` subcommand: contrastive fine-tuning with the gradient-cache engine.
 *
 * Everything is prepared before the first step: the data is tokenized once, the epoch order
 * comes from (seed, epoch), and the engine, model activations and optimizer are allocated. A
 * step's batch is only a list of pair indices: the encoder wrapper (batch.c) gathers each
 * chunk's token ids from the tokenized data, so no copy of the batch's tokens is made. A checkpoint
 * holds the parameters, optimizer moments, temperature and the position in the data order, so
 * --resume continues exactly where the run stopped (bit for bit with one thread). */
#include "cli.h"
#include "fsutil.h"
#include "gc_eval.h"
#include "gc_io.h"
#include "gc_optim.h"
#include "gc_train.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static const char TRAIN_HELP[] =
    "Usage: gradcache train --model DIR --train FILE --out DIR [options]\n"
    "\n"
    "Fine-tune a BERT-family embedding model on query/positive pairs with the InfoNCE loss over\n"
    "in-batch negatives (cosine similarity / temperature, like sentence-transformers'\n"
    "MultipleNegativesRankingLoss). Gradient Cache makes the gradient of a large batch exact\n"
    "while only one chunk's activations are in memory. One encoder is shared by queries and\n"
    "passages. --out becomes a sentence-transformers model folder plus checkpoint.bin.\n"
    "\n"
    "Data and output:\n"
    "  --model DIR              starting model (sentence-transformers or Hugging Face BERT)\n"
    "  --train FILE             JSONL(.gz): \"query\", \"positive\", optional \"negatives\" [..]\n"
    "  --dev FILE               evaluate recall/MRR/nDCG on these pairs at each save and the end\n"
    "  --out DIR                output model folder (with checkpoint.bin)\n"
    "  --log FILE               one JSON line per step (appended to on --resume)\n"
    "\n"
    "Batching:\n"
    "  --batch-size N           pairs per optimizer step (default 128)\n"
    "  --chunk-size N           examples per encoder pass, both sides (default 32)\n"
    "  --query-chunk-size N     chunk size of the query side only\n"
    "  --passage-chunk-size N   chunk size of the passage side only\n"
    "  --no-cache               no gradient cache: each side in one pass with activations kept\n"
    "  --accumulation-steps N   plain gradient accumulation over N micro-batches, each with only\n"
    "                           its own in-batch negatives (default 1; must divide the batch)\n"
    "  --negatives K            hard negatives per query from the data (default: the fewest any\n"
    "                           line has; every line must have at least K)\n"
    "  --max-query-len N        query tokens incl. [CLS]/[SEP] (default 32)\n"
    "  --max-passage-len N      passage tokens (default 128)\n"
    "\n"
    "Optimization:\n"
    "  --steps N | --epochs N   length of the run (default 1 epoch; the last partial batch\n"
    "                           of an epoch is dropped)\n"
    "  --lr F                   peak learning rate (default 2e-5)\n"
    "  --optimizer adamw|sgd    (default adamw: betas 0.9/0.999, eps 1e-8)\n"
    "  --weight-decay F         decoupled for AdamW, L2 for SGD; never on biases or LayerNorm\n"
    "                           (default 0.01)\n"
    "  --warmup N               linear warmup steps (default 0)\n"
    "  --schedule linear|constant  after warmup: decay to 0 at the last step, or hold\n"
    "                           (default linear)\n"
    "  --max-grad-norm F        clip the global gradient norm (default 1.0; 0 disables)\n"
    "  --temperature F          softmax temperature tau (default 0.05, i.e. scale 20)\n"
    "  --learn-temperature      optimize log(tau) with the same optimizer\n"
    "  --symmetric              add the passage-to-query loss and average the two\n"
    "  --dropout F              dropout probability (default: the model's config)\n"
    "  --seed N                 data order and dropout seed (default 42)\n"
    "\n"
    "Running:\n"
    "  --threads N              OpenMP threads (default: all cores)\n"
    "  --save-every N           write the model and checkpoint every N steps (and at the end)\n"
    "  --resume                 continue from DIR/checkpoint.bin; the options that change the\n"
    "                           result must match the run that wrote it (--steps/--epochs may "
    "grow)\n"
    "  --stop-after N           stop after N steps of this invocation, saving a checkpoint\n"
    "  --help                   this text\n"
    "\n"
    "On SIGINT/SIGTERM the current step finishes, a checkpoint is saved and the exit status is\n"
    "130/143. A NaN or infinite loss stops the run with status 1; the last checkpoint is kept.\n"
    "With --dev the final metrics are printed as JSON on stdout.\n";

/* ---- signals ---- */

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) {
    static const char msg[] =
        "\ngradcache: interrupted: finishing this step and saving a checkpoint (again to abort)\n";
    g_signal = sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second signal takes the default action */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- the run ---- */

typedef struct train_opts {
    const char *model, *train, *dev, *out, *log, *optimizer, *schedule;
    long batch, chunk, qchunk, pchunk, accum, steps, epochs, warmup, negatives, max_q, max_p;
    long seed, threads, save_every, stop_after;
    double lr, wd, max_grad_norm, temperature, dropout;
    int no_cache, learn_temp, symmetric, resume;
    int dropout_set, negatives_set;
} train_opts;

typedef struct run {
    const train_opts *o;
    gc_optim_kind okind;
    gc_schedule sched;
    gc_dataset *data, *dev;
    int K;
    cli_tokens tq, tp, tn;    /* queries, positives, negatives (pair i's k-th at i*K + k) */
    cli_tokens dq, dp;        /* dev queries and positives */
    int32_t *qgroup, *pgroup; /* query texts; positives then negatives (one id space) */
    gc_pair_groups groups;
    size_t npositives; /* distinct positive texts */
    int32_t *order;
    size_t nbatches; /* of the current epoch */
    gc_bert *model;
    gc_tokenizer *tok;
    cli_gather gather; /* the model's encoder, fed from the tokenized data */
    gc_encoder genc;
    gc_engine *engine;
    gc_optim *opt, *topt;
    float log_tau;
    int mb; /* pairs per micro-batch */
    int eval_batch;
    uint64_t step, epoch, position, total;
    char args[2048];
    char ckpt_path[4096];
    FILE *logf;
    int created_out, saved_once;
    int ks[3];
} run;

/* --- data --- */

static uint32_t data_crc(const gc_dataset *d, int K) {
    uLong c = crc32(0L, Z_NULL, 0);
    for (size_t i = 0; i < d->n; i++) {
        const gc_pair *p = &d->pairs[i];
        c = crc32(c, (const Bytef *)p->query, (uInt)strlen(p->query) + 1);
        c = crc32(c, (const Bytef *)p->positive, (uInt)strlen(p->positive) + 1);
        for (int k = 0; k < K; k++)
            c = crc32(c, (const Bytef *)p->negatives[k], (uInt)strlen(p->negatives[k]) + 1);
    }
    return (uint32_t)c;
}

static int tokenize_side(run *r, const gc_dataset *d, int which, int max_len, cli_tokens *out) {
    const size_t count = which == 2 ? d->n * (size_t)r->K : d->n;
    const char **texts = malloc((count ? count : 1) * sizeof(char *));
    if (!texts) return cli_error("out of memory");
    for (size_t i = 0; i < d->n; i++) {
        if (which == 0)
            texts[i] = d->pairs[i].query;
        else if (which == 1)
            texts[i] = d->pairs[i].positive;
        else
            for (int k = 0; k < r->K; k++) texts[i * (size_t)r->K + k] = d->pairs[i].negatives[k];
    }
    size_t bad = 0;
    gc_status st = cli_tokenize(r->tok, texts, count, max_len, out, &bad);
    free(texts);
    if (st != GC_OK) {
        size_t pair = which == 2 ? bad / (size_t)r->K : bad;
        static const char *names[3] = {"query", "positive", "negative"};
        return cli_error("%s: pair %zu %s: %s", d->path, pair + 1, names[which], gc_last_error());
    }
    return 0;
}

static int choose_negatives(run *r) {
    const train_opts *o = r->o;
    int mink = INT_MAX, maxk = 0;
    size_t argmin = 0;
    for (size_t i = 0; i < r->data->n; i++) {
        int k = r->data->pairs[i].num_negatives;
        if (k < mink) {
            mink = k;
            argmin = i;
        }
        if (k > maxk) maxk = k;
    }
    if (o->negatives_set) {
        if (o->negatives > mink)
            return cli_error("--negatives %ld: %s pair %zu has only %d negatives", o->negatives,
                             r->data->path, argmin + 1, mink);
        r->K = (int)o->negatives;
    } else {
        r->K = mink;
        if (mink != maxk)
            cli_note("lines of %s have %d to %d negatives; using %d per query (set --negatives)",
                     r->data->path, mink, maxk, mink);
    }
    return 0;
}

/* Group equal texts for the data order: queries, and positives with hard negatives in one id
 * space, so that a hard negative equal to some pair's positive is seen as that positive. */
static int group_texts(run *r) {
    const size_t n = r->data->n, K = (size_t)r->K, np = n * (1 + K);
    if (np / (1 + K) != n || np > INT32_MAX) return cli_error("%s: too many texts", r->o->train);
    r->qgroup = malloc(n * sizeof(int32_t));
    r->pgroup = malloc(np * sizeof(int32_t));
    const char **texts = malloc(np * sizeof(char *));
    unsigned char *seen = NULL;
    int rc = CLI_EXIT_RUNTIME;
    size_t nq = 0, npass = 0;
    if (!r->qgroup || !r->pgroup || !texts) {
        cli_error("out of memory grouping %zu texts", np);
        goto done;
    }
    for (size_t i = 0; i < n; i++) texts[i] = r->data->pairs[i].query;
    gc_status st = gc_text_groups(texts, n, r->qgroup, &nq);
    if (st != GC_OK) {
        cli_fail(st, "grouping queries");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        texts[i] = r->data->pairs[i].positive;
        for (size_t k = 0; k < K; k++) texts[n + i * K + k] = r->data->pairs[i].negatives[k];
    }
    st = gc_text_groups(texts, np, r->pgroup, &npass);
    if (st != GC_OK) {
        cli_fail(st, "grouping passages");
        goto done;
    }
    seen = calloc(npass ? npass : 1, 1);
    if (!seen) {
        cli_error("out of memory grouping %zu texts", np);
        goto done;
    }
    size_t self = 0, first_self = 0;
    r->npositives = 0;
    for (size_t i = 0; i < n; i++) {
        r->npositives += !seen[r->pgroup[i]];
        seen[r->pgroup[i]] = 1;
        int same = 0;
        for (size_t k = 0; k < K; k++) same |= r->pgroup[n + i * K + k] == r->pgroup[i];
        if (same && self++ == 0) first_self = i;
    }
    if (self)
        cli_note("%s: %zu pairs (the first is pair %zu) have a hard negative equal to their own "
                 "positive",
                 r->data->path, self, first_self + 1);
    r->groups = (gc_pair_groups){r->qgroup, nq, r->pgroup, K ? r->pgroup + n : NULL, (int)K, npass};
    rc = 0;
done:
    free(texts);
    free(seen);
    return rc;
}

/* --- the arguments a checkpoint must agree with --- */

static void make_args(run *r) {
    const train_opts *o = r->o;
    const gc_bert_config *c = gc_bert_get_config(r->model);
    snprintf(r->args, sizeof r->args,
             "data_pairs=%zu\ndata_crc=%08x\nnum_params=%zu\nbatch_size=%ld\n"
             "accumulation_steps=%ld\nnegatives=%d\nmax_query_len=%ld\nmax_passage_len=%ld\n"
             "optimizer=%s\nlr=%.9g\nweight_decay=%.9g\nwarmup=%ld\nschedule=%s\n"
             "max_grad_norm=%.9g\ntemperature=%.9g\nlearn_temperature=%d\nsymmetric=%d\n"
             "dropout=%.9g/%.9g\nseed=%ld\n",
             r->data->n, data_crc(r->data, r->K), gc_bert_num_params(r->model), o->batch, o->accum,
             r->K, o->max_q, o->max_p, o->optimizer, o->lr, o->wd, o->warmup, o->schedule,
             o->max_grad_norm, o->temperature, o->learn_temp, o->symmetric,
             (double)c->hidden_dropout, (double)c->attn_dropout, o->seed);
}

/* The first line that differs between the checkpoint's arguments and this run's. */
static int check_args(const char *have, const char *want, const char *path) {
    const char *a = have, *b = want;
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0)
            return cli_error("%s was written with %.*s but this run has %.*s; resume with the "
                             "same options",
                             path, (int)la, a, (int)lb, b);
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    return 0;
}

/* --- saving --- */

static int params_finite(run *r) {
    const float *p = gc_bert_params(r->model);
    const long n = (long)gc_bert_num_params(r->model);
    int bad = 0;
#pragma omp parallel for reduction(| : bad)
    for (long i = 0; i < n; i++) bad |= !isfinite(p[i]);
    return !bad && isfinite(r->log_tau);
}

static int evaluate_dev(run *r, const char *when) {
    if (!r->dev) return 0;
    gc_retrieval_metrics m;
    double t0 = cli_now();
    if (cli_eval_tokens(r->model, &r->dq, &r->dp, r->eval_batch, r->ks, 3, &m)) return 1;
    char json[1024];
    cli_metrics_json(&m, json, sizeof json);
    cli_note("dev %s (step %llu, %.1fs): %s", when, (unsigned long long)r->step, cli_now() - t0,
             json);
    if (r->logf) {
        fprintf(r->logf, "{\"step\": %llu, \"dev\": %s}\n", (unsigned long long)r->step, json);
        fflush(r->logf);
    }
    if (strcmp(when, "final") == 0) printf("%s\n", json);
    return 0;
}

static int save(run *r, const char *when) {
    if (!params_finite(r))
        return cli_error("step %llu: parameters are not finite; not saving (the last good "
                         "checkpoint in %s is kept)",
                         (unsigned long long)r->step, r->o->out);
    gc_status st = gc_bert_save(r->model, r->o->out, r->o->model);
    if (st != GC_OK) return cli_fail(st, "saving the model");
    gc_checkpoint ck = {
        .step = r->step,
        .epoch = r->epoch,
        .position = r->position,
        .seed = (uint64_t)r->o->seed,
        .args = r->args,
        .num_params = gc_bert_num_params(r->model),
        .params = gc_bert_params(r->model),
        .optim_step = gc_optim_get_step(r->opt),
        .state_size = gc_optim_state_size(r->opt),
        .state = gc_optim_state(r->opt),
        .log_tau = r->log_tau,
        .tau_step = r->topt ? gc_optim_get_step(r->topt) : 0,
        .tau_state_size = r->topt ? gc_optim_state_size(r->topt) : 0,
        .tau_state = r->topt ? gc_optim_state(r->topt) : NULL,
    };
    st = gc_checkpoint_write(r->ckpt_path, &ck);
    if (st != GC_OK) return cli_fail(st, "writing the checkpoint");
    r->saved_once = 1;
    return evaluate_dev(r, when);
}

static int resume(run *r) {
    gc_checkpoint ck;
    gc_status st = gc_checkpoint_read(r->ckpt_path, &ck);
    if (st != GC_OK) return cli_fail(st, "--resume");
    int rc = check_args(ck.args, r->args, r->ckpt_path);
    if (!rc && (ck.num_params != gc_bert_num_params(r->model) ||
                ck.state_size != gc_optim_state_size(r->opt) ||
                ck.tau_state_size != (r->topt ? gc_optim_state_size(r->topt) : 0)))
        rc = cli_error("%s does not match this model and optimizer", r->ckpt_path);
    if (!rc) {
        memcpy(gc_bert_params(r->model), ck.params, ck.num_params * sizeof(float));
        if (ck.state_size) memcpy(gc_optim_state(r->opt), ck.state, ck.state_size * sizeof(float));
        gc_optim_set_step(r->opt, ck.optim_step);
        if (r->topt) {
            if (ck.tau_state_size)
                memcpy(gc_optim_state(r->topt), ck.tau_state, ck.tau_state_size * sizeof(float));
            gc_optim_set_step(r->topt, ck.tau_step);
        }
        r->log_tau = ck.log_tau;
        r->step = ck.step;
        r->epoch = ck.epoch;
        r->position = ck.position;
    }
    gc_checkpoint_free(&ck);
    return rc;
}

/* --- one step --- */

static int order_epoch(run *r) {
    gc_status st = gc_epoch_order_pairs(&r->groups, r->data->n, (size_t)r->o->batch,
                                        (uint64_t)r->o->seed, r->epoch, r->order, &r->nbatches);
    if (st != GC_OK) return cli_fail(st, "ordering the data");
    if (r->nbatches == 0)
        return cli_error("epoch %llu has no full batch of %ld pairs without duplicate texts",
                         (unsigned long long)r->epoch, r->o->batch);
    return 0;
}

static void format_eta(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e8)
        snprintf(buf, cap, "?");
    else if (s >= 3600)
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, cap, "%.0fs", s);
}

static int train_loop(run *r) {
    const train_opts *o = r->o;
    const int tty = isatty(STDERR_FILENO);
    const uint64_t first = r->step;
    const double t_start = cli_now();
    float *params = gc_bert_params(r->model), *grads = gc_bert_grads(r->model);
    const size_t np = gc_bert_num_params(r->model);
    if (order_epoch(r)) return CLI_EXIT_RUNTIME;
    while (r->step < r->total) {
        if (r->position >= r->nbatches) {
            r->epoch++;
            r->position = 0;
            if (order_epoch(r)) return CLI_EXIT_RUNTIME;
        }
        const double t0 = cli_now();
        const int32_t *bidx = r->order + r->position * (size_t)o->batch;
        if (o->learn_temp) gc_engine_set_temperature(r->engine, expf(r->log_tau));
        double loss = 0, acc = 0, dlt = 0;
        for (int micro = 0; micro < o->accum; micro++) {
            const int32_t *idx = bidx + (size_t)micro * (size_t)r->mb;
            cli_batch_side qb = {&r->tq, NULL, idx, r->mb, 0};
            cli_batch_side pb = {&r->tp, r->K > 0 ? &r->tn : NULL, idx, r->mb, r->K};
            gc_step_options so = {.accumulate = micro > 0, .loss_scale = 1.0f / (float)o->accum};
            gc_step_stats stats;
            uint32_t rng_step = (uint32_t)(r->step * (uint64_t)o->accum + (uint64_t)micro);
            gc_status st =
                gc_engine_step_opts(r->engine, &qb, &pb, r->mb, r->K, rng_step, &so, &stats);
            if (st != GC_OK) {
                if (st == GC_ERR_NUMERIC)
                    return cli_error("step %llu: %s; stopping (%s)",
                                     (unsigned long long)r->step + 1, gc_last_error(),
                                     r->saved_once || o->resume ? "the last checkpoint is kept"
                                                                : "nothing was saved");
                return cli_fail(st, "training step");
            }
            loss += stats.loss / o->accum;
            acc += stats.accuracy / o->accum;
            dlt += stats.dlog_tau; /* already scaled by loss_scale */
        }
        float dlt_f = (float)dlt;
        const float *bufs[2] = {grads, &dlt_f};
        const size_t counts[2] = {np, o->learn_temp ? 1u : 0u};
        double gnorm = gc_grad_norm(bufs, counts, 2);
        if (!isfinite(loss) || !isfinite(gnorm))
            return cli_error("step %llu: the loss is %s (gradient norm %g): training diverged; "
                             "stopping without saving (%s)",
                             (unsigned long long)r->step + 1,
                             isfinite(loss) ? "finite" : "not finite", gnorm,
                             r->saved_once || o->resume ? "the last checkpoint in --out is kept"
                                                        : "no checkpoint was written");
        const float scale = gc_clip_scale(gnorm, o->max_grad_norm);
        const float lr = gc_lr_at(r->sched, (float)o->lr, r->step, (uint64_t)o->warmup, r->total);
        gc_optim_step(r->opt, params, grads, lr, scale);
        if (r->topt) gc_optim_step(r->topt, &r->log_tau, &dlt_f, lr, scale);
        r->step++;
        r->position++;

        const double now = cli_now(), dt = now - t0, elapsed = now - t_start;
        const uint64_t done = r->step - first;
        const double pps = (double)o->batch * (double)done / (elapsed > 0 ? elapsed : 1e-9);
        char eta[32];
        format_eta(elapsed / (double)done * (double)(r->total - r->step), eta, sizeof eta);
        if (r->logf) {
            fprintf(r->logf,
                    "{\"step\": %llu, \"epoch\": %llu, \"loss\": %.6f, \"accuracy\": %.4f, "
                    "\"lr\": %.6g, \"temperature\": %.6g, \"grad_norm\": %.6g, "
                    "\"pairs_per_s\": %.2f, \"step_s\": %.3f}\n",
                    (unsigned long long)r->step, (unsigned long long)r->epoch, loss, acc, lr,
                    exp(r->log_tau), gnorm, (double)o->batch / (dt > 0 ? dt : 1e-9), dt);
            fflush(r->logf);
        }
        const int last = r->step == r->total;
        if (tty) {
            fprintf(stderr,
                    "\rstep %llu/%llu  loss %.4f  %.1f pairs/s  ETA %s  peak %.0f MiB\033[K",
                    (unsigned long long)r->step, (unsigned long long)r->total, loss, pps, eta,
                    cli_peak_rss_mib());
            if (last) fputc('\n', stderr);
        } else if (done == 1 || r->step % 10 == 0 || last) {
            fprintf(stderr,
                    "gradcache: step %llu/%llu loss %.4f acc %.3f lr %.3g tau %.4g grad_norm %.3g "
                    "%.1f pairs/s ETA %s peak %.0f MiB\n",
                    (unsigned long long)r->step, (unsigned long long)r->total, loss, acc, lr,
                    exp(r->log_tau), gnorm, pps, eta, cli_peak_rss_mib());
        }

        if (g_signal) {
            if (tty) fputc('\n', stderr);
            int sig = g_signal;
            if (save(r, "interrupted")) return CLI_EXIT_RUNTIME;
            cli_note("stopped by signal %d at step %llu; checkpoint saved in %s (continue with "
                     "--resume)",
                     sig, (unsigned long long)r->step, o->out);
            return sig == SIGINT ? CLI_EXIT_SIGINT : CLI_EXIT_SIGTERM;
        }
        if (o->stop_after > 0 && done >= (uint64_t)o->stop_after && !last) {
            if (tty) fputc('\n', stderr);
            if (save(r, "checkpoint")) return CLI_EXIT_RUNTIME;
            cli_note("stopped after %ld steps (--stop-after) at step %llu; continue with --resume",
                     o->stop_after, (unsigned long long)r->step);
            return CLI_EXIT_OK;
        }
        if (o->save_every > 0 && r->step % (uint64_t)o->save_every == 0 && !last) {
            if (tty) fputs("\n", stderr);
            if (save(r, "checkpoint")) return CLI_EXIT_RUNTIME;
        }
    }
    const double elapsed = cli_now() - t_start;
    if (save(r, "final")) return CLI_EXIT_RUNTIME;
    cli_note("trained %llu steps in %.1fs (%.1f pairs/s), peak memory %.0f MiB; model in %s",
             (unsigned long long)(r->step - first), elapsed,
             (double)o->batch * (double)(r->step - first) / (elapsed > 0 ? elapsed : 1e-9),
             cli_peak_rss_mib(), o->out);
    return CLI_EXIT_OK;
}

/* --- setup --- */

static int parse_train(int argc, char **argv, train_opts *o) {
    memset(o, 0, sizeof *o);
    o->optimizer = "adamw";
    o->schedule = "linear";
    o->batch = 128;
    o->chunk = 32;
    o->accum = 1;
    o->lr = 2e-5;
    o->wd = 0.01;
    o->max_grad_norm = 1.0;
    o->temperature = 0.05;
    o->max_q = 32;
    o->max_p = 128;
    o->seed = 42;
    const double IMAX = INT_MAX;
    cli_opt opts[] = {
        {"--model", OPT_STR, &o->model, 0, 0, 0},
        {"--train", OPT_STR, &o->train, 0, 0, 0},
        {"--dev", OPT_STR, &o->dev, 0, 0, 0},
        {"--out", OPT_STR, &o->out, 0, 0, 0},
        {"--log", OPT_STR, &o->log, 0, 0, 0},
        {"--batch-size", OPT_INT, &o->batch, 1, IMAX, 0},
        {"--chunk-size", OPT_INT, &o->chunk, 1, IMAX, 0},
        {"--query-chunk-size", OPT_INT, &o->qchunk, 1, IMAX, 0},
        {"--passage-chunk-size", OPT_INT, &o->pchunk, 1, IMAX, 0},
        {"--no-cache", OPT_FLAG, &o->no_cache, 0, 0, 0},
        {"--accumulation-steps", OPT_INT, &o->accum, 1, IMAX, 0},
        {"--steps", OPT_INT, &o->steps, 1, 1e15, 0},
        {"--epochs", OPT_INT, &o->epochs, 1, 1e6, 0},
        {"--lr", OPT_FLOAT, &o->lr, 0, 1e300, 0},
        {"--optimizer", OPT_STR, &o->optimizer, 0, 0, 0},
        {"--weight-decay", OPT_FLOAT, &o->wd, 0, 1e300, 0},
        {"--warmup", OPT_INT, &o->warmup, 0, 1e15, 0},
        {"--schedule", OPT_STR, &o->schedule, 0, 0, 0},
        {"--max-grad-norm", OPT_FLOAT, &o->max_grad_norm, 0, 1e300, 0},
        {"--temperature", OPT_FLOAT, &o->temperature, 1e-6, 1e6, 0},
        {"--learn-temperature", OPT_FLAG, &o->learn_temp, 0, 0, 0},
        {"--symmetric", OPT_FLAG, &o->symmetric, 0, 0, 0},
        {"--negatives", OPT_INT, &o->negatives, 0, 1 << 16, 0},
        {"--max-query-len", OPT_INT, &o->max_q, 2, 1 << 20, 0},
        {"--max-passage-len", OPT_INT, &o->max_p, 2, 1 << 20, 0},
        {"--dropout", OPT_FLOAT, &o->dropout, 0, 0.99, 0},
        {"--seed", OPT_INT, &o->seed, 0, 9e18, 0},
        {"--threads", OPT_INT, &o->threads, 1, 4096, 0},
        {"--save-every", OPT_INT, &o->save_every, 1, 1e15, 0},
        {"--stop-after", OPT_INT, &o->stop_after, 1, 1e15, 0},
        {"--resume", OPT_FLAG, &o->resume, 0, 0, 0},
        {NULL, OPT_FLAG, NULL, 0, 0, 0},
    };
    int rc = cli_parse("train", argc, argv, 2, opts);
    if (rc == 1) {
        fputs(TRAIN_HELP, stdout);
        return -1;
    }
    if (rc) return rc;
    if (!o->model) return cli_usage("train ", "--model is required");
    if (!o->train) return cli_usage("train ", "--train is required");
    if (!o->out) return cli_usage("train ", "--out is required");
    if (strcmp(o->optimizer, "adamw") && strcmp(o->optimizer, "sgd"))
        return cli_usage("train ", "--optimizer must be adamw or sgd, got '%s'", o->optimizer);
    if (strcmp(o->schedule, "linear") && strcmp(o->schedule, "constant"))
        return cli_usage("train ", "--schedule must be linear or constant, got '%s'", o->schedule);
    if (cli_find(opts, "--steps")->seen && cli_find(opts, "--epochs")->seen)
        return cli_usage("train ", "give --steps or --epochs, not both");
    if (o->batch % o->accum)
        return cli_usage("train ", "--accumulation-steps %ld must divide --batch-size %ld",
                         o->accum, o->batch);
    if (!cli_find(opts, "--query-chunk-size")->seen) o->qchunk = o->chunk;
    if (!cli_find(opts, "--passage-chunk-size")->seen) o->pchunk = o->chunk;
    if (!o->steps && !o->epochs) o->epochs = 1;
    o->dropout_set = cli_find(opts, "--dropout")->seen;
    o->negatives_set = cli_find(opts, "--negatives")->seen;
    return 0;
}

static void run_free(run *r) {
    gc_engine_free(r->engine);
    gc_optim_free(r->opt);
    gc_optim_free(r->topt);
    gc_bert_free(r->model);
    gc_tokenizer_free(r->tok);
    gc_dataset_free(r->data);
    gc_dataset_free(r->dev);
    cli_tokens_free(&r->tq);
    cli_tokens_free(&r->tp);
    cli_tokens_free(&r->tn);
    cli_tokens_free(&r->dq);
    cli_tokens_free(&r->dp);
    cli_gather_free(&r->gather);
    free(r->qgroup);
    free(r->pgroup);
    free(r->order);
    if (r->logf) fclose(r->logf);
}

static int setup_and_train(run *r) {
    const train_opts *o = r->o;
    gc_status st;
    r->okind = strcmp(o->optimizer, "sgd") == 0 ? GC_OPTIM_SGD : GC_OPTIM_ADAMW;
    r->sched = strcmp(o->schedule, "constant") == 0 ? GC_SCHED_CONSTANT : GC_SCHED_LINEAR;
    r->ks[0] = 1;
    r->ks[1] = 10;
    r->ks[2] = 100;

    /* the output folder first: a run that cannot save should fail before it trains */
    int ostate = fs_dir_state(o->out);
    if (ostate == FS_NOT_DIR) return cli_error("--out %s exists and is not a folder", o->out);
    if (snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/checkpoint.bin", o->out) >=
        (int)sizeof r->ckpt_path)
        return cli_error("--out path too long");
    const int have_ckpt = fs_exists(r->ckpt_path);
    if (o->resume && !have_ckpt) return cli_error("--resume: no checkpoint at %s", r->ckpt_path);
    if (!o->resume && have_ckpt)
        return cli_error("%s holds a checkpoint of an earlier run; pass --resume to continue it "
                         "or choose another --out",
                         o->out);

    /* data */
    st = gc_dataset_load(&r->data, o->train);
    if (st != GC_OK) return cli_fail(st, NULL);
    if (o->dev) {
        st = gc_dataset_load(&r->dev, o->dev);
        if (st != GC_OK) return cli_fail(st, NULL);
    }
    if (r->data->n > INT32_MAX) return cli_error("%s: too many pairs", o->train);
    if (choose_negatives(r)) return CLI_EXIT_RUNTIME;
    if ((size_t)o->batch > r->data->n)
        return cli_usage("train ", "--batch-size %ld is larger than the data (%s has %zu pairs)",
                         o->batch, o->train, r->data->n);
    r->mb = (int)(o->batch / o->accum);
    if ((double)r->mb * (1.0 + r->K) > (double)INT_MAX)
        return cli_usage("train ", "--batch-size %ld with %d negatives is too large", o->batch,
                         r->K);

    /* model */
    if (cli_load_model(o->model, &r->model, &r->tok)) return CLI_EXIT_RUNTIME;
    const gc_bert_config *cfg = gc_bert_get_config(r->model);
    if (o->max_q > cfg->max_position || o->max_p > cfg->max_position)
        return cli_usage("train ",
                         "--max-query-len/--max-passage-len exceed the model's %d positions",
                         cfg->max_position);
    if (o->dropout_set) gc_bert_set_dropout(r->model, (float)o->dropout);

    /* tokens, once */
    double t0 = cli_now();
    if (tokenize_side(r, r->data, 0, (int)o->max_q, &r->tq) ||
        tokenize_side(r, r->data, 1, (int)o->max_p, &r->tp) ||
        (r->K > 0 && tokenize_side(r, r->data, 2, (int)o->max_p, &r->tn)))
        return CLI_EXIT_RUNTIME;
    if (r->dev && (tokenize_side(r, r->dev, 0, (int)o->max_q, &r->dq) ||
                   tokenize_side(r, r->dev, 1, (int)o->max_p, &r->dp)))
        return CLI_EXIT_RUNTIME;
    cli_note("%s: %zu pairs, %d hard negatives each, tokenized in %.1fs", o->train, r->data->n,
             r->K, cli_now() - t0);

    /* data order */
    const size_t n = r->data->n;
    r->order = malloc(n * sizeof(int32_t));
    if (!r->order) return cli_error("out of memory");
    if (group_texts(r)) return CLI_EXIT_RUNTIME;
    if (o->steps) {
        r->total = (uint64_t)o->steps;
    } else {
        for (long e = 0; e < o->epochs; e++) {
            st = gc_epoch_order_pairs(&r->groups, n, (size_t)o->batch, (uint64_t)o->seed,
                                      (uint64_t)e, r->order, &r->nbatches);
            if (st != GC_OK) return cli_fail(st, "ordering the data");
            r->total += r->nbatches;
        }
    }
    st = gc_epoch_order_pairs(&r->groups, n, (size_t)o->batch, (uint64_t)o->seed, 0, r->order,
                              &r->nbatches);
    if (st != GC_OK) return cli_fail(st, "ordering the data");
    if (r->nbatches == 0 && r->npositives < (size_t)o->batch)
        return cli_usage("train ",
                         "--batch-size %ld is larger than the data: %s has %zu distinct "
                         "positives among %zu pairs",
                         o->batch, o->train, r->npositives, n);
    if (r->nbatches == 0)
        return cli_usage("train ",
                         "--batch-size %ld: %s has no batch of that size without a repeated "
                         "query or a hard negative equal to another pair's positive",
                         o->batch, o->train);
    if (n - r->nbatches * (size_t)o->batch >= (size_t)o->batch)
        cli_note("epoch 0 uses %zu of %zu pairs: the rest would have brought a false negative "
                 "(a repeated query or positive, or a hard negative equal to a positive) into "
                 "every batch left",
                 r->nbatches * (size_t)o->batch, n);

    /* engine and model buffers */
    const int P = r->mb * (1 + r->K);
    const int qc = o->qchunk < r->mb ? (int)o->qchunk : r->mb;
    const int pc = o->pchunk < P ? (int)o->pchunk : P;
    int max_len = r->tq.max_len;
    if (r->tp.max_len > max_len) max_len = r->tp.max_len;
    if (r->tn.max_len > max_len) max_len = r->tn.max_len;
    const int train_len = max_len;
    if (r->dq.max_len > max_len) max_len = r->dq.max_len;
    if (r->dp.max_len > max_len) max_len = r->dp.max_len;
    int chunk = o->no_cache ? P : (qc > pc ? qc : pc);
    st = gc_bert_reserve(r->model, chunk, max_len, o->no_cache ? 2 : 1);
    if (st != GC_OK) return cli_fail(st, "preparing the model");
    r->eval_batch = chunk;
    st = cli_gather_init(&r->gather, gc_bert_encoder(r->model), P, chunk, train_len);
    if (st != GC_OK) return cli_fail(st, "preparing the batches");
    r->genc = cli_gather_encoder(&r->gather);
    gc_engine_config ec = {
        .max_batch = r->mb,
        .max_negatives = r->K,
        .query_chunk = qc,
        .passage_chunk = pc,
        .no_cache = o->no_cache,
        .loss = {.temperature = (float)o->temperature, .symmetric = o->symmetric, .cosine = 1},
        .learn_temperature = o->learn_temp,
        .seed = (uint64_t)o->seed,
    };
    st = gc_engine_create(&r->engine, &ec, &r->genc, &r->genc, NULL);
    if (st != GC_OK) return cli_fail(st, "creating the engine");

    /* optimizer: no weight decay on biases and LayerNorm, by tensor name */
    gc_optim_config oc = {.kind = r->okind, .weight_decay = (float)o->wd};
    st = gc_optim_create(&r->opt, &oc, gc_bert_num_params(r->model));
    if (st != GC_OK) return cli_fail(st, "creating the optimizer");
    for (int t = 0; t < gc_bert_num_tensors(r->model); t++) {
        const char *name;
        size_t off, count;
        st = gc_bert_tensor_info(r->model, t, &name, &off, &count);
        if (st == GC_OK) st = gc_optim_set_decay(r->opt, off, count, gc_optim_default_decay(name));
        if (st != GC_OK) return cli_fail(st, "weight-decay mask");
    }
    r->log_tau = logf((float)o->temperature);
    if (o->learn_temp) {
        gc_optim_config tc = {.kind = r->okind, .weight_decay = 0};
        st = gc_optim_create(&r->topt, &tc, 1);
        if (st != GC_OK) return cli_fail(st, "creating the optimizer");
    }

    make_args(r);
    if (o->resume) {
        if (resume(r)) return CLI_EXIT_RUNTIME;
        cli_note("resuming %s at step %llu (epoch %llu, batch %llu)", r->ckpt_path,
                 (unsigned long long)r->step, (unsigned long long)r->epoch,
                 (unsigned long long)r->position);
    }

    /* the output folder: created now, probed for writing before any work */
    r->created_out = ostate == FS_MISSING;
    st = gc_mkdirs(o->out);
    if (st != GC_OK) return cli_fail(st, "--out");
    {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/.gradcache-write-test", o->out);
        gc_afile *f = NULL;
        st = gc_afile_open(&f, probe);
        if (st != GC_OK) return cli_fail(st, "--out is not writable");
        gc_afile_abort(f);
    }
    if (o->log) {
        r->logf = fopen(o->log, o->resume ? "a" : "w");
        if (!r->logf) return cli_error("--log %s: cannot open for writing", o->log);
    }

    if (r->step >= r->total) {
        cli_note("the checkpoint is at step %llu of %llu: nothing to train",
                 (unsigned long long)r->step, (unsigned long long)r->total);
        return save(r, "final") ? CLI_EXIT_RUNTIME : CLI_EXIT_OK;
    }
    cli_note("training %llu steps of %ld pairs (%d micro-batch%s of %d, chunks %d/%d%s), %zu "
             "parameters, %d threads",
             (unsigned long long)(r->total - r->step), o->batch, (int)o->accum,
             o->accum > 1 ? "es" : "", r->mb, qc, pc, o->no_cache ? ", no cache" : "",
             gc_bert_num_params(r->model), omp_get_max_threads());
    if (!o->resume && r->dev && evaluate_dev(r, "before training")) return CLI_EXIT_RUNTIME;
    install_signals();
    return train_loop(r);
}

int cmd_train(int argc, char **argv) {
    train_opts o;
    int rc = parse_train(argc, argv, &o);
    if (rc == -1) return CLI_EXIT_OK;
    if (rc) return rc;
    if (o.threads > 0) omp_set_num_threads((int)o.threads);
    run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    rc = setup_and_train(&r);
    /* a folder this run created and never saved into is removed again */
    if (rc != CLI_EXIT_OK && r.created_out && !r.saved_once) rmdir(o.out);
    run_free(&r);
    gc_matmul_cleanup();
    return rc;
}

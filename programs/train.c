/* train.c: the `train` subcommand: options, messages, progress, the JSON log and signals around
 * the library's trainer (gc_trainer, src/train/trainer.c), which decides every number: data
 * order, accumulation, clipping, learning-rate and temperature updates, checkpoints and resume.
 * The data is tokenized once before the first step. --out is locked for the whole run, and each
 * save is one snapshot (gc_snapshot_*): the model files with gc_bert_save and the trainer's
 * checkpoint in training_state/, built beside --out and swapped in by one rename. */
#include "cli.h"
#include "fsutil.h"
#include "gc_beir.h"
#include "gc_comm_mpi.h"
#include "gc_eval.h"
#include "gc_io.h"
#include "gc_optim.h"
#include "gc_prompts.h"
#include "gc_tokenizer.h"
#include "gc_train.h"

#include <float.h>
#include <jansson.h>

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char TRAIN_HELP[] =
    "Usage: gradcache train --model DIR --train FILE --out DIR [options]\n"
    "\n"
    "Fine-tune a BERT-family embedding model on query/positive pairs with the InfoNCE loss over\n"
    "in-batch negatives (cosine similarity / temperature, like sentence-transformers'\n"
    "MultipleNegativesRankingLoss). Gradient Cache makes the gradient of a large batch exact\n"
    "while only one chunk's activations are in memory. One encoder is shared by queries and\n"
    "passages. --out becomes a sentence-transformers model folder; the state a --resume needs\n"
    "is kept apart in DIR/training_state/ (leave that subfolder out when publishing).\n"
    "\n"
    "Data and output:\n"
    "  --model DIR              starting model (sentence-transformers or Hugging Face BERT)\n"
    "  --train FILE             JSONL(.gz): \"query\", \"positive\", optional \"negatives\" [..];\n"
    "                           or sentence-transformers' anchor/positive/negative[_N], or\n"
    "                           FlagEmbedding's query/pos [..]/neg [..] (detected per line)\n"
    "  --query-field NAME, --positive-field NAME, --negatives-field NAME\n"
    "                           read these fields instead (a positive may be a list)\n"
    "  --dev FILE|DIR           evaluate recall/MRR/nDCG on these pairs, or on a BEIR folder,\n"
    "                           at each save and the end\n"
    "  --dev-split NAME         the qrels of a BEIR --dev (default test)\n"
    "  --query-prompt TEXT      put before every query, counted in --max-query-len (default:\n"
    "                           the model's \"query\" prompt); saved into --out\n"
    "  --passage-prompt TEXT    the same for passages (default: the model's \"passage\" or\n"
    "                           \"document\" prompt)\n"
    "  --out DIR                output model folder (with training_state/checkpoint.bin); a\n"
    "                           non-empty folder without a checkpoint needs --overwrite\n"
    "  --overwrite              replace a non-empty --out as a whole at the first save (never\n"
    "                           an input's folder)\n"
    "  --log FILE               one JSON line per step (appended to on --resume), after a\n"
    "                           line with the run's options\n"
    "  --report FILE            the training report written at the end (needs --log; default:\n"
    "                           the log's name with .html for .jsonl/.json/.log, beside it)\n"
    "  --no-report              do not write the report (gradcache report LOG makes one later)\n"
    "\n"
    "Batching:\n"
    "  --batch-size N           pairs per optimizer step (default 128)\n"
    "  --chunk-size N           examples per encoder pass, both sides (default 32)\n"
    "  --query-chunk-size N     chunk size of the query side only\n"
    "  --passage-chunk-size N   chunk size of the passage side only\n"
    "  --no-cache               no gradient cache: each side in one pass with activations kept\n"
    "  --memory-budget SIZE     plan the step within SIZE bytes (e.g. 3GiB, 512MiB): keep the\n"
    "                           pass-1 activations of as many of the last chunks as fit, so pass\n"
    "                           2 does not re-encode them, and choose the chunk size (at most 32)\n"
    "                           when no chunk size is given; prints the plan. Counts the\n"
    "                           engine's buffers, parameters/gradients/AdamW moments and the\n"
    "                           encoder's activations; too small for one example: exit 2\n"
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
    "  --matryoshka LIST        also train truncated embeddings: add the loss of each listed\n"
    "                           prefix size, re-normalized, in the same cached step, e.g.\n"
    "                           384,256,128,64 or with weights 384:1,128:0.5 (default weight 1;\n"
    "                           the loss is the weighted sum); eval and encode truncate with\n"
    "                           their dim option\n"
    "  --dropout F              dropout probability (default: the model's config)\n"
    "  --seed N                 data order and dropout seed (default 42)\n"
    "  --precision fp32|bf16    matrix products in bf16 with fp32 accumulation and fp32\n"
    "                           master weights (default fp32); fp32 with a note on a CPU\n"
    "                           without native bf16 (AVX512_BF16)\n"
    "\n"
    "Running:\n"
    "  --threads N              OpenMP threads (default: all cores)\n"
    "  --save-every N           write the model and checkpoint every N steps (and at the end)\n"
    "  --resume                 continue from DIR/training_state/checkpoint.bin; the starting\n"
    "                           --model and the options that change the result must match the\n"
    "                           run that wrote it (--steps/--epochs may grow)\n"
    "  --stop-after N           stop after N steps of this invocation, saving a checkpoint\n"
    "  --help                   this text\n"
    "\n"
    "Several processes: mpirun -np N gradcache train ... splits each batch over N ranks\n"
    "(--batch-size stays the global batch and must be divisible by N; --threads is per rank).\n"
    "Every rank reads the same --train file; rank 0 alone writes --out, --log and progress,\n"
    "and evaluates --dev.\n"
    "\n"
    "One run at a time per --out (a lock file beside it names the holder's pid). A save replaces\n"
    "the whole folder in one rename: after a crash --out holds the last complete save.\n"
    "On SIGINT/SIGTERM the current step finishes, a checkpoint is saved and the exit status is\n"
    "130/143. A NaN or infinite loss stops the run with status 1; the last checkpoint is kept.\n"
    "With --dev the final metrics are printed as JSON on stdout.\n";

/* ---- signals ---- */

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) {
    static const char msg[] =
        "\ngradcache: interrupted: finishing this step and saving a checkpoint (again to abort)\n";
    g_signal = sig;
    if (cli_rank == 0) { /* under mpirun the other ranks stop with rank 0, silently */
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
    }
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
    const char *model, *train, *dev, *out, *log, *optimizer, *schedule, *precision;
    const char *dev_split, *query_prompt, *passage_prompt;
    gc_data_fields fields;
    long batch, chunk, qchunk, pchunk, accum, steps, epochs, warmup, negatives, max_q, max_p;
    long seed, threads, save_every, stop_after;
    double lr, wd, max_grad_norm, temperature, dropout;
    int no_cache, learn_temp, symmetric, resume, overwrite;
    int dropout_set, negatives_set;
    const char *memory_budget; /* --memory-budget as given */
    size_t budget;             /* parsed (0: off) */
    const char *matryoshka;    /* --matryoshka as given */
    gc_matryoshka_config mat;  /* parsed (count 0: off) */
    const char *report;        /* --report FILE (default: beside the log) */
    int no_report;
} train_opts;

typedef struct run {
    const train_opts *o;
    gc_dataset *data, *dev;
    int K;
    const char **qtext, **ptext, **ntext; /* the pairs' texts (pair i's k-th negative at i*K+k) */
    gc_token_list tq, tp, tn;             /* their tokens */
    gc_token_list dq, dp;                 /* dev queries and positives (or BEIR documents) */
    gc_beir *beir;                        /* a BEIR --dev */
    const char *qprompt, *pprompt;        /* the prompts in use (NULL: none) */
    gc_bert *model;
    gc_tokenizer *tok;
    gc_encoder enc;
    gc_trainer *trainer;
    char fingerprint[1024];
    char ckpt_path[4096];
    const char *out; /* --out, its symlink resolved */
    char out_buf[4096];
    gc_dir_lock *lock;
    FILE *logf;
    int saved_once;
    int ks[3];
    gc_comm comm; /* MPI under mpirun, else the single process */
    int rank, size;
    int agreed_failure; /* every rank already knows the run failed (no final agreement) */
    int argc;           /* the command line, for the log's options record */
    char **argv;
    int rc; /* open_out's exit status */
} run;

/* --- several ranks --- */

/* Every rank calls this at the same points (after setup, after each step, at the end) with
 * its exit code so far and gets the job's: a failure on any rank (1 or 2, never a signal's
 * 130/143) becomes every rank's, and rank 0 prints the failing rank's message. *sig receives
 * the largest signal any rank caught, so a signal on one rank stops all of them after the same
 * step. One process: rc and g_signal unchanged. */
static int sync_ranks(run *r, int rc, int *sig) {
    if (sig) *sig = g_signal;
    if (r->size <= 1) return rc;
    const int failed = rc == CLI_EXIT_RUNTIME || rc == CLI_EXIT_USAGE;
    gc_status st = GC_OK;
    if (failed)
        st = gc_set_error(rc == CLI_EXIT_USAGE ? GC_ERR_INVALID_ARG : GC_ERR_IO, "%s",
                          cli_last_message());
    st = gc_comm_agree(&r->comm, st);
    if (st != GC_OK) {
        r->agreed_failure = 1;
        if (!failed) cli_error("%s", gc_last_error());
        return failed ? rc : st == GC_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME;
    }
    double s = g_signal;
    if (r->comm.ops->all_reduce_f64(r->comm.ctx, &s, 1, GC_COMM_MAX) != GC_OK) {
        r->agreed_failure = 1; /* the transport itself failed: nobody can agree any more */
        return cli_error("rank %d: %s", r->rank, gc_last_error());
    }
    if (sig) *sig = (int)s;
    return rc;
}

/* --- data --- */

/* FNV-1a of a prompt (NULL and "" alike), for the checkpoint's option record. */
static unsigned prompt_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int tokenize_side(run *r, const gc_dataset *d, const char *const *texts, int which,
                         int max_len, gc_token_list *out) {
    const size_t count = which == 2 ? d->n * (size_t)r->K : d->n;
    size_t bad = 0;
    const char *prompt = which == 0 ? r->qprompt : r->pprompt;
    gc_status st = gc_tokenize_many_prompt(r->tok, prompt, texts, count, max_len, out, &bad);
    if (st != GC_OK) {
        size_t pair = which == 2 ? bad / (size_t)r->K : bad;
        static const char *names[3] = {"query", "positive", "negative"};
        return cli_error("%s:%zu: %s: %s", d->path, d->pairs[pair].line, names[which],
                         gc_last_error());
    }
    return 0;
}

/* Text pointers of a dataset's queries, positives and (K per pair) negatives. */
static int collect_texts(const gc_dataset *d, int K, const char ***q, const char ***p,
                         const char ***neg) {
    *q = malloc((d->n ? d->n : 1) * sizeof(char *));
    *p = malloc((d->n ? d->n : 1) * sizeof(char *));
    *neg = malloc((d->n * (size_t)K > 0 ? d->n * (size_t)K : 1) * sizeof(char *));
    if (!*q || !*p || !*neg) return cli_error("out of memory for %zu texts", d->n);
    for (size_t i = 0; i < d->n; i++) {
        (*q)[i] = d->pairs[i].query;
        (*p)[i] = d->pairs[i].positive;
        for (int k = 0; k < K; k++) (*neg)[i * (size_t)K + k] = d->pairs[i].negatives[k];
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

/* --- saving --- */

static int evaluate_dev(run *r, const char *when) {
    if ((!r->dev && !r->beir) || r->rank != 0) return 0; /* rank 0 evaluates; the others wait */
    gc_retrieval_metrics m;
    gc_beir_metrics bm;
    double t0 = cli_now();
    gc_token_batch q = gc_token_list_batch(&r->dq), p = gc_token_list_batch(&r->dp);
    const int batch = gc_trainer_encode_batch(r->trainer);
    gc_status st = r->beir ? gc_eval_beir(&r->enc, r->beir, &q, &p, batch, &bm)
                           : gc_eval_pairs(&r->enc, &q, &p, batch, r->ks, 3, &m);
    if (st != GC_OK) return cli_fail(st, "evaluating --dev");
    char json[1024];
    if (r->beir)
        cli_beir_json(&bm, json, sizeof json);
    else
        cli_metrics_json(&m, json, sizeof json);
    const unsigned long long step = (unsigned long long)gc_trainer_steps_done(r->trainer);
    cli_note("dev %s (step %llu, %.1fs): %s", when, step, cli_now() - t0, json);
    if (r->logf) {
        fprintf(r->logf, "{\"step\": %llu, \"dev\": %s}\n", step, json);
        fflush(r->logf);
    }
    if (strcmp(when, "final") == 0) printf("%s\n", json);
    return 0;
}

static int save_rank0(run *r, const char *when) {
    if (r->rank != 0) return 0; /* rank 0 writes; every rank holds the same state */
    /* One snapshot: the model folder and training_state/checkpoint.bin, built beside --out and
     * swapped in whole; a failure leaves --out as the last save left it. */
    gc_status st = gc_trainer_check_finite(r->trainer);
    if (st == GC_ERR_NUMERIC)
        return cli_error("%s; not saving (the last good checkpoint in %s is kept)", gc_last_error(),
                         r->o->out);
    if (st != GC_OK) return cli_fail(st, "saving");
    char tmp[4400], state[4500];
    st = gc_snapshot_begin(r->out, tmp, sizeof tmp);
    if (st != GC_OK) return cli_fail(st, "saving");
    snprintf(state, sizeof state, "%s/training_state", tmp);
    const char *what = "saving the model";
    st = gc_bert_save(r->model, tmp, r->o->model);
    if (st == GC_OK) {
        what = "saving the checkpoint";
        st = gc_mkdirs(state);
    }
    if (st == GC_OK) {
        snprintf(state, sizeof state, "%s/training_state/checkpoint.bin", tmp);
        st = gc_trainer_save(r->trainer, state);
    }
    if (st == GC_OK) {
        what = "saving";
        st = gc_snapshot_commit(tmp, r->out);
    } else {
        gc_snapshot_abort(tmp);
    }
    if (st != GC_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", gc_last_error());
        return cli_error("%s: %s; %s", what, msg,
                         r->saved_once || r->o->resume ? "the previous save in --out is unchanged"
                                                       : "nothing was written to --out");
    }
    r->saved_once = 1;
    return evaluate_dev(r, when);
}

/* Rank 0 saves; every rank learns whether that worked (so a failed save stops all of them). */
static int save(run *r, const char *when) {
    return sync_ranks(r, save_rank0(r, when), NULL);
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
    const int tty = isatty(STDERR_FILENO) && r->rank == 0;
    const uint64_t first = gc_trainer_steps_done(r->trainer);
    const uint64_t total = gc_trainer_get_info(r->trainer)->total_steps;
    const double t_start = cli_now();
    while (gc_trainer_steps_done(r->trainer) < total) {
        const double t0 = cli_now();
        gc_train_stats ts;
        gc_status st = gc_trainer_step(r->trainer, &ts);
        if (st == GC_ERR_NUMERIC)
            return cli_error("%s; stopping without saving (%s)", gc_last_error(),
                             r->saved_once || o->resume ? "the last checkpoint in --out is kept"
                                                        : "no checkpoint was written");
        if (st != GC_OK) return cli_fail(st, "training step");
        int sig = 0, rc = sync_ranks(r, CLI_EXIT_OK, &sig);
        if (rc != CLI_EXIT_OK) return rc;
        const double loss = ts.loss, acc = ts.accuracy, gnorm = ts.grad_norm, lr = ts.lr;
        const double tau = ts.temperature;
        const uint64_t step = ts.step;

        const double now = cli_now(), dt = now - t0, elapsed = now - t_start;
        const uint64_t done = step - first;
        const double pps = (double)o->batch * (double)done / (elapsed > 0 ? elapsed : 1e-9);
        char eta[32];
        format_eta(elapsed / (double)done * (double)(total - step), eta, sizeof eta);
        if (r->logf) {
            fprintf(r->logf,
                    "{\"step\": %llu, \"epoch\": %llu, \"loss\": %.6f, \"accuracy\": %.4f, "
                    "\"lr\": %.6g, \"temperature\": %.6g, \"grad_norm\": %.6g, "
                    "\"pairs_per_s\": %.2f, \"step_s\": %.3f}\n",
                    (unsigned long long)step, (unsigned long long)ts.epoch, loss, acc, lr, tau,
                    gnorm, (double)o->batch / (dt > 0 ? dt : 1e-9), dt);
            fflush(r->logf);
        }
        const int last = step == total;
        if (tty) {
            fprintf(stderr,
                    "\rstep %llu/%llu  loss %.4f  %.1f pairs/s  ETA %s  peak %.0f MiB\033[K",
                    (unsigned long long)step, (unsigned long long)total, loss, pps, eta,
                    cli_peak_rss_mib());
            if (last) fputc('\n', stderr);
        } else if (r->rank == 0 && (done == 1 || step % 10 == 0 || last)) {
            fprintf(stderr,
                    "gradcache: step %llu/%llu loss %.4f acc %.3f lr %.3g tau %.4g grad_norm %.3g "
                    "%.1f pairs/s ETA %s peak %.0f MiB\n",
                    (unsigned long long)step, (unsigned long long)total, loss, acc, lr, tau, gnorm,
                    pps, eta, cli_peak_rss_mib());
        }

        if (sig) {
            if (tty) fputc('\n', stderr);
            if (save(r, "interrupted")) return CLI_EXIT_RUNTIME;
            cli_note("stopped by signal %d at step %llu; checkpoint saved in %s (continue with "
                     "--resume)",
                     sig, (unsigned long long)step, o->out);
            return sig == SIGINT ? CLI_EXIT_SIGINT : CLI_EXIT_SIGTERM;
        }
        if (o->stop_after > 0 && done >= (uint64_t)o->stop_after && !last) {
            if (tty) fputc('\n', stderr);
            if (save(r, "checkpoint")) return CLI_EXIT_RUNTIME;
            cli_note("stopped after %ld steps (--stop-after) at step %llu; continue with --resume",
                     o->stop_after, (unsigned long long)step);
            return CLI_EXIT_OK;
        }
        if (o->save_every > 0 && step % (uint64_t)o->save_every == 0 && !last) {
            if (tty) fputs("\n", stderr);
            if (save(r, "checkpoint")) return CLI_EXIT_RUNTIME;
        }
    }
    const double elapsed = cli_now() - t_start;
    if (save(r, "final")) return CLI_EXIT_RUNTIME;
    cli_note("trained %llu steps in %.1fs (%.1f pairs/s), peak memory %.0f MiB; model in %s",
             (unsigned long long)(gc_trainer_steps_done(r->trainer) - first), elapsed,
             (double)o->batch * (double)(gc_trainer_steps_done(r->trainer) - first) /
                 (elapsed > 0 ? elapsed : 1e-9),
             cli_peak_rss_mib(), o->out);
    return CLI_EXIT_OK;
}

/* --- the log's options record: what the report shows (key names differ from the step
 * records' fields, so a grep for "lr" or "dev" finds only those) --- */

static void log_options(run *r, uint64_t total_steps) {
    const train_opts *o = r->o;
    const gc_bert_config *cfg = gc_bert_get_config(r->model);
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(o->model));
    json_object_set_new(j, "train_data", json_string(o->train));
    if (o->dev) json_object_set_new(j, "dev_data", json_string(o->dev));
    json_object_set_new(j, "out", json_string(o->out));
    json_object_set_new(j, "batch_size", json_integer(o->batch));
    const gc_trainer_info *ti = gc_trainer_get_info(r->trainer); /* the planner's choice */
    json_object_set_new(j, "query_chunk_size",
                        json_integer(o->budget ? ti->query_chunk : o->qchunk));
    json_object_set_new(j, "passage_chunk_size",
                        json_integer(o->budget ? ti->passage_chunk : o->pchunk));
    json_object_set_new(j, "no_cache", json_boolean(o->no_cache));
    if (o->budget) json_object_set_new(j, "memory_budget", json_integer((json_int_t)o->budget));
    json_object_set_new(j, "accumulation_steps", json_integer(o->accum));
    json_object_set_new(j, "hard_negatives", json_integer(r->K));
    json_object_set_new(j, "max_query_len", json_integer(o->max_q));
    json_object_set_new(j, "max_passage_len", json_integer(o->max_p));
    json_object_set_new(j, "total_steps", json_integer((json_int_t)total_steps));
    json_object_set_new(j, "optimizer", json_string(o->optimizer));
    json_object_set_new(j, "peak_lr", json_real(o->lr));
    json_object_set_new(j, "weight_decay", json_real(o->wd));
    json_object_set_new(j, "warmup_steps", json_integer(o->warmup));
    json_object_set_new(j, "schedule", json_string(o->schedule));
    json_object_set_new(j, "max_grad_norm", json_real(o->max_grad_norm));
    json_object_set_new(j, "initial_temperature", json_real(o->temperature));
    json_object_set_new(j, "learn_temperature", json_boolean(o->learn_temp));
    json_object_set_new(j, "symmetric", json_boolean(o->symmetric));
    char num[32]; /* the float dropouts at float precision (0.1, not 0.100000001) */
    snprintf(num, sizeof num, "%.7g", (double)cfg->hidden_dropout);
    json_object_set_new(j, "hidden_dropout", json_real(strtod(num, NULL)));
    snprintf(num, sizeof num, "%.7g", (double)cfg->attn_dropout);
    json_object_set_new(j, "attention_dropout", json_real(strtod(num, NULL)));
    if (o->mat.count) {
        char m[512];
        gc_matryoshka_format(&o->mat, m, sizeof m);
        json_object_set_new(j, "matryoshka", json_string(m));
    }
    json_object_set_new(j, "seed", json_integer(o->seed));
    json_object_set_new(j, "threads", json_integer(omp_get_max_threads()));
    json_object_set_new(j, "resume", json_boolean(o->resume));
    json_object_set_new(j, "version", json_string(gc_version()));
    size_t len = 0;
    for (int i = 0; i < r->argc; i++) len += strlen(r->argv[i]) + 1;
    char *cmd = malloc(len + 1);
    if (cmd) {
        cmd[0] = 0;
        for (int i = 0; i < r->argc; i++) {
            if (i) strcat(cmd, " ");
            strcat(cmd, r->argv[i]);
        }
        json_object_set_new(j, "command", json_string(cmd));
        free(cmd);
    }
    json_t *rec = json_pack("{s:o}", "options", j);
    char *line = rec ? json_dumps(rec, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    if (line) {
        fprintf(r->logf, "%s\n", line);
        fflush(r->logf);
    }
    free(line);
    json_decref(rec);
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
        {"--dev-split", OPT_STR, &o->dev_split, 0, 0, 0},
        {"--query-field", OPT_STR, &o->fields.query, 0, 0, 0},
        {"--positive-field", OPT_STR, &o->fields.positive, 0, 0, 0},
        {"--negatives-field", OPT_STR, &o->fields.negatives, 0, 0, 0},
        {"--query-prompt", OPT_STR, &o->query_prompt, 0, 0, 0},
        {"--passage-prompt", OPT_STR, &o->passage_prompt, 0, 0, 0},
        {"--out", OPT_STR, &o->out, 0, 0, 0},
        {"--log", OPT_STR, &o->log, 0, 0, 0},
        {"--batch-size", OPT_INT, &o->batch, 1, IMAX, 0},
        {"--chunk-size", OPT_INT, &o->chunk, 1, IMAX, 0},
        {"--query-chunk-size", OPT_INT, &o->qchunk, 1, IMAX, 0},
        {"--passage-chunk-size", OPT_INT, &o->pchunk, 1, IMAX, 0},
        {"--no-cache", OPT_FLAG, &o->no_cache, 0, 0, 0},
        {"--memory-budget", OPT_STR, &o->memory_budget, 0, 0, 0},
        {"--accumulation-steps", OPT_INT, &o->accum, 1, IMAX, 0},
        {"--steps", OPT_INT, &o->steps, 1, 1e15, 0},
        {"--epochs", OPT_INT, &o->epochs, 1, 1e6, 0},
        {"--lr", OPT_FLOAT, &o->lr, 0, FLT_MAX, 0},
        {"--optimizer", OPT_STR, &o->optimizer, 0, 0, 0},
        {"--weight-decay", OPT_FLOAT, &o->wd, 0, FLT_MAX, 0},
        {"--warmup", OPT_INT, &o->warmup, 0, 1e15, 0},
        {"--schedule", OPT_STR, &o->schedule, 0, 0, 0},
        {"--max-grad-norm", OPT_FLOAT, &o->max_grad_norm, 0, FLT_MAX, 0},
        {"--temperature", OPT_FLOAT, &o->temperature, 1e-6, 1e6, 0},
        {"--learn-temperature", OPT_FLAG, &o->learn_temp, 0, 0, 0},
        {"--symmetric", OPT_FLAG, &o->symmetric, 0, 0, 0},
        {"--negatives", OPT_INT, &o->negatives, 0, 1 << 16, 0},
        {"--max-query-len", OPT_INT, &o->max_q, 2, 1 << 20, 0},
        {"--max-passage-len", OPT_INT, &o->max_p, 2, 1 << 20, 0},
        {"--dropout", OPT_FLOAT, &o->dropout, 0, 0.99, 0},
        {"--seed", OPT_INT, &o->seed, 0, 9e18, 0},
        {"--precision", OPT_STR, &o->precision, 0, 0, 0},
        {"--threads", OPT_INT, &o->threads, 1, 4096, 0},
        {"--save-every", OPT_INT, &o->save_every, 1, 1e15, 0},
        {"--stop-after", OPT_INT, &o->stop_after, 1, 1e15, 0},
        {"--resume", OPT_FLAG, &o->resume, 0, 0, 0},
        {"--matryoshka", OPT_STR, &o->matryoshka, 0, 0, 0},
        {"--report", OPT_STR, &o->report, 0, 0, 0},
        {"--no-report", OPT_FLAG, &o->no_report, 0, 0, 0},
        {"--overwrite", OPT_FLAG, &o->overwrite, 0, 0, 0},
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
    if (o->memory_budget) {
        if ((rc = cli_parse_size("train", "--memory-budget", o->memory_budget, &o->budget)))
            return rc;
        if (o->no_cache)
            return cli_usage("train ", "--memory-budget plans the gradient cache; not with "
                                       "--no-cache");
        if (!cli_find(opts, "--chunk-size")->seen && !cli_find(opts, "--query-chunk-size")->seen &&
            !cli_find(opts, "--passage-chunk-size")->seen)
            o->qchunk = o->pchunk = 0; /* the planner chooses */
    }
    if (!o->steps && !o->epochs) o->epochs = 1;
    o->dropout_set = cli_find(opts, "--dropout")->seen;
    o->negatives_set = cli_find(opts, "--negatives")->seen;
    if (o->report && !o->log) return cli_usage("train ", "--report needs --log (its data)");
    if (o->matryoshka && gc_matryoshka_parse(o->matryoshka, &o->mat) != GC_OK)
        return cli_usage("train ", "--matryoshka: %s", gc_last_error());
    return 0;
}

static void run_free(run *r) {
    gc_trainer_free(r->trainer);
    gc_bert_free(r->model);
    gc_tokenizer_free(r->tok);
    gc_dataset_free(r->data);
    gc_dataset_free(r->dev);
    gc_beir_free(r->beir);
    gc_token_list_free(&r->tq);
    gc_token_list_free(&r->tp);
    gc_token_list_free(&r->tn);
    gc_token_list_free(&r->dq);
    gc_token_list_free(&r->dp);
    free(r->qtext);
    free(r->ptext);
    free(r->ntext);
    if (r->logf) fclose(r->logf);
    gc_dir_lock_release(r->lock);
}

/* --out: locked, cleaned of what an interrupted run left, and allowed (not an input, not a
 * folder of something else); the --log target is not an input either. */
static int open_out(run *r) {
    const train_opts *o = r->o;
    const char *inputs[3] = {o->train, o->dev, o->model};
    r->rc = CLI_EXIT_RUNTIME;
    r->out = o->out;
    struct stat sb;
    if (lstat(o->out, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        /* a link to a folder: the snapshot replaces the folder it names, the link stays */
        if (!realpath(o->out, r->out_buf))
            return cli_error("--out %s: cannot follow the link: %s", o->out, strerror(errno));
        r->out = r->out_buf;
    }
    gc_status st = gc_check_not_input(r->out, "--out", inputs, 3);
    if (st != GC_OK) {
        r->rc = CLI_EXIT_USAGE;
        return cli_usage("train ", "%s (--out may not be the --model folder or hold an input)",
                         gc_last_error());
    }
    if (o->log && (st = gc_check_not_input(o->log, "--log", inputs, 3)) != GC_OK) {
        r->rc = CLI_EXIT_USAGE;
        return cli_usage("train ", "%s", gc_last_error());
    }
    int ostate = fs_dir_state(r->out);
    if (ostate == FS_NOT_DIR) return cli_error("--out %s exists and is not a folder", o->out);
    if (o->log && ostate != FS_MISSING) {
        /* a save replaces the whole of --out: a log inside it would be thrown away */
        char logdir[4096], *slash;
        snprintf(logdir, sizeof logdir, "%s", o->log);
        slash = strrchr(logdir, '/');
        if (slash) *slash = '\0';
        char *rl = realpath(slash ? (logdir[0] ? logdir : "/") : ".", NULL);
        char *ro = realpath(r->out, NULL);
        size_t n = ro ? strlen(ro) : 0;
        int inside = rl && ro && strncmp(rl, ro, n) == 0 && (rl[n] == '/' || rl[n] == '\0');
        free(rl);
        free(ro);
        if (inside) {
            r->rc = CLI_EXIT_USAGE;
            return cli_usage("train ",
                             "--log %s lies inside --out, which every save replaces as a whole; "
                             "put the log beside it",
                             o->log);
        }
    }
    if (r->rank == 0) { /* the one writer */
        if ((st = gc_dir_lock_acquire(&r->lock, r->out)) != GC_OK) return cli_fail(st, "--out");
        int removed = 0;
        gc_snapshot_cleanup(r->out, &removed);
        if (removed)
            cli_note("removed %d temporary file%s of an interrupted save of %s", removed,
                     removed > 1 ? "s" : "", o->out);
    }
    ostate = fs_dir_state(r->out);
    if (snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/training_state/checkpoint.bin", r->out) >=
        (int)sizeof r->ckpt_path)
        return cli_error("--out path too long");
    char legacy[4200];
    snprintf(legacy, sizeof legacy, "%s/checkpoint.bin", r->out);
    const int have_ckpt = fs_exists(r->ckpt_path);
    if (!have_ckpt && fs_exists(legacy))
        return cli_error(
            "%s holds a checkpoint.bin of an earlier gradcache version, which this one "
            "does not resume; choose another --out",
            o->out);
    if (o->resume && !have_ckpt) return cli_error("--resume: no checkpoint at %s", r->ckpt_path);
    if (!o->resume && have_ckpt)
        return cli_error("%s holds a checkpoint of an earlier run; pass --resume to continue it "
                         "or choose another --out",
                         o->out);
    if (!o->resume && ostate == FS_NONEMPTY && !o->overwrite)
        return cli_error("--out %s is not empty and holds no checkpoint to resume; pass "
                         "--overwrite to replace it as a whole, or choose another --out",
                         o->out);
    r->rc = 0;
    return 0;
}

static int setup_and_train(run *r) {
    const train_opts *o = r->o;
    gc_status st;
    r->ks[0] = 1;
    r->ks[1] = 10;
    r->ks[2] = 100;

    /* the output folder first: a run that cannot save should fail before it trains */
    if (open_out(r)) return r->rc;
    /* data */
    st = gc_dataset_load_with(&r->data, o->train, &o->fields);
    if (st != GC_OK) return cli_fail(st, NULL);
    if (r->data->shape != GC_SHAPE_PAIRS)
        cli_note("%s: lines read as %s", o->train, gc_data_shape_str(r->data->shape));
    const int dev_dir =
        o->dev && fs_dir_state(o->dev) != FS_MISSING && fs_dir_state(o->dev) != FS_NOT_DIR;
    if (o->dev_split && !dev_dir)
        return cli_usage("train ", "--dev-split goes with a BEIR --dev folder");
    if (dev_dir) {
        st = gc_beir_load(&r->beir, o->dev, o->dev_split ? o->dev_split : "test");
        if (st != GC_OK) return cli_fail(st, "--dev");
    } else if (o->dev) {
        st = gc_dataset_load_with(&r->dev, o->dev, &o->fields);
        if (st != GC_OK) return cli_fail(st, NULL);
    }
    if (r->data->n > INT32_MAX) return cli_error("%s: too many pairs", o->train);
    if (choose_negatives(r)) return CLI_EXIT_RUNTIME;

    /* model */
    if (cli_load_model(o->model, &r->model, &r->tok)) return CLI_EXIT_RUNTIME;
    const gc_bert_config *cfg = gc_bert_get_config(r->model);
    if (o->max_q > cfg->max_position || o->max_p > cfg->max_position)
        return cli_usage("train ",
                         "--max-query-len/--max-passage-len exceed the model's %d positions",
                         cfg->max_position);
    if (o->dropout_set) gc_bert_set_dropout(r->model, (float)o->dropout);
    gc_precision prec = GC_PRECISION_FP32;
    if (o->precision && gc_precision_parse(o->precision, &prec) != GC_OK)
        return cli_usage("train ", "--precision must be fp32 or bf16, got '%s'", o->precision);
    const char *prec_note = NULL;
    prec = gc_precision_for_cpu(prec, &prec_note);
    if (prec_note) cli_note("--precision bf16: %s", prec_note);
    if (prec == GC_PRECISION_BF16)
        cli_note("precision bf16: bf16 matrix products, fp32 accumulation and master weights");
    gc_status pst = gc_bert_set_precision(r->model, prec);
    if (pst != GC_OK) return cli_fail(pst, "--precision");
    r->enc = gc_bert_encoder(r->model);
    /* prompts: given, or the model folder's; what is used is what the saved folder says */
    gc_prompts *prompts = gc_bert_prompts(r->model);
    if ((o->query_prompt && gc_prompts_set(prompts, "query", o->query_prompt) != GC_OK) ||
        (o->passage_prompt && gc_prompts_set(prompts, "passage", o->passage_prompt) != GC_OK))
        return cli_fail(GC_ERR_NOMEM, "prompts");
    r->qprompt = gc_prompts_get(prompts, "query");
    r->pprompt = gc_prompts_get(prompts, "passage");
    if ((r->qprompt && *r->qprompt) || (r->pprompt && *r->pprompt))
        cli_note("prompts: query \"%s\", passage \"%s\"", r->qprompt ? r->qprompt : "",
                 r->pprompt ? r->pprompt : "");

    /* tokens, once */
    double t0 = cli_now();
    if (collect_texts(r->data, r->K, &r->qtext, &r->ptext, &r->ntext)) return CLI_EXIT_RUNTIME;
    if (tokenize_side(r, r->data, r->qtext, 0, (int)o->max_q, &r->tq) ||
        tokenize_side(r, r->data, r->ptext, 1, (int)o->max_p, &r->tp) ||
        (r->K > 0 && tokenize_side(r, r->data, r->ntext, 2, (int)o->max_p, &r->tn)))
        return CLI_EXIT_RUNTIME;
    if (r->dev) {
        const char **dq = NULL, **dp = NULL, **dn = NULL;
        int bad = collect_texts(r->dev, 0, &dq, &dp, &dn) ||
                  tokenize_side(r, r->dev, dq, 0, (int)o->max_q, &r->dq) ||
                  tokenize_side(r, r->dev, dp, 1, (int)o->max_p, &r->dp);
        free(dq);
        free(dp);
        free(dn);
        if (bad) return CLI_EXIT_RUNTIME;
    }
    if (r->beir) {
        const gc_beir *b = r->beir;
        size_t bad = 0;
        if (b->nqueries > INT_MAX || b->ndocs > INT_MAX)
            return cli_error("--dev %s: too large", o->dev);
        gc_status ts =
            gc_tokenize_many_prompt(r->tok, r->qprompt, (const char *const *)b->query_texts,
                                    b->nqueries, (int)o->max_q, &r->dq, &bad);
        if (ts != GC_OK)
            return cli_error("--dev %s: query \"%.80s\": %s", o->dev, b->query_ids[bad],
                             gc_last_error());
        ts = gc_tokenize_many_prompt(r->tok, r->pprompt, (const char *const *)b->doc_texts,
                                     b->ndocs, (int)o->max_p, &r->dp, &bad);
        if (ts != GC_OK)
            return cli_error("--dev %s: document \"%.80s\": %s", o->dev, b->doc_ids[bad],
                             gc_last_error());
    }
    cli_note("%s: %zu pairs, %d hard negatives each, tokenized in %.1fs", o->train, r->data->n,
             r->K, cli_now() - t0);
    int max_len = r->tq.max_len;
    const gc_token_list *lists[4] = {&r->tp, &r->tn, &r->dq, &r->dp};
    for (int i = 0; i < 4; i++)
        if (lists[i]->max_len > max_len) max_len = lists[i]->max_len;

    /* several ranks: all have their data and model (or all stop here) */
    int rc = sync_ranks(r, CLI_EXIT_OK, NULL);
    if (rc != CLI_EXIT_OK) return rc;

    /* the trainer: everything that decides the numbers */
    int fp = snprintf(r->fingerprint, sizeof r->fingerprint,
                      "max_query_len=%ld\nmax_passage_len=%ld\ndropout=%.9g/%.9g\n", o->max_q,
                      o->max_p, (double)cfg->hidden_dropout, (double)cfg->attn_dropout);
    /* prompts change the tokens, so a resume must use the same ones (recorded only when set, so
     * checkpoints of runs without prompts are unchanged) */
    if ((r->qprompt && *r->qprompt) || (r->pprompt && *r->pprompt))
        fp += snprintf(r->fingerprint + fp, sizeof r->fingerprint - (size_t)fp,
                       "prompts=%08x/%08x\n", prompt_hash(r->qprompt), prompt_hash(r->pprompt));
    if (prec != GC_PRECISION_FP32) /* fp32 adds no line: its checkpoints stay as they were */
        fp += snprintf(r->fingerprint + fp, sizeof r->fingerprint - (size_t)fp, "precision=%s\n",
                       gc_precision_name(prec));
    /* the starting model: a checkpoint resumes only with the model and tokenizer it began from */
    st = gc_bert_model_digest(o->model, r->fingerprint + fp, sizeof r->fingerprint - (size_t)fp);
    if (st != GC_OK) return cli_fail(st, "--model");
    gc_trainer_config tc = {
        .batch = (int)o->batch,
        .accumulation = (int)o->accum,
        .query_chunk = (int)o->qchunk,
        .passage_chunk = (int)o->pchunk,
        .no_cache = o->no_cache,
        .memory_budget = o->budget,
        .reps_bf16 = prec == GC_PRECISION_BF16,
        .max_len = max_len,
        .loss = {.temperature = (float)o->temperature, .symmetric = o->symmetric, .cosine = 1},
        .learn_temperature = o->learn_temp,
        .optim = {.kind = strcmp(o->optimizer, "sgd") == 0 ? GC_OPTIM_SGD : GC_OPTIM_ADAMW,
                  .weight_decay = (float)o->wd},
        .decay = gc_optim_default_decay,
        .lr = (float)o->lr,
        .schedule = strcmp(o->schedule, "constant") == 0 ? GC_SCHED_CONSTANT : GC_SCHED_LINEAR,
        .warmup = (uint64_t)o->warmup,
        .max_grad_norm = o->max_grad_norm,
        .steps = (uint64_t)o->steps,
        .epochs = (uint64_t)o->epochs,
        .seed = (uint64_t)o->seed,
        .fingerprint = r->fingerprint,
        .matryoshka = o->mat,
    };
    gc_train_data td = {
        .n = r->data->n,
        .K = r->K,
        .queries = gc_token_list_batch(&r->tq),
        .positives = gc_token_list_batch(&r->tp),
        .negatives = gc_token_list_batch(&r->tn),
        .query_text = r->qtext,
        .positive_text = r->ptext,
        .negative_text = r->K > 0 ? r->ntext : NULL,
    };
    st = gc_trainer_create(&r->trainer, &tc, &r->enc, NULL, &td, r->size > 1 ? &r->comm : NULL);
    if (st == GC_ERR_INVALID_ARG) return cli_usage("train ", "%s: %s", o->train, gc_last_error());
    if (st != GC_OK) return cli_fail(st, "preparing the training run");
    const gc_trainer_info *info = gc_trainer_get_info(r->trainer);
    if (info->self_negatives)
        cli_note("%s: %zu pairs (the first is pair %zu) have a hard negative equal to their own "
                 "positive",
                 r->data->path, info->self_negatives, info->first_self_negative + 1);
    const size_t n = r->data->n;
    if (n - info->batches_epoch0 * (size_t)o->batch >= (size_t)o->batch)
        cli_note("epoch 0 uses %zu of %zu pairs: the rest would have brought a false negative "
                 "(a repeated query or positive, or a hard negative equal to a positive) into "
                 "every batch left",
                 info->batches_epoch0 * (size_t)o->batch, n);

    if (o->resume) {
        st = gc_trainer_resume(r->trainer, r->ckpt_path);
        if (st != GC_OK) return cli_fail(st, "--resume");
        uint64_t epoch, position;
        gc_trainer_position(r->trainer, &epoch, &position);
        cli_note("resuming %s at step %llu (epoch %llu, batch %llu)", r->ckpt_path,
                 (unsigned long long)gc_trainer_steps_done(r->trainer), (unsigned long long)epoch,
                 (unsigned long long)position);
    }

    if (r->rank == 0) { /* rank 0 alone writes --out and --log */
        /* the output folder's parent: probed for a snapshot before any work */
        {
            char tmp[4400];
            st = gc_snapshot_begin(r->out, tmp, sizeof tmp);
            if (st != GC_OK) return cli_fail(st, "--out is not writable");
            gc_snapshot_abort(tmp);
        }
        if (o->log) {
            r->logf = fopen(o->log, o->resume ? "a" : "w");
            if (!r->logf) return cli_error("--log %s: cannot open for writing", o->log);
        }
    }
    if ((rc = sync_ranks(r, CLI_EXIT_OK, NULL)) != CLI_EXIT_OK) return rc;

    const uint64_t done = gc_trainer_steps_done(r->trainer);
    if (done >= info->total_steps) {
        cli_note("the checkpoint is at step %llu of %llu: nothing to train",
                 (unsigned long long)done, (unsigned long long)info->total_steps);
        return save(r, "final") ? CLI_EXIT_RUNTIME : CLI_EXIT_OK;
    }
    cli_note("training %llu steps of %ld pairs (%d micro-batch%s of %d, chunks %d/%d%s), %zu "
             "parameters, %d threads",
             (unsigned long long)(info->total_steps - done), o->batch, (int)o->accum,
             o->accum > 1 ? "es" : "", info->micro_batch, info->query_chunk, info->passage_chunk,
             o->no_cache ? ", no cache" : "", gc_bert_num_params(r->model), omp_get_max_threads());
    if (o->budget) {
        const gc_engine_plan *p = &info->plan;
        char b[32], pk[32], en[32], mo[32], ac[32];
        cli_format_size(p->budget, b, sizeof b);
        cli_format_size(p->peak_bytes, pk, sizeof pk);
        cli_format_size(p->engine_bytes, en, sizeof en);
        cli_format_size(p->model_bytes, mo, sizeof mo);
        cli_format_size(p->encoder_bytes, ac, sizeof ac);
        cli_note("memory plan (budget %s): chunks %d/%d; pass-1 activations kept for %d of %d "
                 "query and %d of %d passage chunks (%d examples kept, %d re-encoded); expected "
                 "peak %s (engine %s, model %s, encoder activations %s)",
                 b, p->query_chunk, p->passage_chunk, p->kept_query, p->query_chunks,
                 p->kept_passage, p->passage_chunks, p->kept_examples, p->reencoded_examples, pk,
                 en, mo, ac);
    }
    if (r->size > 1)
        cli_note("%d ranks (mpirun): each encodes %d of the %d pairs of a micro-batch and scores "
                 "its %d queries against all passages",
                 r->size, info->micro_batch / r->size, info->micro_batch,
                 info->micro_batch / r->size);
    install_signals(); /* before the first log line: a reader of the log may signal then */
    if (r->logf) log_options(r, info->total_steps);
    if (!o->resume && r->dev && evaluate_dev(r, "before training")) return CLI_EXIT_RUNTIME;
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
    r.comm = gc_comm_single();
    r.size = 1;
    r.argc = argc;
    r.argv = argv;
    const int mpi = gc_comm_mpi_launched();
    if (mpi) {
        gc_status st = gc_comm_mpi_create(&r.comm);
        if (st != GC_OK) return cli_fail(st, "mpirun");
        r.rank = cli_rank = gc_comm_rank(&r.comm);
        r.size = gc_comm_size(&r.comm);
    }
    if (r.size > 1 && (o.batch / o.accum) % r.size != 0) {
        /* every rank sees the same numbers: all stop here without agreeing */
        rc = cli_usage("train ",
                       "--batch-size %ld (micro-batches of %ld) is not divisible by the %d ranks "
                       "of mpirun -np: each rank takes an equal share of every batch",
                       o.batch, o.batch / o.accum, r.size);
        r.agreed_failure = 1;
    } else {
        rc = setup_and_train(&r);
    }
    if (!r.agreed_failure) rc = sync_ranks(&r, rc, NULL);
    if (r.logf && !o.no_report &&
        (rc == CLI_EXIT_OK || rc == CLI_EXIT_SIGINT || rc == CLI_EXIT_SIGTERM)) {
        fclose(r.logf); /* complete on disk before it is read back */
        r.logf = NULL;
        char path[4096];
        const char *html = o.report;
        if (!html && cli_report_path(o.log, path, sizeof path) == 0) html = path;
        if (html && cli_write_report(o.log, html) && rc == CLI_EXIT_OK) rc = CLI_EXIT_RUNTIME;
    }
    run_free(&r); /* --out is only ever written by a whole snapshot: nothing to undo */
    gc_matmul_cleanup();
    if (mpi) gc_comm_mpi_free(&r.comm);
    return rc;
}

/* cli.h: what the gradcache command line shares between its subcommands: messages and exit
 * codes, the option parser, loading a model folder, and the retrieval evaluation. */
#ifndef GC_CLI_H
#define GC_CLI_H

#include "gc_bert.h"
#include "gc_tokenizer.h"
#include "gradcache.h"

#include <stddef.h>
#include <stdint.h>

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_RUNTIME = 1, /* a file, model or numeric problem found while running */
    CLI_EXIT_USAGE = 2,   /* bad command line */
    CLI_EXIT_SIGINT = 130,
    CLI_EXIT_SIGTERM = 143,
};

/* "gradcache: error: <message>" on stderr; returns CLI_EXIT_RUNTIME. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with exit code CLI_EXIT_USAGE and a pointer to --help. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "gradcache: <message>" on stderr (progress and notes). */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a library failure: "gradcache: error: <what>: <gc_last_error()>". */
int cli_fail(gc_status st, const char *what);
/* Rank of this process under mpirun (0 otherwise). Only rank 0 prints errors and notes; the
 * others keep the message (cli_last_message) for the agreement that lets rank 0 print it. */
extern int cli_rank;
const char *cli_last_message(void);

/* ---- options ---- */

typedef enum cli_opt_kind {
    OPT_FLAG,  /* no value; sets *(int *)dst = 1 */
    OPT_STR,   /* const char * */
    OPT_INT,   /* long, within [min, max] */
    OPT_FLOAT, /* double, finite, within [min, max] */
} cli_opt_kind;

typedef struct cli_opt {
    const char *name; /* "--batch-size" */
    cli_opt_kind kind;
    void *dst;
    double min, max;
    int seen; /* set by the parser */
} cli_opt;

/* Parse argv[first..argc) against opts (terminated by a NULL name). "--name value" and
 * "--name=value" both work; an option given twice takes the last value. Returns 0 on success, 1
 * when --help was given (help printed by the caller), or CLI_EXIT_USAGE after printing the problem.
 */
int cli_parse(const char *cmd, int argc, char **argv, int first, cli_opt *opts);
/* Find an option's entry to ask whether it was seen. */
const cli_opt *cli_find(const cli_opt *opts, const char *name);
/* Strict numbers: the whole string, no spaces, finite, within range. 0 on success, else
 * prints a usage error naming opt and returns CLI_EXIT_USAGE. */
int cli_parse_long(const char *cmd, const char *opt, const char *s, long min, long max, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                     double *out);
/* A byte count: a positive number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB,
 * TB), e.g. 3GiB or 1.5GiB; else a usage error naming opt (CLI_EXIT_USAGE). */
int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t *out);
/* "1.50 GiB", "12.0 MiB", ... */
void cli_format_size(size_t bytes, char *buf, size_t n);

/* ---- models, memory and time ---- */

/* Load a model folder's tokenizer and BERT; prints the error and returns nonzero on failure. */
int cli_load_model(const char *dir, gc_bert **model, gc_tokenizer **tok);

/* Peak resident memory of this process in MiB (getrusage). */
double cli_peak_rss_mib(void);
double cli_now(void);

/* ---- retrieval evaluation of query/positive pairs ---- */

struct gc_dataset;
struct gc_retrieval_metrics;

typedef struct cli_eval_opts {
    int max_query_len;
    int max_passage_len;
    int batch;   /* sequences per encoder call */
    int reserve; /* size the model's buffers for this evaluation first */
    const int *ks;
    int nk;
    const char *query_prompt, *passage_prompt; /* put before every query / passage (or NULL) */
    int dim; /* truncate the embeddings to this many components, re-normalized (0: all) */
} cli_eval_opts;

/* Tokenize the dataset's queries and positives and evaluate them (gc_eval_pairs). Prints the
 * error and returns nonzero on failure. */
int cli_eval_dataset(gc_bert *model, const gc_tokenizer *tok, const struct gc_dataset *d,
                     const cli_eval_opts *o, struct gc_retrieval_metrics *out);
struct gc_beir;
struct gc_beir_metrics;
/* Tokenize a BEIR set's queries and documents (with the prompts) and evaluate them
 * (gc_eval_beir). Prints the error and returns nonzero on failure. */
int cli_eval_beir(gc_bert *model, const gc_tokenizer *tok, const struct gc_beir *b,
                  const cli_eval_opts *o, struct gc_beir_metrics *out);
/* {"ndcg@10": ..., "mrr@10": ..., "recall@1": ..., ..., "map@100": ..., "n": ...}, no newline. */
void cli_beir_json(const struct gc_beir_metrics *m, char *buf, size_t cap);
/* A prompt: the option's text when given, else the model folder's prompt of that name (or NULL). */
const char *cli_prompt(gc_bert *model, const char *given, const char *name);
/* {"recall@1": ..., "mrr@10": ..., "ndcg@10": ..., "n": ...} without a newline. */
void cli_metrics_json(const struct gc_retrieval_metrics *m, char *buf, size_t cap);
/* Parse "1,10,100" into ks (at most GC_EVAL_MAX_K). 0 or CLI_EXIT_USAGE. */
int cli_parse_ks(const char *cmd, const char *s, int *ks, int *nk);

/* Subcommands: each returns the process exit code. */
int cmd_train(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* ---- training reports (report.c) ---- */

/* The default report beside a log: LOG less .jsonl/.json/.log, plus .html. 0 or an error. */
int cli_report_path(const char *log, char *buf, size_t cap);
/* gc_report_write with a note; a log that is not a regular file (a FIFO) is skipped. */
int cli_write_report(const char *log, const char *html);

#endif

/* encode.c: the `encode` and `eval` subcommands and the retrieval evaluation `train --dev`
 * shares with them. */
#include "cli.h"
#include "gc_beir.h"
#include "gc_eval.h"
#include "gc_io.h"
#include "gc_prompts.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ENCODE_HELP[] =
    "Usage: gradcache encode --model DIR --input FILE --field NAME --out FILE.npy [options]\n"
    "\n"
    "Embed one string field of every line of a JSONL (or JSONL.gz) file and write a float32\n"
    ".npy of shape (lines, dim), one row per non-blank line in file order. The embeddings are\n"
    "the model's output (normalized when the model folder has a Normalize module).\n"
    "\n"
    "Options:\n"
    "  --model DIR       sentence-transformers or Hugging Face BERT folder\n"
    "  --input FILE      JSONL or JSONL.gz, one object per line\n"
    "  --field NAME      the string field to embed (e.g. query, positive, text)\n"
    "  --out FILE        the .npy to write (atomically: complete or not there)\n"
    "  --batch-size N    sequences per forward pass (default 64)\n"
    "  --max-len N       tokens per text incl. [CLS]/[SEP] (default: the model's max_seq_length)\n"
    "  --prompt-name NAME  put the model folder's prompt NAME (query, passage, ... from its\n"
    "                    config_sentence_transformers.json) before every text, as\n"
    "                    sentence-transformers' encode(x, prompt_name=NAME) does\n"
    "  --dim N           keep the first N components of each embedding and re-normalize them\n"
    "                    (for models trained with Matryoshka sizes; default: all)\n"
    "  --threads N       OpenMP threads (default: all cores)\n"
    "  --help            this text\n";

static const char EVAL_HELP[] =
    "Usage: gradcache eval --model DIR --data FILE [options]\n"
    "       gradcache eval --model DIR --beir DIR [--split NAME] [options]\n"
    "\n"
    "Retrieval evaluation on query/positive pairs: every query is ranked against the positives\n"
    "of all lines of the file (its own line's positive is the one relevant document) by cosine\n"
    "similarity, exactly (blocked matrix products, no index). Prints one JSON object on\n"
    "stdout: recall@K for each K, mrr@10, ndcg@10 and n (the number of queries).\n"
    "With --beir, every query of qrels/SPLIT.tsv is ranked against the whole corpus and the JSON\n"
    "holds pytrec_eval's ndcg@10, mrr@10, recall@1, recall@10, recall@100, map@100 and n.\n"
    "\n"
    "Options:\n"
    "  --model DIR            sentence-transformers or Hugging Face BERT folder\n"
    "  --data FILE            JSONL or JSONL.gz pairs (the shapes train reads)\n"
    "  --beir DIR             a BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv\n"
    "  --split NAME           the qrels file of --beir (default test)\n"
    "  --query-field NAME, --positive-field NAME, --negatives-field NAME\n"
    "                         field names of --data (default: detect the shape)\n"
    "  --query-prompt TEXT    put before every query (default: the model's \"query\" prompt)\n"
    "  --passage-prompt TEXT  put before every passage (default: the model's \"passage\" or\n"
    "                         \"document\" prompt)\n"
    "  --k LIST               comma-separated recall cut-offs of --data (default 1,10,100)\n"
    "  --batch-size N         sequences per forward pass (default 64)\n"
    "  --max-query-len N      query tokens (default: the model's max_seq_length)\n"
    "  --max-passage-len N    passage tokens (default: the model's max_seq_length)\n"
    "  --dim N                score the first N components of the embeddings, re-normalized\n"
    "                         (for models trained with Matryoshka sizes; default: all)\n"
    "  --threads N            OpenMP threads (default: all cores)\n"
    "  --help                 this text\n";

int cli_parse_ks(const char *cmd, const char *s, int *ks, int *nk) {
    *nk = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char tok[32];
        if (n == 0 || n >= sizeof tok)
            return cli_usage("eval ", "--k expects numbers like 1,10,100, got '%s'", s);
        memcpy(tok, p, n);
        tok[n] = '\0';
        long v;
        if (cli_parse_long(cmd, "--k", tok, 1, INT_MAX, &v)) return CLI_EXIT_USAGE;
        if (*nk == GC_EVAL_MAX_K)
            return cli_usage("eval ", "--k takes at most %d cut-offs", GC_EVAL_MAX_K);
        ks[(*nk)++] = (int)v;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

void cli_metrics_json(const gc_retrieval_metrics *m, char *buf, size_t cap) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, cap - used, "{");
    for (int k = 0; k < m->nk && used < cap; k++)
        used += (size_t)snprintf(buf + used, cap - used, "\"recall@%d\": %.6f, ", m->ks[k],
                                 m->recall[k]);
    if (used < cap)
        snprintf(buf + used, cap - used, "\"mrr@10\": %.6f, \"ndcg@10\": %.6f, \"n\": %d}",
                 m->mrr10, m->ndcg10, m->n);
}

/* The model's usable sequence length: max_seq_length, bounded by its position table. */
static int model_max_len(const gc_bert *m) {
    const gc_bert_config *c = gc_bert_get_config(m);
    int len = c->max_seq_length > 0 ? c->max_seq_length : c->max_position;
    if (c->max_position > 0 && len > c->max_position) len = c->max_position;
    return len < 2 ? 2 : len;
}

/* With o->reserve, reserve inference buffers for batches of o->batch sequences of the longer of
 * the two lists; prints the error and returns nonzero on failure. */
static int reserve_for(gc_bert *model, const cli_eval_opts *o, const gc_token_list *a,
                       const gc_token_list *b) {
    if (!o->reserve) return 0;
    int len = a->max_len > b->max_len ? a->max_len : b->max_len;
    gc_status st = gc_bert_reserve_inference(model, o->batch, len);
    return st == GC_OK ? 0 : cli_fail(st, "preparing the model");
}

int cli_eval_dataset(gc_bert *model, const gc_tokenizer *tok, const gc_dataset *d,
                     const cli_eval_opts *o, gc_retrieval_metrics *out) {
    const size_t n = d->n;
    const char **qt = malloc(n * sizeof(char *)), **pt = malloc(n * sizeof(char *));
    gc_token_list tq = {0}, tp = {0};
    int rc = CLI_EXIT_RUNTIME;
    if (!qt || !pt) {
        cli_error("out of memory for %zu pairs", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        qt[i] = d->pairs[i].query;
        pt[i] = d->pairs[i].positive;
    }
    if (n > INT_MAX) {
        cli_error("%s: %zu pairs are more than can be evaluated at once", d->path, n);
        goto done;
    }
    size_t bad = 0;
    gc_status st =
        gc_tokenize_many_prompt(tok, o->query_prompt, qt, n, o->max_query_len, &tq, &bad);
    if (st == GC_OK)
        st = gc_tokenize_many_prompt(tok, o->passage_prompt, pt, n, o->max_passage_len, &tp, &bad);
    if (st != GC_OK) {
        cli_error("%s:%zu: %s", d->path, d->pairs[bad].line, gc_last_error());
        goto done;
    }
    if (reserve_for(model, o, &tq, &tp) != 0) goto done;
    gc_encoder enc = gc_bert_encoder(model);
    gc_token_batch qb = gc_token_list_batch(&tq), pb = gc_token_list_batch(&tp);
    st = gc_eval_pairs_dim(&enc, &qb, &pb, o->batch, o->dim, o->ks, o->nk, out);
    if (st != GC_OK) {
        cli_fail(st, "evaluating");
        goto done;
    }
    rc = 0;
done:
    free(qt);
    free(pt);
    gc_token_list_free(&tq);
    gc_token_list_free(&tp);
    return rc;
}

const char *cli_prompt(gc_bert *model, const char *given, const char *name) {
    return given ? given : gc_prompts_get(gc_bert_prompts(model), name);
}

void cli_beir_json(const gc_beir_metrics *m, char *buf, size_t cap) {
    snprintf(buf, cap,
             "{\"ndcg@10\": %.6f, \"mrr@10\": %.6f, \"recall@1\": %.6f, \"recall@10\": %.6f, "
             "\"recall@100\": %.6f, \"map@100\": %.6f, \"n\": %d}",
             m->ndcg10, m->mrr10, m->recall1, m->recall10, m->recall100, m->map100, m->n);
}

int cli_eval_beir(gc_bert *model, const gc_tokenizer *tok, const gc_beir *b, const cli_eval_opts *o,
                  gc_beir_metrics *out) {
    gc_token_list tq = {0}, td = {0};
    int rc = CLI_EXIT_RUNTIME;
    if (b->ndocs > INT_MAX || b->nqueries > INT_MAX)
        return cli_error("%s: too large to evaluate at once", b->path);
    size_t bad = 0;
    gc_status st =
        gc_tokenize_many_prompt(tok, o->query_prompt, (const char *const *)b->query_texts,
                                b->nqueries, o->max_query_len, &tq, &bad);
    if (st != GC_OK) {
        cli_error("%s: query \"%.80s\": %s", b->path, b->query_ids[bad], gc_last_error());
        goto done;
    }
    st = gc_tokenize_many_prompt(tok, o->passage_prompt, (const char *const *)b->doc_texts,
                                 b->ndocs, o->max_passage_len, &td, &bad);
    if (st != GC_OK) {
        cli_error("%s: document \"%.80s\": %s", b->path, b->doc_ids[bad], gc_last_error());
        goto done;
    }
    if (reserve_for(model, o, &tq, &td) != 0) goto done;
    gc_encoder enc = gc_bert_encoder(model);
    gc_token_batch qb = gc_token_list_batch(&tq), db = gc_token_list_batch(&td);
    st = gc_eval_beir(&enc, b, &qb, &db, o->batch, out);
    if (st != GC_OK) {
        cli_fail(st, "evaluating");
        goto done;
    }
    rc = 0;
done:
    gc_token_list_free(&tq);
    gc_token_list_free(&td);
    return rc;
}

int cmd_encode(int argc, char **argv) {
    const char *model_dir = NULL, *input = NULL, *field = NULL, *out = NULL, *prompt_name = NULL;
    long batch = 64, max_len = 0, threads = 0, keep = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model_dir, 0, 0, 0},
        {"--input", OPT_STR, &input, 0, 0, 0},
        {"--field", OPT_STR, &field, 0, 0, 0},
        {"--out", OPT_STR, &out, 0, 0, 0},
        {"--batch-size", OPT_INT, &batch, 1, 1 << 20, 0},
        {"--max-len", OPT_INT, &max_len, 2, 1 << 20, 0},
        {"--prompt-name", OPT_STR, &prompt_name, 0, 0, 0},
        {"--dim", OPT_INT, &keep, 1, 1 << 20, 0},
        {"--threads", OPT_INT, &threads, 1, 4096, 0},
        {NULL, OPT_FLAG, NULL, 0, 0, 0},
    };
    int rc = cli_parse("encode", argc, argv, 2, opts);
    if (rc == 1) {
        fputs(ENCODE_HELP, stdout);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    if (!model_dir) return cli_usage("encode ", "--model is required");
    if (!input) return cli_usage("encode ", "--input is required");
    if (!field) return cli_usage("encode ", "--field is required");
    if (!out) return cli_usage("encode ", "--out is required");
    if (threads > 0) omp_set_num_threads((int)threads);
    /* --out before any work: never an input, and writable (a FIFO or device is not probed:
     * opening it is already writing to it) */
    {
        const char *inputs[2] = {input, model_dir};
        gc_status cst = gc_check_not_input(out, "--out", inputs, 2);
        if (cst != GC_OK) return cli_usage("encode ", "%s", gc_last_error());
        gc_afile *probe = NULL;
        if (gc_path_kind(out) >= 0 && (cst = gc_afile_open(&probe, out)) != GC_OK)
            return cli_fail(cst, "--out");
        gc_afile_abort(probe);
    }

    char **texts = NULL;
    size_t ntexts = 0;
    gc_status st = gc_jsonl_read_field(input, field, &texts, &ntexts);
    if (st != GC_OK) return cli_fail(st, NULL);
    gc_bert *model = NULL;
    gc_tokenizer *tok = NULL;
    gc_token_list t = {0};
    float *emb = NULL;
    rc = CLI_EXIT_RUNTIME;
    if (cli_load_model(model_dir, &model, &tok)) goto done;
    int limit = model_max_len(model);
    if (max_len == 0) max_len = limit;
    if (max_len > gc_bert_get_config(model)->max_position) {
        rc = cli_usage("encode ", "--max-len %ld exceeds the model's %d positions", max_len,
                       gc_bert_get_config(model)->max_position);
        goto done;
    }
    if (ntexts > INT_MAX) {
        cli_error("%s: %zu texts are more than can be encoded at once", input, ntexts);
        goto done;
    }
    const char *prompt = NULL;
    if (prompt_name && !(prompt = gc_prompts_get(gc_bert_prompts(model), prompt_name))) {
        cli_error("--prompt-name %s: the model folder %s has no such prompt (see its "
                  "config_sentence_transformers.json)",
                  prompt_name, model_dir);
        goto done;
    }
    size_t bad = 0;
    st = gc_tokenize_many_prompt(tok, prompt, (const char *const *)texts, ntexts, (int)max_len, &t,
                                 &bad);
    if (st != GC_OK) {
        cli_error("%s: text %zu: %s", input, bad + 1, gc_last_error());
        goto done;
    }
    st = gc_bert_reserve_inference(model, (int)batch, t.max_len);
    if (st != GC_OK) {
        cli_fail(st, "preparing the model");
        goto done;
    }
    gc_encoder enc = gc_bert_encoder(model);
    const int dim = enc.ops->dim(enc.ctx);
    if (keep > dim) {
        rc = cli_usage("encode ", "--dim %ld exceeds the model's %d dimensions", keep, dim);
        goto done;
    }
    emb = malloc(ntexts * (size_t)dim * sizeof(float));
    if (!emb) {
        cli_error("out of memory for %zu embeddings", ntexts);
        goto done;
    }
    gc_token_batch tb = gc_token_list_batch(&t);
    st = gc_encode_sequences(&enc, &tb, (int)batch, emb);
    if (st != GC_OK) {
        cli_fail(st, "encoding");
        goto done;
    }
    if (keep > 0) gc_truncate_rows(emb, ntexts, dim, (int)keep);
    const int width = keep > 0 ? (int)keep : dim;
    st = gc_npy_write_f32(out, emb, ntexts, (size_t)width);
    if (st != GC_OK) {
        cli_fail(st, "writing the embeddings");
        goto done;
    }
    cli_note("wrote %zu x %d embeddings to %s", ntexts, width, out);
    rc = CLI_EXIT_OK;
done:
    free(emb);
    gc_token_list_free(&t);
    gc_jsonl_free(texts, ntexts);
    gc_bert_free(model);
    gc_tokenizer_free(tok);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *kstr = "1,10,100", *beir = NULL, *split = "test";
    const char *qprompt = NULL, *pprompt = NULL;
    gc_data_fields fields = {NULL, NULL, NULL};
    long batch = 64, max_q = 0, max_p = 0, threads = 0, dim = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model_dir, 0, 0, 0},
        {"--data", OPT_STR, &data, 0, 0, 0},
        {"--beir", OPT_STR, &beir, 0, 0, 0},
        {"--split", OPT_STR, &split, 0, 0, 0},
        {"--query-field", OPT_STR, &fields.query, 0, 0, 0},
        {"--positive-field", OPT_STR, &fields.positive, 0, 0, 0},
        {"--negatives-field", OPT_STR, &fields.negatives, 0, 0, 0},
        {"--query-prompt", OPT_STR, &qprompt, 0, 0, 0},
        {"--passage-prompt", OPT_STR, &pprompt, 0, 0, 0},
        {"--k", OPT_STR, &kstr, 0, 0, 0},
        {"--batch-size", OPT_INT, &batch, 1, 1 << 20, 0},
        {"--max-query-len", OPT_INT, &max_q, 2, 1 << 20, 0},
        {"--max-passage-len", OPT_INT, &max_p, 2, 1 << 20, 0},
        {"--dim", OPT_INT, &dim, 1, 1 << 20, 0},
        {"--threads", OPT_INT, &threads, 1, 4096, 0},
        {NULL, OPT_FLAG, NULL, 0, 0, 0},
    };
    int rc = cli_parse("eval", argc, argv, 2, opts);
    if (rc == 1) {
        fputs(EVAL_HELP, stdout);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    if (!model_dir) return cli_usage("eval ", "--model is required");
    if (!data && !beir) return cli_usage("eval ", "--data or --beir is required");
    if (data && beir) return cli_usage("eval ", "give --data or --beir, not both");
    if (!beir && cli_find(opts, "--split")->seen)
        return cli_usage("eval ", "--split goes with --beir");
    if (beir && cli_find(opts, "--k")->seen)
        return cli_usage("eval ", "--k goes with --data (--beir reports its fixed cut-offs)");
    if (beir && cli_find(opts, "--dim")->seen)
        return cli_usage("eval ", "--dim goes with --data (the BEIR evaluation scores full width)");
    if (beir && (fields.query || fields.positive || fields.negatives))
        return cli_usage("eval ",
                         "--query-field/--positive-field/--negatives-field go with --data");
    int ks[GC_EVAL_MAX_K], nk = 0;
    if (cli_parse_ks("eval", kstr, ks, &nk)) return CLI_EXIT_USAGE;
    if (threads > 0) omp_set_num_threads((int)threads);

    gc_dataset *d = NULL;
    gc_beir *bset = NULL;
    gc_status st =
        beir ? gc_beir_load(&bset, beir, split) : gc_dataset_load_with(&d, data, &fields);
    if (st != GC_OK) return cli_fail(st, NULL);
    gc_bert *model = NULL;
    gc_tokenizer *tok = NULL;
    rc = CLI_EXIT_RUNTIME;
    if (cli_load_model(model_dir, &model, &tok)) goto done;
    const int limit = model_max_len(model), npos = gc_bert_get_config(model)->max_position;
    if (max_q == 0) max_q = limit;
    if (max_p == 0) max_p = limit;
    if (max_q > npos || max_p > npos) {
        rc = cli_usage("eval ", "--max-query-len/--max-passage-len exceed the model's %d positions",
                       npos);
        goto done;
    }
    if (dim > gc_bert_get_config(model)->hidden) {
        rc = cli_usage("eval ", "--dim %ld exceeds the model's %d dimensions", dim,
                       gc_bert_get_config(model)->hidden);
        goto done;
    }
    cli_eval_opts eo = {(int)max_q,
                        (int)max_p,
                        (int)batch,
                        1,
                        ks,
                        nk,
                        cli_prompt(model, qprompt, "query"),
                        cli_prompt(model, pprompt, "passage"),
                        (int)dim};
    char json[1024];
    if (bset) {
        gc_beir_metrics bm;
        if (cli_eval_beir(model, tok, bset, &eo, &bm)) goto done;
        cli_beir_json(&bm, json, sizeof json);
    } else {
        gc_retrieval_metrics m;
        if (cli_eval_dataset(model, tok, d, &eo, &m)) goto done;
        cli_metrics_json(&m, json, sizeof json);
    }
    printf("%s\n", json);
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : cli_error("writing to stdout failed");
done:
    gc_dataset_free(d);
    gc_beir_free(bset);
    gc_bert_free(model);
    gc_tokenizer_free(tok);
    return rc;
}

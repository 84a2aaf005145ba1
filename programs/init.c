/* init.c: the `init` subcommand: a randomly initialised model folder from a Hugging Face
 * config.json and a vocab.txt. The folder is built beside --out under a temporary name and
 * renamed into place only when complete and loadable. */
#include "cli.h"
#include "fsutil.h"
#include "gc_io.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char INIT_HELP[] =
    "Usage: gradcache init --config FILE --vocab FILE --out DIR [options]\n"
    "\n"
    "Create a sentence-transformers model folder with random weights (normal(0, 0.02), zero\n"
    "biases, unit LayerNorm) from a Hugging Face BERT config.json and a WordPiece vocab.txt.\n"
    "The folder holds config.json, model.safetensors, the sentence-transformers module files\n"
    "(mean pooling), vocab.txt, tokenizer_config.json and special_tokens_map.json, so both\n"
    "gradcache and sentence-transformers load it. DIR must not exist or be empty; it appears\n"
    "only when complete.\n"
    "\n"
    "Options:\n"
    "  --config FILE   Hugging Face config.json (hidden_size, num_hidden_layers, ...)\n"
    "  --vocab FILE    vocab.txt, one token per line, with [PAD] [UNK] [CLS] [SEP] [MASK]\n"
    "  --out DIR       the model folder to create\n"
    "  --seed N        initialisation seed (default 42)\n"
    "  --cased         keep case and accents (default: lowercase, like bert-base-uncased)\n"
    "  --help          this text\n";

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gc_status st = gc_write_file_atomic(path, text, strlen(text));
    return st == GC_OK ? 0 : cli_fail(st, "writing tokenizer files");
}

int cmd_init(int argc, char **argv) {
    const char *config = NULL, *vocab = NULL, *out = NULL;
    long seed = 42;
    int cased = 0;
    cli_opt opts[] = {
        {"--config", OPT_STR, &config, 0, 0, 0}, {"--vocab", OPT_STR, &vocab, 0, 0, 0},
        {"--out", OPT_STR, &out, 0, 0, 0},       {"--seed", OPT_INT, &seed, 0, 9e18, 0},
        {"--cased", OPT_FLAG, &cased, 0, 0, 0},  {NULL, OPT_FLAG, NULL, 0, 0, 0},
    };
    int rc = cli_parse("init", argc, argv, 2, opts);
    if (rc == 1) {
        fputs(INIT_HELP, stdout);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    if (!config) return cli_usage("init ", "--config is required");
    if (!vocab) return cli_usage("init ", "--vocab is required");
    if (!out) return cli_usage("init ", "--out is required");
    int out_state = fs_dir_state(out);
    if (out_state == FS_NOT_DIR) return cli_error("--out %s exists and is not a folder", out);
    if (out_state == FS_NONEMPTY) return cli_error("--out %s exists and is not empty", out);

    gc_bert_config cfg;
    gc_status st = gc_bert_config_from_json(&cfg, config);
    if (st != GC_OK) return cli_fail(st, NULL);
    gc_tokenizer_config tc = {
        .lowercase = !cased, .strip_accents = -1, .tokenize_chinese_chars = 1};
    gc_tokenizer *tok = NULL;
    st = gc_tokenizer_from_vocab(&tok, vocab, &tc);
    if (st != GC_OK) return cli_fail(st, NULL);
    const int nvocab = gc_tokenizer_vocab_size(tok);
    const int pad = gc_tokenizer_pad_id(tok);
    gc_tokenizer_free(tok);
    if (nvocab > cfg.vocab_size)
        return cli_error("%s has %d tokens but %s says vocab_size %d", vocab, nvocab, config,
                         cfg.vocab_size);
    if (pad >= 0) cfg.pad_id = pad;

    char *vtext = NULL;
    size_t vlen = 0;
    st = gc_read_file(vocab, &vtext, &vlen);
    if (st != GC_OK) return cli_fail(st, NULL);

    gc_bert *m = NULL;
    char tmp[4096] = "", tokdir[4096] = "";
    rc = CLI_EXIT_RUNTIME;
    st = gc_bert_init_random(&m, &cfg, (uint64_t)seed);
    if (st != GC_OK) {
        cli_fail(st, "initialising the model");
        goto done;
    }
    if (fs_make_temp_dir(out, "tmp", tmp, sizeof tmp) ||
        fs_make_temp_dir(out, "tok", tokdir, sizeof tokdir))
        goto done;
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.txt", tokdir);
    st = gc_write_file_atomic(path, vtext, vlen);
    if (st != GC_OK) {
        cli_fail(st, "writing the vocabulary");
        goto done;
    }
    char tcj[1024];
    snprintf(
        tcj, sizeof tcj,
        "{\n  \"tokenizer_class\": \"BertTokenizer\",\n  \"do_lower_case\": %s,\n"
        "  \"strip_accents\": null,\n  \"tokenize_chinese_chars\": true,\n"
        "  \"model_max_length\": %d,\n  \"unk_token\": \"[UNK]\",\n  \"sep_token\": \"[SEP]\",\n"
        "  \"pad_token\": \"[PAD]\",\n  \"cls_token\": \"[CLS]\",\n  \"mask_token\": \"[MASK]\",\n"
        "  \"clean_up_tokenization_spaces\": true\n}\n",
        cased ? "false" : "true", cfg.max_seq_length > 0 ? cfg.max_seq_length : cfg.max_position);
    if (write_text(tokdir, "tokenizer_config.json", tcj) ||
        write_text(tokdir, "special_tokens_map.json",
                   "{\n  \"unk_token\": \"[UNK]\",\n  \"sep_token\": \"[SEP]\",\n  \"pad_token\": "
                   "\"[PAD]\",\n  \"cls_token\": \"[CLS]\",\n  \"mask_token\": \"[MASK]\"\n}\n"))
        goto done;
    st = gc_bert_save(m, tmp, tokdir);
    if (st != GC_OK) {
        cli_fail(st, "saving the model");
        goto done;
    }
    /* the folder must load before it takes the final name */
    gc_bert *check = NULL;
    gc_tokenizer *tcheck = NULL;
    if (cli_load_model(tmp, &check, &tcheck)) goto done;
    gc_bert_free(check);
    gc_tokenizer_free(tcheck);
    if (fs_publish_dir(tmp, out)) goto done;
    tmp[0] = '\0';
    printf("initialised %s: %d layers, hidden %d, %d heads, vocab %d, %zu parameters\n", out,
           cfg.layers, cfg.hidden, cfg.heads, cfg.vocab_size, gc_bert_num_params(m));
    rc = CLI_EXIT_OK;
done:
    if (tmp[0]) gc_remove_tree(tmp);
    if (tokdir[0]) gc_remove_tree(tokdir);
    free(vtext);
    gc_bert_free(m);
    return rc;
}

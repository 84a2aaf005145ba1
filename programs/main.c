/* main.c: the gradcache command line: subcommand dispatch, --help and --version. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char OVERVIEW[] =
    "gradcache %s - train text embedding models with Gradient Cache\n"
    "\n"
    "Usage: gradcache <command> [options]\n"
    "\n"
    "Commands:\n"
    "  train   fine-tune a model on query/positive pairs (contrastive, in-batch negatives)\n"
    "  encode  write the embeddings of one field of a JSONL file as a float32 .npy\n"
    "  eval    retrieval metrics on query/positive pairs or a BEIR folder\n"
    "  init    create a randomly initialised model folder from a config.json and a vocab\n"
    "  report  draw a training log as one HTML page of charts (train writes one at the end)\n"
    "\n"
    "Options:\n"
    "  --help     this text (gradcache <command> --help for a command's options)\n"
    "  --version  print the version\n"
    "\n"
    "Data files are JSONL or gzip-compressed JSONL, one object per line: query/positive/\n"
    "negatives, anchor/positive/negative[_N] (sentence-transformers) or query/pos/neg\n"
    "(FlagEmbedding, Tevatron); train --help tells more. Errors go to stderr as\n"
    "one line 'gradcache: error: ...'; exit status 2 means a bad command line, 1 a failure\n"
    "while running, 130/143 an interrupted training run (its checkpoint is saved).\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, OVERVIEW, gc_version());
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        printf(OVERVIEW, gc_version());
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        const char *isa = NULL;
        int native = gc_matmul_bf16_native(&isa);
        printf(
            "gradcache %s\nkernels: %s\nbf16 native: %s (oneDNN ISA %s%s)\nmatmul primitives: %s\n",
            gc_version(), gc_cpu_path_name(gc_cpu_path_get()), native ? "yes" : "no", isa,
            native ? "" : "; --precision bf16 runs fp32",
            gc_matmul_prims_name(gc_matmul_prims(GC_MM_F32)));
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "train") == 0) return cmd_train(argc, argv);
    if (strcmp(cmd, "encode") == 0) return cmd_encode(argc, argv);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc, argv);
    if (strcmp(cmd, "init") == 0) return cmd_init(argc, argv);
    if (strcmp(cmd, "report") == 0) return cmd_report(argc, argv);
    return cli_usage(NULL, "unknown command '%s'", cmd);
}

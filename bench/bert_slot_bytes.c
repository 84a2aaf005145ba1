/* bert_slot_bytes.c: the bytes one activation slot keeps per example for a backward pass, fp32
 * against bf16 (--precision bf16 keeps the linear layers' inputs in bf16), from
 * gc_bert_reserve_bytes, the figure the engine's memory-budget planner uses.
 *
 *   bert_slot_bytes [--config config.json] [--chunk 32]
 *
 * Default: the all-MiniLM-L6-v2 config (hidden 384, 6 layers, 12 heads, intermediate 1536,
 * vocabulary 30522, 512 positions), sequences of 32 and 128 tokens. A slot's bytes are two
 * slots' reservation less one slot's (the shared scratch cancels), over the chunk's examples;
 * the whole one-slot reservation (slot and scratch) follows. Nothing is allocated but the
 * model's weights (random). */
#include "gc_bert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, gc_status st) {
    fprintf(stderr, "bert_slot_bytes: %s: %s: %s\n", what, gc_status_str(st), gc_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *config = NULL;
    int chunk = 32;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--config") == 0)
            config = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--chunk") == 0)
            chunk = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bert_slot_bytes [--config config.json] [--chunk 32]\n");
            return 2;
        }
    }
    if (chunk < 1) return fprintf(stderr, "bert_slot_bytes: --chunk must be >= 1\n"), 2;
    gc_bert_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 30522, cfg.hidden = 384, cfg.layers = 6, cfg.heads = 12;
    cfg.intermediate = 1536, cfg.max_position = 512, cfg.type_vocab = 2;
    cfg.layer_norm_eps = 1e-12f, cfg.pooling = GC_POOL_MEAN, cfg.normalize = 1;
    cfg.max_seq_length = 512;
    gc_status st;
    if (config && (st = gc_bert_config_from_json(&cfg, config)) != GC_OK) return fail("config", st);

    static const gc_precision precs[2] = {GC_PRECISION_FP32, GC_PRECISION_BF16};
    gc_bert *m[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        if ((st = gc_bert_init_random(&m[k], &cfg, 1)) != GC_OK) return fail("model", st);
        if ((st = gc_bert_set_precision(m[k], precs[k])) != GC_OK) return fail("precision", st);
    }
    printf("hidden %d, layers %d, heads %d, intermediate %d; chunks of %d\n", cfg.hidden,
           cfg.layers, cfg.heads, cfg.intermediate, chunk);
    printf("%6s %12s %12s %9s   %s\n", "tokens", "fp32 B/ex", "bf16 B/ex", "bf16/fp32",
           "whole reservation, 1 slot (scratch too), fp32 / bf16");
    static const int lens[2] = {32, 128};
    for (int j = 0; j < 2; j++) {
        if (lens[j] > cfg.max_position) continue;
        double per[2], whole[2];
        for (int k = 0; k < 2; k++) {
            size_t one = gc_bert_reserve_bytes(m[k], chunk, lens[j], 1);
            size_t two = gc_bert_reserve_bytes(m[k], chunk, lens[j], 2);
            per[k] = (double)(two - one) / chunk;
            whole[k] = (double)one / (1024.0 * 1024.0);
        }
        printf("%6d %12.0f %12.0f %9.3f   %.2f / %.2f MiB\n", lens[j], per[0], per[1],
               per[1] / per[0], whole[0], whole[1]);
    }
    gc_bert_free(m[0]);
    gc_bert_free(m[1]);
    return 0;
}

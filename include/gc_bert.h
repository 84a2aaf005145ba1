/* gc_bert.h: the BERT-family encoder (MiniLM, BGE, E5, ...): forward and backward in C, Hugging
 * Face / sentence-transformers model folders in and out, and random initialisation. */
#ifndef GC_BERT_H
#define GC_BERT_H

#include "gradcache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gc_pooling { GC_POOL_MEAN = 0, GC_POOL_CLS = 1, GC_POOL_MAX = 2 } gc_pooling;

typedef struct gc_bert_config {
    int vocab_size;
    int hidden;
    int layers;
    int heads;
    int intermediate;
    int max_position;
    int type_vocab;
    float layer_norm_eps;
    float hidden_dropout; /* hidden_dropout_prob */
    float attn_dropout;   /* attention_probs_dropout_prob */
    int pad_id;
    /* sentence-transformers modules */
    gc_pooling pooling;
    int normalize;      /* a Normalize module follows pooling */
    int max_seq_length; /* sentence_bert_config.json (or max_position) */
} gc_bert_config;

typedef struct gc_bert gc_bert;

/* Load a sentence-transformers folder (modules.json, config.json, model.safetensors,
 * sentence_bert_config.json, 1_Pooling/config.json, optional 2_Normalize) or a plain Hugging
 * Face BertModel folder (mean pooling, no normalize). */
gc_status gc_bert_load(gc_bert **out, const char *model_dir);
/* A randomly initialised model (normal(0, 0.02) weights, zero biases, unit LayerNorm). */
gc_status gc_bert_init_random(gc_bert **out, const gc_bert_config *cfg, uint64_t seed);
/* Parse a Hugging Face config.json into cfg (sentence-transformers fields get defaults). */
gc_status gc_bert_config_from_json(gc_bert_config *cfg, const char *config_path);
void gc_bert_free(gc_bert *m);

const gc_bert_config *gc_bert_get_config(const gc_bert *m);
/* Override the dropout probabilities (both hidden and attention). */
void gc_bert_set_dropout(gc_bert *m, float p);

/* Write the sentence-transformers layout to out_dir: config.json, model.safetensors (F32),
 * modules.json, sentence_bert_config.json, config_sentence_transformers.json,
 * 1_Pooling/config.json, 2_Normalize/ when normalize; tokenizer files (vocab.txt,
 * tokenizer.json, tokenizer_config.json, special_tokens_map.json) are copied from
 * tokenizer_src_dir when it has them. out_dir is created if needed. */
gc_status gc_bert_save(const gc_bert *m, const char *out_dir, const char *tokenizer_src_dir);
/* The tokenizer may not have ids past config.json's vocab_size (the embedding table has no row
 * for them): GC_ERR_FORMAT naming dir. */
struct gc_tokenizer;
gc_status gc_bert_check_tokenizer(const gc_bert *m, const struct gc_tokenizer *tok,
                                  const char *dir);
/* "model_config=...\nmodel_tokenizer=...\nmodel_weights=...\n": crc32 digests of a model
 * folder's config files, tokenizer files and weights (for binding a checkpoint to its start). */
gc_status gc_bert_model_digest(const char *dir, char *buf, size_t cap);

/* Arithmetic of the matrix products. FP32: float everywhere (the default). BF16: the inputs
 * of the linear layers' products (activations and weights, forward and backward) are rounded
 * to bf16 and multiplied with fp32 accumulation; the weights stay fp32 (the master copy the
 * optimizer updates, with its state) and a bf16 copy of the weight matrices is refreshed from
 * them after every optimizer step or write through the store. A training forward keeps
 * those activation inputs (and the GELU's input) for the backward pass in bf16, so a slot is
 * smaller (gc_bert_reserve_bytes). LayerNorm, softmax, the GELU's arithmetic, attention,
 * pooling, the representations and every parameter-gradient sum stay fp32. */
typedef enum gc_precision { GC_PRECISION_FP32 = 0, GC_PRECISION_BF16 = 1 } gc_precision;
/* "fp32", "bf16". Never NULL. */
const char *gc_precision_name(gc_precision p);
/* Parse "fp32" or "bf16" (GC_ERR_INVALID_ARG otherwise). */
gc_status gc_precision_parse(const char *s, gc_precision *out);
/* Choose the precision before gc_bert_reserve/gc_bert_reserve_inference (refused, with
 * GC_ERR_INVALID_ARG, once buffers are reserved). BF16 allocates and fills the bf16 copy. Its
 * products run through oneDNN, natively where the CPU has AVX512_BF16 (gc_matmul_bf16_native),
 * emulated on a plain AVX-512 CPU; without AVX-512 a product fails with GC_ERR_UNSUPPORTED. */
gc_status gc_bert_set_precision(gc_bert *m, gc_precision p);
gc_precision gc_bert_get_precision(const gc_bert *m);
/* The precision to run for a request on this CPU: BF16 only where oneDNN multiplies bf16
 * natively (AVX512_BF16 or AMX); otherwise FP32 (measured faster than oneDNN's AVX-512 bf16
 * emulation, and oneDNN has no bf16 product below AVX-512), and *note (if not NULL) gets a
 * sentence saying so (NULL when the request is granted). */
gc_precision gc_precision_for_cpu(gc_precision want, const char **note);
/* Refill the bf16 copy from the fp32 weights, for callers that wrote gc_bert_params()
 * directly (writes through the store do it themselves). A no-op in FP32. */
void gc_bert_sync_weights(gc_bert *m);

/* Size the activation buffers: chunks of up to max_chunk sequences of up to max_len tokens,
 * `slots` activation slots (see gc_encode_args.slot). Allocates once; a step never does. */
#define GC_BERT_MAX_SLOTS 65536
gc_status gc_bert_reserve(gc_bert *m, int max_chunk, int max_len, int slots);
/* The bytes gc_bert_reserve (slots >= 1) or gc_bert_reserve_inference (slots 0) would allocate
 * for these sizes, allocating nothing (0 for impossible sizes). */
size_t gc_bert_reserve_bytes(const gc_bert *m, int max_chunk, int max_len, int slots);
/* Size the buffers for encoding only (the encoder's encode; forward and backward are then
 * refused): one layer's worth, reused by every layer, and no attention probabilities kept.
 * Each reservation replaces the one before. */
gc_status gc_bert_reserve_inference(gc_bert *m, int max_chunk, int max_len);

/* The encoder interface over this model; inputs are gc_token_batch. The encoder does not own
 * the model: gc_encoder_free on it does nothing to m. */
gc_encoder gc_bert_encoder(gc_bert *m);

/* The model's parameter store: a host store over the buffers below, owning the optimizer
 * state (valid while m lives; gc_bert_free releases it). The encoder's store is this one. */
gc_param_store gc_bert_store(gc_bert *m);

/* Flat parameter and gradient buffers and their size (the store's host memory). */
size_t gc_bert_num_params(const gc_bert *m);
float *gc_bert_params(gc_bert *m);
float *gc_bert_grads(gc_bert *m);
/* Parameter tensors in order, for per-tensor reports and weight-decay masks:
 * name (Hugging Face name without the "bert." prefix), offset into the flat buffer, count. */
int gc_bert_num_tensors(const gc_bert *m);
gc_status gc_bert_tensor_info(const gc_bert *m, int i, const char **name, size_t *offset,
                              size_t *count);

#ifdef __cplusplus
}
#endif

#endif

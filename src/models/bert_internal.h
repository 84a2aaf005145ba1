/* bert_internal.h: the inside of gc_bert, shared by the model (bert_weights.c, bert.c), its
 * files (bert_io.c) and the tests. A gc_bert is two halves:
 *  - the weights (bert_weights, bert_weights.c): the config, the parameter layout (one table
 *    from which the count, the named pointers and the Hugging Face tensor names all come),
 *    the flat parameter and gradient buffers and the host parameter store over them. It knows
 *    nothing of activations, so another runtime (a CUDA one) can sit beside it unchanged;
 *  - the CPU runtime (bert_cpu, bert.c): activation slots, scratch, thread-count sizing, and
 *    the forward and backward passes. */
#ifndef GC_BERT_INTERNAL_H
#define GC_BERT_INTERNAL_H

#include "gc_bert.h"
#include "gc_prompts.h"
#include "models/bert_kernels.h"

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ */
/* the weights half */

/* Pointers into the flat parameter (or gradient) buffer. Per-layer tensors are stacked over
 * the L layers; query, key and value weights are stacked into one (3C, C) matrix per layer so
 * the three projections are one product. Weights keep PyTorch's (out, in) layout. Where each
 * field lies comes from bert_param_table (bert_weights.c). */
typedef struct bert_params {
    float *wte;      /* (V, C) word embeddings */
    float *wpe;      /* (maxP, C) position embeddings */
    float *wtt;      /* (TV, C) token type embeddings */
    float *emb_lnw;  /* (C) */
    float *emb_lnb;  /* (C) */
    float *qkvw;     /* (L, 3C, C) */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C) */
    float *attprojb; /* (L, C) */
    float *ln1w;     /* (L, C) attention.output.LayerNorm */
    float *ln1b;     /* (L, C) */
    float *fcw;      /* (L, I, C) intermediate.dense */
    float *fcb;      /* (L, I) */
    float *fcprojw;  /* (L, C, I) output.dense */
    float *fcprojb;  /* (L, C) */
    float *ln2w;     /* (L, C) output.LayerNorm */
    float *ln2b;     /* (L, C) */
} bert_params;

/* The sizes a parameter shape is written in. */
typedef enum bert_dim {
    BERT_DIM_NONE = 0, /* no second dimension: a vector */
    BERT_DIM_V,        /* vocab_size */
    BERT_DIM_P,        /* max_position */
    BERT_DIM_TV,       /* type_vocab */
    BERT_DIM_C,        /* hidden */
    BERT_DIM_I,        /* intermediate */
} bert_dim;

/* One row of the parameter table: a Hugging Face tensor (without the "bert." prefix; per-layer
 * names follow "encoder.layer.<l>."), its shape, and the bert_params field it lies in. Rows
 * sharing a field (query, key, value) lie one after another within each layer's block of it.
 * Fields lie in the flat buffer in the order of their first row, each (L, block) when per
 * layer; tensors are numbered global rows first, then layer by layer. */
typedef struct bert_param_spec {
    const char *name;
    int per_layer;
    bert_dim rows, cols;
    size_t field; /* offsetof(bert_params, ...) */
} bert_param_spec;

extern const bert_param_spec bert_param_table[];
extern const int bert_param_table_rows;

/* One named tensor of the flat buffer, under its Hugging Face name (no "bert." prefix). */
typedef struct bert_tensor {
    char name[96];
    size_t offset;
    size_t count;
    int ndim;
    int64_t shape[2];
} bert_tensor;

typedef struct bert_weights {
    gc_bert_config cfg;
    size_t num_params;
    float *params;
    float *grads;
    bert_params p, g;
    int num_tensors;
    bert_tensor *tensors;  /* (num_tensors) names and shapes for the safetensors files */
    gc_tensor_view *views; /* (num_tensors) the same tensors, for the parameter store */
    gc_host_store store;   /* over params and grads; owns the optimizer */
    /* the pooler of a loaded checkpoint: not part of the encoder, kept so a save gives it back
     * (sentence-transformers otherwise initialises it at random, with a warning) */
    float *pooler; /* (C, C) weight then (C) bias, or NULL */
    /* --precision bf16: the weight matrices rounded to bf16, refreshed from params after every
     * optimizer step and store write (bert_weights_sync_bf16); NULL in FP32 */
    gc_precision precision;
    uint16_t *w16;                                     /* one allocation for the four below */
    uint16_t *qkvw16, *attprojw16, *fcw16, *fcprojw16; /* as qkvw, attprojw, fcw, fcprojw */
} bert_weights;

/* Checks that keep every size and dropout element address inside its integer type. */
gc_status bert_config_validate(const gc_bert_config *cfg);
/* Lay out and allocate the weights for cfg (validated here): parameters and gradients zeroed.
 * On failure w is left released. */
gc_status bert_weights_init(bert_weights *w, const gc_bert_config *cfg);
/* normal(0, 0.02) weights, zero biases, unit LayerNorm, a zero padding embedding. */
void bert_weights_init_random(bert_weights *w, uint64_t seed);
/* Frees the buffers and the store's optimizer; a zeroed or released w is fine. */
void bert_weights_release(bert_weights *w);
/* Allocate (BF16) or free (FP32) the bf16 copy and fill it. */
gc_status bert_weights_set_precision(bert_weights *w, gc_precision p);
/* Refill the bf16 copy from params (a no-op in FP32). */
void bert_weights_sync_bf16(bert_weights *w);
/* The store over the host store that also refreshes the bf16 copy after optim_step and
 * writes of parameters. */
gc_param_store bert_weights_store(bert_weights *w);

/* ------------------------------------------------------------------------------------------ */
/* the CPU runtime half */

/* Activations a forward pass keeps for its backward pass. Per-token buffers hold max_tokens =
 * max_chunk * max_len rows per layer; a chunk uses the first N (packed, no padding). After
 * gc_bert_reserve_inference slot 0 has only reps, pnorm and the integer arrays (the
 * activation pointers are NULL).
 *
 * In BF16 the inputs of the linear layers, which the backward pass needs only for the weight
 * gradients' products, are kept as the bf16 rounding the forward products used (x16, ctx16,
 * h1_16, g16), and the GELU's input in bf16 for its derivative (fch16); resid, ctx, h1 and fch
 * are then NULL, and top is a buffer of its own. Everything else stays fp32: the embedding
 * sum, the LayerNorm inputs (the residual stream r1, r2) and statistics, q, k, v and the
 * softmax probabilities, the last layer's output and the pooled reps. FP32's layout is the
 * one it always had, with no bf16 buffer. */
typedef struct bert_slot {
    float *mem;                 /* the one float allocation of this slot */
    float *reps;                /* (max_chunk, C) pooled (and normalized) output */
    float *pnorm;               /* (max_chunk) norms before normalization */
    float *emb;                 /* (T, C) embedding sum before LayerNorm */
    float *emb_mean, *emb_rstd; /* (T) */
    float *resid;               /* (L+1, T, C): [0] embeddings output, [l+1] output of layer l */
    float *qkvh;                /* (L, 3 T C) head-major q, k, v per sequence */
    float *att;                 /* (L, att_cap) softmax probabilities per sequence (NH, len, len) */
    float *ctx;                 /* (L, T, C) attention context */
    float *r1;                  /* (L, T, C) input of the attention LayerNorm */
    float *h1;                  /* (L, T, C) output of the attention LayerNorm */
    float *ln1_mean, *ln1_rstd; /* (L, T) */
    float *ln2_mean, *ln2_rstd; /* (L, T) */
    float *fch;                 /* (L, T, I) intermediate dense before GELU */
    float *r2;                  /* (L, T, C) input of the output LayerNorm */
    float *top;                 /* (T, C) output of the last layer: resid's [L] in FP32 */
    uint16_t *x16;              /* BF16: (L, T, C) input of each layer (QKV's input) */
    uint16_t *ctx16;            /* BF16: (L, T, C) attention context (output dense's input) */
    uint16_t *h1_16;            /* BF16: (L, T, C) attention LayerNorm output (FFN-in's input) */
    uint16_t *fch16;            /* BF16: (L, T, I) intermediate dense before GELU */
    uint16_t *g16;              /* BF16: (L, T, I) its GELU (FFN-out's input) */
    void *imem;                 /* the one integer allocation of this slot */
    size_t *att_off;            /* (max_chunk + 1) */
    uint64_t *id_keys;          /* (T) sort keys for by_id */
    int32_t *ids;               /* (T) */
    int *by_id;                 /* (T) token indices in id order, for the embedding backward */
    int *tok_seq, *tok_pos;     /* (T) */
    int *off;                   /* (max_chunk + 1) */
    bert_chunk ck;              /* the chunk of the last forward into this slot */
    int valid;                  /* a forward with activations kept lives here */
    int first, count, side, train;
} bert_slot;

typedef struct bert_cpu {
    /* sized by gc_bert_reserve (num_slots >= 1) or gc_bert_reserve_inference (num_slots 0) */
    int max_chunk, max_len, num_slots, nthr;
    size_t max_tokens; /* max_chunk * max_len */
    size_t att_cap;    /* max_chunk * NH * max_len^2 (0 for inference) */
    bert_slot *slots;  /* max(num_slots, 1) of them */
    int alloc_slots;
    float *scratch; /* one allocation for everything below */
    /* a training step's scratch (NULL for inference) */
    float *s_qkv;                   /* (T, 3C) token-major q|k|v, later their gradient */
    float *s_a, *s_b, *s_t1, *s_t2; /* (T, C) each */
    float *s_g1, *s_g2;             /* (T, I) each (no s_g2 in BF16) */
    /* encode's buffers, one layer's worth that every layer overwrites; they share the memory
     * of the training scratch above when there is one. No kernel runs in place except
     * dropout, which says it may. */
    float *e_h[3];          /* (T, C) each: the hidden state and two branch buffers, rotating */
    float *e_big;           /* (T, max(3C, I)): q|k|v, later the intermediate layer */
    float *e_gelu;          /* (T, I) GELU of the intermediate layer (FP32 only) */
    float *e_mean, *e_rstd; /* (T) each */
    /* both passes */
    float *s_att;  /* nthr * bert_attention_scratch_floats */
    float *s_drop; /* nthr * C */
    /* BF16 only: encode's linear-layer inputs rounded to bf16 (T * max(C, I); a training
     * forward rounds them into its slot instead), and output gradients (T * max(3C, I),
     * training only); NULL in FP32 */
    uint16_t *bf_a, *bf_b;
} bert_cpu;

struct gc_bert {
    bert_weights w;
    bert_cpu rt;
    gc_prompts prompts; /* config_sentence_transformers.json's, written back by gc_bert_save */
};

/* Lay out and allocate a model for cfg (validated here): parameters zeroed, gradients zeroed. */
gc_status bert_create(gc_bert **out, const gc_bert_config *cfg);

#endif

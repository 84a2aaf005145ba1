/* bert_internal.h: the inside of gc_bert, shared by the model (bert.c), its files (bert_io.c)
 * and the tests: the parameter layout (one flat buffer, named pointers into it), the
 * activation slots, and the scratch buffers a training step reuses. */
#ifndef GC_BERT_INTERNAL_H
#define GC_BERT_INTERNAL_H

#include "gc_bert.h"
#include "models/bert_kernels.h"

#include <stddef.h>
#include <stdint.h>

/* Pointers into the flat parameter (or gradient) buffer. Per-layer tensors are stacked over
 * the L layers; query, key and value weights are stacked into one (3C, C) matrix per layer so
 * the three projections are one product. Weights keep PyTorch's (out, in) layout. */
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

/* One named tensor of the flat buffer, under its Hugging Face name (no "bert." prefix). */
typedef struct bert_tensor {
    char name[96];
    size_t offset;
    size_t count;
    int ndim;
    int64_t shape[2];
} bert_tensor;

/* Activations a forward pass keeps for its backward pass. Per-token buffers hold max_tokens =
 * max_chunk * max_len rows per layer; a chunk uses the first N (packed, no padding). After
 * gc_bert_reserve_inference slot 0 has only reps, pnorm and the integer arrays (the
 * activation pointers are NULL). */
typedef struct bert_slot {
    float *mem;                 /* the one float allocation of this slot */
    float *emb;                 /* (T, C) embedding sum before LayerNorm */
    float *emb_mean, *emb_rstd; /* (T) */
    float *resid;               /* (L+1, T, C): [0] embeddings output, [l+1] output of layer l */
    float *qkvh;                /* (L, 3 T C) head-major q, k, v per sequence */
    float *att;                 /* (L, att_cap) softmax probabilities per sequence (NH, len, len) */
    float *ctx;                 /* (L, T, C) attention context */
    float *r1;                  /* (L, T, C) input of the attention LayerNorm */
    float *ln1_mean, *ln1_rstd; /* (L, T) */
    float *h1;                  /* (L, T, C) output of the attention LayerNorm */
    float *fch;                 /* (L, T, I) intermediate dense before GELU */
    float *r2;                  /* (L, T, C) input of the output LayerNorm */
    float *ln2_mean, *ln2_rstd; /* (L, T) */
    float *reps;                /* (max_chunk, C) pooled (and normalized) output */
    float *pnorm;               /* (max_chunk) norms before normalization */
    void *imem;                 /* the one integer allocation of this slot */
    uint64_t *id_keys;          /* (T) sort keys for by_id */
    int32_t *ids;               /* (T) */
    int *by_id;                 /* (T) token indices in id order, for the embedding backward */
    int *off;                   /* (max_chunk + 1) */
    size_t *att_off;            /* (max_chunk + 1) */
    int *tok_seq, *tok_pos;     /* (T) */
    bert_chunk ck;              /* the chunk of the last forward into this slot */
    int valid;                  /* a forward with activations kept lives here */
    int first, count, side, train;
} bert_slot;

struct gc_bert {
    gc_bert_config cfg;
    size_t num_params;
    float *params;
    float *grads;
    bert_params p, g;
    bert_tensor *tensors;
    int num_tensors;
    /* the pooler of a loaded checkpoint: not part of the encoder, kept so a save gives it back
     * (sentence-transformers otherwise initialises it at random, with a warning) */
    float *pooler; /* (C, C) weight then (C) bias, or NULL */

    /* sized by gc_bert_reserve (num_slots 1 or 2) or gc_bert_reserve_inference (num_slots 0) */
    int max_chunk, max_len, num_slots, nthr;
    size_t max_tokens; /* max_chunk * max_len */
    size_t att_cap;    /* max_chunk * NH * max_len^2 (0 for inference) */
    bert_slot slots[2];
    float *scratch; /* one allocation for everything below */
    /* a training step's scratch (NULL for inference) */
    float *s_qkv;                   /* (T, 3C) token-major q|k|v, later their gradient */
    float *s_a, *s_b, *s_t1, *s_t2; /* (T, C) each */
    float *s_g1, *s_g2;             /* (T, I) each */
    /* encode's buffers, one layer's worth that every layer overwrites; they share the memory
     * of the training scratch above when there is one */
    float *e_x;             /* (T, C) the hidden state, updated in place */
    float *e_big;           /* (T, max(3C, I)): q|k|v, later the intermediate layer */
    float *e_ctx, *e_t;     /* (T, C) each */
    float *e_mean, *e_rstd; /* (T) each */
    float *s_att;           /* nthr * bert_attention_scratch_floats */
    float *s_drop;          /* nthr * C */
};

/* Lay out and allocate a model for cfg (validated here): parameters zeroed, gradients zeroed. */
gc_status bert_create(gc_bert **out, const gc_bert_config *cfg);
/* Checks that keep every size and dropout element address inside its integer type. */
gc_status bert_config_validate(const gc_bert_config *cfg);

#endif

/* bert_kernels.h: the layer kernels of the BERT encoder, each a forward/backward pair over a
 * packed chunk (the chunk's sequences concatenated, no padding tokens), and the plain reference
 * kernels the optimized ones are tested against.
 *
 * Conventions (as in llm.c): outputs first, then inputs, then weights, then sizes. Activation
 * gradients are assigned, parameter gradients accumulated (+=). N is the number of tokens of
 * the chunk, C the hidden width, NH the number of heads. No output may alias an input, except
 * where a kernel says so (bert_dropout, bert_gelu_backward): an optimized or GPU version may
 * rely on it. */
#ifndef GC_BERT_KERNELS_H
#define GC_BERT_KERNELS_H

#include "gc_bert.h"

#include <stddef.h>
#include <stdint.h>

/* A chunk of sequences laid out token after token. Dropout masks are addressed by the global
 * example index (first + sequence) and positions inside the example, so they do not depend on
 * how a batch is cut into chunks. */
typedef struct bert_chunk {
    int B;                 /* sequences */
    int N;                 /* tokens */
    int max_T;             /* longest sequence */
    const int *off;        /* (B+1) first token of each sequence */
    const size_t *att_off; /* (B+1) offset of each sequence's (NH, T, T) attention block */
    const int *tok_seq;    /* (N) sequence of each token */
    const int *tok_pos;    /* (N) position of each token within its sequence */
    int max_position;      /* positions addressable (attention mask element addressing) */
    int train;             /* dropout on */
    uint64_t seed;
    uint32_t step;
    uint32_t side;
    uint32_t first; /* global index of sequence 0 */
} bert_chunk;

/* Dropout streams: layer 0 is the embeddings, layer l+1 is encoder layer l. */
enum { BERT_SITE_EMB = 0, BERT_SITE_ATT_PROBS = 1, BERT_SITE_ATT_OUT = 2, BERT_SITE_FFN_OUT = 3 };

/* out (N,C) = wte[ids] + wpe[position] + wtt[0] (token type ids are all 0). */
void bert_embed_forward(float *out, const bert_chunk *ck, const int32_t *ids, const float *wte,
                        const float *wpe, const float *wtt, int C, int nthr);
/* by_id: the N token indices ordered by id (bert_order_by_id), so each row of dwte gets one
 * sum. */
void bert_embed_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                         const bert_chunk *ck, const int32_t *ids, const int *by_id, int C,
                         int nthr);
void bert_embed_backward_ref(float *dwte, float *dwpe, float *dwtt, const float *dout,
                             const bert_chunk *ck, const int32_t *ids, int C);
/* by_id (N) = 0..N-1 ordered by ids[], ties by index; keys: N scratch values. */
void bert_order_by_id(int *by_id, uint64_t *keys, const int32_t *ids, int N);

/* out (N,C) = (inp - mean) * rstd * w + b; mean, rstd (N) kept for the backward pass. */
void bert_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                            const float *b, int N, int C, float eps, int nthr);
void bert_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                             const float *w, const float *mean, const float *rstd, int N, int C,
                             int nthr);
/* The plain form: one column at a time for dw, db; dinp from double sums. */
void bert_layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C);

/* db (OC) += the column sums of dout (N,OC). Sums over tokens of parameter gradients (here,
 * in bert_layernorm_backward and in bert_embed_backward) add up in double and reach the
 * float gradient once per call, so the gradient hardly depends on how a batch is chunked. */
void bert_bias_backward(float *db, const float *dout, int N, int OC, int nthr);
void bert_bias_backward_ref(float *db, const float *dout, int N, int OC);

/* out (N,OC) = inp (N,IC) @ w^T (w is (OC,IC), the PyTorch layout) + b. */
gc_status bert_linear_forward(float *out, const float *inp, const float *w, const float *b, int N,
                              int OC, int IC, int nthr);
/* dinp (N,IC) = dout @ w (or += when accumulate_dinp); dw (OC,IC) += dout^T inp; db += sums. */
gc_status bert_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, int N, int OC, int IC,
                               int accumulate_dinp, int nthr);

/* bf16 forms of the two above: w16 is the bf16 copy of w; inp16 (N*IC) is the input already
 * rounded to bf16 (bert_to_bf16: the forward pass rounds each linear layer's input once, and a
 * training pass keeps that rounding for the backward pass's dw); dout16 (N*OC) is scratch that
 * gets dout rounded (round to nearest even). Products accumulate in fp32; out, dinp, dw and db
 * stay fp32, db summed from the fp32 dout as above. */
gc_status bert_linear_forward_bf16(float *out, const uint16_t *inp16, const uint16_t *w16,
                                   const float *b, int N, int OC, int IC, int nthr);
gc_status bert_linear_backward_bf16(float *dinp, float *dw, float *db, const float *dout,
                                    const uint16_t *inp16, const uint16_t *w16, int N, int OC,
                                    int IC, int accumulate_dinp, uint16_t *dout16, int nthr);
/* gc_bf16_from_f32 over n elements in blocks across threads. */
void bert_to_bf16(uint16_t *out, const float *in, size_t n, int nthr);

/* The exact GELU, x * Phi(x) with the error function. dinp may alias dout. The _ref versions
 * use libm's erff / expf one element at a time. */
void bert_gelu_forward(float *out, const float *inp, size_t n, int nthr);
void bert_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n, int nthr);
void bert_gelu_forward_ref(float *out, const float *inp, size_t n);
void bert_gelu_backward_ref(float *dinp, const float *inp, const float *dout, size_t n);
/* bf16 forms for --precision bf16. bert_gelu_forward_bf16: out16 = the GELU of inp rounded to
 * bf16, and (unless NULL) inp16 = inp rounded, each bit for bit what bert_gelu_forward then
 * bert_to_bf16 give, without the float GELU array. bert_gelu_backward_bf16: the derivative at
 * the bf16 inputs inp16 (widened exactly), the math of bert_gelu_backward; dinp may alias dout.
 * The _ref versions: the _ref GELU and gc_bf16_from_f32_ref one element at a time. */
void bert_gelu_forward_bf16(uint16_t *out16, uint16_t *inp16, const float *inp, size_t n, int nthr);
void bert_gelu_backward_bf16(float *dinp, const uint16_t *inp16, const float *dout, size_t n,
                             int nthr);
void bert_gelu_forward_bf16_ref(uint16_t *out16, uint16_t *inp16, const float *inp, size_t n);
void bert_gelu_backward_bf16_ref(float *dinp, const uint16_t *inp16, const float *dout, size_t n);
/* exp and erf to float accuracy, the scalar forms of the vector code the kernels use. */
float bert_exp(float x);
float bert_erf(float x);

/* out (N,C) = inp * mask, mask from the counter-based generator at element pos * C + feature
 * of the example's stream. The backward pass is the same call on the gradient. out may alias
 * inp. scratch: nthr * C floats. A no-op copy when p == 0 or the chunk is not training. */
void bert_dropout(float *out, const float *inp, const bert_chunk *ck, uint32_t stream, float p,
                  int C, float *scratch, int nthr);

/* out = a + b, n elements. */
void bert_residual_forward(float *out, const float *a, const float *b, size_t n, int nthr);

/* Multi-head self-attention of every sequence over its own tokens.
 * qkv (N, 3C) token-major (query | key | value); qkvh gets the same values head-major, one
 * block per sequence at 3 * off[b] * C: q, k, v each (NH, T, hs). att gets the softmax
 * probabilities (before dropout) of each sequence at att_off[b], (NH, T, T). ctx (N, C) is the
 * context, token-major. Attention-probability dropout addresses element
 * (head * max_position + query) * max_position + key. scratch: nthr *
 * bert_attention_scratch_floats(max_T, hs) floats. A pass that keeps nothing for a backward
 * pass gives NULL att and qkvh: each head's probabilities and q, k, v then live in scratch. */
size_t bert_attention_scratch_floats(int max_T, int hs);
gc_status bert_attention_forward(float *ctx, float *att, float *qkvh, const float *qkv,
                                 const bert_chunk *ck, int C, int NH, uint32_t stream, float p,
                                 float *scratch, int nthr);
/* dqkv (N, 3C) token-major, assigned, from dctx (N, C). */
gc_status bert_attention_backward(float *dqkv, const float *dctx, const float *att,
                                  const float *qkvh, const bert_chunk *ck, int C, int NH,
                                  uint32_t stream, float p, float *scratch, int nthr);

/* Plain references: loops straight from the token-major qkv, one element at a time. */
void bert_attention_forward_ref(float *ctx, float *att, const float *qkv, const bert_chunk *ck,
                                int C, int NH, uint32_t stream, float p);
void bert_attention_backward_ref(float *dqkv, const float *dctx, const float *att, const float *qkv,
                                 const bert_chunk *ck, int C, int NH, uint32_t stream, float p);

/* Pooling of each sequence's tokens h (N,C) into out (B,C), then (when normalize) division by
 * max(||.||, 1e-12); norm (B) keeps the norms before normalization. */
void bert_pool_forward(float *out, float *norm, const float *h, const bert_chunk *ck, int C,
                       gc_pooling pool, int normalize, int nthr);
/* dh (N,C), assigned, from dout (B,C); out and norm from the forward pass, h for max pooling. */
void bert_pool_backward(float *dh, const float *dout, const float *out, const float *norm,
                        const float *h, const bert_chunk *ck, int C, gc_pooling pool, int normalize,
                        int nthr);

#endif

/* gc_encoder.h: the encoder contract every model implements, and the parameter store through
 * which its parameters, gradients and optimizer state are reached.
 *
 * An encoder maps examples [first, first+count) of one side's inputs to representations
 * reps (count, dim) in host memory: only the representations (and their gradients) cross
 * between an encoder and the engine. Everything else — weights, gradients, optimizer moments,
 * activations — stays wherever the encoder keeps it (host memory or an accelerator's), and is
 * reached through the parameter store: the trainer zeroes, reduces, measures and updates the
 * gradients there, and copies to host memory only to write a checkpoint or save a model. */
#ifndef GC_ENCODER_H
#define GC_ENCODER_H

#include "gc_core.h"
#include "gc_optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Inputs of text encoders: a list of token-id sequences (already with [CLS]/[SEP]). Sequence i
 * is ids[offsets[i] .. offsets[i+1]). The engine passes it through without looking inside. */
typedef struct gc_token_batch {
    int n;                  /* number of sequences */
    const int32_t *ids;     /* all ids, concatenated */
    const int64_t *offsets; /* n + 1 offsets into ids */
} gc_token_batch;

/* One call of encode/forward/backward.
 *  - encode:   representations only; nothing is kept for a backward pass.
 *  - forward:  representations, keeping activations in `slot` for the next backward call.
 *  - backward: given d loss / d reps (count, dim) for the same range as the slot's forward,
 *              accumulate (+=) into the parameter gradients.
 * `inputs` is whatever the model consumes (gc_token_batch for text encoders). Dropout is on
 * when train != 0 and addresses random numbers with (seed, step, side, first + i, ...). */
typedef struct gc_encode_args {
    const void *inputs; /* the whole side's inputs for this step */
    int side;           /* 0 = query, 1 = passage */
    int first;          /* first example (global index within the side) */
    int count;          /* examples in this chunk */
    int train;          /* dropout on */
    int slot;           /* activation slot forward keeps into and backward reads (0 or 1);
                           the engine uses slot = side only in no-cache mode, where both
                           sides' activations of a shared encoder must live at once */
    uint64_t seed;
    uint32_t step;
} gc_encode_args;

/* What the engine asks an encoder to hold, from its own chunk rule (gc_engine_create calls
 * reserve once per encoder; a shared encoder gets the larger of both sides' needs). An encoder
 * allocates here, never inside a step. */
typedef struct gc_encoder_reserve {
    int max_count; /* most examples in one encode/forward/backward call */
    int max_len;   /* longest example (tokens for text encoders) */
    int slots;     /* activation slots forward may keep into (1, or 2 for a shared encoder in
                      no-cache mode, or as many as a memory-budget plan keeps chunks) */
} gc_encoder_reserve;

/* ---- the parameter store ---- */

/* One named tensor of the flat parameter vector. */
typedef struct gc_tensor_view {
    const char *name;
    size_t offset, count;
} gc_tensor_view;

/* Which of the store's flat vectors a copy addresses. */
typedef enum gc_param_part {
    GC_PART_PARAMS = 0, /* num_params floats */
    GC_PART_GRADS = 1,  /* num_params floats */
    GC_PART_OPTIM = 2,  /* optim_state_size floats (AdamW: m then v) */
} gc_param_part;

/* Parameters, gradients and optimizer state of one encoder, all in memory of one location.
 * Host encoders use gc_host_store below; a device encoder implements these over its own
 * memory, and nothing here needs a host copy of the vectors. */
typedef struct gc_param_store_ops {
    gc_mem (*location)(void *ctx);
    size_t (*num_params)(void *ctx);
    int (*num_tensors)(void *ctx);
    gc_status (*tensor)(void *ctx, int i, gc_tensor_view *out);
    gc_status (*zero_grad)(void *ctx);
    /* The gradient vector in the store's own memory, for the communicator's in-place
     * all-reduce (which is told the location). */
    float *(*grad_buffer)(void *ctx);
    /* Sum of squares of every gradient element, accumulated in double. */
    gc_status (*grad_sq_norm)(void *ctx, double *out);
    /* Copies between host memory and [offset, offset + n) of a part. */
    gc_status (*read)(void *ctx, gc_param_part part, size_t offset, size_t n, float *host);
    gc_status (*write)(void *ctx, gc_param_part part, size_t offset, size_t n, const float *host);
    /* Create the optimizer state (zero moments, step 0); decay(name) says whether a tensor gets
     * weight decay (NULL: all do). Replaces any earlier state. */
    gc_status (*optim_init)(void *ctx, const gc_optim_config *cfg, int (*decay)(const char *));
    /* One update: every gradient times grad_scale (the clipping factor), learning rate lr. */
    gc_status (*optim_step)(void *ctx, float lr, float grad_scale);
    size_t (*optim_state_size)(void *ctx);
    uint64_t (*optim_get_step)(void *ctx);
    void (*optim_set_step)(void *ctx, uint64_t step);
} gc_param_store_ops;

typedef struct gc_param_store {
    const gc_param_store_ops *ops;
    void *ctx;
} gc_param_store;

/* The host implementation: flat float buffers owned by the model, an optimizer owned by the
 * store. tensors may be NULL (one tensor "params"). gc_host_store_release frees the optimizer
 * (the buffers stay the model's). */
typedef struct gc_host_store {
    float *params, *grads;
    size_t n;
    const gc_tensor_view *tensors;
    int ntensors;
    gc_optim *opt; /* created by optim_init */
} gc_host_store;

gc_param_store gc_host_store_view(gc_host_store *h);
void gc_host_store_release(gc_host_store *h);

/* ---- the encoder ---- */

typedef struct gc_encoder_ops {
    int (*dim)(void *ctx);
    gc_status (*reserve)(void *ctx, const gc_encoder_reserve *r);
    gc_status (*encode)(void *ctx, const gc_encode_args *a, float *reps);
    gc_status (*forward)(void *ctx, const gc_encode_args *a, float *reps);
    gc_status (*backward)(void *ctx, const gc_encode_args *a, const float *dreps);
    /* The encoder's parameter store (valid while the encoder lives). */
    gc_param_store (*store)(void *ctx);
    void (*free)(void *ctx);
    /* Optional (NULL: the engine cannot plan for a memory budget). The bytes reserve(r) would
     * hold (activation slots, scratch) without allocating anything; the bytes one example's
     * activations take at max_len are reserve_bytes({1, max_len, 2}) - ({1, max_len, 1}). */
    size_t (*reserve_bytes)(void *ctx, const gc_encoder_reserve *r);
} gc_encoder_ops;

typedef struct gc_encoder {
    const gc_encoder_ops *ops;
    void *ctx;
} gc_encoder;

/* Shorthands over an encoder's store. */
gc_param_store gc_encoder_store(const gc_encoder *enc);
size_t gc_encoder_num_params(const gc_encoder *enc);
gc_status gc_encoder_zero_grad(gc_encoder *enc);
/* Copy every parameter (or gradient) to host memory (num_params floats), or back. */
gc_status gc_encoder_read(const gc_encoder *enc, gc_param_part part, float *host);
gc_status gc_encoder_write(gc_encoder *enc, gc_param_part part, const float *host);
/* Check that an encoder's tables are complete (every function present, dim >= 1). */
gc_status gc_encoder_check(const gc_encoder *enc, const char *who);
/* Frees ctx through ops->free; NULL is fine. */
void gc_encoder_free(gc_encoder *enc);

#ifdef __cplusplus
}
#endif

#endif /* GC_ENCODER_H */

/* gc_optim.h: optimizers over flat parameter buffers (AdamW, SGD), the learning-rate schedules
 * (linear decay or constant, both with linear warmup), global-norm gradient clipping and the
 * weight-decay mask (no decay for biases and LayerNorm weights, as Hugging Face does).
 *
 * An optimizer owns its state (AdamW's two moments) and the per-element decay mask, never the
 * parameters or gradients: a step is one loop over caller buffers, so a model keeps its own
 * layout. The state is exposed for checkpoints. */
#ifndef GC_OPTIM_H
#define GC_OPTIM_H

#include "gc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gc_optim_kind { GC_OPTIM_ADAMW = 0, GC_OPTIM_SGD = 1 } gc_optim_kind;

typedef struct gc_optim_config {
    gc_optim_kind kind;
    float weight_decay; /* AdamW: decoupled (p -= lr*wd*p); SGD: L2 added to the gradient */
    float beta1;        /* AdamW; 0 picks 0.9 */
    float beta2;        /* AdamW; 0 picks 0.999 */
    float eps;          /* AdamW; 0 picks 1e-8 */
} gc_optim_config;

typedef struct gc_optim gc_optim;

/* An optimizer for n parameters; every element decays until gc_optim_set_decay says
 * otherwise. Moments start at zero and the step count at 0. */
gc_status gc_optim_create(gc_optim **out, const gc_optim_config *cfg, size_t n);
void gc_optim_free(gc_optim *o);

/* Turn weight decay on (decay != 0) or off for elements [offset, offset+count). */
gc_status gc_optim_set_decay(gc_optim *o, size_t offset, size_t count, int decay);
/* The default rule for a tensor name: 0 (no decay) for biases and LayerNorm parameters
 * ("bias", "LayerNorm", "layer_norm", "layernorm" anywhere in the name), 1 otherwise. */
int gc_optim_default_decay(const char *tensor_name);

/* One update of params (n) from grads (n) with learning rate lr; every gradient is
 * multiplied by grad_scale first (the clipping factor; 1 for none). Increments the step
 * count (AdamW's bias correction uses it). */
void gc_optim_step(gc_optim *o, float *params, const float *grads, float lr, float grad_scale);

/* Checkpoint view of the state: the number of state floats (2n for AdamW, 0 for SGD), the
 * buffer itself (NULL for SGD), the step count. */
size_t gc_optim_state_size(const gc_optim *o);
float *gc_optim_state(gc_optim *o);
uint64_t gc_optim_get_step(const gc_optim *o);
void gc_optim_set_step(gc_optim *o, uint64_t t);
size_t gc_optim_num_params(const gc_optim *o);

/* ---- learning-rate schedules ---- */

typedef enum gc_schedule { GC_SCHED_LINEAR = 0, GC_SCHED_CONSTANT = 1 } gc_schedule;

/* The learning rate of optimizer step `step` (0-based) out of `total`, as Hugging Face's
 * get_linear_schedule_with_warmup / get_constant_schedule_with_warmup: base * step/warmup
 * during warmup (so step 0 has lr 0 when warmup > 0), then linear: base * (total-step) /
 * (total-warmup), never below 0; constant: base. */
float gc_lr_at(gc_schedule s, float base_lr, uint64_t step, uint64_t warmup, uint64_t total);

/* ---- gradient clipping ---- */

/* Sum of squares of one buffer in double, in a fixed order whatever the thread count. */
double gc_grad_sq_sum(const float *g, size_t n);
/* The global L2 norm of a set of gradient buffers (computed in double): the square root of the
 * sum of their gc_grad_sq_sum. */
double gc_grad_norm(const float *const *bufs, const size_t *counts, int nbufs);
/* The factor clip_grad_norm_ multiplies gradients by: max_norm / (norm + 1e-6) when that is
 * below 1, else 1; max_norm <= 0 disables clipping (1). */
float gc_clip_scale(double norm, double max_norm);

#ifdef __cplusplus
}
#endif

#endif

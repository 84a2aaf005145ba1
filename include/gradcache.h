/* gradcache.h: the umbrella header of the gradcache library.
 *
 *   gc_core.h     status and errors, version, memory locations, gc_matmul, Philox random numbers
 *   gc_encoder.h  the encoder contract and the parameter store
 *   gc_comm.h     the communicator seam
 *   gc_loss.h     the tiled InfoNCE loss
 *   gc_matryoshka.h the loss of truncated, re-normalised prefixes (Matryoshka)
 *   gc_engine.h   the gradient-cache engine
 *   gc_optim.h    optimizers, schedules, clipping
 *   gc_train.h    the trainer (gc_trainer), data order, checkpoints
 * Model and file APIs: gc_bert.h, gc_tokenizer.h, gc_io.h, gc_eval.h. Test-only API (reference
 * kernels, the toy encoder): gc_testing.h, not included here. */
#ifndef GRADCACHE_H
#define GRADCACHE_H

#include "gc_comm.h"
#include "gc_core.h"
#include "gc_encoder.h"
#include "gc_engine.h"
#include "gc_loss.h"
#include "gc_matryoshka.h"
#include "gc_optim.h"

#endif /* GRADCACHE_H */

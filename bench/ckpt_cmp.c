/* ckpt_cmp.c: are two training checkpoints the same training state?
 *
 *   ckpt_cmp A/checkpoint.bin B/checkpoint.bin
 *
 * Compares, bit for bit, what decides the rest of a run: step, epoch, position, seed, the
 * parameters, the optimizer's step count and moments, the log-temperature and its optimizer
 * state. Prints the first difference and exits 1 on any; 0 when they agree. (The argument text
 * is not compared, so the check survives a change of what a checkpoint records about options.) */
#include "gc_train.h"

#include <stdio.h>
#include <string.h>

static int same_floats(const char *what, const float *a, size_t na, const float *b, size_t nb) {
    if (na != nb) {
        printf("ckpt_cmp: %s: %zu vs %zu values\n", what, na, nb);
        return 0;
    }
    for (size_t i = 0; i < na; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            printf("ckpt_cmp: %s[%zu]: %.9g vs %.9g\n", what, i, (double)a[i], (double)b[i]);
            return 0;
        }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ckpt_cmp A.bin B.bin\n");
        return 2;
    }
    gc_checkpoint a, b;
    if (gc_checkpoint_read(argv[1], &a) != GC_OK || gc_checkpoint_read(argv[2], &b) != GC_OK) {
        fprintf(stderr, "ckpt_cmp: %s\n", gc_last_error());
        return 2;
    }
    int ok = 1;
    const struct {
        const char *name;
        uint64_t x, y;
    } ints[] = {{"step", a.step, b.step},
                {"epoch", a.epoch, b.epoch},
                {"position", a.position, b.position},
                {"seed", a.seed, b.seed},
                {"optim_step", a.optim_step, b.optim_step},
                {"tau_step", a.tau_step, b.tau_step}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].x != ints[i].y) {
            printf("ckpt_cmp: %s: %llu vs %llu\n", ints[i].name, (unsigned long long)ints[i].x,
                   (unsigned long long)ints[i].y);
            ok = 0;
        }
    ok = ok && same_floats("params", a.params, a.num_params, b.params, b.num_params);
    ok = ok && same_floats("optimizer state", a.state, a.state_size, b.state, b.state_size);
    ok = ok && same_floats("log_tau", &a.log_tau, 1, &b.log_tau, 1);
    ok = ok && same_floats("tau optimizer state", a.tau_state, a.tau_state_size, b.tau_state,
                           b.tau_state_size);
    if (ok)
        printf("ckpt_cmp: same state (%zu parameters, %zu optimizer values, log_tau %.9g)\n",
               a.num_params, a.state_size, (double)a.log_tau);
    gc_checkpoint_free(&a);
    gc_checkpoint_free(&b);
    return ok ? 0 : 1;
}

/* ckpt_info.c: print what a training checkpoint holds, one "key value" line each:
 *
 *   ckpt_info DIR/checkpoint.bin
 *
 * step, epoch, position, seed, num_params, optim_step, log_tau (%.9g) and tau_step. Reading
 * validates the file (magic, sizes, crc32): exit 1 if it is not a valid checkpoint. Used by the
 * MPI tests to compare the learnable temperature's update across rank counts and to check
 * that a checkpoint survived a killed rank. */
#include "gc_train.h"

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: ckpt_info checkpoint.bin\n");
        return 2;
    }
    gc_checkpoint ck;
    if (gc_checkpoint_read(argv[1], &ck) != GC_OK) {
        fprintf(stderr, "ckpt_info: %s\n", gc_last_error());
        return 1;
    }
    printf("step %llu\nepoch %llu\nposition %llu\nseed %llu\nnum_params %zu\noptim_step %llu\n"
           "log_tau %.9g\ntau_step %llu\n",
           (unsigned long long)ck.step, (unsigned long long)ck.epoch,
           (unsigned long long)ck.position, (unsigned long long)ck.seed, ck.num_params,
           (unsigned long long)ck.optim_step, (double)ck.log_tau, (unsigned long long)ck.tau_step);
    gc_checkpoint_free(&ck);
    return 0;
}

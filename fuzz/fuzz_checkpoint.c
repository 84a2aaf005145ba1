/* fuzz_checkpoint.c: libFuzzer target for the training-checkpoint reader. Each input is parsed
 * twice: as it is (almost every mutation then fails the crc32) and with its checksum made
 * right, so the size fields and layout behind the checksum get fuzzed too. Any input either
 * fails with a "checkpoint: ..." message and a cleared struct, or parses into arrays that lie
 * inside the reader's copy of the file and agree with each other. */
#include "gc_train.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int inside(const void *p, size_t bytes, const gc_checkpoint *ck, size_t len) {
    const uint8_t *b = ck->buffer_, *q = p;
    if (bytes == 0) return 1;
    return q && q >= b && bytes <= len && (size_t)(q - b) <= len - bytes;
}

static void check(const uint8_t *data, size_t size) {
    gc_checkpoint ck;
    gc_status st = gc_checkpoint_parse(data, size, &ck);
    if (st != GC_OK) {
        if (st != GC_ERR_FORMAT && st != GC_ERR_NOMEM) abort();
        if (st == GC_ERR_FORMAT && strncmp(gc_last_error(), "checkpoint: ", 12) != 0) abort();
        if (ck.buffer_ || ck.args || ck.params || ck.state || ck.tau_state) abort();
        gc_checkpoint_free(&ck);
        return;
    }
    if (!ck.args || !ck.buffer_) abort();
    (void)strlen(ck.args);
    if (ck.num_params > size / sizeof(float) || ck.state_size > size / sizeof(float)) abort();
    if (!inside(ck.params, ck.num_params * sizeof(float), &ck, size) ||
        !inside(ck.state, ck.state_size * sizeof(float), &ck, size) ||
        !inside(ck.tau_state, ck.tau_state_size * sizeof(float), &ck, size))
        abort();
    if (ck.state_size != 0 && ck.state_size != 2 * ck.num_params) abort();
    if (ck.tau_state_size != 0 && ck.tau_state_size != 2) abort();
    /* read every float, so a pointer past the copy shows up under ASan */
    float sum = ck.log_tau;
    for (size_t i = 0; i < ck.num_params; i++) sum += ck.params[i];
    for (size_t i = 0; i < ck.state_size; i++) sum += ck.state[i];
    for (size_t i = 0; i < ck.tau_state_size; i++) sum += ck.tau_state[i];
    volatile float sink = sum;
    (void)sink;
    gc_checkpoint_free(&ck);
    if (ck.buffer_ || ck.args) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size);
    if (size < 16 || size % 8 != 0 || size > (1u << 24)) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32(0, fixed, (uInt)(size - 8));
    for (int i = 0; i < 4; i++) fixed[size - 8 + i] = (uint8_t)(crc >> (8 * i));
    memset(fixed + size - 4, 0, 4);
    check(fixed, size);
    free(fixed);
    return 0;
}

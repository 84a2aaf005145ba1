/* order.c: the data order of an epoch: group ids for duplicate texts, a seeded shuffle and the
 * cut into batches without two equal positives in one batch (in-batch, an equal positive
 * would be scored as a negative of a query it answers). */
#include "gc_train.h"

#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias: reject the lowest (2^64 mod bound) values. */
static uint64_t below(uint64_t *s, uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t x = splitmix64(s);
        if (x >= threshold) return x % bound;
    }
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

gc_status gc_text_groups(const char *const *texts, size_t n, int32_t *group, size_t *ngroups) {
    if ((!texts || !group) && n)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_text_groups: NULL argument");
    if (n > (size_t)INT32_MAX)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_text_groups: too many texts");
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    /* open addressing: slot holds 1 + index of the first text of a group, 0 = empty */
    int32_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return gc_set_error(GC_ERR_NOMEM, "gc_text_groups: out of memory");
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        size_t h = (size_t)fnv1a(texts[i]) & (cap - 1);
        for (;;) {
            if (!slot[h]) {
                slot[h] = (int32_t)i + 1;
                group[i] = (int32_t)g++;
                break;
            }
            size_t j = (size_t)slot[h] - 1;
            if (strcmp(texts[j], texts[i]) == 0) {
                group[i] = group[j];
                break;
            }
            h = (h + 1) & (cap - 1);
        }
    }
    free(slot);
    if (ngroups) *ngroups = g;
    return GC_OK;
}

gc_status gc_epoch_order(const int32_t *group, size_t n, size_t ngroups, size_t batch,
                         uint64_t seed, uint64_t epoch, int32_t *order, size_t *nbatches) {
    if (!group || !order || !nbatches || batch == 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_epoch_order: NULL argument or batch 0");
    *nbatches = 0;
    if (n == 0) return GC_OK;
    int32_t *perm = malloc(n * sizeof *perm);
    int32_t *deferred = malloc(n * sizeof *deferred);
    size_t *stamp = calloc(ngroups ? ngroups : 1, sizeof *stamp); /* batch number + 1 */
    if (!perm || !deferred || !stamp) {
        free(perm);
        free(deferred);
        free(stamp);
        return gc_set_error(GC_ERR_NOMEM, "gc_epoch_order: out of memory");
    }
    uint64_t s = seed ^ (0xD1B54A32D192ED03ULL * (epoch + 1));
    splitmix64(&s);
    for (size_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)below(&s, (uint64_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    gc_status st = GC_OK;
    size_t next = 0, ndef = 0, out = 0, b = 0;
    for (;;) {
        size_t filled = 0, keep = 0;
        const size_t mark = b + 1;
        /* deferred items first, in the order they were deferred */
        for (size_t k = 0; k < ndef; k++) {
            int32_t it = deferred[k];
            size_t gi = (size_t)group[it];
            if (filled < batch && stamp[gi] != mark) {
                stamp[gi] = mark;
                order[out + filled++] = it;
            } else {
                deferred[keep++] = it;
            }
        }
        ndef = keep;
        while (filled < batch && next < n) {
            int32_t it = perm[next++];
            size_t gi = (size_t)group[it];
            if (gi >= ngroups) {
                st = gc_set_error(GC_ERR_INVALID_ARG, "gc_epoch_order: group %zu >= %zu", gi,
                                  ngroups);
                goto done;
            }
            if (stamp[gi] == mark)
                deferred[ndef++] = it;
            else {
                stamp[gi] = mark;
                order[out + filled++] = it;
            }
        }
        if (filled < batch) break; /* the stream ran out: drop the partial batch */
        out += batch;
        b++;
    }
    *nbatches = b;
done:
    free(perm);
    free(deferred);
    free(stamp);
    return st;
}

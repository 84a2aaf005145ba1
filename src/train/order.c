/* order.c: the data order of an epoch: group ids for duplicate texts, a seeded shuffle and the
 * cut into batches without in-batch false negatives: no two equal positives, no hard negative
 * equal to a positive, no two equal queries in one batch (in-batch, each would score a text as
 * a negative of a query it answers). */
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

/* Ids at or above their bound would index past the stamps. */
static gc_status check_ids(const int32_t *ids, size_t n, size_t bound, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= bound)
            return gc_set_error(GC_ERR_INVALID_ARG, "gc_epoch_order: %s group %lld not below %zu",
                                what, (long long)ids[i], bound);
    return GC_OK;
}

/* What a batch holds so far: each stamp is the number (+1) of the last batch that took the
 * group, so nothing needs clearing between batches. */
typedef struct batch_marks {
    uint32_t *query, *positive, *passage; /* query texts; positives; any passage text */
} batch_marks;

/* Would pair `it` bring a false negative into batch `mark`? */
static int conflicts(const gc_pair_groups *g, const batch_marks *m, uint32_t mark, int32_t it) {
    if (g->query && m->query[g->query[it]] == mark) return 1;
    if (m->passage[g->positive[it]] == mark) return 1;
    const int32_t *neg = g->negative ? g->negative + (size_t)it * (size_t)g->K : NULL;
    for (int k = 0; neg && k < g->K; k++)
        if (m->positive[neg[k]] == mark) return 1;
    return 0;
}

static void take(const gc_pair_groups *g, batch_marks *m, uint32_t mark, int32_t it) {
    if (g->query) m->query[g->query[it]] = mark;
    m->positive[g->positive[it]] = mark;
    m->passage[g->positive[it]] = mark;
    const int32_t *neg = g->negative ? g->negative + (size_t)it * (size_t)g->K : NULL;
    for (int k = 0; neg && k < g->K; k++) m->passage[neg[k]] = mark;
}

gc_status gc_epoch_order_pairs(const gc_pair_groups *g, size_t n, size_t batch, uint64_t seed,
                               uint64_t epoch, int32_t *order, size_t *nbatches) {
    if (!g || !g->positive || !order || !nbatches || batch == 0 || g->K < 0 ||
        (g->K > 0 && !g->negative))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_epoch_order: NULL argument or batch 0");
    *nbatches = 0;
    if (n == 0) return GC_OK;
    if (n > (size_t)INT32_MAX)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_epoch_order: too many pairs");
    gc_status st = check_ids(g->positive, n, g->npassage, "positive");
    if (st == GC_OK && g->query) st = check_ids(g->query, n, g->nquery, "query");
    if (st == GC_OK && g->K > 0)
        st = check_ids(g->negative, n * (size_t)g->K, g->npassage, "negative");
    if (st != GC_OK) return st;
    int32_t *perm = malloc(n * sizeof *perm);
    int32_t *deferred = malloc(n * sizeof *deferred);
    const size_t nq = g->query ? g->nquery : 0, np = g->npassage;
    uint32_t *stamps = calloc(nq + 2 * np + 1, sizeof *stamps);
    if (!perm || !deferred || !stamps) {
        free(perm);
        free(deferred);
        free(stamps);
        return gc_set_error(GC_ERR_NOMEM, "gc_epoch_order: out of memory");
    }
    batch_marks m = {stamps, stamps + nq, stamps + nq + np};
    uint64_t s = seed ^ (0xD1B54A32D192ED03ULL * (epoch + 1));
    splitmix64(&s);
    for (size_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)below(&s, (uint64_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    size_t next = 0, ndef = 0, out = 0, b = 0;
    for (;;) {
        size_t filled = 0, keep = 0;
        const uint32_t mark = (uint32_t)b + 1; /* b < n <= INT32_MAX */
        /* deferred items first, in the order they were deferred */
        for (size_t k = 0; k < ndef; k++) {
            int32_t it = deferred[k];
            if (filled < batch && !conflicts(g, &m, mark, it)) {
                take(g, &m, mark, it);
                order[out + filled++] = it;
            } else {
                deferred[keep++] = it;
            }
        }
        ndef = keep;
        while (filled < batch && next < n) {
            int32_t it = perm[next++];
            if (conflicts(g, &m, mark, it)) {
                deferred[ndef++] = it;
            } else {
                take(g, &m, mark, it);
                order[out + filled++] = it;
            }
        }
        if (filled < batch) break; /* the stream ran out: drop the partial batch */
        out += batch;
        b++;
    }
    *nbatches = b;
    free(perm);
    free(deferred);
    free(stamps);
    return GC_OK;
}

gc_status gc_epoch_order(const int32_t *group, size_t n, size_t ngroups, size_t batch,
                         uint64_t seed, uint64_t epoch, int32_t *order, size_t *nbatches) {
    if (!group) return gc_set_error(GC_ERR_INVALID_ARG, "gc_epoch_order: NULL argument");
    gc_pair_groups g = {NULL, 0, group, NULL, 0, ngroups};
    return gc_epoch_order_pairs(&g, n, batch, seed, epoch, order, nbatches);
}

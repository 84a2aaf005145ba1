/* test_train.c: the epoch order (deterministic from seed and epoch; no duplicate positive, no
 * hard negative equal to another pair's positive and no repeated query in a batch; nothing used
 * twice) and the checkpoint file (round trip, and hostile files: every truncation, flipped
 * bytes, and structurally wrong files with a valid checksum). */
#include "gc_io.h"
#include "gc_train.h"
#include "test_util.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void test_groups(void) {
    const char *texts[6] = {"a", "b", "a", "c", "b", ""};
    int32_t g[6];
    size_t ng = 0;
    CHECK_OK(gc_text_groups(texts, 6, g, &ng));
    CHECK(ng == 4, "groups %zu", ng);
    CHECK(g[0] == 0 && g[1] == 1 && g[2] == 0 && g[3] == 2 && g[4] == 1 && g[5] == 3,
          "ids %d %d %d %d %d %d", g[0], g[1], g[2], g[3], g[4], g[5]);
}

/* every batch free of duplicate groups, no index twice, all indices in range */
static int order_ok(const int32_t *order, size_t nb, size_t batch, const int32_t *group, size_t n) {
    unsigned char *used = calloc(n, 1);
    int ok = 1;
    for (size_t b = 0; b < nb && ok; b++) {
        for (size_t i = 0; i < batch; i++) {
            int32_t it = order[b * batch + i];
            if (it < 0 || (size_t)it >= n || used[it])
                ok = 0;
            else
                used[it] = 1;
            for (size_t j = 0; j < i && ok; j++)
                if (group[order[b * batch + j]] == group[it]) ok = 0;
        }
    }
    free(used);
    return ok;
}

static void test_order(void) {
    enum { N = 1000 };
    int32_t group[N], a[N], b[N];
    for (int i = 0; i < N; i++) group[i] = i;
    size_t na = 0, nb = 0;
    CHECK_OK(gc_epoch_order(group, N, N, 64, 42, 0, a, &na));
    CHECK(na == N / 64, "batches %zu", na);
    CHECK(order_ok(a, na, 64, group, N), "distinct order");
    CHECK_OK(gc_epoch_order(group, N, N, 64, 42, 0, b, &nb));
    CHECK(nb == na && memcmp(a, b, na * 64 * sizeof(int32_t)) == 0,
          "same seed and epoch, same order");
    CHECK_OK(gc_epoch_order(group, N, N, 64, 42, 1, b, &nb));
    CHECK(memcmp(a, b, 64 * sizeof(int32_t)) != 0, "another epoch, another order");
    CHECK_OK(gc_epoch_order(group, N, N, 64, 43, 0, b, &nb));
    CHECK(memcmp(a, b, 64 * sizeof(int32_t)) != 0, "another seed, another order");
    int moved = 0;
    for (int i = 0; i < 64; i++) moved += a[i] != i;
    CHECK(moved > 50, "the order is shuffled (%d of 64 moved)", moved);

    /* heavy duplicates: 10 groups, batch 8: every batch distinct, most items still used */
    for (int i = 0; i < N; i++) group[i] = (i * 7) % 10;
    CHECK_OK(gc_epoch_order(group, N, 10, 8, 1, 0, a, &na));
    CHECK(order_ok(a, na, 8, group, N), "no duplicate positive in a batch");
    CHECK(na >= 110, "batches with duplicates %zu", na);

    /* one group only: a batch of two can never be filled */
    for (int i = 0; i < N; i++) group[i] = 0;
    CHECK_OK(gc_epoch_order(group, N, 1, 2, 1, 0, a, &na));
    CHECK(na == 0, "one group, batch 2: %zu batches", na);
    CHECK_OK(gc_epoch_order(group, N, 1, 1, 1, 0, a, &na));
    CHECK(na == N, "batch 1 always fills: %zu", na);

    /* batch larger than the data */
    for (int i = 0; i < N; i++) group[i] = i;
    CHECK_OK(gc_epoch_order(group, 10, N, 11, 1, 0, a, &na));
    CHECK(na == 0, "batch > n: %zu", na);
    CHECK(gc_epoch_order(group, 10, N, 0, 1, 0, a, &na) == GC_ERR_INVALID_ARG, "batch 0");
    group[3] = 5000;
    CHECK(gc_epoch_order(group, 10, 10, 2, 1, 0, a, &na) == GC_ERR_INVALID_ARG,
          "group out of range");
}

/* No pair brings a false negative into its batch: within a batch, queries are distinct,
 * positives are distinct, and no hard negative equals a positive of another pair. */
static int pairs_ok(const int32_t *order, size_t nb, size_t batch, const gc_pair_groups *g,
                    size_t n) {
    unsigned char *used = calloc(n, 1);
    int ok = 1;
    for (size_t b = 0; b < nb && ok; b++) {
        const int32_t *o = order + b * batch;
        for (size_t i = 0; i < batch && ok; i++) {
            if (o[i] < 0 || (size_t)o[i] >= n || used[o[i]]) ok = 0;
            if (!ok) break;
            used[o[i]] = 1;
            for (size_t j = 0; j < batch && ok; j++) {
                if (j == i) continue;
                if (g->query && g->query[o[i]] == g->query[o[j]]) ok = 0;
                if (g->positive[o[i]] == g->positive[o[j]]) ok = 0;
                for (int k = 0; k < g->K; k++)
                    if (g->negative[(size_t)o[j] * g->K + k] == g->positive[o[i]]) ok = 0;
            }
        }
    }
    free(used);
    return ok;
}

static void test_order_pairs(void) {
    enum { N = 600, K = 2 };
    int32_t q[N], p[N], neg[N * K], a[N], b[N];
    size_t na = 0, nb = 0;

    /* queries and negatives left out: exactly gc_epoch_order */
    for (int i = 0; i < N; i++) p[i] = (i * 7) % 50;
    gc_pair_groups only = {NULL, 0, p, NULL, 0, 50};
    CHECK_OK(gc_epoch_order(p, N, 50, 8, 3, 1, a, &na));
    CHECK_OK(gc_epoch_order_pairs(&only, N, 8, 3, 1, b, &nb));
    CHECK(na == nb && memcmp(a, b, na * 8 * sizeof(int32_t)) == 0, "same order as by positives");

    /* every pair's hard negatives are other pairs' positives (mined from the same corpus), and
     * queries repeat: batches must still be free of false negatives */
    for (int i = 0; i < N; i++) {
        q[i] = i % 150;
        p[i] = i;
        for (int k = 0; k < K; k++) neg[i * K + k] = (i * 13 + 17 * k + 1) % N;
    }
    gc_pair_groups g = {q, 150, p, neg, K, N};
    CHECK_OK(gc_epoch_order_pairs(&g, N, 16, 9, 0, a, &na));
    CHECK(pairs_ok(a, na, 16, &g, N), "no false negative in any batch");
    CHECK(na >= 30, "most pairs still batched: %zu batches of 16 from %d", na, N);
    /* the same checker notices a batch with a conflict: the plain order has them */
    gc_pair_groups noq = {NULL, 0, p, NULL, 0, N};
    CHECK_OK(gc_epoch_order_pairs(&noq, N, 16, 9, 0, b, &nb));
    CHECK(!pairs_ok(b, nb, 16, &g, N), "ignoring negatives and queries leaves false negatives");

    /* a small case by hand: pair 1's negative is pair 0's positive, pair 2 repeats pair 0's
     * query, pair 3 is free; in batches of 2, pair 0 can only go with pair 3 */
    {
        int32_t hq[4] = {0, 1, 0, 2}, hp[4] = {0, 1, 2, 3}, hn[4] = {4, 0, 5, 6};
        gc_pair_groups h = {hq, 3, hp, hn, 1, 7};
        for (uint64_t seed = 0; seed < 20; seed++) {
            int32_t o[4];
            size_t k = 0;
            CHECK_OK(gc_epoch_order_pairs(&h, 4, 2, seed, 0, o, &k));
            CHECK(pairs_ok(o, k, 2, &h, 4), "seed %llu: a conflicting pair shares a batch",
                  (unsigned long long)seed);
            for (size_t j = 0; j < k; j++) {
                int x = o[2 * j], y = o[2 * j + 1];
                int lo = x < y ? x : y, hi = x < y ? y : x;
                CHECK((lo == 0 && hi == 3) || (lo == 1 && hi == 2) || (lo == 1 && hi == 3) ||
                          (lo == 2 && hi == 3),
                      "seed %llu: batch {%d, %d}", (unsigned long long)seed, lo, hi);
            }
        }
        /* the reverse direction: a positive equal to a negative already in the batch */
        int32_t rp[2] = {0, 1}, rn[2] = {1, 2};
        gc_pair_groups r = {NULL, 0, rp, rn, 1, 3};
        int32_t o[2];
        size_t k = 9;
        for (uint64_t seed = 0; seed < 8; seed++) {
            CHECK_OK(gc_epoch_order_pairs(&r, 2, 2, seed, 0, o, &k));
            CHECK(k == 0, "seed %llu: pair 1's positive is pair 0's negative: %zu batches",
                  (unsigned long long)seed, k);
        }
        /* a hard negative equal to the pair's own positive is not the order's business */
        int32_t sp[2] = {0, 1}, sn[2] = {0, 1};
        gc_pair_groups self = {NULL, 0, sp, sn, 1, 2};
        CHECK_OK(gc_epoch_order_pairs(&self, 2, 2, 1, 0, o, &k));
        CHECK(k == 1, "own negative == own positive still batched: %zu", k);
    }

    /* bad arguments */
    neg[5] = N;
    CHECK(gc_epoch_order_pairs(&g, N, 16, 9, 0, a, &na) == GC_ERR_INVALID_ARG,
          "negative id out of range");
    neg[5] = 0;
    q[2] = -1;
    CHECK(gc_epoch_order_pairs(&g, N, 16, 9, 0, a, &na) == GC_ERR_INVALID_ARG, "negative query id");
    q[2] = 2;
    gc_pair_groups nonneg = {q, 150, p, NULL, K, N};
    CHECK(gc_epoch_order_pairs(&nonneg, N, 16, 9, 0, a, &na) == GC_ERR_INVALID_ARG,
          "K without negatives");
}

static void fix_crc(unsigned char *buf, size_t len) {
    uint32_t c = (uint32_t)crc32(0, buf, (uInt)(len - 8));
    for (int i = 0; i < 4; i++) buf[len - 8 + i] = (unsigned char)(c >> (8 * i));
}

static void test_checkpoint(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/test_train_ckpt_%d.bin", GC_BINARY_DIR, (int)getpid());
    float params[5] = {1, 2, 3, 4, 5};
    float state[10];
    for (int i = 0; i < 10; i++) state[i] = 0.5f * (float)i;
    float tstate[2] = {0.25f, 0.125f};
    gc_checkpoint ck = {.step = 7,
                        .epoch = 2,
                        .position = 3,
                        .seed = 99,
                        .args = "lr=0.001\nbatch_size=4\n",
                        .num_params = 5,
                        .params = params,
                        .optim_step = 7,
                        .state_size = 10,
                        .state = state,
                        .log_tau = -2.5f,
                        .tau_step = 7,
                        .tau_state_size = 2,
                        .tau_state = tstate};
    CHECK_OK(gc_checkpoint_write(path, &ck));
    gc_checkpoint r;
    CHECK_OK(gc_checkpoint_read(path, &r));
    CHECK(r.step == 7 && r.epoch == 2 && r.position == 3 && r.seed == 99, "counters");
    CHECK(r.args && strcmp(r.args, ck.args) == 0, "args '%s'", r.args ? r.args : "(null)");
    CHECK(r.num_params == 5 && memcmp(r.params, params, sizeof params) == 0, "params");
    CHECK(r.optim_step == 7 && r.state_size == 10 && memcmp(r.state, state, sizeof state) == 0,
          "state");
    CHECK(r.log_tau == -2.5f && r.tau_step == 7 && r.tau_state_size == 2 &&
              memcmp(r.tau_state, tstate, sizeof tstate) == 0,
          "temperature");
    gc_checkpoint_free(&r);

    char *data = NULL;
    size_t len = 0;
    CHECK_OK(gc_read_file(path, &data, &len));
    unlink(path);
    if (!data) return;
    /* every truncation fails cleanly */
    int bad = 0;
    for (size_t l = 0; l < len; l++) {
        if (gc_checkpoint_parse(data, l, &r) == GC_OK) bad++;
        gc_checkpoint_free(&r);
    }
    CHECK(bad == 0, "%d truncations accepted", bad);
    /* every flipped byte is caught (by the checksum, or the magic/version before it) */
    bad = 0;
    for (size_t i = 0; i < len; i++) {
        data[i] ^= 0x40;
        if (gc_checkpoint_parse(data, len, &r) == GC_OK) bad++;
        gc_checkpoint_free(&r);
        data[i] ^= 0x40;
    }
    CHECK(bad == 0, "%d flipped bytes accepted", bad);
    CHECK(gc_checkpoint_parse(data, len, &r) == GC_OK, "the intact copy parses");
    gc_checkpoint_free(&r);

    /* structurally wrong with a valid checksum: huge sizes must not be trusted */
    unsigned char *u = (unsigned char *)data;
    const size_t size_fields[4] = {48, 80, 120, 184}; /* args_len, num_params, state, tau state */
    for (int f = 0; f < 4; f++) {
        unsigned char saved[8];
        memcpy(saved, u + size_fields[f], 8);
        const uint64_t vals[3] = {UINT64_MAX, UINT64_MAX / 4 + 1, 1000000};
        for (int v = 0; v < 3; v++) {
            for (int i = 0; i < 8; i++) u[size_fields[f] + i] = (unsigned char)(vals[v] >> (8 * i));
            fix_crc(u, len);
            gc_status st = gc_checkpoint_parse(data, len, &r);
            CHECK(st == GC_ERR_FORMAT, "size field at %zu = %llu accepted", size_fields[f],
                  (unsigned long long)vals[v]);
            gc_checkpoint_free(&r);
        }
        memcpy(u + size_fields[f], saved, 8);
    }
    fix_crc(u, len);
    CHECK(gc_checkpoint_parse(data, len, &r) == GC_OK, "restored copy parses: %s", gc_last_error());
    gc_checkpoint_free(&r);
    /* version from the future */
    u[8] = 9;
    fix_crc(u, len);
    CHECK(gc_checkpoint_parse(data, len, &r) == GC_ERR_FORMAT && strstr(gc_last_error(), "version"),
          "future version: %s", gc_last_error());
    gc_checkpoint_free(&r);
    free(data);

    CHECK(gc_checkpoint_read("/nonexistent/ckpt.bin", &r) == GC_ERR_IO, "missing file");
    CHECK(gc_checkpoint_write("/nonexistent/dir/ckpt.bin", &ck) != GC_OK, "unwritable folder");
}

int main(void) {
    test_groups();
    test_order();
    test_order_pairs();
    test_checkpoint();
    return test_summary("test_train");
}

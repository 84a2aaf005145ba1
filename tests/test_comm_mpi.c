/* test_comm_mpi.c: the MPI communicator and the sharded loss on real ranks.
 *
 * Started by CTest as one process, it runs itself under `mpirun -np 2` and `-np 3` (bounded by
 * timeout) and fails if any rank fails. On the ranks: every collective of gc_comm_mpi against
 * values known in advance, once with whole messages and once with every message split into
 * pieces of 7 elements (the path of counts above 2^31 - 1); gc_comm_agree (one rank's failure
 * reaches every rank with its message); and gc_infonce_shard over the ranks against gc_infonce
 * on the whole batch (cosine, symmetric, hard negatives, ragged tiles): the same loss, d loss /
 * d log tau and accuracy on every rank, dq rows, and dp once the shards are summed. Skipped,
 * saying so, when the library was built without MPI. */
#include "gc_comm_mpi.h"
#include "gc_loss.h"
#include "test_util.h"

#include <string.h>
#include <unistd.h>

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void test_collectives(const gc_comm *c, const char *how) {
    const int R = gc_comm_size(c), me = gc_comm_rank(c);
    enum { ROWS = 5, D = 3, N = 1000 };
    float local[ROWS * D], global[8 * ROWS * D];
    for (int i = 0; i < ROWS * D; i++) local[i] = (float)(me * 100 + i);
    CHECK_OK(c->ops->all_gather(c->ctx, local, ROWS, D, global));
    int bad = 0;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < ROWS * D; i++) bad += global[r * ROWS * D + i] != (float)(r * 100 + i);
    CHECK(bad == 0, "%s: all_gather: %d wrong values", how, bad);
    memset(global, 0, sizeof global); /* in place: the local rows already at their place */
    for (int i = 0; i < ROWS * D; i++) global[me * ROWS * D + i] = (float)(me * 100 + i);
    CHECK_OK(c->ops->all_gather(c->ctx, global + me * ROWS * D, ROWS, D, global));
    bad = 0;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < ROWS * D; i++) bad += global[r * ROWS * D + i] != (float)(r * 100 + i);
    CHECK(bad == 0, "%s: all_gather in place: %d wrong values", how, bad);

    static float buf[N], in[8 * N], out[N];
    for (size_t n = 1; n <= N; n = n * 7 + 3) { /* 1, 10, 73, 514: with and without a tail */
        for (size_t i = 0; i < n; i++) buf[i] = (float)((me + 1) * i) * 0.5f;
        CHECK_OK(c->ops->all_reduce_sum(c->ctx, buf, n, GC_MEM_HOST));
        bad = 0;
        for (size_t i = 0; i < n; i++) bad += buf[i] != (float)(R * (R + 1) / 2 * i) * 0.5f;
        CHECK(bad == 0, "%s: all_reduce_sum of %zu: %d wrong values", how, n, bad);
        for (int r = 0; r < R; r++)
            for (size_t i = 0; i < n; i++) in[r * n + i] = (float)(me + r * 1000 + i);
        CHECK_OK(c->ops->reduce_scatter_sum(c->ctx, in, out, n));
        bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += out[i] != (float)(R * (R - 1) / 2 + R * (me * 1000 + (int)i));
        CHECK(bad == 0, "%s: reduce_scatter_sum of %zu: %d wrong values", how, n, bad);
    }
    double v[20];
    for (int i = 0; i < 20; i++) v[i] = me == 1 ? 1e300 : 0.25 * (me + i);
    CHECK_OK(c->ops->all_reduce_f64(c->ctx, v, 20, GC_COMM_MAX));
    CHECK(v[0] == 1e300 && v[19] == 1e300, "%s: f64 max: %g %g", how, v[0], v[19]);
    for (int i = 0; i < 20; i++) v[i] = 0.25 * (me + i);
    CHECK_OK(c->ops->all_reduce_f64(c->ctx, v, 20, GC_COMM_SUM));
    CHECK(v[3] == 0.25 * (R * (R - 1) / 2 + 3 * R), "%s: f64 sum: %g", how, v[3]);
    char text[100];
    memset(text, me == R - 1 ? 'x' : 'o', sizeof text);
    CHECK_OK(c->ops->broadcast(c->ctx, text, sizeof text, R - 1));
    CHECK(text[0] == 'x' && text[99] == 'x', "%s: broadcast from the last rank", how);
}

static void test_agree(const gc_comm *c) {
    const int me = gc_comm_rank(c);
    CHECK_OK(gc_comm_agree(c, GC_OK));
    gc_status mine = GC_OK;
    if (me == 1) mine = gc_set_error(GC_ERR_FORMAT, "boom on one rank");
    gc_status st = gc_comm_agree(c, mine);
    CHECK(st == GC_ERR_FORMAT, "every rank gets rank 1's status (%d)", (int)st);
    CHECK(strcmp(gc_last_error(), "rank 1: boom on one rank") == 0, "and its message: '%s'",
          gc_last_error());
    int first = -2;
    CHECK_OK(gc_comm_any(c, me >= 1, &first));
    CHECK(first == 1, "lowest flagged rank %d", first);
    CHECK_OK(gc_comm_any(c, 0, &first));
    CHECK(first == -1, "no rank flagged: %d", first);
    CHECK_OK(gc_comm_barrier(c));
}

static void test_sharded_loss(const gc_comm *c) {
    const int R = gc_comm_size(c), me = gc_comm_rank(c);
    enum { B = 12, K = 2, P = B * (1 + K), D = 8 };
    static float q[B * D], p[P * D], dq[B * D], dp[P * D], sdq[B * D], sdp[P * D];
    uint64_t s = 42; /* the same inputs on every rank */
    for (int i = 0; i < B * D; i++) q[i] = frand(&s);
    for (int i = 0; i < P * D; i++) p[i] = frand(&s);
    for (int i = 0; i < B * D; i++) p[i] += 0.5f * q[i]; /* positives near their queries */
    gc_loss_config cfg = {.temperature = 0.1f, .symmetric = 1, .cosine = 1, .tile = 5};
    gc_loss_out full, part;
    CHECK_OK(gc_infonce(q, p, B, P, D, &cfg, &full, dq, dp, NULL));
    const int b = B / R;
    gc_loss_shard sh = {me * b, b, c};
    CHECK(gc_infonce_shard_workspace_size(B, P, D, b, 1, &cfg) <
              gc_infonce_workspace_size(B, P, D, &cfg) + (size_t)B * 8 + 64,
          "a shard's workspace is not the whole batch's");
    memset(sdq, 0, sizeof sdq);
    CHECK_OK(gc_infonce_shard(q, p, B, P, D, &cfg, &sh, &part, sdq, sdp, NULL));
    CHECK(fabs(part.loss - full.loss) <= 1e-6 * fabs(full.loss), "loss %.9g vs %.9g", part.loss,
          full.loss);
    CHECK(fabs(part.dlog_tau - full.dlog_tau) <= 1e-6 * fabs(full.dlog_tau),
          "dlog_tau %.9g vs %.9g", part.dlog_tau, full.dlog_tau);
    CHECK(part.accuracy == full.accuracy, "accuracy %g vs %g", part.accuracy, full.accuracy);
    double v[2] = {part.loss, -part.loss}; /* bit-identical on every rank */
    CHECK_OK(c->ops->all_reduce_f64(c->ctx, v, 2, GC_COMM_MAX));
    CHECK(v[0] == part.loss && -v[1] == part.loss, "the same loss on every rank");
    double e = norm_rel_err(sdq + me * b * D, dq + me * b * D, (size_t)b * D);
    CHECK(e <= 1e-5, "dq of this rank's rows: %.3e", e);
    CHECK_OK(c->ops->all_reduce_sum(c->ctx, sdp, (size_t)P * D, GC_MEM_HOST));
    e = norm_rel_err(sdp, dp, (size_t)P * D);
    CHECK(e <= 1e-5, "dp summed over the shards: %.3e", e);
    /* the check can fail: one shard alone is not the gradient */
    CHECK(R == 1 || norm_rel_err(sdq, dq, (size_t)B * D) > 1e-2, "other rows untouched");
}

static int launch(const char *self, int n) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "timeout 300 mpirun -np %d '%s'", n, self);
    int rc = system(cmd);
    printf("test_comm_mpi: %d ranks: %s\n", n, rc == 0 ? "ok" : "FAILED");
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    (void)argc;
    if (!gc_comm_mpi_available()) {
        printf("test_comm_mpi: skipped: the library was built without MPI\n");
        return 0;
    }
    if (!gc_comm_mpi_launched()) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
        setenv("OMP_NUM_THREADS", "1", 1);
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", asan ? asan : "", asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1); /* MPI's own allocations live until exit */
        return launch(argv[0], 2) | launch(argv[0], 3);
    }
    gc_comm c;
    gc_status st = gc_comm_mpi_create(&c);
    CHECK_OK(st);
    if (st != GC_OK) return test_summary("test_comm_mpi");
    test_collectives(&c, "whole");
    gc_comm_mpi_set_max_count(7);
    test_collectives(&c, "in pieces of 7");
    test_sharded_loss(&c);
    gc_comm_mpi_set_max_count(0);
    test_agree(&c);
    test_sharded_loss(&c);
    char name[64];
    snprintf(name, sizeof name, "test_comm_mpi rank %d/%d", gc_comm_rank(&c), gc_comm_size(&c));
    gc_comm_mpi_free(&c);
    return test_summary(name);
}

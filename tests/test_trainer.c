/* test_trainer.c: the library trainer (gc_trainer) on the toy encoder, and the encoder contract
 * with a device-style encoder.
 *
 * The device-style encoder wraps a toy encoder but keeps its parameters, gradients and optimizer
 * moments in a memory region that is mapped PROT_NONE whenever none of its own functions runs:
 * any code outside the contract that touched them through a host pointer would crash. Trained
 * through gc_trainer it must give exactly the toy's numbers (same gradients, parameters,
 * checkpoints). Also: resume is bit-identical, two towers train, bad inputs are refused. */
#include "gc_testing.h"
#include "gc_train.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { VOCAB = 40, EMBED = 8, HIDDEN = 12, DIM = 6, NPAIRS = 48, K = 1, LEN = 7 };

/* ---- a device-style encoder ---- */

typedef struct dev {
    gc_encoder toy;  /* the "kernels": computes with its own buffers, refreshed from ours */
    size_t n;        /* parameters */
    float *mem;      /* the "device": params, grads, m, v (4n floats), PROT_NONE when idle */
    size_t mem_size; /* bytes, page-rounded */
    gc_optim *opt;   /* its moments are copied into mem after every step */
    gc_optim_config ocfg;
    int touched; /* calls that opened the region */
} dev;

static void dev_open(dev *d) {
    mprotect(d->mem, d->mem_size, PROT_READ | PROT_WRITE);
    d->touched++;
}

static void dev_close(dev *d) {
    mprotect(d->mem, d->mem_size, PROT_NONE);
}

static float *dpart(dev *d, gc_param_part part) {
    return d->mem + (part == GC_PART_PARAMS ? 0 : part == GC_PART_GRADS ? d->n : 2 * d->n);
}

static int d_dim(void *ctx) {
    dev *d = ctx;
    return d->toy.ops->dim(d->toy.ctx);
}

static gc_status d_reserve(void *ctx, const gc_encoder_reserve *r) {
    dev *d = ctx;
    return d->toy.ops->reserve(d->toy.ctx, r);
}

/* The toy computes with our parameters: copy them in (device-side work). */
static void sync_params(dev *d) {
    memcpy(gc_toy_params(&d->toy), dpart(d, GC_PART_PARAMS), d->n * sizeof(float));
}

static gc_status d_encode(void *ctx, const gc_encode_args *a, float *reps) {
    dev *d = ctx;
    dev_open(d);
    sync_params(d);
    gc_status st = d->toy.ops->encode(d->toy.ctx, a, reps);
    dev_close(d);
    return st;
}

static gc_status d_forward(void *ctx, const gc_encode_args *a, float *reps) {
    dev *d = ctx;
    dev_open(d);
    sync_params(d);
    gc_status st = d->toy.ops->forward(d->toy.ctx, a, reps);
    dev_close(d);
    return st;
}

static gc_status d_backward(void *ctx, const gc_encode_args *a, const float *dreps) {
    dev *d = ctx;
    dev_open(d);
    /* the toy accumulates into its own gradient buffer, zeroed with ours */
    gc_status st = d->toy.ops->backward(d->toy.ctx, a, dreps);
    memcpy(dpart(d, GC_PART_GRADS), gc_toy_grads(&d->toy), d->n * sizeof(float));
    dev_close(d);
    return st;
}

static gc_mem s_location(void *ctx) {
    (void)ctx;
    return GC_MEM_DEVICE;
}
static size_t s_num_params(void *ctx) {
    return ((dev *)ctx)->n;
}
static int s_num_tensors(void *ctx) {
    gc_param_store s = gc_encoder_store(&((dev *)ctx)->toy);
    return s.ops->num_tensors(s.ctx);
}
static gc_status s_tensor(void *ctx, int i, gc_tensor_view *out) {
    gc_param_store s = gc_encoder_store(&((dev *)ctx)->toy);
    return s.ops->tensor(s.ctx, i, out);
}
static gc_status s_zero_grad(void *ctx) {
    dev *d = ctx;
    dev_open(d);
    memset(dpart(d, GC_PART_GRADS), 0, d->n * sizeof(float));
    memset(gc_toy_grads(&d->toy), 0, d->n * sizeof(float));
    dev_close(d);
    return GC_OK;
}
static float *s_grad_buffer(void *ctx) {
    dev *d = ctx;
    return dpart(d, GC_PART_GRADS); /* a device address: only a device communicator may use it */
}
static gc_status s_grad_sq_norm(void *ctx, double *out) {
    dev *d = ctx;
    dev_open(d);
    *out = gc_grad_sq_sum(dpart(d, GC_PART_GRADS), d->n);
    dev_close(d);
    return GC_OK;
}
static size_t s_optim_state_size(void *ctx) {
    dev *d = ctx;
    return d->opt ? gc_optim_state_size(d->opt) : 0;
}
static gc_status s_copy(dev *d, gc_param_part part, size_t off, size_t n, float *host, int out) {
    size_t len = part == GC_PART_OPTIM ? s_optim_state_size(d) : d->n;
    if (off > len || n > len - off) return gc_set_error(GC_ERR_INVALID_ARG, "dev: bad range");
    dev_open(d);
    float *at = dpart(d, part) + off;
    if (out)
        memcpy(host, at, n * sizeof(float));
    else
        memcpy(at, host, n * sizeof(float));
    dev_close(d);
    return GC_OK;
}
static gc_status s_read(void *ctx, gc_param_part part, size_t off, size_t n, float *host) {
    return s_copy(ctx, part, off, n, host, 1);
}
static gc_status s_write(void *ctx, gc_param_part part, size_t off, size_t n, const float *host) {
    return s_copy(ctx, part, off, n, (float *)host, 0);
}
static gc_status s_optim_init(void *ctx, const gc_optim_config *cfg, int (*decay)(const char *)) {
    dev *d = ctx;
    gc_optim_free(d->opt);
    gc_status st = gc_optim_create(&d->opt, cfg, d->n);
    for (int i = 0; st == GC_OK && decay && i < s_num_tensors(ctx); i++) {
        gc_tensor_view t;
        st = s_tensor(ctx, i, &t);
        if (st == GC_OK) st = gc_optim_set_decay(d->opt, t.offset, t.count, decay(t.name));
    }
    if (st == GC_OK && gc_optim_state_size(d->opt) > 2 * d->n) st = GC_ERR_INTERNAL;
    dev_open(d);
    memset(dpart(d, GC_PART_OPTIM), 0, 2 * d->n * sizeof(float));
    dev_close(d);
    return st;
}
static gc_status s_optim_step(void *ctx, float lr, float scale) {
    dev *d = ctx;
    dev_open(d);
    size_t ns = gc_optim_state_size(d->opt);
    if (ns) memcpy(gc_optim_state(d->opt), dpart(d, GC_PART_OPTIM), ns * sizeof(float));
    gc_optim_step(d->opt, dpart(d, GC_PART_PARAMS), dpart(d, GC_PART_GRADS), lr, scale);
    if (ns) memcpy(dpart(d, GC_PART_OPTIM), gc_optim_state(d->opt), ns * sizeof(float));
    dev_close(d);
    return GC_OK;
}
static uint64_t s_get_step(void *ctx) {
    dev *d = ctx;
    return d->opt ? gc_optim_get_step(d->opt) : 0;
}
static void s_set_step(void *ctx, uint64_t step) {
    dev *d = ctx;
    if (d->opt) gc_optim_set_step(d->opt, step);
}

static const gc_param_store_ops g_dev_store = {
    s_location,    s_num_params,       s_num_tensors, s_tensor,   s_zero_grad,
    s_grad_buffer, s_grad_sq_norm,     s_read,        s_write,    s_optim_init,
    s_optim_step,  s_optim_state_size, s_get_step,    s_set_step,
};

static gc_param_store d_store(void *ctx) {
    return (gc_param_store){&g_dev_store, ctx};
}

static void d_free(void *ctx) {
    dev *d = ctx;
    gc_encoder_free(&d->toy);
    gc_optim_free(d->opt);
    munmap(d->mem, d->mem_size);
    free(d);
}

static const gc_encoder_ops g_dev_ops = {d_dim,      d_reserve, d_encode, d_forward,
                                         d_backward, d_store,   d_free,   NULL};

static gc_toy_config toy_cfg(uint64_t seed) {
    gc_toy_config c = {VOCAB, EMBED, HIDDEN, DIM, 0.1f, 1, 1, 8, seed};
    return c;
}

static gc_status dev_create(gc_encoder *out, uint64_t seed) {
    dev *d = calloc(1, sizeof *d);
    gc_toy_config c = toy_cfg(seed);
    gc_status st = gc_toy_encoder_create(&d->toy, &c);
    if (st != GC_OK) return st;
    d->n = gc_encoder_num_params(&d->toy);
    long page = sysconf(_SC_PAGESIZE);
    d->mem_size = (4 * d->n * sizeof(float) + (size_t)page - 1) / (size_t)page * (size_t)page;
    d->mem = mmap(NULL, d->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d->mem == MAP_FAILED) return gc_set_error(GC_ERR_NOMEM, "mmap");
    memcpy(d->mem, gc_toy_params(&d->toy), d->n * sizeof(float)); /* "upload" */
    dev_close(d);
    *out = (gc_encoder){&g_dev_ops, d};
    return GC_OK;
}

/* ---- data ---- */

static int32_t g_ids[3][NPAIRS * K * LEN];
static int64_t g_off[3][NPAIRS * K + 1];
static char g_text[3][NPAIRS * K][16];
static const char *g_tp[3][NPAIRS * K];

static void make_data(gc_train_data *d) {
    uint64_t x = 12345;
    for (int s = 0; s < 3; s++) {
        int rows = NPAIRS; /* K == 1: the negatives are as many as the pairs */
        g_off[s][0] = 0;
        for (int i = 0; i < rows; i++) {
            int len = 3 + i % (LEN - 2);
            for (int t = 0; t < len; t++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                g_ids[s][g_off[s][i] + t] = (int32_t)((x >> 33) % VOCAB);
            }
            g_off[s][i + 1] = g_off[s][i] + len;
            snprintf(g_text[s][i], sizeof g_text[s][i], "%c%d", "qpn"[s], i);
            g_tp[s][i] = g_text[s][i];
        }
    }
    *d = (gc_train_data){NPAIRS,
                         K,
                         {NPAIRS, g_ids[0], g_off[0]},
                         {NPAIRS, g_ids[1], g_off[1]},
                         {NPAIRS * K, g_ids[2], g_off[2]},
                         g_tp[0],
                         g_tp[1],
                         g_tp[2]};
}

static gc_trainer_config train_cfg(void) {
    gc_trainer_config c = {
        .batch = 8,
        .accumulation = 2,
        .query_chunk = 3,
        .passage_chunk = 5,
        .max_len = LEN,
        .loss = {.temperature = 0.1f, .symmetric = 1, .cosine = 1},
        .learn_temperature = 1,
        .optim = {.kind = GC_OPTIM_ADAMW, .weight_decay = 0.01f},
        .lr = 1e-2f,
        .schedule = GC_SCHED_LINEAR,
        .warmup = 1,
        .max_grad_norm = 1.0,
        .steps = 5,
        .seed = 7,
        .fingerprint = "test=1\n",
    };
    return c;
}

static void read_all(gc_encoder *e, gc_param_part part, float *out) {
    CHECK_OK(gc_encoder_read(e, part, out));
}

/* ---- tests ---- */

static void test_device_equals_toy(const gc_train_data *data) {
    gc_encoder toy, devenc;
    gc_toy_config c = toy_cfg(3);
    CHECK_OK(gc_toy_encoder_create(&toy, &c));
    CHECK_OK(dev_create(&devenc, 3));
    gc_trainer_config cfg = train_cfg();
    gc_trainer *a = NULL, *b = NULL;
    CHECK_OK(gc_trainer_create(&a, &cfg, &toy, NULL, data, NULL));
    CHECK_OK(gc_trainer_create(&b, &cfg, &devenc, NULL, data, NULL));
    if (!a || !b) return;
    size_t n = gc_encoder_num_params(&toy);
    float *ga = malloc(n * sizeof(float)), *gb = malloc(n * sizeof(float));
    double worst_grad = 0, worst_param = 0;
    for (int s = 0; s < 5; s++) {
        gc_train_stats sa, sb;
        CHECK_OK(gc_trainer_step(a, &sa));
        CHECK_OK(gc_trainer_step(b, &sb));
        CHECK(sa.loss == sb.loss && sa.grad_norm == sb.grad_norm, "step %d: loss %.9g vs %.9g", s,
              sa.loss, sb.loss);
        read_all(&toy, GC_PART_GRADS, ga);
        read_all(&devenc, GC_PART_GRADS, gb);
        double e = max_rel_err(gb, ga, n);
        if (e > worst_grad) worst_grad = e;
        read_all(&toy, GC_PART_PARAMS, ga);
        read_all(&devenc, GC_PART_PARAMS, gb);
        e = max_rel_err(gb, ga, n);
        if (e > worst_param) worst_param = e;
    }
    printf("device-style encoder vs toy over 5 steps: max rel error gradients %.3g, parameters "
           "%.3g\n",
           worst_grad, worst_param);
    CHECK(worst_grad == 0 && worst_param == 0, "the device-style encoder differs from the toy");
    CHECK(((dev *)devenc.ctx)->touched > 0, "the device memory was used only through its ops");
    CHECK(gc_trainer_temperature(a) == gc_trainer_temperature(b), "temperatures differ");
    /* checkpoints of both are the same state */
    char pa[] = "/tmp/gc-trainer-a-XXXXXX", pb[] = "/tmp/gc-trainer-b-XXXXXX";
    int fa = mkstemp(pa), fb = mkstemp(pb);
    close(fa), close(fb);
    CHECK_OK(gc_trainer_save(a, pa));
    CHECK_OK(gc_trainer_save(b, pb));
    gc_checkpoint ca, cb;
    CHECK_OK(gc_checkpoint_read(pa, &ca));
    CHECK_OK(gc_checkpoint_read(pb, &cb));
    CHECK(ca.num_params == cb.num_params && ca.state_size == cb.state_size &&
              memcmp(ca.params, cb.params, ca.num_params * 4) == 0 &&
              memcmp(ca.state, cb.state, ca.state_size * 4) == 0 && ca.log_tau == cb.log_tau,
          "device and toy checkpoints differ");
    gc_checkpoint_free(&ca);
    gc_checkpoint_free(&cb);
    unlink(pa), unlink(pb);
    free(ga), free(gb);
    gc_trainer_free(a);
    gc_trainer_free(b);
    gc_encoder_free(&toy);
    gc_encoder_free(&devenc);
}

/* Save after 2 steps, resume in a fresh trainer and encoder, finish: bit-identical to 5 steps. */
static void test_resume(const gc_train_data *data) {
    gc_trainer_config cfg = train_cfg();
    gc_encoder e1, e2;
    gc_toy_config c = toy_cfg(5);
    CHECK_OK(gc_toy_encoder_create(&e1, &c));
    CHECK_OK(gc_toy_encoder_create(&e2, &c));
    gc_trainer *full = NULL, *part = NULL;
    CHECK_OK(gc_trainer_create(&full, &cfg, &e1, NULL, data, NULL));
    CHECK_OK(gc_trainer_create(&part, &cfg, &e2, NULL, data, NULL));
    if (!full || !part) return;
    char path[] = "/tmp/gc-trainer-r-XXXXXX";
    close(mkstemp(path));
    gc_train_stats s;
    for (int i = 0; i < 2; i++) CHECK_OK(gc_trainer_step(part, &s));
    CHECK_OK(gc_trainer_save(part, path));
    gc_trainer_free(part);
    gc_encoder_free(&e2);
    gc_toy_config c9 = toy_cfg(9); /* other starting weights: resume overwrites them */
    CHECK_OK(gc_toy_encoder_create(&e2, &c9));
    CHECK_OK(gc_trainer_create(&part, &cfg, &e2, NULL, data, NULL));
    CHECK_OK(gc_trainer_resume(part, path));
    CHECK(gc_trainer_steps_done(part) == 2, "resumed at step %llu",
          (unsigned long long)gc_trainer_steps_done(part));
    double la = 0, lb = 0;
    while (gc_trainer_steps_done(part) < 5) {
        CHECK_OK(gc_trainer_step(part, &s));
        lb = s.loss;
    }
    while (gc_trainer_steps_done(full) < 5) {
        CHECK_OK(gc_trainer_step(full, &s));
        la = s.loss;
    }
    size_t n = gc_encoder_num_params(&e1);
    CHECK(la == lb && memcmp(gc_toy_params(&e1), gc_toy_params(&e2), n * 4) == 0,
          "resumed run differs (loss %.9g vs %.9g)", la, lb);
    /* a different fingerprint is refused, naming the line */
    gc_trainer_config other = cfg;
    other.lr = 2e-2f;
    gc_trainer *t3 = NULL;
    CHECK_OK(gc_trainer_create(&t3, &other, &e2, NULL, data, NULL));
    CHECK(gc_trainer_resume(t3, path) == GC_ERR_INVALID_ARG && strstr(gc_last_error(), "lr="),
          "resume with another lr: %s", gc_last_error());
    gc_trainer_free(t3);
    unlink(path);
    gc_trainer_free(full);
    gc_trainer_free(part);
    gc_encoder_free(&e1);
    gc_encoder_free(&e2);
}

/* Two towers train; their parameters move apart. */
static void test_two_towers(const gc_train_data *data) {
    gc_encoder q, p;
    gc_toy_config c = toy_cfg(5);
    CHECK_OK(gc_toy_encoder_create(&q, &c));
    CHECK_OK(gc_toy_encoder_create(&p, &c));
    gc_trainer_config cfg = train_cfg();
    gc_trainer *t = NULL;
    CHECK_OK(gc_trainer_create(&t, &cfg, &q, &p, data, NULL));
    gc_train_stats s;
    for (int i = 0; t && i < 2; i++) CHECK_OK(gc_trainer_step(t, &s)); /* step 0 has lr 0 */
    size_t n = gc_encoder_num_params(&q);
    CHECK(memcmp(gc_toy_params(&q), gc_toy_params(&p), n * 4) != 0, "towers stayed equal");
    gc_trainer_free(t);
    gc_encoder_free(&q);
    gc_encoder_free(&p);
}

static void test_bad_calls(const gc_train_data *data) {
    gc_encoder e;
    gc_toy_config c = toy_cfg(5);
    CHECK_OK(gc_toy_encoder_create(&e, &c));
    gc_trainer *t = NULL;
    gc_trainer_config cfg = train_cfg(), b;
    CHECK(gc_trainer_create(NULL, &cfg, &e, NULL, data, NULL) != GC_OK, "NULL out");
    CHECK(gc_trainer_create(&t, NULL, &e, NULL, data, NULL) != GC_OK, "NULL config");
    CHECK(gc_trainer_create(&t, &cfg, NULL, NULL, data, NULL) != GC_OK, "NULL encoder");
    CHECK(gc_trainer_create(&t, &cfg, &e, NULL, NULL, NULL) != GC_OK, "NULL data");
    b = cfg, b.batch = 7;
    CHECK(gc_trainer_create(&t, &b, &e, NULL, data, NULL) != GC_OK, "batch not divisible");
    b = cfg, b.batch = NPAIRS + 2, b.accumulation = 1;
    CHECK(gc_trainer_create(&t, &b, &e, NULL, data, NULL) == GC_ERR_INVALID_ARG &&
              strstr(gc_last_error(), "larger than the data"),
          "batch larger than the data: %s", gc_last_error());
    b = cfg, b.lr = NAN;
    CHECK(gc_trainer_create(&t, &b, &e, NULL, data, NULL) != GC_OK, "NaN lr");
    b = cfg, b.steps = 0, b.epochs = 0;
    CHECK(gc_trainer_create(&t, &b, &e, NULL, data, NULL) != GC_OK, "no length");
    CHECK(t == NULL, "no trainer from refused creates");
    CHECK_OK(gc_trainer_create(&t, &cfg, &e, NULL, data, NULL));
    int32_t bad[8] = {0, 1, 2, 3, 4, 5, 6, NPAIRS};
    CHECK(gc_trainer_step_batch(t, bad, NULL) == GC_ERR_INVALID_ARG, "pair index out of range");
    CHECK(gc_trainer_resume(t, "/nonexistent/ckpt") != GC_OK, "missing checkpoint");
    /* a diverged step is refused and changes nothing */
    size_t n = gc_encoder_num_params(&e);
    float *before = malloc(n * 4);
    memcpy(before, gc_toy_params(&e), n * 4);
    gc_toy_params(&e)[n - 1] = NAN; /* a bias of the last layer: every output is NaN */
    before[n - 1] = NAN;
    gc_train_stats s;
    CHECK(gc_trainer_step(t, &s) == GC_ERR_NUMERIC, "NaN weights: %s", gc_last_error());
    CHECK(memcmp(before, gc_toy_params(&e), (n - 1) * 4) == 0, "a refused step changed parameters");
    CHECK(gc_trainer_save(t, "/tmp/gc-never-written") == GC_ERR_NUMERIC, "saving NaN weights");
    free(before);
    gc_trainer_free(t);
    gc_trainer_free(NULL);
    gc_encoder_free(&e);
}

int main(void) {
    gc_train_data data;
    make_data(&data);
    test_device_equals_toy(&data);
    test_resume(&data);
    test_two_towers(&data);
    test_bad_calls(&data);
    gc_matmul_cleanup();
    return test_summary("test_trainer");
}

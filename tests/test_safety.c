/* test_safety.c: a checkpoint's fields are checked after its crc (issue 12, defect 10): an
 * impossible epoch, position or step, or a non-finite parameter, optimizer moment or
 * temperature is refused by gc_trainer_resume, and the trainer keeps its state. Checkpoints
 * are rewritten through gc_checkpoint_write, so the crc is right and only the field is wrong. */
#include "gc_testing.h"
#include "gc_train.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { VOCAB = 30, NPAIRS = 32, LEN = 5 };

static int32_t g_ids[2][NPAIRS * LEN];
static int64_t g_off[2][NPAIRS + 1];
static char g_text[2][NPAIRS][16];
static const char *g_tp[2][NPAIRS];

static void make_data(gc_train_data *d) {
    uint64_t x = 99;
    for (int s = 0; s < 2; s++) {
        g_off[s][0] = 0;
        for (int i = 0; i < NPAIRS; i++) {
            int len = 2 + i % (LEN - 1);
            for (int t = 0; t < len; t++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                g_ids[s][g_off[s][i] + t] = (int32_t)((x >> 33) % VOCAB);
            }
            g_off[s][i + 1] = g_off[s][i] + len;
            snprintf(g_text[s][i], sizeof g_text[s][i], "%c%d", "qp"[s], i);
            g_tp[s][i] = g_text[s][i];
        }
    }
    *d = (gc_train_data){NPAIRS,
                         0,
                         {NPAIRS, g_ids[0], g_off[0]},
                         {NPAIRS, g_ids[1], g_off[1]},
                         {0, NULL, NULL},
                         g_tp[0],
                         g_tp[1],
                         NULL};
}

static gc_trainer_config train_cfg(void) {
    gc_trainer_config c = {
        .batch = 8,
        .accumulation = 1,
        .query_chunk = 4,
        .passage_chunk = 4,
        .max_len = LEN,
        .loss = {.temperature = 0.1f, .cosine = 1},
        .learn_temperature = 1,
        .optim = {.kind = GC_OPTIM_ADAMW, .weight_decay = 0.01f},
        .lr = 1e-2f,
        .schedule = GC_SCHED_CONSTANT,
        .max_grad_norm = 1.0,
        .steps = 10,
        .seed = 5,
    };
    return c;
}

typedef enum {
    BAD_EPOCH,
    BAD_POSITION,
    BAD_STEP,
    BAD_OPTIM_STEP,
    BAD_PARAM,
    BAD_STATE,
    BAD_TAU,
    BAD_NEG_MOMENT,
    NBAD
} bad_kind;
static const char *const k_names[NBAD] = {
    "epoch",     "position",   "step",        "optim step",
    "NaN param", "inf moment", "NaN log tau", "negative second moment"};

/* Rewrite `good` into `bad` with one field made impossible. */
static void corrupt(const char *good, const char *bad, bad_kind k) {
    gc_checkpoint ck;
    CHECK_OK(gc_checkpoint_read(good, &ck));
    if (!ck.params) return;
    float *p = malloc(ck.num_params * sizeof(float)), *s = malloc(ck.state_size * sizeof(float));
    memcpy(p, ck.params, ck.num_params * sizeof(float));
    memcpy(s, ck.state, ck.state_size * sizeof(float));
    gc_checkpoint c = ck;
    c.params = p;
    c.state = s;
    switch (k) {
    case BAD_EPOCH:
        c.epoch = 1000000;
        break;
    case BAD_POSITION:
        c.position = 1000;
        break;
    case BAD_STEP:
        c.step = 1ull << 62;
        break;
    case BAD_OPTIM_STEP:
        c.optim_step = c.step + 7;
        break;
    case BAD_PARAM:
        p[3] = NAN;
        break;
    case BAD_STATE:
        s[1] = INFINITY;
        break;
    case BAD_TAU:
        c.log_tau = NAN;
        break;
    case BAD_NEG_MOMENT:
        s[ck.num_params + 2] = -1.0f;
        break;
    default:
        break;
    }
    CHECK_OK(gc_checkpoint_write(bad, &c));
    free(p);
    free(s);
    gc_checkpoint_free(&ck);
}

int main(void) {
    gc_train_data data;
    make_data(&data);
    gc_trainer_config cfg = train_cfg();
    gc_toy_config tc = {VOCAB, 8, 12, 6, 0.0f, 1, 1, 8, 3};
    gc_encoder e;
    CHECK_OK(gc_toy_encoder_create(&e, &tc));
    gc_trainer *t = NULL;
    CHECK_OK(gc_trainer_create(&t, &cfg, &e, NULL, &data, NULL));
    if (!t) return 1;
    gc_train_stats s;
    for (int i = 0; i < 2; i++) CHECK_OK(gc_trainer_step(t, &s));
    char good[] = "/tmp/gc-safety-good-XXXXXX", bad[] = "/tmp/gc-safety-bad-XXXXXX";
    close(mkstemp(good));
    close(mkstemp(bad));
    CHECK_OK(gc_trainer_save(t, good));
    gc_trainer_free(t);
    t = NULL;

    for (int k = 0; k < NBAD; k++) {
        corrupt(good, bad, (bad_kind)k);
        CHECK_OK(gc_trainer_create(&t, &cfg, &e, NULL, &data, NULL));
        if (!t) break;
        gc_status st = gc_trainer_resume(t, bad);
        CHECK(st != GC_OK, "a checkpoint with a bad %s was accepted", k_names[k]);
        CHECK(gc_trainer_steps_done(t) == 0, "a refused checkpoint moved the trainer (%s)",
              k_names[k]);
        gc_trainer_free(t);
        t = NULL;
    }
    /* the good one still resumes */
    CHECK_OK(gc_trainer_create(&t, &cfg, &e, NULL, &data, NULL));
    if (t) {
        CHECK_OK(gc_trainer_resume(t, good));
        CHECK(gc_trainer_steps_done(t) == 2, "resumed at %llu",
              (unsigned long long)gc_trainer_steps_done(t));
        CHECK_OK(gc_trainer_step(t, &s));
    }
    gc_trainer_free(t);
    gc_encoder_free(&e);
    unlink(good);
    unlink(bad);
    printf("test_safety: %d checks, %d failures\n", g_checks, g_failures);
    return g_failures != 0;
}

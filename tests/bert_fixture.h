/* bert_fixture.h: reader of the binary fixtures scripts/make_bert_fixtures.py writes (b"GCFX",
 * version, then named f32/i32 tensors), shared by the BERT tests. */
#ifndef GC_BERT_FIXTURE_H
#define GC_BERT_FIXTURE_H

#include "gc_bert.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_tensor {
    char name[128];
    int dtype; /* 0 f32, 1 i32 */
    int ndim;
    int64_t dims[4];
    size_t numel;
    void *data;
} fx_tensor;

typedef struct fx_file {
    fx_tensor *t;
    int n;
} fx_file;

static void fx_free(fx_file *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].data);
    free(f->t);
    f->t = NULL;
    f->n = 0;
}

/* 0 on success; prints why on failure. */
static int fx_load(fx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fixture %s: cannot open\n", path);
        return -1;
    }
    char magic[4];
    uint32_t hdr[2];
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "GCFX", 4) != 0 || fread(hdr, 4, 2, fp) != 2 ||
        hdr[0] != 1 || hdr[1] > 100000) {
        fprintf(stderr, "fixture %s: bad header\n", path);
        fclose(fp);
        return -1;
    }
    f->t = calloc(hdr[1], sizeof(fx_tensor));
    for (uint32_t i = 0; f->t && i < hdr[1]; i++) {
        fx_tensor *t = &f->t[i];
        uint32_t len, dt, nd;
        if (fread(&len, 4, 1, fp) != 1 || len >= sizeof t->name ||
            fread(t->name, 1, len, fp) != len || fread(&dt, 4, 1, fp) != 1 || dt > 1 ||
            fread(&nd, 4, 1, fp) != 1 || nd > 4 || fread(t->dims, 8, nd, fp) != nd)
            goto bad;
        t->name[len] = '\0';
        t->dtype = (int)dt;
        t->ndim = (int)nd;
        t->numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (t->dims[d] < 0 || t->dims[d] > (1 << 28)) goto bad;
            t->numel *= (size_t)t->dims[d];
        }
        t->data = malloc(t->numel * 4 + 1);
        f->n++;
        if (!t->data || fread(t->data, 4, t->numel, fp) != t->numel) goto bad;
    }
    fclose(fp);
    return 0;
bad:
    fprintf(stderr, "fixture %s: truncated or malformed\n", path);
    fclose(fp);
    fx_free(f);
    return -1;
}

static const fx_tensor *fx_get(const fx_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    fprintf(stderr, "fixture: no tensor %s\n", name);
    return NULL;
}

static const float *fx_f32(const fx_file *f, const char *name, size_t *numel) {
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->dtype != 0) return NULL;
    if (numel) *numel = t->numel;
    return t->data;
}

static const int32_t *fx_i32(const fx_file *f, const char *name, size_t *numel) {
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->dtype != 1) return NULL;
    if (numel) *numel = t->numel;
    return t->data;
}

/* One side (queries "q" or passages "p") of the fixture's padded batch as a gc_token_batch:
 * ids point into the fixture, offsets are widened to int64 here. */
typedef struct side_in {
    gc_token_batch tb;
    int64_t offsets[64];
} side_in;

static inline int side_load(side_in *s, const fx_file *fx, const char *side) {
    char name[32];
    size_t n_ids = 0, n_off = 0;
    snprintf(name, sizeof name, "%s_ids", side);
    const int32_t *ids = fx_i32(fx, name, &n_ids);
    snprintf(name, sizeof name, "%s_offsets", side);
    const int32_t *off = fx_i32(fx, name, &n_off);
    if (!ids || !off || n_off > 64) return -1;
    for (size_t i = 0; i < n_off; i++) s->offsets[i] = off[i];
    s->tb.n = (int)n_off - 1;
    s->tb.ids = ids;
    s->tb.offsets = s->offsets;
    return 0;
}

/* Compare every parameter gradient of m with the fixture's "grad.<name>" tensors: the max
 * relative error per tensor, printed, each checked against tol. A reference that is zero up to
 * rounding (the key biases: softmax ignores a shift shared by a row) is measured against the
 * largest gradient of the fixture instead. Returns how many tensors were compared. */
static inline int fx_check_grads(const fx_file *fx, gc_bert *m, double tol) {
    double gmax = 0;
    for (int i = 0; i < fx->n; i++)
        if (strncmp(fx->t[i].name, "grad.", 5) == 0 && fx->t[i].dtype == 0)
            for (size_t k = 0; k < fx->t[i].numel; k++)
                gmax = fmax(gmax, fabs(((const float *)fx->t[i].data)[k]));
    int matched = 0;
    for (int i = 0; i < gc_bert_num_tensors(m); i++) {
        const char *name;
        size_t offset, count, n = 0;
        CHECK_OK(gc_bert_tensor_info(m, i, &name, &offset, &count));
        char key[128];
        snprintf(key, sizeof key, "grad.%s", name);
        const float *ref = fx_f32(fx, key, &n);
        if (!ref || n != count) {
            CHECK(0, "%s missing or wrong size", key);
            continue;
        }
        const float *ours = gc_bert_grads(m) + offset;
        double rmax = 0, dmax = 0;
        for (size_t k = 0; k < count; k++) {
            rmax = fmax(rmax, fabs(ref[k]));
            dmax = fmax(dmax, fabs((double)ours[k] - ref[k]));
        }
        double err = rmax < 1e-3 * gmax ? dmax / gmax : dmax / rmax;
        printf("  %-55s max rel err %.3e%s\n", name, err, err <= tol ? "" : "  <-- FAIL");
        CHECK(err <= tol, "%s: %.3e", name, err);
        matched++;
    }
    return matched;
}

#endif

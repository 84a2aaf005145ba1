/* bert_fixture.h: reader of the binary fixtures scripts/make_bert_fixtures.py writes (b"GCFX",
 * version, then named f32/i32 tensors), shared by the BERT tests. */
#ifndef GC_BERT_FIXTURE_H
#define GC_BERT_FIXTURE_H

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

#endif

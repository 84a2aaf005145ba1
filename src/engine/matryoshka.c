/* matryoshka.c: the Matryoshka loss, composed over gc_infonce_shard (gc_infonce on one rank).
 *
 * Each listed size s takes the first dims[s] components of every representation (copied into
 * a contiguous (rows, dims[s]) view), runs gc_infonce_shard on it with the cosine on (so the prefix
 * is re-normalised and the loss's backward goes through that normalisation), and adds
 * weights[s] times its gradient into the first dims[s] columns of the full gradient. The full
 * size runs on the representations in place with the loss as configured. The engine caches
 * the summed gradient exactly as it caches the plain one. */
#include "gc_matryoshka.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_UP(x) (((x) + 63) & ~(size_t)63)

gc_status gc_matryoshka_parse(const char *spec, gc_matryoshka_config *out) {
    if (!out) return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: NULL output");
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: empty list of sizes");
    const char *s = spec;
    for (;;) {
        if (out->count == GC_MATRYOSHKA_MAX)
            return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: more than %d sizes in '%s'",
                                GC_MATRYOSHKA_MAX, spec);
        char *end;
        errno = 0;
        long dim = isdigit((unsigned char)*s) ? strtol(s, &end, 10) : -1;
        if (dim < 1 || dim > 1 << 20 || errno)
            return gc_set_error(GC_ERR_INVALID_ARG,
                                "matryoshka: '%s': expected a size >= 1 at '%s' (syntax: "
                                "384,128 or 384:1,128:0.5)",
                                spec, s);
        s = end;
        double w = 1.0;
        if (*s == ':') {
            s++;
            errno = 0;
            w = strtod(s, &end);
            if (end == s || errno || !isfinite(w) || w < 0)
                return gc_set_error(GC_ERR_INVALID_ARG,
                                    "matryoshka: '%s': expected a finite weight >= 0 at '%s'", spec,
                                    s);
            s = end;
        }
        for (int i = 0; i < out->count; i++)
            if (out->dims[i] == (int)dim)
                return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: '%s' lists %ld twice", spec,
                                    dim);
        out->dims[out->count] = (int)dim;
        out->weights[out->count] = (float)w;
        out->count++;
        if (*s == 0) break;
        if (*s != ',')
            return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: '%s': unexpected '%c'", spec, *s);
        s++;
    }
    return GC_OK;
}

int gc_matryoshka_format(const gc_matryoshka_config *m, char *buf, size_t size) {
    int len = 0;
    if (size) buf[0] = 0;
    for (int i = 0; m && i < m->count; i++) {
        size_t room = (size_t)len < size ? size - (size_t)len : 0;
        len += snprintf(room ? buf + len : NULL, room, "%s%d:%.9g", i ? "," : "", m->dims[i],
                        (double)m->weights[i]);
    }
    return len;
}

gc_status gc_matryoshka_check(const gc_matryoshka_config *m, int d) {
    if (!m) return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: NULL config");
    if (m->count < 0 || m->count > GC_MATRYOSHKA_MAX)
        return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: %d sizes (at most %d)", m->count,
                            GC_MATRYOSHKA_MAX);
    for (int i = 0; i < m->count; i++) {
        if (m->dims[i] < 1 || m->dims[i] > d)
            return gc_set_error(GC_ERR_INVALID_ARG,
                                "matryoshka: size %d outside [1, %d] (the representation width)",
                                m->dims[i], d);
        if (!isfinite(m->weights[i]) || m->weights[i] < 0)
            return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: weight %g of size %d",
                                (double)m->weights[i], m->dims[i]);
        for (int j = 0; j < i; j++)
            if (m->dims[j] == m->dims[i])
                return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka: size %d listed twice",
                                    m->dims[i]);
    }
    return GC_OK;
}

/* The loss configuration of one size: a prefix is compared by cosine (re-normalised). */
static gc_loss_config size_config(const gc_loss_config *cfg, int dim, int d) {
    gc_loss_config c = *cfg;
    if (dim < d) c.cosine = 1;
    return c;
}

/* Workspace: gc_infonce's (the largest over the sizes), then prefix copies of q and p (widest
 * prefix below d) and one size's gradients (widest size). */
typedef struct layout {
    size_t loss, prefix, grad, total;
} layout;

static layout make_layout(int B, int P, int d, int rows, int sharded, const gc_loss_config *cfg,
                          const gc_matryoshka_config *m) {
    layout l = {0, 0, 0, 0};
    int wide_prefix = 0, wide = 0;
    for (int i = 0; i < m->count; i++) {
        gc_loss_config c = size_config(cfg, m->dims[i], d);
        size_t w = gc_infonce_shard_workspace_size(B, P, m->dims[i], rows, sharded, &c);
        if (w > l.loss) l.loss = w;
        if (m->dims[i] < d && m->dims[i] > wide_prefix) wide_prefix = m->dims[i];
        if (m->dims[i] > wide) wide = m->dims[i];
    }
    l.loss = ALIGN_UP(l.loss);
    l.prefix = ALIGN_UP((size_t)(B + P) * wide_prefix * sizeof(float));
    l.grad = ALIGN_UP((size_t)(B + P) * wide * sizeof(float));
    l.total = l.loss + l.prefix + l.grad;
    return l;
}

size_t gc_matryoshka_workspace_size(int B, int P, int d, int rows, int sharded,
                                    const gc_loss_config *cfg, const gc_matryoshka_config *m) {
    if (!cfg || B < 1 || P < 1 || d < 1) return 0;
    if (!m || m->count == 0) return gc_infonce_shard_workspace_size(B, P, d, rows, sharded, cfg);
    return make_layout(B, P, d, rows, sharded, cfg, m).total;
}

/* dst (n, w) = the first w columns of src (n, d). */
static void take_prefix(float *dst, const float *src, int n, int d, int w) {
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * w, src + (size_t)i * d, (size_t)w * sizeof(float));
}

/* The first w columns of rows [r0, r1) of acc (n, d) += weight * g (n, w). */
static void add_prefix(float *acc, const float *g, int r0, int r1, int d, int w, float weight) {
#pragma omp parallel for schedule(static)
    for (int i = r0; i < r1; i++) {
        float *a = acc + (size_t)i * d;
        const float *gi = g + (size_t)i * w;
        for (int k = 0; k < w; k++) a[k] += weight * gi[k];
    }
}

gc_status gc_matryoshka_infonce(const float *q, const float *p, int B, int P, int d,
                                const gc_loss_config *cfg, const gc_matryoshka_config *m,
                                const gc_loss_shard *shard, gc_loss_out *out, float *dq, float *dp,
                                void *workspace) {
    if (!m || m->count == 0)
        return gc_infonce_shard(q, p, B, P, d, cfg, shard, out, dq, dp, workspace);
    if (!q || !p || !cfg || !out)
        return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka loss: NULL argument");
    if (B < 1 || P < 1 || d < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka loss: sizes B=%d P=%d d=%d", B, P, d);
    gc_status st = gc_matryoshka_check(m, d);
    if (st != GC_OK) return st;
    /* the query rows whose gradient this call gives (all of them unless sharded) */
    int r0 = shard ? shard->row0 : 0, rows = shard ? shard->rows : B;
    int sharded = shard && shard->comm && shard->comm->ops && shard->comm->ops->size &&
                  shard->comm->ops->size(shard->comm->ctx) > 1;
    if (r0 < 0 || rows < 0 || r0 + rows > B)
        return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka loss: rows [%d, %d) outside %d", r0,
                            r0 + rows, B);
    layout l = make_layout(B, P, d, rows, sharded, cfg, m);
    void *own = NULL;
    if (!workspace && !(workspace = own = malloc(l.total ? l.total : 1)))
        return gc_set_error(GC_ERR_NOMEM, "matryoshka loss: out of memory for %zu bytes", l.total);
    char *ws = workspace;
    float *qpre = (float *)(ws + l.loss), *ppre = qpre + (size_t)B * d;
    float *gq = (float *)(ws + l.loss + l.prefix), *gp = gq;
    if (dq) memset(dq, 0, (size_t)B * d * sizeof(float));
    if (dp) memset(dp, 0, (size_t)P * d * sizeof(float));
    gc_loss_out sum = {0, 0, 0};
    int widest = 0;
    for (int s = 0; s < m->count && st == GC_OK; s++) {
        int w = m->dims[s];
        gc_loss_config c = size_config(cfg, w, d);
        const float *qs = q, *ps = p;
        if (w < d) {
            ppre = qpre + (size_t)B * w; /* the views are packed at this size's width */
            take_prefix(qpre, q, B, d, w);
            take_prefix(ppre, p, P, d, w);
            qs = qpre, ps = ppre;
        }
        gp = gq + (size_t)B * w;
        gc_loss_out o = {0, 0, 0};
        st = gc_infonce_shard(qs, ps, B, P, w, &c, shard, &o, dq ? gq : NULL, dp ? gp : NULL, ws);
        if (st != GC_OK) {
            char inner[400];
            snprintf(inner, sizeof inner, "%s", gc_last_error());
            st = gc_set_error(st, "matryoshka loss at size %d: %s", w, inner);
            break;
        }
        float wt = m->weights[s];
        sum.loss += wt * o.loss;
        sum.dlog_tau += wt * o.dlog_tau;
        if (w > widest) widest = w, sum.accuracy = o.accuracy;
        if (dq) add_prefix(dq, gq, r0, r0 + rows, d, w, wt);
        if (dp) add_prefix(dp, gp, 0, P, d, w, wt);
    }
    free(own);
    if (st == GC_OK) *out = sum;
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* The two halves: a header, each size's gc_infonce_stats workspace, and one size's gradient of
 * up to SPLIT_ROWS rows (rep_grad works through longer ranges in pieces). */
#define SPLIT_ROWS 256

typedef struct split_header {
    int d, ready;
    gc_matryoshka_config m;
    size_t off[GC_MATRYOSHKA_MAX]; /* each size's stats workspace */
    size_t tmp;                    /* (SPLIT_ROWS, widest size) floats */
} split_header;

static size_t split_layout(split_header *h, int B, int P, int d, int rows, int sharded,
                           const gc_loss_config *cfg, const gc_matryoshka_config *m) {
    size_t at = ALIGN_UP(sizeof(split_header));
    int wide = 0;
    for (int s = 0; s < m->count; s++) {
        gc_loss_config c = size_config(cfg, m->dims[s], d);
        h->off[s] = at;
        at += ALIGN_UP(gc_infonce_stats_workspace_size(B, P, m->dims[s], rows, sharded, &c));
        if (m->dims[s] > wide) wide = m->dims[s];
    }
    h->tmp = at;
    at += ALIGN_UP((size_t)SPLIT_ROWS * wide * sizeof(float));
    return at + 64;
}

size_t gc_matryoshka_stats_workspace_size(int B, int P, int d, int rows, int sharded,
                                          const gc_loss_config *cfg,
                                          const gc_matryoshka_config *m) {
    if (!cfg || B < 1 || P < 1 || d < 1) return 0;
    if (!m || m->count == 0) return gc_infonce_stats_workspace_size(B, P, d, rows, sharded, cfg);
    split_header h;
    return split_layout(&h, B, P, d, rows, sharded, cfg, m);
}

gc_status gc_matryoshka_stats(const gc_rep_view *v, int B, int P, int d, const gc_loss_config *cfg,
                              const gc_matryoshka_config *m, const gc_loss_shard *shard,
                              gc_loss_out *out, void *workspace) {
    if (!m || m->count == 0) return gc_infonce_stats(v, B, P, d, cfg, shard, out, workspace);
    if (!v || !cfg || !out || !workspace)
        return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka stats: NULL argument");
    if (B < 1 || P < 1 || d < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka stats: sizes B=%d P=%d d=%d", B, P, d);
    gc_status st = gc_matryoshka_check(m, d);
    if (st != GC_OK) return st;
    int rows = shard ? shard->rows : B;
    int sharded = shard && shard->comm && shard->comm->ops && shard->comm->ops->size &&
                  shard->comm->ops->size(shard->comm->ctx) > 1;
    char *ws = (char *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    split_header *h = (split_header *)ws;
    h->ready = 0;
    split_layout(h, B, P, d, rows >= 1 && rows <= B ? rows : B, sharded, cfg, m);
    h->d = d, h->m = *m;
    gc_loss_out sum = {0, 0, 0};
    int widest = 0;
    for (int s = 0; s < m->count; s++) {
        gc_loss_config c = size_config(cfg, m->dims[s], d);
        gc_loss_out o = {0, 0, 0};
        st = gc_infonce_stats(v, B, P, m->dims[s], &c, shard, &o, ws + h->off[s]);
        if (st != GC_OK) {
            char inner[400];
            snprintf(inner, sizeof inner, "%s", gc_last_error());
            return gc_set_error(st, "matryoshka loss at size %d: %s", m->dims[s], inner);
        }
        sum.loss += m->weights[s] * o.loss;
        sum.dlog_tau += m->weights[s] * o.dlog_tau;
        if (m->dims[s] > widest) widest = m->dims[s], sum.accuracy = o.accuracy;
    }
    h->ready = 1;
    *out = sum;
    return GC_OK;
}

gc_status gc_matryoshka_rep_grad(const gc_rep_view *v, const gc_matryoshka_config *m, int side,
                                 int first, int count, float scale, float *grad, void *workspace) {
    if (!m || m->count == 0)
        return gc_infonce_rep_grad(v, side, first, count, scale, grad, workspace);
    if (!v || !grad || !workspace)
        return gc_set_error(GC_ERR_INVALID_ARG, "matryoshka rep grad: NULL argument");
    char *ws = (char *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    const split_header *h = (const split_header *)ws;
    if (h->ready != 1 || h->m.count != m->count)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "matryoshka rep grad: the workspace holds no statistics of this "
                            "configuration (gc_matryoshka_stats first)");
    const int d = h->d;
    float *tmp = (float *)(ws + h->tmp);
    memset(grad, 0, (size_t)count * d * sizeof(float));
    for (int r0 = first; r0 < first + count; r0 += SPLIT_ROWS) {
        int n = first + count - r0 < SPLIT_ROWS ? first + count - r0 : SPLIT_ROWS;
        for (int s = 0; s < m->count; s++) {
            int w = h->m.dims[s];
            gc_status st = gc_infonce_rep_grad(v, side, r0, n, scale, tmp, ws + h->off[s]);
            if (st != GC_OK) {
                char inner[400];
                snprintf(inner, sizeof inner, "%s", gc_last_error());
                return gc_set_error(st, "matryoshka loss at size %d: %s", w, inner);
            }
            add_prefix(grad + (size_t)(r0 - first) * d, tmp, 0, n, d, w, h->m.weights[s]);
        }
    }
    return GC_OK;
}

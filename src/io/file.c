/* file.c: whole-file reads, atomic file writes and mkdir -p.
 *
 * An atomic write goes to a temporary file in the target's own folder (rename is only atomic
 * within one filesystem), is flushed to disk, renamed over the target, and then the folder
 * itself is flushed so the rename survives a crash too. */
#include "gc_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

gc_status gc_read_file(const char *path, char **data, size_t *len) {
    if (!path || !data || !len)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_read_file: NULL argument");
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gc_set_error(GC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return gc_set_error(GC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return gc_set_error(GC_ERR_IO, "%s: is a directory", path);
    }
    /* st_size is only a hint: pipes and /proc files report 0, and a file may grow. */
    size_t cap = (S_ISREG(sb.st_mode) && sb.st_size > 0) ? (size_t)sb.st_size + 1 : 4096;
    size_t n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory reading the file", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap * 2;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                free(buf);
                close(fd);
                return gc_set_error(GC_ERR_NOMEM, "%s: out of memory reading the file", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return gc_set_error(GC_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return GC_OK;
}

struct gc_afile {
    int fd;
    int failed; /* a write failed: commit must not publish a partial file */
    char *path;
    char *tmp;
};

gc_status gc_afile_open(gc_afile **out, const char *path) {
    if (!out || !path || !*path) return gc_set_error(GC_ERR_INVALID_ARG, "gc_afile_open: no path");
    *out = NULL;
    gc_afile *f = calloc(1, sizeof *f);
    size_t plen = strlen(path);
    static const char suffix[] = ".tmp.XXXXXX";
    char *p = malloc(plen + 1);
    char *tmp = malloc(plen + sizeof suffix);
    if (!f || !p || !tmp) {
        free(f);
        free(p);
        free(tmp);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(p, path, plen + 1);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(f);
        free(p);
        free(tmp);
        return gc_set_error(GC_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                            strerror(e));
    }
    /* mkstemp makes the file 0600; give it the target's mode, or the usual 0644 for a new file. */
    struct stat sb;
    mode_t mode = (stat(path, &sb) == 0) ? (sb.st_mode & 07777) : 0644;
    (void)fchmod(fd, mode);
    f->fd = fd;
    f->path = p;
    f->tmp = tmp;
    *out = f;
    return GC_OK;
}

gc_status gc_afile_write(gc_afile *f, const void *data, size_t n) {
    if (!f) return gc_set_error(GC_ERR_INVALID_ARG, "gc_afile_write: NULL writer");
    if (f->failed) return gc_set_error(GC_ERR_IO, "%s: an earlier write failed", f->path);
    if (n && !data) return gc_set_error(GC_ERR_INVALID_ARG, "gc_afile_write: NULL data");
    const char *p = data;
    while (n > 0) {
        /* write() may write less than asked (signals, quotas, huge counts): loop until done. */
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(f->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            f->failed = 1;
            return gc_set_error(GC_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
        }
        if (w == 0) {
            f->failed = 1;
            return gc_set_error(GC_ERR_IO, "%s: write made no progress", f->path);
        }
        p += w;
        n -= (size_t)w;
    }
    return GC_OK;
}

static void afile_free(gc_afile *f) {
    free(f->path);
    free(f->tmp);
    free(f);
}

void gc_afile_abort(gc_afile *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    afile_free(f);
}

/* Flush the folder holding `path`, so a rename into it is durable. */
static gc_status fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (!dir) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        gc_status s =
            gc_set_error(GC_ERR_IO, "%s: cannot open folder %s: %s", path, dir, strerror(errno));
        free(dir);
        return s;
    }
    free(dir);
    /* Some filesystems cannot fsync a folder (EINVAL); the rename has happened regardless. */
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        int e = errno;
        close(fd);
        return gc_set_error(GC_ERR_IO, "%s: cannot flush its folder: %s", path, strerror(e));
    }
    close(fd);
    return GC_OK;
}

gc_status gc_afile_commit(gc_afile *f) {
    if (!f) return gc_set_error(GC_ERR_INVALID_ARG, "gc_afile_commit: NULL writer");
    if (f->failed) {
        gc_status s = gc_set_error(GC_ERR_IO, "%s: not written: an earlier write failed", f->path);
        gc_afile_abort(f);
        return s;
    }
    if (fsync(f->fd) != 0) {
        gc_status s = gc_set_error(GC_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
        gc_afile_abort(f);
        return s;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) {
        gc_status s = gc_set_error(GC_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
        gc_afile_abort(f);
        return s;
    }
    if (rename(f->tmp, f->path) != 0) {
        gc_status s = gc_set_error(GC_ERR_IO, "%s: rename from %s failed: %s", f->path, f->tmp,
                                   strerror(errno));
        gc_afile_abort(f);
        return s;
    }
    gc_status s = fsync_parent(f->path);
    afile_free(f);
    return s;
}

gc_status gc_write_file_atomic(const char *path, const void *data, size_t n) {
    gc_afile *f;
    gc_status s = gc_afile_open(&f, path);
    if (s != GC_OK) return s;
    s = gc_afile_write(f, data, n);
    if (s != GC_OK) {
        gc_afile_abort(f);
        return s;
    }
    return gc_afile_commit(f);
}

gc_status gc_mkdirs(const char *path) {
    if (!path || !*path) return gc_set_error(GC_ERR_INVALID_ARG, "gc_mkdirs: empty path");
    char *p = strdup(path);
    if (!p) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    /* Create each prefix ending before a '/', then the whole path. */
    for (char *c = p + 1;; c++) {
        int last = (*c == '\0');
        if (*c != '/' && !last) continue;
        char saved = *c;
        *c = '\0';
        if (c > p && c[-1] != '/' && mkdir(p, 0777) != 0 && errno != EEXIST) {
            gc_status s = gc_set_error(GC_ERR_IO, "%s: cannot create folder %s: %s", path, p,
                                       strerror(errno));
            free(p);
            return s;
        }
        *c = saved;
        if (last) break;
    }
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        gc_status s = gc_set_error(GC_ERR_IO, "%s: exists and is not a folder", path);
        free(p);
        return s;
    }
    free(p);
    return GC_OK;
}

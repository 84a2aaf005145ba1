/* file.c: whole-file reads, atomic file writes and mkdir -p.
 *
 * An atomic write goes to a temporary file in the target's own folder (rename is only atomic
 * within one filesystem), is flushed to disk, renamed over the target, and then the folder
 * itself is flushed so the rename survives a crash too. */
#define _GNU_SOURCE /* realpath */
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

gc_status gc_check_regular_file(const char *path) {
    if (!path) return gc_set_error(GC_ERR_INVALID_ARG, "gc_check_regular_file: NULL path");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return gc_set_error(GC_ERR_IO, "%s: no such file", path);
        return gc_set_error(GC_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (S_ISDIR(sb.st_mode)) return gc_set_error(GC_ERR_IO, "%s: is a folder, not a file", path);
    if (!S_ISREG(sb.st_mode)) return gc_set_error(GC_ERR_IO, "%s: is not a regular file", path);
    return GC_OK;
}

int gc_path_kind(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -1;
    if (S_ISREG(sb.st_mode)) return 1;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? 1 : -1;
}

struct gc_afile {
    int fd;
    int failed; /* a write failed: commit must not publish a partial file */
    int direct; /* an existing device, FIFO or socket: written in place, never replaced */
    char *path;
    char *tmp;
};

/* Where a write to `path` goes: a symlink is followed (the link stays, its target gets the
 * bytes); *kind is 0 for a missing or regular target, 1 for one written in place. */
static gc_status resolve_target(const char *path, char **real, int *kind) {
    struct stat sb;
    *real = NULL;
    *kind = 0;
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT) return gc_set_error(GC_ERR_IO, "%s: %s", path, strerror(errno));
        *real = strdup(path);
        return *real ? GC_OK : gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    }
    if (S_ISLNK(sb.st_mode)) {
        if (stat(path, &sb) != 0)
            return gc_set_error(GC_ERR_IO, "%s: a symbolic link that cannot be followed: %s", path,
                                strerror(errno));
        *real = realpath(path, NULL);
        if (!*real)
            return gc_set_error(GC_ERR_IO, "%s: cannot resolve the link: %s", path,
                                strerror(errno));
    } else {
        *real = strdup(path);
        if (!*real) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    }
    if (S_ISDIR(sb.st_mode)) {
        free(*real);
        *real = NULL;
        return gc_set_error(GC_ERR_IO, "%s: is a folder", path);
    }
    *kind = S_ISREG(sb.st_mode) ? 0 : 1;
    return GC_OK;
}

gc_status gc_afile_open(gc_afile **out, const char *path) {
    return gc_afile_open_mode(out, path, -1);
}

gc_status gc_afile_open_mode(gc_afile **out, const char *target, int new_mode) {
    if (!out || !target || !*target)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_afile_open: no path");
    *out = NULL;
    char *path = NULL;
    int kind = 0;
    gc_status rs = resolve_target(target, &path, &kind);
    if (rs != GC_OK) return rs;
    if (kind == 1) {
        /* a device, FIFO or socket: renaming over it would replace the node itself */
        gc_afile *f = calloc(1, sizeof *f);
        int fd = f ? open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY) : -1;
        if (fd < 0) {
            gc_status s = f ? gc_set_error(GC_ERR_IO, "%s: cannot open for writing: %s", target,
                                           strerror(errno))
                            : gc_set_error(GC_ERR_NOMEM, "%s: out of memory", target);
            free(f);
            free(path);
            return s;
        }
        f->fd = fd;
        f->direct = 1;
        f->path = path;
        *out = f;
        return GC_OK;
    }
    gc_afile *f = calloc(1, sizeof *f);
    size_t plen = strlen(path);
    static const char suffix[] = ".tmp.XXXXXX";
    char *p = path;
    char *tmp = malloc(plen + sizeof suffix);
    if (!f || !tmp) {
        free(f);
        free(p);
        free(tmp);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", target);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(f);
        free(p);
        free(tmp);
        return gc_set_error(GC_ERR_IO, "%s: cannot create a temporary file beside it: %s", target,
                            strerror(e));
    }
    /* mkstemp makes the file 0600; give it the target's mode, or the asked (else the usual
     * 0644) for a new file. */
    struct stat sb;
    mode_t mode = (stat(path, &sb) == 0) ? (sb.st_mode & 07777)
                                         : (new_mode >= 0 ? (mode_t)new_mode & 07777 : 0644);
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
    if (f->tmp) unlink(f->tmp);
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
    if (f->direct) {
        int fd = f->fd;
        f->fd = -1;
        gc_status s = close(fd) == 0 ? GC_OK
                                     : gc_set_error(GC_ERR_IO, "%s: close failed: %s", f->path,
                                                    strerror(errno));
        afile_free(f);
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
    return gc_write_file_atomic_mode(path, data, n, -1);
}

gc_status gc_write_file_atomic_mode(const char *path, const void *data, size_t n, int new_mode) {
    gc_afile *f;
    gc_status s = gc_afile_open_mode(&f, path, new_mode);
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

/* ---- untrusted text in messages ---- */

/* Length of the valid UTF-8 sequence of a printable character at s (0 if none). */
static size_t utf8_printable(const unsigned char *s, size_t n) {
    if (s[0] >= 0x20 && s[0] < 0x7f) return 1;
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf5) len = 0;
    if (len == 0 || len > n) return 0;
    uint32_t cp = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 ||
        cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
        return 0; /* C1 controls, line separators, bidirectional overrides */
    return len;
}

size_t gc_quote_text(char *dst, size_t cap, const char *src, size_t max_bytes) {
    if (!dst || cap == 0) return 0;
    size_t o = 0, n = src ? strlen(src) : 0;
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    size_t i = 0;
    while (i < n) {
        if (i >= max_bytes) {
            char tail[48];
            int k = snprintf(tail, sizeof tail, "...(%zu more bytes)", n - i);
            if (o + (size_t)k < cap) memcpy(dst + o, tail, (size_t)k), o += (size_t)k;
            break;
        }
        size_t len = utf8_printable(s + i, n - i);
        if (len > 0) {
            if (o + len >= cap) break;
            memcpy(dst + o, s + i, len);
            o += len;
            i += len;
            continue;
        }
        char esc[8];
        int k = s[i] == '\n'   ? snprintf(esc, sizeof esc, "\\n")
                : s[i] == '\t' ? snprintf(esc, sizeof esc, "\\t")
                               : snprintf(esc, sizeof esc, "\\x%02x", s[i]);
        if (o + (size_t)k >= cap) break;
        memcpy(dst + o, esc, (size_t)k);
        o += (size_t)k;
        i++;
    }
    dst[o] = '\0';
    return o;
}

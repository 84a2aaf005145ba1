/* snapshot.c: a folder written as one commit, one writer per folder, and the checks that keep
 * outputs off inputs.
 *
 * A snapshot of a folder OUT is built in a sibling "<parent>/.<name>.snap-XXXXXX" (same
 * filesystem, so a rename is atomic), every file flushed by the atomic writer; the commit swaps
 * it with OUT in one renameat2(RENAME_EXCHANGE) (or renames it into place when OUT is missing)
 * and then removes the old folder. A reader of OUT sees the whole old snapshot or the whole new
 * one. Where the filesystem cannot exchange, OUT is first renamed to ".<name>.old-XXXXXX"; a crash
 * between the two renames leaves OUT missing and the old folder beside it, which the next
 * gc_snapshot_cleanup renames back. The lock is "<parent>/.<name>.lock", held with flock (a dead
 * holder holds nothing) and naming the holder's pid. */
#define _GNU_SOURCE /* renameat2, realpath */
#include "gc_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define PATH_CAP 4096

/* "<parent>" and "<name>" of a path ("out/" names "out"). */
static gc_status split(const char *path, char *parent, char *name) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t slash = n;
    while (slash > 0 && path[slash - 1] != '/') slash--;
    if (n - slash == 0 || n - slash >= 256 || slash >= PATH_CAP - 300)
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: not a usable folder name", path);
    if ((n - slash == 1 && path[slash] == '.') ||
        (n - slash == 2 && path[slash] == '.' && path[slash + 1] == '.'))
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: name the folder itself, not . or ..", path);
    if (slash == 0)
        snprintf(parent, PATH_CAP, ".");
    else if (slash == 1)
        snprintf(parent, PATH_CAP, "/");
    else
        snprintf(parent, PATH_CAP, "%.*s", (int)(slash - 1), path);
    snprintf(name, 256, "%.*s", (int)(n - slash), path + slash);
    return GC_OK;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

void gc_remove_tree(const char *path) {
    struct stat sb;
    if (!path || lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char child[PATH_CAP];
                int n = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                if (n > 0 && (size_t)n < sizeof child) gc_remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* ---- the lock ---- */

struct gc_dir_lock {
    int fd;
    char path[PATH_CAP + 300];
};

gc_status gc_dir_lock_acquire(gc_dir_lock **out, const char *dir) {
    if (!out || !dir) return gc_set_error(GC_ERR_INVALID_ARG, "gc_dir_lock_acquire: NULL argument");
    *out = NULL;
    char parent[PATH_CAP], name[256];
    gc_status st = split(dir, parent, name);
    if (st != GC_OK) return st;
    if ((st = gc_mkdirs(parent)) != GC_OK) return st;
    gc_dir_lock *l = calloc(1, sizeof *l);
    if (!l) return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", dir);
    snprintf(l->path, sizeof l->path, "%s/.%s.lock", parent, name);
    for (int attempt = 0; attempt < 16; attempt++) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            st = gc_set_error(GC_ERR_IO, "%s: cannot create the lock file %s: %s", dir, l->path,
                              strerror(errno));
            free(l);
            return st;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char pid[32] = "";
            ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
            pid[r > 0 ? r : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            close(fd);
            if (e == EWOULDBLOCK)
                st = gc_set_error(GC_ERR_IO,
                                  "%s is in use by another run (pid %s holds the lock %s)", dir,
                                  pid[0] ? pid : "?", l->path);
            else
                st = gc_set_error(GC_ERR_IO, "%s: cannot lock %s: %s", dir, l->path, strerror(e));
            free(l);
            return st;
        }
        /* the holder before us may have removed the file after we opened it: lock the file
         * that is there now */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(l->path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
                /* the lock holds without the pid; only the message of a second run suffers */
            }
            l->fd = fd;
            *out = l;
            return GC_OK;
        }
        close(fd);
    }
    free(l);
    return gc_set_error(GC_ERR_IO, "%s: the lock file keeps changing", dir);
}

void gc_dir_lock_release(gc_dir_lock *l) {
    if (!l) return;
    unlink(l->path); /* while still holding it: a waiting run then locks a new file */
    close(l->fd);
    free(l);
}

/* ---- snapshots ---- */

gc_status gc_snapshot_begin(const char *dir, char *tmp, size_t cap) {
    if (!dir || !tmp || cap == 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_snapshot_begin: NULL argument");
    tmp[0] = '\0';
    char parent[PATH_CAP], name[256];
    gc_status st = split(dir, parent, name);
    if (st != GC_OK) return st;
    if ((st = gc_mkdirs(parent)) != GC_OK) return st;
    int n = snprintf(tmp, cap, "%s/.%s.snap-XXXXXX", parent, name);
    if (n < 0 || (size_t)n >= cap) {
        tmp[0] = '\0';
        return gc_set_error(GC_ERR_INVALID_ARG, "%s: path too long", dir);
    }
    if (!mkdtemp(tmp)) {
        int e = errno;
        tmp[0] = '\0';
        return gc_set_error(GC_ERR_IO, "%s: cannot create a folder beside it: %s", dir,
                            strerror(e));
    }
    /* mkdtemp makes it private (0700); the published folder gets the usual permissions */
    mode_t mask = umask(0);
    umask(mask);
    (void)chmod(tmp, 0777 & ~mask);
    return GC_OK;
}

void gc_snapshot_abort(const char *tmp) {
    if (tmp && *tmp) gc_remove_tree(tmp);
}

gc_status gc_snapshot_commit(const char *tmp, const char *dir) {
    if (!tmp || !dir) return gc_set_error(GC_ERR_INVALID_ARG, "gc_snapshot_commit: NULL argument");
    char parent[PATH_CAP], name[256];
    gc_status st = split(dir, parent, name);
    if (st != GC_OK) return st;
    fsync_dir(tmp);
    struct stat sb;
    if (lstat(dir, &sb) != 0) {
        if (errno != ENOENT || rename(tmp, dir) != 0) {
            st = gc_set_error(GC_ERR_IO, "%s: cannot move the new snapshot into place: %s", dir,
                              strerror(errno));
            gc_remove_tree(tmp);
            return st;
        }
        fsync_dir(parent);
        return GC_OK;
    }
    if (!S_ISDIR(sb.st_mode)) {
        gc_remove_tree(tmp);
        return gc_set_error(GC_ERR_IO, "%s: exists and is not a folder; not replacing it", dir);
    }
    if (syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
        fsync_dir(parent);
        gc_remove_tree(tmp); /* now the old snapshot */
        return GC_OK;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP) {
        st = gc_set_error(GC_ERR_IO, "%s: cannot swap in the new snapshot: %s", dir,
                          strerror(errno));
        gc_remove_tree(tmp);
        return st;
    }
    /* no exchange here: old out of the way, new into place (cleanup repairs a crash between) */
    char old[PATH_CAP + 300];
    const char *suffix = strrchr(tmp, '-');
    snprintf(old, sizeof old, "%s/.%s.old%s", parent, name, suffix ? suffix : "-XXXXXX");
    if (rename(dir, old) != 0) {
        st = gc_set_error(GC_ERR_IO, "%s: cannot move the old snapshot aside: %s", dir,
                          strerror(errno));
        gc_remove_tree(tmp);
        return st;
    }
    if (rename(tmp, dir) != 0) {
        st = gc_set_error(GC_ERR_IO, "%s: cannot move the new snapshot into place: %s", dir,
                          strerror(errno));
        (void)rename(old, dir);
        gc_remove_tree(tmp);
        return st;
    }
    fsync_dir(parent);
    gc_remove_tree(old);
    return GC_OK;
}

/* A name an interrupted atomic write leaves: "<file>.tmp.XXXXXX". */
static int is_afile_tmp(const char *name) {
    const char *t = strstr(name, ".tmp.");
    while (t && strstr(t + 1, ".tmp.")) t = strstr(t + 1, ".tmp.");
    return t && t != name && strlen(t + 5) == 6;
}

static void clean_afile_tmps(const char *dir, int depth, int *removed) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char child[PATH_CAP];
        int n = snprintf(child, sizeof child, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof child) continue;
        struct stat sb;
        if (lstat(child, &sb) != 0) continue;
        if (S_ISREG(sb.st_mode) && is_afile_tmp(e->d_name)) {
            if (unlink(child) == 0) ++*removed;
        } else if (S_ISDIR(sb.st_mode) && depth > 0) {
            clean_afile_tmps(child, depth - 1, removed);
        }
    }
    closedir(d);
}

gc_status gc_snapshot_cleanup(const char *dir, int *removed) {
    int count = 0;
    if (removed) *removed = 0;
    char parent[PATH_CAP], name[256];
    gc_status st = split(dir, parent, name);
    if (st != GC_OK) return st;
    char snap[300], old[300];
    snprintf(snap, sizeof snap, ".%s.snap-", name);
    snprintf(old, sizeof old, ".%s.old-", name);
    struct stat sb;
    int missing = lstat(dir, &sb) != 0 && errno == ENOENT;
    DIR *d = opendir(parent);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            int is_snap = strncmp(e->d_name, snap, strlen(snap)) == 0;
            int is_old = strncmp(e->d_name, old, strlen(old)) == 0;
            if (!is_snap && !is_old) continue;
            char child[PATH_CAP];
            int n = snprintf(child, sizeof child, "%s/%s", parent, e->d_name);
            if (n < 0 || (size_t)n >= sizeof child) continue;
            if (is_old && missing && rename(child, dir) == 0) {
                missing = 0; /* a swap without exchange was cut between its renames */
                fsync_dir(parent);
                continue;
            }
            gc_remove_tree(child);
            count++;
        }
        closedir(d);
    }
    if (!missing) clean_afile_tmps(dir, 2, &count);
    if (removed) *removed = count;
    return GC_OK;
}

/* ---- outputs that must not be inputs ---- */

static int same_inode(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Is `t` (stat of the target) one of the files of folder `dir` (two levels deep)? */
static int among_files(const char *dir, const struct stat *t, int depth, char *hit, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char child[PATH_CAP];
        int n = snprintf(child, sizeof child, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof child) continue;
        struct stat sb;
        if (stat(child, &sb) != 0) continue;
        if (same_inode(&sb, t)) {
            snprintf(hit, cap, "%s", child);
            found = 1;
        } else if (S_ISDIR(sb.st_mode) && depth > 0) {
            found = among_files(child, t, depth - 1, hit, cap);
        }
    }
    closedir(d);
    return found;
}

/* Does real path `inner` lie inside real path `outer`? */
static int inside(const char *inner, const char *outer) {
    size_t n = strlen(outer);
    if (n == 1 && outer[0] == '/') return 1;
    return strncmp(inner, outer, n) == 0 && (inner[n] == '/' || inner[n] == '\0');
}

gc_status gc_check_not_input(const char *target, const char *what, const char *const *inputs,
                             int n) {
    if (!target || !what || (n > 0 && !inputs))
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_check_not_input: NULL argument");
    struct stat t;
    if (stat(target, &t) != 0) return GC_OK; /* a new file is nobody's input */
    char *rt = realpath(target, NULL);
    gc_status st = GC_OK;
    for (int i = 0; i < n && st == GC_OK; i++) {
        if (!inputs[i]) continue;
        struct stat in;
        if (stat(inputs[i], &in) != 0) continue;
        char hit[PATH_CAP];
        char *ri = realpath(inputs[i], NULL);
        if (same_inode(&t, &in)) {
            st = gc_set_error(GC_ERR_INVALID_ARG, "%s %s is the input %s; not writing over it",
                              what, target, inputs[i]);
        } else if (S_ISDIR(in.st_mode) && !S_ISDIR(t.st_mode) &&
                   among_files(inputs[i], &t, 2, hit, sizeof hit)) {
            st = gc_set_error(GC_ERR_INVALID_ARG, "%s %s is the same file as the input %s", what,
                              target, hit);
        } else if (S_ISDIR(t.st_mode) && rt && ri && inside(ri, rt)) {
            st = gc_set_error(GC_ERR_INVALID_ARG, "%s %s holds the input %s; it would be replaced",
                              what, target, inputs[i]);
        } else if (S_ISDIR(t.st_mode) && S_ISDIR(in.st_mode) && rt && ri && inside(rt, ri)) {
            st = gc_set_error(GC_ERR_INVALID_ARG, "%s %s lies inside the input %s", what, target,
                              inputs[i]);
        }
        free(ri);
    }
    free(rt);
    return st;
}

/* ---- digests ---- */

gc_status gc_file_crc32(const char *path, uint32_t *crc, uint64_t *size) {
    if (!path || !crc || !size) return gc_set_error(GC_ERR_INVALID_ARG, "gc_file_crc32: NULL");
    *crc = (uint32_t)crc32(0L, Z_NULL, 0);
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gc_set_error(GC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return gc_set_error(GC_ERR_NOMEM, "%s: out of memory", path);
    }
    gc_status st = GC_OK;
    for (;;) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = gc_set_error(GC_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        *crc = (uint32_t)crc32(*crc, buf, (uInt)r);
        *size += (uint64_t)r;
    }
    free(buf);
    close(fd);
    return st;
}

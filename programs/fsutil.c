/* fsutil.c: folder helpers of the command line (see fsutil.h). */
#include "fsutil.h"

#include "cli.h"
#include "gc_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int fs_dir_state(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return FS_MISSING;
    if (!S_ISDIR(sb.st_mode)) return FS_NOT_DIR;
    DIR *d = opendir(path);
    if (!d) return FS_NONEMPTY; /* unreadable: treat as in use */
    int state = FS_EMPTY;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            state = FS_NONEMPTY;
            break;
        }
    }
    closedir(d);
    return state;
}

static void split_path(const char *target, char *parent, size_t pcap, const char **base) {
    size_t n = strlen(target);
    while (n > 1 && target[n - 1] == '/') n--; /* "out/" names the folder "out" */
    size_t slash = n;
    while (slash > 0 && target[slash - 1] != '/') slash--;
    *base = target + slash;
    if (slash == 0)
        snprintf(parent, pcap, ".");
    else if (slash == 1)
        snprintf(parent, pcap, "/");
    else
        snprintf(parent, pcap, "%.*s", (int)(slash - 1), target);
}

int fs_make_temp_dir(const char *target, const char *tag, char *buf, size_t cap) {
    char parent[4096];
    const char *base;
    split_path(target, parent, sizeof parent, &base);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') blen--;
    gc_status st = gc_mkdirs(parent);
    if (st != GC_OK) return cli_fail(st, "creating the output's parent folder");
    int n = snprintf(buf, cap, "%s/.%.*s.%s-XXXXXX", parent, (int)blen, base, tag);
    if (n < 0 || (size_t)n >= cap) return cli_error("%s: path too long", target);
    if (!mkdtemp(buf)) {
        int e = errno;
        buf[0] = '\0';
        return cli_error("cannot create a folder beside %s: %s", target, strerror(e));
    }
    return 0;
}

int fs_publish_dir(const char *tmp, const char *out) {
    int state = fs_dir_state(out);
    if (state == FS_EMPTY && rmdir(out) != 0)
        return cli_error("cannot replace the empty folder %s: %s", out, strerror(errno));
    if (state == FS_NONEMPTY || state == FS_NOT_DIR)
        return cli_error("%s appeared while the model was being written; not overwriting it", out);
    /* mkdtemp made it private (0700); the published folder gets the usual permissions */
    mode_t mask = umask(0);
    umask(mask);
    chmod(tmp, 0777 & ~mask);
    if (rename(tmp, out) != 0)
        return cli_error("cannot rename %s to %s: %s", tmp, out, strerror(errno));
    char parent[4096];
    const char *base;
    split_path(out, parent, sizeof parent, &base);
    int fd = open(parent, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

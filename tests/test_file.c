/* test_file.c: whole-file reads, atomic writes (commit and abort) and mkdir -p. */
#include "gc_io.h"
#include "test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
}

/* Names in the test folder that start with `prefix`. */
static int count_prefix(const char *prefix) {
    DIR *d = opendir(g_dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static int file_equals(const char *path, const void *want, size_t n) {
    char *data = NULL;
    size_t len = 0;
    if (gc_read_file(path, &data, &len) != GC_OK) return 0;
    int ok = len == n && memcmp(data, want, n) == 0 && data[len] == '\0';
    free(data);
    return ok;
}

static void rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void test_read_write(void) {
    char p[512];
    path_in(p, sizeof p, "plain.txt");
    const char text[] = "hello\0world\n";
    CHECK_OK(gc_write_file_atomic(p, text, sizeof text));
    CHECK(file_equals(p, text, sizeof text), "atomic write then read back");
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0644, "new file mode %o", sb.st_mode & 0777);

    /* overwrite with something shorter, then with nothing */
    CHECK_OK(gc_write_file_atomic(p, "xy", 2));
    CHECK(file_equals(p, "xy", 2), "overwrite");
    CHECK_OK(gc_write_file_atomic(p, NULL, 0));
    CHECK(file_equals(p, "", 0), "empty file");
    CHECK(count_prefix("plain.txt.tmp") == 0, "no temporary files left");

    /* a file bigger than the reader's first guess and written in many pieces */
    size_t big = (3u << 20) + 17;
    unsigned char *buf = malloc(big);
    for (size_t i = 0; i < big; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    gc_afile *f = NULL;
    CHECK_OK(gc_afile_open(&f, p));
    for (size_t off = 0; off < big;) {
        size_t n = big - off < 100003 ? big - off : 100003;
        CHECK_OK(gc_afile_write(f, buf + off, n));
        off += n;
    }
    CHECK(file_equals(p, "", 0), "target unchanged before commit");
    CHECK_OK(gc_afile_commit(f));
    CHECK(file_equals(p, buf, big), "big multi-part write");
    free(buf);

    char *data = NULL;
    size_t len = 7;
    path_in(p, sizeof p, "missing.txt");
    CHECK(gc_read_file(p, &data, &len) == GC_ERR_IO, "missing file is an I/O error");
    CHECK(strstr(gc_last_error(), "missing.txt") != NULL, "message names the file: %s",
          gc_last_error());
    CHECK(data == NULL && len == 0, "outputs cleared on failure");
    CHECK(gc_read_file(g_dir, &data, &len) == GC_ERR_IO, "a folder is not a file");
    CHECK(gc_read_file(NULL, &data, &len) == GC_ERR_INVALID_ARG, "NULL path");
}

static void test_abort(void) {
    char p[512];
    path_in(p, sizeof p, "kept.bin");
    CHECK_OK(gc_write_file_atomic(p, "original", 8));
    gc_afile *f = NULL;
    CHECK_OK(gc_afile_open(&f, p));
    CHECK(count_prefix("kept.bin.tmp") == 1, "temporary file exists while writing");
    CHECK_OK(gc_afile_write(f, "replacement that never lands", 28));
    gc_afile_abort(f);
    CHECK(file_equals(p, "original", 8), "abort leaves the target unchanged");
    CHECK(count_prefix("kept.bin.tmp") == 0, "abort removes the temporary file");

    /* abort when there is no target: nothing appears */
    path_in(p, sizeof p, "never.bin");
    CHECK_OK(gc_afile_open(&f, p));
    CHECK_OK(gc_afile_write(f, "x", 1));
    gc_afile_abort(f);
    CHECK(access(p, F_OK) != 0, "aborted new file does not exist");
    CHECK(count_prefix("never.bin") == 0, "nothing left behind");
    gc_afile_abort(NULL);

    /* a folder that does not exist */
    path_in(p, sizeof p, "no/such/folder/x.bin");
    f = (gc_afile *)1;
    CHECK(gc_afile_open(&f, p) == GC_ERR_IO, "open in a missing folder fails");
    CHECK(f == NULL, "writer cleared on failure");
    CHECK(gc_write_file_atomic(p, "x", 1) == GC_ERR_IO, "atomic write in a missing folder fails");
    CHECK(gc_afile_open(&f, "") == GC_ERR_INVALID_ARG, "empty path");
}

static void test_mkdirs(void) {
    char p[512];
    path_in(p, sizeof p, "a/b//c/d");
    CHECK_OK(gc_mkdirs(p));
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode), "nested folders made");
    CHECK_OK(gc_mkdirs(p));
    path_in(p, sizeof p, "a/b/c/d/");
    CHECK_OK(gc_mkdirs(p));
    path_in(p, sizeof p, "a/b/c/d/file.txt");
    CHECK_OK(gc_write_file_atomic(p, "x", 1));
    CHECK(gc_mkdirs(p) == GC_ERR_IO, "a file in the way is an error");
    path_in(p, sizeof p, "a/b/c/d/file.txt/sub");
    CHECK(gc_mkdirs(p) == GC_ERR_IO, "a file as a parent is an error");
    CHECK(gc_mkdirs("") == GC_ERR_INVALID_ARG, "empty path");
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/gc_test_file_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_read_write();
    test_abort();
    test_mkdirs();
    rm_rf(g_dir);
    return test_summary("test_file");
}

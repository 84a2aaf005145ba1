/* fsutil.h: folder helpers of the command line: whether an output folder may be used, temporary
 * folders beside a target, publishing a finished folder by rename, and removing the folders
 * this process made. */
#ifndef GC_CLI_FSUTIL_H
#define GC_CLI_FSUTIL_H

#include <stddef.h>

enum { FS_MISSING = 0, FS_EMPTY = 1, FS_NONEMPTY = 2, FS_NOT_DIR = 3 };

int fs_dir_state(const char *path);
/* Make "<dir of target>/.<name of target>.<tag>-XXXXXX" (creating the parent folders); prints
 * an error and returns nonzero on failure. */
int fs_make_temp_dir(const char *target, const char *tag, char *buf, size_t cap);
/* Rename the finished folder tmp to out (which must be missing or an empty folder). */
int fs_publish_dir(const char *tmp, const char *out);
/* Whether a file exists. */
int fs_exists(const char *path);

#endif

/* gc_io.h: files from the outside world: safetensors, atomic file writing, JSONL training
 * data (plain or gzip), and .npy output. Every reader validates what it reads and reports
 * problems as GC_ERR_FORMAT with a message naming the file (and line, for data). */
#ifndef GC_IO_H
#define GC_IO_H

#include "gradcache.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- whole files and atomic writes ---- */

/* Read a whole file into a NUL-terminated buffer (free with free()). */
gc_status gc_read_file(const char *path, char **data, size_t *len);

/* An atomic file writer: bytes go to a temporary file beside `path`; commit fsyncs it, renames
 * it over `path` and fsyncs the folder, so a crash leaves either the old file or the new one,
 * never half of one. abort removes the temporary file. Both free the writer. */
typedef struct gc_afile gc_afile;
gc_status gc_afile_open(gc_afile **out, const char *path);
gc_status gc_afile_write(gc_afile *f, const void *data, size_t n);
gc_status gc_afile_commit(gc_afile *f);
void gc_afile_abort(gc_afile *f);
/* Convenience: write `n` bytes to `path` atomically. */
gc_status gc_write_file_atomic(const char *path, const void *data, size_t n);
/* mkdir -p */
gc_status gc_mkdirs(const char *path);

/* What the atomic writer does with what is already at `path`: a missing or regular file is
 * replaced by rename (keeping the old file's mode); a symbolic link is followed, so the link
 * stays and its target gets the bytes; an existing device, FIFO or socket is opened and written
 * in place (never replaced; commit only closes it, abort cannot undo); a folder is refused. The
 * _mode variants give a new file `mode` instead of 0644 (-1: 0644). */
gc_status gc_afile_open_mode(gc_afile **out, const char *path, int mode);
gc_status gc_write_file_atomic_mode(const char *path, const void *data, size_t n, int mode);

/* GC_OK when `path` is (or links to) a regular file; else an error with the real reason: no
 * such file, a folder, a symbolic link loop, not a regular file, permission denied. */
gc_status gc_check_regular_file(const char *path);
/* 0: nothing there; 1: a regular file (or a link to one); -1: something else or unreadable
 * (gc_check_regular_file says what). */
int gc_path_kind(const char *path);

/* Untrusted text (file names, values from files) for a message: printable UTF-8 is kept, other
 * bytes are written \n, \t or \xNN, and after max_bytes of src the rest is cut to
 * "...(N more bytes)". Always NUL-terminates dst (cap > 0); returns the length written. */
size_t gc_quote_text(char *dst, size_t cap, const char *src, size_t max_bytes);

/* crc32 (zlib's) and size of a file's bytes, read in pieces. */
gc_status gc_file_crc32(const char *path, uint32_t *crc, uint64_t *size);

/* ---- folders as one commit (src/io/snapshot.c) ----
 *
 * One writer per folder: gc_dir_lock_acquire takes "<parent>/.<name>.lock" with flock (so a
 * killed holder holds nothing) and writes its pid there; a second caller gets GC_ERR_IO naming
 * that pid. release removes the file. A snapshot of folder `dir` is built in a fresh sibling
 * "<parent>/.<name>.snap-XXXXXX" (begin; tmp gets its path), filled with the atomic writer, and
 * commit swaps it with `dir` in one rename (renameat2 RENAME_EXCHANGE; `dir` may be missing or
 * a folder, never anything else), then removes the old one: a reader of `dir` sees the old
 * snapshot or the new one, never a mix. A failed commit removes tmp and leaves `dir` as it
 * was; abort removes tmp. cleanup (with the lock held) removes what an interrupted run left:
 * sibling snapshot folders of `dir` and atomic writers' "*.tmp.XXXXXX" files inside it. */
typedef struct gc_dir_lock gc_dir_lock;
gc_status gc_dir_lock_acquire(gc_dir_lock **out, const char *dir);
void gc_dir_lock_release(gc_dir_lock *l);
gc_status gc_snapshot_begin(const char *dir, char *tmp, size_t cap);
gc_status gc_snapshot_commit(const char *tmp, const char *dir);
void gc_snapshot_abort(const char *tmp);
gc_status gc_snapshot_cleanup(const char *dir, int *removed);
/* Remove a file or a folder tree (symbolic links are removed, never followed). */
void gc_remove_tree(const char *path);

/* Refuse (GC_ERR_INVALID_ARG, naming both) an output `target` (described as `what`, e.g.
 * "--log") that is one of the inputs (the same st_dev/st_ino, so hard links and symlinks are
 * seen), one of the files of an input folder, or, when target is a folder, one that holds an
 * input or lies inside an input folder. A target that does not exist passes. */
gc_status gc_check_not_input(const char *target, const char *what, const char *const *inputs,
                             int n);

/* ---- safetensors ---- */

/* F32, F16 and BF16 can be read as float32. The other safetensors dtypes are accepted by
 * gc_st_open (checkpoints carry e.g. an I64 position_ids buffer) but gc_st_read_f32 refuses
 * them with GC_ERR_UNSUPPORTED. */
typedef enum gc_dtype {
    GC_DTYPE_F32 = 0,
    GC_DTYPE_F16 = 1,
    GC_DTYPE_BF16 = 2,
    GC_DTYPE_F64,
    GC_DTYPE_I64,
    GC_DTYPE_I32,
    GC_DTYPE_I16,
    GC_DTYPE_I8,
    GC_DTYPE_U64,
    GC_DTYPE_U32,
    GC_DTYPE_U16,
    GC_DTYPE_U8,
    GC_DTYPE_BOOL,
    GC_DTYPE_F8_E4M3,
    GC_DTYPE_F8_E5M2,
} gc_dtype;

/* The safetensors spelling of a dtype ("F32", ...) and its element size in bytes. */
const char *gc_dtype_str(gc_dtype d);
size_t gc_dtype_size(gc_dtype d);

#define GC_ST_MAX_DIMS 8

typedef struct gc_st_tensor {
    const char *name;
    gc_dtype dtype;
    int ndim;
    int64_t shape[GC_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* inside the mapping, valid until gc_st_close; may be unaligned */
} gc_st_tensor;

typedef struct gc_safetensors gc_safetensors;

/* Map and validate a .safetensors file: header length inside the file, header JSON well
 * formed, known dtypes, offsets inside the data area, in order and not overlapping, byte
 * counts matching shapes. */
gc_status gc_st_open(gc_safetensors **out, const char *path);
/* The same from a buffer the caller keeps alive (for tests and fuzzing). */
gc_status gc_st_open_memory(gc_safetensors **out, const void *buf, size_t len);
void gc_st_close(gc_safetensors *st);
/* Tensors are numbered in the order their bytes lie in the file. */
int gc_st_count(const gc_safetensors *st);
const gc_st_tensor *gc_st_get(const gc_safetensors *st, int i);
/* Find by name; also accepts the name with or without a leading "bert." prefix. */
const gc_st_tensor *gc_st_find(const gc_safetensors *st, const char *name);
/* Copy a tensor out as float32 (F16/BF16 converted). Fails unless numel == n. */
gc_status gc_st_read_f32(const gc_st_tensor *t, float *dst, size_t n);
/* A string of the header's "__metadata__" object (e.g. "format"), or NULL if absent. */
const char *gc_st_metadata(const gc_safetensors *st, const char *key);

typedef struct gc_st_item {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[GC_ST_MAX_DIMS];
} gc_st_item;
/* Write F32 tensors (in the given order) to `path` atomically; metadata may be NULL. */
gc_status gc_st_write(const char *path, const gc_st_item *items, int n, const char *format_meta);

/* ---- training data: JSONL / JSONL.gz ---- */

typedef struct gc_pair {
    char *query;
    char *positive;
    char **negatives;
    int num_negatives;
    size_t line; /* the line of the file it came from (several pairs may share one) */
} gc_pair;

/* The shapes a line of training data may have; one file holds one shape. */
typedef enum gc_data_shape {
    GC_SHAPE_NONE = 0,
    GC_SHAPE_PAIRS, /* {"query": s, "positive": s, "negatives": [s, ...]?} */
    GC_SHAPE_ST,    /* sentence-transformers: {"anchor", "positive", "negative" or negative_1..N} */
    GC_SHAPE_FLAG,  /* FlagEmbedding / Tevatron: {"query": s, "pos": [s, ...], "neg": [s, ...]?} */
    GC_SHAPE_FIELDS, /* the names of a gc_data_fields */
} gc_data_shape;
/* "query/positive/negatives", ... for messages. */
const char *gc_data_shape_str(gc_data_shape shape);

/* Field names that replace detection: any non-NULL member makes every line be read as
 * {query: s, positive: s or [s, ...], negatives: [s, ...]?} under these names, the NULL ones
 * keeping "query", "positive" and "negatives". */
typedef struct gc_data_fields {
    const char *query, *positive, *negatives;
} gc_data_fields;

typedef struct gc_dataset {
    gc_pair *pairs;
    size_t n;
    const char *path;
    gc_data_shape shape;
} gc_dataset;

/* Load one object per line with "query" and "positive" strings and an optional "negatives"
 * array of strings, or one of the other shapes of gc_data_shape, detected per line (a line with
 * "anchor" is sentence-transformers', one with "pos" and no "positive" FlagEmbedding's); a line
 * whose shape differs from the first line's is an error naming both lines. A positive may be an
 * array of strings: each becomes a pair with the line's query and negatives (a trainer never
 * batches two pairs of one query together). Other fields ignored; blank lines skipped. Texts
 * must be non-empty strings. gzip is detected by its magic
 * bytes; a UTF-8 byte-order mark opening the file is skipped (elsewhere it is an error); numbers in
 * any field are read as doubles, so a large integer (a uint64 id) in an ignored field is fine.
 * The file is read as a stream, so a pipe works (e.g. --train <(zcat a.jsonl.gz)). Malformed
 * JSON, missing or non-string fields, invalid UTF-8, a truncated gzip stream and an empty file are
 * errors naming file:line. */
gc_status gc_dataset_load(gc_dataset **out, const char *path);
/* The same from a buffer (plain or gzip); `name` stands for the file in messages. */
gc_status gc_dataset_load_memory(gc_dataset **out, const void *buf, size_t len, const char *name);
/* The same with field names replacing detection (fields NULL: detect). */
gc_status gc_dataset_load_with(gc_dataset **out, const char *path, const gc_data_fields *fields);
gc_status gc_dataset_load_memory_with(gc_dataset **out, const void *buf, size_t len,
                                      const char *name, const gc_data_fields *fields);
void gc_dataset_free(gc_dataset *d);

/* One string field of every line of a JSONL / JSONL.gz file (e.g. the texts to embed), read
 * like gc_dataset_load (any file that reads front to back, pipes included; the same file:line
 * errors, UTF-8 checks and gzip detection): every non-blank line must be a JSON object with a
 * string `field` (it may be empty; other fields are ignored). *values gets *n malloc'd strings
 * in file order; free them with gc_jsonl_free. A file without a non-blank line is an error. */
gc_status gc_jsonl_read_field(const char *path, const char *field, char ***values, size_t *n);
/* The same from a buffer (plain or gzip); `name` stands for the file in messages. */
gc_status gc_jsonl_read_field_memory(const void *buf, size_t len, const char *name,
                                     const char *field, char ***values, size_t *n);
void gc_jsonl_free(char **values, size_t n);

/* ---- .npy ---- */

/* Write a (rows, cols) float32 C-order array as .npy (version 1.0), atomically. */
gc_status gc_npy_write_f32(const char *path, const float *data, size_t rows, size_t cols);
/* Read a float32 2-D .npy written by the above (or numpy). *data is malloc'd. */
gc_status gc_npy_read_f32(const char *path, float **data, size_t *rows, size_t *cols);

#ifdef __cplusplus
}
#endif

#endif

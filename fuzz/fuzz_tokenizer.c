/* fuzz_tokenizer.c: libFuzzer target for the WordPiece tokenizer. The first byte picks what the
 * rest is: text to encode with a small fixed vocabulary (under the normalizer setting and
 * max_len the byte also picks), or a vocabulary to load and then encode with. Encoding must
 * either refuse invalid UTF-8 or give [CLS] ... [SEP] with in-range ids, and a shorter max_len
 * must give the head of the longer result. */
#include "gc_tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BIG 512

static const char k_vocab[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nab\nabc\n##a\n##b\n##c\n##bc\nhello\n##ing\n"
    "work\ne\n##e\n\xc3\xa9\n##\xc3\xa9\ncafe\ncaf\xc3\xa9\n\xe4\xb8\xad\n\xe6\x96\x87\n!\n.\n"
    "-\n,\n\xd0\xbf\xd1\x80\xd0\xb8\n##\xd0\xb2\xd0\xb5\xd1\x82\ni\n##\xcc\x87\n##s\n";

static void check_encode(const gc_tokenizer *t, const char *text, size_t len, int max_len) {
    int32_t ids[BIG], full[BIG];
    int n = -1, nf = -1;
    gc_status st = gc_tokenizer_encode(t, text, len, max_len, ids, &n);
    gc_status stf = gc_tokenizer_encode(t, text, len, BIG, full, &nf);
    if (st != stf) abort();
    if (st != GC_OK) {
        if (st != GC_ERR_FORMAT) abort();
        return;
    }
    if (n < 2 || n > max_len || nf < n) abort();
    if (ids[0] != gc_tokenizer_cls_id(t) || ids[n - 1] != gc_tokenizer_sep_id(t)) abort();
    int vs = gc_tokenizer_vocab_size(t);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vs) abort();
    if (memcmp(ids, full, (size_t)(n - 1) * sizeof *ids) != 0) abort();
    if (nf < BIG && n < max_len && nf != n) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gc_tokenizer *fixed[8];
    if (size < 1) return 0;
    unsigned mode = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    int max_len = 2 + (int)((mode >> 4) * 9); /* 2 .. 137 */

    if ((mode & 1) == 0) {
        static const gc_tokenizer_config cfgs[8] = {{1, -1, 1}, {0, -1, 1}, {1, 0, 1},  {0, 1, 1},
                                                    {1, 1, 0},  {0, 0, 0},  {1, -1, 0}, {0, -1, 0}};
        int which = (mode >> 1) & 7;
        if (!fixed[which] &&
            gc_tokenizer_from_memory(&fixed[which], k_vocab, sizeof k_vocab - 1, &cfgs[which]))
            abort();
        check_encode(fixed[which], rest, n, max_len);
        return 0;
    }

    gc_tokenizer *t = (gc_tokenizer *)&mode;
    gc_status st = gc_tokenizer_from_memory(&t, rest, n, NULL);
    if (st != GC_OK) {
        if (t != NULL || (st != GC_ERR_FORMAT && st != GC_ERR_NOMEM)) abort();
        return 0;
    }
    if (gc_tokenizer_token_id(t, "[UNK]") != gc_tokenizer_unk_id(t)) abort();
    static const char *texts[] = {"", "hello world", "Caf\xc3\xa9 [MASK] ab,c", "x\xe4\xb8\xad"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        check_encode(t, texts[i], strlen(texts[i]), max_len);
    check_encode(t, rest, n, max_len);
    gc_tokenizer_free(t);
    return 0;
}

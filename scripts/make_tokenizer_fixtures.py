#!/usr/bin/env python3
"""make_tokenizer_fixtures.py: reference data for the WordPiece tokenizer (src/text).

  make_tokenizer_fixtures.py fixtures   writes tests/fixtures/tokenizer/cases.json: token ids
                                        from Hugging Face's BertTokenizerFast for dev-set texts
                                        and hand-written hard strings, under several configs.
  make_tokenizer_fixtures.py tables     writes src/text/tokenizer_tables.c: the code points where
                                        the Unicode data of Hugging Face's `tokenizers` (older
                                        Unicode versions for categories and canonical ordering,
                                        a newer one for lowercasing) differs from utf8proc's.

Needs `tokenizers`, `transformers` and libutf8proc; never touches the network.
"""
import argparse
import ctypes
import gzip
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
DEV = os.path.join(ROOT, "..", "shared", "data", "debian-pkgs", "dev.jsonl.gz")
FIXDIR = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

# --------------------------------------------------------------------------------------------
# tables


class _Prop(ctypes.Structure):
    _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]


def _utf8proc():
    lib = ctypes.CDLL("libutf8proc.so.2")
    lib.utf8proc_get_property.restype = ctypes.POINTER(_Prop)
    lib.utf8proc_get_property.argtypes = [ctypes.c_int32]
    lib.utf8proc_tolower.restype = ctypes.c_int32
    lib.utf8proc_tolower.argtypes = [ctypes.c_int32]
    lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
    lib.utf8proc_decompose_char.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                                            ctypes.c_ssize_t, ctypes.c_int,
                                            ctypes.POINTER(ctypes.c_int)]
    return lib


CAT_MN, CAT_PC, CAT_PO, CAT_CC, CAT_CF, CAT_CO = 6, 12, 18, 26, 27, 29
UTF8PROC_DECOMPOSE = 1 << 4
WHITESPACE = set([0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
                 + list(range(9, 14)) + list(range(0x2000, 0x200B)))


def _ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def make_tables(path):
    from tokenizers import normalizers, pre_tokenizers
    u = _utf8proc()
    bn = normalizers.BertNormalizer
    clean = bn(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    strip = bn(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = bn(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    buf = (ctypes.c_int32 * 32)()
    bound = ctypes.c_int(0)
    flips = {"other": [], "punct": [], "mn": [], "starter": []}
    decomp = []  # (code point, utf8proc's NFD)
    lower_over = []
    hi, lo = "\U0001D16D", "\U0001D165"  # kept non-starters of class 226 and 216
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        prop = u.utf8proc_get_property(cp).contents
        cat, ccc = prop.category, prop.combining_class
        ws = cp in WHITESPACE
        # clean text: dropped, mapped to ' ', or kept
        # (controls are dropped before whitespace is mapped, so U+000B, U+000C, U+0085 go)
        c = clean.normalize_str(ch)
        if cp not in (0, 0xFFFD, 9, 10, 13):
            hf_other = c == ""
            assert hf_other or c == (" " if ws else ch), hex(cp)
            if hf_other != (cat in (CAT_CC, CAT_CF, CAT_CO)):
                flips["other"].append(cp)
        elif cp in (9, 10, 13):
            assert c == " "
        # punctuation (the pre-tokenizer sees whitespace first)
        if not ws:
            pieces = pre.pre_tokenize_str("a" + ch + "a")
            assert len(pieces) in (1, 3), hex(cp)
            hf_punct = len(pieces) == 3
            c_punct = (cp < 128 and chr(cp) in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") or \
                CAT_PC <= cat <= CAT_PO
            if hf_punct != c_punct:
                flips["punct"].append(cp)
        else:
            assert len(pre.pre_tokenize_str("a" + ch + "a")) == 2, hex(cp)
        # nonspacing marks and canonical ordering, for code points NFD leaves alone
        n = u.utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE, ctypes.byref(bound))
        if n == 1 and buf[0] == cp:
            s = strip.normalize_str(ch)
            assert s in ("", ch), hex(cp)
            if (s == "") != (cat == CAT_MN):
                flips["mn"].append(cp)
            hf_starter = strip.normalize_str("a" + hi + ch + lo) == "a" + hi + s + lo
            assert hf_starter or ccc > 0, hex(cp)
            if hf_starter != (ccc == 0):
                flips["starter"].append(cp)
        else:
            decomp.append((cp, [buf[i] for i in range(n)]))
        # lowercase: Rust's char::to_lowercase (full mapping) against utf8proc's simple one
        l = lower.normalize_str(ch)
        if l != chr(u.utf8proc_tolower(cp)):
            assert 1 <= len(l) <= 2, hex(cp)
            lower_over.append((cp, [ord(x) for x in l]))

    # decompositions: the canonical ones added since tokenizers' tables are not applied there
    mn = set(flips["mn"])
    nodecomp = []
    for cp, d in decomp:
        hf = strip.normalize_str(chr(cp))
        ours = "".join(chr(x) for x in d
                       if (u.utf8proc_get_property(x).contents.category == CAT_MN) == (x in mn))
        if hf != ours:
            assert hf == chr(cp), hex(cp)
            nodecomp.append(cp)
    flips["nodecomp"] = nodecomp

    def emit_ranges(f, name, cps, why):
        rr = _ranges(cps)
        f.write("/* %s */\nconst gc_tok_range %s[] = {\n" % (why, name))
        for a, b in rr:
            f.write("    {0x%04X, 0x%04X},\n" % (a, b))
        if not rr:
            f.write("    {0xFFFFFFFF, 0xFFFFFFFF},\n")
        f.write("};\nconst int %s_count = %d;\n\n" % (name, len(rr)))

    with open(path, "w") as f:
        f.write("/* tokenizer_tables.c: where the Unicode data of Hugging Face's tokenizers differs "
                "from utf8proc's.\n * Generated by scripts/make_tokenizer_fixtures.py tables "
                "(do not edit). tokenizers takes\n * categories from older Unicode tables "
                "(characters assigned since are unassigned there),\n * canonical classes from "
                "another old version, and lowercasing from a newer one. */\n")
        f.write('#include "text/tokenizer_internal.h"\n\n/* clang-format off */\n\n')
        emit_ranges(f, "gc_tok_other_flip", flips["other"],
                    "control/format/private-use (dropped by clean-text) per utf8proc, flipped")
        emit_ranges(f, "gc_tok_punct_flip", flips["punct"], "punctuation per utf8proc, flipped")
        emit_ranges(f, "gc_tok_mn_flip", flips["mn"], "nonspacing mark per utf8proc, flipped")
        emit_ranges(f, "gc_tok_starter_flip", flips["starter"],
                    "non-zero canonical class per utf8proc that tokenizers orders as a starter")
        emit_ranges(f, "gc_tok_nodecomp", flips["nodecomp"],
                    "canonical decomposition per utf8proc that tokenizers does not apply")
        f.write("/* lowercase of tokenizers where utf8proc_tolower differs (0 = no second char) "
                "*/\nconst gc_tok_lower gc_tok_lower_over[] = {\n")
        for cp, l in lower_over:
            f.write("    {0x%04X, {0x%04X, 0x%04X}},\n" % (cp, l[0], l[1] if len(l) > 1 else 0))
        f.write("};\nconst int gc_tok_lower_over_count = %d;\n" % len(lower_over))
    for k, v in flips.items():
        print("%s: %d code points, %d ranges" % (k, len(v), len(_ranges(v))))
    print("lowercase overrides: %d" % len(lower_over))


# --------------------------------------------------------------------------------------------
# fixtures

TRICKY = [
    "", " ", "   \t\n  ", "Hello, World!", "HELLO world", "héllo wörld naïve café résumé",
    "Ångström Øresund ÆØÅ æøå", "İstanbul ıi İ", "Straße groß", "ﬁne ﬂow ﬀ", "Ⅻ ⅷ ①②",
    "北京欢迎你 hello 世界", "中文english混合", "日本語のテキスト カタカナ ひらがな", "한국어 텍스트",
    "😀 🥺 🫠 👍🏽 🇫🇷 👨‍👩‍👧", "emoji😀inside", "Привет, мир! Ёлка ёжик", "Ελληνικά: αβγ ΑΒΓ ς Σ",
    "العربية نص", "עברית", "हिन्दी पाठ", "ไทย", "tab\there\nnewline\r\ncrlf\rcr",
    "ctrl\x00nul\x01\x02\x07bell\x1b[0mesc\x7fdel", "zero\u200bwidth\u200cjoin\u200dx\ufeffbom",
    "soft\u00adhyphen", "nbsp\u00a0x\u2003em\u3000ideo\u2028ls\u2029ps\u0085nel",
    "replacement\ufffdchar", "private\ue000use\U000F0000", "unassigned\u0378\U0001FFFF",
    "!!!???...,,,;;;", "--foo--bar--", "a.b.c", "x=y+z*(w/2)", "#include <stdio.h>",
    "C++ C# F# .NET node.js", "http://example.com/path?q=1&r=2#frag", "user@example.org",
    "$100 €50 £30 ¥20", "«quotes» „German“ ‘single’ “double”", "—dash–en-dash‐hyphen",
    "¿Qué? ¡Sí!", "。、「」『』【】", "…‥", "·•‣", "a" * 100, "b" * 101, "x" * 150,
    "supercalifragilisticexpialidocious" * 4, "antidisestablishmentarianism",
    "unbelievably unaffordable preprocessing tokenization", "[CLS] [SEP] [PAD] [UNK] [MASK]",
    "a[SEP]b", "x[MASK]y [mask] [Sep]", "[[CLS]]", "[UNK", "combining e\u0301 a\u0300 n\u0303",
    "precomposed é à ñ", "Zalgo h\u0334\u0335\u0336e\u0337\u0338l\u0339l\u033ao\u033b",
    "a\u07fd\u0d3b b\u0d3b\u07fd", "x\U0001D16D\U0001D165 y\U0001D165\U0001D16D",
    "\U0001D16D\u0F71\U0001D165", "Hangul 가각 가", "ǅ ǈ ǋ Ǳ", "ΐ ΰ ᾼ ῼ", "K Å Ω",
    "𝐀𝐁𝐂 𝒜 𝔄", "ＦＵＬＬＷＩＤＴＨ ｆｕｌｌ", "١٢٣ ۴۵۶ ०१२", "3.14159 1,000,000 -42 1e10",
    "\u061d\u2e43\u166d", "\u1734\u1715", "ⓐⓑⓒ", "ǰ ẖ", "\U00016EA0\U00010D50\uA7CB",
    "linux-image-6.1.0-13-amd64", "libgtk-3-0 python3-numpy g++-12", "foo_bar_baz __init__",
    "CamelCaseIdentifier XMLHttpRequest", "ALLCAPS", "Mixed123Numbers456",
]


def long_text():
    words = ["alpha", "beta", "gamma,", "delta.", "epsilon", "zeta!", "eta", "theta-iota",
             "kappa", "lambda"]
    return " ".join(words[i % len(words)] for i in range(400))


def read_dev(n):
    qs, ps = [], []
    with gzip.open(DEV, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            qs.append(d["query"])
            ps.append(d["positive"])
    nonascii = [i for i in range(len(qs)) if any(ord(c) > 127 for c in qs[i] + ps[i])]
    pick = list(range(n)) + [i for i in nonascii if i >= n][:40]
    # a few positives run to tens of KB: keep a word-aligned head well past 128 tokens
    return [qs[i] for i in pick], [cut(ps[i], 700) for i in pick]


def cut(text, n):
    if len(text) <= n:
        return text
    sp = text.rfind(" ", 0, n)
    return text[:sp if sp > 0 else n]


def hf_model_tokenizer():
    from transformers import BertTokenizerFast
    return BertTokenizerFast.from_pretrained(MODEL)


def hf_vocab_tokenizer(vocab, lowercase, strip_accents, chinese):
    from transformers import BertTokenizerFast
    return BertTokenizerFast(vocab=vocab, do_lower_case=bool(lowercase),
                             strip_accents=None if strip_accents < 0 else bool(strip_accents),
                             tokenize_chinese_chars=bool(chinese))


def encode(tok, texts, max_len):
    enc = tok(texts, truncation=True, max_length=max_len, add_special_tokens=True)
    return enc["input_ids"]


def cases_for(tok, texts, lens):
    """One case per text: ids at the largest max_len, plus the smaller max_lens to test, whose
    expected ids are [CLS] + the first max_len - 2 tokens + [SEP] (checked here against HF)."""
    top = max(lens)
    full = encode(tok, texts, top)
    for L in lens:
        if L == top:
            continue
        for ids, short in zip(full, encode(tok, texts, L)):
            want = ids if len(ids) <= L else ids[:L - 1] + ids[-1:]
            assert short == want, (short, want)
    return [{"text": t, "max_len": lens, "ids": ids} for t, ids in zip(texts, full)]


CASED_VOCAB = """[PAD]
[UNK]
[CLS]
[SEP]
[MASK]
Hello
hello
HELLO
##lo
he
##l
World
world
,
!
.
?
-
École
école
ecole
Ecole
e
É
é
##cole
##é
##e
İ
i
##̇
stanbul
##stanbul
Straße
strasse
Ω
ω
北
京
##京
naïve
naive
##ïve
##ive
na
Привет
привет
The
the
##s
cat
Cat
##cat
""".replace("\n", "\n", -1)


def make_fixtures(n):
    qs, ps = read_dev(n)
    tricky = TRICKY + [long_text()]
    groups = []
    # 1. the model folder as gc_tokenizer_load sees it (tokenizer.json + tokenizer_config.json)
    tok = hf_model_tokenizer()
    cases = (cases_for(tok, qs, [128]) + cases_for(tok, ps, [128, 32]) +
             cases_for(tok, tricky, [128, 32, 8, 2]))
    groups.append({"name": "minilm", "source": "model", "cases": cases})
    # 2. the model's vocab.txt under other normalizer settings
    vocab = os.path.join(MODEL, "vocab.txt")
    for name, lc, sa, zh in (("minilm-lower-keep-accents", 1, 0, 1),
                             ("minilm-lower-strip-explicit", 1, 1, 1),
                             ("minilm-cased-strip", 0, 1, 1),
                             ("minilm-cased-default", 0, -1, 1),
                             ("minilm-no-chinese", 1, -1, 0)):
        tok = hf_vocab_tokenizer(vocab, lc, sa, zh)
        texts = tricky + qs[:10]
        cases = cases_for(tok, texts, [128])
        groups.append({"name": name, "source": "model-vocab", "lowercase": lc,
                       "strip_accents": sa, "tokenize_chinese_chars": zh, "cases": cases})
    # 3. model folders whose tokenizer_config.json disagrees with tokenizer.json's normalizer:
    #    BertTokenizerFast builds its normalizer from tokenizer_config.json
    import shutil
    import tempfile
    for name, conf in (("minilm-folder-cased", {"do_lower_case": False}),
                       ("minilm-folder-lower-keep", {"do_lower_case": True, "strip_accents": False,
                                                     "tokenize_chinese_chars": False})):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(MODEL, "tokenizer.json"), tmp)
            with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
                json.dump(conf, f)
            from transformers import BertTokenizerFast
            tok = BertTokenizerFast.from_pretrained(tmp)
            texts = tricky + qs[:10]
            groups.append({"name": name, "source": "folder", "tokenizer_config": conf,
                           "cases": cases_for(tok, texts, [128])})
    # 4. a small hand-made cased vocabulary
    cased_path = os.path.join(FIXDIR, "cased_vocab.txt")
    with open(cased_path, "w", encoding="utf-8") as f:
        f.write(CASED_VOCAB)
    cased_texts = tricky + ["Hello hello HELLO Hellolo hel", "École école Ecole ecole É",
                            "İstanbul Straße Ω ω", "北京 naïve naive Привет привет",
                            "The cats Cat cat the Thecat", "[MASK]Hello[SEP]"]
    for name, lc, sa in (("cased", 0, -1), ("cased-strip", 0, 1), ("cased-vocab-lower", 1, -1),
                         ("cased-vocab-lower-keep", 1, 0)):
        tok = hf_vocab_tokenizer(cased_path, lc, sa, 1)
        cases = cases_for(tok, cased_texts, [64, 5])
        groups.append({"name": name, "source": "cased_vocab.txt", "lowercase": lc,
                       "strip_accents": sa, "tokenize_chinese_chars": 1, "cases": cases})
    out = os.path.join(FIXDIR, "cases.json")
    with open(out, "w", encoding="utf-8") as f:
        # one case per line keeps the file diffable
        f.write('{"groups":[\n')
        for gi, g in enumerate(groups):
            head = {k: v for k, v in g.items() if k != "cases"}
            f.write(json.dumps(head, ensure_ascii=False)[:-1] + ',"cases":[\n')
            f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":"))
                               for c in g["cases"]))
            f.write("]}" + ("," if gi + 1 < len(groups) else "") + "\n")
        f.write("]}")
        f.write("\n")
    total = sum(len(g["cases"]) for g in groups)
    print("wrote %s: %d groups, %d sequences, %d bytes" % (out, len(groups), total,
                                                          os.path.getsize(out)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["fixtures", "tables"])
    ap.add_argument("--n", type=int, default=300, help="dev queries and positives to take")
    ap.add_argument("--out", default=os.path.join(ROOT, "src", "text", "tokenizer_tables.c"))
    a = ap.parse_args()
    if a.what == "tables":
        make_tables(a.out)
    else:
        os.makedirs(FIXDIR, exist_ok=True)
        make_fixtures(a.n)


if __name__ == "__main__":
    sys.exit(main())

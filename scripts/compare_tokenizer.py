#!/usr/bin/env python3
"""compare_tokenizer.py: gradcache's tokenizer against Hugging Face's BertTokenizerFast.

Runs bench/tokenize_dump (built in BUILD) on
  - every query and positive of the dev set, at max_len 128 and 256, with the model folder;
  - with --sweep, every Unicode code point (in "a<c>b" contexts) and runs of combining marks,
    under five normalizer settings, with a vocabulary holding every single character (and its
    "##" form) so that the ids spell out exactly what the normalizer and pre-tokenizer did;
and prints the mismatches per set. Exits non-zero when any sequence differs.

  python3 scripts/compare_tokenizer.py --build build-tokenizer [--sweep]
"""
import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
DATA = os.path.join(ROOT, "..", "shared", "data", "debian-pkgs")


def run_dump(binary, args, texts, max_len, tmp):
    inp = os.path.join(tmp, "in.jsonl")
    out = os.path.join(tmp, "out.txt")
    with open(inp, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=True) + "\n")
    r = subprocess.run([binary] + args + ["--max-len", str(max_len), inp, out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("tokenize_dump failed: " + r.stderr)
    sys.stderr.write("  " + r.stderr.strip() + "\n")
    with open(out) as f:
        return [line.split() for line in f]


def compare(name, texts, ref, got, show=3):
    bad = [i for i in range(len(texts)) if [str(x) for x in ref[i]] != got[i]]
    print("%-40s %7d sequences  %d mismatches" % (name, len(texts), len(bad)))
    for i in bad[:show]:
        print("    text %r\n    hf  %s\n    gc  %s" % (texts[i][:160], ref[i][:48], got[i][:48]))
    return len(bad)


def hf_encode(tok, texts, max_len):
    return tok(texts, truncation=True, max_length=max_len)["input_ids"]


def data_texts(split):
    qs, ps = [], []
    with gzip.open(os.path.join(DATA, split + ".jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            qs.append(d["query"])
            ps.append(d["positive"])
    return qs, ps


def sweep_texts():
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = [" ".join("a" + chr(c) + "b" for c in cps[i:i + 64]) for i in range(0, len(cps), 64)]
    # runs of combining marks in every order, with starters (some of them marks) in between
    import unicodedata
    marks = [c for c in cps if unicodedata.combining(chr(c)) or
             unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")]
    rng = random.Random(1)
    for _ in range(20000):
        k = rng.randint(2, 6)
        texts.append("x" + "".join(chr(rng.choice(marks)) for _ in range(k)) + "y" +
                     chr(rng.choice(marks)) + "\u00e9" + chr(rng.choice(marks)))
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build folder holding tokenize_dump")
    ap.add_argument("--sweep", action="store_true", help="also sweep every code point")
    ap.add_argument("--train", action="store_true", help="also the train split (max_len 128)")
    a = ap.parse_args()
    binary = os.path.join(a.build, "tokenize_dump")
    if not os.path.exists(binary):
        sys.exit("no %s (build the project first)" % binary)
    from transformers import BertTokenizerFast

    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        tok = BertTokenizerFast.from_pretrained(MODEL)
        qs, ps = data_texts("dev")
        sets = [("dev", qs, ps, (128, 256))]
        if a.train:
            tq, tp = data_texts("train")
            sets.append(("train", tq, tp, (128,)))
        for split, sq, sp, lens in sets:
            for L in lens:
                for name, texts in ((split + " queries", sq), (split + " positives", sp)):
                    t0 = time.time()
                    ref = hf_encode(tok, texts, L)
                    sys.stderr.write("  hf: %.3f s\n" % (time.time() - t0))
                    got = run_dump(binary, ["--model", MODEL], texts, L, tmp)
                    bad += compare("%s, max_len %d" % (name, L), texts, ref, got)
        if a.sweep:
            vocab = os.path.join(tmp, "chars.txt")
            with open(vocab, "w", encoding="utf-8") as f:
                f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
                for c in range(1, 0x110000):
                    if 0xD800 <= c <= 0xDFFF or c in (10, 13):
                        continue
                    f.write(chr(c) + "\n##" + chr(c) + "\n")
            texts = sweep_texts()
            for lc, sa, zh in ((1, -1, 1), (1, 0, 1), (0, 1, 1), (0, 0, 1), (1, -1, 0)):
                t = BertTokenizerFast(vocab=vocab, do_lower_case=bool(lc),
                                      strip_accents=None if sa < 0 else bool(sa),
                                      tokenize_chinese_chars=bool(zh))
                ref = hf_encode(t, texts, 1024)
                got = run_dump(binary, ["--vocab", vocab, "--lower", str(lc), "--strip", str(sa),
                                        "--chinese", str(zh)], texts, 1024, tmp)
                bad += compare("sweep lower=%d strip=%d chinese=%d" % (lc, sa, zh), texts, ref,
                               got)
    print("total mismatches: %d" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

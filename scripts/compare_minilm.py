#!/usr/bin/env python3
"""Compare our embeddings of real texts with sentence-transformers', on the real MiniLM.

Takes the first N/2 query/positive pairs of the Debian dev split (N texts), embeds them with
bench/embed_texts (our tokenizer + our BERT) and with SentenceTransformer, and prints the
cosine of every pair of embeddings (min, mean) and the largest absolute difference. Exits 1 if
any cosine is below 0.99999.

With --write-fixture it instead writes tests/fixtures/bert/minilm_ref.bin for tests/test_minilm.c:
the token ids sentence-transformers gives 32 texts (16 queries, 16 passages, some truncated at
max_seq_length) and its embeddings of them (format: see scripts/make_bert_fixtures.py).

Usage:
  HF_HUB_OFFLINE=1 python3 scripts/compare_minilm.py [--binary build/embed_texts] [--n 1000]
  HF_HUB_OFFLINE=1 python3 scripts/compare_minilm.py --write-fixture
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))


def load_texts(path, n):
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            texts += [rec["query"], rec["positive"]]
            if len(texts) >= n:
                break
    return texts[:n]


def write_fixture(st, data, out):
    from make_bert_fixtures import write_fixture as write_gcfx

    recs = []
    with gzip.open(data, "rt", encoding="utf-8") as f:
        for line in f:
            recs.append(json.loads(line))
    # spread over the file; the longest positives come last so some are truncated
    picks = recs[:: max(1, len(recs) // 16)][:16]
    texts = [r["query"] for r in picks] + sorted((r["positive"] for r in picks), key=len)
    longest = max(recs, key=lambda r: len(r["positive"]))["positive"]
    texts[-1] = longest
    feats = st.preprocess(texts) if hasattr(st, "preprocess") else st.tokenize(texts)
    ids, mask = feats["input_ids"].numpy(), feats["attention_mask"].numpy()
    seqs = [ids[i, : mask[i].sum()].tolist() for i in range(len(texts))]
    flat = np.array([t for s in seqs for t in s], dtype=np.int32)
    offs = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int32)
    emb = st.encode(texts, batch_size=32, convert_to_numpy=True).astype(np.float32)
    write_gcfx(out, [("ids", flat), ("offsets", offs), ("emb", emb)])
    print(f"wrote {out}: {len(texts)} texts, {len(flat)} tokens, lengths "
          f"{min(len(s) for s in seqs)}..{max(len(s) for s in seqs)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "embed_texts"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "debian-pkgs",
                                                   "dev.jsonl.gz"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--write-fixture", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.data):
        args.data = "/work/shared/data/debian-pkgs/dev.jsonl.gz"

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    st = SentenceTransformer(args.model, device="cpu")
    if args.write_fixture:
        write_fixture(st, args.data, os.path.join(ROOT, "tests", "fixtures", "bert",
                                                  "minilm_ref.bin"))
        return 0

    texts = load_texts(args.data, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = os.path.join(tmp, "texts.jsonl"), os.path.join(tmp, "emb.npy")
        with open(inp, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps(t) + "\n")
        subprocess.run([args.binary, "--model", args.model, "--batch", "64", inp, outp],
                       check=True)
        ours = np.load(outp)
    ref = st.encode(texts, batch_size=64, convert_to_numpy=True)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    worst = int(np.argmin(cos))
    print(f"{len(texts)} texts: cosine min {cos.min():.8f} (text {worst}), mean {cos.mean():.8f}; "
          f"max |diff| {np.abs(ours - ref).max():.3e}")
    if cos.min() < 0.99999:
        print("FAIL: a cosine is below 0.99999")
        return 1
    print("OK: every cosine >= 0.99999")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Check that a model folder written by gc_bert_save loads in sentence-transformers and gives
the same embeddings as the folder it was loaded from.

Loads the real MiniLM with our C code and saves it (bench/embed_texts --save), then compares
every tensor of the two model.safetensors files and the embeddings SentenceTransformer gives
200 texts of the Debian dev split with the original and with the saved folder. Exits 1 unless
every tensor is bitwise equal and the embeddings are identical.

Usage: HF_HUB_OFFLINE=1 python3 scripts/roundtrip_check.py [--binary build/embed_texts]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "embed_texts"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--data", default="/work/shared/data/debian-pkgs/dev.jsonl.gz")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()

    import torch
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    texts = []
    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            texts += [rec["query"], rec["positive"]]
            if len(texts) >= args.n:
                break
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "saved")
        subprocess.run([args.binary, "--model", args.model, "--save", saved], check=True)
        print("saved folder:", sorted(os.listdir(saved)))
        a = load_file(os.path.join(args.model, "model.safetensors"))
        b = load_file(os.path.join(saved, "model.safetensors"))
        skipped = sorted(set(a) - set(b))
        for name, t in b.items():
            if name not in a or a[name].shape != t.shape or not np.array_equal(a[name], t):
                print("tensor differs:", name)
                ok = False
        print(f"{len(b)} tensors bitwise equal to the original's; not written: {skipped}")
        orig = SentenceTransformer(args.model, device="cpu")
        back = SentenceTransformer(saved, device="cpu")
        print("max_seq_length:", orig.max_seq_length, "->", back.max_seq_length)
        ok &= orig.max_seq_length == back.max_seq_length
        e1 = orig.encode(texts, batch_size=32, convert_to_numpy=True)
        e2 = back.encode(texts, batch_size=32, convert_to_numpy=True)
        diff = float(np.abs(e1 - e2).max())
        print(f"{len(texts)} texts: max |embedding difference| = {diff:.3e}")
        ok &= diff == 0.0
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

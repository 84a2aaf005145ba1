#!/usr/bin/env python3
"""Check that prompts round-trip through a trained folder into sentence-transformers.

Fine-tunes all-MiniLM-L6-v2 for a few steps with `gradcache train --query-prompt "query: "
--passage-prompt "passage: "` on Debian train pairs, then embeds dev queries twice: with
`SentenceTransformer(out).encode(x, prompt_name="query")` and with `gradcache encode
--prompt-name query`. Also checks the saved config_sentence_transformers.json (prompts written,
the other fields kept) and that leaving the prompt out changes the embeddings. Prints the
smallest cosine of the two embeddings of a text and exits 1 unless it is >= 0.99999.

Not part of `make test` (it needs PyTorch and sentence-transformers, e.g. /work/venv):
  /work/venv/bin/python scripts/check-prompts.py [--binary build/gradcache] [--n 200]
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


def read_jsonl(path, n):
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "gradcache"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--train", default=os.path.join(ROOT, "data", "debian-pkgs", "train.jsonl.gz"))
    ap.add_argument("--dev", default=os.path.join(ROOT, "data", "debian-pkgs", "dev.jsonl.gz"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", default="2")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(int(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.jsonl")
        with open(train, "w") as f:
            for r in read_jsonl(args.train, 64):
                f.write(json.dumps({"query": r["query"], "positive": r["positive"]}) + "\n")
        out = os.path.join(tmp, "out")
        subprocess.run([args.binary, "train", "--model", args.model, "--train", train, "--out", out,
                        "--batch-size", "16", "--chunk-size", "8", "--steps", "2", "--lr", "1e-4",
                        "--query-prompt", "query: ", "--passage-prompt", "passage: ",
                        "--threads", args.threads], check=True)
        with open(os.path.join(out, "config_sentence_transformers.json")) as f:
            cfg = json.load(f)
        print("saved config_sentence_transformers.json:", json.dumps(cfg))
        ok = cfg.get("prompts", {}).get("query") == "query: " and \
            cfg["prompts"].get("passage") == "passage: " and \
            "sentence_transformers" in cfg.get("__version__", {}) and \
            cfg.get("similarity_fn_name") == "cosine"

        texts = [r["query"] for r in read_jsonl(args.dev, args.n)]
        inp = os.path.join(tmp, "texts.jsonl")
        with open(inp, "w") as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        npy = os.path.join(tmp, "c.npy")
        subprocess.run([args.binary, "encode", "--model", out, "--input", inp, "--field", "text",
                        "--prompt-name", "query", "--out", npy, "--threads", args.threads],
                       check=True)
        ours = np.load(npy).astype(np.float64)
        st = SentenceTransformer(out, device="cpu")
        print("sentence-transformers prompts:", st.prompts)
        theirs = st.encode(texts, prompt_name="query", batch_size=32,
                           convert_to_numpy=True).astype(np.float64)
        plain = st.encode(texts, batch_size=32, convert_to_numpy=True).astype(np.float64)

    def cos(a, b):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    c = cos(ours, theirs)
    c_plain = cos(ours, plain)
    print(f"{len(texts)} dev queries: cosine(gradcache encode --prompt-name query, "
          f"SentenceTransformer.encode(prompt_name='query')) min {c.min():.9f} mean {c.mean():.9f}")
    print(f"without the prompt on the sentence-transformers side: min cosine {c_plain.min():.5f}")
    ok = ok and c.min() >= 0.99999 and c_plain.min() < 0.99999
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Build the BERT test fixtures with PyTorch and sentence-transformers.

Writes, under tests/fixtures/bert/:
  tiny/          a tiny random BERT (2 layers, hidden 32, 4 heads, intermediate 64, vocab 100,
                 64 positions) saved as a sentence-transformers folder: mean pooling + Normalize
  tiny_f16/      the same weights as a plain Hugging Face folder (config.json +
                 model.safetensors) in float16 under "bert."-prefixed names, with an extra
                 "cls.predictions.bias" tensor, as a BertForMaskedLM checkpoint has
  tiny_ref.bin   a batch of 8 queries and 8 passages (token ids of varied lengths) and what
                 PyTorch computes for them in float64 with dropout 0 in train mode: last hidden
                 states (real tokens only, packed), CLS / max / mean pooled outputs, the
                 normalized embeddings, an InfoNCE loss (dot product of the normalized
                 embeddings / 0.05, in-batch negatives), its gradient with respect to the
                 embeddings, and the gradient of every parameter.

tiny_ref.bin layout (little-endian): b"GCFX", u32 version (1), u32 tensor count, then per
tensor: u32 name length, name bytes, u32 dtype (0 = f32, 1 = i32), u32 ndim, i64 dims[ndim],
data.

Usage: HF_HUB_OFFLINE=1 python3 scripts/make_bert_fixtures.py [--out tests/fixtures/bert]
"""
import argparse
import os
import shutil
import struct
import tempfile

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sentence_transformers import SentenceTransformer  # noqa: E402

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer import modules as models  # noqa: E402
except ImportError:
    from sentence_transformers import models  # noqa: E402
from transformers import BertConfig, BertModel, BertTokenizerFast  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = 100
TAU = 0.05


def write_fixture(path, tensors):
    with open(path, "wb") as f:
        f.write(b"GCFX")
        f.write(struct.pack("<II", 1, len(tensors)))
        for name, arr in tensors:
            arr = np.ascontiguousarray(arr)
            if arr.dtype == np.float32:
                code = 0
            elif arr.dtype == np.int32:
                code = 1
            else:
                raise ValueError(f"{name}: dtype {arr.dtype}")
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<II", code, arr.ndim))
            f.write(struct.pack(f"<{arr.ndim}q", *arr.shape))
            f.write(arr.tobytes())


def make_model(folder, seed):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                     hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                     layer_norm_eps=1e-12, pad_token_id=0)
    bert = BertModel(cfg)
    # Larger than the usual init so attention is far from uniform and every gradient matters.
    with torch.no_grad():
        for name, p in bert.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    words = [f"w{i}" for i in range(VOCAB - len(SPECIAL))]
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "vocab.txt"), "w") as f:
            f.write("\n".join(SPECIAL + words) + "\n")
        tok = BertTokenizerFast(vocab_file=os.path.join(tmp, "vocab.txt"), do_lower_case=True)
        hf = os.path.join(tmp, "hf")
        bert.save_pretrained(hf)
        tok.save_pretrained(hf)
        tr = models.Transformer(hf, max_seq_length=64)
        pool = models.Pooling(32, pooling_mode="mean")
        st = SentenceTransformer(modules=[tr, pool, models.Normalize()], device="cpu")
        if os.path.exists(folder):
            shutil.rmtree(folder)
        st.save(folder)
    for extra in ["README.md"]:
        p = os.path.join(folder, extra)
        if os.path.exists(p):
            os.remove(p)


def write_f16_copy(folder, out):
    from safetensors.numpy import load_file, save_file

    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(folder, "config.json"), os.path.join(out, "config.json"))
    tensors = {"bert." + k: v.astype(np.float16)
               for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    tensors["cls.predictions.bias"] = np.zeros(VOCAB, dtype=np.float16)
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})


def random_batch(rng, n, lo, hi, force_len=None):
    seqs = []
    for i in range(n):
        L = int(rng.integers(lo, hi + 1))
        if force_len is not None and i == n - 1:
            L = force_len
        body = rng.integers(len(SPECIAL), VOCAB, size=L - 2)
        seqs.append([2] + body.tolist() + [3])
    return seqs


def padded(seqs):
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def packed(seqs):
    ids = np.array([t for s in seqs for t in s], dtype=np.int32)
    offs = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int32)
    return ids, offs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures", "bert"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    folder = os.path.join(out, "tiny")
    make_model(folder, seed=1234)
    write_f16_copy(folder, os.path.join(out, "tiny_f16"))

    st = SentenceTransformer(folder, device="cpu")
    st = st.double()
    st.train()
    for mod in st.modules():  # dropout 0, still train mode
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    bert = st[0].auto_model
    bert.config.hidden_dropout_prob = 0.0
    bert.config.attention_probs_dropout_prob = 0.0

    rng = np.random.default_rng(7)
    qs = random_batch(rng, 8, 3, 12)
    ps = random_batch(rng, 8, 6, 40, force_len=64)
    tensors = []
    reps = {}
    for side, seqs in (("q", qs), ("p", ps)):
        ids, mask = padded(seqs)
        feats = st({"input_ids": ids, "attention_mask": mask,
                    "token_type_ids": torch.zeros_like(ids)})
        h = feats["token_embeddings"]
        emb = feats["sentence_embedding"]
        emb.retain_grad()
        reps[side] = emb
        pid, poff = packed(seqs)
        tensors += [(f"{side}_ids", pid), (f"{side}_offsets", poff)]
        hp = torch.cat([h[i, : len(s)] for i, s in enumerate(seqs)])
        tensors.append((f"{side}_hidden", hp.detach().float().numpy()))
        m = mask.unsqueeze(-1).double()
        mean = (h * m).sum(1) / m.sum(1)
        mx = h.masked_fill(m == 0, -1e9).max(1).values
        tensors += [(f"{side}_mean", mean.detach().float().numpy()),
                    (f"{side}_cls", h[:, 0].detach().float().numpy()),
                    (f"{side}_max", mx.detach().float().numpy())]
    scores = reps["q"] @ reps["p"].T / TAU
    loss = torch.nn.functional.cross_entropy(scores, torch.arange(8))
    loss.backward()
    for side in ("q", "p"):
        tensors.append((f"{side}_reps", reps[side].detach().float().numpy()))
        tensors.append((f"{side}_dreps", reps[side].grad.float().numpy()))
    tensors.append(("loss", np.array([loss.item()], dtype=np.float32)))
    n_grads = 0
    for name, p in bert.named_parameters():
        if p.grad is None:  # the pooler is not part of the encoder
            continue
        tensors.append(("grad." + name, p.grad.float().numpy()))
        n_grads += 1
    write_fixture(os.path.join(out, "tiny_ref.bin"), tensors)
    print(f"wrote {folder} and tiny_ref.bin: loss {loss.item():.6f}, {n_grads} gradients, "
          f"{len(tensors)} tensors")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch counterpart of bench/bench_train_step.c: the same gradient-cache step on the same
model and sizes, timed the same way.

Every query has --qlen tokens and every passage --plen ([CLS], random ids, [SEP]); the encoder
is the model's BertModel in train mode (dropout as configured), mean pooling, L2 normalize; the
loss is InfoNCE over in-batch negatives with tau 0.05. Gradient cache as in Gao et al.: pass 1
encodes every chunk without a graph (keeping each chunk's RNG state so dropout repeats),
the loss gives d loss / d embedding, pass 2 re-encodes each chunk with a graph and
back-propagates those gradients. --no-cache does one forward/backward over the whole batch.
One warm-up step, then --steps timed steps; prints seconds per step and pairs per second.

Usage: HF_HUB_OFFLINE=1 python3 scripts/bench_torch_step.py [--threads 2] [--batch 64] ...
"""
import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--qlen", type=int, default=32)
    ap.add_argument("--plen", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast around the encoder")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from transformers import BertModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = BertModel.from_pretrained(args.model, add_pooling_layer=False)
    model.train()
    vocab = model.config.vocab_size

    def batch(n, length):
        ids = torch.randint(1000, vocab, (n, length))
        ids[:, 0], ids[:, -1] = 101, 102
        return ids

    q_ids, p_ids = batch(args.batch, args.qlen), batch(args.batch, args.plen)

    def encode(ids):
        mask = torch.ones_like(ids)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        return F.normalize(h.float().mean(1), dim=-1)

    def loss_fn(q, p):
        return F.cross_entropy(q @ p.T / 0.05, torch.arange(q.shape[0]))

    def step():
        model.zero_grad(set_to_none=False)
        if args.no_cache:
            loss = loss_fn(encode(q_ids), encode(p_ids))
            loss.backward()
            return loss.item()
        chunks, states, reps = [], [], []
        for ids in (q_ids, p_ids):
            side = []
            for c in range(0, args.batch, args.chunk):
                x = ids[c:c + args.chunk]
                states.append(torch.get_rng_state())
                chunks.append(x)
                with torch.no_grad():
                    side.append(encode(x))
            reps.append(torch.cat(side))
        q = reps[0].detach().requires_grad_()
        p = reps[1].detach().requires_grad_()
        loss = loss_fn(q, p)
        loss.backward()
        grads = torch.cat([q.grad, p.grad]).split(args.chunk)
        for x, st, g in zip(chunks, states, grads):
            torch.set_rng_state(st)
            (encode(x) * g).sum().backward()
        return loss.item()

    step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    per_step = (time.perf_counter() - t0) / args.steps
    mode = ("no cache" if args.no_cache else "gradient cache") + (", bf16 autocast" if args.bf16 else "")
    print(f"gradcache PyTorch {torch.__version__}: MiniLM-L{model.config.num_hidden_layers}, "
          f"batch {args.batch}, chunk {args.chunk}, query {args.qlen} / passage {args.plen} "
          f"tokens, {mode}, {torch.get_num_threads()} threads: {per_step:.3f} s/step, "
          f"{args.batch / per_step:.2f} pairs/s (loss {loss:.4f})")


if __name__ == "__main__":
    main()

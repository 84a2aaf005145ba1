#!/usr/bin/env python3
"""Write the small BEIR-format fixture of tests/fixtures/beir/ and its expected metrics.

corpus.jsonl (150 documents; titles present, absent, null or padded with spaces), queries.jsonl
(14 queries, one without judgements), qrels/test.tsv (graded 0..3, a -1, a judged id missing from
the corpus, a query whose judgements are all 0, a query with 12 relevant documents) and
qrels/dev.tsv; emb_queries.npy and emb_corpus.npy (rows in file order) hold small-integer
embeddings, so every dot product is exact in float32 and many scores tie: the tie rule matters.
expected_test.json / expected_dev.json are pytrec_eval's metrics of the run those embeddings
give, computed here once (run with /work/venv/bin/python; the C test tests/test_beir.c compares).
"""
import json
import os
import random
import sys

import numpy as np
import pytrec_eval

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "beir")
WORDS = ("package library tool server client graphics audio video network python perl game "
         "editor font theme kernel driver database shell terminal compiler debugger").split()


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def metrics(qrels, run):
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.1,10,100", "map_cut.100"})
    res = ev.evaluate(run)
    # MRR@10 as BEIR reports it: recip_rank of the top 10 (trec_eval's order: score down, then
    # document id down)
    top10 = {q: dict(sorted(r.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10])
             for q, r in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(res)
    mean = lambda f: sum(f(v) for v in res.values()) / n
    return {
        "ndcg@10": mean(lambda v: v["ndcg_cut_10"]),
        "mrr@10": sum(v["recip_rank"] for v in rr.values()) / len(rr),
        "recall@1": mean(lambda v: v["recall_1"]),
        "recall@10": mean(lambda v: v["recall_10"]),
        "recall@100": mean(lambda v: v["recall_100"]),
        "map@100": mean(lambda v: v["map_cut_100"]),
        "n": n,
    }


def main():
    rng = random.Random(11)
    nd, nq, dim = 150, 14, 8
    os.makedirs(os.path.join(OUT, "qrels"), exist_ok=True)
    doc_ids = [f"d{i}" for i in range(nd)]  # not zero-padded: "d10" < "d9" as strings
    with open(os.path.join(OUT, "corpus.jsonl"), "w") as f:
        for i, did in enumerate(doc_ids):
            doc = {"_id": did}
            kind = i % 4
            if kind == 0:
                doc["title"] = text(rng, 2)
            elif kind == 1:
                doc["title"] = None
            elif kind == 2:
                doc["title"] = "  " + text(rng, 1) + " "
            doc["text"] = text(rng, 6) + ("  " if i % 3 == 0 else "")
            if i == 5:
                doc["metadata"] = {"url": "x", "n": 18446744073709551615}
            f.write(json.dumps(doc) + "\n")
    query_ids = [f"q{i}" for i in range(nq)]
    with open(os.path.join(OUT, "queries.jsonl"), "w") as f:
        for qid in query_ids:
            f.write(json.dumps({"_id": qid, "text": text(rng, 4)}) + "\n")
    Q = np.array([[rng.randint(-2, 2) for _ in range(dim)] for _ in range(nq)], dtype=np.float32)
    D = np.array([[rng.randint(-2, 2) for _ in range(dim)] for _ in range(nd)], dtype=np.float32)

    def make_qrels(queries, seed):
        r = random.Random(seed)
        qrels = {}
        for qi in queries:
            k = 12 if qi == 1 else r.randint(1, 5)
            docs = r.sample(doc_ids, k)
            judged = {}
            for j, did in enumerate(docs):
                judged[did] = 0 if qi == 2 else r.randint(0 if j else 1, 3)
            if qi == 3:
                judged["missing-doc"] = 2
            if qi == 4:
                judged[r.choice([x for x in doc_ids if x not in judged])] = -1
            qrels[query_ids[qi]] = judged
        return qrels

    splits = {"test": make_qrels([i for i in range(nq) if i != 13], 5),  # q13: no judgements
              "dev": make_qrels([0, 6, 7, 8], 6)}
    # relevant documents near their query (closer for higher grades), so the metrics are neither
    # all 0 nor all 1; the entries stay small integers
    for qid, judged in splits["test"].items():
        qi = query_ids.index(qid)
        for did, g in judged.items():
            if g < 1 or did not in doc_ids:
                continue
            v = Q[qi].copy()
            for c in rng.sample(range(dim), 4 - g):
                v[c] = rng.randint(-2, 2)
            D[doc_ids.index(did)] = v
    np.save(os.path.join(OUT, "emb_queries.npy"), Q)
    np.save(os.path.join(OUT, "emb_corpus.npy"), D)

    def split_qrels(name, qrels):
        lines = ["query-id\tcorpus-id\tscore"]
        for qid, judged in qrels.items():
            lines += [f"{qid}\t{did}\t{g}" for did, g in judged.items()]
        with open(os.path.join(OUT, "qrels", name + ".tsv"), "w") as f:
            f.write("\n".join(lines) + "\n")
        S = Q.astype(np.float64) @ D.astype(np.float64).T
        run = {qid: {doc_ids[j]: float(S[query_ids.index(qid), j]) for j in range(nd)}
               for qid in qrels}
        m = metrics(qrels, run)
        with open(os.path.join(OUT, f"expected_{name}.json"), "w") as f:
            json.dump(m, f, indent=1)
            f.write("\n")
        print(name, m)

    split_qrels("test", splits["test"])
    split_qrels("dev", splits["dev"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""BM25 peers on SciFact, for comparison with `search_bench bm25` (crates/lore-index/examples).

Prints one JSON object: for bm25s and rank-bm25, single-thread queries/s for top-10 retrieval
over the test queries, and nDCG@10. Same analysis as Lore's `english` analyzer: alphanumeric
words, lower-cased, Lucene's 33 English stop words removed, Snowball English stemming
(PyStemmer: the same algorithm as Lore's). Title and text are one field. k1 = 1.2, b = 0.75.

    python3 -m venv /tmp/bm25env && /tmp/bm25env/bin/pip install bm25s rank-bm25 PyStemmer numpy scipy
    /tmp/bm25env/bin/python bench/bm25_peer.py [DATASET_DIR]      # default ../shared/datasets/scifact

Query time includes tokenising the query, as Lore's does. rank-bm25 scores every document for
each query, so it runs on the first 50 queries only (its rate is still per query).
"""

import json
import math
import os
import re
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import bm25s
import numpy as np
import Stemmer
from rank_bm25 import BM25Okapi

STOP_WORDS = set(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)
WORD = re.compile(r"[^\W_]+")  # runs of letters and digits, as Lore's tokenizer
stemmer = Stemmer.Stemmer("english")


def analyse(text):
    words = [w for w in WORD.findall(text.lower()) if w not in STOP_WORDS and len(w) < 40]
    return stemmer.stemWords(words)


def load(folder):
    corpus = [json.loads(line) for line in open(os.path.join(folder, "corpus.jsonl"))]
    qrels = {}
    for line in list(open(os.path.join(folder, "qrels", "test.tsv")))[1:]:
        query, doc, score = line.strip().split("\t")
        if int(score) > 0:
            qrels.setdefault(query, set()).add(doc)
    queries = [json.loads(line) for line in open(os.path.join(folder, "queries.jsonl"))]
    queries = [(q["_id"], q["text"]) for q in queries if q["_id"] in qrels]
    return corpus, queries, qrels


def ndcg10(queries, rankings, qrels):
    total = 0.0
    for (qid, _), ranking in zip(queries, rankings):
        relevant = qrels[qid]
        dcg = sum(1 / math.log2(i + 2) for i, doc in enumerate(ranking[:10]) if doc in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
        total += dcg / ideal
    return total / len(queries)


def rate(queries, run):
    started = time.perf_counter()
    done = 0
    while time.perf_counter() - started < 2.0:
        for _, text in queries:
            run(text)
        done += len(queries)
    return done / (time.perf_counter() - started)


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/scifact"
    corpus, queries, qrels = load(folder)
    ids = [d["_id"] for d in corpus]
    tokens = [analyse(d["title"] + "\n" + d["text"]) for d in corpus]
    results = {"queries": len(queries), "documents": len(corpus)}

    # bm25s: its own vocabulary ids; tokens given as lists of strings.
    started = time.perf_counter()
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    retriever.index(tokens, show_progress=False)
    index_s = time.perf_counter() - started

    def bm25s_top10(text):
        docs, _ = retriever.retrieve([analyse(text)], k=10, show_progress=False, n_threads=1)
        return [ids[i] for i in docs[0]]

    rankings = [bm25s_top10(text) for _, text in queries]
    results["bm25s"] = {
        "version": bm25s.__version__,
        "index_s": round(index_s, 2),
        "queries_per_s": round(rate(queries, bm25s_top10)),
        "ndcg@10": round(ndcg10(queries, rankings, qrels), 4),
    }

    started = time.perf_counter()
    okapi = BM25Okapi(tokens, k1=1.2, b=0.75)
    index_s = time.perf_counter() - started

    def rank_bm25_top10(text):
        scores = okapi.get_scores(analyse(text))
        return [ids[i] for i in np.argsort(-scores)[:10]]

    rankings = [rank_bm25_top10(text) for _, text in queries]
    results["rank_bm25"] = {
        "index_s": round(index_s, 2),
        "queries_per_s": round(rate(queries[:50], rank_bm25_top10), 1),
        "ndcg@10": round(ndcg10(queries, rankings, qrels), 4),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""hnswlib on the vectors `search_bench ann` wrote, with the same parameters, for bench/ann.sh.

    python bench/ann_peer.py OUT_DIR

Prints JSON lines like Lore's: the build (on every core) and, per ef_search, recall@10 against the
exact top 10 and single-thread queries/s. The queries go to hnswlib as one batch with one thread,
its fastest path (no Python call per query), so the peer's figure holds no interpreter overhead;
queries/s is the best of three 2-second passes, as on Lore's side.
"""

import json
import os
import sys
import time

import hnswlib
import numpy as np

out = sys.argv[1]
with open(os.path.join(out, "meta.json")) as f:
    meta = json.load(f)
dim, k = meta["dimension"], meta["k"]
base = np.fromfile(os.path.join(out, "base.f32"), dtype="<f4").reshape(-1, dim)
queries = np.fromfile(os.path.join(out, "queries.f32"), dtype="<f4").reshape(-1, dim)
truth = np.fromfile(os.path.join(out, "truth.i64"), dtype="<i8").reshape(-1, k)

threads = os.cpu_count()
index = hnswlib.Index(space="ip", dim=dim)
started = time.perf_counter()
index.init_index(max_elements=len(base), M=meta["m"], ef_construction=meta["ef_construction"], random_seed=100)
index.add_items(base, np.arange(len(base)), num_threads=threads)
build_s = time.perf_counter() - started
print(json.dumps({"system": "hnswlib", "build_s": build_s, "threads": threads, "rows": len(base)}))

for ef in meta["efs"]:
    index.set_ef(max(ef, k))
    labels, _ = index.knn_query(queries, k=k, num_threads=1)
    hits = sum(len(set(found) & set(expected)) for found, expected in zip(labels.tolist(), truth.tolist()))
    qps = 0.0
    for _ in range(3):  # best of three passes, as Lore's side measures
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < 2.0:
            index.knn_query(queries, k=k, num_threads=1)
            done += len(queries)
        qps = max(qps, done / (time.perf_counter() - started))
    print(json.dumps({"system": "hnswlib", "ef": ef, "recall": hits / truth.size, "qps": qps}))

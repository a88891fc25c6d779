#!/usr/bin/env python3
"""Load test of `lore serve`, on loopback only: CLIENTS threads ask and query for DURATION seconds
while DOCUMENTS SciFact abstracts are uploaded one file per request. Passes when no response is a
5xx other than the server's deliberate 503s (full queues, with Retry-After) and every uploaded
document is listed and found afterwards. Prints p50/p95 latency per endpoint.

    python3 bench/load_test.py [--clients 32] [--duration 60] [--documents 100]

Needs a release build (scripts/env.sh: $LORE_BIN) and the models e5-small (questions' collection
is built with it by the server's default), minilm (the upload collection) and qwen-0.5b.
Standard library only."""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"


def request(base, method, path, body=None, content_type="application/json", timeout=600):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        payload, status = e.read(), e.code
    return status, time.perf_counter() - started, payload


def multipart(name, text):
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        f"Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--lore", default=os.environ.get("LORE_BIN", str(Path.home() / ".cache/lore/target/release/lore")))
    args = parser.parse_args()

    corpus = [json.loads(line) for line in open(SCIFACT / "corpus.jsonl", encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in open(SCIFACT / "queries.jsonl", encoding="utf-8")]
    random.seed(7)
    seed_docs, upload_docs = corpus[:200], corpus[200 : 200 + args.documents]

    home = Path(tempfile.mkdtemp(prefix="lore-load-"))
    models = Path(os.environ.get("LORE_HOME", Path.home() / ".lore")) / "models"
    (home / "models").symlink_to(models)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")} | {"LORE_HOME": str(home)}
    seed_dir = home / "seed"
    seed_dir.mkdir()
    for doc in seed_docs:
        (seed_dir / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}", encoding="utf-8")
    subprocess.run([args.lore, "ingest", str(seed_dir), "-c", "papers", "--embedder", "minilm", "--json"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([args.lore, "serve", "--addr", "127.0.0.1:0"], env=env, stderr=subprocess.PIPE, text=True)
    base = None
    for line in server.stderr:
        if "http://" in line:
            base = "http://" + line.split("http://")[1].split("/")[0]
            break
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    status, _, body = request(base, "POST", "/api/collections", {"name": "uploads", "embedder": "minilm"})
    assert status == 201, body

    results = []  # (endpoint, status, seconds)
    lock = threading.Lock()
    stop = time.monotonic() + args.duration

    def client(index):
        rng = random.Random(index)
        while time.monotonic() < stop:
            question = rng.choice(queries)
            if rng.random() < 0.2:
                endpoint = "POST /api/collections/{name}/ask"
                status, seconds, _ = request(base, "POST", "/api/collections/papers/ask",
                                             {"question": question, "stream": False, "max_tokens": 48, "k": 3})
            else:
                endpoint = "POST /api/collections/{name}/query"
                status, seconds, _ = request(base, "POST", "/api/collections/papers/query", {"query": question, "k": 10})
            with lock:
                results.append((endpoint, status, seconds))
            if status == 503:
                time.sleep(0.5)

    uploaded = []

    def uploader():
        for doc in upload_docs:
            name = f"{doc['_id']}.txt"
            body, content_type = multipart(name, f"{doc['title']}\n\n{doc['text']}")
            while True:
                status, seconds, payload = request(base, "POST", "/api/collections/uploads/documents", body, content_type)
                with lock:
                    results.append(("POST /api/collections/{name}/documents", status, seconds))
                if status != 503:
                    break
                time.sleep(1)
            if status == 200:
                uploaded.append(name)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    threads.append(threading.Thread(target=uploader))
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    # Nothing lost: every uploaded document is listed and is the best BM25 hit for its own title.
    status, _, body = request(base, "GET", "/api/collections/uploads/documents?limit=1000")
    listed = {d["source"] for d in json.loads(body)["documents"]}
    missing = [name for name in uploaded if name not in listed]
    unfound = []
    for doc in upload_docs:
        status, _, body = request(base, "POST", "/api/collections/uploads/query",
                                  {"query": doc["title"], "k": 5, "pipeline": "bm25"})
        if f"{doc['_id']}.txt" not in [h["source"] for h in json.loads(body)["hits"]]:
            unfound.append(doc["_id"])
    server.terminate()
    server.wait(timeout=60)

    print(f"{args.clients} clients for {elapsed:.0f} s while uploading {args.documents} documents "
          f"({os.cpu_count()} cores)\n")
    print("| endpoint | requests | 2xx | 503 | other | p50 ms (2xx) | p95 ms (2xx) |")
    print("|---|---|---|---|---|---|---|")
    failures = 0
    for endpoint in sorted({r[0] for r in results}):
        rows = [r for r in results if r[0] == endpoint]
        ok = [r[2] * 1000 for r in rows if 200 <= r[1] < 300]
        busy = sum(1 for r in rows if r[1] == 503)
        other = [r[1] for r in rows if not (200 <= r[1] < 300) and r[1] != 503]
        failures += sum(1 for s in other if s >= 500)
        print(f"| {endpoint} | {len(rows)} | {len(ok)} | {busy} | {len(other)} {sorted(set(other)) or ''} | "
              f"{percentile(ok, 0.5):.0f} | {percentile(ok, 0.95):.0f} |")
    print(f"\nuploaded {len(uploaded)}/{args.documents}; not listed: {len(missing)}; not found by title: {len(unfound)}")
    if failures or missing or unfound or len(uploaded) != args.documents:
        print("FAILED", file=sys.stderr)
        return 1
    print("passed: no 5xx but deliberate 503s, nothing lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())

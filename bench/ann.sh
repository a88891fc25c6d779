#!/usr/bin/env bash
# Lore's HNSW graph next to hnswlib's, in one run: the same vectors, M = 16, ef_construction = 200;
# for each ef_search, recall@10 against exact search and single-thread queries/s; the graphs built
# on every core. Last line: the best queries/s each reaches at recall@10 >= 0.95, and the ratio.
# Usage: bench/ann.sh [COPIES] [COLLECTION_DIR]
#   COPIES (default 100000): noisy copies of the collection's vectors indexed (0: the vectors
#   themselves); COLLECTION_DIR (default: SciFact embedded with MiniLM, built when missing).
# The peer is installed into its own virtual environment under ~/.cache/lore when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
copies="${1:-100000}"
collection="${2:-${LORE_HOME:-$HOME/.lore}/collections/eval-scifact-minilm-whole}"
venv="$HOME/.cache/lore/bench/ann-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import hnswlib, numpy' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy hnswlib >&2
fi
if [ ! -d "$collection" ]; then
    cargo build --release -p lore-cli >&2
    "$LORE_BIN" models pull minilm >&2
    "$LORE_BIN" eval retrieval --dataset ../shared/datasets/scifact --pipeline bench/dense-minilm.toml >&2
fi
cargo build --release -p lore-index --example search_bench >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$CARGO_TARGET_DIR/release/examples/search_bench" ann "$collection" "$copies" "$work" | tee "$work/lore.jsonl"
"$venv/bin/python" bench/ann_peer.py "$work" | tee "$work/hnswlib.jsonl"
python3 - "$work/lore.jsonl" "$work/hnswlib.jsonl" <<'PY'
import json, sys
runs = {}
for path in sys.argv[1:]:
    for line in open(path):
        row = json.loads(line)
        runs.setdefault(row["system"], []).append(row)
print(f"{'ef_search':>9}  {'lore recall':>11} {'q/s':>8}  {'hnswlib recall':>14} {'q/s':>8}")
lore, peer = ([r for r in runs[s] if "ef" in r] for s in ("lore", "hnswlib"))
for a, b in zip(lore, peer):
    print(f"{a['ef']:>9}  {a['recall']:>11.4f} {a['qps']:>8.0f}  {b['recall']:>14.4f} {b['qps']:>8.0f}")
built = {s: next(r for r in runs[s] if "build_s" in r) for s in runs}
rows, threads = built["lore"]["rows"], built["lore"]["threads"]
print(f"graph build, {rows} vectors, {threads} threads: lore {built['lore']['build_s']:.1f} s, "
      f"hnswlib {built['hnswlib']['build_s']:.1f} s")
best = {s: max((r for r in rs if r["recall"] >= 0.95), key=lambda r: r["qps"]) for s, rs in (("lore", lore), ("hnswlib", peer))}
a, b = best["lore"], best["hnswlib"]
print(f"ann ({rows} vectors, recall@10 >= 0.95, one thread): lore {a['qps']:.0f} q/s (ef {a['ef']}, recall {a['recall']:.3f}), "
      f"hnswlib {b['qps']:.0f} q/s (ef {b['ef']}, recall {b['recall']:.3f}), ratio {a['qps'] / b['qps']:.2f}x")
PY

#!/usr/bin/env bash
# Lore's BM25 next to bm25s (and rank-bm25), in one run, on the same BEIR corpus and queries: the
# same analysis (English stop words, Snowball stemming), k1 = 1.2, b = 0.75, top 10, one thread,
# query analysis included. Last line: queries/s of each and the ratio.
# Usage: bench/bm25.sh [DATASET_DIR]   (default ../shared/datasets/scifact)
# The peers are installed into their own virtual environment under ~/.cache/lore when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
dataset="${1:-../shared/datasets/scifact}"
venv="$HOME/.cache/lore/bench/bm25-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import bm25s, rank_bm25, Stemmer, scipy' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q bm25s rank-bm25 PyStemmer numpy scipy >&2
fi
cargo build --release -p lore-index --example search_bench >&2
lore_out=$("$CARGO_TARGET_DIR/release/examples/search_bench" bm25 "$dataset")
echo "$lore_out"
peer_out=$("$venv/bin/python" bench/bm25_peer.py "$dataset")
echo "$peer_out"
python3 - "$lore_out" "$peer_out" <<'PY'
import json, re, sys
lore_text, peer = sys.argv[1], json.loads(sys.argv[2])
lore = float(re.search(r"search_keyword top-10, one thread: (\d+) queries/s", lore_text).group(1))
ndcg = re.search(r"k1 = 1.2, b = 0.75: nDCG@10 = ([\d.]+)", lore_text).group(1)
bm25s = peer["bm25s"]
print(f"nDCG@10: lore {ndcg}, bm25s {bm25s['ndcg@10']}, rank-bm25 {peer['rank_bm25']['ndcg@10']}")
print(f"rank-bm25: {peer['rank_bm25']['queries_per_s']} q/s")
print(f"bm25 ({peer['documents']} documents, {peer['queries']} queries, one thread): lore {lore:.0f} q/s, "
      f"bm25s {bm25s['queries_per_s']} q/s, ratio {lore / bm25s['queries_per_s']:.2f}x")
PY

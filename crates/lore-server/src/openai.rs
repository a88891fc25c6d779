//! The OpenAI-compatible API under `/v1`: collections are models, chat completions answer from
//! them with citations, embeddings come from Lore's embedders.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use lore_core::{EmbedKind, Message};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::answer::{self, AnswerEvent, Finished, SearchOptions};
use crate::error::{ApiError, ApiResult};
use crate::keys::Permission;
use crate::rest::{blocking, generation};
use crate::state::{AppState, Caller};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `GET /v1/models`: the collections the key may read.
pub async fn models(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let names = blocking(move || Ok(state.engine.catalog().names()?)).await?;
    let data: Vec<Value> = names
        .into_iter()
        .filter(|name| caller.0.allows(name, Permission::Read))
        .map(|name| json!({"id": name, "object": "model", "created": 0, "owned_by": "lore"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// The fields of a chat completion request Lore reads; the others (temperature, tools, …) are
/// accepted and ignored, as OpenAI-compatible servers do.
#[derive(Deserialize)]
pub struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    /// Lore's own: passages to retrieve.
    #[serde(default)]
    k: Option<usize>,
    /// Lore's own: a metadata filter.
    #[serde(default)]
    filter: Option<lore_core::Filter>,
}

/// A message whose content is a string or a list of parts (only text parts are read).
#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

impl ChatMessage {
    fn into_message(self) -> ApiResult<Message> {
        let role = match self.role.as_str() {
            "system" | "developer" => lore_core::Role::System,
            "user" => lore_core::Role::User,
            "assistant" => lore_core::Role::Assistant,
            other => return Err(ApiError::bad_request(format!("messages: role '{other}' is not read by Lore"))),
        };
        let content = match self.content {
            Value::String(text) => text,
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| (p["type"] == "text").then(|| p["text"].as_str()).flatten())
                .collect::<Vec<_>>()
                .join("\n"),
            Value::Null => String::new(),
            _ => return Err(ApiError::bad_request("messages: content must be a string or a list of parts")),
        };
        Ok(lore_core::Message { role, content })
    }
}

/// `POST /v1/chat/completions`: `model` is the collection.
pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<ChatRequest>,
) -> ApiResult<Response> {
    caller.check_collection(&state, &request.model, Permission::Read).await?;
    let messages = request.messages.into_iter().map(ChatMessage::into_message).collect::<ApiResult<Vec<_>>>()?;
    let generation = generation(request.max_completion_tokens.or(request.max_tokens))?;
    let search = SearchOptions { k: request.k, filter: request.filter, pipeline: None };
    let events = answer::start(&state, &caller.0, &request.model, messages, &search, generation)?;
    let id = format!("chatcmpl-{:016x}", rand_u64());
    let model = request.model;
    if request.stream {
        return Ok(Sse::new(chunks(events, id, model)).into_response());
    }
    let done = answer::finished(events).await?;
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": done.answer.text},
            "finish_reason": "stop",
        }],
        "usage": usage(&done),
        "citations": answer::citations(&done),
        "answer_id": done.logged.id,
        "refused": done.answer.refused,
        "checks": done.answer.checks,
    }))
    .into_response())
}

fn usage(done: &Finished) -> Value {
    let (prompt, completion) = (done.answer.prompt_tokens, done.answer.completion_tokens);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// OpenAI's stream: a first chunk with the role, one per token, a last one with
/// `finish_reason`, the usage and Lore's `citations` and `checks` (with `verified_content`, the
/// answer to show instead of the streamed text, when verification or a quote replaced it), then `[DONE]`. An error mid-stream is
/// sent as an `{"error": …}` chunk, as OpenAI does.
fn chunks(
    events: tokio::sync::mpsc::Receiver<AnswerEvent>,
    id: String,
    model: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let created = now();
    let chunk = move |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let opening = futures_util::stream::iter([Ok(Event::default().data(first.to_string()))]);
    let body = futures_util::stream::unfold((events, chunk, false), |(mut events, chunk, ended)| async move {
        if ended {
            return None;
        }
        let data = match events.recv().await? {
            AnswerEvent::Token(piece) => chunk(json!({"content": piece}), Value::Null),
            AnswerEvent::Done(done) => {
                let mut last = chunk(json!({}), json!("stop"));
                last["usage"] = usage(&done);
                last["citations"] = json!(answer::citations(&done));
                last["answer_id"] = json!(done.logged.id);
                last["refused"] = json!(done.answer.refused);
                last["checks"] = json!(done.answer.checks);
                // The tokens streamed were the generator's; verification's answer replaces them.
                if done.answer.checks.generated.is_some() {
                    last["verified_content"] = json!(done.answer.text);
                }
                return Some((Ok(Event::default().data(last.to_string())), (events, chunk, true)));
            }
            AnswerEvent::Failed(e) => {
                let error = json!({"error": {"message": e.message, "type": "server_error", "code": e.code}});
                return Some((Ok(Event::default().data(error.to_string())), (events, chunk, true)));
            }
        };
        Some((Ok(Event::default().data(data.to_string())), (events, chunk, false)))
    });
    let done = futures_util::stream::iter([Ok(Event::default().data("[DONE]"))]);
    futures_util::StreamExt::chain(futures_util::StreamExt::chain(opening, body), done)
}

/// `POST /v1/embeddings`: `model` is an embedder Lore knows by name; `input` a string or a
/// list of strings; vectors as floats or, with `encoding_format: "base64"`, as little-endian
/// f32 bytes. Lore's own `input_type` says whether the texts are `passage`s (the default) or
/// `query`s, for embedders that embed them differently (e5).
#[derive(Deserialize)]
pub struct EmbeddingRequest {
    model: String,
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    input_type: Option<String>,
}

/// The most texts one embeddings request may carry.
const MAX_INPUTS: usize = 256;

pub async fn embeddings(
    State(state): State<AppState>,
    _caller: Caller,
    Json(request): Json<EmbeddingRequest>,
) -> ApiResult<Json<Value>> {
    crate::upload::check_model_name(&request.model)?;
    let texts: Vec<String> = match request.input {
        Value::String(text) => vec![text],
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
        }
        _ => {
            return Err(ApiError::bad_request(
                "input must be a string or a list of strings (token arrays are not read)",
            ));
        }
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS || texts.iter().any(|t| t.is_empty() || t.len() > 100_000) {
        return Err(ApiError::bad_request(format!(
            "input: 1 to {MAX_INPUTS} non-empty texts of at most 100,000 bytes"
        )));
    }
    let kind = match request.input_type.as_deref() {
        None | Some("passage") | Some("document") => EmbedKind::Passage,
        Some("query") => EmbedKind::Query,
        Some(other) => return Err(ApiError::bad_request(format!("input_type '{other}': use query or passage"))),
    };
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err(ApiError::bad_request(format!("encoding_format '{other}': use float or base64"))),
    };
    let ticket = state.queues.searches.enter()?;
    let model = request.model.clone();
    let (vectors, tokens) = blocking(move || {
        let _ticket = ticket;
        let embedder = state.engine.models().embedder(&model)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // Tokens as the embedder counts them, each text cut at its window as embedding cuts it.
        let mut tokens = 0;
        for text in &refs {
            tokens += match embedder.tokenizer() {
                Some(tokenizer) => tokenizer.token_spans(text)?.len().min(embedder.max_tokens()),
                None => text.split_whitespace().count(),
            };
        }
        Ok((embedder.embed(&refs, kind)?, tokens))
    })
    .await?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(encode_base64(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

/// Standard base64 with padding (RFC 4648 §4).
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::encode_base64(plain.as_bytes()), encoded);
        }
    }
}

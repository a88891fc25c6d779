//! Answering, shared by `/api/…/ask` and `/v1/chat/completions`: one blocking job that rewrites
//! a conversation into a standalone question, retrieves within what the caller may read,
//! streams the answer's tokens, logs the answer and hands back its citations.

use lore_core::{Answer, Filter, GenerationOptions, Hit, Message, Role};
use lore_engine::SearchRequest;
use lore_engine::answers::LoggedAnswer;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::keys::Access;
use crate::state::AppState;

/// Search settings a client may send with a question or a query.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchOptions {
    /// How many passages to retrieve.
    #[serde(default)]
    pub k: Option<usize>,
    /// Only chunks passing this (the filter language of `lore_core::Filter`).
    #[serde(default)]
    pub filter: Option<Filter>,
    /// A pipeline preset.
    #[serde(default)]
    pub pipeline: Option<String>,
}

/// The most passages a client may ask for.
const MAX_K: usize = 50;

impl SearchOptions {
    /// The engine's request for these options in `collection`, kept to what `access` may read.
    pub fn request(&self, collection: &str, access: &Access) -> ApiResult<SearchRequest> {
        if self.k == Some(0) || self.k.is_some_and(|k| k > MAX_K) {
            return Err(ApiError::bad_request(format!("k must be from 1 to {MAX_K}")));
        }
        // Only presets: a client never names a file on the server.
        if let Some(pipeline) = &self.pipeline
            && !lore_rag::PRESETS.iter().any(|(name, _)| name == pipeline)
        {
            let names: Vec<&str> = lore_rag::PRESETS.iter().map(|(name, _)| *name).collect();
            return Err(ApiError::bad_request(format!("no pipeline '{pipeline}': choose one of {}", names.join(", "))));
        }
        let filter = match (self.filter.clone(), access.documents()) {
            (Some(asked), Some(allowed)) => Some(allowed.and(asked)),
            (asked, allowed) => asked.or(allowed),
        };
        Ok(SearchRequest {
            collection: Some(collection.to_string()),
            pipeline: self.pipeline.clone(),
            top_k: self.k,
            filter,
            ..SearchRequest::default()
        })
    }
}

/// What the answering job reports, in order: tokens, then the end.
pub enum AnswerEvent {
    /// A piece of the answer.
    Token(String),
    /// The answer is complete and logged.
    Done(Box<Finished>),
    /// It failed.
    Failed(ApiError),
}

/// A finished answer.
pub struct Finished {
    pub logged: LoggedAnswer,
    pub answer: Answer,
    pub hits: Vec<Hit>,
}

/// Starts answering the last user turn of `messages` in `collection` on a blocking thread;
/// its events arrive on the returned channel. 503 when the answer queue is full.
pub fn start(
    state: &AppState,
    access: &Access,
    collection: &str,
    messages: Vec<Message>,
    search: &SearchOptions,
    generation: GenerationOptions,
) -> ApiResult<mpsc::Receiver<AnswerEvent>> {
    let (question, earlier) = split_conversation(messages)?;
    let mut request = search.request(collection, access)?;
    request.generation = Some(generation);
    let ticket = state.queues.answers.enter()?;
    let (sender, receiver) = mpsc::channel(256);
    let (state, collection) = (state.clone(), collection.to_string());
    tokio::task::spawn_blocking(move || {
        let _ticket = ticket;
        let done = answer(&state, &collection, &request, &earlier, &question, &sender);
        let _ = sender.blocking_send(match done {
            Ok(finished) => AnswerEvent::Done(Box::new(finished)),
            Err(e) => AnswerEvent::Failed(e),
        });
    });
    Ok(receiver)
}

/// The finished answer, once the job is done (its tokens dropped): for clients that did not
/// ask for a stream.
pub async fn finished(mut events: mpsc::Receiver<AnswerEvent>) -> ApiResult<Box<Finished>> {
    while let Some(event) = events.recv().await {
        match event {
            AnswerEvent::Token(_) => {}
            AnswerEvent::Failed(e) => return Err(e),
            AnswerEvent::Done(done) => return Ok(done),
        }
    }
    Err(ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "the answer stopped unexpectedly"))
}

fn answer(
    state: &AppState,
    collection: &str,
    request: &SearchRequest,
    earlier: &[Message],
    question: &str,
    sender: &mpsc::Sender<AnswerEvent>,
) -> ApiResult<Finished> {
    let session = state.engine.session(request, true)?;
    let chat = session.chat.clone().expect("a session opened for answering has a chat model");
    let question = lore_rag::standalone_question(chat.as_ref(), earlier, question)?;
    let retrieval = session.retrieve(&question)?;
    let answer = session.answer(&question, &retrieval, &mut |piece| {
        // A client that went away stops listening; the answer is still finished and logged.
        let _ = sender.blocking_send(AnswerEvent::Token(piece.to_string()));
    })?;
    let logged = state.answers.record(collection, &question, &answer, &retrieval.hits)?;
    Ok(Finished { logged, answer, hits: retrieval.hits })
}

/// The last user message and the turns before it (system messages dropped: the server's
/// prompt governs answers, not the client's).
fn split_conversation(mut messages: Vec<Message>) -> ApiResult<(String, Vec<Message>)> {
    messages.retain(|m| m.role != Role::System);
    match messages.pop() {
        Some(last) if last.role == Role::User && !last.content.trim().is_empty() => Ok((last.content, messages)),
        _ => Err(ApiError::bad_request("the last message must be a non-empty user message: the question")),
    }
}

/// The sources of an answer as the API gives them: number, document, chunk, where in the
/// document, score, whether cited, and the passage.
pub fn citations(finished: &Finished) -> Vec<Value> {
    finished
        .logged
        .passages
        .iter()
        .map(|p| {
            let metadata = finished.hits.iter().find(|h| h.chunk_id == p.chunk_id).map(|h| &h.metadata);
            let field = |name: &str| metadata.and_then(|m| m.get(name)).cloned().unwrap_or(Value::Null);
            let heading = match field("heading_path") {
                Value::Array(parts) => {
                    let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
                    if parts.is_empty() { Value::Null } else { Value::String(parts.join(" > ")) }
                }
                other => other,
            };
            json!({
                "n": p.n,
                "document": p.source,
                "title": field("title"),
                "chunk_id": p.chunk_id,
                "page": field("page"),
                "heading": heading,
                "score": p.score,
                "cited": p.cited,
                "passage": p.text,
            })
        })
        .collect()
}

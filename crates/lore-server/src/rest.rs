//! The REST API under `/api`: collections, documents, query, ask (server-sent events) and
//! feedback.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use lore_core::{ChunkConfig, GROUPS_FIELD, GenerationOptions, Message, Metadata, SearchSettings};
use lore_engine::answers::Feedback;
use lore_engine::sync::{ChunkSizes, Chunker, IngestRequest, Summary};
use lore_engine::{CollectionSummary, Quiet, SearchRequest};
use lore_rag::Source;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::answer::{self, AnswerEvent, SearchOptions};
use crate::error::{ApiError, ApiResult};
use crate::keys::Permission;
use crate::state::{AppState, Caller, collection_exists};
use crate::upload::{self, Upload};

/// Runs blocking engine work off the async threads.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request's work stopped unexpectedly")
    })?
}

pub async fn list_collections(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let visible = blocking(move || {
        let mut visible = Vec::new();
        for mut summary in state.engine.catalog().list()? {
            if caller.0.allows(&summary.name, Permission::Read) {
                count_visible(&state, &caller, &mut summary)?;
                visible.push(summary);
            }
        }
        Ok(visible)
    })
    .await?;
    Ok(Json(json!({"collections": visible})))
}

/// For a caller kept to some documents, the counts of those only: the others' existence is
/// not the caller's business either.
fn count_visible(state: &AppState, caller: &Caller, summary: &mut CollectionSummary) -> ApiResult<()> {
    let Some(stats) = summary.stats.as_mut() else { return Ok(()) };
    if caller.0.documents().is_none() {
        return Ok(());
    }
    let documents = state.engine.catalog().open(&summary.name)?.documents()?;
    let visible: Vec<_> = documents.iter().filter(|d| caller.0.sees(&document_metadata(d))).collect();
    stats.documents = visible.len();
    stats.chunks = visible.iter().map(|d| d.chunks).sum();
    Ok(())
}

/// A new collection: its embedder (a model name Lore knows), chunker and search settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    name: String,
    #[serde(default)]
    embedder: Option<String>,
    #[serde(default)]
    chunker: Option<String>,
    #[serde(default)]
    chunk_size: Option<usize>,
    #[serde(default)]
    search: Option<SearchSettings>,
}

pub async fn create_collection(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewCollection>,
) -> ApiResult<Response> {
    caller.check(&new.name, Permission::Admin)?;
    if let Some(embedder) = &new.embedder {
        upload::check_model_name(embedder)?;
    }
    let chunking = chunking(new.chunker.as_deref(), new.chunk_size)?;
    let summary = blocking(move || {
        if state.engine.catalog().exists(&new.name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("collection '{}' exists", new.name),
            ));
        }
        let request = IngestRequest { collection: Some(new.name.clone()), embedder: new.embedder, chunking };
        let target = state.engine.ingest_target(&request)?;
        if let Some(search) = new.search {
            target.store.configure(search)?;
        }
        Ok(state.engine.catalog().summary(&new.name)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(summary)).into_response())
}

fn chunking(chunker: Option<&str>, chunk_size: Option<usize>) -> ApiResult<Option<ChunkConfig>> {
    if chunker.is_none() && chunk_size.is_none() {
        return Ok(None);
    }
    let chunker = Chunker::named(chunker.unwrap_or("recursive"))?;
    let mut sizes = ChunkSizes::default();
    if let Some(size) = chunk_size {
        if !(16..=100_000).contains(&size) {
            return Err(ApiError::bad_request("chunk_size must be from 16 to 100000"));
        }
        sizes.chunk_size = size;
    }
    Ok(Some(chunker.config(&sizes)))
}

pub async fn collection_info(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.check_collection(&state, &name, Permission::Read).await?;
    let summary = blocking(move || {
        let mut summary = state.engine.catalog().summary(&name)?;
        count_visible(&state, &caller, &mut summary)?;
        Ok(summary)
    })
    .await?;
    Ok(Json(serde_json::to_value(summary).expect("summaries serialize")))
}

pub async fn configure_collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(settings): Json<SearchSettings>,
) -> ApiResult<Json<Value>> {
    caller.check_collection(&state, &name, Permission::Admin).await?;
    let summary = blocking(move || {
        state.engine.catalog().open(&name)?.configure(settings)?;
        Ok(state.engine.catalog().summary(&name)?)
    })
    .await?;
    Ok(Json(serde_json::to_value(summary).expect("summaries serialize")))
}

pub async fn delete_collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.check_collection(&state, &name, Permission::Admin).await?;
    blocking(move || Ok(state.engine.delete_collection(&name)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Paging {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    50
}

pub async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Value>> {
    caller.check_collection(&state, &name, Permission::Read).await?;
    let limit = paging.limit.clamp(1, 1000);
    let documents = blocking(move || Ok(state.engine.catalog().open(&name)?.documents()?)).await?;
    let visible: Vec<_> = documents.into_iter().filter(|d| caller.0.sees(&document_metadata(d))).collect();
    let page: Vec<_> = visible.iter().skip(paging.offset).take(limit).collect();
    Ok(Json(json!({"documents": page, "total": visible.len(), "offset": paging.offset, "limit": limit})))
}

/// A document's metadata as a filter reads it (its source included).
fn document_metadata(doc: &lore_core::DocumentInfo) -> Metadata {
    let mut metadata = doc.metadata.clone();
    metadata.insert("source".into(), doc.source.clone().into());
    metadata
}

/// The document `source` of `name` if the caller may read it; 404 otherwise.
fn visible_document(state: &AppState, caller: &Caller, name: &str, source: &str) -> ApiResult<lore_core::DocumentInfo> {
    let store = state.engine.catalog().open(name)?;
    store
        .documents()?
        .into_iter()
        .find(|d| d.source == source && caller.0.sees(&document_metadata(d)))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no document '{source}' in '{name}'")))
}

pub async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, source)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.check_collection(&state, &name, Permission::Read).await?;
    let doc = blocking(move || visible_document(&state, &caller, &name, &source)).await?;
    Ok(Json(serde_json::to_value(doc).expect("documents serialize")))
}

pub async fn delete_document(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, source)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.check_collection(&state, &name, Permission::Write).await?;
    blocking(move || {
        visible_document(&state, &caller, &name, &source)?;
        state.engine.catalog().open(&name)?.delete_document(&source)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn upload_documents(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    mut multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let ticket = match admit_upload(&state, &caller, &name).await {
        Ok(ticket) => ticket,
        Err(refused) => {
            upload::discard(&mut multipart).await;
            return Err(refused);
        }
    };
    let upload = upload::read(multipart, &state.options).await?;
    let (name, summary) = blocking(move || {
        let _ticket = ticket;
        let metrics = &state.metrics;
        metrics.uploads_in_progress.fetch_add(1, Ordering::Relaxed);
        let summary = ingest_upload(&state, &name, upload);
        metrics.uploads_in_progress.fetch_sub(1, Ordering::Relaxed);
        summary
    })
    .await?;
    Ok(Json(summary.to_json(&name)))
}

/// A place in the upload queue, if the caller may add documents to `name` (and create it when
/// missing).
async fn admit_upload(state: &AppState, caller: &Caller, name: &str) -> ApiResult<crate::state::Ticket> {
    caller.check(name, Permission::Write)?;
    if !collection_exists(state, name).await? {
        // Writers add documents; creating the collection is an administrator's.
        caller.check(name, Permission::Admin)?;
        state.engine.catalog().dir(name)?;
    }
    state.queues.uploads.enter()
}

fn ingest_upload(state: &AppState, name: &str, upload: Upload) -> ApiResult<(String, Summary)> {
    let started = std::time::Instant::now();
    let mut target =
        state.engine.ingest_target(&IngestRequest { collection: Some(name.to_string()), ..Default::default() })?;
    target.metadata = upload.metadata;
    if !upload.groups.is_empty() {
        target.metadata.insert(GROUPS_FIELD.into(), json!(upload.groups));
    }
    let mut sources = Vec::new();
    let mut failed = Vec::new();
    for (file_name, bytes) in upload.files {
        match lore_ingest::parse_bytes_with_limits(&file_name, bytes, &state.options.parse_limits) {
            Ok(doc) => sources.push(Source::Document(doc)),
            Err(e) => failed.push((file_name, e.to_string())),
        }
    }
    let mut report = target.ingest(sources, &Quiet)?;
    report.failed.splice(0..0, failed);
    let metrics = &state.metrics;
    metrics.documents_ingested.fetch_add((report.added + report.replaced) as u64, Ordering::Relaxed);
    metrics.documents_failed.fetch_add(report.failed.len() as u64, Ordering::Relaxed);
    metrics.chunks_embedded.fetch_add(report.chunks as u64, Ordering::Relaxed);
    Ok((target.name, Summary { report, seconds: started.elapsed().as_secs_f64(), ..Summary::default() }))
}

/// `{"query", "k", "filter", "pipeline"}`.
#[derive(Deserialize)]
pub struct QueryBody {
    query: String,
    #[serde(flatten)]
    search: SearchOptions,
}

pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<QueryBody>,
) -> ApiResult<Json<Value>> {
    caller.check_collection(&state, &name, Permission::Read).await?;
    if body.query.trim().is_empty() {
        return Err(ApiError::bad_request("the query is empty"));
    }
    let request: SearchRequest = body.search.request(&name, &caller.0)?;
    let ticket = state.queues.searches.enter()?;
    let found = blocking(move || {
        let _ticket = ticket;
        Ok(state.engine.session(&request, false)?.retrieve(&body.query)?)
    })
    .await?;
    let t = &found.timings;
    Ok(Json(json!({
        "hits": found.hits,
        "timings": {"rewrite_ms": t.rewrite_ms, "embed_ms": t.embed_ms, "search_ms": t.search_ms, "rerank_ms": t.rerank_ms},
    })))
}

/// `{"question", "history", "k", "filter", "pipeline", "max_tokens", "stream"}`.
#[derive(Deserialize)]
pub struct AskBody {
    question: String,
    /// Earlier turns of the conversation, oldest first.
    #[serde(default)]
    history: Vec<Message>,
    #[serde(default)]
    max_tokens: Option<usize>,
    /// Server-sent events (the default) or one JSON object.
    #[serde(default = "yes")]
    stream: bool,
    #[serde(flatten)]
    search: SearchOptions,
}

fn yes() -> bool {
    true
}

pub async fn ask(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<AskBody>,
) -> ApiResult<Response> {
    caller.check_collection(&state, &name, Permission::Read).await?;
    let generation = generation(body.max_tokens)?;
    let mut messages = body.history;
    messages.push(Message::user(body.question));
    let events = answer::start(&state, &caller.0, &name, messages, &body.search, generation)?;
    if body.stream {
        return Ok(Sse::new(answer_events(events)).into_response());
    }
    let done = answer::finished(events).await?;
    Ok(Json(finished_json(&done)).into_response())
}

/// The SSE events of an answer: `token` {text}, then `citations` [...], then `done`; or `error`.
fn answer_events(events: tokio::sync::mpsc::Receiver<AnswerEvent>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((events, Vec::<Event>::new()), |(mut events, mut pending)| async move {
        if let Some(event) = pending.pop() {
            return Some((Ok(event), (events, pending)));
        }
        let event = match events.recv().await {
            Some(AnswerEvent::Token(piece)) => Event::default().event("token").json_data(json!({"text": piece})),
            Some(AnswerEvent::Done(done)) => {
                // Sent last to first: `pending` is a stack.
                pending.push(Event::default().event("done").json_data(finished_json(&done)).expect("json"));
                Event::default().event("citations").json_data(answer::citations(&done))
            }
            Some(AnswerEvent::Failed(e)) => {
                Event::default().event("error").json_data(json!({"error": {"message": e.message, "code": e.code}}))
            }
            None => return None,
        };
        Some((Ok(event.expect("events serialize")), (events, pending)))
    })
}

fn finished_json(done: &answer::Finished) -> Value {
    json!({
        "id": done.logged.id,
        "question": done.logged.question,
        "answer": done.answer.text,
        "refused": done.answer.refused,
        "citations": answer::citations(done),
        "prompt_tokens": done.answer.prompt_tokens,
        "completion_tokens": done.answer.completion_tokens,
        "timings": done.answer.timings,
        "checks": done.answer.checks,
    })
}

/// Generation settings of a request: greedy, up to `max_tokens` (at most 2048).
pub fn generation(max_tokens: Option<usize>) -> ApiResult<GenerationOptions> {
    let max_tokens = max_tokens.unwrap_or(512);
    if !(1..=2048).contains(&max_tokens) {
        return Err(ApiError::bad_request("max_tokens must be from 1 to 2048"));
    }
    Ok(GenerationOptions { max_tokens, temperature: 0.0, ..GenerationOptions::default() })
}

pub async fn feedback(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Feedback>,
) -> ApiResult<Response> {
    if body.correction.as_ref().is_some_and(|c| c.len() > 20_000)
        || body.comment.as_ref().is_some_and(|c| c.len() > 20_000)
    {
        return Err(ApiError::too_large("corrections and comments are limited to 20,000 bytes"));
    }
    blocking(move || {
        let access = caller.0.documents();
        let answer = state
            .answers
            .get(&body.answer_id, access.as_ref())?
            .filter(|a| caller.0.allows(&a.collection, Permission::Read))
            .ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no answer '{}'", body.answer_id))
            })?;
        state.answers.add_feedback(&body, access.as_ref())?;
        Ok(answer)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"recorded": true}))).into_response())
}

//! What every request shares: the engine, the keys, the answer log, the work queues and the
//! metrics; and who is calling ([`Caller`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use lore_engine::Engine;
use lore_engine::answers::AnswerLog;

use crate::ServeOptions;
use crate::error::{ApiError, ApiResult};
use crate::keys::{Access, Keys, Permission};

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub keys: Arc<Keys>,
    pub answers: Arc<AnswerLog>,
    pub queues: Arc<Queues>,
    pub metrics: Arc<Metrics>,
    pub options: Arc<ServeOptions>,
}

/// Bounded admission for each kind of model work. A request that finds its queue full is
/// answered 503 at once, with `Retry-After`, instead of waiting on a thread of its own.
pub struct Queues {
    pub answers: Arc<Queue>,
    pub searches: Arc<Queue>,
    pub uploads: Arc<Queue>,
}

/// Work of one kind admitted and not yet finished (running or waiting for its model).
pub struct Queue {
    pub name: &'static str,
    capacity: usize,
    depth: AtomicUsize,
}

/// A place in a queue, given back when dropped. The blocking job doing the work holds it, so a
/// client that hangs up does not free the place before the work is done.
pub struct Ticket(Arc<Queue>);

impl Queue {
    pub fn new(name: &'static str, capacity: usize) -> Queue {
        Queue { name, capacity: capacity.max(1), depth: AtomicUsize::new(0) }
    }

    /// A place, or 503 when all are taken.
    pub fn enter(self: &Arc<Self>) -> ApiResult<Ticket> {
        let taken = self.depth.fetch_add(1, Ordering::SeqCst);
        if taken >= self.capacity {
            self.depth.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::busy(
                format!("the server is busy with {} ({} waiting or running); try again shortly", self.name, taken),
                if self.name == "answers" { 10 } else { 2 },
            ));
        }
        Ok(Ticket(self.clone()))
    }

    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.depth.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Prometheus counters: requests by route and status, latency histograms by route, ingest
/// progress.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub documents_ingested: AtomicU64,
    pub documents_failed: AtomicU64,
    pub chunks_embedded: AtomicU64,
    pub uploads_in_progress: AtomicUsize,
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests).entry((route.to_string(), status)).or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let histogram = latency.entry(route.to_string()).or_default();
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self, queues: &Queues) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out.push_str("# HELP lore_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE lore_requests_total counter\n");
        for ((route, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(out, "lore_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}");
        }
        out.push_str("# HELP lore_request_seconds Time to answer a request (to its last byte for streams).\n");
        out.push_str("# TYPE lore_request_seconds histogram\n");
        for (route, h) in lock(&self.latency).iter() {
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "lore_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "lore_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "lore_request_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "lore_request_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        out.push_str("# HELP lore_queue_depth Model work admitted and not finished, by queue.\n");
        out.push_str("# TYPE lore_queue_depth gauge\n");
        out.push_str("# HELP lore_queue_capacity Most model work a queue admits.\n");
        out.push_str("# TYPE lore_queue_capacity gauge\n");
        for queue in [&queues.answers, &queues.searches, &queues.uploads] {
            let _ = writeln!(out, "lore_queue_depth{{queue=\"{}\"}} {}", queue.name, queue.depth());
            let _ = writeln!(out, "lore_queue_capacity{{queue=\"{}\"}} {}", queue.name, queue.capacity());
        }
        let counters = [
            (
                "lore_documents_ingested_total",
                "Documents stored from uploads.",
                self.documents_ingested.load(Ordering::Relaxed),
            ),
            (
                "lore_documents_failed_total",
                "Uploaded files that could not be ingested.",
                self.documents_failed.load(Ordering::Relaxed),
            ),
            (
                "lore_chunks_embedded_total",
                "Chunks embedded and stored from uploads.",
                self.chunks_embedded.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let uploads = self.uploads_in_progress.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP lore_uploads_in_progress Upload requests being ingested.\n# TYPE lore_uploads_in_progress gauge\nlore_uploads_in_progress {uploads}"
        );
        out
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts every request by its route (the pattern, never the path: paths carry document names).
pub async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(&route, response.status().as_u16(), started.elapsed());
    response
}

/// The caller of a request, authenticated: with keys configured, the holder of a valid
/// `Authorization: Bearer KEY`; without, a client on this machine.
pub struct Caller(pub Access);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let keys = state.keys.clone();
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|v| v.trim().to_string());
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let found = tokio::task::spawn_blocking(move || -> lore_core::Result<_> {
            Ok((keys.any()?, presented.map(|secret| keys.find(&secret)).transpose()?.flatten()))
        })
        .await
        .map_err(|_| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "key lookup failed"))??;
        match found {
            (_, Some(key)) => Ok(Caller(Access::Key(key))),
            (true, None) => Err(ApiError::unauthorized(
                "a valid key is needed: send 'Authorization: Bearer KEY' (create one with `lore keys create`)",
            )),
            (false, None) if peer.is_none_or(|p| p.ip().is_loopback()) => Ok(Caller(Access::Local)),
            (false, None) => Err(ApiError::unauthorized(
                "this server has no keys and serves only its own machine; create one with `lore keys create`",
            )),
        }
    }
}

/// Whether collection `name` exists, asked off the async threads: with a PostgreSQL store the
/// catalog asks the database.
pub async fn collection_exists(state: &AppState, name: &str) -> ApiResult<bool> {
    let (state, name) = (state.clone(), name.to_string());
    crate::rest::blocking(move || Ok(state.engine.catalog().exists(&name))).await
}

impl Caller {
    /// [`Caller::check`], then 404 unless the collection exists (the same answer either way).
    pub async fn check_collection(&self, state: &AppState, name: &str, needed: Permission) -> ApiResult<()> {
        self.check(name, needed)?;
        if collection_exists(state, name).await? { Ok(()) } else { Err(ApiError::no_collection(name)) }
    }

    /// Error unless the caller may do `needed` with `collection`: 404 when it may not even read
    /// it (never revealing that it exists), 403 when it may read it but not do this.
    pub fn check(&self, collection: &str, needed: Permission) -> ApiResult<()> {
        if self.0.allows(collection, needed) {
            Ok(())
        } else if self.0.allows(collection, Permission::Read) {
            Err(ApiError::forbidden(format!("this key may not {needed} collection '{collection}'")))
        } else {
            Err(ApiError::no_collection(collection))
        }
    }
}

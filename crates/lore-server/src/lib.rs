//! Lore as a service: the REST API under `/api`, OpenAI-compatible endpoints under `/v1`, a web
//! page at `/`, API keys with per-collection grants and per-document groups ([`keys`]), all
//! over one [`lore_engine::Engine`]. The HTTP layer only translates: what a request may see is
//! decided by [`keys::Access`], and document access becomes a filter applied inside every
//! retriever, like any metadata filter.
//!
//! ```
//! use lore_engine::{Engine, Settings};
//! use lore_server::{ServeOptions, Server};
//! use std::io::{Read, Write};
//!
//! let home = tempfile::tempdir()?;
//! let engine = Engine::new(Settings::at(home.path()))?;
//! let options = ServeOptions { addr: "127.0.0.1:0".parse()?, ..ServeOptions::default() };
//! let runtime = tokio::runtime::Runtime::new()?;
//! let server = runtime.block_on(Server::bind(engine, options))?;
//! let addr = server.local_addr();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = runtime.spawn(server.run(async { let _ = stopped.await; }));
//!
//! let mut client = std::net::TcpStream::connect(addr)?;
//! client.write_all(b"GET /healthz HTTP/1.1\r\nHost: lore\r\nConnection: close\r\n\r\n")?;
//! let mut reply = String::new();
//! client.read_to_string(&mut reply)?;
//! assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
//!
//! stop.send(()).unwrap();
//! runtime.block_on(running)??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod answer;
mod error;
pub mod keys;
mod openai;
mod rest;
mod state;
mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post, put};
use hyper_util::rt::{TokioIo, TokioTimer};
use lore_core::{Error, Result};
use lore_engine::Engine;
use lore_engine::answers::AnswerLog;
use lore_ingest::ParseLimits;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use upload::document_name;

use crate::keys::Keys;
use crate::state::{AppState, Metrics, Queue, Queues};

/// The default address: this machine only, port 8750.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8750";

/// How the server listens and what it admits.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen. A non-loopback address needs at least one key.
    pub addr: SocketAddr,
    /// Answers admitted at once, running or waiting for the chat model; more get 503.
    pub answer_queue: usize,
    /// Searches and embeddings admitted at once.
    pub search_queue: usize,
    /// Uploads being ingested at once.
    pub upload_queue: usize,
    /// The largest upload body.
    pub max_upload_bytes: usize,
    /// The largest file in an upload.
    pub max_file_bytes: usize,
    /// The most files in one upload.
    pub max_upload_files: usize,
    /// How long a request may take before its response starts (408 after).
    pub request_timeout: Duration,
    /// How long a connection may take to send a request's headers, and stay idle between requests.
    pub idle_timeout: Duration,
    /// Origins allowed to call the API from a browser page of theirs; none by default.
    pub cors_origins: Vec<String>,
    /// How long a shutdown waits for requests in flight (an upload being ingested finishes its
    /// current document; each document is stored whole or not at all).
    pub shutdown_grace: Duration,
    /// Limits on parsing one uploaded file.
    pub parse_limits: ParseLimits,
    /// At most this many connections at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            answer_queue: 4,
            search_queue: 32,
            upload_queue: 4,
            max_upload_bytes: 200_000_000,
            max_file_bytes: 50_000_000,
            max_upload_files: 100,
            request_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            shutdown_grace: Duration::from_secs(30),
            parse_limits: ParseLimits { max_bytes: 50_000_000, timeout: Duration::from_secs(60) },
            max_connections: 1024,
        }
    }
}

/// A server bound to its address, ready to [`Server::run`].
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
    options: Arc<ServeOptions>,
}

impl Server {
    /// Checks the options and binds. Binding anything but a loopback address without a key
    /// is refused: the server would answer anyone who can reach it.
    pub async fn bind(engine: Engine, options: ServeOptions) -> Result<Server> {
        let keys = Arc::new(Keys::in_home(engine.home()));
        if !options.addr.ip().is_loopback() && !keys.any()? {
            return Err(Error::InvalidInput(format!(
                "refusing to serve {} without keys: anyone who can reach it could read every collection. \
                 Create one first (lore keys create NAME --grant COLLECTION=read), or serve 127.0.0.1",
                options.addr
            )));
        }
        let answers = Arc::new(AnswerLog::in_home(engine.home())?);
        let listener = tokio::net::TcpListener::bind(options.addr).await.map_err(|e| Error::Io {
            path: std::path::PathBuf::from(options.addr.to_string()),
            source: std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", options.addr)),
        })?;
        let options = Arc::new(options);
        let state = AppState {
            engine,
            keys,
            answers,
            queues: Arc::new(Queues {
                answers: Arc::new(Queue::new("answers", options.answer_queue)),
                searches: Arc::new(Queue::new("searches", options.search_queue)),
                uploads: Arc::new(Queue::new("uploads", options.upload_queue)),
            }),
            metrics: Arc::new(Metrics::default()),
            options: options.clone(),
        };
        Ok(Server { listener, router: router(state)?, options })
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting and gives requests in flight
    /// [`ServeOptions::shutdown_grace`] to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let Server { listener, router, options } = self;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // Out of file descriptors, a connection reset before accept: wait, go on.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let router = router.clone();
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(options.idle_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(options.shutdown_grace, graceful.shutdown()).await;
        Ok(())
    }
}

/// Every route, with the layers that bound, time and count requests.
fn router(state: AppState) -> Result<Router> {
    let options = state.options.clone();
    let api = Router::new()
        .route("/api/collections", get(rest::list_collections).post(rest::create_collection))
        .route("/api/collections/{name}", get(rest::collection_info).delete(rest::delete_collection))
        .route("/api/collections/{name}/settings", put(rest::configure_collection))
        .route(
            "/api/collections/{name}/documents",
            get(rest::list_documents)
                .post(rest::upload_documents)
                .layer(DefaultBodyLimit::max(options.max_upload_bytes)),
        )
        .route("/api/collections/{name}/documents/{*source}", get(rest::get_document).delete(rest::delete_document))
        .route("/api/collections/{name}/query", post(rest::query))
        .route("/api/collections/{name}/ask", post(rest::ask))
        .route("/api/feedback", post(rest::feedback))
        .route("/api/openapi.json", get(openapi))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, options.request_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), state::record_metrics))
        .with_state(state);
    if options.cors_origins.is_empty() {
        return Ok(api);
    }
    let origins = options
        .cors_origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o)
                .map_err(|_| Error::InvalidInput(format!("CORS origin '{o}' is not a valid header value")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(api.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    ))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn metrics(State(state): State<AppState>, _caller: state::Caller) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&state.queues))
}

async fn page() -> impl IntoResponse {
    Html(include_str!("page.html"))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint; GET /api/openapi.json lists them")
}

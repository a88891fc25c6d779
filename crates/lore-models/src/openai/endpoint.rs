use std::error::Error as StdError;
use std::io;
use std::thread;
use std::time::Duration;

use lore_core::{Error, Result};
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::RETRY_AFTER;
use serde::Serialize;

use super::OpenAiConfig;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between attempts, whatever the server's `Retry-After` says: past this
/// the user is better served by an error than by a silent wait.
const LONGEST_BACKOFF: Duration = Duration::from_secs(30);
/// How much of an unexpected body an error message quotes.
const QUOTED_BODY_CHARS: usize = 300;

/// An HTTP client bound to one server and model, which retries what is worth retrying.
pub(super) struct Endpoint {
    client: Client,
    config: OpenAiConfig,
}

impl Endpoint {
    pub(super) fn new(config: OpenAiConfig) -> Result<Self> {
        reqwest::Url::parse(&config.base_url).map_err(|err| {
            Error::InvalidInput(format!(
                "base URL `{}` is not a valid URL ({err}); expected e.g. http://127.0.0.1:8080/v1",
                config.base_url
            ))
        })?;
        // reqwest is built without a bundled crypto provider. Installing fails harmlessly when
        // a provider is already installed (by an earlier client or by the application).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("lore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Endpoint(format!("cannot create an HTTP client: {}", root_cause(&err))))?;
        Ok(Endpoint { client, config })
    }

    pub(super) fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// POSTs `body` as JSON and returns the successful response. A 429, a 5xx or a failed
    /// connection is retried up to `max_retries` times, waiting as the server's `Retry-After`
    /// asks or else 0.5 s, 1 s, 2 s, …; other failures are returned at once. A timeout is not
    /// retried: the server may still be working on the request, and a copy would add to its load.
    pub(super) fn post(&self, path: &str, body: &impl Serialize) -> Result<Response> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            let mut request = self.client.post(&url).json(body);
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            let is_last_attempt = attempt >= self.config.max_retries;
            let attempts = attempt + 1;
            let wait = match request.send() {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !retryable || is_last_attempt {
                        let message = server_message(response);
                        return Err(status_error(&url, status, &message, attempts));
                    }
                    retry_after.unwrap_or_else(|| backoff(attempt))
                }
                Err(err) if err.is_timeout() => return Err(Error::Endpoint(self.timeout_message(&url))),
                // The request itself could not be made (an API key that is not a valid header
                // value): no server was asked, and asking again cannot help.
                Err(err) if err.is_builder() => {
                    return Err(Error::InvalidInput(format!(
                        "cannot build a request to {url}: {}; check the API key and the base URL",
                        root_cause(&err)
                    )));
                }
                Err(err) if is_last_attempt => {
                    let tries = if attempts == 1 { String::new() } else { format!(" ({attempts} attempts)") };
                    return Err(Error::Endpoint(format!(
                        "cannot reach {url}{tries}: {}; check that the server is running and that the \
                         base URL is right",
                        root_cause(&err)
                    )));
                }
                Err(_) => backoff(attempt),
            };
            thread::sleep(wait.min(LONGEST_BACKOFF));
            attempt += 1;
        }
    }

    /// Reads a whole (non-streamed) response body.
    pub(super) fn read_body(&self, url: &str, response: Response) -> Result<Vec<u8>> {
        match response.bytes() {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(err) if err.is_timeout() => Err(Error::Endpoint(self.timeout_message(url))),
            Err(err) => Err(Error::Endpoint(format!("reading the answer of {url} failed: {}", root_cause(&err)))),
        }
    }

    pub(super) fn timeout_message(&self, url: &str) -> String {
        format!(
            "{url} sent nothing for {:?}; the server may be overloaded or stuck, or the timeout too \
             short for it",
            self.config.timeout
        )
    }
}

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt))
}

/// `Retry-After` in seconds; the HTTP-date form is left to the exponential backoff.
fn retry_after(response: &Response) -> Option<Duration> {
    let seconds: f64 = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

fn status_error(url: &str, status: StatusCode, message: &str, attempts: u32) -> Error {
    let hint = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "; check the API key (OPENAI_API_KEY)",
        StatusCode::NOT_FOUND => {
            "; check the base URL (OpenAI-compatible servers usually serve under /v1) and the model name"
        }
        _ => "",
    };
    let tries = if attempts == 1 { String::new() } else { format!(" (gave up after {attempts} attempts)") };
    Error::Endpoint(format!("{url} answered {status}{tries}: {message}{hint}"))
}

/// The error message in an error response: OpenAI's `{"error":{"message":…}}`, the variants other
/// servers use, or else the start of the body.
fn server_message(response: Response) -> String {
    let body = response.text().unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let message = json.as_ref().and_then(|json| {
        let error = json.get("error");
        [error.and_then(|error| error.get("message")), error, json.get("message"), json.get("detail")]
            .into_iter()
            .flatten()
            .find_map(|value| value.as_str())
    });
    match message {
        Some(message) => message.to_owned(),
        None if body.trim().is_empty() => "(empty body)".to_owned(),
        None => quote(body.as_bytes()),
    }
}

/// An error for a body that is not what the API promises.
pub(super) fn unexpected_body(url: &str, expected: &str, body: &[u8], err: &dyn StdError) -> Error {
    Error::Endpoint(format!(
        "{url} did not answer with {expected} ({err}); is it an OpenAI-compatible API? It sent: {}",
        quote(body)
    ))
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(QUOTED_BODY_CHARS) {
        Some((cut, _)) => format!("`{}…`", &text[..cut]),
        None => format!("`{text}`"),
    }
}

/// The innermost cause, which says what went wrong ("Connection refused") where the outer
/// layers only say where ("error sending request").
pub(super) fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Whether a read of a response body failed because the server went quiet for too long.
pub(super) fn is_timeout(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::TimedOut
        || err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout)
}

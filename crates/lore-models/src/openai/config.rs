use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lore_core::{Error, Result};

/// OpenAI's own endpoint, used when a spec names no base URL.
const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const API_KEY_VARIABLE: &str = "OPENAI_API_KEY";

/// Where and how to reach an OpenAI-compatible server (OpenAI, llama.cpp's `llama-server`,
/// vLLM, Ollama's `/v1`, …).
///
/// Parsed from the CLI's spec string `openai:<model>@<base-url>`:
///
/// ```
/// use lore_models::OpenAiConfig;
///
/// let config: OpenAiConfig = "openai:qwen2.5:7b@http://127.0.0.1:8080/v1/".parse().unwrap();
/// assert_eq!(config.model, "qwen2.5:7b");
/// assert_eq!(config.base_url, "http://127.0.0.1:8080/v1");
/// assert!("openai:@http://127.0.0.1:8080/v1".parse::<OpenAiConfig>().is_err());
/// ```
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The URL the API paths are appended to, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The model name the server knows, sent as `model` in every request.
    pub model: String,
    /// Sent as `Authorization: Bearer <key>`; local servers usually need none.
    pub api_key: Option<String>,
    /// How long to wait for a response to start and, while an answer streams in, for each
    /// next piece of it: a slow but progressing generation never times out.
    pub timeout: Duration,
    /// How long to wait for the connection to the server to open.
    pub connect_timeout: Duration,
    /// Retries after a 429, a 5xx or a failed connection, with exponential backoff.
    pub max_retries: u32,
}

impl OpenAiConfig {
    /// A config with no API key, a 120 s timeout (CPU servers can take a minute to read a long
    /// prompt), a 10 s connect timeout and 3 retries.
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
        }
    }

    /// Takes the API key from `OPENAI_API_KEY` when none is set and the variable is not empty.
    pub fn with_api_key_from_env(mut self) -> Self {
        if self.api_key.is_none() {
            self.api_key = std::env::var(API_KEY_VARIABLE).ok().filter(|key| !key.is_empty());
        }
        self
    }

    /// The spec string naming this model and server; also the models' `id()`.
    pub(super) fn spec(&self) -> String {
        format!("openai:{}@{}", self.model, self.base_url)
    }
}

/// Parses `openai:<model>@<base-url>`. The model name may contain `:` and `@` (Ollama's
/// `qwen2.5:7b`); the base URL starts at the first `@http://` or `@https://`. Without a base
/// URL, OpenAI's is used.
impl FromStr for OpenAiConfig {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let rest = spec.strip_prefix("openai:").ok_or_else(|| malformed(spec, "it must start with `openai:`"))?;
        let base_url_at = ["@http://", "@https://"].iter().filter_map(|marker| rest.find(marker)).min();
        let (model, base_url) = match base_url_at {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None if rest.contains('@') => {
                return Err(malformed(spec, "the base URL after `@` must start with http:// or https://"));
            }
            None => (rest, OPENAI_BASE_URL),
        };
        if model.is_empty() {
            return Err(malformed(spec, "the model name is empty"));
        }
        let config = OpenAiConfig::new(model, base_url);
        reqwest::Url::parse(&config.base_url)
            .map_err(|err| malformed(spec, &format!("`{base_url}` is not a valid URL ({err})")))?;
        Ok(config)
    }
}

fn malformed(spec: &str, why: &str) -> Error {
    Error::InvalidInput(format!(
        "malformed model spec `{spec}`: {why}; expected openai:<model>@<base-url>, \
         e.g. openai:gpt-4o-mini@https://api.openai.com/v1 or openai:qwen@http://127.0.0.1:8080/v1"
    ))
}

/// Shows whether a key is set, never the key: configs end up in logs.
impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

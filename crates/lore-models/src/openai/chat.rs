use std::io::BufReader;

use lore_core::{ChatModel, Error, FinishReason, Generation, GenerationOptions, Message, ReplyFormat, Result};
use reqwest::blocking::Response;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use super::OpenAiConfig;
use super::endpoint::{Endpoint, is_timeout, root_cause, unexpected_body};
use super::sse::SseReader;

const CHUNK_SHAPE: &str = r#"a chat completion chunk ({"choices":[{"delta":{"content":"…"}}]})"#;
const COMPLETION_SHAPE: &str = r#"a chat completion ({"choices":[{"message":{"content":"…"}}]})"#;
const LOGPROBS_SHAPE: &str =
    r#"a chat completion with logprobs ({"choices":[{"logprobs":{"content":[{"top_logprobs":[…]}]}}]})"#;

/// How many of the most likely first tokens [`OpenAiChat::choice_probabilities`] asks for: the
/// most OpenAI's API allows.
const TOP_LOGPROBS: usize = 20;

/// A chat model behind an OpenAI-compatible `/chat/completions` endpoint, streamed.
///
/// Token counts come from the server's `usage` (asked for with `stream_options.include_usage`).
/// A server that sends none gets `completion_tokens` = the number of content pieces it streamed
/// (servers send about one token per piece) and `prompt_tokens` = 0, meaning unknown.
///
/// A server that ignores `stream: true` and answers with one JSON completion is understood too;
/// `on_token` then gets the whole text at once.
///
/// [`choice_probabilities`](ChatModel::choice_probabilities) asks for one token with the
/// 20 most likely first tokens (`logprobs`, `top_logprobs`), which the server must
/// support (OpenAI, vLLM and llama.cpp's server do).
///
/// The client is blocking: call it from a thread where blocking is allowed (in async code, via
/// `spawn_blocking`).
pub struct OpenAiChat {
    endpoint: Endpoint,
    id: String,
}

impl OpenAiChat {
    /// Sends nothing yet: an unreachable server shows on the first `chat`.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let id = config.spec();
        Ok(OpenAiChat { endpoint: Endpoint::new(config)?, id })
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    stream: bool,
    stream_options: StreamOptions,
    max_tokens: usize,
    temperature: f32,
    top_p: f32,
    seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
}

/// OpenAI's `response_format`: `{"type": "json_object"}`.
#[derive(Serialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A request for the distribution of the reply's first token.
#[derive(Serialize)]
struct LogprobsRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    max_tokens: usize,
    logprobs: bool,
    top_logprobs: usize,
}

#[derive(Deserialize)]
struct LogprobsCompletion {
    choices: Vec<LogprobsChoice>,
}

#[derive(Deserialize)]
struct LogprobsChoice {
    logprobs: Option<Logprobs>,
}

#[derive(Deserialize)]
struct Logprobs {
    content: Option<Vec<TokenLogprobs>>,
}

#[derive(Deserialize)]
struct TokenLogprobs {
    #[serde(default)]
    top_logprobs: Vec<TokenLogprob>,
}

#[derive(Deserialize)]
struct TokenLogprob {
    token: String,
    logprob: f64,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChatChunk {
    choices: Vec<ChunkChoice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<CompletionChoice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: Delta,
    finish_reason: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
}

/// What has arrived of a streamed answer.
#[derive(Default)]
struct Received {
    text: String,
    pieces: usize,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Received {
    fn add_piece(&mut self, piece: &str, on_token: &mut dyn FnMut(&str)) {
        if !piece.is_empty() {
            on_token(piece);
            self.text.push_str(piece);
            self.pieces += 1;
        }
    }

    fn so_far(&self) -> String {
        let pieces = if self.pieces == 1 { "piece" } else { "pieces" };
        format!("{} characters in {} {pieces} had arrived", self.text.chars().count(), self.pieces)
    }

    fn into_generation(self, finish: FinishReason) -> Generation {
        let (prompt_tokens, completion_tokens) = match self.usage {
            Some(usage) => (usage.prompt_tokens, usage.completion_tokens),
            None => (0, self.pieces),
        };
        Generation { text: self.text, prompt_tokens, completion_tokens, finish }
    }
}

impl ChatModel for OpenAiChat {
    fn id(&self) -> &str {
        &self.id
    }

    fn chat(
        &self,
        messages: &[Message],
        options: &GenerationOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let request = ChatRequest {
            model: &self.endpoint.config().model,
            messages,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
            max_tokens: options.max_tokens,
            temperature: options.temperature,
            top_p: options.top_p,
            seed: options.seed,
            response_format: match options.format {
                ReplyFormat::Text => None,
                ReplyFormat::Json => Some(ResponseFormat { kind: "json_object" }),
            },
        };
        let url = self.endpoint.url("chat/completions");
        let response = self.endpoint.post("chat/completions", &request)?;
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if is_json {
            self.read_completion(&url, response, on_token)
        } else {
            self.read_stream(&url, response, on_token)
        }
    }

    /// Sums, for each choice, the probabilities of the top first tokens that spell it in any
    /// case and with or without leading spaces ("Yes", " yes" for "yes"), then normalises over
    /// the choices. A choice must be a single token of the server's model to be found.
    fn choice_probabilities(&self, messages: &[Message], choices: &[&str]) -> Result<Vec<f32>> {
        if let Some(empty) = choices.iter().find(|choice| choice.trim().is_empty()) {
            return Err(Error::InvalidInput(format!("choice {empty:?} has no tokens")));
        }
        let request = LogprobsRequest {
            model: &self.endpoint.config().model,
            messages,
            max_tokens: 1,
            logprobs: true,
            top_logprobs: TOP_LOGPROBS,
        };
        let url = self.endpoint.url("chat/completions");
        let response = self.endpoint.post("chat/completions", &request)?;
        let body = self.endpoint.read_body(&url, response)?;
        let completion: LogprobsCompletion =
            serde_json::from_slice(&body).map_err(|err| unexpected_body(&url, LOGPROBS_SHAPE, &body, &err))?;
        let top = completion
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.logprobs)
            .and_then(|logprobs| logprobs.content)
            .and_then(|content| content.into_iter().next())
            .map(|first| first.top_logprobs)
            .filter(|top| !top.is_empty())
            .ok_or_else(|| {
                Error::Endpoint(format!(
                    "{url} answered without the logprobs of the first token, so choices cannot be scored; \
                     use a server that supports `logprobs` and `top_logprobs` (OpenAI, vLLM, llama.cpp's \
                     server) or a local model"
                ))
            })?;
        let mass: Vec<f64> = choices
            .iter()
            .map(|choice| {
                let choice = choice.trim().to_lowercase();
                top.iter().filter(|t| t.token.trim_start().to_lowercase() == choice).map(|t| t.logprob.exp()).sum()
            })
            .collect();
        let total: f64 = mass.iter().sum();
        if total <= 0.0 {
            let seen: Vec<&str> = top.iter().map(|t| t.token.as_str()).collect();
            return Err(Error::Endpoint(format!(
                "none of the choices {choices:?} is among the {} most likely first tokens of {} ({seen:?}); \
                 ask for one of them explicitly in the prompt",
                top.len(),
                self.endpoint.config().model
            )));
        }
        Ok(mass.into_iter().map(|m| (m / total) as f32).collect())
    }
}

impl OpenAiChat {
    fn read_stream(&self, url: &str, response: Response, on_token: &mut dyn FnMut(&str)) -> Result<Generation> {
        let mut events = SseReader::new(BufReader::new(response));
        let mut received = Received::default();
        loop {
            let data = match events.next_data() {
                Ok(Some(data)) => data,
                Ok(None) => break,
                Err(err) if is_timeout(&err) => {
                    return Err(Error::Endpoint(format!(
                        "{}; {}, the partial answer was discarded",
                        self.endpoint.timeout_message(url),
                        received.so_far()
                    )));
                }
                Err(err) => {
                    return Err(Error::Endpoint(format!(
                        "the answer streamed from {url} broke off ({}) after {}; the partial answer \
                         was discarded",
                        root_cause(&err),
                        received.so_far()
                    )));
                }
            };
            if data == "[DONE]" {
                let finish = received.finish.unwrap_or(FinishReason::Stop);
                return Ok(received.into_generation(finish));
            }
            let chunk: ChatChunk = parse_event(url, &data)?;
            received.usage = chunk.usage.or(received.usage);
            // Only one choice is asked for (no `n`), so any other would be a server's quirk.
            if let Some(choice) = chunk.choices.into_iter().next() {
                received.add_piece(choice.delta.content.as_deref().unwrap_or_default(), on_token);
                if let Some(reason) = choice.finish_reason {
                    received.finish = Some(finish_reason(url, &reason, &received)?);
                }
            }
        }
        // Servers that end the stream without `[DONE]` still said the answer was complete
        // through its finish reason; without either, the answer was cut short.
        match received.finish {
            Some(finish) => Ok(received.into_generation(finish)),
            None => Err(Error::Endpoint(format!(
                "the answer streamed from {url} ended before the server said it was complete \
                 (no finish_reason, no [DONE]); {}, the partial answer was discarded",
                received.so_far()
            ))),
        }
    }

    fn read_completion(&self, url: &str, response: Response, on_token: &mut dyn FnMut(&str)) -> Result<Generation> {
        let body = self.endpoint.read_body(url, response)?;
        let completion: Completion =
            serde_json::from_slice(&body).map_err(|err| unexpected_body(url, COMPLETION_SHAPE, &body, &err))?;
        let Some(choice) = completion.choices.into_iter().next() else {
            return Err(Error::Endpoint(format!("{url} answered a chat completion without any choice")));
        };
        let mut received = Received { usage: completion.usage, ..Received::default() };
        received.add_piece(choice.message.content.as_deref().unwrap_or_default(), on_token);
        let finish = match choice.finish_reason {
            Some(reason) => finish_reason(url, &reason, &received)?,
            None => FinishReason::Stop,
        };
        Ok(received.into_generation(finish))
    }
}

/// A stream event: a chunk, or an error the server reports in the middle of the stream.
fn parse_event(url: &str, data: &str) -> Result<ChatChunk> {
    let json: serde_json::Value =
        serde_json::from_str(data).map_err(|err| unexpected_body(url, CHUNK_SHAPE, data.as_bytes(), &err))?;
    if let Some(error) = json.get("error") {
        let message = error.get("message").unwrap_or(error);
        let message = message.as_str().map_or_else(|| message.to_string(), str::to_owned);
        return Err(Error::Endpoint(format!("{url} reported an error while answering: {message}")));
    }
    serde_json::from_value(json).map_err(|err| unexpected_body(url, CHUNK_SHAPE, data.as_bytes(), &err))
}

/// `length` means `max_tokens` was reached; a content filter's cut is not an answer; every other
/// reason (`stop`, and the `eos` some servers send) ends a complete turn.
fn finish_reason(url: &str, reason: &str, received: &Received) -> Result<FinishReason> {
    match reason {
        "length" => Ok(FinishReason::Length),
        "content_filter" => Err(Error::Endpoint(format!(
            "{url} stopped the answer with its content filter; {}, the partial answer was discarded",
            received.so_far()
        ))),
        _ => Ok(FinishReason::Stop),
    }
}

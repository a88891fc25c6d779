use serde::{Deserialize, Serialize};

use crate::Result;

/// Who says a [`Message`] in a chat, as chat templates and OpenAI's API name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person asking.
    User,
    /// The model's earlier replies.
    Assistant,
}

/// One turn of a chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A system message: instructions.
    pub fn system(content: impl Into<String>) -> Self {
        Message { role: Role::System, content: content.into() }
    }
    /// A user message: the question or request.
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: Role::User, content: content.into() }
    }
}

/// Sampling settings. `temperature == 0` means greedy decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationOptions {
    /// The most tokens the reply may have; reaching it ends the reply with [`FinishReason::Length`].
    pub max_tokens: usize,
    /// Softens (above 1) or sharpens (below 1) the token distribution; 0 is greedy.
    pub temperature: f32,
    /// Nucleus sampling: only the most likely tokens whose probabilities sum to `top_p` are drawn from.
    pub top_p: f32,
    /// Seeds the sampler, so a call with the same options is reproducible.
    pub seed: u64,
    /// What the reply must be: free text, or one JSON object (OpenAI's `response_format`).
    pub format: ReplyFormat,
}

/// The form a reply is held to while it is generated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyFormat {
    /// Any text.
    #[default]
    Text,
    /// One JSON object and nothing after it. A local model can only write tokens that keep the
    /// reply a valid beginning of one, and stops when the object closes, so even a small model
    /// cannot break it; a reply cut by `max_tokens` is still unfinished. Remote servers are asked
    /// with `response_format: {"type": "json_object"}`, which OpenAI accepts only when the
    /// messages say "JSON".
    Json,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        GenerationOptions { max_tokens: 512, temperature: 0.0, top_p: 1.0, seed: 42, format: ReplyFormat::Text }
    }
}

/// Why a reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model ended its turn.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

/// A chat model's reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The reply's text.
    pub text: String,
    /// Tokens of the prompt as the model read it; 0 where a remote server does not say.
    pub prompt_tokens: usize,
    /// Tokens of the reply.
    pub completion_tokens: usize,
    /// Why the reply ended.
    pub finish: FinishReason,
}

/// A chat model, local or remote. The pipeline only sees this trait.
pub trait ChatModel: Send + Sync {
    /// The model's name as it was given (a registry name, a path, an `openai:` spec).
    fn id(&self) -> &str;
    /// Generates the assistant's reply, calling `on_token` with each new piece of text as it
    /// is produced; the returned text is the concatenation of those pieces.
    fn chat(
        &self,
        messages: &[Message],
        options: &GenerationOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation>;

    /// How likely the reply to `messages` is to begin with each of `choices` (such as `"yes"`
    /// and `"no"`), as probabilities that sum to 1 over the choices; compares each choice's first
    /// token. Scores a prompt without generating text: relevance grading, classification.
    fn choice_probabilities(&self, messages: &[Message], choices: &[&str]) -> Result<Vec<f32>>;
}

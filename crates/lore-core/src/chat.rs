use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message { role: Role::System, content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: Role::User, content: content.into() }
    }
}

/// Sampling settings. `temperature == 0` means greedy decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationOptions {
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        GenerationOptions { max_tokens: 512, temperature: 0.0, top_p: 1.0, seed: 42 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model ended its turn.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish: FinishReason,
}

/// A chat model, local or remote. The pipeline only sees this trait.
pub trait ChatModel: Send + Sync {
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

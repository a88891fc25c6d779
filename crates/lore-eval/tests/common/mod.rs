//! A chat model that plays back a script, standing in for a judge model: a real model cannot be
//! made to give a chosen verdict or a chosen malformed reply on demand.

use std::collections::VecDeque;
use std::sync::Mutex;

use lore_core::{ChatModel, Error, FinishReason, Generation, GenerationOptions, Message, Result};

pub struct Scripted {
    replies: Mutex<VecDeque<String>>,
    conversations: Mutex<Vec<Vec<Message>>>,
}

impl Scripted {
    pub fn new<S: Into<String>>(replies: impl IntoIterator<Item = S>) -> Scripted {
        Scripted {
            replies: Mutex::new(replies.into_iter().map(Into::into).collect()),
            conversations: Mutex::new(Vec::new()),
        }
    }

    /// The messages of every call, in order.
    pub fn conversations(&self) -> Vec<Vec<Message>> {
        self.conversations.lock().expect("lock").clone()
    }

    pub fn calls(&self) -> usize {
        self.conversations.lock().expect("lock").len()
    }
}

impl ChatModel for Scripted {
    fn id(&self) -> &str {
        "scripted"
    }

    fn chat(&self, messages: &[Message], _: &GenerationOptions, on_token: &mut dyn FnMut(&str)) -> Result<Generation> {
        self.conversations.lock().expect("lock").push(messages.to_vec());
        let text = self
            .replies
            .lock()
            .expect("lock")
            .pop_front()
            .ok_or_else(|| Error::Endpoint("the script has no reply left".into()))?;
        on_token(&text);
        Ok(Generation { text, prompt_tokens: 0, completion_tokens: 0, finish: FinishReason::Stop })
    }

    fn choice_probabilities(&self, _: &[Message], _: &[&str]) -> Result<Vec<f32>> {
        Err(Error::Endpoint("a scripted model does not score choices".into()))
    }
}

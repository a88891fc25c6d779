//! Local models on candle and remote models over OpenAI-compatible HTTP, behind the
//! `lore_core::Embedder` and `lore_core::ChatModel` traits, plus the registry that installs them.

mod gguf;
pub use gguf::{GgufChatModel, RequantizeReport, requantize_slow_types};

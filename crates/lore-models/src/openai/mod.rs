//! Chat and embedding models behind an OpenAI-compatible HTTP API (OpenAI, llama.cpp's
//! `llama-server`, vLLM, Ollama's `/v1`), with blocking calls to match `lore_core`'s traits.

mod chat;
mod config;
mod embed;
mod endpoint;
mod sse;

pub use chat::OpenAiChat;
pub use config::OpenAiConfig;
pub use embed::OpenAiEmbedder;

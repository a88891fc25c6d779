//! Local models on candle and remote models over OpenAI-compatible HTTP, behind the
//! `lore_core::Embedder` and `lore_core::ChatModel` traits, plus the registry that installs them.

mod embed;
mod gguf;
mod openai;
mod registry;
mod resolve;
mod threads;

pub use embed::{BertEmbedder, E5s1Embedder};
pub use gguf::{GgufChatModel, PrefillWeights, RequantizeReport, requantize_slow_types};
pub use openai::{OpenAiChat, OpenAiConfig, OpenAiEmbedder};
pub use registry::{InstallEvent, ModelRole, ModelSpec, install, lore_home, models_dir, registry, spec};
pub use resolve::{load_chat, load_embedder};
pub use threads::set_threads;

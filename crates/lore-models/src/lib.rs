//! Local models (BERT embedders and cross-encoders on Lore's own encoder, GGUF chat models on
//! candle) and remote models over OpenAI-compatible HTTP, behind the `lore_core::Embedder`,
//! `lore_core::ChatModel` and `lore_core::Reranker` traits, plus the registry that installs them.
//!
//! A model is named as a user types it: a registry name (`e5-small`, `qwen-0.5b`), a path (an
//! HF-layout folder, an E5S1 or GGUF file) or a remote spec (`openai:MODEL@BASE_URL`).
//! [`load_embedder`], [`load_chat`] and [`load_reranker`] turn the name into a model; a registry
//! model must first be [`install`]ed under Lore's home.
//!
//! ```
//! use lore_core::ErrorKind;
//! use lore_models::{ModelRole, OpenAiConfig, load_embedder, spec};
//!
//! // The registry knows each model's role and where it comes from.
//! let e5 = spec("e5-small").unwrap();
//! assert_eq!(e5.role, ModelRole::Embedder);
//! assert_eq!(spec("no-such-model").unwrap_err().kind(), ErrorKind::NotFound);
//!
//! // A registry model that is not installed yet is refused with what to run.
//! let home = tempfile::tempdir().unwrap();
//! let error = load_embedder("e5-small", home.path()).err().unwrap();
//! assert_eq!(error.kind(), ErrorKind::NotFound);
//! assert!(error.to_string().contains("lore models pull e5-small"));
//!
//! // Remote models are named by a spec string.
//! let remote: OpenAiConfig = "openai:nomic-embed-text@http://127.0.0.1:11434/v1".parse().unwrap();
//! assert_eq!(remote.model, "nomic-embed-text");
//! ```
//!
//! # Threads
//!
//! candle sizes its CPU thread pools from the environment variables [`THREAD_VARIABLES`]
//! (`CANDLE_NUM_THREADS` and `RAYON_NUM_THREADS`), read as models run; unset, it uses
//! every physical core. Changing the environment is only sound before the process starts a
//! second thread, which a library cannot know, so a program that lets its user choose the
//! number sets both variables at the very start of `main`, then calls [`set_threads`] for
//! rayon's global pool, where the embedders and cross-encoders run:
//!
//! ```no_run
//! fn main() {
//!     let threads: usize = 2; // from the command line or the settings, read without threads
//!     for variable in lore_models::THREAD_VARIABLES {
//!         // SAFETY: no other thread exists yet, so nothing reads the environment meanwhile.
//!         unsafe { std::env::set_var(variable, threads.to_string()) };
//!     }
//!     lore_models::set_threads(threads);
//!     // … only now start threads, load models, serve …
//! }
//! ```

#![warn(missing_docs)]
// The example above shows the start of a program's `main`, which is its point.
#![allow(clippy::needless_doctest_main)]

mod cross_encoder;
mod embed;
mod encoder;
mod gguf;
mod openai;
mod registry;
mod resolve;
mod threads;

pub use cross_encoder::CrossEncoder;
pub use embed::{BertEmbedder, E5s1Embedder};
pub use gguf::{GgufChatModel, PrefillWeights, RequantizeReport, requantize_slow_types};
pub use openai::{OpenAiChat, OpenAiConfig, OpenAiEmbedder};
pub use registry::{InstallEvent, ModelRole, ModelSpec, install, lore_home, models_dir, registry, spec};
pub use resolve::{load_chat, load_embedder, load_reranker};
pub use threads::{THREAD_VARIABLES, set_threads};

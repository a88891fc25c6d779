//! From what a user types (`e5-small`, `./my-bert/`, `model.gguf`, `openai:gpt-4o-mini@URL`) to a
//! loaded model.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use lore_core::{ChatModel, Embedder, Error, Reranker, Result};

use crate::registry::{ModelRole, spec};
use crate::{BertEmbedder, CrossEncoder, E5s1Embedder, GgufChatModel, OpenAiChat, OpenAiConfig, OpenAiEmbedder};

/// Loads an embedder named in the registry, given by path (an HF-layout BERT folder or an E5S1
/// file), or served remotely (`openai:MODEL@BASE_URL`). Its id is the name as given.
pub fn load_embedder(name: &str, home: &Path) -> Result<Box<dyn Embedder>> {
    if name.starts_with("openai:") {
        return Ok(Box::new(OpenAiEmbedder::new(name.parse::<OpenAiConfig>()?.with_api_key_from_env())?));
    }
    let path = local_path(name, home, ModelRole::Embedder)?;
    if path.is_dir() {
        return Ok(Box::new(BertEmbedder::load(&path, name)?));
    }
    match magic(&path)? {
        m if &m == b"E5S1" => Ok(Box::new(E5s1Embedder::load(&path, name)?)),
        _ => Err(Error::InvalidInput(format!(
            "{} is neither an HF-layout BERT folder (config.json, model.safetensors, tokenizer.json) nor an E5S1 file",
            path.display()
        ))),
    }
}

/// Loads a chat model named in the registry, given by path (a GGUF file), or served remotely
/// (`openai:MODEL@BASE_URL`, API key from `OPENAI_API_KEY`).
pub fn load_chat(name: &str, home: &Path) -> Result<Box<dyn ChatModel>> {
    if name.starts_with("openai:") {
        return Ok(Box::new(OpenAiChat::new(name.parse::<OpenAiConfig>()?.with_api_key_from_env())?));
    }
    let path = local_path(name, home, ModelRole::Generator)?;
    Ok(Box::new(GgufChatModel::load(&path, name)?))
}

/// Loads a cross-encoder given by path (an HF-layout BertForSequenceClassification folder) or
/// by the name of a folder in the models directory. Its id is the name as given.
pub fn load_reranker(name: &str, home: &Path) -> Result<Box<dyn Reranker>> {
    let given = Path::new(name);
    let path = if given.exists() { given.to_path_buf() } else { crate::models_dir(home).join(name) };
    if !path.is_dir() {
        return Err(Error::NotFound(format!(
            "no cross-encoder '{name}': give the path of an HF-layout BertForSequenceClassification folder \
             (config.json, model.safetensors, tokenizer.json), or put that folder in {}",
            crate::models_dir(home).display()
        )));
    }
    Ok(Box::new(CrossEncoder::load(&path, name)?))
}

fn local_path(name: &str, home: &Path, role: ModelRole) -> Result<std::path::PathBuf> {
    let given = Path::new(name);
    if given.exists() {
        return Ok(given.to_path_buf());
    }
    let spec = spec(name)?;
    if spec.role != role {
        return Err(Error::Unsupported(format!("'{name}' is a {:?} model, not a {role:?}", spec.role).to_lowercase()));
    }
    if !spec.is_installed(home) {
        return Err(Error::ModelMissing { name: name.to_string() });
    }
    Ok(spec.load_path(home))
}

/// The first four bytes of the file at `path`.
fn magic(path: &Path) -> Result<[u8; 4]> {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).map_err(|e| match e.kind() {
        // Shorter than any model file.
        io::ErrorKind::UnexpectedEof => Error::InvalidInput(format!("cannot read {}: {e}", path.display())),
        _ => Error::io(path)(e),
    })?;
    Ok(magic)
}

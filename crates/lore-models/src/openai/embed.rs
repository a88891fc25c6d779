use lore_core::{EmbedKind, Embedder, Error, Result, Tokenize};
use serde::{Deserialize, Serialize};

use super::OpenAiConfig;
use super::endpoint::{Endpoint, unexpected_body};

const EMBEDDINGS_SHAPE: &str = r#"embeddings ({"data":[{"index":0,"embedding":[…]}]})"#;

/// An embedding model behind an OpenAI-compatible `/embeddings` endpoint.
///
/// The dimension is learned by embedding one short text when the embedder is created, so that
/// `dimension()` is right before any collection is made with it (and a wrong URL or model
/// shows at once). Texts are sent in batches of `batch_size` (32 by default); the vectors come
/// back in input order and L2-normalised, whatever the server does.
///
/// The client is blocking: call it from a thread where blocking is allowed.
pub struct OpenAiEmbedder {
    endpoint: Endpoint,
    id: String,
    dimension: usize,
    batch_size: usize,
    max_tokens: usize,
    query_prefix: String,
    passage_prefix: String,
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

impl OpenAiEmbedder {
    /// Connects to the server and learns the model's dimension from one embedding.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let id = config.spec();
        let endpoint = Endpoint::new(config)?;
        let probe = request_embeddings(&endpoint, &["dimension probe".to_owned()])?;
        let dimension = probe.first().map_or(0, Vec::len);
        Ok(OpenAiEmbedder {
            endpoint,
            id,
            dimension,
            batch_size: 32,
            // The server's limit is unknown; 512 tokens fits every common embedding model.
            max_tokens: 512,
            query_prefix: String::new(),
            passage_prefix: String::new(),
        })
    }

    /// How many texts one request carries (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Text put before queries and passages, for models trained with such markers (E5's
    /// `"query: "` and `"passage: "`). Empty by default.
    pub fn with_prefixes(mut self, query_prefix: impl Into<String>, passage_prefix: impl Into<String>) -> Self {
        self.query_prefix = query_prefix.into();
        self.passage_prefix = passage_prefix.into();
        self
    }

    /// The longest input the server's model takes, reported by `max_tokens()` (512 by default).
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens;
        self
    }
}

impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        None
    }

    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let prefix = match kind {
            EmbedKind::Query => &self.query_prefix,
            EmbedKind::Passage => &self.passage_prefix,
        };
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            let inputs: Vec<String> = batch.iter().map(|text| format!("{prefix}{text}")).collect();
            for vector in request_embeddings(&self.endpoint, &inputs)? {
                if vector.len() != self.dimension {
                    return Err(Error::Endpoint(format!(
                        "{} returned a vector of dimension {} where the model gave {} before; \
                         is another model now served under the name `{}`?",
                        self.endpoint.url("embeddings"),
                        vector.len(),
                        self.dimension,
                        self.endpoint.config().model
                    )));
                }
                vectors.push(vector);
            }
        }
        Ok(vectors)
    }
}

/// One request: a unit vector per input, in input order, all of one dimension.
fn request_embeddings(endpoint: &Endpoint, inputs: &[String]) -> Result<Vec<Vec<f32>>> {
    let url = endpoint.url("embeddings");
    let request = EmbeddingRequest { model: &endpoint.config().model, input: inputs };
    let response = endpoint.post("embeddings", &request)?;
    let body = endpoint.read_body(&url, response)?;
    let mut response: EmbeddingResponse =
        serde_json::from_slice(&body).map_err(|err| unexpected_body(&url, EMBEDDINGS_SHAPE, &body, &err))?;
    response.data.sort_by_key(|item| item.index);
    if response.data.len() != inputs.len() {
        return Err(Error::Endpoint(format!(
            "{url} returned {} embeddings for {} inputs; expected one per input",
            response.data.len(),
            inputs.len()
        )));
    }
    if !response.data.iter().map(|item| item.index).eq(0..inputs.len()) {
        return Err(Error::Endpoint(format!(
            "{url} returned embeddings with repeated or out-of-range indices; expected 0 to {}",
            inputs.len() - 1
        )));
    }
    let dimension = response.data.first().map_or(0, |item| item.embedding.len());
    response
        .data
        .into_iter()
        .map(|item| {
            if dimension == 0 || item.embedding.len() != dimension {
                return Err(Error::Endpoint(format!(
                    "{url} returned vectors of different or zero dimensions ({} and {dimension})",
                    item.embedding.len()
                )));
            }
            normalized(item.embedding).ok_or_else(|| {
                Error::Endpoint(format!(
                    "{url} returned a zero or non-finite vector for input {}; it cannot be normalised",
                    item.index
                ))
            })
        })
        .collect()
}

fn normalized(mut vector: Vec<f32>) -> Option<Vec<f32>> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_normal() {
        return None;
    }
    vector.iter_mut().for_each(|x| *x /= norm);
    Some(vector)
}

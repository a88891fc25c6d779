//! Quantized GGUF chat models (Qwen2, SmolLM2 and other ChatML models) on the CPU: Lore's own
//! Q8_0 and Q4_K kernel and candle's.

mod attend;
mod grouped;
mod json;
mod linear;
mod model;
mod requantize;
mod rows;
mod tokenizer;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use candle_core::Tensor;
use candle_core::quantized::gguf_file::Content;
use candle_transformers::generation::LogitsProcessor;
use lore_core::{ChatModel, Error, FinishReason, Generation, GenerationOptions, Message, ReplyFormat, Result, Role};

use json::JsonPrefix;
use linear::Pass;
pub use linear::PrefillWeights;
use model::Transformer;
pub use requantize::{RequantizeReport, requantize_slow_types};
use tokenizer::{GgufTokenizer, Utf8Stream};

/// The values of `general.architecture` that can be loaded.
const SUPPORTED_ARCHITECTURES: &[&str] = &["qwen2", "llama"];

/// Prompts are fed in chunks of this many tokens: the attention scores of one chunk stay small
/// however long the prompt is, and a cached prefix is reused in whole chunks. Smaller chunks
/// would reuse more but multiply slower: an f32 product through Qwen2 0.5B's `ffn_up` ran at 67
/// GFLOP/s with 128 rows, 62 with 64 and 77 with 512 (one core of the development machine).
const PREFILL_CHUNK: usize = 128;

/// How many of the most likely tokens a JSON reply's next token is chosen from, when any fits.
const JSON_CANDIDATES: usize = 256;

/// A chat model read from a GGUF file, run on the CPU.
///
/// The prompt is rendered with the ChatML template (`<|im_start|>role\ncontent<|im_end|>\n` per
/// message, then `<|im_start|>assistant\n`) exactly as given: no default system message is
/// added. Generation stops at `<|im_end|>`, `<|endoftext|>` or the file's eos token; a prompt
/// whose length plus `max_tokens` exceeds [`context_length`](Self::context_length) is refused
/// rather than silently cut. Temperature 0 is greedy; otherwise temperature and top-p sampling
/// seeded by `seed`, so a call is reproducible. With [`ReplyFormat::Json`] only tokens that
/// keep the reply a valid beginning of one JSON object can be chosen, and the reply ends when
/// the object closes.
///
/// Threads: candle reads `CANDLE_NUM_THREADS` (quantized matrix products) and
/// `RAYON_NUM_THREADS` (the other operations) once, when the first model runs; both default to
/// the number of physical cores. Set them in the environment of the process to change it. On a
/// machine whose cores are busy with other work, use 1: candle's workers meet at a barrier after
/// every matrix product, and one descheduled worker stalls them all (measured on a loaded 2-core
/// machine: decode 10 to 20 times slower with 2 threads than with 1).
///
/// Speed: Q8_0 and Q4_K weights, and Q6_K weights rewritten as Q8_0 when the model loads, are
/// multiplied by Lore's own kernel (weights rearranged in groups of eight rows, AVX2 chosen at
/// run time), which reads them at about the memory's speed when a reply is decoded one token at
/// a time; other types use candle's kernels. A prompt goes through an f32 copy of each weight
/// whose quantized kernel is slower for its type and shape, measured when the model loads
/// ([`PrefillWeights`]).
///
/// Prefix reuse: the keys and values of the last call's prompt stay cached, and a call whose
/// prompt starts with the same tokens computes only the rest (from the last multiple of 128
/// tokens within the shared part). Prompts that share their
/// instructions and question and differ in a passage (an LLM reranker's, a judge's) pay for the
/// shared part once. The reply's keys and values are not reused: they come from the quantized
/// weights, and a fresh run would compute those tokens as prompt. Results do not depend on what
/// was cached, to the bit.
///
/// `completion_tokens` counts the tokens of the reply, not the stop token. When `max_tokens`
/// ends the reply inside a character spread over several tokens, that partial character is
/// dropped, so the text is always valid and equal to the concatenation of the streamed pieces.
///
/// One model serves one generation at a time: concurrent calls wait for each other.
pub struct GgufChatModel {
    id: String,
    tokenizer: GgufTokenizer,
    context_length: usize,
    transformer: Mutex<Transformer>,
}

impl GgufChatModel {
    /// Reads the model at `path`; `id` is the name [`ChatModel::id`] reports.
    pub fn load(path: &Path, id: &str) -> Result<GgufChatModel> {
        Self::load_with(path, id, PrefillWeights::default())
    }

    /// [`load`](Self::load), choosing which form of the weights prompts are multiplied with.
    pub fn load_with(path: &Path, id: &str, prefill_weights: PrefillWeights) -> Result<GgufChatModel> {
        let file = File::open(path).map_err(Error::io(path))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)
            .map_err(|e| Error::Model(format!("{} is not a readable GGUF file: {e}", path.display())))?;
        let architecture =
            content.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().ok_or_else(
                || Error::Model(format!("{} has no general.architecture in its metadata", path.display())),
            )?;
        if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(Error::Unsupported(format!(
                "{}: architecture '{architecture}' is not supported; supported: {}",
                path.display(),
                SUPPORTED_ARCHITECTURES.join(", ")
            )));
        }
        let context_length = content
            .metadata
            .get(&format!("{architecture}.context_length"))
            .and_then(|v| v.to_u64().ok())
            .ok_or_else(|| Error::Model(format!("{} has no {architecture}.context_length", path.display())))?
            as usize;
        let tokenizer =
            GgufTokenizer::from_gguf(&content).map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;

        let transformer = Transformer::load(&content, &mut reader, &architecture, context_length, prefill_weights)
            .map_err(|e| Error::Model(format!("cannot load the weights of {}: {e}", path.display())))?;
        Ok(GgufChatModel { id: id.to_string(), tokenizer, context_length, transformer: Mutex::new(transformer) })
    }

    /// The most tokens (prompt and reply together) one call can use.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The token ids of `text`, read as plain text: `"<|im_end|>"` in a document is text, not the
    /// control token.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text)
    }

    /// The token ids the model is given for `messages`: the ChatML prompt, ending with the
    /// opening of the assistant's turn.
    pub fn prompt_tokens(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let tokenizer = &self.tokenizer;
        let mut ids = Vec::new();
        for message in messages {
            let role = match message.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            ids.push(tokenizer.im_start);
            ids.extend(tokenizer.encode(&format!("{role}\n{}", message.content))?);
            ids.push(tokenizer.im_end);
            ids.extend(tokenizer.encode("\n")?);
        }
        ids.push(tokenizer.im_start);
        ids.extend(tokenizer.encode("assistant\n")?);
        Ok(ids)
    }
}

impl ChatModel for GgufChatModel {
    fn id(&self) -> &str {
        &self.id
    }

    fn chat(
        &self,
        messages: &[Message],
        options: &GenerationOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        if options.max_tokens == 0 {
            return Err(Error::InvalidInput("max_tokens must be at least 1".into()));
        }
        if options.temperature.is_nan() || options.temperature < 0.0 {
            return Err(Error::InvalidInput(format!(
                "temperature must be 0 (greedy) or positive, not {}",
                options.temperature
            )));
        }
        if !(options.top_p > 0.0 && options.top_p <= 1.0) {
            return Err(Error::InvalidInput(format!("top_p must be in (0, 1], not {}", options.top_p)));
        }
        let prompt = self.prompt_tokens(messages)?;
        let needed = prompt.len() + options.max_tokens;
        if needed > self.context_length {
            return Err(Error::InvalidInput(format!(
                "the prompt has {} tokens and max_tokens is {}: {needed} tokens exceed the context of {} ({}); shorten the prompt or lower max_tokens",
                prompt.len(),
                options.max_tokens,
                self.context_length,
                self.id
            )));
        }
        let temperature = (options.temperature > 0.0).then_some(f64::from(options.temperature));
        let top_p = (options.top_p < 1.0).then_some(f64::from(options.top_p));
        let mut sampler = LogitsProcessor::new(options.seed, temperature, top_p);
        let generation_error = |e: candle_core::Error| Error::Model(format!("generation with {} failed: {e}", self.id));

        let mut transformer = self.transformer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut logits = prefill(&mut transformer, &prompt).map_err(generation_error)?;

        let mut text = String::new();
        let mut stream = Utf8Stream::default();
        let mut completion_tokens = 0;
        let mut json = (options.format == ReplyFormat::Json).then(JsonPrefix::default);
        let finish = loop {
            let next = match &mut json {
                None => sampler.sample(&logits),
                Some(prefix) => self.json_logits(prefix, &logits).and_then(|masked| sampler.sample(&masked)),
            }
            .map_err(generation_error)?;
            if self.tokenizer.stop_ids.contains(&next) {
                break FinishReason::Stop;
            }
            completion_tokens += 1;
            let piece = stream.push(self.tokenizer.bytes(next));
            if !piece.is_empty() {
                on_token(&piece);
                text.push_str(&piece);
            }
            if let Some(prefix) = &mut json {
                prefix.accepts(self.tokenizer.bytes(next));
                if prefix.is_complete() {
                    break FinishReason::Stop;
                }
            }
            if completion_tokens == options.max_tokens {
                break FinishReason::Length;
            }
            logits = transformer.forward(&[next], Pass::Reply).map_err(generation_error)?;
        };
        Ok(Generation { text, prompt_tokens: prompt.len(), completion_tokens, finish })
    }

    fn choice_probabilities(&self, messages: &[Message], choices: &[&str]) -> Result<Vec<f32>> {
        // A model may start its reply with "Yes" where the caller wrote "yes": each choice counts
        // the first tokens of its spellings with and without a capital and a leading space.
        let spellings = choices
            .iter()
            .map(|choice| {
                let mut chars = choice.chars();
                let capitalised: String = chars.next().into_iter().flat_map(char::to_uppercase).chain(chars).collect();
                let mut tokens = Vec::new();
                for spelling in [choice.to_string(), capitalised, format!(" {choice}")] {
                    let first = self.tokenizer.encode(&spelling)?.first().copied();
                    let first = first.ok_or_else(|| Error::InvalidInput(format!("choice {choice:?} has no tokens")))?;
                    if !tokens.contains(&first) {
                        tokens.push(first);
                    }
                }
                Ok(tokens)
            })
            .collect::<Result<Vec<Vec<u32>>>>()?;
        let prompt = self.prompt_tokens(messages)?;
        if prompt.len() >= self.context_length {
            return Err(Error::InvalidInput(format!(
                "the prompt has {} tokens, more than the context of {} ({})",
                prompt.len(),
                self.context_length,
                self.id
            )));
        }
        let scoring_error = |e: candle_core::Error| Error::Model(format!("scoring with {} failed: {e}", self.id));
        let mut transformer = self.transformer.lock().unwrap_or_else(PoisonError::into_inner);
        let logits = prefill(&mut transformer, &prompt).map_err(scoring_error)?;
        let logits = logits.to_vec1::<f32>().map_err(scoring_error)?;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mass: Vec<f32> =
            spellings.iter().map(|tokens| tokens.iter().map(|&t| (logits[t as usize] - max).exp()).sum()).collect();
        let total: f32 = mass.iter().sum();
        Ok(mass.into_iter().map(|m| m / total).collect())
    }
}

impl GgufChatModel {
    /// `logits` with every token that cannot continue the JSON reply `prefix` made impossible.
    /// Only the [`JSON_CANDIDATES`] most likely tokens are tried, and the whole vocabulary in
    /// order of likelihood when none of them fits: checking each of 150,000 tokens at every step
    /// would cost more than the step.
    fn json_logits(&self, prefix: &JsonPrefix, logits: &Tensor) -> candle_core::Result<Tensor> {
        let logits = logits.to_vec1::<f32>()?;
        let fits = |id: u32| {
            let bytes = self.tokenizer.bytes(id);
            !bytes.is_empty() && prefix.after(bytes).is_some()
        };
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        let by_likelihood = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
        let best = JSON_CANDIDATES.min(order.len());
        if best < order.len() {
            order.select_nth_unstable_by(best, by_likelihood);
        }
        let mut allowed: Vec<u32> = order[..best].iter().copied().filter(|&id| fits(id)).collect();
        if allowed.is_empty() {
            order.sort_unstable_by(by_likelihood);
            allowed.extend(order.iter().copied().find(|&id| fits(id)));
        }
        if allowed.is_empty() {
            return Err(candle_core::Error::Msg("no token of the vocabulary continues the JSON reply".into()));
        }
        let mut masked = vec![f32::NEG_INFINITY; logits.len()];
        for id in allowed {
            masked[id as usize] = logits[id as usize];
        }
        Tensor::from_vec(masked, logits.len(), &candle_core::Device::Cpu)
    }
}

/// Runs `prompt` after the longest cached prefix of it that ends at a chunk boundary and
/// returns the logits of the token after it.
///
/// Prompts are cut into chunks at fixed positions (multiples of [`PREFILL_CHUNK`]), and a cached
/// prefix is reused in whole chunks, so every chunk a prompt is computed from is the one a fresh
/// run would compute: a matrix kernel may round a row differently depending on the other rows of
/// its product (candle's do), and a result must not depend on what was cached.
fn prefill(transformer: &mut Transformer, prompt: &[u32]) -> candle_core::Result<Tensor> {
    let shared = transformer.cached_prompt().iter().zip(prompt).take_while(|(cached, new)| cached == new).count();
    // The last prompt token always runs: its logits are the result.
    let reused = shared.min(prompt.len().saturating_sub(1)) / PREFILL_CHUNK * PREFILL_CHUNK;
    transformer.truncate_cache(reused);
    transformer.reserve(prompt.len())?;
    let mut logits = None;
    for chunk in prompt[reused..].chunks(PREFILL_CHUNK) {
        logits = Some(transformer.forward(chunk, Pass::Prompt)?);
    }
    logits.ok_or_else(|| candle_core::Error::Msg("the prompt is empty".into()))
}

//! The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`), rebuilt as a
//! `tokenizers::Tokenizer`, and the byte-exact decoding that streaming needs.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use lore_core::{Error, Result};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// Qwen2's split pattern, as in the `tokenizer.json` Qwen publishes: unlike GPT-2 it keeps
/// each digit apart and lets a letter run take one leading punctuation mark.
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` values whose pre-tokenization is implemented here.
const SUPPORTED_PRE: &[&str] = &["qwen2", "smollm"];

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// A GPT-2 style byte-level BPE tokenizer with the ChatML control tokens.
///
/// Text is always encoded as text: a document that contains `<|im_end|>` cannot end a turn.
/// Control tokens enter a prompt only by id, through the chat template (as llama.cpp does with
/// `parse_special = false`).
pub(crate) struct GgufTokenizer {
    tokenizer: Tokenizer,
    /// The bytes each token stands for; empty for control tokens, which are not text.
    token_bytes: Vec<Vec<u8>>,
    pub(crate) im_start: u32,
    pub(crate) im_end: u32,
    /// Ids that end the assistant's turn: `<|im_end|>`, `<|endoftext|>`, the file's eos.
    pub(crate) stop_ids: Vec<u32>,
}

impl GgufTokenizer {
    pub(crate) fn from_gguf(content: &Content) -> Result<Self> {
        let model = string_value(content, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::Model(format!(
                "tokenizer.ggml.model is '{model}'; only 'gpt2' (byte-level BPE) tokenizers are supported"
            )));
        }
        let tokens = string_array(content, "tokenizer.ggml.tokens")?;
        let token_types = token_types(content, tokens.len())?;
        let merges = string_array(content, "tokenizer.ggml.merges")?
            .iter()
            .map(|merge| {
                merge.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| {
                    Error::Model(format!("tokenizer.ggml.merges has an entry without a space: '{merge}'"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.clone(), id as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::Model(format!("cannot build the BPE model from the GGUF vocabulary: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);

        let pre = string_value(content, "tokenizer.ggml.pre")?;
        match pre {
            "qwen2" => {
                tokenizer
                    .with_normalizer(Some(NFC))
                    .map_err(|e| Error::Model(format!("cannot set the NFC normalizer: {e}")))?;
                let split =
                    Split::new(SplitPattern::Regex(QWEN2_SPLIT.into()), SplitDelimiterBehavior::Isolated, false)
                        .map_err(|e| Error::Model(format!("cannot compile the Qwen2 split pattern: {e}")))?;
                tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, false, false).into(),
                ])));
            }
            // SmolLM (as StarCoder): every digit apart, then GPT-2's own split pattern.
            "smollm" => {
                tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                    Digits::new(true).into(),
                    ByteLevel::new(false, false, true).into(),
                ])));
            }
            other => {
                return Err(Error::Model(format!(
                    "tokenizer.ggml.pre '{other}' is not supported; supported: {}",
                    SUPPORTED_PRE.join(", ")
                )));
            }
        }

        // User-defined tokens (Qwen's `<tool_call>`…) are matched whole in text, as llama.cpp does.
        let user_defined: Vec<AddedToken> = tokens
            .iter()
            .zip(&token_types)
            .filter(|&(_, &kind)| kind == TOKEN_TYPE_USER_DEFINED)
            .map(|(token, _)| AddedToken::from(token.clone(), false))
            .collect();
        tokenizer
            .add_tokens(user_defined)
            .map_err(|e| Error::Model(format!("cannot add the user-defined tokens: {e}")))?;

        let byte_of_char = byte_of_char();
        let token_bytes = tokens
            .iter()
            .zip(&token_types)
            .map(|(token, &kind)| match kind {
                TOKEN_TYPE_CONTROL => Vec::new(),
                TOKEN_TYPE_USER_DEFINED => token.as_bytes().to_vec(),
                // A character outside the byte alphabet only appears in a malformed vocabulary;
                // its own UTF-8 is the best guess at what it means.
                _ => token
                    .chars()
                    .flat_map(|c| match byte_of_char.get(&c) {
                        Some(&b) => vec![b],
                        None => c.to_string().into_bytes(),
                    })
                    .collect(),
            })
            .collect();

        let control_id = |name: &str| -> Result<u32> {
            tokens
                .iter()
                .zip(&token_types)
                .position(|(token, &kind)| token == name && kind == TOKEN_TYPE_CONTROL)
                .map(|id| id as u32)
                .ok_or_else(|| {
                    Error::Model(format!(
                        "the vocabulary has no control token {name}: only ChatML chat models (Qwen2, SmolLM2) are supported"
                    ))
                })
        };
        let im_start = control_id("<|im_start|>")?;
        let im_end = control_id("<|im_end|>")?;
        let mut stop_ids = vec![im_end, control_id("<|endoftext|>")?];
        if let Some(eos) = content.metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok())
            && !stop_ids.contains(&eos)
        {
            stop_ids.push(eos);
        }

        Ok(GgufTokenizer { tokenizer, token_bytes, im_start, im_end, stop_ids })
    }

    /// The ids of `text`, taken as plain text (control-token names included).
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| Error::InvalidInput(format!("cannot tokenize the text: {e}")))
    }

    /// The bytes token `id` stands for (none for a control token or an id beyond the vocabulary).
    pub(crate) fn bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }
}

/// GPT-2's byte-level alphabet reversed: printable bytes stand for themselves, the other 68
/// bytes were moved to U+0100 and up, in byte order.
fn byte_of_char() -> HashMap<char, u8> {
    let mut shifted = 0u32;
    (0..=255u8)
        .map(|b| {
            let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
            let c = if printable {
                char::from(b)
            } else {
                shifted += 1;
                char::from_u32(255 + shifted).unwrap_or(char::REPLACEMENT_CHARACTER)
            };
            (c, b)
        })
        .collect()
}

fn metadata<'a>(content: &'a Content, key: &str) -> Result<&'a Value> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| Error::Model(format!("the GGUF metadata has no '{key}': the file carries no usable tokenizer")))
}

fn string_value<'a>(content: &'a Content, key: &str) -> Result<&'a str> {
    metadata(content, key)?
        .to_string()
        .map(String::as_str)
        .map_err(|_| Error::Model(format!("GGUF metadata '{key}' is not a string")))
}

fn string_array(content: &Content, key: &str) -> Result<Vec<String>> {
    let not_strings = || Error::Model(format!("GGUF metadata '{key}' is not an array of strings"));
    metadata(content, key)?
        .to_vec()
        .map_err(|_| not_strings())?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|_| not_strings()))
        .collect()
}

fn token_types(content: &Content, count: usize) -> Result<Vec<i32>> {
    let key = "tokenizer.ggml.token_type";
    let types = metadata(content, key)?
        .to_vec()
        .map_err(|_| Error::Model(format!("GGUF metadata '{key}' is not an array")))?
        .iter()
        .map(|v| v.to_i32().map_err(|_| Error::Model(format!("GGUF metadata '{key}' holds a non-i32 value"))))
        .collect::<Result<Vec<_>>>()?;
    if types.len() != count {
        return Err(Error::Model(format!("GGUF metadata '{key}' has {} entries for {count} tokens", types.len())));
    }
    Ok(types)
}

/// Turns a stream of token bytes into text pieces that are always whole UTF-8 characters: a
/// Chinese character spread over several byte-level tokens is held back until it is complete.
#[derive(Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds `bytes` and returns the text that is now complete (possibly empty). Bytes that can
    /// never become UTF-8 come out as U+FFFD, so a bad token cannot hold back the stream.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // Only the bytes before the error are valid UTF-8, checked just now.
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_covers_every_byte_once() {
        let map = byte_of_char();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
        assert_eq!(map[&'A'], b'A');
    }

    #[test]
    fn utf8_stream_holds_back_split_characters() {
        let mut stream = Utf8Stream::default();
        let bytes = "检索".as_bytes();
        assert_eq!(stream.push(&bytes[..2]), "");
        assert_eq!(stream.push(&bytes[2..4]), "检");
        assert_eq!(stream.push(&bytes[4..]), "索");
        assert_eq!(stream.push(&[0xFF, b'a']), "\u{FFFD}a");
    }
}

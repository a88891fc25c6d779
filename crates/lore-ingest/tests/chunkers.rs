use std::ops::Range;

use lore_core::{Chunk, ChunkConfig, EmbedKind, Embedder, Error, Result, SizeUnit, Tokenize, is_cjk};
use lore_ingest::{Format, chunk, parse_text};
use serde_json::json;

/// A stand-in embedder. Its tokens are runs of non-space characters, with each CJK ideograph a
/// token of its own (as BERT tokenizers cut Chinese); a text's vector counts the words of each
/// topic in it. Enough to check size arithmetic and the semantic breaking rule, which do not
/// depend on what a real model knows.
struct Topics;

const TOPICS: [&[&str]; 2] =
    [&["cat", "kitten", "fur", "purr", "猫"], &["compiler", "cargo", "crate", "rust", "编译器"]];

impl Tokenize for Topics {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let mut spans: Vec<Range<usize>> = Vec::new();
        let mut in_word = false;
        for (i, c) in text.char_indices() {
            let end = i + c.len_utf8();
            if c.is_whitespace() {
                in_word = false;
            } else if is_cjk(c) {
                spans.push(i..end);
                in_word = false;
            } else if in_word {
                spans.last_mut().expect("a word was started").end = end;
            } else {
                spans.push(i..end);
                in_word = true;
            }
        }
        Ok(spans)
    }
}

impl Embedder for Topics {
    fn id(&self) -> &str {
        "topics"
    }
    fn dimension(&self) -> usize {
        TOPICS.len()
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        Some(self)
    }
    fn embed(&self, texts: &[&str], _kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|text| {
                let text = text.to_lowercase();
                let counts: Vec<f32> =
                    TOPICS.iter().map(|words| words.iter().map(|w| text.matches(w).count() as f32).sum()).collect();
                let norm = counts.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
                counts.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

fn tokens(text: &str) -> usize {
    Topics.token_spans(text).unwrap().len()
}

fn chunks(text: &str, format: Format, config: &ChunkConfig) -> Vec<Chunk> {
    chunk(&parse_text("doc", text, format), config, Some(&Topics)).unwrap()
}

fn texts(chunks: &[Chunk]) -> Vec<&str> {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

fn contexts(chunks: &[Chunk]) -> Vec<&str> {
    chunks.iter().map(|c| c.metadata["context"].as_str().expect("a context string")).collect()
}

fn recursive(chunk_size: usize, overlap: usize) -> ChunkConfig {
    ChunkConfig::Recursive { chunk_size, overlap, unit: SizeUnit::Chars }
}

fn non_whitespace<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    texts.into_iter().flat_map(|t| t.chars()).filter(|c| !c.is_whitespace()).collect()
}

/// A guide with paragraphs, a list, Chinese, and a word too long for any small chunk.
const GUIDE: &str = "# Lore
Lore answers questions from your own documents. It reads text and Markdown files, cuts them into chunks, and embeds each chunk with a small model that runs on the CPU.

Answers cite their sources! Why does that matter? Because a reader can check every claim; an answer without sources is only a guess.
## Install
Run the installer, then pull the models: lore models pull e5-small. The download is about seventy megabytes.
- Linux: any distribution with glibc
- macOS: version 13 or later
## 中文
Lore 也能回答中文问题。它使用多语言嵌入模型，把每个文本块变成向量；检索时，问题也被编码成向量，然后找出最相近的文本块！这样做快吗？很快。
## Links
https://example.org/a/very/long/path/without/any/spaces/that/must/be/cut/somewhere/in/the/middle
";

const PRICES: &str = "# Prices
Fruit prices this week.

| Item | Price |
|------|-------|
| Apple | 1 |
| Banana | 2 |
| Cherry | 3 |
| Durian, the king of fruits. Very smelly! | 40 |

Prices change weekly.
";

#[test]
fn recursive_cuts_paragraphs_then_sentences_and_merges_what_fits() {
    let text = "Alpha beta gamma. Delta epsilon.\n\nZeta eta theta iota kappa lambda mu. Nu xi omicron pi rho.";
    let got = chunks(text, Format::Text, &recursive(40, 0));
    // The second paragraph is too long: it is cut into sentences, which are not merged with the
    // first paragraph.
    assert_eq!(
        texts(&got),
        ["Alpha beta gamma. Delta epsilon.", "Zeta eta theta iota kappa lambda mu.", "Nu xi omicron pi rho."]
    );
    assert_eq!(texts(&chunks(text, Format::Text, &recursive(100, 0))), [text]);
}

#[test]
fn recursive_cuts_chinese_at_sentence_ends_then_clauses_then_characters() {
    let text = "千问是一个大语言模型。它支持中文和英文！上下文有多长？答案是三万两千个词元；这很长。";
    assert_eq!(
        texts(&chunks(text, Format::Text, &recursive(16, 0))),
        ["千问是一个大语言模型。", "它支持中文和英文！上下文有多长？", "答案是三万两千个词元；这很长。"]
    );
    let text = "我们先读文件，再切分文本，最后生成向量。";
    assert_eq!(
        texts(&chunks(text, Format::Text, &recursive(8, 0))),
        ["我们先读文件，", "再切分文本，", "最后生成向量。"]
    );
    assert_eq!(texts(&chunks("abcdefghij", Format::Text, &recursive(4, 0))), ["abcd", "efgh", "ij"]);
}

#[test]
fn recursive_overlap_repeats_whole_trailing_sentences() {
    let got = chunks("One. Two. Three. Four. Five.", Format::Text, &recursive(16, 6));
    assert_eq!(texts(&got), ["One. Two. Three.", "Three. Four.", "Four. Five."]);
    // No chunk is only the end of the one before.
    let got = chunks("One. Two. Three. Four. Five.", Format::Text, &recursive(10, 5));
    assert_eq!(texts(&got), ["One. Two.", "Three.", "Four.", "Five."]);
}

#[test]
fn recursive_measures_tokens_when_asked() {
    let text = "one two three four five. six seven eight nine ten eleven.";
    let config = ChunkConfig::Recursive { chunk_size: 6, overlap: 0, unit: SizeUnit::Tokens };
    assert_eq!(
        texts(&chunks(text, Format::Text, &config)),
        ["one two three four five.", "six seven eight nine ten eleven."]
    );
    let err = chunk(&parse_text("doc", text, Format::Text), &config, None).unwrap_err().to_string();
    assert!(err.contains("tokenizer") && err.contains("chars"), "{err}");
}

#[test]
fn chunks_fit_their_size_and_lose_no_text() {
    let doc = parse_text("guide.md", GUIDE, Format::Markdown);
    let all_text = non_whitespace([doc.text().as_str()]);
    for size in [8, 30, 100, 400] {
        for unit in [SizeUnit::Chars, SizeUnit::Tokens] {
            let measure = |text: &str| if unit == SizeUnit::Chars { text.chars().count() } else { tokens(text) };
            let configs = [
                ChunkConfig::Recursive { chunk_size: size, overlap: 0, unit },
                ChunkConfig::HeadingAware { chunk_size: size, overlap: 0, unit, prefix_headings: false },
                ChunkConfig::Semantic {
                    breakpoint_percentile: 95.0,
                    buffer: 1,
                    min_chunk_size: 0,
                    max_chunk_size: size,
                    unit,
                },
                ChunkConfig::ParentChild { child_size: size, parent_size: size * 3, unit },
            ];
            for config in configs {
                let got = chunk(&doc, &config, Some(&Topics)).unwrap();
                for c in &got {
                    assert!(measure(&c.text) <= size, "{config:?} made a chunk over {size}: {:?}", c.text);
                }
                assert_eq!(non_whitespace(texts(&got)), all_text, "{config:?} lost or reordered text");
            }
        }
    }
    for config in [
        ChunkConfig::ParagraphMerge { chunk_size: 50, drop_remainder: false },
        ChunkConfig::TokenWindow { size: 7, overlap: 0 },
        ChunkConfig::SentenceWindow { window: 2 },
        ChunkConfig::Whole,
    ] {
        let got = chunk(&doc, &config, Some(&Topics)).unwrap();
        assert_eq!(non_whitespace(texts(&got)), all_text, "{config:?} lost or reordered text");
    }
}

#[test]
fn a_prefixed_heading_counts_toward_the_size_and_is_left_out_of_the_context() {
    let doc = parse_text("guide.md", GUIDE, Format::Markdown);
    for size in [40, 100, 400] {
        let config =
            ChunkConfig::HeadingAware { chunk_size: size, overlap: 0, unit: SizeUnit::Chars, prefix_headings: true };
        let got = chunk(&doc, &config, None).unwrap();
        for c in &got {
            assert!(c.text.chars().count() <= size, "over {size}: {:?}", c.text);
            let heading_path: Vec<String> = serde_json::from_value(c.metadata["heading_path"].clone()).unwrap();
            assert_eq!(c.text, format!("{}\n{}", heading_path.join(" > "), c.metadata["context"].as_str().unwrap()));
        }
        assert_eq!(non_whitespace(contexts(&got)), non_whitespace([doc.text().as_str()]));
    }
}

#[test]
fn heading_aware_chunks_stay_in_their_section() {
    let md = "# Guide\nIntro text.\n## Install\nRun the installer. Then restart.\n## Use\nAsk a question.\n";
    let prefixed =
        ChunkConfig::HeadingAware { chunk_size: 40, overlap: 0, unit: SizeUnit::Chars, prefix_headings: true };
    let got = chunks(md, Format::Markdown, &prefixed);
    assert_eq!(
        texts(&got),
        [
            "Guide\nIntro text.",
            "Guide > Install\nRun the installer.",
            "Guide > Install\nThen restart.",
            "Guide > Use\nAsk a question."
        ]
    );
    assert_eq!(contexts(&got), ["Intro text.", "Run the installer.", "Then restart.", "Ask a question."]);
    assert_eq!(got[2].metadata["heading_path"], json!(["Guide", "Install"]));

    // With room for everything, `recursive` makes one chunk; `heading-aware` still one per section.
    let plain =
        ChunkConfig::HeadingAware { chunk_size: 100, overlap: 0, unit: SizeUnit::Chars, prefix_headings: false };
    let got = chunks(md, Format::Markdown, &plain);
    assert_eq!(texts(&got), ["Intro text.", "Run the installer. Then restart.", "Ask a question."]);
    assert!(got.iter().all(|c| !c.metadata.contains_key("context")));
    assert_eq!(chunks(md, Format::Markdown, &recursive(100, 0)).len(), 1);
}

#[test]
fn tables_are_cut_between_rows_and_repeat_their_header() {
    let text = "Prices below.\n\n| Item | Price |\n|------|-------|\n| Apple | 1 |\n| Banana | 2 |\n| Cherry | 3 |";
    let header = "| Item | Price |\n|------|-------|\n";
    let got = chunks(text, Format::Text, &recursive(50, 0));
    assert_eq!(
        texts(&got),
        [
            "Prices below.".to_string(),
            format!("{header}| Apple | 1 |"),
            format!("{header}| Banana | 2 |"),
            format!("{header}| Cherry | 3 |")
        ]
    );
    assert!(got.iter().all(|c| c.text.chars().count() <= 50));
    // Rows, and the header with its separator, are kept whole even when longer than the size.
    let got = chunks(text, Format::Text, &recursive(10, 0));
    assert_eq!(
        texts(&got),
        [
            "Prices".to_string(),
            "below.".to_string(),
            header.trim_end().to_string(),
            format!("{header}| Apple | 1 |"),
            format!("{header}| Banana | 2 |"),
            format!("{header}| Cherry | 3 |")
        ]
    );

    let merged = chunks(text, Format::Text, &ChunkConfig::ParagraphMerge { chunk_size: 20, drop_remainder: false });
    assert_eq!(
        texts(&merged),
        [
            "Prices below.\n| Item | Price |\n|------|-------|".to_string(),
            format!("{header}| Apple | 1 |\n| Banana | 2 |"),
            format!("{header}| Cherry | 3 |")
        ]
    );
}

#[test]
fn no_chunker_cuts_a_table_row_or_loses_its_header() {
    let doc = parse_text("prices.md", PRICES, Format::Markdown);
    let rows: Vec<&str> = PRICES.lines().filter(|l| l.starts_with('|')).collect();
    let header = format!("{}\n{}\n", rows[0], rows[1]);
    let configs = [
        ChunkConfig::ParagraphMerge { chunk_size: 20, drop_remainder: false },
        ChunkConfig::TokenWindow { size: 6, overlap: 2 },
        recursive(30, 0),
        recursive(60, 20),
        ChunkConfig::Recursive { chunk_size: 8, overlap: 0, unit: SizeUnit::Tokens },
        ChunkConfig::HeadingAware { chunk_size: 40, overlap: 0, unit: SizeUnit::Chars, prefix_headings: true },
        ChunkConfig::Semantic {
            breakpoint_percentile: 50.0,
            buffer: 1,
            min_chunk_size: 0,
            max_chunk_size: 30,
            unit: SizeUnit::Chars,
        },
        ChunkConfig::SentenceWindow { window: 1 },
        ChunkConfig::ParentChild { child_size: 20, parent_size: 60, unit: SizeUnit::Chars },
    ];
    for config in configs {
        let got = chunk(&doc, &config, Some(&Topics)).unwrap();
        let shown =
            got.iter().flat_map(|c| [Some(c.text.as_str()), c.metadata.get("context").and_then(|v| v.as_str())]);
        for text in shown.flatten() {
            for line in text.lines().filter(|l| l.starts_with('|')) {
                assert!(rows.contains(&line), "{config:?} cut a row: {line:?}");
            }
            if let Some(first_body_row) = rows[2..].iter().filter_map(|row| text.find(row)).min() {
                assert!(text[..first_body_row].ends_with(&header), "{config:?} lost the header: {text:?}");
            }
        }
    }
}

/// Four sentences about cats, then four about compilers, each naming its topic once.
const CATS_THEN_COMPILERS: [&str; 8] = [
    "My cat sleeps on the sofa.",
    "A kitten plays with string.",
    "She strokes its soft fur.",
    "Then it starts to purr.",
    "The compiler checks every line.",
    "Cargo fetches the dependencies.",
    "Each crate builds once.",
    "Rust tests run after the build.",
];

fn semantic(min_chunk_size: usize, max_chunk_size: usize) -> ChunkConfig {
    ChunkConfig::Semantic {
        breakpoint_percentile: 95.0,
        buffer: 1,
        min_chunk_size,
        max_chunk_size,
        unit: SizeUnit::Chars,
    }
}

#[test]
fn semantic_chunks_break_where_the_topic_changes() {
    let text = CATS_THEN_COMPILERS.join(" ");
    let got = chunks(&text, Format::Text, &semantic(20, 1000));
    assert_eq!(texts(&got), [CATS_THEN_COMPILERS[..4].join(" "), CATS_THEN_COMPILERS[4..].join(" ")]);

    let chinese = "我的猫在睡觉。小猫喜欢玩线团。猫的毛很软。猫开始打呼噜。编译器检查代码。编译器报告错误。编译器很快。编译器生成程序。";
    let got = chunks(chinese, Format::Text, &semantic(4, 1000));
    assert_eq!(
        texts(&got),
        [
            "我的猫在睡觉。小猫喜欢玩线团。猫的毛很软。猫开始打呼噜。",
            "编译器检查代码。编译器报告错误。编译器很快。编译器生成程序。"
        ]
    );
}

#[test]
fn semantic_chunks_do_not_break_a_text_on_one_topic() {
    let text = CATS_THEN_COMPILERS[..4].join(" ");
    assert_eq!(texts(&chunks(&text, Format::Text, &semantic(0, 1000))), [text.as_str()]);
}

#[test]
fn semantic_chunks_respect_their_minimum_and_maximum_sizes() {
    let text = CATS_THEN_COMPILERS.join(" ");
    // The cat sentences are 104 characters: too short to end a chunk of at least 200.
    assert_eq!(texts(&chunks(&text, Format::Text, &semantic(200, 1000))), [text.as_str()]);
    let got = chunks(&text, Format::Text, &semantic(20, 60));
    assert!(got.len() > 2 && got.iter().all(|c| c.text.chars().count() <= 60), "{:?}", texts(&got));
    assert_eq!(non_whitespace(texts(&got)), non_whitespace([text.as_str()]));

    let doc = parse_text("doc", &text, Format::Text);
    let err = chunk(&doc, &semantic(20, 1000), None).unwrap_err().to_string();
    assert!(err.contains("embedder"), "{err}");
    let bad = ChunkConfig::Semantic {
        breakpoint_percentile: 150.0,
        buffer: 1,
        min_chunk_size: 0,
        max_chunk_size: 10,
        unit: SizeUnit::Chars,
    };
    assert!(matches!(chunk(&doc, &bad, Some(&Topics)), Err(Error::InvalidInput(_))));
}

#[test]
fn sentence_windows_embed_one_sentence_and_give_its_neighbours_as_context() {
    let got = chunks("One. Two. Three. Four. Five.", Format::Text, &ChunkConfig::SentenceWindow { window: 1 });
    assert_eq!(texts(&got), ["One.", "Two.", "Three.", "Four.", "Five."]);
    assert_eq!(
        contexts(&got),
        ["One. Two.", "One. Two. Three.", "Two. Three. Four.", "Three. Four. Five.", "Four. Five."]
    );

    let got = chunks("第一句。第二句！第三句？", Format::Text, &ChunkConfig::SentenceWindow { window: 1 });
    assert_eq!(texts(&got), ["第一句。", "第二句！", "第三句？"]);
    assert_eq!(contexts(&got), ["第一句。第二句！", "第一句。第二句！第三句？", "第二句！第三句？"]);

    // Closing quotes stay with the sentence they end.
    let single = ChunkConfig::SentenceWindow { window: 0 };
    assert_eq!(
        texts(&chunks("He said \"Stop.\" Then he left.", Format::Text, &single)),
        ["He said \"Stop.\"", "Then he left."]
    );
    assert_eq!(texts(&chunks("他说：“好。”然后走了。", Format::Text, &single)), ["他说：“好。”", "然后走了。"]);

    // Each table row is a sentence, after the table's header.
    let got = chunks("Prices:\n| Item | Price |\n|---|---|\n| Apple | 1 |\n| Pear | 2 |", Format::Text, &single);
    let header = "| Item | Price |\n|---|---|";
    assert_eq!(
        texts(&got),
        [
            "Prices:".to_string(),
            header.to_string(),
            format!("{header}\n| Apple | 1 |"),
            format!("{header}\n| Pear | 2 |")
        ]
    );
}

#[test]
fn parent_child_chunks_carry_their_parent_as_context() {
    let first = "Alpha beta gamma. Delta epsilon zeta.";
    let second = "Eta theta iota. Kappa lambda mu.";
    let config = ChunkConfig::ParentChild { child_size: 20, parent_size: 40, unit: SizeUnit::Chars };
    let got = chunks(&format!("{first}\n\n{second}"), Format::Text, &config);
    assert_eq!(texts(&got), ["Alpha beta gamma.", "Delta epsilon zeta.", "Eta theta iota.", "Kappa lambda mu."]);
    assert_eq!(contexts(&got), [first, first, second, second]);
    let parents: Vec<_> = got.iter().map(|c| c.metadata["parent"].clone()).collect();
    assert_eq!(parents, [json!(0), json!(0), json!(1), json!(1)]);
    assert_eq!(got.iter().map(|c| c.ordinal).collect::<Vec<_>>(), [0, 1, 2, 3]);

    let bad = ChunkConfig::ParentChild { child_size: 40, parent_size: 40, unit: SizeUnit::Chars };
    let err = chunk(&parse_text("doc", first, Format::Text), &bad, None).unwrap_err().to_string();
    assert!(err.contains("child_size (40) must be smaller than parent_size (40)"), "{err}");
}

#[test]
fn token_windows_overlap_by_the_given_number_of_tokens() {
    let got =
        chunks("one two three four five six seven", Format::Text, &ChunkConfig::TokenWindow { size: 3, overlap: 1 });
    assert_eq!(texts(&got), ["one two three", "three four five", "five six seven"]);
    // Each Chinese character is a token of its own.
    let got = chunks("千问模型很小", Format::Text, &ChunkConfig::TokenWindow { size: 2, overlap: 0 });
    assert_eq!(texts(&got), ["千问", "模型", "很小"]);
}

#[test]
fn token_windows_reject_bad_settings_and_missing_tokenizers() {
    let doc = parse_text("w.txt", "one two", Format::Text);
    let bad = ChunkConfig::TokenWindow { size: 2, overlap: 2 };
    assert!(matches!(chunk(&doc, &bad, Some(&Topics)), Err(Error::InvalidInput(_))));
    let good = ChunkConfig::TokenWindow { size: 2, overlap: 0 };
    let err = chunk(&doc, &good, None).unwrap_err().to_string();
    assert!(err.contains("tokenizer"), "{err}");
}

#[test]
fn configs_read_with_defaults_for_what_they_leave_out() {
    let read = |value: serde_json::Value| serde_json::from_value::<ChunkConfig>(value).unwrap();
    assert_eq!(read(json!({"kind": "recursive"})), recursive(512, 0));
    assert_eq!(
        read(json!({"kind": "heading-aware", "chunk_size": 300, "unit": "tokens"})),
        ChunkConfig::HeadingAware { chunk_size: 300, overlap: 0, unit: SizeUnit::Tokens, prefix_headings: true }
    );
    assert_eq!(read(json!({"kind": "semantic"})), semantic(100, 1000));
    assert_eq!(read(json!({"kind": "sentence-window"})), ChunkConfig::SentenceWindow { window: 3 });
    assert_eq!(
        read(json!({"kind": "parent-child", "parent_size": 1500})),
        ChunkConfig::ParentChild { child_size: 256, parent_size: 1500, unit: SizeUnit::Chars }
    );
    let config = ChunkConfig::Semantic {
        breakpoint_percentile: 90.0,
        buffer: 2,
        min_chunk_size: 50,
        max_chunk_size: 800,
        unit: SizeUnit::Tokens,
    };
    assert_eq!(read(serde_json::to_value(&config).unwrap()), config);
}

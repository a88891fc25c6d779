//! Synthetic questions: a chat model reads a passage and writes questions that it answers, in
//! the passage's language — labels for a corpus that has none. The model's replies are cached
//! per passage as written, so a stopped run resumes, a rerun costs nothing, and a change to the
//! filters applies to replies already paid for.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use lore_core::{ChatModel, Error, GenerationOptions, Language, Message, Result, detect_language};
use serde::{Deserialize, Serialize};

/// A passage to write questions for.
#[derive(Clone, Debug)]
pub struct Passage {
    /// Names the passage in the cache (a hash of its text and where it comes from).
    pub key: String,
    /// Its text.
    pub text: String,
}

/// What one passage got: the model's reply, or (caches written before replies were kept) the
/// questions filtered from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Cached {
    key: String,
    model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    questions: Vec<String>,
}

impl Cached {
    /// The questions for `passage`: its reply filtered now, or the questions filtered then.
    fn questions(&self, passage: &str, count: usize) -> Vec<String> {
        match &self.reply {
            Some(reply) => parse_questions(reply, passage, count),
            None => self.questions.clone(),
        }
    }
}

/// Replies already paid for, one JSON line per passage, appended as they come.
pub struct QuestionCache {
    path: PathBuf,
    entries: BTreeMap<(String, String), Cached>,
}

impl QuestionCache {
    /// Opens (or starts) the cache file at `path`. A line cut short by a killed run is skipped.
    pub fn open(path: &Path) -> Result<QuestionCache> {
        let mut entries = BTreeMap::new();
        if path.is_file() {
            let file = std::fs::File::open(path).map_err(Error::io(path))?;
            for line in BufReader::new(file).lines() {
                let line = line.map_err(Error::io(path))?;
                if let Ok(entry) = serde_json::from_str::<Cached>(&line) {
                    entries.insert((entry.key.clone(), entry.model.clone()), entry);
                }
            }
        }
        Ok(QuestionCache { path: path.to_path_buf(), entries })
    }

    fn get(&self, key: &str, model: &str) -> Option<&Cached> {
        self.entries.get(&(key.to_string(), model.to_string()))
    }

    fn put(&mut self, key: &str, model: &str, reply: String) -> Result<()> {
        let entry =
            Cached { key: key.to_string(), model: model.to_string(), reply: Some(reply), questions: Vec::new() };
        let mut line = serde_json::to_string(&entry).map_err(|e| Error::InvalidInput(e.to_string()))?;
        line.push('\n');
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(Error::io(&self.path))?;
        file.write_all(line.as_bytes()).map_err(Error::io(&self.path))?;
        self.entries.insert((entry.key.clone(), entry.model.clone()), entry);
        Ok(())
    }
}

/// The instructions for `count` questions about `passage`, in its language.
pub fn question_prompt(passage: &str, count: usize) -> Vec<Message> {
    match detect_language(passage) {
        Language::Chinese => vec![
            Message::system("你为检索系统编写测试问题。只输出问题，每行一个，不要编号，不要答案。"),
            Message::user(format!(
                "阅读下面的段落，写出 {count} 个可以仅凭这段文字回答的具体问题。问题要用自己的话提出，不要照抄原句，\
                 要包含能找到这段文字的关键名称或术语。\n\n段落：\n{passage}\n\n问题："
            )),
        ],
        Language::English => vec![
            Message::system(
                "You write test questions for a search engine. Output only the questions, one per line, \
                 without numbers or answers.",
            ),
            Message::user(format!(
                "Read the passage below and write {count} specific questions that it answers on its own. \
                 Ask in your own words rather than copying a sentence, and name the key entities or terms \
                 someone would search for.\n\nPassage:\n{passage}\n\nQuestions:"
            )),
        ],
    }
}

/// The questions in `reply`, cleaned and filtered: list markers removed; statements, questions
/// about "the passage" or "this study" rather than its content (they mean nothing to a search),
/// too short or too long ones, copies of the passage (a run of twelve of its words: shorter runs
/// are the names and terms a good question repeats) and duplicates dropped; at most `count`.
pub fn parse_questions(reply: &str, passage: &str, count: usize) -> Vec<String> {
    let passage_runs = word_runs(passage, COPIED_WORDS);
    let mut seen = HashSet::new();
    let mut questions = Vec::new();
    for line in reply.lines() {
        let question = line
            .trim()
            .trim_start_matches(|c: char| {
                c.is_ascii_digit() || matches!(c, '.' | ')' | '-' | '*' | '•' | '、' | ' ' | '：' | ':')
            })
            .trim();
        let question = without_label(question);
        let chinese = detect_language(question) == Language::Chinese;
        let length = if chinese { question.chars().count() } else { question.split_whitespace().count() };
        let (shortest, longest) = if chinese { (5, 80) } else { (3, 40) };
        if length < shortest || length > longest {
            continue;
        }
        if !is_question(question, chinese) || refers_to_the_passage(question) {
            continue;
        }
        if !chinese && !word_runs(question, COPIED_WORDS).is_disjoint(&passage_runs) {
            continue;
        }
        if chinese && question.chars().count() >= 12 && passage.contains(question.trim_end_matches(['？', '?'])) {
            continue;
        }
        if seen.insert(question.to_lowercase()) {
            questions.push(question.to_string());
        }
        if questions.len() == count {
            break;
        }
    }
    questions
}

/// A run of this many words shared with the passage makes an English question a copy of it.
const COPIED_WORDS: usize = 12;

/// `line` without a leading "Question 2:" or "Q2." label.
fn without_label(line: &str) -> &str {
    let rest = match line.get(..8) {
        Some(word) if word.eq_ignore_ascii_case("question") => &line[8..],
        _ => match line.strip_prefix(['Q', 'q']) {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit() || c == ':' || c == '.') => rest,
            _ => return line,
        },
    };
    rest.trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ':' | ')' | ' ')).trim()
}

/// A question mark, or (Chinese, where small models often leave it out) a question word.
fn is_question(text: &str, chinese: bool) -> bool {
    const WORDS: [&str; 10] = ["吗", "什么", "哪", "如何", "怎么", "为什么", "多少", "谁", "几", "是否"];
    text.ends_with(['?', '？']) || (chinese && WORDS.iter().any(|w| text.contains(w)))
}

fn refers_to_the_passage(question: &str) -> bool {
    // "The study on X" names its topic; "this study" and a question ending in "the study" do not.
    const PHRASES: [&str; 17] = [
        "passage",
        "the text",
        "this text",
        "the article",
        "this article",
        "this study",
        "this paper",
        "this review",
        "this research",
        "the authors",
        "段落",
        "这段",
        "本文",
        "文中",
        "上文",
        "该研究",
        // The prompt's own words echoed back ("the key terms someone would search for").
        "would search for",
    ];
    const ENDINGS: [&str; 3] = ["the study?", "the paper?", "the review?"];
    let lower = question.to_lowercase();
    PHRASES.iter().any(|p| lower.contains(p)) || ENDINGS.iter().any(|e| lower.ends_with(e))
}

fn word_runs(text: &str, n: usize) -> HashSet<String> {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    words.windows(n).map(|w| w.join(" ")).collect()
}

/// Writes up to `count` questions for each passage with `chat`, taking what `cache` already
/// holds; `observer(done, total, reused)` follows the work. Returns the questions per passage,
/// in order (empty where the model wrote nothing usable).
pub fn generate_questions(
    chat: &dyn ChatModel,
    passages: &[Passage],
    count: usize,
    cache: &mut QuestionCache,
    observer: &mut dyn FnMut(usize, usize, usize),
) -> Result<Vec<Vec<String>>> {
    let options = GenerationOptions { max_tokens: 48 * count + 16, ..GenerationOptions::default() };
    let mut out = Vec::with_capacity(passages.len());
    let mut reused = 0;
    for (done, passage) in passages.iter().enumerate() {
        let key = format!("{}:{count}", passage.key);
        let questions = match cache.get(&key, chat.id()) {
            Some(entry) => {
                reused += 1;
                entry.questions(&passage.text, count)
            }
            None => {
                let reply = chat.chat(&question_prompt(&passage.text, count), &options, &mut |_| {})?;
                let questions = parse_questions(&reply.text, &passage.text, count);
                cache.put(&key, chat.id(), reply.text)?;
                questions
            }
        };
        out.push(questions);
        observer(done + 1, passages.len(), reused);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_questions;

    #[test]
    fn statements_and_questions_about_the_passage_are_dropped() {
        let passage = "KOBAS 2.0 annotates genes with pathways and finds enriched pathways in gene lists.";
        let reply = "1. What is the main purpose of the passage?\n\
                     2. The main purpose is to describe KOBAS and its uses in drug discovery.\n\
                     3. What does KOBAS 2.0 annotate genes with?\n\
                     4. Which tool finds enriched pathways in a gene list?";
        assert_eq!(
            parse_questions(reply, passage, 3),
            ["What does KOBAS 2.0 annotate genes with?", "Which tool finds enriched pathways in a gene list?"]
        );
        let chinese = "长江全长约6300公里，是中国最长的河流。";
        let reply = "1. 这段文字主要讲了什么？\n2. 长江全长大约多少公里\n3. 长江是一条河流。";
        assert_eq!(parse_questions(reply, chinese, 3), ["长江全长大约多少公里"]);
    }

    #[test]
    fn labels_are_stripped_and_only_long_copies_dropped() {
        let passage = "The structure and expression of a novel gene activated in early mouse embryogenesis \
                       were studied in embryonic stem cells, where the gene is expressed before implantation.";
        let reply = "Question 1: What is the structure and expression of a novel gene activated in early mouse embryogenesis?\n\
                     Q2: What was the primary goal of the study?\n\
                     What is the main finding of the study on gene expression before implantation?\n\
                     Question: When is the novel mouse gene expressed in embryonic stem cells?\n\
                     Quantitatively, how early is the gene active?";
        assert_eq!(
            parse_questions(reply, passage, 4),
            [
                "What is the main finding of the study on gene expression before implantation?",
                "When is the novel mouse gene expressed in embryonic stem cells?",
                "Quantitatively, how early is the gene active?"
            ]
        );
    }
}

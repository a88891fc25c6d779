//! Synthetic queries: a chat model reads a passage and writes questions that it answers, or
//! claims that it supports, in the passage's language — labels for a corpus that has none. The
//! model's replies are cached per passage and form as written, so a stopped run resumes, a rerun
//! costs nothing, and a change to the filters applies to replies already paid for.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use lore_core::{ChatModel, Error, GenerationOptions, Language, Message, Result, detect_language};
use serde::{Deserialize, Serialize};

/// A passage to write queries for.
#[derive(Clone, Debug)]
pub struct Passage {
    /// Names the passage in the cache (a hash of its text and where it comes from).
    pub key: String,
    /// Its text.
    pub text: String,
}

/// What one passage got for one form: the model's reply, or (question caches written before
/// replies were kept) the questions filtered from it.
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
    /// The queries for `passage`: its reply filtered now, or the questions filtered then.
    fn queries(&self, form: QueryForm, passage: &str, count: usize) -> Vec<String> {
        match &self.reply {
            Some(reply) => form.parse(reply, passage, count),
            None => self.questions.clone(),
        }
    }
}

/// Replies already paid for, one JSON line per passage and form, appended as they come.
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

/// The form of the queries written for a passage: users search with questions, but a
/// fact-checking corpus is searched with claims, and training on the form the users type is
/// what moves retrieval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryForm {
    /// A specific question the passage answers ("Where does the Rhine rise?").
    Question,
    /// A one-sentence statement of a fact or finding the passage reports, as someone citing it
    /// would put it ("The Rhine rises in the Swiss Alps.").
    Claim,
}

impl std::str::FromStr for QueryForm {
    type Err = Error;

    fn from_str(name: &str) -> Result<QueryForm> {
        [QueryForm::Question, QueryForm::Claim]
            .into_iter()
            .find(|form| form.name() == name)
            .ok_or_else(|| Error::InvalidInput(format!("unknown query form '{name}': use question or claim")))
    }
}

impl QueryForm {
    /// `question` or `claim`.
    pub fn name(self) -> &'static str {
        match self {
            QueryForm::Question => "question",
            QueryForm::Claim => "claim",
        }
    }

    /// The instructions for `count` queries of this form about `passage`, in its language.
    pub fn prompt(self, passage: &str, count: usize) -> Vec<Message> {
        match (self, detect_language(passage)) {
            (QueryForm::Question, Language::Chinese) => vec![
                Message::system("你为检索系统编写测试问题。只输出问题，每行一个，不要编号，不要答案。"),
                Message::user(format!(
                    "阅读下面的段落，写出 {count} 个可以仅凭这段文字回答的具体问题。问题要用自己的话提出，不要照抄原句，\
                     要包含能找到这段文字的关键名称或术语。\n\n段落：\n{passage}\n\n问题："
                )),
            ],
            (QueryForm::Question, Language::English) => vec![
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
            (QueryForm::Claim, Language::Chinese) => vec![
                Message::system("你为检索系统编写测试查询。只输出陈述句，每行一个，不要编号。"),
                Message::user(format!(
                    "阅读下面的段落，写出 {count} 条它所陈述的具体事实或结论，每条一句话，像引用它的人那样用自己的话表述，\
                     不要照抄原句，要包含关键名称或术语。\n\n段落：\n{passage}\n\n陈述："
                )),
            ],
            (QueryForm::Claim, Language::English) => vec![
                Message::system(
                    "You write test queries for a search engine. Output only the statements, one per line, \
                     without numbers.",
                ),
                Message::user(format!(
                    "Read the passage below and write {count} short statements of a fact or finding that it \
                     reports, each in one sentence of your own words, as someone citing it would put it. Name \
                     the key entities or terms; do not copy its sentences.\n\nPassage:\n{passage}\n\nStatements:"
                )),
            ],
        }
    }

    /// The queries of this form in `reply`, cleaned and filtered: list markers and labels
    /// ("Question 2:", "Statement:") removed, and for claims a lead-in that names the source
    /// ("The study found that") too; then queries of the wrong form (a statement among questions,
    /// a question among claims), queries about "the passage" or "this study" rather than its
    /// content (they mean nothing to a search), too short or too long ones, copies of the passage
    /// (a run of twelve of its words: shorter runs are the names and terms a good query repeats)
    /// and duplicates are dropped; at most `count`.
    pub fn parse(self, reply: &str, passage: &str, count: usize) -> Vec<String> {
        let passage_runs = word_runs(passage, COPIED_WORDS);
        let mut seen = HashSet::new();
        let mut queries = Vec::new();
        for line in reply.lines() {
            let query = without_label(without_list_marker(line.trim()));
            let query = match self {
                QueryForm::Question => query.to_string(),
                QueryForm::Claim => without_source_lead_in(query),
            };
            let query = query.as_str();
            let chinese = detect_language(query) == Language::Chinese;
            let length = if chinese { query.chars().count() } else { query.split_whitespace().count() };
            let (shortest, longest) = if chinese { (5, 80) } else { (3, 40) };
            if length < shortest || length > longest {
                continue;
            }
            let right_form = match self {
                QueryForm::Question => is_question(query, chinese),
                QueryForm::Claim => is_statement(query, chinese),
            };
            // A line ending in a colon introduces a list ("Here are two statements:").
            if !right_form || query.ends_with([':', '：']) || refers_to_the_passage(query) {
                continue;
            }
            if !chinese && !word_runs(query, COPIED_WORDS).is_disjoint(&passage_runs) {
                continue;
            }
            if chinese && query.chars().count() >= 12 && passage.contains(query.trim_end_matches(['？', '?', '。'])) {
                continue;
            }
            if seen.insert(query.to_lowercase()) {
                queries.push(query.to_string());
            }
            if queries.len() == count {
                break;
            }
        }
        queries
    }
}

/// A run of this many words shared with the passage makes an English query a copy of it.
const COPIED_WORDS: usize = 12;

/// `line` without a list marker: "1.", "2)", "3、", "(4)", "-", "*", "•" followed by a space.
/// A number that begins the text ("10% of …", "2008年…") stays.
fn without_list_marker(line: &str) -> &str {
    let rest = match line.strip_prefix(['-', '*', '•']) {
        Some(rest) => rest,
        None => {
            let inner = line.strip_prefix('(').unwrap_or(line);
            let digits = inner.len() - inner.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            match inner[digits..].strip_prefix(['.', ')', '、', ':', '：']) {
                Some(rest) if (1..=3).contains(&digits) && !rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
                _ => return line,
            }
        }
    };
    rest.trim_start()
}

/// `line` without a leading label: "Question 2:", "Statement:", "Claim 1.", "Q2." ("Claimed …"
/// and "Question-answering …" are the text itself).
fn without_label(line: &str) -> &str {
    let after_word = ["question", "statement", "claim", "q"].iter().find_map(|label| {
        line.get(..label.len()).filter(|word| word.eq_ignore_ascii_case(label)).map(|word| &line[word.len()..])
    });
    let Some(rest) = after_word else { return line };
    let rest = rest.trim_start().trim_start_matches(|c: char| c.is_ascii_digit());
    match rest.strip_prefix([':', '.', ')', '：']) {
        Some(text) => text.trim(),
        None => line,
    }
}

/// `claim` without a lead-in that names its source and a reporting verb ("The passage states
/// that", "This study provides evidence that"), its first letter raised when the word is not a
/// symbol ("p53" stays): what follows is the claim itself. A lead-in with anything else in it
/// ("The study found no evidence that …") is part of the claim and stays.
fn without_source_lead_in(claim: &str) -> String {
    const SOURCES: [&str; 12] = [
        "passage", "study", "paper", "text", "article", "review", "research", "authors", "results", "findings",
        "abstract", "data",
    ];
    const REPORTING: [&str; 24] = [
        "states",
        "stated",
        "shows",
        "showed",
        "suggests",
        "suggested",
        "finds",
        "found",
        "indicates",
        "indicated",
        "reports",
        "reported",
        "concludes",
        "concluded",
        "demonstrates",
        "demonstrated",
        "reveals",
        "revealed",
        "highlights",
        "provides",
        "provided",
        "evidence",
        "also",
        "clearly",
    ];
    let words: Vec<&str> = claim.split_whitespace().collect();
    let lower: Vec<String> = words.iter().take(6).map(|w| w.to_lowercase()).collect();
    let names_source =
        lower.len() > 3 && ["the", "this"].contains(&lower[0].as_str()) && SOURCES.contains(&lower[1].as_str());
    let that = lower.iter().position(|w| w == "that");
    match that {
        Some(at)
            if names_source
                && at > 2
                && at + 1 < words.len()
                && lower[2..at].iter().all(|w| REPORTING.contains(&w.as_str())) =>
        {
            let rest = words[at + 1..].join(" ");
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(first), Some(second)) if second.is_lowercase() || second.is_whitespace() => {
                    first.to_uppercase().chain([second]).chain(chars).collect()
                }
                _ => rest,
            }
        }
        _ => claim.to_string(),
    }
}

/// A statement: neither a question mark nor (small models leave the mark out) a question's
/// opening word, or in Chinese a closing 吗 or 呢. Chinese statements hold question words too
/// ("几乎"), so only the end tells there.
fn is_statement(text: &str, chinese: bool) -> bool {
    const OPENINGS: [&str; 18] = [
        "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "does", "do", "did", "is", "are",
        "was", "were", "can", "could",
    ];
    let text = text.trim_end_matches(['。', '.']);
    if text.ends_with(['?', '？']) {
        return false;
    }
    if chinese {
        return !text.ends_with(['吗', '呢']);
    }
    let first = text.split_whitespace().next().unwrap_or("").to_lowercase();
    !OPENINGS.contains(&first.as_str())
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
    const ENDINGS: [&str; 3] = ["the study", "the paper", "the review"];
    let lower = question.to_lowercase();
    let lower = lower.trim_end_matches(['?', '.']);
    PHRASES.iter().any(|p| lower.contains(p)) || ENDINGS.iter().any(|e| lower.ends_with(e))
}

fn word_runs(text: &str, n: usize) -> HashSet<String> {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    words.windows(n).map(|w| w.join(" ")).collect()
}

/// Writes up to `count` queries of each of `forms` for each passage with `chat`, taking what
/// `cache` already holds; `observer(done, total, reused)` follows the work (passages done, and
/// replies taken from the cache). Returns the queries per passage, in order (empty where the
/// model wrote nothing usable).
pub fn generate_queries(
    chat: &dyn ChatModel,
    passages: &[Passage],
    forms: &[QueryForm],
    count: usize,
    cache: &mut QuestionCache,
    observer: &mut dyn FnMut(usize, usize, usize),
) -> Result<Vec<Vec<String>>> {
    let options = GenerationOptions { max_tokens: 48 * count + 16, ..GenerationOptions::default() };
    let mut out = Vec::with_capacity(passages.len());
    let mut reused = 0;
    for (done, passage) in passages.iter().enumerate() {
        let mut queries = Vec::new();
        for &form in forms {
            // Questions keep the key caches had before there were other forms.
            let key = match form {
                QueryForm::Question => format!("{}:{count}", passage.key),
                _ => format!("{}:{count}:{}", passage.key, form.name()),
            };
            match cache.get(&key, chat.id()) {
                Some(entry) => {
                    reused += 1;
                    queries.extend(entry.queries(form, &passage.text, count));
                }
                None => {
                    let reply = chat.chat(&form.prompt(&passage.text, count), &options, &mut |_| {})?;
                    queries.extend(form.parse(&reply.text, &passage.text, count));
                    cache.put(&key, chat.id(), reply.text)?;
                }
            }
        }
        out.push(queries);
        observer(done + 1, passages.len(), reused);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::QueryForm;

    fn parse_questions(reply: &str, passage: &str, count: usize) -> Vec<String> {
        QueryForm::Question.parse(reply, passage, count)
    }

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

    #[test]
    fn claims_lose_their_lead_in_and_questions_are_dropped() {
        let passage = "Fibroblast growth factor 21 (FGF21) deficiency exacerbates atherosclerosis in \
                       apolipoprotein E-deficient mice; replenishing FGF21 induces adiponectin and suppresses SREBP-2.";
        let reply = "Here are the statements:\n\
                     - The passage states that FGF21 protects mice against atherosclerosis through adiponectin.\n\
                     Statement: FGF21 lowers hepatic SREBP-2 in mice.\n\
                     Claimed benefits of FGF21 include lower plasma cholesterol.\n\
                     2. 10% of FGF21-deficient mice die before 20 weeks.\n\
                     The study found no evidence that FGF21 changes body weight.\n\
                     This study shows that p53 is not involved.\n\
                     What does FGF21 do in atherosclerosis\n\
                     The passage discusses the role of FGF21.\n\
                     Fibroblast growth factor 21 (FGF21) deficiency exacerbates atherosclerosis in apolipoprotein E-deficient mice.";
        assert_eq!(
            QueryForm::Claim.parse(reply, passage, 10),
            [
                "FGF21 protects mice against atherosclerosis through adiponectin.",
                "FGF21 lowers hepatic SREBP-2 in mice.",
                "Claimed benefits of FGF21 include lower plasma cholesterol.",
                "10% of FGF21-deficient mice die before 20 weeks.",
                "The study found no evidence that FGF21 changes body weight.",
                "p53 is not involved."
            ]
        );
        let chinese = "长江全长约6300公里，是中国最长的河流，几乎横贯中国东西。";
        let reply = "1. 长江几乎横贯中国的东部和西部。\n2. 长江有多长？\n3、长江是中国最长的河流吗\n\
                     4. 长江全长约6300公里，是中国最长的河流\n5. 2008年的长江全长约6300公里。";
        assert_eq!(
            QueryForm::Claim.parse(reply, chinese, 5),
            ["长江几乎横贯中国的东部和西部。", "2008年的长江全长约6300公里。"]
        );
    }
}

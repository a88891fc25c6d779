//! Query rewriting with the chat model: HyDE, multi-query, step-back, multi-hop follow-ups and
//! standalone questions from conversations, with prompts in the question's language and parsers that tolerate what
//! small models actually write.

use lore_core::{ChatModel, GenerationOptions, Language, Message, Result, RewriteKind, Role, detect_language};
use serde::Serialize;

/// Why a text is searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueryRole {
    /// The question as asked.
    Question,
    /// A rephrasing of the question (multi-query).
    Rewrite,
    /// A more general question behind it (step-back).
    StepBack,
    /// A passage the chat model wrote as if it answered the question (HyDE); only the dense
    /// retriever searches it, embedded as a passage.
    HypotheticalAnswer,
    /// What the passages found so far still lack, named by the chat model (multi-hop).
    FollowUp,
}

impl QueryRole {
    /// The name shown in explanations (`question`, `rewrite`, `step-back`, `hypothetical-answer`).
    pub fn name(self) -> &'static str {
        match self {
            QueryRole::Question => "question",
            QueryRole::Rewrite => "rewrite",
            QueryRole::StepBack => "step-back",
            QueryRole::HypotheticalAnswer => "hypothetical-answer",
            QueryRole::FollowUp => "follow-up",
        }
    }
}

/// A text that retrieval searches.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchQuery {
    /// The text to search for.
    pub text: String,
    /// Where the text came from, which decides how it is searched.
    pub role: QueryRole,
}

/// The questions and passages to search for `question` under `kind`, the question first; and
/// the model's raw reply, for explanations. With `RewriteKind::None` no model is needed;
/// `RewriteKind::MultiHop` starts from the question alone (its follow-ups come from
/// [`follow_up`] once passages are found).
pub fn rewrite(
    chat: Option<&dyn ChatModel>,
    kind: RewriteKind,
    count: usize,
    question: &str,
) -> Result<(Vec<SearchQuery>, Option<String>)> {
    let mut queries = vec![SearchQuery { text: question.to_string(), role: QueryRole::Question }];
    let Some(chat) = chat.filter(|_| !matches!(kind, RewriteKind::None | RewriteKind::MultiHop)) else {
        return Ok((queries, None));
    };
    let language = detect_language(question);
    let (messages, max_tokens) = match kind {
        RewriteKind::None | RewriteKind::MultiHop => unreachable!("returned above"),
        RewriteKind::Hyde => (hyde_prompt(question, language), 160),
        RewriteKind::MultiQuery => (multi_query_prompt(question, count, language), 48 * count.max(1) + 16),
        RewriteKind::StepBack => (step_back_prompt(question, language), 64),
    };
    // Greedy decoding: a rewrite is part of retrieval, which must be repeatable.
    let options = GenerationOptions { max_tokens, temperature: 0.0, ..GenerationOptions::default() };
    let reply = chat.chat(&messages, &options, &mut |_| {})?.text;
    match kind {
        RewriteKind::None | RewriteKind::MultiHop => {}
        RewriteKind::Hyde => {
            let passage = reply.trim();
            if !passage.is_empty() {
                queries.push(SearchQuery { text: passage.to_string(), role: QueryRole::HypotheticalAnswer });
            }
        }
        RewriteKind::MultiQuery => queries.extend(
            parse_rewrites(&reply, question, count)
                .into_iter()
                .map(|text| SearchQuery { text, role: QueryRole::Rewrite }),
        ),
        RewriteKind::StepBack => queries.extend(
            parse_rewrites(&reply, question, 1).into_iter().map(|text| SearchQuery { text, role: QueryRole::StepBack }),
        ),
    }
    Ok((queries, Some(reply)))
}

/// How much of each passage the model reads when it names what is missing.
const FOLLOW_UP_CHARS: usize = 500;

/// The next search a multi-hop question needs, after `searched` (the question first) found
/// `passages` (the best first): the chat model names what they still lack, usually an entity a
/// passage names that the question depends on. `None` when it says the passages suffice, or
/// repeats a search; with the model's raw reply, for explanations.
pub fn follow_up(
    chat: &dyn ChatModel,
    question: &str,
    searched: &[SearchQuery],
    passages: &[&str],
) -> Result<(Option<String>, String)> {
    let language = detect_language(question);
    let listed: Vec<String> = passages
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[{}] {}", i + 1, crate::one_line(p, FOLLOW_UP_CHARS)))
        .collect();
    let listed = listed.join("\n");
    let earlier: Vec<&str> = searched.iter().skip(1).map(|q| q.text.as_str()).collect();
    let messages = match language {
        Language::Chinese => vec![
            Message::system("你为回答问题规划文档检索。"),
            Message::user(format!(
                "问题：{question}\n{}\n已找到的段落：\n{listed}\n\n回答这个问题还缺少什么信息吗？常见的是段落中提到、而问题依赖的某个人物、地点或作品。\
                 如果缺少，写出一个简短的检索词（一个名称或一个简短的问题）；如果这些段落已经足够，写 DONE。只写检索词或 DONE。",
                if earlier.is_empty() { String::new() } else { format!("已检索：{}\n", earlier.join("；")) }
            )),
        ],
        Language::English => vec![
            Message::system("You plan the searches that answer a question from documents."),
            Message::user(format!(
                "Question: {question}\n{}\nPassages found:\n{listed}\n\nIs something needed to answer the question still \
                 missing from these passages? Often it is a person, place or work that a passage names and the question \
                 depends on. If so, write one short search query for it (a name or a short question). If the passages are \
                 enough, write DONE. Write only the query or DONE.",
                if earlier.is_empty() { String::new() } else { format!("Searched already: {}\n", earlier.join("; ")) }
            )),
        ],
    };
    let options = GenerationOptions { max_tokens: 32, temperature: 0.0, ..GenerationOptions::default() };
    let reply = chat.chat(&messages, &options, &mut |_| {})?.text;
    if reply.to_lowercase().contains("done") {
        return Ok((None, reply));
    }
    let next = parse_rewrites(&reply, question, 1)
        .into_iter()
        .next()
        .filter(|text| searched.iter().all(|q| normalised(&q.text) != normalised(text)));
    Ok((next, reply))
}

fn hyde_prompt(question: &str, language: Language) -> Vec<Message> {
    match language {
        Language::Chinese => vec![
            Message::system("你是一位知识渊博的作者。"),
            Message::user(format!(
                "请写一段简短的百科式文字（三到五句话）来回答下面的问题。即使不确定，也直接写出这段文字，不要解释。\n\n问题：{question}\n段落："
            )),
        ],
        Language::English => vec![
            Message::system("You are a knowledgeable writer."),
            Message::user(format!(
                "Write a short encyclopedia-style passage (three to five sentences) that answers the question. \
                 Even if you are unsure, write the passage directly, without comments.\n\nQuestion: {question}\nPassage:"
            )),
        ],
    }
}

fn multi_query_prompt(question: &str, count: usize, language: Language) -> Vec<Message> {
    match language {
        Language::Chinese => vec![
            Message::system("你帮助搜索引擎改写用户的问题。"),
            Message::user(format!(
                "请用 {count} 种不同的说法改写下面的问题，以便从文档库中检索相关内容。每行写一个问题，不要编号，不要其他内容。\n\n问题：{question}"
            )),
        ],
        Language::English => vec![
            Message::system("You help a search engine by rewriting users' questions."),
            Message::user(format!(
                "Rewrite the question below in {count} different ways, to find relevant documents. Write one \
                 question per line, with no numbering and nothing else.\n\nQuestion: {question}"
            )),
        ],
    }
}

fn step_back_prompt(question: &str, language: Language) -> Vec<Message> {
    match language {
        Language::Chinese => vec![
            Message::system("你帮助搜索引擎找到回答问题所需的背景知识。"),
            Message::user(format!(
                "请把下面的具体问题改写成一个更一般的问题，询问回答它所需的背景知识或基本原理。只写出这个问题。\n\n\
                 例子：\n问题：爱因斯坦在1905年发表了哪些论文？\n更一般的问题：爱因斯坦的生平和主要成就是什么？\n\n\
                 问题：{question}\n更一般的问题："
            )),
        ],
        Language::English => vec![
            Message::system("You help a search engine find the background knowledge a question needs."),
            Message::user(format!(
                "Rewrite the specific question below as a more general question about the background or the \
                 principles needed to answer it. Write only that question.\n\n\
                 Example:\nQuestion: Which papers did Einstein publish in 1905?\n\
                 General question: What were Einstein's life and main achievements?\n\n\
                 Question: {question}\nGeneral question:"
            )),
        ],
    }
}

/// Up to `count` questions from a model's reply: one per line, with list markers (`1.`, `2)`,
/// `-`, `*`, `（1）`, `一、`), labels (`Rewrite 1:`, `问题：`), Markdown emphasis and quotes
/// removed; preambles (`Here are three rewrites:`), blank lines, repeats and the original
/// question skipped.
pub fn parse_rewrites(reply: &str, question: &str, count: usize) -> Vec<String> {
    let mut seen = vec![normalised(question)];
    let mut rewrites = Vec::new();
    for line in reply.lines() {
        let trimmed = line.trim();
        // An introduction announces the list rather than being part of it.
        if trimmed.ends_with(':') || trimmed.ends_with('：') {
            continue;
        }
        let text = clean_line(trimmed);
        let key = normalised(&text);
        if key.is_empty() || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        rewrites.push(text);
        if rewrites.len() == count {
            break;
        }
    }
    rewrites
}

/// `text`'s letters and digits, lower-cased: what two phrasings of one search share.
fn normalised(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// A line without its list marker, label, emphasis and quotes.
fn clean_line(line: &str) -> String {
    let mut text = line.trim().trim_matches(|c| matches!(c, '*' | '_' | '#' | '`')).trim();
    loop {
        let before = text;
        text = strip_marker(text).trim_start();
        text = strip_label(text).trim_start();
        if text == before {
            break;
        }
    }
    let quotes = |c: char| matches!(c, '"' | '\'' | '“' | '”' | '「' | '」' | '‘' | '’' | '*' | '_' | '`');
    text.trim_matches(quotes).trim().to_string()
}

/// `1.`, `2)`, `3、`, `(4)`, `（5）`, `-`, `*`, `•`, `一、` at the start of a line.
fn strip_marker(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix(['-', '*', '•', '·', '+']) {
        return rest;
    }
    if let Some(inner) = text.strip_prefix(['(', '（']) {
        let digits = inner.trim_start_matches(|c: char| c.is_ascii_digit());
        if digits.len() < inner.len()
            && let Some(rest) = digits.strip_prefix([')', '）'])
        {
            return rest;
        }
    }
    let numerals = |c: char| c.is_ascii_digit() || "一二三四五六七八九十".contains(c);
    let after = text.trim_start_matches(numerals);
    if after.len() < text.len()
        && let Some(rest) = after.strip_prefix(['.', ')', '、', '）', ':', '：'])
    {
        return rest;
    }
    text
}

/// `Rewrite 2:`, `Query:`, `Search query:`, `Question 1 -`, `改写1：`, `问题：` at the start of a line.
fn strip_label(text: &str) -> &str {
    const LABELS: [&str; 16] = [
        "general question",
        "search query",
        "search",
        "rewritten question",
        "rewrite",
        "query",
        "question",
        "version",
        "alternative",
        "更一般的问题",
        "改写",
        "问题",
        "版本",
        "查询",
        "说法",
        "问",
    ];
    for label in LABELS {
        // Compared on the line's own bytes, so the cut below falls where the label ends.
        let Some(head) = text.get(..label.len()) else { continue };
        if head.to_lowercase() != label {
            continue;
        }
        let rest = text[label.len()..].trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        if let Some(rest) = rest.strip_prefix([':', '：', '-', '.']) {
            return rest;
        }
    }
    text
}

/// The last question of a conversation made to stand alone: the chat model rewrites `question`
/// so that it needs none of the `earlier` turns ("and its price?" becomes "what is the price of
/// the X100?"). Without earlier turns, or when the model's reply is empty or rambles, the
/// question is returned as asked.
pub fn standalone_question(chat: &dyn ChatModel, earlier: &[Message], question: &str) -> Result<String> {
    if earlier.is_empty() {
        return Ok(question.to_string());
    }
    let language = detect_language(question);
    // The last few turns carry the reference; older ones only make the prompt longer.
    let transcript: Vec<String> = earlier
        .iter()
        .rev()
        .take(6)
        .rev()
        .map(|m| {
            let who = match (m.role, language) {
                (Role::User, Language::Chinese) => "用户",
                (Role::User, Language::English) => "User",
                (_, Language::Chinese) => "助手",
                (_, Language::English) => "Assistant",
            };
            format!("{who}: {}", crate::one_line(&m.content, 400))
        })
        .collect();
    let transcript = transcript.join("\n");
    let messages = match language {
        Language::Chinese => vec![
            Message::system("你把对话中的最后一个问题改写成一个独立、完整的问题。"),
            Message::user(format!(
                "对话：\n{transcript}\n\n最后的问题：{question}\n\n请把最后的问题改写成不需要对话也能理解的完整问题（补全其中的指代）。只写出这个问题。"
            )),
        ],
        Language::English => vec![
            Message::system(
                "You rewrite the last question of a conversation into a complete question that stands alone.",
            ),
            Message::user(format!(
                "Conversation:\n{transcript}\n\nLast question: {question}\n\nRewrite the last question so that it \
                 can be understood without the conversation (resolve what \"it\", \"that\" or \"they\" refer to). \
                 Write only the question."
            )),
        ],
    };
    let options = GenerationOptions { max_tokens: 96, temperature: 0.0, ..GenerationOptions::default() };
    let reply = chat.chat(&messages, &options, &mut |_| {})?.text;
    let rewritten = parse_rewrites(&reply, "", 1).into_iter().next().unwrap_or_default();
    if rewritten.is_empty() || rewritten.chars().count() > 3 * question.chars().count() + 120 {
        return Ok(question.to_string());
    }
    Ok(rewritten)
}

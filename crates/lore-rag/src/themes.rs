//! Themes: the chunks of a collection grouped by meaning, each group summarised by the chat
//! model into a document of its own (`lore:theme/N`), so questions about the whole corpus ("what
//! are the main topics?") retrieve a passage that speaks of many documents at once (RAPTOR's
//! cluster summaries). When there are more themes than one group holds, the themes are grouped
//! and summarised the same way (`lore:theme/2/N`), level above level, until a level has a few.
//!
//! Built incrementally: each theme keeps the list of its members and the lowest similarity of a
//! member to their centroid (its floor). A later run puts every chunk in the theme whose
//! centroid it is closest to, if it clears that theme's floor; chunks that clear none are
//! clustered anew into new themes (a stray few join their closest theme instead). Only themes
//! whose members changed are summarised again, and a theme left with no member is deleted:
//! adding a document costs the summaries of the themes its chunks join, and of the themes above
//! those, not a rebuild.

use std::collections::{BTreeMap, HashMap};

use lore_core::{
    ChatModel, Chunk, Document, EmbedKind, Embedder, Error, Fnv1a, GenerationOptions, Language, Message, Metadata,
    Result, Section, Store, detect_language,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rerank::dot;

/// Sources of theme documents begin with this.
pub const THEME_PREFIX: &str = "lore:theme/";
/// The document metadata field a theme keeps its state in.
const STATE_FIELD: &str = "theme";
/// Chunks per theme that new themes are cut to, on average.
const TARGET_MEMBERS: usize = 12;
/// Passage text the model reads per theme: the members closest to the centroid first.
const PROMPT_CHARS: usize = 3_500;
/// Characters of one member in the prompt.
const MEMBER_CHARS: usize = 600;
/// Reply tokens for a theme's summary.
const SUMMARY_TOKENS: usize = 200;
/// Chunks that fit no theme start new themes only when there are at least this many.
const MIN_NEW_THEME: usize = 3;
/// Rounds of k-means for new themes.
const KMEANS_ROUNDS: usize = 12;

/// What [`build_themes`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ThemeReport {
    /// Chunks grouped (theme documents excluded).
    pub chunks: usize,
    /// Themes after the run, every level counted.
    pub themes: usize,
    /// Themes summarised by the model in this run (new or changed).
    pub summarized: usize,
    /// Themes whose members did not change: kept as they were.
    pub unchanged: usize,
    /// Themes deleted because no chunk (or, above the first level, no theme) belongs to them
    /// any more, or because their level is no longer built.
    pub removed: usize,
    /// Levels of themes: 1 groups chunks, 2 groups the themes of level 1, and so on.
    pub levels: usize,
}

/// A chunk as themes see it.
struct Member {
    /// `source#ordinal:text hash`: changes when the chunk's text does.
    key: String,
    title: String,
    text: String,
    vector: Vec<f32>,
}

/// What a theme document keeps in its metadata. The centroid is not kept: it is the mean of
/// the members' vectors, which the run has in hand.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ThemeState {
    floor: f32,
    members: Vec<String>,
}

/// Nouns a question names a collection by, lower-case. No singular "document", "passage" or
/// "article": "what is the main cause, according to the passage?" asks about one passage.
const COLLECTION_NOUNS: [&str; 15] = [
    "collection",
    "collections",
    "corpus",
    "documents",
    "passages",
    "files",
    "notes",
    "articles",
    "texts",
    "materials",
    "library",
    "archive",
    "archives",
    "database",
    "dataset",
];

/// Words right before one of those nouns that make it the collection at hand ("the whole
/// corpus", "your library"), not a thing named in it ("the short story collection Dubliners").
const COLLECTION_DETERMINERS: [&str; 10] =
    ["this", "these", "the", "all", "whole", "entire", "your", "my", "our", "its"];

/// Chinese words for a collection at hand.
const COLLECTION_WORDS_ZH: [&str; 13] = [
    "文档集",
    "这些文档",
    "所有文档",
    "全部文档",
    "知识库",
    "语料库",
    "资料库",
    "这些资料",
    "这里都有",
    "这些文件",
    "所有资料",
    "这些文章",
    "所有文章",
];

/// Beginnings of English words that ask what a collection holds ("summar" begins "summary"
/// and "summarise"). Not "main": "the main cause" is a specific question.
const OVERVIEW_STEMS: [&str; 22] = [
    "about",
    "topic",
    "theme",
    "subject",
    "overview",
    "summar",
    "cover",
    "general",
    "broad",
    "overall",
    "gist",
    "mostly",
    "kind",
    "sort",
    "area",
    "scope",
    "categor",
    "content",
    "contain",
    "characteri",
    "everything",
    "roughly",
];

/// Chinese words that ask what a collection holds.
const OVERVIEW_WORDS_ZH: [&str; 12] =
    ["主题", "主要", "概括", "总结", "概述", "内容", "讲", "涵盖", "方面", "领域", "介绍", "哪些"];

/// Whether `source` is a theme document's.
pub fn is_theme_source(source: &str) -> bool {
    source.starts_with(THEME_PREFIX)
}

/// Whether `question` asks about a collection as a whole: it names the collection at hand
/// ("these documents", "the whole corpus", "知识库") and asks for its topics, an overview or a
/// summary. Word lists in English and Chinese rather than a model, so that deciding costs
/// nothing.
pub(crate) fn asks_about_collection(question: &str) -> bool {
    let question = question.to_lowercase();
    let words: Vec<&str> = question.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let pair = |first: &[&str], second: &[&str]| {
        words.windows(2).any(|pair| first.contains(&pair[0]) && second.contains(&pair[1]))
    };
    let names_collection = pair(&COLLECTION_DETERMINERS, &COLLECTION_NOUNS)
        || pair(&["knowledge"], &["base"])
        || pair(&["document"], &["set"])
        || pair(&["in"], &["here"])
        || COLLECTION_WORDS_ZH.iter().any(|words| question.contains(words));
    let asks_overview = words.iter().any(|word| OVERVIEW_STEMS.iter().any(|stem| word.starts_with(stem)))
        || question.contains("tl;dr")
        || OVERVIEW_WORDS_ZH.iter().any(|words| question.contains(words));
    names_collection && asks_overview
}

/// Groups the chunks of `store` into themes and writes a summary document for each new or
/// changed theme, then groups those themes the same way, level above level, until a level has
/// at most [`TARGET_MEMBERS`] themes (see the module documentation). `progress` gets (level,
/// themes of that level summarised, themes of that level to summarise).
pub fn build_themes(
    store: &dyn Store,
    embedder: &dyn Embedder,
    model: &dyn ChatModel,
    progress: &mut dyn FnMut(u32, usize, usize),
) -> Result<ThemeReport> {
    let mut members = Vec::new();
    let mut levels: BTreeMap<u32, BTreeMap<u64, ThemeState>> = BTreeMap::new();
    for info in store.documents()? {
        let Some(stored) = store.stored_document(&info.source)? else { continue };
        if is_theme_source(&info.source) {
            let state = stored.document.metadata.get(STATE_FIELD).cloned().map(serde_json::from_value::<ThemeState>);
            match (theme_place(&info.source), state) {
                (Some((level, number)), Some(Ok(state))) => {
                    levels.entry(level).or_default().insert(number, state);
                }
                // Not written by this module, or damaged: rebuilt from nothing.
                _ => {
                    store.delete_document(&info.source)?;
                }
            }
            continue;
        }
        let title = stored.document.title.clone().unwrap_or_else(|| stored.document.source.clone());
        for (chunk, vector) in stored.chunks.into_iter().zip(stored.vectors) {
            members.push(Member {
                key: format!("{}#{}:{:016x}", info.source, chunk.ordinal, Fnv1a::of(chunk.text.as_bytes())),
                title: title.clone(),
                text: chunk.text,
                vector,
            });
        }
    }
    let mut report = ThemeReport { chunks: members.len(), ..ThemeReport::default() };
    let mut level = 1;
    loop {
        let themes = levels.remove(&level).unwrap_or_default();
        let plan = plan_themes(&members, &themes);
        let changed: Vec<&(u64, Vec<usize>)> = plan
            .iter()
            .filter(|(number, group)| {
                let keys: Vec<&str> = group.iter().map(|&m| members[m].key.as_str()).collect();
                themes.get(number).is_none_or(|old| old.members != keys)
            })
            .collect();
        progress(level, 0, changed.len());
        for (done, (number, group)) in changed.iter().enumerate() {
            let group = group.iter().map(|&m| &members[m]).collect();
            write_theme(store, embedder, model, (level, *number), group)?;
            progress(level, done + 1, changed.len());
        }
        for number in themes.keys().filter(|number| !plan.iter().any(|(n, _)| n == *number)) {
            store.delete_document(&theme_source(level, *number))?;
            report.removed += 1;
        }
        report.themes += plan.len();
        report.summarized += changed.len();
        report.unchanged += plan.len() - changed.len();
        report.levels += usize::from(!plan.is_empty());
        if plan.len() <= TARGET_MEMBERS {
            break;
        }
        // The themes of this level are the members of the next.
        members = Vec::with_capacity(plan.len());
        for (number, _) in &plan {
            let source = theme_source(level, *number);
            let stored = store
                .stored_document(&source)?
                .ok_or_else(|| Error::InvalidInput(format!("theme {source} vanished while themes were built")))?;
            let title = stored.document.title.clone().unwrap_or_else(|| source.clone());
            for (chunk, vector) in stored.chunks.into_iter().zip(stored.vectors) {
                let key = format!("{source}:{:016x}", Fnv1a::of(chunk.text.as_bytes()));
                let text = summary_of(&chunk.text).to_string();
                members.push(Member { key, title: title.clone(), text, vector });
            }
        }
        level += 1;
    }
    // What is left is the levels above the last one built: too few themes to be worth a level.
    for (above, themes) in levels {
        for number in themes.keys() {
            store.delete_document(&theme_source(above, *number))?;
            report.removed += 1;
        }
    }
    Ok(report)
}

/// The source of theme `number` of `level`: `lore:theme/N` for the themes of chunks (level
/// 1), `lore:theme/L/N` for the themes of themes.
fn theme_source(level: u32, number: u64) -> String {
    match level {
        1 => format!("{THEME_PREFIX}{number}"),
        _ => format!("{THEME_PREFIX}{level}/{number}"),
    }
}

/// The (level, number) a theme's source names; `None` for a source no theme has.
fn theme_place(source: &str) -> Option<(u32, u64)> {
    let place = source.strip_prefix(THEME_PREFIX)?;
    match place.split_once('/') {
        None => Some((1, place.parse().ok()?)),
        Some((level, number)) => {
            let level: u32 = level.parse().ok().filter(|&level| level > 1)?;
            Some((level, number.parse().ok()?))
        }
    }
}

/// A theme document's summary: its text without the last paragraph, which lists what it covers.
fn summary_of(text: &str) -> &str {
    text.rsplit_once("\n\n").map_or(text, |(summary, _)| summary)
}

/// Theme number → its members (indexes into `members`, in key order), for every theme that
/// keeps a member or is new. Deterministic: the same chunks and themes give the same plan.
fn plan_themes(members: &[Member], themes: &BTreeMap<u64, ThemeState>) -> Vec<(u64, Vec<usize>)> {
    let by_key: HashMap<&str, &[f32]> = members.iter().map(|m| (m.key.as_str(), m.vector.as_slice())).collect();
    // A theme's centroid from its members that are still there unchanged; none, no theme.
    let centroids: Vec<(u64, Vec<f32>, f32)> = themes
        .iter()
        .filter_map(|(&number, theme)| {
            let vectors: Vec<&[f32]> =
                theme.members.iter().filter_map(|key| by_key.get(key.as_str()).copied()).collect();
            (!vectors.is_empty()).then(|| (number, mean_direction(&vectors), theme.floor))
        })
        .collect();
    let mut groups: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut leftovers = Vec::new();
    let nearest: Vec<Option<(u64, f32, f32)>> = members
        .iter()
        .map(|member| {
            centroids
                .iter()
                .map(|(number, centroid, floor)| (*number, dot(&member.vector, centroid), *floor))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        })
        .collect();
    for (m, nearest) in nearest.iter().enumerate() {
        match nearest {
            Some((number, similarity, floor)) if similarity >= floor => groups.entry(*number).or_default().push(m),
            _ => leftovers.push(m),
        }
    }
    // Too few strangers for a theme of their own: each joins the theme it is closest to (a
    // theme's floor, the least similar of ten or so members, is a rough edge).
    if leftovers.len() < MIN_NEW_THEME {
        for m in std::mem::take(&mut leftovers) {
            match nearest[m] {
                Some((number, _, _)) => groups.entry(number).or_default().push(m),
                None => leftovers.push(m),
            }
        }
    }
    let first_new = themes.keys().last().map_or(1, |last| last + 1);
    let count = leftovers.len().div_ceil(TARGET_MEMBERS);
    groups.extend((first_new..).zip(kmeans(members, &leftovers, count)));
    let mut plan: Vec<(u64, Vec<usize>)> = groups.into_iter().filter(|(_, group)| !group.is_empty()).collect();
    for (_, group) in &mut plan {
        group.sort_by(|&a, &b| members[a].key.cmp(&members[b].key));
    }
    plan
}

/// `count` clusters of `chosen` (indexes into `members`) by spherical k-means, seeded by the
/// farthest-first rule from the first chunk, so runs agree; empty clusters are dropped.
fn kmeans(members: &[Member], chosen: &[usize], count: usize) -> Vec<Vec<usize>> {
    if chosen.is_empty() || count == 0 {
        return Vec::new();
    }
    let vector = |i: usize| members[chosen[i]].vector.as_slice();
    let mut centres: Vec<Vec<f32>> = vec![vector(0).to_vec()];
    while centres.len() < count.min(chosen.len()) {
        let farthest = (0..chosen.len())
            .map(|i| (i, centres.iter().map(|c| dot(vector(i), c)).fold(f32::MIN, f32::max)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            .map_or(0, |(i, _)| i);
        centres.push(vector(farthest).to_vec());
    }
    let mut assignment = vec![0; chosen.len()];
    for _ in 0..KMEANS_ROUNDS {
        for (i, slot) in assignment.iter_mut().enumerate() {
            *slot = (0..centres.len())
                .max_by(|&a, &b| dot(vector(i), &centres[a]).total_cmp(&dot(vector(i), &centres[b])).then(b.cmp(&a)))
                .unwrap_or(0);
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let group: Vec<&[f32]> = (0..chosen.len()).filter(|&i| assignment[i] == c).map(vector).collect();
            if !group.is_empty() {
                *centre = mean_direction(&group);
            }
        }
    }
    (0..centres.len())
        .map(|c| (0..chosen.len()).filter(|&i| assignment[i] == c).map(|i| chosen[i]).collect::<Vec<_>>())
        .filter(|group| !group.is_empty())
        .collect()
}

/// Summarises one theme and stores it as [`theme_source`] of `(level, number)`.
fn write_theme(
    store: &dyn Store,
    embedder: &dyn Embedder,
    model: &dyn ChatModel,
    (level, number): (u32, u64),
    group: Vec<&Member>,
) -> Result<()> {
    let source = theme_source(level, number);
    let vectors: Vec<&[f32]> = group.iter().map(|m| m.vector.as_slice()).collect();
    let centroid = mean_direction(&vectors);
    let floor = group.iter().map(|m| dot(&m.vector, &centroid)).fold(f32::MAX, f32::min);
    let mut closest: Vec<&&Member> = group.iter().collect();
    closest.sort_by(|a, b| dot(&b.vector, &centroid).total_cmp(&dot(&a.vector, &centroid)).then(a.key.cmp(&b.key)));
    let mut passages = String::new();
    for member in closest {
        let text: String = member.text.chars().take(MEMBER_CHARS).collect();
        let passage = format!("[{}] {}\n\n", member.title, text.split_whitespace().collect::<Vec<_>>().join(" "));
        if !passages.is_empty() && passages.len() + passage.len() > PROMPT_CHARS {
            break;
        }
        passages.push_str(&passage);
    }
    let system = match detect_language(&passages) {
        Language::Chinese => SYSTEM_ZH,
        Language::English => SYSTEM_EN,
    };
    let options = GenerationOptions { max_tokens: SUMMARY_TOKENS, ..GenerationOptions::default() };
    let reply = model.chat(&[Message::system(system), Message::user(passages)], &options, &mut |_| {})?;
    let summary = reply.text.trim();
    if summary.is_empty() {
        return Err(Error::Model(format!("{} wrote an empty summary for {source}", model.id())));
    }
    // No blank line inside the summary: the list after it is its text's only other paragraph
    // (`summary_of`).
    let summary = summary.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join("\n");
    let mut titles: Vec<&str> = group.iter().map(|m| m.title.as_str()).collect();
    titles.sort_unstable();
    titles.dedup();
    let listed = if level == 1 { "Documents" } else { "Themes" };
    let text = format!("{summary}\n\n{listed}: {}", titles.join("; "));
    let heading = summary.lines().next().unwrap_or_default().trim_start_matches(['#', ' ']).to_string();
    let mut doc = Document::new(source.clone(), vec![Section::new(vec![], text.clone())]);
    doc.title = Some(heading);
    let state = ThemeState { floor, members: group.iter().map(|m| m.key.clone()).collect() };
    let state = serde_json::to_value(&state).map_err(|e| Error::InvalidInput(format!("{source}: {e}")))?;
    doc.metadata.insert(STATE_FIELD.into(), state);
    doc.metadata.insert("kind".into(), Value::from("theme"));
    doc.metadata.insert("level".into(), Value::from(level));
    let vectors = embedder.embed(&[text.as_str()], EmbedKind::Passage)?;
    store.upsert(&doc, &[Chunk { text, ordinal: 0, metadata: Metadata::new() }], &vectors)?;
    Ok(())
}

const SYSTEM_EN: &str = "You are given passages from a document collection that are about related things. \
Write a first line naming their common theme in a few words, then three to five sentences that say what \
the passages cover, with the names, facts and figures they share. Use only the passages.";

const SYSTEM_ZH: &str = "下面是文档集中内容相关的若干段落。第一行用几个词概括它们的共同主题，\
然后用三到五句话说明这些段落讲了什么，写出其中共同的名称、事实和数字。只使用段落中的内容。";

/// The unit vector along the mean of `vectors`.
fn mean_direction(vectors: &[&[f32]]) -> Vec<f32> {
    let mut mean = vec![0f32; vectors.first().map_or(0, |v| v.len())];
    for vector in vectors {
        for (m, x) in mean.iter_mut().zip(*vector) {
            *m += x;
        }
    }
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        mean.iter_mut().for_each(|x| *x /= norm);
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;
    use lore_core::{FinishReason, Generation};

    fn member(key: &str, vector: [f32; 2]) -> Member {
        let norm = (vector[0] * vector[0] + vector[1] * vector[1]).sqrt();
        Member {
            key: key.into(),
            title: key.into(),
            text: key.into(),
            vector: vector.iter().map(|x| x / norm).collect(),
        }
    }

    fn state(members: &[Member], group: &[usize]) -> ThemeState {
        let vectors: Vec<&[f32]> = group.iter().map(|&m| members[m].vector.as_slice()).collect();
        let centroid = mean_direction(&vectors);
        let floor = group.iter().map(|&m| dot(&members[m].vector, &centroid)).fold(f32::MAX, f32::min);
        ThemeState { floor, members: group.iter().map(|&m| members[m].key.clone()).collect() }
    }

    /// Writes "Theme N" and a sentence, N counting its calls, so every summary differs.
    struct Numbered(std::sync::atomic::AtomicUsize);

    impl ChatModel for Numbered {
        fn id(&self) -> &str {
            "numbered"
        }
        fn chat(&self, _: &[Message], _: &GenerationOptions, _: &mut dyn FnMut(&str)) -> Result<Generation> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let text = format!("Theme {n}\n\nIt covers related notes.");
            Ok(Generation { text, prompt_tokens: 1, completion_tokens: 1, finish: FinishReason::Stop })
        }
        fn choice_probabilities(&self, _: &[Message], _: &[&str]) -> Result<Vec<f32>> {
            Err(Error::Model("not scored".into()))
        }
    }

    #[test]
    fn many_themes_are_grouped_into_themes_of_themes() {
        use lore_core::ChunkConfig;
        use lore_index::Collection;
        use lore_testkit::WordHash;

        let dir = tempfile::tempdir().unwrap();
        let store = Collection::create(dir.path(), "word-hash", 64, ChunkConfig::Whole).unwrap();
        let add = |i: usize| {
            let text = format!("note {i} on topic{} with word{i}", i % 15);
            let doc = Document::new(format!("n{i:03}.txt"), vec![Section::new(vec![], text.clone())]);
            let vectors = WordHash.embed(&[text.as_str()], EmbedKind::Passage).unwrap();
            store.upsert(&doc, &[Chunk { text, ordinal: 0, metadata: Metadata::new() }], &vectors).unwrap();
        };
        (0..300).for_each(add);
        let model = Numbered(0.into());
        let mut summarised: BTreeMap<u32, usize> = BTreeMap::new();
        let mut build = || {
            summarised.clear();
            let report = build_themes(&store, &WordHash, &model, &mut |level, _, total| {
                summarised.insert(level, total);
            })
            .unwrap();
            (report, summarised.clone())
        };

        // 300 chunks make about 25 themes, more than one level should hold, so they are
        // grouped in turn into a few.
        let (first, per_level) = build();
        assert!(per_level[&1] > TARGET_MEMBERS && (1..=TARGET_MEMBERS).contains(&per_level[&2]), "{per_level:?}");
        assert_eq!((first.levels, first.themes, first.summarized), (2, per_level[&1] + per_level[&2], first.themes));
        let top = store.stored_document("lore:theme/2/1").unwrap().unwrap();
        assert_eq!(top.document.metadata["level"], 2);
        let text = &top.chunks[0].text;
        assert!(text.starts_with("Theme ") && text.contains("\n\nThemes: Theme "), "{text}");
        assert_eq!(summary_of(text).lines().count(), 2, "{text}");

        let (again, _) = build();
        assert_eq!((again.summarized, again.unchanged), (0, first.themes), "{again:?}");

        // A new chunk changes one theme of chunks, whose new summary changes its theme above
        // (or moves it to another).
        add(300);
        let (grown, per_level) = build();
        assert_eq!(per_level[&1], 1, "{grown:?}");
        assert!((1..=2).contains(&per_level[&2]), "{grown:?}");

        assert_eq!(theme_place("lore:theme/7"), Some((1, 7)));
        assert_eq!(theme_place("lore:theme/2/3"), Some((2, 3)));
        assert_eq!(theme_place("lore:theme/1/3"), None);
        assert_eq!(theme_source(2, 3), "lore:theme/2/3");
    }

    #[test]
    fn questions_about_the_collection_are_told_from_specific_ones() {
        for question in [
            "What are the main topics of these documents?",
            "Summarize the entire corpus.",
            "what kinds of stuff do you have in here",
            "这些文档主要讲了哪些主题？",
            "你的知识库包含哪些领域的信息？",
        ] {
            assert!(asks_about_collection(question), "{question}");
        }
        for question in [
            "When was the short story collection Dubliners first published?",
            "What historic documents did Thomas Jefferson help write?",
            "What is the main material of the Eiffel Tower?",
            "According to the passage, what is the main cause of the decline?",
            "What does the article say about tariffs?",
            "Which players were born in Hereford?",
            "数据库的主要类型有哪些？",
        ] {
            assert!(!asks_about_collection(question), "{question}");
        }
        // Nor is any question of the evaluation datasets, all of them specific.
        let datasets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
        let mut taken = Vec::new();
        for name in ["cmrc2018", "hotpotqa100", "scifact"] {
            let path = datasets.join(name).join("queries.jsonl");
            let lines = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for line in lines.lines() {
                let query: Value = serde_json::from_str(line).unwrap();
                let text = query["text"].as_str().unwrap();
                if asks_about_collection(text) {
                    taken.push(format!("{name}: {text}"));
                }
            }
        }
        assert!(taken.is_empty(), "{taken:#?}");
    }

    #[test]
    fn new_chunks_join_the_theme_they_fit_and_strangers_start_their_own() {
        // 30 chunks near the x axis, 30 near the y axis.
        let mut members: Vec<Member> = (0..30).map(|i| member(&format!("x{i:02}"), [1.0, i as f32 * 0.01])).collect();
        members.extend((0..30).map(|i| member(&format!("y{i:02}"), [i as f32 * 0.01, 1.0])));
        let first = plan_themes(&members, &BTreeMap::new());
        assert_eq!(first.len(), 60usize.div_ceil(TARGET_MEMBERS));
        for (_, group) in &first {
            let on_x = group.iter().filter(|&&m| members[m].key.starts_with('x')).count();
            assert!(on_x == 0 || on_x == group.len(), "a theme mixes the axes: {group:?}");
        }
        let themes: BTreeMap<u64, ThemeState> =
            first.iter().map(|(number, group)| (*number, state(&members, group))).collect();
        assert_eq!(plan_themes(&members, &themes), first, "nothing changed: the same themes");

        // A chunk inside the x themes' spread joins one of them; three on the diagonal, outside
        // every theme's floor, start a new theme.
        members.push(member("x-new", [1.0, 0.145]));
        for d in 0..MIN_NEW_THEME {
            members.push(member(&format!("diagonal{d}"), [1.0, 1.0 + d as f32 * 0.01]));
        }
        let second = plan_themes(&members, &themes);
        let changed: Vec<&(u64, Vec<usize>)> = second
            .iter()
            .filter(|(n, group)| {
                themes
                    .get(n)
                    .is_none_or(|t| t.members != group.iter().map(|&m| members[m].key.clone()).collect::<Vec<_>>())
            })
            .collect();
        assert_eq!(changed.len(), 2, "{changed:?}");
        let new = changed.iter().find(|(n, _)| !themes.contains_key(n)).unwrap();
        assert_eq!(new.1, (61..61 + MIN_NEW_THEME).collect::<Vec<_>>());
        assert_eq!(new.0, themes.keys().last().unwrap() + 1);

        // One stranger alone joins the theme it is closest to.
        members.truncate(61);
        members.push(member("stray", [1.0, 1.0]));
        let third = plan_themes(&members, &themes);
        assert_eq!(third.len(), themes.len());
        assert!(third.iter().any(|(_, group)| group.contains(&61)));
    }
}

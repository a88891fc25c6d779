//! Themes: the chunks of a collection grouped by meaning, each group summarised by the chat
//! model into a document of its own (`lore:theme/N`), so questions about the whole corpus ("what
//! are the main topics?") retrieve a passage that speaks of many documents at once (RAPTOR's
//! cluster summaries, one level).
//!
//! Built incrementally: each theme keeps the list of its members and the lowest similarity of a
//! member to their centroid (its floor). A later run puts every chunk in the theme whose
//! centroid it is closest to, if it clears that theme's floor; chunks that clear none are
//! clustered anew into new themes (a stray few join their closest theme instead). Only themes whose members changed are summarised again,
//! and a theme left with no member is deleted: adding a document costs the summaries of the
//! themes its chunks join, not a rebuild.

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
    /// Themes after the run.
    pub themes: usize,
    /// Themes summarised by the model in this run (new or changed).
    pub summarized: usize,
    /// Themes whose members did not change: kept as they were.
    pub unchanged: usize,
    /// Themes deleted because no chunk belongs to them any more.
    pub removed: usize,
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

/// Groups the chunks of `store` into themes and writes a summary document for each new or
/// changed theme (see the module documentation). `progress` gets (themes summarised, themes
/// to summarise).
pub fn build_themes(
    store: &dyn Store,
    embedder: &dyn Embedder,
    model: &dyn ChatModel,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ThemeReport> {
    let mut members = Vec::new();
    let mut themes: BTreeMap<u64, ThemeState> = BTreeMap::new();
    for info in store.documents()? {
        let Some(stored) = store.stored_document(&info.source)? else { continue };
        if let Some(number) = info.source.strip_prefix(THEME_PREFIX) {
            let state = stored.document.metadata.get(STATE_FIELD).cloned().map(serde_json::from_value::<ThemeState>);
            match (number.parse::<u64>(), state) {
                (Ok(number), Some(Ok(state))) => {
                    themes.insert(number, state);
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
    let plan = plan_themes(&members, &themes);
    let changed: Vec<&(u64, Vec<usize>)> = plan
        .iter()
        .filter(|(number, group)| {
            let keys: Vec<&str> = group.iter().map(|&m| members[m].key.as_str()).collect();
            themes.get(number).is_none_or(|old| old.members != keys)
        })
        .collect();
    progress(0, changed.len());
    for (done, (number, group)) in changed.iter().enumerate() {
        write_theme(store, embedder, model, *number, group.iter().map(|&m| &members[m]).collect())?;
        progress(done + 1, changed.len());
    }
    let emptied: Vec<&u64> = themes.keys().filter(|number| !plan.iter().any(|(n, _)| n == *number)).collect();
    for number in &emptied {
        store.delete_document(&format!("{THEME_PREFIX}{number}"))?;
    }
    Ok(ThemeReport {
        chunks: members.len(),
        themes: plan.len(),
        summarized: changed.len(),
        unchanged: plan.len() - changed.len(),
        removed: emptied.len(),
    })
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

/// Summarises one theme and stores it as `lore:theme/NUMBER`.
fn write_theme(
    store: &dyn Store,
    embedder: &dyn Embedder,
    model: &dyn ChatModel,
    number: u64,
    group: Vec<&Member>,
) -> Result<()> {
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
        return Err(Error::Model(format!("{} wrote an empty summary for theme {number}", model.id())));
    }
    let mut titles: Vec<&str> = group.iter().map(|m| m.title.as_str()).collect();
    titles.sort_unstable();
    titles.dedup();
    let text = format!("{summary}\n\nDocuments: {}", titles.join("; "));
    let heading = summary.lines().next().unwrap_or_default().trim_start_matches(['#', ' ']).to_string();
    let mut doc = Document::new(format!("{THEME_PREFIX}{number}"), vec![Section::new(vec![], text.clone())]);
    doc.title = Some(heading);
    let state = ThemeState { floor, members: group.iter().map(|m| m.key.clone()).collect() };
    let state = serde_json::to_value(&state).map_err(|e| Error::InvalidInput(format!("theme {number}: {e}")))?;
    doc.metadata.insert(STATE_FIELD.into(), state);
    doc.metadata.insert("kind".into(), Value::from("theme"));
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

//! The arena: several named pipeline configurations run on one dataset, compared in a Markdown
//! leaderboard and a self-contained HTML report.

use std::fmt::Write as _;
use std::path::Path;

use lore_core::{Error, PipelineConfig, Result};
use serde::Serialize;

use crate::{AnsweredQuestion, Mean, QaReport};

/// A named pipeline configuration in an arena.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Contender {
    /// The contender's name: its table's key in the arena file.
    pub name: String,
    /// The pipeline it runs, its preset (if any) merged with its own settings.
    pub config: PipelineConfig,
}

/// The built-in arenas, by name, as the TOML they are written in (`arenas/` in this crate).
pub const ARENAS: &[(&str, &str)] = &[
    ("tutorial", include_str!("../arenas/tutorial.toml")),
    ("retrieval", include_str!("../arenas/retrieval.toml")),
    ("themes", include_str!("../arenas/themes.toml")),
    ("grounded", include_str!("../arenas/grounded.toml")),
];

/// A built-in arena's name, or the path of an arena file; returns the name to report it under
/// (the arena's name or the file's stem) and its contenders.
pub fn load_arena(name_or_path: &str) -> Result<(String, Vec<Contender>)> {
    if let Some((name, text)) = ARENAS.iter().find(|(name, _)| *name == name_or_path) {
        return Ok((name.to_string(), parse_arena(text, name)?));
    }
    let path = Path::new(name_or_path);
    if !path.is_file() {
        let names: Vec<&str> = ARENAS.iter().map(|(name, _)| *name).collect();
        return Err(Error::NotFound(format!(
            "no arena named {name_or_path:?} and no such file; built-in arenas: {}",
            names.join(", ")
        )));
    }
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok((name, parse_arena(&text, name_or_path)?))
}

/// Parses an arena file: each top-level table is a contender named by its key, holding a
/// [`PipelineConfig`]; `preset = "NAME"` starts from a pipeline preset and the table's other keys
/// override it (tables merged key by key). Contenders keep the file's order.
///
/// ```toml
/// [tutorial]
/// preset = "tutorial"
///
/// [tutorial-top5]
/// preset = "tutorial"
/// top_k = 5
/// ```
pub fn parse_arena(text: &str, origin: &str) -> Result<Vec<Contender>> {
    let invalid = |reason: String| Error::InvalidInput(format!("arena {origin}: {reason}"));
    let table: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut contenders = Vec::with_capacity(table.len());
    for (name, value) in table {
        let toml::Value::Table(mut settings) = value else {
            return Err(invalid(format!(
                "'{name}' is not a table: each contender is a [NAME] table of pipeline settings"
            )));
        };
        let merged = match settings.remove("preset") {
            Some(toml::Value::String(preset)) => {
                let Some((_, preset_text)) = lore_rag::PRESETS.iter().find(|(p, _)| *p == preset) else {
                    let names: Vec<&str> = lore_rag::PRESETS.iter().map(|(p, _)| *p).collect();
                    return Err(invalid(format!(
                        "[{name}]: no pipeline preset '{preset}'; presets: {}",
                        names.join(", ")
                    )));
                };
                let mut base: toml::Table = toml::from_str(preset_text).map_err(|e| invalid(e.to_string()))?;
                merge(&mut base, settings);
                base
            }
            Some(other) => return Err(invalid(format!("[{name}]: preset must be a preset's name, not {other}"))),
            None => settings,
        };
        let config: PipelineConfig = merged.try_into().map_err(|e| invalid(format!("[{name}]: {e}")))?;
        contenders.push(Contender { name, config });
    }
    if contenders.is_empty() {
        return Err(invalid("no contender: add a [NAME] table of pipeline settings".into()));
    }
    Ok(contenders)
}

/// Overlays `over` on `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// One contender's results.
#[derive(Clone, Debug, Serialize)]
pub struct ArenaEntry {
    /// The contender's name.
    pub name: String,
    /// The contender's pipeline configuration.
    pub config: PipelineConfig,
    /// The generator that answered.
    pub llm: String,
    /// The contender's answer metrics, judge and grounding summaries, and costs.
    pub report: QaReport,
    /// The headline retrieval metrics on the judged questions, when the dataset has qrels.
    pub retrieval: Option<Vec<(String, f64)>>,
    /// Each question with the contender's answer, passages and scores, in the dataset's order.
    pub answered: Vec<AnsweredQuestion>,
}

impl ArenaEntry {
    /// What the leaderboard ranks by: the judge's score (1–5) when the arena had a judge, else F1.
    fn headline(&self, judged: bool) -> Option<f64> {
        if judged { self.report.judge.as_ref().and_then(|j| j.score.value) } else { self.report.qa.f1.value }
    }

    fn retrieval_metric(&self, name: &str) -> Option<f64> {
        self.retrieval.as_ref()?.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

fn judged(entries: &[ArenaEntry]) -> bool {
    entries.iter().any(|e| e.report.judge.is_some())
}

fn ranks(entries: &[ArenaEntry]) -> Vec<usize> {
    let score = |e: &ArenaEntry| e.headline(judged(entries)).unwrap_or(f64::NEG_INFINITY);
    entries.iter().map(|e| 1 + entries.iter().filter(|o| score(o) > score(e)).count()).collect()
}

fn mean_cell(mean: &Mean, digits: usize) -> String {
    match mean.value {
        Some(v) if mean.failed > 0 => format!("{v:.digits$} ({} unscored)", mean.failed),
        Some(v) => format!("{v:.digits$}"),
        None => "–".into(),
    }
}

fn option_cell(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:.3}"))
}

/// The leaderboard as a Markdown table, contenders in the arena's order with their rank: by
/// judge score when there was a judge, else by F1.
pub fn leaderboard_markdown(entries: &[ArenaEntry]) -> String {
    let judged = judged(entries);
    let with_qrels = entries.iter().any(|e| e.retrieval.is_some());
    let mut header = vec!["rank", "config"];
    if judged {
        header.push("judge (1–5)");
    }
    header.extend(["F1", "ROUGE-L", "EM", "answer in context", "refusal acc."]);
    if with_qrels {
        header.extend(["nDCG@10", "Recall@10", "MRR@10"]);
    }
    header.extend(["latency (s)", "tokens in/out"]);
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for (entry, rank) in entries.iter().zip(ranks(entries)) {
        let report = &entry.report;
        let mut row = vec![rank.to_string(), entry.name.clone()];
        if judged {
            row.push(report.judge.as_ref().map_or("–".into(), |j| mean_cell(&j.score, 2)));
        }
        row.extend([
            mean_cell(&report.qa.f1, 3),
            mean_cell(&report.qa.rouge_l, 3),
            mean_cell(&report.qa.exact_match, 3),
            mean_cell(&report.qa.answer_in_context, 3),
            option_cell(report.qa.refusal_accuracy),
        ]);
        if with_qrels {
            row.extend(["ndcg@10", "recall@10", "mrr@10"].map(|m| option_cell(entry.retrieval_metric(m))));
        }
        row.push(format!("{:.1}", report.latency_ms / 1e3));
        row.push(format!("{:.0}/{:.0}", report.prompt_tokens, report.completion_tokens));
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;line-height:1.45;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}details{margin:.4em 0}summary{cursor:pointer}.answer{white-space:pre-wrap}\
.passage{white-space:pre-wrap;font-size:.9em;color:#444;border-left:3px solid #ddd;padding-left:.6em;margin:.3em 0}\
.cited{border-left-color:#2a7}.muted{color:#777;font-size:.9em}pre{white-space:pre-wrap}";

/// A horizontal bar per contender, scaled to the metric's range.
fn bar_chart(entries: &[ArenaEntry], label: &str, max: f64) -> String {
    let (bar_height, gap, label_width, width) = (24.0, 8.0, 180.0, 420.0);
    let height = entries.len() as f64 * (bar_height + gap) + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        label_width + width + 80.0,
        escape(label)
    );
    for (i, entry) in entries.iter().enumerate() {
        let y = i as f64 * (bar_height + gap);
        let value = entry.headline(judged(entries));
        let length = value.map_or(0.0, |v| (v / max).clamp(0.0, 1.0) * width);
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"13\">{}</text>\
             <rect x=\"{label_width}\" y=\"{y}\" width=\"{length:.1}\" height=\"{bar_height}\" fill=\"#3a7bd5\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"13\">{}</text>",
            label_width - 8.0,
            y + bar_height * 0.7,
            escape(&entry.name),
            label_width + length + 6.0,
            y + bar_height * 0.7,
            value.map_or("unscored".into(), |v| format!("{v:.2}")),
        );
    }
    let axis_y = entries.len() as f64 * (bar_height + gap) + 16.0;
    let _ = write!(
        svg,
        "<text x=\"{label_width}\" y=\"{axis_y}\" font-size=\"12\" fill=\"#777\">{} (axis 0 to {max})</text></svg>",
        escape(label)
    );
    svg
}

fn markdown_table_to_html(markdown: &str) -> String {
    let mut html = String::from("<table>");
    for (i, line) in markdown.lines().enumerate().filter(|(i, _)| *i != 1) {
        let cell = if i == 0 { "th" } else { "td" };
        html.push_str("<tr>");
        for value in line.trim().trim_matches('|').split('|') {
            let _ = write!(html, "<{cell}>{}</{cell}>", escape(value.trim()));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// The arena's report: one HTML file with no external resource (inline CSS and SVG), so it
/// opens offline: the leaderboard, a bar chart of the ranking score, each contender's settings,
/// and per question the gold answer and each contender's answer, scores, judge reasoning and
/// the passages it read (the cited ones marked).
pub fn html_report(title: &str, entries: &[ArenaEntry]) -> String {
    let (label, max) = if judged(entries) { ("judge score (1–5)", 5.0) } else { ("token F1", 1.0) };
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{0}</title><style>{STYLE}</style></head><body><h1>{0}</h1>",
        escape(title)
    );
    let _ = write!(html, "<h2>Leaderboard</h2>{}", markdown_table_to_html(&leaderboard_markdown(entries)));
    let _ = write!(html, "<h2>Scores</h2>{}", bar_chart(entries, label, max));
    html.push_str("<h2>Configurations</h2>");
    for entry in entries {
        let settings = serde_json::to_string_pretty(&entry.config).unwrap_or_else(|e| format!("cannot show: {e}"));
        let _ = write!(
            html,
            "<details><summary>{} <span class=\"muted\">(generator {})</span></summary><pre>{}</pre></details>",
            escape(&entry.name),
            escape(&entry.llm),
            escape(&settings)
        );
    }
    html.push_str("<h2>Questions</h2>");
    let questions = entries.first().map_or(0, |e| e.answered.len());
    for q in 0..questions {
        let item = &entries[0].answered[q].item;
        let kind = if item.answerable { "" } else { " <span class=\"muted\">(unanswerable)</span>" };
        let _ = write!(
            html,
            "<details><summary><b>{}</b> {}{kind}</summary><p><b>Gold:</b> <span class=\"answer\">{}</span></p>",
            escape(&item.id),
            escape(&item.question),
            escape(item.reference_answer())
        );
        for entry in entries {
            let Some(answered) = entry.answered.get(q) else { continue };
            html.push_str(&answer_html(&entry.name, answered));
        }
        html.push_str("</details>");
    }
    html.push_str("</body></html>\n");
    html
}

fn answer_html(contender: &str, answered: &AnsweredQuestion) -> String {
    let scores = &answered.scores;
    let mut facts = Vec::new();
    if let Some(f1) = scores.f1 {
        facts.push(format!("F1 {f1:.2}"));
    }
    if let Some(found) = scores.answer_in_context {
        facts.push(format!("answer in context: {}", if found { "yes" } else { "no" }));
    }
    if scores.refused {
        facts.push("refused".into());
    }
    let judgement = match &answered.judgement {
        Some(Ok(j)) => {
            facts.insert(0, format!("judge {:.2}", j.scores.mean()));
            format!(
                "<p class=\"muted\">correctness {}, completeness {}, clarity {}: {}</p>",
                j.scores.correctness,
                j.scores.completeness,
                j.scores.clarity,
                escape(&j.reasoning)
            )
        }
        Some(Err(failure)) => {
            facts.insert(0, "judge: unscored".into());
            format!(
                "<p class=\"muted\">the judge's reply could not be read after {} attempts ({}): {}</p>",
                failure.attempts,
                escape(&failure.reason),
                escape(&failure.last_output)
            )
        }
        None => String::new(),
    };
    let mut html = format!(
        "<h4>{} <span class=\"muted\">{} · {:.1} s</span></h4><div class=\"answer\">{}</div>{judgement}",
        escape(contender),
        escape(&facts.join(" · ")),
        answered.answer.timings.total_ms / 1e3,
        escape(&answered.answer.text)
    );
    if !answered.passages.is_empty() {
        let _ = write!(html, "<details><summary>{} passages read</summary>", answered.passages.len());
        for p in &answered.passages {
            let (class, mark) = if p.cited { (" cited", " · cited") } else { ("", "") };
            let _ = write!(
                html,
                "<div class=\"passage{class}\"><b>[{}]</b> {} <span class=\"muted\">score {:.3}{mark}</span>\n{}</div>",
                p.n,
                escape(&p.source),
                p.score,
                escape(&p.text)
            );
        }
        html.push_str("</details>");
    }
    html
}

use super::{Outline, Parsed};

/// Markdown split into sections by its ATX headings (outside code fences); the first level-1
/// heading is the title.
pub(crate) fn markdown(text: &str) -> Parsed {
    let mut outline = Outline::default();
    let mut title = None;
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        match (!in_fence).then(|| atx_heading(line)).flatten() {
            Some((level, heading)) => {
                if level == 1 && title.is_none() {
                    title = Some(heading.clone());
                }
                outline.heading(level, heading);
            }
            None => outline.line(line),
        }
    }
    Parsed { sections: outline.finish(), title, ..Parsed::default() }
}

fn atx_heading(line: &str) -> Option<(usize, String)> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    let rest = &line[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let heading = rest.trim().trim_end_matches('#').trim();
    Some((level, heading.to_string()))
}

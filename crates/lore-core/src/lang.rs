/// The language a prompt is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// Chinese (simplified or traditional).
    Chinese,
    /// English, and every language that is not Chinese.
    English,
}

/// Chinese when at least a fifth of the letters are CJK ideographs, else English.
///
/// ```
/// use lore_core::{detect_language, Language};
/// assert_eq!(detect_language("Qwen3 的上下文长度是多少？"), Language::Chinese);
/// assert_eq!(detect_language("What is Lore?"), Language::English);
/// ```
pub fn detect_language(text: &str) -> Language {
    let (mut cjk, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if is_cjk(c) {
            cjk += 1;
        }
    }
    if letters > 0 && cjk * 5 >= letters { Language::Chinese } else { Language::English }
}

/// CJK unified ideographs (the basic block and extension A) and compatibility ideographs.
pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

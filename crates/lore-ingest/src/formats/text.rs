use encoding_rs::{Encoding, GB18030};
use lore_core::{Section, is_cjk};

use super::Parsed;

/// Plain text as one section.
pub(crate) fn plain(text: &str) -> Parsed {
    Parsed { sections: vec![Section::new(Vec::new(), text.replace("\r\n", "\n").trim())], ..Parsed::default() }
}

/// Text in UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order mark, or
/// GB18030/GBK, which is what Chinese Windows saves by default. Anything else is refused with
/// the reason, rather than read as mojibake.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, String> {
    let text = match Encoding::for_bom(bytes) {
        Some((encoding, bom_length)) => encoding
            .decode_without_bom_handling_and_without_replacement(&bytes[bom_length..])
            .ok_or_else(|| format!("invalid {} text (truncated or damaged)", encoding.name()))?
            .into_owned(),
        None => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) if bytes.contains(&0) => return Err(binary()),
            Err(e) => gb18030(bytes).ok_or_else(|| {
                format!(
                    "not UTF-8 (invalid byte at offset {}), UTF-16 with a byte-order mark, or GB18030/GBK text; \
                     convert it to UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`)",
                    e.valid_up_to()
                )
            })?,
        },
    };
    if text.contains('\0') {
        return Err(binary());
    }
    Ok(text)
}

fn binary() -> String {
    "binary content (NUL bytes), not text".into()
}

/// GB18030 decodes many byte strings that are really Latin-1 or Shift-JIS; accept it only when
/// it decodes without errors and the non-ASCII characters it yields are nearly all Chinese
/// characters or CJK punctuation.
fn gb18030(bytes: &[u8]) -> Option<String> {
    let text = GB18030.decode_without_bom_handling_and_without_replacement(bytes)?;
    let (mut wide, mut chinese) = (0usize, 0usize);
    for c in text.chars().filter(|c| !c.is_ascii()) {
        wide += 1;
        if is_cjk(c) || matches!(c, '\u{3000}'..='\u{303F}' | '\u{FF00}'..='\u{FFEF}' | '\u{2010}'..='\u{2027}') {
            chinese += 1;
        }
    }
    (chinese * 10 >= wide * 9).then(|| text.into_owned())
}

//! Workbooks (XLSX, XLSM, XLSB, XLS, ODS): one section per sheet, under the sheet's name, each
//! row rendered "Header1: v1; Header2: v2" against the sheet's first non-empty row.

use std::fmt::Display;
use std::io::Cursor;

use calamine::{Data, Ods, Reader, Xls, Xlsb, Xlsx, open_workbook_from_rs};
use lore_core::Section;

use super::{Parsed, labelled_rows};

type Source<'b> = Cursor<&'b [u8]>;

pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let sections = if bytes.starts_with(b"\xD0\xCF\x11\xE0") {
        sheets::<Xls<_>>(bytes, "XLS").map_err(|e| {
            format!("{e}; if the file is password-protected (Office encrypts into this container), remove the password")
        })?
    } else if bytes.starts_with(b"PK") {
        let archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("truncated or damaged spreadsheet (the zip archive cannot be read: {e})"))?;
        if archive.index_for_name("xl/workbook.bin").is_some() {
            sheets::<Xlsb<_>>(bytes, "XLSB")?
        } else if archive.index_for_name("content.xml").is_some() {
            sheets::<Ods<_>>(bytes, "ODS")?
        } else {
            sheets::<Xlsx<_>>(bytes, "XLSX")?
        }
    } else {
        return Err("not a spreadsheet (neither a zip archive nor an .xls file)".into());
    };
    Ok(Parsed { sections, ..Parsed::default() })
}

fn sheets<'b, W>(bytes: &'b [u8], kind: &str) -> Result<Vec<Section>, String>
where
    W: Reader<Source<'b>>,
    W::Error: Display,
{
    let mut workbook: W =
        open_workbook_from_rs(Cursor::new(bytes)).map_err(|e| format!("damaged {kind} workbook: {e}"))?;
    let mut sections = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook.worksheet_range(&name).map_err(|e| format!("damaged {kind} sheet \"{name}\": {e}"))?;
        let text = labelled_rows(range.rows().map(|row| row.iter().map(cell).collect()));
        let mut section = Section::new(vec![name.clone()], text);
        section.metadata.insert("sheet".into(), name.into());
        sections.push(section);
    }
    Ok(sections)
}

fn cell(data: &Data) -> String {
    match data {
        Data::DateTime(datetime) if datetime.is_datetime() => {
            let (year, month, day, hour, minute, second, _) = datetime.to_ymd_hms_milli();
            if (hour, minute, second) == (0, 0, 0) {
                format!("{year:04}-{month:02}-{day:02}")
            } else {
                format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
            }
        }
        other => other.to_string(),
    }
}

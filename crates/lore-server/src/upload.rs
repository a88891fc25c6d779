//! Uploads: multipart bodies read within the server's limits, and file names from clients made
//! into document names that can never be paths.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use lore_core::{GROUPS_FIELD, Metadata};
use serde_json::Value;

use crate::ServeOptions;
use crate::error::{ApiError, ApiResult};

/// What a multipart upload carried.
pub struct Upload {
    /// (document name, bytes) per file.
    pub files: Vec<(String, Vec<u8>)>,
    /// The groups that may read the documents (the `groups` field, comma-separated or repeated).
    pub groups: Vec<String>,
    /// Metadata for every document: the `metadata` field (a JSON object) and any other text field.
    pub metadata: Metadata,
}

/// Fields a client may not set: Lore derives them.
const RESERVED_FIELDS: [&str; 4] = ["source", "title", "ordinal", "chunk_id"];

/// Reads an upload: files (parts with a file name), `groups`, `metadata` and other text fields.
/// 413 when a file, the file count or the body is over the server's limits.
pub async fn read(mut multipart: Multipart, options: &ServeOptions) -> ApiResult<Upload> {
    let mut upload = Upload { files: Vec::new(), groups: Vec::new(), metadata: Metadata::new() };
    // Over a limit, the rest of the body is still read (and dropped), up to the body limit, so
    // that the client gets the 413 rather than a connection closed in mid-send.
    let mut refused: Option<ApiError> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let field_name = field.name().unwrap_or_default().to_string();
        if let Some(file_name) = field.file_name().map(document_name) {
            if upload.files.len() == options.max_upload_files && refused.is_none() {
                refused = Some(ApiError::too_large(format!(
                    "more than {} files in one upload; send them in several",
                    options.max_upload_files
                )));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if refused.is_some() {
                    continue;
                }
                if bytes.len() + chunk.len() > options.max_file_bytes {
                    refused = Some(ApiError::too_large(format!(
                        "'{file_name}' is over the {} MB limit per file",
                        options.max_file_bytes / 1_000_000
                    )));
                    bytes = Vec::new();
                    continue;
                }
                bytes.extend_from_slice(&chunk);
            }
            if refused.is_none() {
                upload.files.push((file_name, bytes));
            }
            continue;
        }
        let text = field.text().await.map_err(multipart_error)?;
        if refused.is_some() {
            continue;
        }
        match field_name.as_str() {
            GROUPS_FIELD => {
                upload.groups.extend(text.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_string))
            }
            "metadata" if !text.trim().is_empty() => {
                let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&text) else {
                    return Err(ApiError::bad_request("the metadata field must be a JSON object"));
                };
                for (key, value) in fields {
                    set_field(&mut upload, key, value)?;
                }
            }
            "metadata" => {}
            _ => set_field(&mut upload, field_name, Value::String(text))?,
        }
    }
    if let Some(refused) = refused {
        return Err(refused);
    }
    if upload.files.is_empty() {
        return Err(ApiError::bad_request("no files: send them as multipart parts with a file name"));
    }
    Ok(upload)
}

/// Reads the rest of a body that is refused (403, 404, 503), up to the body limit, so that the
/// client gets the answer rather than a connection closed while it is still sending.
pub async fn discard(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

fn set_field(upload: &mut Upload, key: String, value: Value) -> ApiResult<()> {
    if key.is_empty() || RESERVED_FIELDS.contains(&key.as_str()) {
        return Err(ApiError::bad_request(format!("metadata field '{key}' cannot be set by an upload")));
    }
    if key == GROUPS_FIELD {
        let groups = match value {
            Value::String(group) => vec![group],
            Value::Array(groups) => groups.into_iter().filter_map(|g| g.as_str().map(str::to_string)).collect(),
            _ => return Err(ApiError::bad_request("groups must be a name or a list of names")),
        };
        upload.groups.extend(groups);
    } else {
        upload.metadata.insert(key, value);
    }
    Ok(())
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("the upload is over the server's size limit (lore serve --max-upload-mb)")
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// A client's file name made into a document name: its last path component only (either
/// slash), without control characters, leading dots or trailing dots and spaces, at most 200
/// characters, never empty and never a name Windows reserves. Upload bytes are never written
/// to a path, so this is about what users see and what later exports may write.
pub fn document_name(client_name: &str) -> String {
    let last = client_name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let mut name: String =
        cleaned.trim_start_matches(['.', ' ']).trim_end_matches(['.', ' ']).chars().take(200).collect();
    if name.is_empty() {
        name = "upload".into();
    }
    let stem = name.split('.').next().unwrap_or_default().to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        name.insert(0, '_');
    }
    name
}

/// Error unless `name` is a model Lore knows by name: clients never name files or endpoints.
pub fn check_model_name(name: &str) -> ApiResult<()> {
    lore_models::spec(name).map(|_| ()).map_err(|_| {
        let names: Vec<&str> = lore_models::registry().iter().map(|m| m.name).collect();
        ApiError::bad_request(format!("no model '{name}': choose one of {}", names.join(", ")))
    })
}

#[cfg(test)]
mod tests {
    use super::document_name;

    #[test]
    fn client_file_names_never_become_paths() {
        assert_eq!(document_name("../../etc/passwd"), "passwd");
        assert_eq!(document_name("..\\..\\windows\\system.ini"), "system.ini");
        assert_eq!(document_name("/absolute/report.pdf"), "report.pdf");
        assert_eq!(document_name("evil\0name.txt"), "evilname.txt");
        assert_eq!(document_name(".."), "upload");
        assert_eq!(document_name(""), "upload");
        assert_eq!(document_name(".hidden"), "hidden");
        assert_eq!(document_name("CON.txt"), "_CON.txt");
        assert_eq!(document_name("com1"), "_com1");
        assert_eq!(document_name("notes. "), "notes");
        assert_eq!(document_name(&"a".repeat(500)).len(), 200);
    }
}

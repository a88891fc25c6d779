//! What the binary's tests share: a Lore home per test, with the installed models linked in.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The models `scripts/test` installs, in `$LORE_HOME/models` (else `~/.lore/models`).
pub fn installed_models() -> PathBuf {
    let home = std::env::var_os("LORE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".lore"));
    let models = home.join("models");
    for name in ["e5-small", "smollm2", "qwen-0.5b"] {
        assert!(
            models.join(name).join("lore-model.json").exists(),
            "model {name} is not installed in {}: run `lore models pull {name}` (scripts/test does)",
            models.display()
        );
    }
    models
}

/// A temporary `LORE_HOME`.
pub struct Home(tempfile::TempDir);

impl Home {
    pub fn with_models() -> Home {
        let home = Home(tempfile::tempdir().unwrap());
        std::os::unix::fs::symlink(installed_models(), home.path().join("models")).unwrap();
        home
    }

    pub fn empty() -> Home {
        Home(tempfile::tempdir().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// `lore` with this home and no settings from the environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lore"));
        command
            .env("LORE_HOME", self.path())
            .env_remove("LORE_COLLECTION")
            .env_remove("LORE_LLM")
            .env_remove("LORE_EMBEDDER")
            .env_remove("LORE_TOP_K")
            .env_remove("LORE_PIPELINE");
        command
    }

    pub fn lore(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs `lore ARGS` expecting success and JSON on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.lore(args);
        assert!(out.status.success(), "lore {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("lore {args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }
}

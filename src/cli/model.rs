//! `model list | fetch NAME... | remove NAME`: the offline models, from a terminal. Fetching shows a
//! progress bar on stderr (when stderr is a terminal) and says in one line what went wrong.

use std::sync::atomic::AtomicBool;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use lightning_dictate::models::{self, ModelsError, Progress, Stage};

use super::{exit, fail};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// The models: installed and available, with sizes and languages.
    List,
    /// Download, verify and install models (a no-op for one already installed).
    Fetch {
        /// tiny.en (English, fast) or base (99 languages).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Delete an installed model.
    Remove { name: String },
}

pub fn run(command: ModelCommand) -> u8 {
    let store = match models::Store::from_env() {
        Ok(store) => store,
        Err(e) => return fail(code(&e), advice(&e)),
    };
    match command {
        ModelCommand::List => list(&store),
        ModelCommand::Fetch { names } => {
            for name in names {
                let code = fetch(&store, &name);
                if code != exit::OK {
                    return code;
                }
            }
            exit::OK
        }
        ModelCommand::Remove { name } => match store.remove(&name) {
            Ok(()) => {
                println!("removed {name}");
                exit::OK
            }
            Err(e) => fail(code(&e), advice(&e)),
        },
    }
}

fn list(store: &models::Store) -> u8 {
    let rows = store.list();
    println!(
        "{:<10} {:<14} {:>8}  {:<13} DESCRIPTION",
        "NAME", "STATE", "SIZE", "LANGUAGES"
    );
    for row in rows {
        let state = if row.installed {
            "installed"
        } else {
            "not installed"
        };
        println!(
            "{:<10} {:<14} {:>8}  {:<13} {}",
            row.name,
            state,
            models::human_size(row.size),
            row.languages,
            row.description
        );
    }
    println!("models folder: {}", store.dir.display());
    exit::OK
}

fn fetch(store: &models::Store, name: &str) -> u8 {
    let spec = match store.spec(name) {
        Ok(spec) => spec,
        Err(e) => return fail(code(&e), advice(&e)),
    };
    if store.installed(name) {
        println!("{name} is already installed");
        return exit::OK;
    }
    eprintln!(
        "fetching {name} ({} to download, {} installed)",
        models::human_size(spec.download_size()),
        models::human_size(spec.installed_size)
    );
    let bar = ProgressBar::new(spec.download_size());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:12} [{bar:30}] {bytes:>9}/{total_bytes:9} {bytes_per_sec:>11} {eta:>4}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let cancel = AtomicBool::new(false);
    let mut stage = None;
    let result = store.fetch(
        name,
        &mut |p: Progress| {
            if stage != Some(p.stage) {
                stage = Some(p.stage);
                bar.set_length(p.total);
                bar.set_message(match p.stage {
                    Stage::Downloading { index, count } => {
                        format!("download {}/{count}", index + 1)
                    }
                    Stage::Installing => "install".to_owned(),
                });
            }
            bar.set_position(p.done);
        },
        &cancel,
    );
    bar.finish_and_clear();
    match result {
        Ok((dir, _)) => {
            println!("{name} is installed in {}", dir.display());
            exit::OK
        }
        Err(e) => fail(code(&e), advice(&e)),
    }
}

fn code(e: &ModelsError) -> u8 {
    match e {
        ModelsError::Network { .. }
        | ModelsError::NotListed { .. }
        | ModelsError::Checksum { .. }
        | ModelsError::Interrupted { .. }
        | ModelsError::Package { .. } => exit::NETWORK,
        _ => exit::USAGE,
    }
}

fn advice(e: &ModelsError) -> String {
    match e {
        ModelsError::Network { .. } => format!(
            "{e}: check the network (a mirror: set LIGHTNING_DICTATE_INDEX_URL or PIP_INDEX_URL)"
        ),
        ModelsError::NotInstalled { .. } => {
            format!("{e}: `lightning-dictate model list` shows what is")
        }
        ModelsError::Checksum { .. } | ModelsError::Package { .. } => {
            format!("{e}: try again later, or from another network")
        }
        _ => e.to_string(),
    }
}

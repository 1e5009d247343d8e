//! The window's disk and keyring work, on a thread of its own ("ui-io"): autosaving the
//! transcript (with fsync), deleting history entries, and the keyring (Secret Service over D-Bus,
//! which can hang for its whole D-Bus timeout). The UI thread only queues jobs and applies the
//! results as they come back, so a frame never waits on a disk or a daemon.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::channel::Sink;
use crate::history::{History, SavedTranscript};
use crate::protocol::ApiKey;

type LoadKey = Box<dyn Fn() -> Result<Option<ApiKey>, String> + Send + Sync>;
type SaveKey = Box<dyn Fn(&ApiKey) -> Result<(), String> + Send + Sync>;
type DeleteKey = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// How the window reaches the keyring (functions, so tests can stand in for the OS one). Each
/// error is one line for the window.
pub struct KeyringAccess {
    pub load: LoadKey,
    pub save: SaveKey,
    pub delete: DeleteKey,
}

impl KeyringAccess {
    /// The OS keyring (Secret Service on Linux).
    pub fn system() -> Self {
        KeyringAccess {
            load: Box::new(|| {
                crate::keystore::load()
                    .map_err(|e| format!("{e}; a key typed here is kept for this session only"))
            }),
            save: Box::new(|key| {
                crate::keystore::save(key)
                    .map_err(|e| format!("{e}; the key is kept for this session only"))
            }),
            delete: Box::new(|| crate::keystore::delete().map_err(|e| e.to_string())),
        }
    }
}

/// Work for the I/O thread.
pub enum Job {
    /// Write this transcript (a later save of the same one makes this one unnecessary).
    Save(History, SavedTranscript),
    Delete(History, String),
    /// Write an export: the file and its contents.
    Export(std::path::PathBuf, String),
    LoadKey(Arc<KeyringAccess>),
    /// Store the key, or with `None` remove it.
    StoreKey(Arc<KeyringAccess>, Option<ApiKey>),
    /// Start the app at login (in the background), or stop doing so.
    StartAtLogin(bool),
    /// Answered once every job queued before it is done.
    Barrier(Sender<()>),
}

/// What came of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// An autosave is written, or why not (the message names the folder).
    Saved(Result<(), String>),
    /// A history entry is deleted, or why not.
    Deleted(Result<(), String>),
    /// An export is written (where), or why not.
    Exported(Result<std::path::PathBuf, String>),
    /// Whether the app now starts at login, or why that could not be changed.
    StartAtLogin(Result<bool, String>),
    /// The stored key at start (or why there is none to read).
    KeyLoaded(Result<Option<ApiKey>, String>),
    /// The key was stored or removed (what to say), or why not.
    KeyStored(Result<&'static str, String>),
}

/// Starts the I/O thread; it ends when `jobs`' sender is dropped.
pub fn spawn(done: Sink<Done>) -> Sender<Job> {
    let (jobs, queue) = crossbeam_channel::unbounded();
    let spawned = std::thread::Builder::new()
        .name("ui-io".to_owned())
        .spawn(move || run(&queue, &done));
    if let Err(e) = spawned {
        tracing::error!("cannot start the window's I/O thread: {e}");
    }
    jobs
}

fn run(queue: &Receiver<Job>, done: &Sink<Done>) {
    while let Ok(first) = queue.recv() {
        // Everything queued meanwhile, with only the newest save of each transcript kept: a burst
        // of finals costs one write, not one per final.
        let mut batch = vec![first];
        batch.extend(queue.try_iter());
        let mut newest_save = std::collections::HashMap::new();
        for (i, job) in batch.iter().enumerate() {
            if let Job::Save(_, entry) = job {
                newest_save.insert(entry.id.clone(), i);
            }
        }
        for (i, job) in batch.into_iter().enumerate() {
            match job {
                Job::Save(history, entry) => {
                    if newest_save.get(&entry.id) != Some(&i) {
                        continue;
                    }
                    let saved = history.save(&entry).map_err(|e| {
                        tracing::error!("autosave failed: {e}");
                        format!(
                            "Could not save the transcript to {}: {e}",
                            history.dir().display()
                        )
                    });
                    done.send(Done::Saved(saved));
                }
                Job::Delete(history, id) => {
                    let deleted = history.delete(&id).map_err(|e| {
                        format!(
                            "Could not delete the transcript in {}: {e}",
                            history.dir().display()
                        )
                    });
                    done.send(Done::Deleted(deleted));
                }
                Job::Export(path, body) => {
                    let written = write_export(&path, &body).map(|()| path);
                    done.send(Done::Exported(written));
                }
                Job::StartAtLogin(on) => {
                    let result = std::env::current_exe()
                        .map_err(|e| e.to_string())
                        .and_then(|exec| {
                            crate::desktop::entry::set_start_at_login(&exec, on)
                                .map_err(|e| e.to_string())
                        })
                        .map(|()| on);
                    done.send(Done::StartAtLogin(result));
                }
                Job::LoadKey(access) => done.send(Done::KeyLoaded((access.load)())),
                Job::StoreKey(access, key) => {
                    let result = match &key {
                        Some(key) => (access.save)(key).map(|()| "Saved in the system keyring."),
                        None => (access.delete)().map(|()| "Removed from the system keyring."),
                    };
                    done.send(Done::KeyStored(result));
                }
                Job::Barrier(reply) => {
                    let _ = reply.send(());
                }
            }
        }
    }
}

/// Writes an export (creating its folder).
pub(super) fn write_export(path: &std::path::Path, body: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, body).map_err(|e| e.to_string())
}

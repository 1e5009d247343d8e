//! The app in the desktop's launcher and at login: freedesktop `.desktop` entries for this user
//! (`$XDG_DATA_HOME/applications`, `$XDG_CONFIG_HOME/autostart`) and the icon.

use std::path::{Path, PathBuf};

/// The launcher entry, with `{exec}` for the binary's path and `{args}` for its arguments.
const ENTRY: &str = include_str!("../../assets/lightning-dictate.desktop");
const ICON: &[u8] = include_bytes!("../../assets/icon.png");
/// Named after the app id: GNOME ties a Wayland window, and a portal's permissions, to the
/// `.desktop` file of that name.
const FILE: &str = "dev.lightning_dictate.LightningDictate.desktop";
/// The name the entries had before (removed when found).
const OLD_FILE: &str = "lightning-dictate.desktop";

/// Why an entry could not be written or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Neither the XDG variables nor `HOME` are set.
    #[error("cannot find the home folder (HOME is not set)")]
    NoHome,
    /// A file could not be written or removed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EntryError + '_ {
    move |source| EntryError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The entry's text: `Exec` runs `exec` (quoted) with `args`.
fn entry_text(exec: &Path, args: &str) -> String {
    let exec = format!("\"{}\"{args}", exec.display());
    ENTRY
        .lines()
        .map(|line| {
            if line.starts_with("Exec=") {
                format!("Exec={exec}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn write(path: &Path, contents: &[u8]) -> Result<(), EntryError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, contents).map_err(io(path))
}

fn remove(path: &Path) -> Result<bool, EntryError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

/// The launcher entry and the icon, for `exec`. Returns the files written.
pub fn install(exec: &Path) -> Result<Vec<PathBuf>, EntryError> {
    let data = crate::paths::data_home().ok_or(EntryError::NoHome)?;
    let entry = data.join("applications").join(FILE);
    let icon = data.join("icons/hicolor/64x64/apps/lightning-dictate.png");
    write(&entry, entry_text(exec, "").as_bytes())?;
    write(&icon, ICON)?;
    remove(&data.join("applications").join(OLD_FILE))?;
    Ok(vec![entry, icon])
}

/// Removes the launcher entry, the icon and the login entry. Returns the files removed.
pub fn uninstall() -> Result<Vec<PathBuf>, EntryError> {
    let data = crate::paths::data_home().ok_or(EntryError::NoHome)?;
    let mut removed = Vec::new();
    for path in [
        data.join("applications").join(FILE),
        data.join("applications").join(OLD_FILE),
        data.join("icons/hicolor/64x64/apps/lightning-dictate.png"),
        autostart_path()?,
        autostart_dir()?.join(OLD_FILE),
    ] {
        if remove(&path)? {
            removed.push(path);
        }
    }
    Ok(removed)
}

fn autostart_dir() -> Result<PathBuf, EntryError> {
    Ok(crate::paths::config_home()
        .ok_or(EntryError::NoHome)?
        .join("autostart"))
}

fn autostart_path() -> Result<PathBuf, EntryError> {
    Ok(autostart_dir()?.join(FILE))
}

/// Whether the launcher entry is installed (`install-desktop`).
pub fn is_installed() -> bool {
    crate::paths::data_home().is_some_and(|data| data.join("applications").join(FILE).is_file())
}

/// Whether the app starts at login.
pub fn starts_at_login() -> bool {
    autostart_dir().is_ok_and(|dir| dir.join(FILE).is_file() || dir.join(OLD_FILE).is_file())
}

/// Starts the app at login, in the background (`exec --background`), or stops doing so.
pub fn set_start_at_login(exec: &Path, on: bool) -> Result<(), EntryError> {
    let path = autostart_path()?;
    remove(&autostart_dir()?.join(OLD_FILE))?;
    if on {
        write(&path, entry_text(exec, " --background").as_bytes())
    } else {
        remove(&path).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_runs_this_binary_with_its_arguments() {
        let text = entry_text(Path::new("/opt/my apps/lightning-dictate"), " --background");
        assert!(text.contains("\nExec=\"/opt/my apps/lightning-dictate\" --background\n"));
        assert!(text.contains("Icon=lightning-dictate"));
        assert_eq!(text.matches("Exec=").count(), 1);
    }
}

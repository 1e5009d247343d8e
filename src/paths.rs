//! Where the app keeps its files. One place, so the history, the exports and the models agree.

use std::path::PathBuf;

/// `$XDG_DATA_HOME`, else `~/.local/share`.
pub fn data_home() -> Option<PathBuf> {
    xdg_dir("XDG_DATA_HOME", &[".local", "share"])
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", &[".config"])
}

fn xdg_dir(variable: &str, fallback: &[&str]) -> Option<PathBuf> {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                fallback
                    .iter()
                    .fold(PathBuf::from(h), |p, part| p.join(part))
            })
        })
}

/// The app's data folder: `$XDG_DATA_HOME/lightning-dictate`, else
/// `~/.local/share/lightning-dictate` (history, exports, models).
pub fn data_dir() -> Option<PathBuf> {
    Some(data_home()?.join("lightning-dictate"))
}

//! Where the app keeps its files. One place, so the history, the exports and the models agree.

use std::path::PathBuf;

/// The app's data folder: `$XDG_DATA_HOME/lightning-dictate`, else
/// `~/.local/share/lightning-dictate` (history, exports, models).
pub fn data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share"))
        })?;
    Some(base.join("lightning-dictate"))
}

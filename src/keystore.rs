//! The API key in the OS keyring (the freedesktop Secret Service on Linux: GNOME Keyring,
//! KWallet, KeePassXC). The key is never written to a settings file; when no keyring answers,
//! the window keeps it for the session only and says so.

use crate::protocol::ApiKey;

const SERVICE: &str = "lightning-dictate";
const USER: &str = "smallest-api-key";

/// Why the keyring could not be used. Messages never contain the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// No Secret Service answers on D-Bus (or the platform's keyring is missing).
    #[error(
        "no keyring is available ({0}); start a Secret Service (GNOME Keyring, KWallet, KeePassXC) or set SMALLEST_API_KEY"
    )]
    Unavailable(String),
    /// The keyring answered but refused (locked, denied).
    #[error("the keyring refused: {0}")]
    Failed(String),
}

fn entry() -> Result<keyring::Entry, KeystoreError> {
    keyring::Entry::new(SERVICE, USER).map_err(classify)
}

fn classify(e: keyring::Error) -> KeystoreError {
    match e {
        keyring::Error::NoStorageAccess(inner) | keyring::Error::PlatformFailure(inner) => {
            KeystoreError::Unavailable(short(&*inner))
        }
        other => KeystoreError::Failed(short(&other)),
    }
}

/// The first line of an error, without the details D-Bus piles on.
fn short(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}

/// The stored key, if any.
pub fn load() -> Result<Option<ApiKey>, KeystoreError> {
    match entry()?.get_password() {
        Ok(secret) => Ok(ApiKey::new(&secret)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

/// Stores the key (replacing any earlier one).
pub fn save(key: &ApiKey) -> Result<(), KeystoreError> {
    entry()?.set_password(key.expose()).map_err(classify)
}

/// Forgets the stored key.
pub fn delete() -> Result<(), KeystoreError> {
    match entry()?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(classify(e)),
    }
}

//! Why a session failed, in words that say what to do, and how a refused handshake maps to
//! those reasons.

use std::time::Duration;

use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::http::header;

use crate::protocol::{Dialect, UrlError};
use crate::remedy::Remedy;

/// Why a session failed. Each message says what to do; [`SessionError::is_retryable`] says whether
/// trying again can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The URL cannot be used (checked before connecting).
    #[error(transparent)]
    Url(#[from] UrlError),
    /// 401/403: the key is wrong, missing or not allowed. Retrying will not help.
    #[error("the server refused the API key (HTTP {status}){}", detail_suffix(.detail))]
    Auth { status: u16, detail: String },
    /// 400: a parameter the server does not accept.
    #[error("the server rejected the stream parameters (HTTP 400){}", detail_suffix(.detail))]
    BadRequest { detail: String },
    /// 429: too many requests; wait `retry_after` (when given) before trying again.
    #[error("the server is rate limiting this key (HTTP 429){}: wait and try again", retry_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx: the service is in trouble; worth retrying later.
    #[error("the server failed (HTTP {status}){}: try again in a moment", detail_suffix(.detail))]
    Server { status: u16, detail: String },
    /// 404/410 at the API document's path: the service moved to its current endpoint.
    #[error("the service is no longer at this address (HTTP {status})")]
    Moved { status: u16 },
    /// Any other refusal of the upgrade (404: wrong URL path, ...).
    #[error("the server refused the connection (HTTP {status}){}", detail_suffix(.detail))]
    Refused { status: u16, detail: String },
    /// TCP connect failed or the handshake timed out.
    #[error("cannot reach {host}: {detail}")]
    Connect { host: String, detail: String },
    /// TLS failed (certificate, protocol).
    #[error("secure connection to {host} failed: {detail}: check the URL and the computer's clock")]
    Tls { host: String, detail: String },
    /// The connection broke mid-stream.
    #[error(
        "the connection to the server was lost: {detail}: the text received so far is kept; try again"
    )]
    Dropped { detail: String },
    /// The server closed before `is_last`.
    #[error("the server closed the stream early (close code {code}{}): the text received so far is kept; try again", detail_suffix(.reason))]
    ClosedEarly { code: u16, reason: String },
    /// The server sent an error frame and closed.
    #[error("the server reported an error: {message}: the text received so far is kept; try again")]
    ServerReported { message: String },
    /// Close code 1008: a policy refusal (too many sessions, ...). Retrying will not help now.
    #[error("the server ended the stream by policy (close code 1008){}: close other dictations or check your plan", detail_suffix(.reason))]
    Policy { reason: String },
    /// `is_last` did not arrive in time after `end`.
    #[error(
        "the server did not confirm the end of the stream within {secs} s: the text received so far is kept"
    )]
    NoLastMessage { secs: u64 },
}

fn detail_suffix(detail: &str) -> String {
    let detail = detail.trim();
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {}", truncate(detail, 200))
    }
}

#[allow(
    clippy::ref_option,
    reason = "thiserror hands the field over by reference"
)]
fn retry_suffix(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {} s", d.as_secs()))
        .unwrap_or_default()
}

fn truncate(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

impl SessionError {
    /// Whether an automatic retry can help (429, 5xx, network trouble), as opposed to something the
    /// user must fix (key, parameters, URL).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SessionError::RateLimited { .. }
                | SessionError::Server { .. }
                | SessionError::Connect { .. }
                | SessionError::Dropped { .. }
                | SessionError::ClosedEarly { .. }
                | SessionError::ServerReported { .. }
        )
    }

    /// What the user can do about it; each front end says it in its own words.
    pub fn remedy(&self) -> Remedy {
        match self {
            SessionError::Url(_) | SessionError::Refused { .. } => Remedy::CheckUrl,
            SessionError::Auth { .. } => Remedy::FixKey,
            SessionError::BadRequest { .. } => Remedy::CheckParams,
            SessionError::Moved { .. } => Remedy::UseCurrentEndpoint,
            SessionError::Connect { .. } => Remedy::CheckNetwork,
            // These messages carry their own advice, the same in every front end.
            SessionError::RateLimited { .. }
            | SessionError::Server { .. }
            | SessionError::Tls { .. }
            | SessionError::Dropped { .. }
            | SessionError::ClosedEarly { .. }
            | SessionError::ServerReported { .. }
            | SessionError::Policy { .. }
            | SessionError::NoLastMessage { .. } => Remedy::None,
        }
    }

    /// Whether the key was refused (the CLI's exit code 3).
    pub fn is_auth(&self) -> bool {
        matches!(self, SessionError::Auth { .. })
    }
}

/// Maps a failed handshake to what the user must do.
pub(super) fn handshake_error(
    error: tungstenite::Error,
    host: &str,
    dialect: Dialect,
) -> SessionError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let detail = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .map(|b| body_message(&b))
                .unwrap_or_default();
            match status {
                401 | 403 => SessionError::Auth { status, detail },
                400 => SessionError::BadRequest { detail },
                429 => SessionError::RateLimited {
                    retry_after: response
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs),
                },
                500..=599 => SessionError::Server { status, detail },
                404 | 410 if dialect == Dialect::Document => SessionError::Moved { status },
                _ => SessionError::Refused { status, detail },
            }
        }
        tungstenite::Error::Tls(e) => SessionError::Tls {
            host: host.to_owned(),
            detail: e.to_string(),
        },
        tungstenite::Error::Io(e) => SessionError::Connect {
            host: host.to_owned(),
            detail: e.to_string(),
        },
        tungstenite::Error::Url(e) => SessionError::Connect {
            host: host.to_owned(),
            detail: e.to_string(),
        },
        other => SessionError::Connect {
            host: host.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// The message of a JSON error body (`{"error": ...}`, `{"message": ...}`), or the body itself.
fn body_message(body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["error", "message", "detail"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    body.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do_on_one_line() {
        let errors = [
            SessionError::Auth {
                status: 401,
                detail: "invalid or missing API key".into(),
            },
            SessionError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            SessionError::Connect {
                host: "127.0.0.1".into(),
                detail: "Connection refused".into(),
            },
            SessionError::Server {
                status: 503,
                detail: "line one\nline two".into(),
            },
        ];
        for e in &errors {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
        // What happened, without a front end's advice (the remedy carries that).
        assert_eq!(
            errors[0].to_string(),
            "the server refused the API key (HTTP 401): invalid or missing API key"
        );
        assert_eq!(errors[0].remedy(), Remedy::FixKey);
        assert!(errors.iter().all(|e| !e.to_string().contains("--")));
        assert!(errors[1].to_string().contains("retry after 3 s"));
        assert!(!errors[0].is_retryable() && errors[1].is_retryable());
    }

    #[test]
    fn body_messages() {
        assert_eq!(body_message(r#"{"error":"bad key"}"#), "bad key");
        assert_eq!(body_message(" plain "), "plain");
    }
}

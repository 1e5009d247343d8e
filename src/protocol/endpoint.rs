//! The endpoint: which URL to connect to (the stream parameters in its query), which dialect it
//! speaks, and whether a key may travel to it.

use super::{CLOSE_STREAM_MESSAGE, DEFAULT_URL, END_MESSAGE, StreamParams};

/// Frame and message caps for both ends: generous for audio, small enough that a hostile peer
/// cannot make us buffer without bound.
pub fn websocket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    // Reads of 4 KiB, not tungstenite's 128 KiB: it zero-fills the space it reads into at every
    // read attempt, and the session's loop tries a read before every 20 ms chunk it sends, so
    // that memset was the largest cost of a live dictation's network thread. Transcripts are
    // small JSON; a larger message just takes more reads.
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(4 << 20))
        .max_frame_size(Some(4 << 20))
}

/// Why a URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not a URL at all, or no host.
    #[error("`{0}` is not a valid URL: pass something like {DEFAULT_URL}")]
    Invalid(String),
    /// A scheme other than ws or wss.
    #[error("`{0}` must start with wss:// (or ws:// for a server on this computer)")]
    Scheme(String),
    /// An API key would travel unencrypted to another machine.
    #[error(
        "refusing to send the API key unencrypted to {0}: use a wss:// URL (plain ws:// is only for a server on this computer)"
    )]
    KeyOverPlainText(String),
}

/// The service's current endpoint (the vendor's 2026 documents): Pulse, unified live path.
pub const PULSE_LIVE_URL: &str = "wss://api.smallest.ai/waves/v1/stt/live";
/// The Pulse path of the same generation.
pub const PULSE_URL: &str = "wss://api.smallest.ai/waves/v1/pulse/get_text";

/// Which version of the protocol an endpoint speaks; it follows the URL's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The API document's (`.../lightning/get_text`): ends with `{"type":"end"}`.
    Document,
    /// The current one (`.../pulse/get_text`, `.../stt/live`): `model=pulse` required, ends with
    /// `{"type":"close_stream"}`, frames with `type: "transcription"` and `words`.
    Current,
}

impl Dialect {
    /// The dialect of a URL path.
    pub fn of_path(path: &str) -> Dialect {
        let path = path.trim_end_matches('/');
        if path.ends_with("/pulse/get_text") || path.ends_with("/stt/live") {
            Dialect::Current
        } else {
            Dialect::Document
        }
    }

    /// The text frame that ends the audio: the server flushes, sends `is_last` and closes.
    pub fn end_message(self) -> &'static str {
        match self {
            Dialect::Document => END_MESSAGE,
            Dialect::Current => CLOSE_STREAM_MESSAGE,
        }
    }
}

/// A parsed endpoint: scheme, host and the full URL with the stream parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether the connection is TLS (`wss`).
    pub is_tls: bool,
    /// The protocol version its path speaks.
    pub dialect: Dialect,
    /// Host as written in the URL (IPv6 in brackets).
    pub host: String,
    /// The URL to connect to, query included.
    pub url: String,
}

/// Builds the URL to connect to from a base URL and the parameters. Parameters already in the base
/// URL's query are replaced, others kept. A key is refused over plain `ws://` unless the host is this
/// computer.
pub fn build_endpoint(
    base: &str,
    params: &StreamParams,
    has_key: bool,
) -> Result<Endpoint, UrlError> {
    let base = base.trim();
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| UrlError::Invalid(base.to_owned()))?;
    let is_tls = match scheme.to_ascii_lowercase().as_str() {
        "wss" => true,
        "ws" => false,
        _ => return Err(UrlError::Scheme(base.to_owned())),
    };
    let (before_fragment, _fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (authority_path, existing_query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    let (authority, path) = match authority_path.find('/') {
        Some(i) => authority_path.split_at(i),
        None => (authority_path, "/"),
    };
    let host = host_of(authority).ok_or_else(|| UrlError::Invalid(base.to_owned()))?;
    if !is_tls && has_key && !is_loopback_host(&host) {
        return Err(UrlError::KeyOverPlainText(host));
    }
    let ours = ["language", "encoding", "sample_rate", "word_timestamps"];
    let mut query: Vec<String> = existing_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !ours.contains(&key)
        })
        .map(str::to_owned)
        .collect();
    query.push(params.query());
    let dialect = Dialect::of_path(path);
    // The current endpoints require the model; one the user named is kept.
    if dialect == Dialect::Current
        && !query
            .iter()
            .any(|p| p.split_once('=').map_or(p.as_str(), |(k, _)| k) == "model")
    {
        query.push("model=pulse".to_owned());
    }
    let url = format!("{scheme}://{authority}{path}?{}", query.join("&"));
    // The http crate is what the WebSocket client parses with: check it accepts the result.
    if url
        .parse::<tokio_tungstenite::tungstenite::http::Uri>()
        .is_err()
    {
        return Err(UrlError::Invalid(base.to_owned()));
    }
    Ok(Endpoint {
        is_tls,
        dialect,
        host,
        url,
    })
}

/// The host part of an authority (`user@host:port`), brackets kept for IPv6.
fn host_of(authority: &str) -> Option<String> {
    let after_user = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if after_user.starts_with('[') {
        let end = after_user.find(']')?;
        &after_user[..=end]
    } else {
        after_user.split(':').next().unwrap_or(after_user)
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// Whether a host names this computer: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

//! The messages: the server's transcription frames (parsed as tolerantly as the service requires,
//! in either dialect) and the client's control frames.

use serde::{Deserialize, Serialize};

/// One word with its time in seconds from the start of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordTimestamp {
    pub word: String,
    pub start: f64,
    pub end: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// A transcription message from the server, as tolerant as the service requires.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TranscriptMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The current segment only.
    #[serde(default)]
    pub transcript: String,
    /// Everything so far; later versions of the service leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_transcript: Option<String>,
    #[serde(default)]
    pub is_final: bool,
    #[serde(default)]
    pub is_last: bool,
    /// On finals only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `word_timestamps`, or `words` in later versions.
    #[serde(
        default,
        alias = "words",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tolerant_words"
    )]
    pub word_timestamps: Option<Vec<WordTimestamp>>,
}

/// Words that do not parse (a wrong shape, a missing time) are dropped rather than failing the
/// whole message: the text matters more than the times.
fn tolerant_words<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<WordTimestamp>>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let Some(serde_json::Value::Array(items)) = value else {
        return Ok(None);
    };
    let words = items
        .into_iter()
        .filter_map(|item| serde_json::from_value::<WordTimestamp>(item).ok())
        .filter(|w| w.start.is_finite() && w.end.is_finite())
        .collect();
    Ok(Some(words))
}

/// What a server text frame means.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// An interim or final transcription (or the terminal `is_last` message).
    Transcript(TranscriptMessage),
    /// `{"type": "error", "message": ...}`: the server closes afterwards.
    Error { message: String },
    /// A known event that carries no text (`speech_started`, `speech_ended`, ...), or an unknown
    /// `type`: ignored by the client.
    Event { kind: String },
}

/// A text frame that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The frame is not JSON.
    #[error("server sent malformed JSON: {0}")]
    Json(String),
    /// The frame is JSON but not an object.
    #[error("server sent JSON that is not an object")]
    NotAnObject,
}

/// Parses one text frame from the server.
pub fn parse_server_message(text: &str) -> Result<ServerMessage, ParseError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    let serde_json::Value::Object(map) = &value else {
        return Err(ParseError::NotAnObject);
    };
    let kind = map.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    let status_is_error = map
        .get("status")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.eq_ignore_ascii_case("error"));
    if kind.as_deref() == Some("error") || status_is_error {
        let message = ["message", "error", "detail", "reason"]
            .iter()
            .find_map(|k| map.get(*k))
            .map_or_else(
                || "unspecified error".to_owned(),
                |m| match m {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            );
        return Ok(ServerMessage::Error { message });
    }
    let carries_transcript = [
        "transcript",
        "transcription",
        "is_final",
        "is_last",
        "full_transcript",
    ]
    .iter()
    .any(|k| map.contains_key(*k));
    // The current dialect names the text `transcription` too (and may send only that), and the
    // words `words`: one name each for the parser, the document's first.
    let mut value = value;
    if let serde_json::Value::Object(map) = &mut value {
        if let Some(text) = map.remove("transcription")
            && !map.contains_key("transcript")
        {
            map.insert("transcript".to_owned(), text);
        }
        if map.contains_key("word_timestamps") {
            map.remove("words");
        }
    }
    match kind {
        Some(kind) if !carries_transcript => Ok(ServerMessage::Event { kind }),
        None if !carries_transcript => Ok(ServerMessage::Event {
            kind: "unknown".to_owned(),
        }),
        _ => serde_json::from_value::<TranscriptMessage>(value)
            .map(ServerMessage::Transcript)
            .map_err(|e| ParseError::Json(e.to_string())),
    }
}

/// The client's end-of-stream message.
pub const END_MESSAGE: &str = r#"{"type":"end"}"#;
/// The end of the audio in the current dialect.
pub const CLOSE_STREAM_MESSAGE: &str = r#"{"type":"close_stream"}"#;

/// What a client text frame asks the server to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientControl {
    /// `end` or `close_stream`: flush, send `is_last`, close.
    End,
    /// `finalize`: close the open segment, keep the session.
    Finalize,
    /// Anything else: ignored.
    Unknown,
}

/// Parses a client text frame (for the local server).
pub fn parse_client_control(text: &str) -> ClientControl {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return ClientControl::Unknown;
    };
    match map.get("type").and_then(|t| t.as_str()) {
        Some("end" | "close_stream") => ClientControl::End,
        Some("finalize") => ClientControl::Finalize,
        _ => ClientControl::Unknown,
    }
}

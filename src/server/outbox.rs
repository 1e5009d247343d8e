//! The sending half of a server connection: engine outputs as the service's JSON, in the
//! dialect the path asked for.

use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::EngineOutput;
use crate::protocol::{Dialect, StreamParams, TranscriptMessage};

/// What happened to a message.
pub(super) enum Sent {
    More,
    /// That was the terminal message; the close frame went after it.
    Last,
    /// The client is gone.
    Gone,
}

/// The sending half of a connection and what it needs to format messages.
pub(super) struct Outbox {
    pub(super) sink:
        futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<TcpStream>, Message>,
    pub(super) session_id: String,
    pub(super) params: StreamParams,
    pub(super) garbage: bool,
    pub(super) withhold_is_last: bool,
    pub(super) no_word_times: bool,
    pub(super) dialect: Dialect,
    pub(super) finals_text: String,
}

impl Outbox {
    pub(super) async fn send(&mut self, output: &EngineOutput) -> Sent {
        if output.is_last && self.withhold_is_last {
            tracing::info!(session_id = %self.session_id, "fault: withholding is_last");
            return Sent::More;
        }
        if self.garbage {
            let _ = self
                .sink
                .send(Message::text("{\"transcript\": garbage]"))
                .await;
            let _ = self
                .sink
                .send(Message::Binary(Bytes::from_static(&[
                    0xde, 0xad, 0xbe, 0xef,
                ])))
                .await;
        }
        let params = StreamParams {
            word_timestamps: self.params.word_timestamps && !self.no_word_times,
            ..self.params
        };
        let message = transcript_message(&self.session_id, &params, output, &mut self.finals_text);
        let message = match self.dialect {
            Dialect::Document => message,
            Dialect::Current => current_dialect(message),
        }
        .to_string();
        if self.sink.send(Message::text(message)).await.is_err() {
            return Sent::Gone;
        }
        if !output.is_last {
            return Sent::More;
        }
        let _ = self
            .sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        Sent::Last
    }
}

/// A message in the current dialect: `type: "transcription"`, the text as both `transcript` and
/// `transcription`, the words as `words`, no `full_transcript`.
fn current_dialect(document: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(mut map) = document else {
        return document;
    };
    map.remove("full_transcript");
    if let Some(words) = map.remove("word_timestamps") {
        map.insert("words".to_owned(), words);
    }
    if let Some(text) = map.get("transcript").cloned() {
        map.insert("transcription".to_owned(), text);
    }
    map.insert("type".to_owned(), "transcription".into());
    serde_json::Value::Object(map)
}

/// The JSON the service sends for one engine output.
fn transcript_message(
    session_id: &str,
    params: &StreamParams,
    output: &EngineOutput,
    finals_text: &mut String,
) -> serde_json::Value {
    let text = output.text.trim();
    let full = if output.is_final {
        if !text.is_empty() {
            if !finals_text.is_empty() {
                finals_text.push(' ');
            }
            finals_text.push_str(text);
        }
        finals_text.clone()
    } else if finals_text.is_empty() {
        text.to_owned()
    } else {
        format!("{finals_text} {text}")
    };
    let message = TranscriptMessage {
        session_id: Some(session_id.to_owned()),
        transcript: output.text.clone(),
        full_transcript: Some(full),
        is_final: output.is_final,
        is_last: output.is_last,
        language: if output.is_final {
            output
                .language
                .clone()
                // With `multi` and nothing recognised there is no language to name.
                .or_else(|| {
                    (!params.language.is_multi()).then(|| params.language.code().to_owned())
                })
        } else {
            None
        },
        word_timestamps: (output.is_final && params.word_timestamps).then(|| output.words.clone()),
    };
    serde_json::to_value(&message).unwrap_or_default()
}

//! The receiving side of one connection: server frames become session events, finals are put on
//! the dictation's timeline, filtered of words a replay heard twice, and release replay audio.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::replay::Dedupe;
use super::{Dictation, FinalSegment, SessionError, SessionEvent};
use crate::channel::Sink;
use crate::protocol::{ServerMessage, WordTimestamp, parse_server_message};

/// What a received frame means for the session.
pub(super) enum Flow {
    Continue,
    /// The terminal `is_last` message arrived.
    Last,
    Failed(SessionError),
}

/// The receiving side of one connection: turns frames into events.
pub(super) struct Inbox<'a> {
    pub(super) events: &'a Sink<SessionEvent>,
    pub(super) forward_raw: bool,
    /// The user asked for word times (they are always requested, to know what each final covers).
    pub(super) show_words: bool,
    pub(super) error_message: Option<String>,
    /// Where this connection's time zero is on the dictation's timeline.
    pub(super) offset_secs: f64,
    /// Whether a transcript arrived on this connection.
    pub(super) progressed: bool,
    /// Keeps words an earlier connection delivered out of this one's finals.
    pub(super) dedupe: Dedupe,
}

impl Inbox<'_> {
    pub(super) fn on_frame(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
        dictation: &mut Dictation<'_>,
    ) -> Flow {
        let frame = match frame {
            None => {
                return Flow::Failed(
                    self.broken("the server went away without closing".to_owned()),
                );
            }
            Some(Err(e)) => return Flow::Failed(self.broken(e.to_string())),
            Some(Ok(frame)) => frame,
        };
        match frame {
            Message::Text(text) => self.on_text(&text, dictation),
            Message::Binary(_) => {
                dictation.notice("binary", "ignored a binary frame from the server");
                Flow::Continue
            }
            Message::Close(close) => {
                let (code, reason) = close
                    .map_or((u16::from(CloseCode::Status), String::new()), |c| {
                        (u16::from(c.code), c.reason.to_string())
                    });
                if code == u16::from(CloseCode::Policy) {
                    let reason = self.error_message.take().unwrap_or(reason);
                    return Flow::Failed(SessionError::Policy { reason });
                }
                if let Some(message) = self.error_message.take() {
                    return Flow::Failed(SessionError::ServerReported { message });
                }
                Flow::Failed(SessionError::ClosedEarly { code, reason })
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
        }
    }

    fn on_text(&mut self, text: &str, dictation: &mut Dictation<'_>) -> Flow {
        if self.forward_raw {
            self.events.send(SessionEvent::ServerText(text.to_owned()));
        }
        match parse_server_message(text) {
            Ok(ServerMessage::Transcript(message)) => {
                self.progressed = true;
                if dictation.summary.session_id.is_none() {
                    dictation.summary.session_id.clone_from(&message.session_id);
                }
                if message.is_final || message.is_last {
                    // Onto the dictation's timeline; absurd times (negative, reversed, not
                    // finite) are dropped, the text is kept.
                    let words: Vec<WordTimestamp> = message
                        .word_timestamps
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|w| w.start >= 0.0 && w.end >= w.start && w.end.is_finite())
                        .map(|w| WordTimestamp {
                            start: w.start + self.offset_secs,
                            end: w.end + self.offset_secs,
                            ..w
                        })
                        .collect();
                    let (text, words, repeated) = self.dedupe.filter(&message.transcript, words);
                    if repeated > 0 {
                        tracing::debug!(repeated, "dropped words a replay recognised again");
                    }
                    dictation.on_final(&text, &words);
                    let span = words
                        .first()
                        .zip(words.last())
                        .map(|(a, b)| (a.start, b.end));
                    self.events.send(SessionEvent::Final(FinalSegment {
                        text,
                        language: message.language,
                        words: if self.show_words { words } else { Vec::new() },
                        span,
                        is_last: message.is_last,
                        audio_sent_secs: dictation.summary.audio_secs_sent,
                        unconfirmed: false,
                    }));
                } else {
                    dictation.last_interim.clone_from(&message.transcript);
                    self.events.send(SessionEvent::Interim {
                        text: message.transcript,
                    });
                }
                if message.is_last {
                    Flow::Last
                } else {
                    Flow::Continue
                }
            }
            Ok(ServerMessage::Error { message }) => {
                tracing::warn!("server error frame: {message}");
                self.events.send(SessionEvent::ServerError {
                    message: message.clone(),
                });
                self.error_message = Some(message);
                Flow::Continue
            }
            Ok(ServerMessage::Event { kind }) => {
                if dictation.noticed.first(&kind) {
                    tracing::debug!("ignoring server event `{kind}`");
                }
                Flow::Continue
            }
            Err(e) => {
                dictation.notice(
                    "malformed",
                    &format!("ignored a malformed message from the server ({e})"),
                );
                Flow::Continue
            }
        }
    }

    /// The error for a broken connection: the server's own words when it sent an error frame.
    fn broken(&mut self, detail: String) -> SessionError {
        match self.error_message.take() {
            Some(message) => SessionError::ServerReported { message },
            None => SessionError::Dropped { detail },
        }
    }
}

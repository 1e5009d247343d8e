//! Where the window's dictation is: one [`Lifecycle`] value moved by the dictation's events, and
//! a [`Failure`] worded for the window (the library says what happened; the remedy becomes
//! advice about this window's controls).

use crate::audio::capture::CaptureEvent;
use crate::dictation::StartError;
use crate::remedy::Remedy;
use crate::session::{SessionError, SessionEvent};

/// The window's dictation, from idle to idle.
#[derive(Debug, Clone, PartialEq)]
pub enum Lifecycle {
    /// Nothing runs.
    Idle,
    /// Started: connecting (or loading the offline model); audio queues meanwhile.
    Connecting,
    /// Audio flows and text comes back.
    Listening,
    /// The connection was lost; audio is kept and replayed on the next one.
    Reconnecting { attempt: u32, kept_secs: f64 },
    /// The service stayed away: recognising on this computer.
    Offline,
    /// Stop was pressed (or the audio ended): waiting for the last finals.
    Stopping,
    /// The last dictation failed; the text so far is kept.
    Failed(Failure),
}

impl Lifecycle {
    /// Between Start and the dictation's end.
    pub fn is_dictating(&self) -> bool {
        !matches!(self, Lifecycle::Idle | Lifecycle::Failed(_))
    }

    /// What a session event changes.
    pub fn on_session(&mut self, event: &SessionEvent) {
        let next = match event {
            SessionEvent::Reconnecting {
                attempt, kept_secs, ..
            } => Lifecycle::Reconnecting {
                attempt: *attempt,
                kept_secs: *kept_secs,
            },
            SessionEvent::WentOffline { .. } => Lifecycle::Offline,
            SessionEvent::Reconnected { .. }
                if !matches!(self, Lifecycle::Offline | Lifecycle::Stopping) =>
            {
                Lifecycle::Listening
            }
            SessionEvent::Finishing => Lifecycle::Stopping,
            SessionEvent::Interim { .. } | SessionEvent::Final(_)
                if *self == Lifecycle::Connecting =>
            {
                Lifecycle::Listening
            }
            SessionEvent::Ended(Ok(_)) => Lifecycle::Idle,
            SessionEvent::Ended(Err(e)) => Lifecycle::Failed(Failure::session(e)),
            _ => return,
        };
        *self = next;
    }

    /// What a capture event changes: the first real samples mean the microphone is live.
    pub fn on_capture(&mut self, event: &CaptureEvent) {
        if matches!(event, CaptureEvent::Listening) && *self == Lifecycle::Connecting {
            *self = Lifecycle::Listening;
        }
    }
}

/// Why a dictation did not start or ended early, in the window's words.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What happened (the library's message).
    pub what: String,
    pub remedy: Remedy,
}

impl Failure {
    pub fn session(e: &SessionError) -> Self {
        Failure {
            what: e.to_string(),
            remedy: e.remedy(),
        }
    }

    pub fn start(e: &StartError) -> Self {
        Failure {
            what: e.to_string(),
            remedy: e.remedy(),
        }
    }

    /// The status line: what happened, then what to do here.
    pub fn text(&self) -> String {
        let what = capitalised(&self.what);
        match window_advice(self.remedy) {
            Some(advice) => format!("{what}: {advice}"),
            None => what,
        }
    }

    /// Whether the fix is in the Settings panel's key field.
    pub fn wants_key(&self) -> bool {
        self.remedy == Remedy::FixKey
    }
}

/// What to do, in terms of this window's controls.
fn window_advice(remedy: Remedy) -> Option<&'static str> {
    Some(match remedy {
        Remedy::FixKey => "add your key in Settings",
        Remedy::CheckUrl => "check the server URL in Settings",
        Remedy::CheckNetwork => "check the network, or the server URL in Settings",
        Remedy::CheckParams => "pick another language, encoding or sample rate",
        Remedy::UseCurrentEndpoint => "switch to Pulse live, or pick another service in Settings",
        Remedy::PickDevice => "pick another microphone in Settings",
        Remedy::FetchModel => {
            "download it in Settings (Offline model), or choose Lightning in Settings"
        }
        Remedy::MultilingualModel => {
            "download \"base\" in Settings (Offline model), or choose English"
        }
        _ => return None,
    })
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionSummary;
    use std::time::Duration;

    #[test]
    fn a_dictation_moves_from_connecting_to_idle() {
        let mut state = Lifecycle::Connecting;
        state.on_session(&SessionEvent::Connected);
        assert_eq!(state, Lifecycle::Connecting);
        state.on_capture(&CaptureEvent::Listening);
        assert_eq!(state, Lifecycle::Listening);
        state.on_session(&SessionEvent::Reconnecting {
            attempt: 2,
            delay: Duration::from_millis(500),
            reason: "lost".into(),
            kept_secs: 3.0,
        });
        assert!(matches!(state, Lifecycle::Reconnecting { attempt: 2, .. }));
        state.on_session(&SessionEvent::Reconnected {
            attempt: 2,
            replayed_secs: 3.0,
        });
        assert_eq!(state, Lifecycle::Listening);
        state.on_session(&SessionEvent::WentOffline {
            reason: "away".into(),
        });
        state.on_session(&SessionEvent::Reconnected {
            attempt: 3,
            replayed_secs: 1.0,
        });
        assert_eq!(state, Lifecycle::Offline, "stays offline once there");
        state.on_session(&SessionEvent::Finishing);
        assert_eq!(state, Lifecycle::Stopping);
        assert!(state.is_dictating());
        state.on_session(&SessionEvent::Ended(Ok(SessionSummary::default())));
        assert_eq!(state, Lifecycle::Idle);
        assert!(!state.is_dictating());
    }

    #[test]
    fn failures_speak_of_the_window_not_of_flags() {
        let e = SessionError::Auth {
            status: 401,
            detail: "invalid or missing API key".into(),
        };
        let failure = Failure::session(&e);
        assert_eq!(
            failure.text(),
            "The server refused the API key (HTTP 401): invalid or missing API key: add your key in Settings"
        );
        assert!(failure.wants_key());
        assert!(!failure.text().contains("--"));
    }
}

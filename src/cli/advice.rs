//! The library's errors in terminal words: what happened (the error's own message), then what to
//! type about it (its [`Remedy`], phrased with this command line's flags).

use std::fmt::Display;

use lightning_dictate::audio::devices::DeviceError;
use lightning_dictate::dictation::{DictationError, OfflineError, SourceError, StartError};
use lightning_dictate::protocol::{PULSE_LIVE_URL, PULSE_URL};
use lightning_dictate::remedy::Remedy;
use lightning_dictate::session::SessionError;
use lightning_dictate::whisper::ModelError;

/// What to do, in terminal words; `None` when the message says all there is.
fn advice(remedy: Remedy) -> Option<String> {
    Some(match remedy {
        Remedy::FixKey => "set SMALLEST_API_KEY or pass --api-key".to_owned(),
        Remedy::CheckUrl => "check --url".to_owned(),
        Remedy::CheckNetwork => {
            "check --url and the network (or start `lightning-dictate serve`)".to_owned()
        }
        Remedy::CheckParams => "check --language, --encoding and --sample-rate".to_owned(),
        Remedy::UseCurrentEndpoint => {
            format!("use --url {PULSE_LIVE_URL} (Pulse live) or --url {PULSE_URL}")
        }
        Remedy::PickDevice => {
            "pick another with --device (`lightning-dictate devices` lists them)".to_owned()
        }
        Remedy::ConnectMicrophone => "`lightning-dictate devices` lists what is seen".to_owned(),
        Remedy::FetchModel => "install it with `lightning-dictate model fetch tiny.en` (English) or `lightning-dictate model fetch base` (99 languages), or pass --model NAME|DIR".to_owned(),
        Remedy::MultilingualModel => "install the multilingual model with `lightning-dictate model fetch base`, or pass --model NAME|DIR with a multilingual one".to_owned(),
        _ => return None,
    })
}

/// `message: advice`.
fn explain(message: impl Display, remedy: Remedy) -> String {
    match advice(remedy) {
        Some(advice) => format!("{message}: {advice}"),
        None => message.to_string(),
    }
}

pub fn session(e: &SessionError) -> String {
    match e {
        // A URL error says how a valid one looks.
        SessionError::Url(url) => url.to_string(),
        other => explain(other, other.remedy()),
    }
}

pub fn device(e: &DeviceError) -> String {
    explain(e, e.remedy())
}

pub fn model(e: &ModelError) -> String {
    explain(e, e.remedy())
}

pub fn offline(e: &OfflineError) -> String {
    explain(e, e.remedy())
}

pub fn source(e: &SourceError) -> String {
    explain(e, e.remedy())
}

pub fn start(e: &StartError) -> String {
    match e {
        StartError::Url(url) => url.to_string(),
        other => explain(other, other.remedy()),
    }
}

pub fn dictation(e: &DictationError) -> String {
    match e {
        DictationError::Session(e) => session(e),
        DictationError::Start(e) => start(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_advice_names_flags_and_follows_what_happened() {
        let refused = SessionError::Auth {
            status: 401,
            detail: String::new(),
        };
        assert_eq!(
            session(&refused),
            "the server refused the API key (HTTP 401): set SMALLEST_API_KEY or pass --api-key"
        );
        let missing = ModelError::Missing {
            path: "/nowhere".into(),
        };
        assert!(model(&missing).starts_with(
            "no Whisper model at /nowhere: install it with `lightning-dictate model fetch tiny.en`"
        ));
        assert!(device(&DeviceError::NoInput).contains("`lightning-dictate devices`"));
    }
}

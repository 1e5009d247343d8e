//! Admission: the handshake's checks (path, key, parameters, scheduled refusals) and the server's
//! shared state across connections.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};

use crate::protocol::{Dialect, KNOWN_PATHS, StreamParams};

use super::{Chaos, FaultRecord, ServerConfig, SessionRecord};

pub(super) struct State {
    pub(super) config: ServerConfig,
    pub(super) refusals_left: AtomicU32,
    pub(super) drops_left: AtomicU32,
    pub(super) stalls_left: AtomicU32,
    pub(super) sessions: AtomicU64,
    pub(super) records: Option<crossbeam_channel::Sender<SessionRecord>>,
    pub(super) chaos: Option<Chaos>,
    pub(super) fault_log: crossbeam_channel::Sender<FaultRecord>,
    pub(super) once_left: AtomicU32,
    /// A refusal a fault scheduled for the next handshake.
    pub(super) refuse_next: std::sync::Mutex<Option<(u16, Option<u32>)>>,
}

impl State {
    /// Decides on the handshake. Returns the stream parameters or the HTTP refusal.
    pub(super) fn admit(&self, request: &Request) -> Result<(StreamParams, Dialect), Refusal> {
        let path = request.uri().path();
        if !KNOWN_PATHS.contains(&path) {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                &format!("unknown path {path}; use {}", KNOWN_PATHS[0]),
                None,
            ));
        }
        let dialect = Dialect::of_path(path);
        let query = request.uri().query().unwrap_or("");
        let scheduled = self.refuse_next.lock().ok().and_then(|mut r| r.take());
        if let Some((status, retry_after)) = scheduled {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Err(refusal(status, "refused by chaos", retry_after));
        }
        if take_one(&self.refusals_left) {
            let status = StatusCode::from_u16(self.config.faults.refuse_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Err(refusal(
                status,
                "refused by the fault switch",
                self.config.faults.retry_after_secs,
            ));
        }
        if let Some(key) = &self.config.api_key {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                });
            if presented != Some(key.expose()) {
                return Err(refusal(
                    StatusCode::UNAUTHORIZED,
                    "invalid or missing API key",
                    None,
                ));
            }
        }
        let params = StreamParams::from_query(query)
            .map_err(|e| refusal(StatusCode::BAD_REQUEST, &e.to_string(), None))?;
        if path.ends_with("/stt/live") {
            // As the 2026 documents describe the unified endpoint.
            let has_model = query.split('&').any(|p| {
                p.split_once('=')
                    .is_some_and(|(k, v)| k == "model" && !v.is_empty())
            });
            if !has_model {
                return Err(Refusal {
                    code: Some("MODEL_REQUIRED"),
                    ..refusal(StatusCode::BAD_REQUEST, "model is required", None)
                });
            }
            if params.language.is_multi() {
                return Err(Refusal {
                    code: Some("LANGUAGE_NOT_ENABLED_IN_REGION"),
                    ..refusal(
                        StatusCode::BAD_REQUEST,
                        "Language 'multi' has not been enabled in this region",
                        None,
                    )
                });
            }
        }
        self.config
            .engine
            .check_params(&params)
            .map_err(|e| refusal(StatusCode::BAD_REQUEST, &e, None))?;
        Ok((params, dialect))
    }
}

/// Decrements a counter that is above zero; tells whether it did.
pub(super) fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// An HTTP answer instead of the upgrade.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) retry_after: Option<u32>,
    /// The current dialect's `error_code`: the body is then `{"status":"error","error_code",
    /// "message"}` as the live endpoint sends it.
    pub(super) code: Option<&'static str>,
}

pub(super) fn refusal(status: StatusCode, message: &str, retry_after: Option<u32>) -> Refusal {
    Refusal {
        status,
        message: message.to_owned(),
        retry_after,
        code: None,
    }
}

pub(super) fn error_response(refusal: Refusal) -> ErrorResponse {
    let Refusal {
        status,
        message,
        retry_after,
        code,
    } = refusal;
    let body = match code {
        Some(code) => {
            serde_json::json!({ "status": "error", "error_code": code, "message": message })
        }
        None => serde_json::json!({ "error": message }),
    }
    .to_string();
    let mut response = ErrorResponse::new(Some(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

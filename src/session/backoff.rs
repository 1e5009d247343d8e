//! The reconnection policy as a small type: how long to wait before the next attempt, and when
//! to give up. Time is passed in, so the rules are unit-tested in microseconds, not by sockets.

use std::time::Duration;

use tokio::time::Instant;

use super::{ReconnectPolicy, SessionError};

/// Accepted connections in a row that recognise nothing before failing, after which a session
/// gives up (a service that accepts and then always fails).
pub(super) const MAX_BARREN_CONNECTIONS: u32 = 20;

/// The state of reconnecting across a dictation's connections.
pub(super) struct Backoff {
    policy: ReconnectPolicy,
    jitter: Jitter,
    /// Reconnection attempts since the last connection that recognised something.
    outage: Option<u32>,
    /// Since when no handshake has succeeded (`None` while they do): the service is away.
    down_since: Option<Instant>,
    /// Connections in a row that were accepted but failed before recognising anything.
    barren: u32,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Retry {
    /// 1 for the first attempt after a working connection.
    pub attempt: u32,
    pub delay: Duration,
    /// How long no handshake has succeeded.
    pub down_for: Duration,
    /// The service has been away too long, or keeps accepting connections that go nowhere.
    pub give_up: bool,
}

impl Backoff {
    pub(super) fn new(policy: ReconnectPolicy) -> Self {
        Backoff {
            policy,
            jitter: Jitter::seeded(),
            outage: None,
            down_since: None,
            barren: 0,
        }
    }

    #[cfg(test)]
    fn without_jitter(policy: ReconnectPolicy) -> Self {
        Backoff {
            jitter: Jitter::none(),
            ..Backoff::new(policy)
        }
    }

    /// A handshake succeeded; returns the attempt it ends, if it ends an outage.
    pub(super) fn connected(&mut self) -> Option<u32> {
        self.down_since = None;
        self.outage
    }

    /// A handshake failed (refused or unreachable) at `now`.
    pub(super) fn handshake_failed(&mut self, now: Instant) {
        self.down_since.get_or_insert(now);
    }

    /// A connection ended without `is_last`: `progressed` when it recognised something,
    /// `accepted` when its handshake had succeeded.
    pub(super) fn connection_failed(&mut self, progressed: bool, accepted: bool) {
        if progressed {
            self.outage = None;
            self.barren = 0;
        } else if accepted {
            self.barren += 1;
        }
    }

    /// A connection ended cleanly to go on in a new one: no outage.
    pub(super) fn rolled_over(&mut self) {
        self.outage = None;
    }

    /// Whether the dictation is between connections after a failure.
    pub(super) fn in_outage(&self) -> bool {
        self.outage.is_some()
    }

    /// Connections in a row that recognised nothing.
    pub(super) fn barren(&self) -> u32 {
        self.barren
    }

    /// The next attempt after `error` at `now`: exponential from the first delay (doubling, ±20 %
    /// jitter, capped), at least a 429's Retry-After.
    pub(super) fn next(&mut self, error: &SessionError, now: Instant) -> Retry {
        let attempt = self.outage.map_or(1, |a| a + 1);
        self.outage = Some(attempt);
        let exponent = attempt.saturating_sub(1).min(16);
        let base = self
            .policy
            .first_delay
            .saturating_mul(1u32 << exponent)
            .min(self.policy.max_delay);
        let mut delay = base.mul_f64(self.jitter.factor());
        if let SessionError::RateLimited {
            retry_after: Some(wait),
        } = error
        {
            delay = delay.max(*wait);
        }
        // A service that answers and fails now and then (each connection recognising some
        // audio) is retried for as long as it takes.
        let down_for = self
            .down_since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let give_up =
            down_for + delay > self.policy.give_up_after || self.barren >= MAX_BARREN_CONNECTIONS;
        Retry {
            attempt,
            delay,
            down_for,
            give_up,
        }
    }
}

/// ±20 % jitter for backoff delays, from a tiny xorshift generator (no randomness crate needed).
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        Jitter(nanos | 1)
    }

    /// No jitter at all (factor 1).
    #[cfg(test)]
    fn none() -> Self {
        Jitter(0)
    }

    fn factor(&mut self) -> f64 {
        if self.0 == 0 {
            return 1.0;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        0.8 + 0.4 * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped() -> SessionError {
        SessionError::Dropped {
            detail: "reset".into(),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_a_working_connection_resets_them() {
        let mut backoff = Backoff::without_jitter(ReconnectPolicy::default());
        let now = Instant::now();
        let delays: Vec<u64> = (0..7)
            .map(|_| backoff.next(&dropped(), now).delay.as_millis() as u64)
            .collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(backoff.connected(), Some(7), "the reconnect ends attempt 7");
        backoff.connection_failed(true, true);
        let retry = backoff.next(&dropped(), now);
        assert_eq!((retry.attempt, retry.delay.as_millis()), (1, 250));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut backoff = Backoff::new(ReconnectPolicy::default());
        for _ in 0..200 {
            backoff.outage = None;
            let ms = backoff.next(&dropped(), Instant::now()).delay.as_millis();
            assert!((200..=300).contains(&ms), "{ms}");
        }
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut backoff = Backoff::without_jitter(ReconnectPolicy::default());
        let limited = SessionError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            backoff.next(&limited, Instant::now()).delay,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn gives_up_after_a_minute_without_a_handshake_not_after_a_minute_of_flaky_service() {
        let mut backoff = Backoff::without_jitter(ReconnectPolicy::default());
        let start = Instant::now();
        backoff.handshake_failed(start);
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(!backoff.next(&dropped(), at(30)).give_up);
        assert!(
            backoff.next(&dropped(), at(60)).give_up,
            "60 s + the next delay is past the minute"
        );

        // Connections that each recognise something keep the dictation going indefinitely.
        let mut backoff = Backoff::without_jitter(ReconnectPolicy::default());
        for minute in 0..30 {
            backoff.connected();
            backoff.connection_failed(true, true);
            assert!(!backoff.next(&dropped(), at(minute * 60)).give_up);
        }
    }

    #[test]
    fn gives_up_after_twenty_barren_connections() {
        let mut backoff = Backoff::without_jitter(ReconnectPolicy::default());
        let now = Instant::now();
        for n in 1..=MAX_BARREN_CONNECTIONS {
            backoff.connected();
            backoff.connection_failed(false, true);
            assert_eq!(backoff.barren(), n);
            let retry = backoff.next(&dropped(), now);
            assert_eq!(retry.give_up, n == MAX_BARREN_CONNECTIONS, "after {n}");
        }
        // Refused handshakes are not barren connections.
        let mut backoff = Backoff::without_jitter(ReconnectPolicy::default());
        backoff.handshake_failed(now);
        backoff.connection_failed(false, false);
        assert_eq!(backoff.barren(), 0);
    }
}

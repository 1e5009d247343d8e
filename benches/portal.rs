//! Bench command for typing through the desktop's RemoteDesktop portal (Wayland): a stand-in
//! portal service on a private session bus (`tests/common/portal.rs`) receives the keys of
//! `lightning-dictate type` for a ten-word final, 30 times; what is measured is the time from
//! the first key's press to the last key's release as the portal receives them (the app's part:
//! two method calls per character), p50 and p99. A real desktop adds its own work per key
//! (GNOME's portal passes each to the compositor), which cannot be measured here.
//!
//! `cargo bench --bench portal` (needs dbus-daemon: `bash .ci/test` installs it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

#[path = "../tests/common/dbus.rs"]
mod dbus;
#[path = "../tests/common/portal.rs"]
mod portal;
#[path = "../tests/common/xserver.rs"]
mod xserver;

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bus = dbus::SessionBus::start(dir.path());
    let portal = portal::MockPortal::start(&bus.address);
    let sentence = " the quick brown fox jumps over the lazy dog again";
    let mut spans = Vec::new();
    for _ in 0..30 {
        let before = portal.log().keys.len();
        let out = portal::type_on_wayland(BIN, &bus.address, &dir.path().join("data"), sentence);
        assert!(out.status.success(), "{out:?}");
        let log = portal.log();
        assert_eq!(log.keys.len() - before, 2 * sentence.chars().count());
        let times = &log.key_times[before..];
        spans.push((times[times.len() - 1] - times[0]).as_secs_f64() * 1000.0);
    }
    spans.sort_by(f64::total_cmp);
    let at = |p: f64| spans[((spans.len() - 1) as f64 * p).round() as usize];
    println!(
        "a ten-word final ({} characters) through the RemoteDesktop portal (stand-in): p50 {:.1} ms, p99 {:.1} ms over {} runs",
        sentence.chars().count(),
        at(0.5),
        at(0.99),
        spans.len()
    );
}

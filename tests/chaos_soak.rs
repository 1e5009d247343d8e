//! The chaos soak, as a user meets it: `lightning-dictate transcribe` against
//! `lightning-dictate serve --chaos SEED`, two processes on loopback. The server fires a seeded
//! random fault after every 5-20 s of audio it has received (abort, error frame + 1011, stall,
//! garbage, refused handshake, half-open, close 1000 without is_last) and logs each as a JSON
//! line. Every word must come out, with at most one duplicate per connection a fault cost.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use common::*;

/// Faults that cost the connection (and so may cost one duplicated word).
fn costs_connection(fault: &str) -> bool {
    !matches!(fault, "stall" | "garbage")
}

fn soak(seed: u64, realtime: bool) {
    let dir = tempfile::tempdir().unwrap();
    let segments = long_script(80.0, seed);
    let (wav, expected) = script_file(dir.path(), "soak.wav", &segments);
    let seed_arg = seed.to_string();
    let (server, fault_log) =
        ServeProcess::spawn_logged(&["--engine", "tone", "--chaos", &seed_arg]);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lightning-dictate"));
    command
        .arg("transcribe")
        .arg(&wav)
        .args(["--url", &server.url, "--format", "text"]);
    if realtime {
        command.arg("--realtime");
    }
    let started = std::time::Instant::now();
    let output = command.output().expect("run transcribe");
    let elapsed = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let faults: Vec<serde_json::Value> = fault_log
        .try_iter()
        .map(|line| serde_json::from_str(&line).expect("a fault is one JSON line"))
        .collect();
    let names: Vec<&str> = faults.iter().filter_map(|f| f["fault"].as_str()).collect();
    let label = format!(
        "seed {seed}, {}",
        if realtime { "real time" } else { "fast" }
    );
    assert_eq!(output.status.code(), Some(0), "{label}: {stderr}");
    let got: Vec<String> = stdout.split_whitespace().map(str::to_owned).collect();
    let (lost, added) = lost_and_added(&expected, &got);
    let aborts = names.iter().filter(|n| costs_connection(n)).count();
    eprintln!(
        "CHAOS-SOAK | {label} | {} words | {} faults {names:?} | lost {lost} | duplicated {added} | {elapsed:.1} s |",
        expected.len(),
        faults.len()
    );
    assert!(
        faults.len() >= 5,
        "{label}: only {} faults: {names:?}",
        faults.len()
    );
    assert_eq!(lost, 0, "{label}: {stderr}");
    assert!(
        added <= aborts,
        "{label}: {added} duplicated, {aborts} connections lost"
    );
}

#[test]
fn chaos_seed_1_fast() {
    soak(1, false);
}

#[test]
fn chaos_seed_2_fast() {
    soak(2, false);
}

#[test]
fn chaos_seed_1_at_real_time() {
    soak(1, true);
}

#[test]
fn chaos_seed_2_at_real_time() {
    soak(2, true);
}

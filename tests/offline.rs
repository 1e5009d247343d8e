//! The offline recogniser as a user meets it: the real binary, real espeak-ng speech, the
//! fetched Whisper tiny.en model, and the local server on loopback.
//! Needs the models (`bash .ci/fetch-model`; `bash .ci/test` fetches them) and espeak-ng + sox.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::path::{Path, PathBuf};

use common::ServeProcess;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

/// Everyday dictation, 22 sentences (shared with `bash .ci/bench-offline`).
const SENTENCES_TXT: &str = include_str!("data/sentences.txt");

fn sentences() -> Vec<&'static str> {
    SENTENCES_TXT
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn model_dir() -> PathBuf {
    let dir = lightning_dictate::whisper::default_model_dir().expect("HOME is set");
    assert!(
        lightning_dictate::whisper::looks_like_model(&dir),
        "the offline model is missing at {}: run `lightning-dictate model fetch tiny.en base` (`bash .ci/test` does)",
        dir.display()
    );
    dir
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{what} is needed (`bash .ci/test` installs it): {e}"));
    assert!(status.success(), "{what} failed");
}

/// Speaks `sentences` with one espeak-ng voice and speed, each followed by `gap` seconds of
/// silence, as one 16 kHz mono WAV.
fn speech(
    dir: &Path,
    name: &str,
    sentences: &[&str],
    voice: &str,
    speed: u32,
    gap: f64,
) -> PathBuf {
    let mut parts = Vec::new();
    for (i, text) in sentences.iter().enumerate() {
        let raw = dir.join(format!("{name}-{i}.raw.wav"));
        let part = dir.join(format!("{name}-{i}.wav"));
        run(
            Command::new("espeak-ng")
                .args(["-v", voice, "-s", &speed.to_string(), "-w"])
                .arg(&raw)
                .arg(text),
            "espeak-ng",
        );
        run(
            Command::new("sox")
                .arg(&raw)
                .args(["-r", "16000", "-c", "1", "-b", "16"])
                .arg(&part)
                .args(["pad", "0", &gap.to_string()]),
            "sox",
        );
        parts.push(part);
    }
    let out = dir.join(format!("{name}.wav"));
    run(Command::new("sox").args(&parts).arg(&out), "sox");
    out
}

use lightning_dictate::whisper::wer::WordErrors;

fn transcribe(args: &[&str], wav: &Path) -> String {
    let out = Command::new(BIN)
        .arg("transcribe")
        .args(args)
        .arg(wav)
        .args(["--quiet", "--finish-timeout", "60"])
        .output()
        .expect("run lightning-dictate");
    assert!(
        out.status.success(),
        "transcribe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn score(reference: &[&str], hypothesis: &str, label: &str) -> WordErrors {
    let errors = WordErrors::between(&reference.join(" "), hypothesis);
    eprintln!(
        "{label}: WER {:.1} % ({}/{})",
        100.0 * errors.rate(),
        errors.edits,
        errors.words
    );
    errors
}

fn assert_wer(scores: &[WordErrors], limit: f64) {
    let total: WordErrors = scores.iter().copied().sum();
    eprintln!(
        "overall WER {:.1} % ({}/{})",
        100.0 * total.rate(),
        total.edits,
        total.words
    );
    assert!(
        total.rate() <= limit,
        "WER {:.1} % > {:.0} %",
        100.0 * total.rate(),
        100.0 * limit
    );
}

#[test]
fn transcribe_offline_recognises_espeak_speech_in_three_voices() {
    let _ = model_dir();
    let scores = each_voice(
        &[("en-us", 140), ("en", 160), ("en-us", 185)],
        &["--offline"],
        "",
    );
    assert_wer(&scores, 0.15);
}

/// The multilingual base model, named with `--model base`, on the same English speech (pooled
/// over the same three voices as tiny.en above).
#[test]
fn transcribe_offline_with_base_by_name_recognises_english() {
    assert!(
        lightning_dictate::models::installed("base"),
        "the offline model base is missing: run `lightning-dictate model fetch base` (`bash .ci/test` does)"
    );
    let scores = each_voice(
        &[("en-us", 140), ("en", 160), ("en-us", 185)],
        &["--offline", "--model", "base", "--language", "en"],
        " with base",
    );
    assert_wer(&scores, BASE_WER_LIMIT);
}

/// What base must reach on the three voices pooled: the issue's 8 % (measured 7.2 % with beam
/// search, 9.1 % greedy: `LIGHTNING_WHISPER_BEAM=1` fails this test).
const BASE_WER_LIMIT: f64 = 0.08;

/// The test sentences spoken in each voice and speed, transcribed with `args`: the errors of each.
fn each_voice(voices: &[(&str, u32)], args: &[&str], label: &str) -> Vec<WordErrors> {
    let dir = tempfile::tempdir().unwrap();
    let sentences = sentences();
    assert!(sentences.len() >= 20, "{} sentences", sentences.len());
    voices
        .iter()
        .map(|&(voice, speed)| {
            let name = format!("{voice}-{speed}");
            let wav = speech(dir.path(), &name, &sentences, voice, speed, 1.0);
            let text = transcribe(args, &wav);
            score(&sentences, &text, &format!("{voice} at {speed} wpm{label}"))
        })
        .collect()
}

/// `serve` in its own process (the default engine once the model is present) and `transcribe`
/// against it, as a separate client would.
#[test]
fn serve_and_transcribe_recognise_espeak_speech() {
    let _ = model_dir();
    let server = ServeProcess::spawn(&[]);
    let scores = each_voice(
        &[("en", 175), ("en-us", 150)],
        &["--url", &server.url],
        ", via serve",
    );
    assert_wer(&scores, 0.15);
}

/// Messages as the client printed them (`--format jsonl`).
fn messages(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn the_engine_sends_interims_then_one_final_per_pause_with_timed_words() {
    let _ = model_dir();
    let dir = tempfile::tempdir().unwrap();
    let sentences = [
        "I would like to book a table for two people tonight.",
        "Please call me back when you get home.",
    ];
    let wav = speech(dir.path(), "two", &sentences, "en-us", 150, 1.5);
    let duration = {
        let r = hound::WavReader::open(&wav).unwrap();
        f64::from(r.duration()) / f64::from(r.spec().sample_rate)
    };
    // At real time, as a microphone delivers it, so the engine has time for interims.
    let out = Command::new(BIN)
        .args(["transcribe", "--offline", "--realtime", "--word-timestamps"])
        .args(["--format", "jsonl", "--quiet"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = messages(&String::from_utf8_lossy(&out.stdout));
    let finals: Vec<&serde_json::Value> = messages
        .iter()
        .filter(|m| m["is_final"] == true && !m["transcript"].as_str().unwrap_or("").is_empty())
        .collect();
    assert_eq!(finals.len(), 2, "one final per pause: {messages:#?}");
    // Interims come before the first final, and each extends the one before (stable prefix).
    let first_final = messages.iter().position(|m| m["is_final"] == true).unwrap();
    let interims: Vec<&str> = messages[..first_final]
        .iter()
        .map(|m| m["transcript"].as_str().unwrap())
        .collect();
    assert!(
        !interims.is_empty(),
        "no interim before the first final: {messages:#?}"
    );
    for pair in interims.windows(2) {
        assert!(pair[1].starts_with(pair[0]), "interims flicker: {pair:?}");
    }
    // The last message, and only it, is is_last.
    assert_eq!(messages.last().unwrap()["is_last"], true);
    assert_eq!(messages.iter().filter(|m| m["is_last"] == true).count(), 1);
    // Word times increase and lie within the audio; the language is reported.
    let mut last_start = 0.0;
    for f in &finals {
        assert_eq!(f["language"], "en");
        let words = f["word_timestamps"].as_array().expect("word timestamps");
        assert!(!words.is_empty());
        for w in words {
            let (start, end) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
            assert!(
                start >= last_start && end >= start && end <= duration + 0.01,
                "{w}"
            );
            last_start = start;
        }
    }
    // The second sentence starts after the first one's pause.
    let second_start = finals[1]["word_timestamps"][0]["start"].as_f64().unwrap();
    let first_end = finals[0]["word_timestamps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["end"]
        .as_f64()
        .unwrap();
    assert!(second_start > first_end, "{second_start} <= {first_end}");
    let text: Vec<&str> = finals
        .iter()
        .map(|f| f["transcript"].as_str().unwrap())
        .collect();
    let score = score(&sentences, &text.join(" "), "two sentences");
    // Sanity, not the accuracy test (that is above): the finals are these sentences.
    assert!(score.rate() <= 0.25, "{text:?}");
}

/// A draft (the last interim's tokens) only makes greedy decoding faster: whether it is the
/// whole text, a part of it, or wrong from its first token, the text is the one decoded without
/// it.
#[test]
fn a_draft_changes_no_word_of_greedy_decoding() {
    use lightning_dictate::whisper::Recognizer;
    use lightning_dictate::whisper::decode::Pass;
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(
        dir.path(),
        "draft",
        &["He opened the window to let some fresh air into the room."],
        "en-us",
        150,
        0.3,
    );
    let samples: Vec<f32> = hound::WavReader::open(&wav)
        .unwrap()
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let mut recognizer = Recognizer::load(&model_dir()).unwrap();
    recognizer.beams = 1;
    let decode = |draft: &[u32]| {
        recognizer
            .recognize_with(
                &samples,
                Some("en"),
                &mut |_| "en".to_owned(),
                &[],
                Pass::Final { draft },
            )
            .unwrap()
    };
    let plain = decode(&[]);
    assert!(
        plain.tokens.len() > 8 && plain.text.to_lowercase().contains("window"),
        "{plain:?}"
    );
    let half = &plain.tokens[..plain.tokens.len() / 2];
    let mut wrong_late = plain.tokens.clone();
    let at = wrong_late.len() * 2 / 3;
    wrong_late[at] = plain.tokens[0];
    let wrong_first: Vec<u32> = plain.tokens.iter().rev().copied().collect();
    let longer: Vec<u32> = plain.tokens.iter().chain(&plain.tokens).copied().collect();
    for (label, draft) in [
        ("the whole text", plain.tokens.as_slice()),
        ("its first half", half),
        ("wrong two thirds in", wrong_late.as_slice()),
        ("wrong from the first token", wrong_first.as_slice()),
        ("the text twice", longer.as_slice()),
    ] {
        let with = decode(draft);
        assert_eq!(with.text, plain.text, "draft: {label}");
        assert_eq!(with.tokens, plain.tokens, "draft: {label}");
        assert_eq!(
            with.words.len(),
            plain.words.len(),
            "word times with draft: {label}"
        );
    }
    // The engine decodes an interim's encoding again as the pause's final: the same text and
    // word times as a final recognised from the audio.
    let encoded = recognizer.encode_segment(&samples, &[]).unwrap();
    let mut english = |_: &[(String, f64)]| "en".to_owned();
    let interim = recognizer
        .decode_segment(
            &encoded,
            Some("en"),
            &mut english,
            &[],
            Pass::Interim {
                stop: &[],
                draft: &[],
            },
        )
        .unwrap();
    let again = recognizer
        .decode_segment(
            &encoded,
            Some("en"),
            &mut english,
            &[],
            Pass::Final {
                draft: &interim.tokens,
            },
        )
        .unwrap();
    assert_eq!(again.tokens, plain.tokens);
    assert_eq!(again.words.len(), plain.words.len());
    for (a, p) in again.words.iter().zip(&plain.words) {
        // Checked in one pass with the draft, a token's probability may differ in the sixth
        // decimal from the one computed step by step.
        assert_eq!((&a.text, a.start, a.end), (&p.text, p.start, p.end));
        assert!(
            (a.probability - p.probability).abs() < 1e-4,
            "{a:?} vs {p:?}"
        );
    }
}

/// Pauses shorter than the voice detector's (0.6 s) but long enough for the engine to close the
/// utterance with the final it decoded in the pause: the voice coming back starts a new
/// utterance, and no word is lost or said twice at the seams.
#[test]
fn short_pauses_at_real_time_lose_and_repeat_no_word() {
    let _ = model_dir();
    let dir = tempfile::tempdir().unwrap();
    let sentences = [
        "The weather is nice today.",
        "We should go for a walk in the park.",
        "Bring a coat in case it rains.",
        "I will meet you at the gate at noon.",
    ];
    let wav = speech(dir.path(), "short", &sentences, "en-us", 160, 0.45);
    let text = transcribe(&["--offline", "--realtime"], &wav);
    let errors = score(&sentences, &text, "four sentences, 0.45 s pauses");
    let reference_words = sentences.join(" ").split_whitespace().count();
    let words = text.split_whitespace().count();
    assert!(
        words <= reference_words + 1 && errors.rate() <= 0.15,
        "{words} words for {reference_words}, WER {:.1} %: {text}",
        100.0 * errors.rate()
    );
}

#[test]
fn an_english_only_model_refuses_other_languages_with_400() {
    let _ = model_dir();
    let server = ServeProcess::spawn(&["--engine", "whisper"]);
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), "hallo", &["Guten Tag."], "de", 160, 0.5);
    let out = Command::new(BIN)
        .args([
            "transcribe",
            "--url",
            &server.url,
            "--language",
            "de",
            "--quiet",
        ])
        .arg(&wav)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A refused handshake is a server refusal: exit code 4, with the server's reason.
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("400"), "{stderr}");
    assert!(stderr.contains("English-only"), "{stderr}");
    // English and automatic detection are served.
    let text = transcribe(&["--url", &server.url, "--language", "multi"], &wav);
    assert!(!text.contains("error"), "{text}");
}

fn offline_with_model(model: &Path, wav: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["transcribe", "--offline", "--model"])
        .arg(model)
        .arg(wav)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_truncated_or_foreign_model_is_a_clear_error() {
    let good = model_dir();
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), "hello", &["Hello."], "en-us", 160, 0.5);

    let missing = dir.path().join("no-such-model");
    let (code, stderr) = offline_with_model(&missing, &wav);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("no Whisper model at") && stderr.contains("no-such-model"),
        "{stderr}"
    );

    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(good.join(f), broken.join(f)).unwrap();
    }
    let bin = std::fs::read(good.join("model.bin")).unwrap();
    std::fs::write(broken.join("model.bin"), &bin[..bin.len() / 3]).unwrap();
    let (code, stderr) = offline_with_model(&broken, &wav);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("model.bin") && stderr.contains("truncated"),
        "{stderr}"
    );

    std::fs::write(
        broken.join("model.bin"),
        b"PK\x03\x04 this is a zip, not a model",
    )
    .unwrap();
    let (code, stderr) = offline_with_model(&broken, &wav);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("unsupported CTranslate2 format"),
        "{stderr}"
    );

    std::fs::copy(good.join("model.bin"), broken.join("model.bin")).unwrap();
    std::fs::write(broken.join("tokenizer.json"), b"{\"not\": \"a tokenizer\"}").unwrap();
    let (code, stderr) = offline_with_model(&broken, &wav);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("tokenizer.json"), "{stderr}");

    let (_, stderr) = offline_with_model(&missing, &wav);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

//! Automatic language offline, as a user meets it: `transcribe --offline --language multi` picks
//! the multilingual model (base) by itself, and every final carries the language spoken in it.
//! Needs both models (`bash .ci/fetch-model`; `bash .ci/test` fetches them), espeak-ng and sox.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

const SPANISH: &str = "El tren sale de la estación a las ocho de la mañana. Mi hermana vive en una casa pequeña cerca del mar. Los niños juegan en el parque todos los días después de la escuela. Mañana vamos a visitar a nuestros abuelos en el campo. La comida de este restaurante es muy buena y no es cara.";
const GERMAN: &str = "Der Zug fährt um acht Uhr morgens vom Bahnhof ab. Meine Schwester wohnt in einem kleinen Haus in der Nähe des Meeres. Die Kinder spielen jeden Tag nach der Schule im Park. Morgen besuchen wir unsere Großeltern auf dem Land. Das Essen in diesem Restaurant ist sehr gut und nicht teuer.";
const ENGLISH: &str = "The train leaves the station at eight in the morning. My sister lives in a small house near the sea. The children play in the park every day after school. Tomorrow we are going to visit our grandparents in the country. The food in this restaurant is very good and not expensive.";

fn models_installed() {
    for name in ["tiny.en", "base"] {
        assert!(
            lightning_dictate::models::installed(name),
            "the offline model {name} is missing: run `lightning-dictate model fetch tiny.en base` (`bash .ci/test` does)"
        );
    }
}

/// `text` spoken by espeak-ng's `voice`, 16 kHz mono, with `pad` seconds of silence after it.
fn speech(dir: &Path, name: &str, voice: &str, text: &str, pad: f64) -> PathBuf {
    let raw = dir.join(format!("{name}.raw.wav"));
    let wav = dir.join(format!("{name}.wav"));
    let spoken = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng is needed (`bash .ci/test` installs it)");
    assert!(spoken.success());
    let converted = Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .args(["pad", "0.3", &pad.to_string()])
        .status()
        .expect("sox is needed (`bash .ci/test` installs it)");
    assert!(converted.success());
    wav
}

fn seconds(wav: &Path) -> f64 {
    let reader = hound::WavReader::open(wav).unwrap();
    f64::from(reader.duration()) / f64::from(reader.spec().sample_rate)
}

fn transcribe(args: &[&str], wav: &Path, data_home: Option<&Path>) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("transcribe")
        .args(args)
        .arg(wav)
        .args(["--finish-timeout", "120"]);
    if let Some(home) = data_home {
        command.env("XDG_DATA_HOME", home);
    }
    command.output().expect("run lightning-dictate")
}

/// (language, text) of every final with text.
fn finals(output: &Output) -> Vec<(String, String)> {
    assert!(
        output.status.success(),
        "transcribe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["is_final"] == true && !m["transcript"].as_str().unwrap_or("").trim().is_empty()
        })
        .map(|m| {
            (
                m["language"].as_str().unwrap_or("(none)").to_owned(),
                m["transcript"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn count_words(text: &str, words: &[&str]) -> usize {
    let lower = text.to_lowercase();
    words.iter().filter(|w| lower.contains(*w)).count()
}

#[test]
fn automatic_language_labels_every_final_of_long_spanish_german_and_english_clips() {
    models_installed();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "es",
            "es",
            SPANISH,
            ["estación", "hermana", "parque", "restaurante"],
        ),
        (
            "de",
            "de",
            GERMAN,
            ["bahnhof", "haus", "kinder", "restaurant"],
        ),
        (
            "en-us",
            "en",
            ENGLISH,
            ["train", "sister", "children", "restaurant"],
        ),
    ];
    for (voice, code, text, words) in cases {
        let wav = speech(dir.path(), code, voice, text, 0.5);
        let secs = seconds(&wav);
        assert!((15.0..=25.0).contains(&secs), "{code}: {secs} s");
        let out = transcribe(
            &[
                "--offline",
                "--language",
                "multi",
                "--format",
                "jsonl",
                "--quiet",
            ],
            &wav,
            None,
        );
        let finals = finals(&out);
        eprintln!("{code} ({secs:.1} s): {finals:?}");
        assert!(!finals.is_empty(), "{code}: no finals");
        assert!(
            finals.iter().all(|(language, _)| language == code),
            "{code}: every final should say {code}: {finals:?}"
        );
        let all: String = finals
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(count_words(&all, &words) >= 3, "{code}: {all}");
    }
}

#[test]
fn spanish_then_german_in_one_dictation_gives_each_segment_its_language() {
    models_installed();
    let dir = tempfile::tempdir().unwrap();
    let es = speech(dir.path(), "es", "es", SPANISH, 1.5);
    let de = speech(dir.path(), "de", "de", GERMAN, 0.5);
    let both = dir.path().join("es-de.wav");
    let joined = Command::new("sox")
        .arg(&es)
        .arg(&de)
        .arg(&both)
        .status()
        .unwrap();
    assert!(joined.success());
    let out = transcribe(
        &[
            "--offline",
            "--language",
            "multi",
            "--format",
            "jsonl",
            "--quiet",
        ],
        &both,
        None,
    );
    let finals = finals(&out);
    eprintln!("{finals:?}");
    let languages: Vec<&str> = finals.iter().map(|(l, _)| l.as_str()).collect();
    let first_german = languages.iter().position(|l| *l == "de");
    let Some(first_german) = first_german else {
        panic!("no German segment: {finals:?}");
    };
    assert!(first_german > 0, "the Spanish comes first: {finals:?}");
    assert!(
        languages[..first_german].iter().all(|l| *l == "es"),
        "{finals:?}"
    );
    assert!(
        languages[first_german..].iter().all(|l| *l == "de"),
        "{finals:?}"
    );
    let spanish: String = finals[..first_german]
        .iter()
        .map(|(_, t)| t.as_str())
        .collect();
    let german: String = finals[first_german..]
        .iter()
        .map(|(_, t)| t.as_str())
        .collect();
    assert!(
        count_words(&spanish, &["estación", "hermana", "parque", "campo"]) >= 2,
        "{spanish}"
    );
    assert!(
        count_words(&german, &["bahnhof", "haus", "kinder", "land"]) >= 2,
        "{german}"
    );
}

#[test]
fn without_the_multilingual_model_the_cli_says_which_command_fetches_it() {
    models_installed();
    let dir = tempfile::tempdir().unwrap();
    // A data folder with only the English model in it.
    let models = dir.path().join("lightning-dictate/models");
    std::fs::create_dir_all(&models).unwrap();
    let english = lightning_dictate::models::model_dir("tiny.en").unwrap();
    std::os::unix::fs::symlink(&english, models.join("tiny.en")).unwrap();
    let wav = speech(
        dir.path(),
        "en",
        "en-us",
        "The train leaves the station at eight.",
        0.5,
    );

    // Automatic still works, in English, and says how to get the other languages.
    let out = transcribe(
        &["--offline", "--language", "multi"],
        &wav,
        Some(dir.path()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("recognises English only")
            && stderr.contains("`lightning-dictate model fetch base`"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .to_lowercase()
            .contains("leaves")
    );

    // A chosen language other than English cannot be served: one line, the command to run.
    let out = transcribe(&["--offline", "--language", "es"], &wav, Some(dir.path()));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("needs the multilingual model")
            && errors[0].contains("`lightning-dictate model fetch base`"),
        "{stderr}"
    );
}

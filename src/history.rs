//! Every transcript is saved as it grows, one JSON file each under the XDG data directory, written
//! atomically (temporary file, fsync, rename): a crash or power cut loses at most the open interim.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::transcript::Transcript;

/// One saved dictation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedTranscript {
    /// Also the file name (without `.json`): milliseconds since the Unix epoch at its start.
    pub id: String,
    pub started_unix_ms: u64,
    pub transcript: Transcript,
}

impl SavedTranscript {
    /// A new, empty dictation starting now.
    pub fn start_now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        SavedTranscript {
            id: format!("{ms}"),
            started_unix_ms: ms,
            transcript: Transcript::default(),
        }
    }

    /// The first words, for lists.
    pub fn preview(&self, words: usize) -> String {
        let text = self.transcript.final_text();
        let mut preview: Vec<&str> = text.split_whitespace().take(words + 1).collect();
        let more = preview.len() > words;
        preview.truncate(words);
        let mut line = preview.join(" ");
        if more {
            line.push('…');
        }
        line
    }
}

/// The history folder.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    /// `$XDG_DATA_HOME/lightning-dictate/history`, else `~/.local/share/...`.
    pub fn default_dir() -> Option<PathBuf> {
        Some(crate::paths::data_dir()?.join("history"))
    }

    /// Opens (creating) a history folder.
    pub fn open(dir: &Path) -> std::io::Result<History> {
        std::fs::create_dir_all(dir)?;
        Ok(History {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> PathBuf {
        // Ids are digits; anything else is refused rather than used as a path.
        let safe: String = id.chars().filter(char::is_ascii_digit).collect();
        self.dir.join(format!("{safe}.json"))
    }

    /// Saves atomically: the file is either the previous version or the new one, never half.
    pub fn save(&self, entry: &SavedTranscript) -> std::io::Result<()> {
        use std::io::Write;
        let path = self.path_of(&entry.id);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// Every saved transcript, newest first. Unreadable files are skipped.
    pub fn list(&self) -> Vec<SavedTranscript> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut list: Vec<SavedTranscript> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| std::fs::read(&p).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        list.sort_by_key(|e| std::cmp::Reverse(e.started_unix_ms));
        list
    }

    pub fn delete(&self, id: &str) -> std::io::Result<()> {
        std::fs::remove_file(self.path_of(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{FinalSegment, SessionEvent};

    #[test]
    fn save_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(&dir.path().join("h")).unwrap();
        let mut a = SavedTranscript::start_now();
        a.started_unix_ms = 1;
        a.id = "1".into();
        a.transcript.apply(&SessionEvent::Final(FinalSegment {
            text: "first words here".into(),
            language: None,
            words: vec![],
            span: None,
            is_last: false,
            audio_sent_secs: 1.0,
            unconfirmed: false,
        }));
        let mut b = a.clone();
        b.id = "2".into();
        b.started_unix_ms = 2;
        history.save(&a).unwrap();
        history.save(&b).unwrap();
        history.save(&b).unwrap();
        let list = history.list();
        assert_eq!(
            list.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["2", "1"]
        );
        assert_eq!(list[1], a);
        assert_eq!(a.preview(2), "first words…");
        history.delete("2").unwrap();
        assert_eq!(history.list().len(), 1);
        // Ids cannot escape the folder.
        assert!(history.path_of("../../etc/x").starts_with(history.dir()));
    }
}

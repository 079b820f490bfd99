//! Consistent backups of the store, and restoring them into a new data directory.
//!
//! A backup is a gzip stream: a header, then every sled tree as (name, entries), then
//! the tantivy index's committed files, then a footer with the entry count and a SHA-256
//! over everything before it, so a truncated or corrupt file is refused before anything
//! is written.
//!
//! The index files are copied while the index writer is locked (no commit can start) and
//! the store's write lock is held (no paper can be added), from the segment list of the
//! index's `meta.json`. A background merge may still delete a listed segment's files
//! mid-copy; the copy then starts over. The index only ever lags the store, and a start
//! whose index and store disagree on the document count rebuilds the index, so a restore
//! is consistent either way, and fast when the counts agree.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::{Store, StoreConfig, StoreError};

const MAGIC: &[u8; 16] = b"citecast-backup1";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl From<sled::Error> for BackupError {
    fn from(e: sled::Error) -> Self {
        BackupError::Store(e.into())
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupSummary {
    pub trees: usize,
    pub entries: u64,
    pub bytes: u64,
    /// Files of the search index in the backup (0: the index is rebuilt after a restore).
    #[serde(default)]
    pub index_files: usize,
}

/// Hashes and writes.
struct Hashed<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Hashed<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.inner.write_all(bytes)
    }
    fn blob(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.put(&(bytes.len() as u32).to_le_bytes())?;
        self.put(bytes)
    }
}

/// Writes a consistent snapshot of `store` to `path` (through a temp file renamed into
/// place, so a failed backup never leaves a half file under the final name). Writers
/// wait while it runs; readers don't.
pub fn backup(store: &Store, path: &Path) -> Result<BackupSummary, BackupError> {
    backup_with_index(store, None, path)
}

/// Where the index to back up lives, and the live index (when a server holds it) whose
/// writer must be held while its files are read.
pub struct IndexSource<'a> {
    pub dir: &'a Path,
    pub live: Option<&'a crate::index::TopicIndex>,
}

/// The committed files of the index in `dir`: `meta.json` and its segments' files.
fn read_index_files(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut last_err = None;
    for _ in 0..5 {
        match index_files_once(dir) {
            Ok(files) => return Ok(files),
            // A merge removed a listed segment while we read: start over from the new meta.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("index kept changing")))
}

fn index_files_once(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let meta = std::fs::read(dir.join("meta.json"))?;
    let parsed: serde_json::Value = serde_json::from_slice(&meta).map_err(std::io::Error::other)?;
    let segments: Vec<String> = parsed["segments"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["segment_id"].as_str()).map(|id| id.replace('-', "")).collect())
        .unwrap_or_default();
    let mut files = vec![("meta.json".to_string(), meta)];
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if segments.iter().any(|s| name.starts_with(s.as_str())) {
            let bytes = std::fs::read(dir.join(&name))?;
            files.push((name, bytes));
        }
    }
    Ok(files)
}

/// As [`backup`], with the index's committed files.
pub fn backup_with_index(
    store: &Store,
    index: Option<IndexSource<'_>>,
    path: &Path,
) -> Result<BackupSummary, BackupError> {
    let tmp = path.with_extension("partial");
    // Noted before the file exists, so a process killed mid-write leaves a record of the
    // half file for the next start to delete ([`remove_interrupted`]).
    let tmp_key = note_pending(store, &tmp)?;
    let result = write_backup(store, index, path, &tmp);
    store.db().open_tree(PENDING_TREE)?.remove(&tmp_key)?;
    result
}

/// Records that `tmp` is being written, durably, before it is created.
fn note_pending(store: &Store, tmp: &Path) -> Result<Vec<u8>, BackupError> {
    let pending = store.db().open_tree(PENDING_TREE)?;
    let key = tmp.as_os_str().as_encoded_bytes().to_vec();
    pending.insert(&key, &[])?;
    pending.flush()?;
    Ok(key)
}

/// A new file readable by its owner only: a backup holds every customer record.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// sled tree naming the `.partial` files of backups being written. Never backed up.
const PENDING_TREE: &str = "backups_in_progress";

/// Deletes the `.partial` files of backups that a killed process left behind; run when
/// the store is opened for serving. Returns how many were removed.
pub fn remove_interrupted(store: &Store) -> Result<usize, BackupError> {
    let pending = store.db().open_tree(PENDING_TREE)?;
    let mut removed = 0;
    for kv in pending.iter() {
        let (k, _) = kv?;
        let path = PathBuf::from(String::from_utf8_lossy(&k).into_owned());
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed += 1;
                tracing::warn!(file = %path.display(), "removed the half-written file of an interrupted backup");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove an interrupted backup's file")
            }
        }
        pending.remove(&k)?;
    }
    Ok(removed)
}

fn write_backup(
    store: &Store,
    index: Option<IndexSource<'_>>,
    path: &Path,
    tmp: &Path,
) -> Result<BackupSummary, BackupError> {
    let io = |source| BackupError::Io { path: path.display().to_string(), source };
    let tmp = tmp.to_path_buf();
    let file = create_private(&tmp).map_err(io)?;
    let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
    let mut out = Hashed { inner: gz, hash: Sha256::new() };
    let (mut trees, mut entries, mut index_files) = (0, 0u64, 0usize);
    let result = store.with_write_lock(|db| -> Result<(), BackupError> {
        out.put(MAGIC).map_err(io)?;
        let mut names = db.tree_names();
        names.retain(|n| n.as_ref() != PENDING_TREE.as_bytes());
        names.sort();
        for name in names {
            let tree = db.open_tree(&name)?;
            out.put(&[1]).map_err(io)?;
            out.blob(&name).map_err(io)?;
            for kv in tree.iter() {
                let (k, v) = kv?;
                out.put(&[2]).map_err(io)?;
                out.blob(&k).map_err(io)?;
                out.blob(&v).map_err(io)?;
                entries += 1;
            }
            trees += 1;
        }
        if let Some(source) = &index {
            let read = || read_index_files(source.dir);
            let files = match source.live {
                Some(live) => {
                    live.with_writer_locked(read).map_err(|e| BackupError::Invalid(e.to_string()))?
                }
                None if source.dir.join("meta.json").exists() => read(),
                None => Ok(Vec::new()),
            }
            .map_err(|e| BackupError::Io { path: source.dir.display().to_string(), source: e })?;
            for (name, bytes) in files {
                out.put(&[3]).map_err(io)?;
                out.blob(name.as_bytes()).map_err(io)?;
                out.put(&(bytes.len() as u64).to_le_bytes()).map_err(io)?;
                out.put(&bytes).map_err(io)?;
                index_files += 1;
            }
        }
        Ok(())
    });
    let finish = result.map_err(BackupError::from).and_then(|r| r).and_then(|_| -> Result<(), BackupError> {
        out.put(&[0]).map_err(io)?;
        out.put(&entries.to_le_bytes()).map_err(io)?;
        let digest = out.hash.finalize_reset();
        out.inner.write_all(&digest).map_err(io)?;
        let mut w = out.inner.finish().map_err(io)?;
        w.flush().map_err(io)?;
        w.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
        Ok(())
    });
    if let Err(e) = finish {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary { trees, entries, bytes, index_files })
}

struct Reader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Reader<R> {
    fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.inner.read_exact(&mut buf)?;
        self.hash.update(&buf);
        Ok(buf)
    }
    fn blob(&mut self) -> std::io::Result<Vec<u8>> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        if len > 64 << 20 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "record larger than 64 MiB"));
        }
        self.take(len)
    }
}

type Tree = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

/// Everything a backup holds, verified.
struct Contents {
    trees: Vec<Tree>,
    entries: u64,
    index: Vec<(String, Vec<u8>)>,
}

/// Reads and verifies a whole backup before anything is written.
fn read_all(path: &Path) -> Result<Contents, BackupError> {
    let bad = |what: String| BackupError::Invalid(format!("{}: {what}", path.display()));
    let file = std::fs::File::open(path)
        .map_err(|source| BackupError::Io { path: path.display().to_string(), source })?;
    let mut r =
        Reader { inner: flate2::read::GzDecoder::new(std::io::BufReader::new(file)), hash: Sha256::new() };
    let truncated = |e: std::io::Error| bad(format!("truncated or corrupt backup ({e})"));
    if r.take(MAGIC.len()).map_err(truncated)? != MAGIC {
        return Err(bad("not a citecast backup".into()));
    }
    let mut trees: Vec<Tree> = Vec::new();
    let mut entries = 0u64;
    let mut index = Vec::new();
    loop {
        match r.take(1).map_err(truncated)?[0] {
            0 => break,
            1 => trees.push((r.blob().map_err(truncated)?, Vec::new())),
            2 => {
                let k = r.blob().map_err(truncated)?;
                let v = r.blob().map_err(truncated)?;
                trees.last_mut().ok_or_else(|| bad("entry before any tree".into()))?.1.push((k, v));
                entries += 1;
            }
            3 => {
                let name = String::from_utf8(r.blob().map_err(truncated)?)
                    .map_err(|_| bad("bad file name".into()))?;
                if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                    return Err(bad(format!("unsafe index file name '{name}'")));
                }
                let len = u64::from_le_bytes(r.take(8).map_err(truncated)?.try_into().expect("8 bytes"));
                if len > 4 << 30 {
                    return Err(bad("index file larger than 4 GiB".into()));
                }
                index.push((name, r.take(len as usize).map_err(truncated)?));
            }
            other => return Err(bad(format!("unknown record kind {other}"))),
        }
    }
    let count = u64::from_le_bytes(r.take(8).map_err(truncated)?.try_into().expect("8 bytes"));
    let expected = r.hash.finalize_reset();
    let mut digest = [0u8; 32];
    r.inner.read_exact(&mut digest).map_err(truncated)?;
    if count != entries || digest[..] != expected[..] {
        return Err(bad("checksum mismatch: the backup is corrupt".into()));
    }
    Ok(Contents { trees, entries, index })
}

/// Restores a backup into `data_dir`, which must not hold a store yet.
pub fn restore(path: &Path, data_dir: &Path) -> Result<BackupSummary, BackupError> {
    let store_dir = data_dir.join("store");
    if store_dir.exists() {
        return Err(BackupError::Invalid(format!(
            "{} already holds a store; restore into a new directory",
            data_dir.display()
        )));
    }
    let Contents { trees, entries, index } = read_all(path)?;
    if !index.is_empty() {
        let dir = data_dir.join("index");
        std::fs::create_dir_all(&dir)
            .map_err(|source| BackupError::Io { path: dir.display().to_string(), source })?;
        for (name, bytes) in &index {
            let p = dir.join(name);
            std::fs::write(&p, bytes)
                .map_err(|source| BackupError::Io { path: p.display().to_string(), source })?;
        }
    }
    let store = Store::open(&store_dir, &StoreConfig::default())?;
    let db = store.db();
    for (name, kvs) in &trees {
        let tree = db.open_tree(name)?;
        let mut batch = sled::Batch::default();
        for (k, v) in kvs {
            batch.insert(k.as_slice(), v.as_slice());
        }
        tree.apply_batch(batch)?;
    }
    db.flush()?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary { trees: trees.len(), entries, bytes, index_files: index.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{AuthorRef, Paper};
    use crate::store::WriteBatch;

    #[test]
    fn an_interrupted_backups_partial_file_is_removed_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let half = dir.path().join("b.partial");
        {
            let store = Store::open(&store_dir, &StoreConfig::default()).unwrap();
            // What a process killed mid-backup leaves: the note, and the half file.
            note_pending(&store, &half).unwrap();
            std::fs::write(&half, b"half a backup").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(&store_dir, &StoreConfig::default()).unwrap();
        assert_eq!(remove_interrupted(&store).unwrap(), 1);
        assert!(!half.exists());
        assert_eq!(remove_interrupted(&store).unwrap(), 0, "the note is gone too");

        // A backup that completes leaves no note, and notes are never backed up.
        let file = dir.path().join("whole.ccbak");
        backup(&store, &file).unwrap();
        assert!(store.db().open_tree(PENDING_TREE).unwrap().is_empty());
        assert!(!dir.path().join("whole.partial").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "backups are private: {mode:o}");
        }
    }

    #[test]
    fn round_trips_every_tree_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a/store"), &StoreConfig::default()).unwrap();
        let paper = |id: &str| Paper {
            id: id.into(),
            aliases: vec![],
            title: "t".into(),
            authors: vec![AuthorRef { raw: "A".into(), display: "A".into(), key: "a".into() }],
            submitted: 10,
            submitted_secs: None,
            revised: vec![],
            abstract_text: String::new(),
            subject: None,
            journal_ref: None,
            comments: None,
            report_no: None,
        };
        store
            .apply(WriteBatch {
                papers: vec![paper("x"), paper("y")],
                citations: vec![],
                ..Default::default()
            })
            .unwrap();
        store.db().open_tree("usage").unwrap().insert(b"k", b"v").unwrap();
        let file = dir.path().join("b.backup");
        let summary = backup(&store, &file).unwrap();
        assert!(summary.entries >= 5);

        let restored = dir.path().join("restored");
        restore(&file, &restored).unwrap();
        let copy = Store::open(&restored.join("store"), &StoreConfig::default()).unwrap();
        for name in store.db().tree_names() {
            let a: Vec<_> = store.db().open_tree(&name).unwrap().iter().map(|kv| kv.unwrap()).collect();
            let b: Vec<_> = copy.db().open_tree(&name).unwrap().iter().map(|kv| kv.unwrap()).collect();
            assert_eq!(a, b, "tree {}", String::from_utf8_lossy(&name));
        }
        assert!(restore(&file, &restored).is_err(), "never restores over a store");

        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = restore(&file, &dir.path().join("other")).unwrap_err().to_string();
        assert!(err.contains("truncated") || err.contains("corrupt"), "{err}");
        assert!(!dir.path().join("other/store").exists(), "nothing written from a bad backup");
    }
}

//! The snapshot file, `<dir>/dump.kv`: writing a captured key space durably and
//! loading it back, refusing files that are truncated or corrupt.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! header   magic "SPKVDUMP" (8) | version u32 | saved_at_ms u64 | key_count u64 | payload_len u64
//!          | log_gen u64 (version 2 only)
//! payload  key_count entries: key_len u32 | key | value_len u32 | value | expires_at_ms u64 (0 = never)
//! trailer  CRC32 (IEEE, crc32fast) of the payload, u32
//! ```
//!
//! `log_gen` is the first append-only log generation the snapshot does not
//! hold (see [`crate::kv::aof`]): replay starts there. Version 1 files (from
//! before the log) are still read, as holding no log generation (0).
//!
//! Why it is shaped so:
//! - The header carries the payload length, so a short file is reported as
//!   "truncated at byte N" rather than as a confusing CRC or parse failure; the
//!   CRC catches flipped bits; the key count catches a payload that checks out
//!   but does not hold what the header promised (a writer bug).
//! - Writing goes to `dump.tmp`, is fsynced, renamed over `dump.kv`, and the
//!   directory is fsynced: a crash at any point leaves either the old complete
//!   snapshot or the new one, never a torn file under the real name.
//! - Entries are streamed to the file as the capture hands them over (see
//!   [`crate::kv::store::Capture::write_to`]) with a running CRC, and the
//!   header is patched at the end, so writing needs no second copy of the
//!   data. Expired keys are skipped, which is why the count is known only at
//!   the end.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::kv::store::{Bytes, Capture, Value, Writing};

/// First bytes of every snapshot file.
pub const MAGIC: &[u8; 8] = b"SPKVDUMP";
/// The format version this code writes (it reads 1 and 2).
pub const VERSION: u32 = 2;
/// Size of the fixed header (version 2).
pub const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8 + 8;
/// Size of a version 1 header (no `log_gen`).
pub const HEADER_LEN_V1: usize = 8 + 4 + 8 + 8 + 8;
/// Name of the snapshot file inside the data directory.
pub const FILE_NAME: &str = "dump.kv";
/// Name of the file being written before it is renamed over [`FILE_NAME`].
pub const TMP_NAME: &str = "dump.tmp";

/// Path of the snapshot in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// What a successful write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Keys written (expired ones are skipped).
    pub keys: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// A loaded snapshot.
#[derive(Debug)]
pub struct Snapshot {
    /// When it was written, in ms since the Unix epoch.
    pub saved_at_ms: u64,
    /// The first append-only log generation not held here (0 for version 1).
    pub log_gen: u64,
    /// Every entry, as written (expiry is checked by whoever loads them).
    pub entries: Vec<(Bytes, Value)>,
}

/// What is wrong with a snapshot file.
#[derive(Debug)]
pub enum Problem {
    /// Reading or writing failed.
    Io(io::Error),
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// The file was written by a format version this code does not read.
    UnsupportedVersion(u32),
    /// The file ends at byte `at` but should be `expected` bytes long.
    Truncated { at: u64, expected: u64 },
    /// The file is longer than its header says.
    TrailingBytes { expected: u64, actual: u64 },
    /// The payload's CRC does not match the trailer.
    CrcMismatch { stored: u32, computed: u32 },
    /// The header's key count disagrees with the entries in the payload.
    KeyCountMismatch { header: u64, found: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io(e) => write!(f, "{e}"),
            Problem::BadMagic => write!(f, "bad magic: not a safepoint-kv snapshot"),
            Problem::UnsupportedVersion(v) => {
                write!(
                    f,
                    "unsupported version {v} (this build reads versions 1 to {VERSION})"
                )
            }
            Problem::Truncated { at, expected } => {
                write!(f, "truncated at byte {at} (expected {expected} bytes)")
            }
            Problem::TrailingBytes { expected, actual } => write!(
                f,
                "{} unexpected bytes after the end (expected {expected} bytes, found {actual})",
                actual - expected
            ),
            Problem::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch: stored {stored:#010x}, payload has {computed:#010x}"
            ),
            Problem::KeyCountMismatch { header, found } => write!(
                f,
                "key count mismatch: header says {header}, payload holds {found}"
            ),
        }
    }
}

/// A snapshot error: the file and what is wrong with it.
#[derive(Debug)]
pub struct SnapshotError {
    /// The file concerned.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            Problem::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Writes the entries of `capture` (the live ones at its time) to
/// `<dir>/dump.kv` durably, via `<dir>/dump.tmp`. Creates `dir` if needed.
/// `log_gen` is the first append-only log generation the snapshot does not
/// hold. The three steps ([`create`], [`TmpFile::start`],
/// [`Started::finish`]) are public so a checkpoint can open the file before
/// it stops the world and hand it to the capture as soon as the world
/// resumes.
///
/// The capture hands its entries over a batch of buckets at a time, already
/// in this file's entry format, and they are streamed through a buffered
/// writer: the file is written without a second copy of the key space.
pub fn write(dir: &Path, capture: Capture, log_gen: u64) -> Result<Written, SnapshotError> {
    create(dir)?.start(capture)?.finish(log_gen)
}

/// `<dir>/dump.tmp`, created (with room for the header) and ready for a
/// capture's entries. Dropped unused, it leaves the file, which the next
/// write truncates and start-up removes.
pub struct TmpFile {
    dir: PathBuf,
    file: File,
}

/// A snapshot being written: a capture's output is `dump.tmp`, and what
/// commands hand over goes there.
pub struct Started {
    dir: PathBuf,
    writing: Writing<File>,
    saved_at_ms: u64,
}

/// Creates `dir` if needed and `<dir>/dump.tmp` (truncated), the first
/// step of [`write()`].
///
/// # Errors
///
/// Creating the directory or the file failed; no `dump.tmp` is left.
pub fn create(dir: &Path) -> Result<TmpFile, SnapshotError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let tmp = dir.join(TMP_NAME);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(&[0; HEADER_LEN])?;
            Ok(file)
        })
        .map_err(io_error(&tmp))
        .inspect_err(|_| {
            remove_tmp(dir);
        })?;
    Ok(TmpFile {
        dir: dir.to_path_buf(),
        file,
    })
}

impl TmpFile {
    /// Makes this file `capture`'s output ([`Capture::start_writing`]):
    /// O(shards), no I/O beyond what was handed over before.
    ///
    /// # Errors
    ///
    /// A newer capture has begun, or writing what was handed over failed;
    /// `dump.tmp` is removed.
    pub fn start(self, capture: Capture) -> Result<Started, SnapshotError> {
        let saved_at_ms = capture.now_ms();
        match capture.start_writing(self.file) {
            Ok(writing) => Ok(Started {
                dir: self.dir,
                writing,
                saved_at_ms,
            }),
            Err(e) => {
                remove_tmp(&self.dir);
                Err(io_error(&self.dir.join(TMP_NAME))(e))
            }
        }
    }
}

impl Started {
    /// Writes the rest of the capture, the trailer and the header, fsyncs
    /// the file, renames it over `dump.kv` and fsyncs the directory.
    ///
    /// # Errors
    ///
    /// The first I/O error; on any failure the partial `dump.tmp` is
    /// removed (on a full disk it is what keeps the disk full).
    pub fn finish(self, log_gen: u64) -> Result<Written, SnapshotError> {
        let dir = self.dir;
        let tmp = dir.join(TMP_NAME);
        let written = finish_file(self.writing, self.saved_at_ms, log_gen)
            .map_err(io_error(&tmp))
            .inspect_err(|_| {
                remove_tmp(&dir);
            })?;
        let dest = path_in(&dir);
        fs::rename(&tmp, &dest)
            .map_err(io_error(&dest))
            .inspect_err(|_| {
                remove_tmp(&dir);
            })?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(&dir))?;
        Ok(written)
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |e| SnapshotError {
        path,
        problem: Problem::Io(e),
    }
}

/// Removes `<dir>/dump.tmp` if present: what a failed or interrupted write
/// left. Returns whether there was one. Called at start and after a failed
/// write; a removal that fails is reported, not fatal (the next write
/// truncates the file anyway).
pub fn remove_tmp(dir: &Path) -> bool {
    let tmp = dir.join(TMP_NAME);
    match fs::remove_file(&tmp) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            eprintln!("warning: cannot remove {}: {e}", tmp.display());
            false
        }
    }
}

fn finish_file(writing: Writing<File>, saved_at_ms: u64, log_gen: u64) -> io::Result<Written> {
    // The capture buffers its own writes (workers share them).
    let payload = writing.finish()?;
    let mut file = payload.out;
    file.write_all(&payload.crc.to_le_bytes())?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&saved_at_ms.to_le_bytes());
    header.extend_from_slice(&payload.keys.to_le_bytes());
    header.extend_from_slice(&payload.len.to_le_bytes());
    header.extend_from_slice(&log_gen.to_le_bytes());
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header)?;
    file.sync_all()?;
    Ok(Written {
        keys: payload.keys,
        bytes: HEADER_LEN as u64 + payload.len + 4,
    })
}

/// Appends one entry in the payload format: `key_len u32 | key | value_len
/// u32 | value | expires_at_ms u64` (0 = never).
///
/// # Panics
///
/// If the key or value is 4 GiB or larger (requests are capped far below).
pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], value: &[u8], expires_at_ms: u64) {
    for chunk in [key, value] {
        let len = u32::try_from(chunk.len()).expect("a key or value under 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&expires_at_ms.to_le_bytes());
}

/// Loads `path`. `Ok(None)` if it does not exist.
pub fn load(path: &Path) -> Result<Option<Snapshot>, SnapshotError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SnapshotError {
                path: path.to_path_buf(),
                problem: Problem::Io(e),
            })
        }
    };
    decode(&bytes).map(Some).map_err(|problem| SnapshotError {
        path: path.to_path_buf(),
        problem,
    })
}

/// Decodes a whole snapshot file held in memory.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, Problem> {
    let size = bytes.len() as u64;
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) {
            Problem::Truncated {
                at: size,
                expected: HEADER_LEN as u64,
            }
        } else {
            Problem::BadMagic
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(Problem::BadMagic);
    }
    if bytes.len() < 12 {
        return Err(Problem::Truncated {
            at: size,
            expected: HEADER_LEN as u64,
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let header_len = match version {
        1 => HEADER_LEN_V1,
        VERSION => HEADER_LEN,
        _ => return Err(Problem::UnsupportedVersion(version)),
    };
    if bytes.len() < header_len {
        return Err(Problem::Truncated {
            at: size,
            expected: header_len as u64,
        });
    }
    let mut header = Reader {
        bytes: &bytes[..header_len],
        pos: 12,
    };
    let saved_at_ms = header.u64().expect("header length checked");
    let key_count = header.u64().expect("header length checked");
    let payload_len = header.u64().expect("header length checked");
    let log_gen = if version == 1 {
        0
    } else {
        header.u64().expect("header length checked")
    };
    let expected = (header_len as u64)
        .checked_add(payload_len)
        .and_then(|n| n.checked_add(4))
        .unwrap_or(u64::MAX);
    if size < expected {
        return Err(Problem::Truncated { at: size, expected });
    }
    if size > expected {
        return Err(Problem::TrailingBytes {
            expected,
            actual: size,
        });
    }
    let payload = &bytes[header_len..header_len + payload_len as usize];
    let trailer: [u8; 4] = bytes[bytes.len() - 4..].try_into().expect("4 bytes");
    let stored = u32::from_le_bytes(trailer);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(Problem::CrcMismatch { stored, computed });
    }
    // The CRC matched, so a short entry is the writer's own: the entries
    // do not add up to what the header promised.
    let entries = decode_entries(payload).ok_or(Problem::KeyCountMismatch {
        header: key_count,
        found: 0,
    })?;
    if entries.len() as u64 != key_count {
        return Err(Problem::KeyCountMismatch {
            header: key_count,
            found: entries.len() as u64,
        });
    }
    Ok(Snapshot {
        saved_at_ms,
        log_gen,
        entries,
    })
}

/// Decodes a payload of entries; `None` if one is malformed.
pub fn decode_entries(payload: &[u8]) -> Option<Vec<(Bytes, Value)>> {
    let mut entries = Vec::new();
    let mut reader = Reader {
        bytes: payload,
        pos: 0,
    };
    while reader.pos < payload.len() {
        let key = reader.chunk()?;
        let data = reader.chunk()?;
        let expires = reader.u64()?;
        entries.push((
            Bytes::from(key),
            Value {
                data: Bytes::from(data),
                expires_at_ms: (expires != 0).then_some(expires),
            },
        ));
    }
    Some(entries)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::store::Store;
    use std::sync::Arc;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "safepoint-kv-snapshot-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sample_store() -> Arc<Store> {
        let store = Arc::new(Store::new(16));
        for i in 0..500 {
            store.set(
                format!("key:{i}").as_bytes(),
                format!("value-{i}").as_bytes().into(),
                None,
            );
        }
        store.set(b"bin\0\r\n", b"\xff\x00"[..].into(), Some(10_000));
        store.set(b"gone", b"x"[..].into(), Some(10));
        store
    }

    fn written_file(tag: &str) -> (TempDir, Vec<u8>) {
        let dir = TempDir::new(tag);
        write(&dir.0, sample_store().capture(1_000), 7).unwrap();
        let bytes = fs::read(path_in(&dir.0)).unwrap();
        (dir, bytes)
    }

    #[test]
    fn round_trip() {
        let dir = TempDir::new("round-trip");
        let store = sample_store();
        let written = write(&dir.0, store.capture(1_000), 7).unwrap();
        assert_eq!(written.keys, 501, "the expired key is skipped");
        assert!(!dir.0.join(TMP_NAME).exists());
        let path = path_in(&dir.0);
        assert_eq!(fs::metadata(&path).unwrap().len(), written.bytes);
        let snap = load(&path).unwrap().unwrap();
        assert_eq!(snap.saved_at_ms, 1_000);
        assert_eq!(snap.log_gen, 7);
        let loaded = Store::from_entries(16, snap.entries, 1_000);
        assert_eq!(loaded.len(), 501);
        assert_eq!(
            loaded.get(b"key:7", 1_000).as_deref(),
            Some(&b"value-7"[..])
        );
        assert_eq!(
            loaded.get(b"bin\0\r\n", 1_000).as_deref(),
            Some(&b"\xff\x00"[..])
        );
        assert_eq!(loaded.get(b"bin\0\r\n", 10_000), None, "expiry survives");
    }

    #[test]
    fn empty_store_and_overwrite() {
        let dir = TempDir::new("empty");
        write(&dir.0, sample_store().capture(1), 0).unwrap();
        let written = write(&dir.0, Arc::new(Store::new(4)).capture(2), 0).unwrap();
        assert_eq!(written.keys, 0);
        let snap = load(&path_in(&dir.0)).unwrap().unwrap();
        assert!(snap.entries.is_empty());
        assert_eq!(snap.saved_at_ms, 2);
    }

    #[test]
    fn a_failed_write_leaves_no_tmp_file() {
        let dir = TempDir::new("failed");
        // The rename fails: the destination is a non-empty directory.
        fs::create_dir_all(path_in(&dir.0).join("x")).unwrap();
        let err = write(&dir.0, sample_store().capture(1), 0).unwrap_err();
        assert_eq!(err.path, path_in(&dir.0), "{err}");
        assert!(!dir.0.join(TMP_NAME).exists(), "dump.tmp left behind");
        assert!(!remove_tmp(&dir.0));
        fs::write(dir.0.join(TMP_NAME), b"partial").unwrap();
        assert!(remove_tmp(&dir.0));
        assert!(!dir.0.join(TMP_NAME).exists());
    }

    #[test]
    fn version_1_files_still_load() {
        let (_dir, v2) = written_file("v1");
        // A version 1 file is the same without the log generation.
        let mut v1 = v2[..HEADER_LEN_V1].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&v2[HEADER_LEN..]);
        let old = decode(&v1).unwrap();
        let new = decode(&v2).unwrap();
        assert_eq!((old.log_gen, new.log_gen), (0, 7));
        assert_eq!(old.entries, new.entries);
        for cut in 0..v1.len() {
            assert!(matches!(decode(&v1[..cut]), Err(Problem::Truncated { .. })));
        }
    }

    #[test]
    fn missing_file_is_none() {
        let dir = TempDir::new("missing");
        assert!(load(&path_in(&dir.0)).unwrap().is_none());
    }

    #[test]
    fn every_truncation_is_reported() {
        let (_dir, bytes) = written_file("truncated");
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut]) {
                Err(Problem::Truncated { at, expected }) => {
                    assert_eq!(at, cut as u64);
                    assert!(expected > at);
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn corruption_is_reported() {
        let (dir, bytes) = written_file("corrupt");

        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(decode(&bad), Err(Problem::BadMagic)));

        let mut bad = bytes.clone();
        bad[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(decode(&bad), Err(Problem::UnsupportedVersion(7))));

        let mut bad = bytes.clone();
        bad[HEADER_LEN + 10] ^= 0x40;
        assert!(matches!(decode(&bad), Err(Problem::CrcMismatch { .. })));

        let mut bad = bytes.clone();
        bad[20..28].copy_from_slice(&3u64.to_le_bytes());
        assert!(matches!(
            decode(&bad),
            Err(Problem::KeyCountMismatch {
                header: 3,
                found: 501
            })
        ));

        let mut bad = bytes.clone();
        bad.push(0);
        assert!(matches!(decode(&bad), Err(Problem::TrailingBytes { .. })));

        let path = path_in(&dir.0);
        fs::write(&path, &bytes[..bytes.len() - 9]).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("truncated at byte {}", bytes.len() - 9)),
            "{err}"
        );
    }
}

//! Reading the log back at start: every generation from the snapshot's
//! onwards, in order, applied to the store the snapshot loaded.
//!
//! A record that ends early or fails its checksum at the end of the last
//! generation is what a crash mid-`write` leaves: it was never
//! acknowledged (with `always`, replies wait for the fsync of whole
//! batches), so it is cut off, with a message saying where and how many
//! bytes. The same anywhere else (in an older generation, which was
//! complete and fsynced before the next began) is corruption, and the
//! server refuses to start rather than silently drop what follows it.

use std::fs::{self, OpenOptions};
use std::path::Path;

use crate::kv::aof::log::{file_name, generations};
use crate::kv::aof::record::{decode, Frame};
use crate::kv::store::Store;

/// What [`replay`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Records applied.
    pub records: u64,
    /// Log files read.
    pub files: usize,
    /// The generation new records should go to.
    pub next_gen: u64,
    /// Bytes cut off a torn last record, if any.
    pub cut_bytes: u64,
}

/// Applies every log generation `>= from_gen` in `dir` to `store` (which
/// must have no log attached), deletes older ones (a snapshot covers them),
/// and cuts a torn last record off the last file.
///
/// # Errors
///
/// A message naming the file and byte offset of a bad record that is not
/// the last file's tail, or an I/O error reading, trimming or listing.
pub fn replay(dir: &Path, from_gen: u64, store: &Store, now_ms: u64) -> Result<Replayed, String> {
    let gens = generations(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut done = Replayed {
        records: 0,
        files: 0,
        next_gen: from_gen,
        cut_bytes: 0,
    };
    let last = gens.last().copied();
    for gen in gens {
        let path = dir.join(file_name(gen));
        if gen < from_gen {
            // Covered by the snapshot: left by a crash between the snapshot's
            // rename and the deletion.
            fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut pos = 0;
        while pos < bytes.len() {
            let problem = match decode(&bytes[pos..]) {
                Frame::Record(op, used) => {
                    store.apply(op, now_ms);
                    done.records += 1;
                    pos += used;
                    continue;
                }
                Frame::Short { have, need } => {
                    format!("the record at byte {pos} ends after {have} of its {need} bytes")
                }
                Frame::Bad(why) => format!("the record at byte {pos}: {why}"),
            };
            if Some(gen) != last {
                return Err(format!(
                    "{}: corrupt append-only log: {problem}; later generations exist, so this \
                     is not a torn last write: refusing to start",
                    path.display()
                ));
            }
            let cut = (bytes.len() - pos) as u64;
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(pos as u64).and_then(|()| f.sync_all()))
                .map_err(|e| format!("{}: cutting a torn last record: {e}", path.display()))?;
            eprintln!(
                "warning: {}: torn last record: {problem}; cut {cut} bytes at byte {pos} \
                 (a write cut short by a crash, never acknowledged)",
                path.display()
            );
            done.cut_bytes = cut;
            break;
        }
        done.files += 1;
        done.next_gen = done.next_gen.max(gen + 1);
    }
    Ok(done)
}

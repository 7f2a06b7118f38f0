//! The shared append-only log and its writer thread.
//!
//! Commands append frames to one in-memory batch (under the shard lock of
//! the key they change, see [`crate::kv::store`]); a dedicated thread takes
//! the whole batch, writes it, and, by policy, fsyncs it:
//!
//! - `always`: after every batch, before the connections that wrote into
//!   it send their replies ([`AppendLog::durable`]). While one batch is
//!   being fsynced the next one fills, so N clients writing at once cost
//!   one fsync per batch, not N (group commit).
//! - `everysec`: batches are written every [`WRITE_EVERY`] (2 ms, or as
//!   soon as [`WAKE_AT`] bytes are pending), and fsynced at most once a
//!   second. Replies do not wait. A SIGKILL loses only what was still in
//!   the batch (at most about 2 ms of writes); an OS crash or power loss up
//!   to about a second. Why not write as soon as anything is appended: on
//!   2 cores, waking the thread for every write (`redis-benchmark -P 1`)
//!   cost a quarter of the SET throughput.
//! - `no`: written the same way, never fsynced by us (the OS flushes).
//!
//! Why a thread and not the runtime's blocking pool: it lives as long as
//! the server and blocks in `fsync` for milliseconds at a time; a pool
//! thread would be held all the same. Why the bytes are written by the
//! thread rather than by each connection: one `write` per batch instead of
//! one per command, and nothing on a worker waits on the disk.
//!
//! A failed write or fsync with `always` exits the process (as Redis
//! does): the writes in that batch were applied but not acknowledged, and
//! carrying on would acknowledge later ones on a log with a hole. With
//! `everysec` and `no` the batch is kept and retried once a second, and
//! writes are refused with `-MISCONF` meanwhile ([`AppendLog::failed`]).

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// With `everysec` and `no`, how long appended bytes may wait for the writer.
pub const WRITE_EVERY: Duration = Duration::from_millis(2);
/// With `everysec` and `no`, pending bytes that wake the writer at once.
pub const WAKE_AT: usize = 256 * 1024;

/// When the log is fsynced (`--appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every batch, before its writers' replies go out.
    Always,
    /// At most once a second; replies do not wait.
    EverySec,
    /// Never by the server; the OS decides.
    No,
}

impl Fsync {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// The file name of generation `gen`.
pub fn file_name(gen: u64) -> String {
    format!("appendonly-{gen}.kv")
}

/// The generation a file name holds, if it is a log file's name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("appendonly-")?
        .strip_suffix(".kv")?
        .parse()
        .ok()
}

/// The generations of the log files in `dir`, ascending.
///
/// # Errors
///
/// When `dir` cannot be listed (a missing `dir` holds none).
pub fn generations(dir: &Path) -> io::Result<Vec<u64>> {
    let mut gens = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(gens),
        Err(e) => return Err(e),
    };
    for entry in entries {
        if let Some(gen) = parse_file_name(&entry?.file_name().to_string_lossy()) {
            gens.push(gen);
        }
    }
    gens.sort_unstable();
    Ok(gens)
}

/// What commands have appended and the writer has not yet taken.
struct Pending {
    bytes: Vec<u8>,
    /// Total bytes ever appended: the log sequence number of the end.
    appended: u64,
    /// The generation records appended now belong to.
    gen: u64,
    /// Where in `bytes` a new generation starts (at a checkpoint's cut).
    cuts: Vec<(usize, u64)>,
    /// Generations below this are covered by a durable snapshot.
    delete_below: u64,
    closing: bool,
    writer_idle: bool,
    /// The writer, idle with nothing pending, asks to be woken by the next
    /// append (else appends wake it only with `always` or past [`WAKE_AT`]).
    wake_on_append: bool,
}

/// The append-only log shared by the store, the connections and the
/// checkpoint controller.
pub struct AppendLog {
    dir: PathBuf,
    fsync: Fsync,
    pending: Mutex<Pending>,
    wake_writer: Condvar,
    /// Bytes (by sequence number) known to be on disk as the policy means it.
    durable: AtomicU64,
    waiters: Mutex<Vec<(u64, Waker)>>,
    failed: AtomicBool,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Appends and fsyncs since start (INFO: how much fsyncs are shared).
    appends: AtomicU64,
    fsyncs: AtomicU64,
}

impl AppendLog {
    /// Opens (creating `dir` if needed) the log for appending to generation
    /// `gen` and starts its writer thread.
    ///
    /// # Errors
    ///
    /// When the directory or the file cannot be created or opened, or the
    /// thread cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// use safepoint_examples::kv::aof::{record, AppendLog, Fsync};
    ///
    /// let dir = std::env::temp_dir().join(format!("aof-doc-{}", std::process::id()));
    /// let log = AppendLog::open(&dir, Fsync::Always, 1).unwrap();
    /// let end = log.append(|out| record::encode_del(out, b"k"));
    /// futures::executor::block_on(log.durable(end));
    /// log.close();
    /// assert!(dir.join("appendonly-1.kv").metadata().unwrap().len() > 0);
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open(dir: &Path, fsync: Fsync, gen: u64) -> io::Result<Arc<AppendLog>> {
        fs::create_dir_all(dir)?;
        let file = open_gen(dir, gen)?;
        let log = Arc::new(AppendLog {
            dir: dir.to_path_buf(),
            fsync,
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(64 * 1024),
                appended: 0,
                gen,
                cuts: Vec::new(),
                delete_below: 0,
                closing: false,
                writer_idle: false,
                wake_on_append: false,
            }),
            wake_writer: Condvar::new(),
            durable: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
            failed: AtomicBool::new(false),
            writer: Mutex::new(None),
            appends: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
        });
        let writer = {
            let log = log.clone();
            std::thread::Builder::new()
                .name("kv-aof".into())
                .spawn(move || Writer::new(&log, file, gen).run())?
        };
        *log.writer.lock() = Some(writer);
        Ok(log)
    }

    /// The fsync policy.
    pub fn fsync(&self) -> Fsync {
        self.fsync
    }

    /// Appends what `encode` writes (whole frames) and returns the log's
    /// end after it, for [`durable`](Self::durable).
    pub fn append(&self, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let mut p = self.pending.lock();
        let before = p.bytes.len();
        encode(&mut p.bytes);
        p.appended += (p.bytes.len() - before) as u64;
        self.appends.fetch_add(1, Ordering::Relaxed);
        let wake = self.fsync == Fsync::Always || p.wake_on_append || p.bytes.len() >= WAKE_AT;
        if p.writer_idle && wake {
            p.writer_idle = false;
            self.wake_writer.notify_one();
        }
        p.appended
    }

    /// The log's end now (what [`append`](Self::append) last returned).
    pub fn end(&self) -> u64 {
        self.pending.lock().appended
    }

    /// Resolves once the log up to `lsn` is on disk as the policy means it
    /// (fsynced, with `always`). With `everysec` and `no` it resolves at once:
    /// replies do not wait for the disk.
    pub fn durable(&self, lsn: u64) -> Durable<'_> {
        Durable { log: self, lsn }
    }

    /// Whether replies wait for [`durable`](Self::durable).
    pub fn replies_wait(&self) -> bool {
        self.fsync == Fsync::Always
    }

    /// Appends and fsyncs since start: with `always` and many clients, far
    /// fewer fsyncs than appends is group commit at work.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.appends.load(Ordering::Relaxed),
            self.fsyncs.load(Ordering::Relaxed),
        )
    }

    /// Whether the last write or fsync failed (writes are refused meanwhile).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Starts a new generation at this point of the log and returns it.
    /// Called while the world is stopped for a checkpoint: every record
    /// before the cut is in the captured store, none after it.
    pub fn cut(&self) -> u64 {
        let mut p = self.pending.lock();
        p.gen += 1;
        let (at, gen) = (p.bytes.len(), p.gen);
        p.cuts.push((at, gen));
        gen
    }

    /// A snapshot holding everything before generation `gen` is durable:
    /// the files of older generations may go.
    pub fn snapshot_durable(&self, gen: u64) {
        let mut p = self.pending.lock();
        p.delete_below = p.delete_below.max(gen);
        if p.writer_idle {
            p.writer_idle = false;
            self.wake_writer.notify_one();
        }
    }

    /// Writes and fsyncs what is pending and stops the writer thread.
    pub fn close(&self) {
        {
            let mut p = self.pending.lock();
            p.closing = true;
            self.wake_writer.notify_one();
        }
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }

    fn set_durable(&self, lsn: u64) {
        self.durable.store(lsn, Ordering::Release);
        let mut waiters = self.waiters.lock();
        waiters.retain(|(want, waker)| {
            if *want <= lsn {
                waker.wake_by_ref();
                false
            } else {
                true
            }
        });
    }
}

/// The future of [`AppendLog::durable`].
pub struct Durable<'a> {
    log: &'a AppendLog,
    lsn: u64,
}

impl Future for Durable<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let log = self.log;
        if !log.replies_wait() || log.durable.load(Ordering::Acquire) >= self.lsn {
            return Poll::Ready(());
        }
        let mut waiters = log.waiters.lock();
        // Checked again under the lock the writer wakes under: no lost wake-up.
        if log.durable.load(Ordering::Acquire) >= self.lsn {
            return Poll::Ready(());
        }
        waiters.push((self.lsn, cx.waker().clone()));
        Poll::Pending
    }
}

fn open_gen(dir: &Path, gen: u64) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file_name(gen)))
}

/// A batch taken from [`Pending`], kept until written.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    cuts: Vec<(usize, u64)>,
    end: u64,
}

struct Writer<'a> {
    log: &'a AppendLog,
    file: File,
    /// The file's length as far as whole writes go: a failed write is
    /// trimmed back to it, so the retry does not leave a torn frame behind.
    len: u64,
    gen: u64,
    /// Generations below this have been deleted.
    deleted_below: u64,
    last_sync: Instant,
    /// When the writer last took a batch (with `everysec` and `no`, the
    /// next is due [`WRITE_EVERY`] later).
    last_write: Instant,
    unsynced: bool,
    batch: Batch,
    /// The buffer handed back to `Pending` on the next take (capacity reuse).
    spare: Vec<u8>,
}

impl<'a> Writer<'a> {
    fn new(log: &'a AppendLog, file: File, gen: u64) -> Writer<'a> {
        let len = file.metadata().map_or(0, |m| m.len());
        Writer {
            log,
            file,
            len,
            gen,
            deleted_below: 0,
            last_sync: Instant::now(),
            last_write: Instant::now(),
            unsynced: false,
            batch: Batch::default(),
            spare: Vec::new(),
        }
    }

    fn run(mut self) {
        loop {
            let (closing, delete_below) = self.take();
            if let Err(e) = self.write_batch() {
                self.write_failed(e);
                continue;
            }
            self.delete_old(delete_below);
            if closing && self.log.pending.lock().bytes.is_empty() {
                if let Err(e) = self.file.sync_data() {
                    eprintln!("append-only log: final fsync failed: {e}");
                }
                return;
            }
        }
    }

    /// Waits for work and moves what is pending into `self.batch` (after
    /// whatever a failed write left there).
    fn take(&mut self) -> (bool, u64) {
        let log = self.log;
        let mut p = log.pending.lock();
        loop {
            let sync_due = self.unsynced
                && log.fsync == Fsync::EverySec
                && self.last_sync.elapsed() >= Duration::from_secs(1);
            let data_due = !p.bytes.is_empty()
                && (log.fsync == Fsync::Always
                    || p.bytes.len() >= WAKE_AT
                    || self.last_write.elapsed() >= WRITE_EVERY);
            if data_due
                || !p.cuts.is_empty()
                || p.closing
                || sync_due
                || p.delete_below > self.deleted_below
                || !self.batch.bytes.is_empty()
            {
                break;
            }
            p.writer_idle = true;
            p.wake_on_append = p.bytes.is_empty();
            let wait = if !p.bytes.is_empty() {
                WRITE_EVERY.saturating_sub(self.last_write.elapsed())
            } else if self.unsynced {
                Duration::from_secs(1).saturating_sub(self.last_sync.elapsed())
            } else {
                Duration::from_secs(1)
            };
            log.wake_writer.wait_for(&mut p, wait);
            p.writer_idle = false;
            p.wake_on_append = false;
        }
        self.last_write = Instant::now();
        let offset = self.batch.bytes.len();
        if offset == 0 {
            std::mem::swap(&mut self.batch.bytes, &mut p.bytes);
            std::mem::swap(&mut p.bytes, &mut self.spare);
        } else {
            self.batch.bytes.extend_from_slice(&p.bytes);
            p.bytes.clear();
        }
        self.batch
            .cuts
            .extend(p.cuts.drain(..).map(|(at, gen)| (at + offset, gen)));
        self.batch.end = p.appended;
        (p.closing, p.delete_below)
    }

    /// Writes the batch, switching files at each cut, and syncs by policy.
    fn write_batch(&mut self) -> io::Result<()> {
        let mut from = 0;
        let cuts = std::mem::take(&mut self.batch.cuts);
        for (i, &(at, gen)) in cuts.iter().enumerate() {
            let written = self
                .write_whole(from, at)
                .and_then(|()| self.sync_if(self.log.fsync != Fsync::No))
                .and_then(|()| open_gen(&self.log.dir, gen));
            match written {
                Ok(file) => {
                    self.file = file;
                    self.len = 0;
                    self.gen = gen;
                    from = at;
                }
                Err(e) => {
                    // Keep what is left (cuts included) for the retry.
                    self.batch.bytes.drain(..from);
                    self.batch.cuts = cuts[i..].iter().map(|&(a, g)| (a - from, g)).collect();
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.write_whole(from, self.batch.bytes.len()) {
            self.batch.bytes.drain(..from);
            return Err(e);
        }
        self.unsynced |= self.batch.bytes.len() > from;
        let sync = match self.log.fsync {
            Fsync::Always => true,
            Fsync::EverySec => self.last_sync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        self.sync_if(sync)?;
        self.spare = std::mem::take(&mut self.batch.bytes);
        self.spare.clear();
        self.log.failed.store(false, Ordering::Release);
        self.log.set_durable(self.batch.end);
        Ok(())
    }

    /// Writes `batch.bytes[from..to]` whole, or trims a partial write off.
    fn write_whole(&mut self, from: usize, to: usize) -> io::Result<()> {
        match self.file.write_all(&self.batch.bytes[from..to]) {
            Ok(()) => {
                self.len += (to - from) as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    fn sync_if(&mut self, sync: bool) -> io::Result<()> {
        if sync && self.unsynced {
            self.file.sync_data()?;
            self.log.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.unsynced = false;
            self.last_sync = Instant::now();
        } else if sync {
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    fn write_failed(&mut self, e: io::Error) {
        if self.log.fsync == Fsync::Always {
            // The batch's writes were applied but not acknowledged; carrying
            // on would acknowledge later writes over a hole in the log.
            eprintln!(
                "append-only log: writing {} failed: {e}; with appendfsync always the server \
                 cannot go on without losing acknowledged writes: exiting",
                self.log.dir.join(file_name(self.gen)).display()
            );
            std::process::exit(1);
        }
        if !self.log.failed.swap(true, Ordering::AcqRel) {
            eprintln!(
                "append-only log: writing {} failed: {e}; refusing writes (-MISCONF) and \
                 retrying every second",
                self.log.dir.join(file_name(self.gen)).display()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    /// Deletes the files of generations below both `below` (covered by a
    /// durable snapshot) and the one being written.
    fn delete_old(&mut self, below: u64) {
        let below = below.min(self.gen);
        if below <= self.deleted_below {
            return;
        }
        match generations(&self.log.dir) {
            Ok(gens) => {
                for gen in gens.into_iter().filter(|&g| g < below) {
                    let path = self.log.dir.join(file_name(gen));
                    if let Err(e) = fs::remove_file(&path) {
                        eprintln!("append-only log: cannot remove {}: {e}", path.display());
                    }
                }
                self.deleted_below = below;
            }
            Err(e) => eprintln!(
                "append-only log: cannot list {}: {e}",
                self.log.dir.display()
            ),
        }
    }
}

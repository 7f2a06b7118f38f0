//! A consistent snapshot of the store, taken in O(shards) at a stop and
//! read out afterwards while commands go on (see the `table` module for the
//! versioned buckets that make it so).

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use super::table::HandOver;
use super::{Bytes, Store, Value};

/// Buckets the writer copies per lock of a shard (about 1 000 entries):
/// short enough that a command waiting for the shard hardly notices.
const BATCH: usize = 256;
/// Bytes of handed-over buckets gathered before one write to the output. A
/// worker that hands a bucket over may be the one to write it, holding its
/// shard: long enough to make writes few, short enough (tens of
/// microseconds into the page cache) that the command it is in hardly
/// notices. The writer's own batches go to the output directly, not
/// through this buffer, so it never grows past one bucket over this.
const FLUSH_AT: usize = 128 * 1024;

/// What [`Capture::write_to`] wrote.
pub struct Written<W> {
    /// The output, handed back.
    pub out: W,
    /// Entries written.
    pub keys: u64,
    /// Bytes written.
    pub len: u64,
    /// CRC32 (IEEE) of the bytes written, in order.
    pub crc: u32,
}

/// The output the writer and the workers share during a write.
struct Sink<W> {
    state: Mutex<SinkState<W>>,
}

struct SinkState<W> {
    out: W,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
    keys: u64,
    /// The first write error; later bytes are dropped, the write fails.
    error: Option<io::Error>,
}

impl<W: Write> SinkState<W> {
    /// Writes `bytes` to the output, counting them into the CRC and length.
    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.crc.update(bytes);
            self.len += bytes.len() as u64;
            if let Err(e) = self.out.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }

    fn flush(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.write(&buf);
        self.buf = buf;
        self.buf.clear();
    }
}

impl<W: Write + Send> HandOver for Sink<W> {
    fn put(&self, append: &mut dyn FnMut(&mut Vec<u8>) -> u64) {
        let mut state = self.state.lock();
        let state = &mut *state;
        state.keys += append(&mut state.buf);
        if state.buf.len() >= FLUSH_AT {
            state.flush();
        }
    }
}

/// The cut a checkpoint takes: every entry as it was at [`Store::capture`].
/// Dropping it before it is read out ends it (commands stop handing
/// buckets over).
pub struct Capture {
    store: Arc<Store>,
    epoch: u64,
    now_ms: u64,
}

impl Store {
    /// Starts a capture of every shard: O(shards), no copying. Entries
    /// expired at `now_ms` are left out of it.
    ///
    /// Shards are stamped one after another, so the result is a consistent
    /// cut only if no command runs meanwhile: call it while the world is
    /// stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use safepoint_examples::kv::store::Store;
    ///
    /// let store = Arc::new(Store::new(4));
    /// store.set(b"k", b"old"[..].into(), None);
    /// let cut = store.capture(0);
    /// store.set(b"k", b"new"[..].into(), None);
    /// let entries = cut.entries().unwrap();
    /// assert_eq!(&*entries[0].1.data, b"old");
    /// assert_eq!(store.get(b"k", 0).unwrap(), b"new");
    /// ```
    pub fn capture(self: &Arc<Self>, now_ms: u64) -> Capture {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        for shard in self.shards.iter() {
            shard.lock().begin_capture(epoch, now_ms);
        }
        Capture {
            store: self.clone(),
            epoch,
            now_ms,
        }
    }
}

impl Capture {
    /// The time the capture left expired entries out at.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Writes every entry of the cut to `out`, serialised in the snapshot's
    /// entry format, and hands `out` back with the count, length and CRC:
    /// [`start_writing`](Self::start_writing) then [`Writing::finish`].
    ///
    /// # Errors
    ///
    /// The first error writing to `out`, or an error if a newer capture has
    /// begun.
    pub fn write_to<W: Write + Send + 'static>(self, out: W) -> io::Result<Written<W>> {
        self.start_writing(out)?.finish()
    }

    /// Makes `out` the capture's output: from here on, commands changing a
    /// bucket the writer has not reached serialise its old entries into
    /// `out`'s buffer themselves (writing it out every 128 KB), so
    /// nothing waits in memory for the writer. O(shards) and no I/O beyond
    /// writing out what was handed over before, so the checkpoint calls it
    /// as soon as the world resumes, not on the (niced, often descheduled)
    /// writer thread: until it runs, each shard keeps what it hands over,
    /// and under a saturating `SET` load on a busy machine that gap grew to
    /// tens of megabytes at 1 M keys.
    ///
    /// # Errors
    ///
    /// An error if a newer capture has begun.
    pub fn start_writing<W: Write + Send + 'static>(self, out: W) -> io::Result<Writing<W>> {
        let sink = Arc::new(Sink {
            state: Mutex::new(SinkState {
                out,
                buf: Vec::with_capacity(FLUSH_AT + 4 * 1024),
                crc: crc32fast::Hasher::new(),
                len: 0,
                keys: 0,
                error: None,
            }),
        });
        for shard in self.store.shards.iter() {
            shard
                .lock()
                .install_sink(self.epoch, sink.clone())
                .map_err(io::Error::other)?;
        }
        Ok(Writing {
            capture: self,
            sink,
        })
    }

    /// Every entry of the cut, decoded (tests, small stores).
    ///
    /// # Errors
    ///
    /// As [`write_to`](Self::write_to).
    pub fn entries(self) -> io::Result<Vec<(Bytes, Value)>> {
        let bytes = self.write_to(Vec::new())?.out;
        crate::kv::snapshot::decode_entries(&bytes)
            .ok_or_else(|| io::Error::other("a capture produced a malformed entry"))
    }
}

/// A capture whose output is in place ([`Capture::start_writing`]): what
/// commands hand over goes there; [`finish`](Self::finish) writes the rest.
/// Dropping it abandons the capture.
pub struct Writing<W> {
    capture: Capture,
    sink: Arc<Sink<W>>,
}

impl<W: Write + Send + 'static> Writing<W> {
    /// Serialises every bucket the commands have not handed over into the
    /// output, and hands the output back with the count, length and CRC.
    ///
    /// # Errors
    ///
    /// The first error writing to the output, or an error if a newer
    /// capture has begun.
    pub fn finish(self) -> io::Result<Written<W>> {
        let Writing { capture, sink } = self;
        let mut batch = Vec::with_capacity(256 * 1024);
        for shard in capture.store.shards.iter() {
            let mut next = 0;
            loop {
                batch.clear();
                let (keys, done) = shard
                    .lock()
                    .take_for_capture(capture.epoch, &mut next, BATCH, &mut batch)
                    .map_err(io::Error::other)?;
                if keys > 0 {
                    // Straight to the output: the shared buffer is for
                    // the workers' single buckets.
                    let mut state = sink.state.lock();
                    state.keys += keys;
                    state.write(&batch);
                }
                if done {
                    break;
                }
            }
        }
        // Every shard is done, so no table holds the sink any more.
        drop(capture);
        let sink = Arc::try_unwrap(sink)
            .map_err(|_| io::Error::other("a shard still holds the capture's sink"))?;
        let mut state = sink.state.into_inner();
        state.flush();
        if let Some(e) = state.error {
            return Err(e);
        }
        Ok(Written {
            out: state.out,
            keys: state.keys,
            len: state.len,
            crc: state.crc.finalize(),
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        for shard in self.store.shards.iter() {
            shard.lock().end_capture(self.epoch);
        }
    }
}

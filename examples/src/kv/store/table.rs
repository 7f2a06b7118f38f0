//! One shard's hash table: chained buckets, each stamped with the epoch of
//! the last capture it has been handed to.
//!
//! Why it is shaped so:
//! - Compact: an entry is two boxed byte strings and an expiry (40 bytes)
//!   in its bucket's array, plus the key's and the value's own allocations;
//!   a bucket is its array and its version (24 bytes) for two to four
//!   entries. A bucket's array is a boxed slice sized exactly: an insert or
//!   a removal reallocates it (cheap at this size), where a growable vector
//!   kept on average more than one spare 40-byte slot a bucket (5 M keys:
//!   978 MB against Redis's 886; exact, see the README's figures). Keys
//!   16 bytes, values 64: about 130-150 bytes a key where the persistent map
//!   (`imbl`) this replaced took over 700, and Redis about 180.
//! - Versioned buckets (as in Dragonfly) give a consistent snapshot without
//!   copying the table: a capture bumps the shard's epoch and marks it
//!   active (O(1) per shard, done while the world is stopped). From then
//!   on, before a bucket whose version is older than the epoch is changed,
//!   its entries as they were are serialised into `handed` for the
//!   snapshot writer, and the bucket takes the epoch. The writer serialises
//!   every bucket still older than the epoch itself and takes `handed`.
//!   Each entry of the cut is thus written exactly once, either way. Once
//!   the writer has its file open, a hand-over goes straight to the file's
//!   buffer (a [`HandOver`] sink) rather than waiting in `handed`: under a
//!   saturating write load nearly every bucket is changed before the writer
//!   reaches it, and holding those old versions until then cost as much
//!   memory again as the serialised key space (peak 1.7x steady at 1 M
//!   keys; with the sink, the snapshot costs one buffer). The bucket is
//!   serialised straight into that buffer, under its lock, rather than
//!   through a copy kept per shard.
//! - An overwrite with a value of the same size (the common case: counters,
//!   fixed-size records, a benchmark's values) copies the bytes into the
//!   old value's allocation. Swapping allocations instead frees, on
//!   whichever worker runs the command, a block another thread allocated
//!   (mimalloc puts it on that thread's delayed-free list) while the new
//!   value takes a fresh block: under a saturating SET load over 1 M keys
//!   that churn alone took the resident set from 147 to 179-183 MB, above
//!   the 1.2x a checkpoint may add in all. Copying in place keeps the key
//!   space where it is, and the request's buffer is freed at once by the
//!   thread that allocated it (mimalloc's fastest path).
//! - The table does not grow while a capture is reading it (bucket indices
//!   must stay put for the writer's walk); chains just get longer for that
//!   while, and the table catches up on the next insert after.
//! - Entries are serialised in the snapshot file's own entry format
//!   ([`crate::kv::snapshot`]), so the writer copies those bytes straight
//!   into the file.

use std::mem;
use std::sync::Arc;

/// The expiry stored for "never".
const NEVER: u64 = 0;
/// Average entries per bucket past which the table doubles.
const LOAD: usize = 4;
/// Buckets in a new table.
const INITIAL_BUCKETS: usize = 4;
/// Largest value an overwrite of the same size copies into the old
/// allocation rather than swapping allocations (see the module docs); past
/// it the copy would lengthen the shard lock more than the churn costs.
const IN_PLACE_MAX: usize = 64 * 1024;

/// One key and its value.
pub(crate) struct Entry {
    pub(crate) key: Box<[u8]>,
    pub(crate) data: Box<[u8]>,
    /// Absolute, ms since the Unix epoch; [`NEVER`] (0) for none.
    pub(crate) expires_at_ms: u64,
}

impl Entry {
    pub(crate) fn expiry(&self) -> Option<u64> {
        (self.expires_at_ms != NEVER).then_some(self.expires_at_ms)
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms != NEVER && self.expires_at_ms <= now_ms
    }
}

struct Bucket {
    /// The epoch of the last capture this bucket was handed to (or that
    /// was current when it was created).
    version: u64,
    entries: Box<[Entry]>,
}

/// Where a capture's writer takes handed-over entries (serialised, in the
/// snapshot payload format) as soon as a worker hands them over.
pub(crate) trait HandOver: Send + Sync {
    /// Lets `append` serialise entries straight into the output's buffer
    /// (no copy in between); `append` returns how many entries it added.
    fn put(&self, append: &mut dyn FnMut(&mut Vec<u8>) -> u64);
}

/// Entries handed over before the writer installed its sink.
#[derive(Default)]
pub(crate) struct Handed {
    /// Serialised entries (the snapshot payload format).
    pub(crate) bytes: Vec<u8>,
    /// How many entries `bytes` holds.
    pub(crate) keys: u64,
}

/// A shard's table.
pub(crate) struct Table {
    buckets: Vec<Bucket>,
    len: usize,
    /// The current capture's epoch (or the last one's).
    epoch: u64,
    /// Whether a capture is still reading this shard.
    active: bool,
    /// The capture's time: entries expired by then are not written.
    capture_ms: u64,
    handed: Handed,
    sink: Option<Arc<dyn HandOver>>,
}

impl Table {
    pub(crate) fn new() -> Table {
        Table {
            buckets: new_buckets(INITIAL_BUCKETS, 0),
            len: 0,
            epoch: 0,
            active: false,
            capture_ms: 0,
            handed: Handed::default(),
            sink: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn index(&self, hash: u64) -> usize {
        // The shard was picked with the hash's low bits; the bucket uses the high ones.
        ((hash >> 32) as usize) & (self.buckets.len() - 1)
    }

    pub(crate) fn get(&self, key: &[u8], hash: u64) -> Option<&Entry> {
        self.buckets[self.index(hash)]
            .entries
            .iter()
            .find(|e| &*e.key == key)
    }

    /// The bucket of `hash`, for a change: handed to the capture first if
    /// it is older than the capture.
    fn bucket_mut(&mut self, hash: u64) -> &mut Box<[Entry]> {
        let i = self.index(hash);
        if self.active && self.buckets[i].version < self.epoch {
            self.hand_over(i);
        }
        &mut self.buckets[i].entries
    }

    /// Serialises bucket `i` as it is for the capture (to its sink, or to
    /// `handed` until there is one) and stamps it.
    fn hand_over(&mut self, i: usize) {
        let bucket = &mut self.buckets[i];
        bucket.version = self.epoch;
        match &self.sink {
            Some(sink) => {
                if !bucket.entries.is_empty() {
                    let capture_ms = self.capture_ms;
                    sink.put(&mut |out| serialise(&bucket.entries, capture_ms, out));
                }
            }
            None => {
                self.handed.keys +=
                    serialise(&bucket.entries, self.capture_ms, &mut self.handed.bytes);
            }
        }
    }

    /// Inserts or replaces `key` (copied only if new).
    pub(crate) fn set(&mut self, key: &[u8], data: Box<[u8]>, expiry: Option<u64>, hash: u64) {
        let expires_at_ms = expiry.unwrap_or(NEVER);
        let bucket = self.bucket_mut(hash);
        match bucket.iter_mut().find(|e| &*e.key == key) {
            Some(e) => {
                if e.data.len() == data.len() && data.len() <= IN_PLACE_MAX {
                    // Same size: the old allocation takes the bytes, and the
                    // new one is freed by the thread that just made it.
                    e.data.copy_from_slice(&data);
                } else {
                    e.data = data;
                }
                e.expires_at_ms = expires_at_ms;
            }
            None => {
                let mut grown = mem::take(bucket).into_vec();
                grown.reserve_exact(1);
                grown.push(Entry {
                    key: key.into(),
                    data,
                    expires_at_ms,
                });
                *bucket = grown.into_boxed_slice();
                self.len += 1;
                // After a capture, the table may be more than one doubling behind.
                while !self.active && self.len > self.buckets.len() * LOAD {
                    self.grow();
                }
            }
        }
    }

    /// Removes `key`, returning its entry.
    pub(crate) fn remove(&mut self, key: &[u8], hash: u64) -> Option<Entry> {
        // Nothing to remove, nothing changes: no hand-over needed.
        self.get(key, hash)?;
        let bucket = self.bucket_mut(hash);
        let at = bucket.iter().position(|e| &*e.key == key)?;
        let mut shrunk = mem::take(bucket).into_vec();
        let entry = shrunk.swap_remove(at);
        *bucket = shrunk.into_boxed_slice();
        self.len -= 1;
        Some(entry)
    }

    /// Removes every key (handing the old ones over first if a capture is on).
    pub(crate) fn clear(&mut self) {
        if self.active {
            for i in 0..self.buckets.len() {
                if self.buckets[i].version < self.epoch {
                    self.hand_over(i);
                }
            }
        }
        // New buckets are stamped with the current epoch: handed or empty.
        self.buckets = new_buckets(INITIAL_BUCKETS, self.epoch);
        self.len = 0;
    }

    fn grow(&mut self) {
        let mut bigger: Vec<Vec<Entry>> = (0..self.buckets.len() * 2).map(|_| Vec::new()).collect();
        let mask = bigger.len() - 1;
        for bucket in mem::take(&mut self.buckets) {
            for entry in bucket.entries {
                let hash = super::hash(&entry.key);
                bigger[((hash >> 32) as usize) & mask].push(entry);
            }
        }
        self.buckets = bigger
            .into_iter()
            .map(|entries| Bucket {
                version: self.epoch,
                entries: entries.into_boxed_slice(),
            })
            .collect();
    }

    /// Starts a capture at `epoch` (greater than any before): O(1).
    pub(crate) fn begin_capture(&mut self, epoch: u64, capture_ms: u64) {
        self.epoch = epoch;
        self.active = true;
        self.capture_ms = capture_ms;
        self.handed = Handed::default();
        self.sink = None;
    }

    /// From now on, hand-overs for capture `epoch` go to `sink`; what was
    /// handed over before goes there now.
    ///
    /// # Errors
    ///
    /// When a newer capture has begun: this one's cut is gone.
    pub(crate) fn install_sink(
        &mut self,
        epoch: u64,
        sink: Arc<dyn HandOver>,
    ) -> Result<(), String> {
        if !self.active || self.epoch != epoch {
            return Err("a newer capture superseded this one".into());
        }
        let handed = mem::take(&mut self.handed);
        if handed.keys > 0 {
            sink.put(&mut |out| {
                out.extend_from_slice(&handed.bytes);
                handed.keys
            });
        }
        self.sink = Some(sink);
        Ok(())
    }

    /// For the writer of capture `epoch` (after [`install_sink`](Self::install_sink)):
    /// serialises up to `max` buckets from `*next` on that are older than
    /// the capture, into `out`, and returns how many entries that was and
    /// whether the shard is done: the capture ends for this shard once
    /// every bucket is (`*next` reaches the end).
    ///
    /// # Errors
    ///
    /// When a newer capture has begun: this one's cut is gone.
    pub(crate) fn take_for_capture(
        &mut self,
        epoch: u64,
        next: &mut usize,
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(u64, bool), String> {
        if !self.active || self.epoch != epoch {
            return Err("a newer capture superseded this one".into());
        }
        let mut keys = 0;
        // A FLUSH meanwhile may have replaced the buckets with fewer (all
        // stamped): `*next` can be past the end.
        let start = (*next).min(self.buckets.len());
        let end = (start + max).min(self.buckets.len());
        for bucket in &mut self.buckets[start..end] {
            if bucket.version < epoch {
                keys += serialise(&bucket.entries, self.capture_ms, out);
                bucket.version = epoch;
            }
        }
        *next = end;
        let done = end == self.buckets.len();
        if done {
            self.active = false;
            self.sink = None;
        }
        Ok((keys, done))
    }

    /// Abandons capture `epoch` (its writer gave up): no more hand-overs.
    pub(crate) fn end_capture(&mut self, epoch: u64) {
        if self.epoch == epoch {
            self.active = false;
            self.handed = Handed::default();
            self.sink = None;
        }
    }
}

fn new_buckets(n: usize, version: u64) -> Vec<Bucket> {
    (0..n)
        .map(|_| Bucket {
            version,
            entries: Box::default(),
        })
        .collect()
}

/// Appends the live entries (not expired at `now_ms`) in the snapshot's
/// entry format; returns how many.
fn serialise(entries: &[Entry], now_ms: u64, out: &mut Vec<u8>) -> u64 {
    let mut n = 0;
    for e in entries.iter().filter(|e| !e.is_expired(now_ms)) {
        crate::kv::snapshot::encode_entry(out, &e.key, &e.data, e.expires_at_ms);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Counts what is handed over.
    #[derive(Default)]
    struct Count(Mutex<u64>);

    impl HandOver for Count {
        fn put(&self, append: &mut dyn FnMut(&mut Vec<u8>) -> u64) {
            *self.0.lock() += append(&mut Vec::new());
        }
    }

    fn filled(n: usize) -> Table {
        let mut t = Table::new();
        for i in 0..n {
            let key = format!("k{i}");
            t.set(
                key.as_bytes(),
                b"v"[..].into(),
                None,
                super::super::hash(key.as_bytes()),
            );
        }
        t
    }

    #[test]
    fn a_flush_while_the_writer_is_halfway_keeps_the_cut() {
        let mut t = filled(10_000);
        let sink = Arc::new(Count::default());
        t.begin_capture(1, 0);
        t.install_sink(1, sink.clone()).unwrap();
        let (mut next, mut out) = (0, Vec::new());
        let (mut written, done) = t.take_for_capture(1, &mut next, 100, &mut out).unwrap();
        assert!(!done && written > 0);
        // The rest is handed over, and the table shrinks below `next`.
        t.clear();
        loop {
            let (keys, done) = t.take_for_capture(1, &mut next, 100, &mut out).unwrap();
            written += keys;
            if done {
                break;
            }
        }
        assert_eq!(written + *sink.0.lock(), 10_000);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_same_size_overwrite_reuses_the_value_allocation() {
        let mut t = Table::new();
        let h = super::super::hash(b"k");
        t.set(b"k", b"aaaa"[..].into(), None, h);
        let before = t.get(b"k", h).unwrap().data.as_ptr();
        t.set(b"k", b"bbbb"[..].into(), Some(7), h);
        let e = t.get(b"k", h).unwrap();
        assert_eq!((&*e.data, e.expiry()), (&b"bbbb"[..], Some(7)));
        assert_eq!(e.data.as_ptr(), before, "same size: copied in place");
        t.set(b"k", b"ccccc"[..].into(), None, h);
        assert_eq!(&*t.get(b"k", h).unwrap().data, b"ccccc");
        // Under a capture the old bytes are handed over before the copy.
        let sink = Arc::new(Count::default());
        t.begin_capture(1, 0);
        t.install_sink(1, sink.clone()).unwrap();
        t.set(b"k", b"ddddd"[..].into(), None, h);
        assert_eq!(*sink.0.lock(), 1);
        assert_eq!(&*t.get(b"k", h).unwrap().data, b"ddddd");
    }

    #[test]
    fn the_table_waits_to_grow_until_the_capture_is_done() {
        let mut t = filled(100);
        let buckets = t.buckets.len();
        t.begin_capture(1, 0);
        for i in 0..1000 {
            let key = format!("new{i}");
            t.set(
                key.as_bytes(),
                b"v"[..].into(),
                None,
                super::super::hash(key.as_bytes()),
            );
        }
        assert_eq!(t.buckets.len(), buckets, "grew under a capture");
        let (mut next, mut out) = (0, Vec::new());
        t.install_sink(1, Arc::new(Count::default())).unwrap();
        while !t.take_for_capture(1, &mut next, 1000, &mut out).unwrap().1 {}
        t.set(
            b"one more",
            b"v"[..].into(),
            None,
            super::super::hash(b"one more"),
        );
        assert!(t.len() <= t.buckets.len() * LOAD, "caught up in one insert");
    }
}

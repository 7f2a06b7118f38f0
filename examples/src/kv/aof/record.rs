//! The log's record format.
//!
//! ```text
//! frame    payload_len u32 | crc32 u32 (of the payload) | payload
//! payload  1 SET:   key_len u32 | key | value_len u32 | value | expires_at_ms u64 (0 = never)
//!          2 DEL:   key_len u32 | key
//!          3 FLUSH
//! ```
//!
//! Integers are little-endian, as in the snapshot. Why it is shaped so: the
//! length comes first so a reader knows how much to expect, and a torn
//! write (the process killed mid-`write`) shows as a frame that ends early
//! or whose checksum does not match; the checksum also catches a frame
//! whose length field itself was torn.

use crate::kv::store::Bytes;

/// Bytes of a frame before its payload.
pub const FRAME_HEADER: usize = 8;
/// Largest payload accepted when reading (a request is capped at 1 GB by
/// default; a larger length is a torn or corrupt frame).
pub const MAX_PAYLOAD: usize = 1 << 32;

/// One logged write effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `key` now holds `value`, expiring at `expires_at_ms` if set.
    Set {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// Absolute expiry, ms since the epoch.
        expires_at_ms: Option<u64>,
    },
    /// `key` was removed.
    Del {
        /// The key.
        key: Bytes,
    },
    /// Every key was removed.
    Flush,
}

/// Appends the frame of a SET to `out`.
pub fn encode_set(out: &mut Vec<u8>, key: &[u8], value: &[u8], expires_at_ms: Option<u64>) {
    frame(out, |p| {
        p.push(1);
        chunk(p, key);
        chunk(p, value);
        p.extend_from_slice(&expires_at_ms.unwrap_or(0).to_le_bytes());
    });
}

/// Appends the frame of a DEL to `out`.
pub fn encode_del(out: &mut Vec<u8>, key: &[u8]) {
    frame(out, |p| {
        p.push(2);
        chunk(p, key);
    });
}

/// Appends the frame of a FLUSH to `out`.
pub fn encode_flush(out: &mut Vec<u8>) {
    frame(out, |p| p.push(3));
}

/// Writes the payload in place after a reserved header, then fills the
/// header in: no second copy of a large value.
fn frame(out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    payload(out);
    let body = &out[start + FRAME_HEADER..];
    let len = u32::try_from(body.len()).expect("a logged write is under 4 GiB");
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a key or value is under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// What reading one frame from the front of a buffer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole, valid record and the bytes it took.
    Record(Op, usize),
    /// The buffer ends inside a frame (`have` of `need` bytes).
    Short {
        /// Bytes present.
        have: usize,
        /// Bytes the frame's header announced.
        need: usize,
    },
    /// The frame is whole but its checksum or contents are wrong.
    Bad(String),
}

/// Reads one frame from the front of `buf` (which must not be empty).
pub fn decode(buf: &[u8]) -> Frame {
    if buf.len() < FRAME_HEADER {
        return Frame::Short {
            have: buf.len(),
            need: FRAME_HEADER,
        };
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    let need = FRAME_HEADER + len;
    if buf.len() < need {
        return Frame::Short {
            have: buf.len(),
            need,
        };
    }
    let payload = &buf[FRAME_HEADER..need];
    let computed = crc32fast::hash(payload);
    if computed != crc {
        return Frame::Bad(format!(
            "checksum mismatch: stored {crc:#010x}, payload has {computed:#010x}"
        ));
    }
    match parse_payload(payload) {
        Some(op) => Frame::Record(op, need),
        None => Frame::Bad("malformed record (its checksum matches)".into()),
    }
}

fn parse_payload(p: &[u8]) -> Option<Op> {
    let (&kind, mut rest) = p.split_first()?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let op = match kind {
        1 => {
            let klen = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let key = Bytes::from(take(klen)?);
            let vlen = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let value = Bytes::from(take(vlen)?);
            let at = u64::from_le_bytes(take(8)?.try_into().ok()?);
            Op::Set {
                key,
                value,
                expires_at_ms: (at != 0).then_some(at),
            }
        }
        2 => {
            let klen = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            Op::Del {
                key: Bytes::from(take(klen)?),
            }
        }
        3 => Op::Flush,
        _ => return None,
    };
    rest.is_empty().then_some(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::store::b;

    #[test]
    fn round_trip_and_every_cut_is_short() {
        let mut wire = Vec::new();
        encode_set(&mut wire, b"k", b"v\r\n", Some(42));
        encode_del(&mut wire, b"gone");
        encode_flush(&mut wire);
        encode_set(&mut wire, b"", b"", None);
        let want = [
            Op::Set {
                key: b("k"),
                value: b("v\r\n"),
                expires_at_ms: Some(42),
            },
            Op::Del { key: b("gone") },
            Op::Flush,
            Op::Set {
                key: b(""),
                value: b(""),
                expires_at_ms: None,
            },
        ];
        let mut pos = 0;
        for op in &want {
            let Frame::Record(got, used) = decode(&wire[pos..]) else {
                panic!("at {pos}")
            };
            assert_eq!(&got, op);
            for cut in 0..used {
                assert!(
                    matches!(decode(&wire[pos..pos + cut]), Frame::Short { have, .. } if have == cut)
                );
            }
            pos += used;
        }
        assert_eq!(pos, wire.len());
    }

    #[test]
    fn flipped_bits_are_bad() {
        let mut wire = Vec::new();
        encode_set(&mut wire, b"key", b"value", None);
        for i in FRAME_HEADER..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 0x10;
            assert!(matches!(decode(&bad), Frame::Bad(_)), "byte {i}");
        }
    }
}

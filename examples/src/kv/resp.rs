//! RESP2, the Redis wire protocol, reply side: the reply encoder the server
//! uses, a request encoder and a reply parser for the built-in load clients,
//! and the strict integer reader both sides share. Requests are parsed by
//! [`crate::kv::request`], incrementally.
//!
//! Why it is shaped so: the reply parser (client side) works on a buffer the
//! caller owns and answers `Complete(reply, consumed)`, `Incomplete` or
//! `Error(msg)`; the demo clients read small replies, so re-parsing a short
//! buffer is cheaper than keeping state.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest reply header line the reply parser accepts.
const MAX_LINE: usize = 64 * 1024;

/// Result of trying to parse one reply from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// One item and the number of bytes it took from the front of the buffer.
    Complete(T, usize),
    /// The buffer holds only a prefix of an item: read more and try again.
    Incomplete,
    /// The input is not RESP.
    Error(String),
}

enum Line<'a> {
    /// The line without its CRLF, and the offset just past the CRLF.
    Complete(&'a [u8], usize),
    Incomplete,
    TooLong,
}

/// A `\r\n`-terminated line starting at `start`.
fn header_line(buf: &[u8], start: usize) -> Line<'_> {
    let window = &buf[start..buf.len().min(start + MAX_LINE + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Line::Complete(&window[..i], start + i + 2),
        None if window.len() >= MAX_LINE + 2 => Line::TooLong,
        None => Line::Incomplete,
    }
}

/// A strict decimal integer, as Redis's `string2ll` reads one: optional '-',
/// then 1 to 19 digits, no leading zero (but "0" itself), no "-0", nothing else.
///
/// # Examples
///
/// ```
/// use safepoint_examples::kv::resp::parse_int;
///
/// assert_eq!(parse_int(b"-12"), Some(-12));
/// assert_eq!(parse_int(b"012"), None);
/// assert_eq!(parse_int(b"-0"), None);
/// ```
pub fn parse_int(digits: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(digits).ok()?;
    let body = text.strip_prefix('-').unwrap_or(text);
    if body.is_empty() || body.len() > 19 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if body.starts_with('0') && (body.len() > 1 || text.starts_with('-')) {
        return None;
    }
    text.parse().ok()
}

/// A reply, as the server sends it and the load clients read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a status line. Borrowed when static (`OK`, `PONG`), so the
    /// commonest replies cost no allocation.
    Simple(Cow<'static, str>),
    /// `-ERR ...`: an error line; the text includes the error kind prefix.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(Vec<u8>),
    /// `$-1`: a missing value.
    Null,
    /// `*N` followed by N replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// `+OK`
    pub fn ok() -> Reply {
        Reply::Simple(Cow::Borrowed("OK"))
    }

    /// An `-ERR <msg>` error.
    pub fn err(msg: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {msg}"))
    }

    /// Appends the wire form of this reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => encode_line(out, b'+', s),
            Reply::Error(s) => encode_line(out, b'-', s),
            Reply::Integer(n) => encode_integer(out, *n),
            Reply::Bulk(b) => encode_bulk(out, b),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                encode_header(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

/// Appends `:n\r\n`.
pub fn encode_integer(out: &mut Vec<u8>, n: i64) {
    encode_header(out, b':', n);
}

/// Appends `$len\r\n<bytes>\r\n`.
pub fn encode_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_header(out, b'$', bytes.len() as i64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends a request (an array of bulk strings), as client libraries send it.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    encode_header(out, b'*', args.len() as i64);
    for arg in args {
        encode_bulk(out, arg);
    }
}

fn encode_header(out: &mut Vec<u8>, kind: u8, n: i64) {
    let mut text = String::with_capacity(24);
    let _ = write!(text, "{n}");
    out.push(kind);
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Simple strings and errors cannot carry CR or LF: they become spaces.
fn encode_line(out: &mut Vec<u8>, kind: u8, text: &str) {
    out.push(kind);
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Parses one reply from the front of `buf` (the client side of the protocol).
pub fn parse_reply(buf: &[u8]) -> Parse<Reply> {
    parse_reply_at(buf, 0)
}

fn parse_reply_at(buf: &[u8], start: usize) -> Parse<Reply> {
    let (line, next) = match header_line(buf, start) {
        Line::Complete(line, next) => (line, next),
        Line::Incomplete => return Parse::Incomplete,
        Line::TooLong => return Parse::Error("reply line too long".into()),
    };
    let Some((&kind, rest)) = line.split_first() else {
        return Parse::Error("empty reply line".into());
    };
    let text = || String::from_utf8_lossy(rest).into_owned();
    let int = || parse_int(rest).ok_or_else(|| format!("bad length or integer: {}", text()));
    match kind {
        b'+' => Parse::Complete(Reply::Simple(text().into()), next - start),
        b'-' => Parse::Complete(Reply::Error(text()), next - start),
        b':' => match int() {
            Ok(n) => Parse::Complete(Reply::Integer(n), next - start),
            Err(e) => Parse::Error(e),
        },
        b'$' => match int() {
            Ok(-1) => Parse::Complete(Reply::Null, next - start),
            Ok(n) if n >= 0 => {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    Parse::Incomplete
                } else if &buf[end..end + 2] != b"\r\n" {
                    Parse::Error("expected CRLF after bulk reply".into())
                } else {
                    Parse::Complete(Reply::Bulk(buf[next..end].to_vec()), end + 2 - start)
                }
            }
            Ok(n) => Parse::Error(format!("bad bulk length {n}")),
            Err(e) => Parse::Error(e),
        },
        b'*' => match int() {
            Ok(-1) => Parse::Complete(Reply::Null, next - start),
            Ok(n) if n >= 0 => {
                let mut items = Vec::with_capacity((n as usize).min(1024));
                let mut pos = next;
                for _ in 0..n {
                    match parse_reply_at(buf, pos) {
                        Parse::Complete(item, used) => {
                            items.push(item);
                            pos += used;
                        }
                        other => return other,
                    }
                }
                Parse::Complete(Reply::Array(items), pos - start)
            }
            Ok(n) => Parse::Error(format!("bad array length {n}")),
            Err(e) => Parse::Error(e),
        },
        other => Parse::Error(format!(
            "unknown reply type '{}'",
            char::from(other).escape_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(reply: Reply) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        out
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"99999999999999999999",
            b"01",
            b"-0",
            b"-01",
            b"00",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encoder() {
        assert_eq!(encoded(Reply::ok()), b"+OK\r\n");
        assert_eq!(encoded(Reply::err("bad\r\nthing")), b"-ERR bad  thing\r\n");
        assert_eq!(encoded(Reply::Integer(-7)), b":-7\r\n");
        assert_eq!(
            encoded(Reply::Bulk(b"a\r\nb".to_vec())),
            b"$4\r\na\r\nb\r\n"
        );
        assert_eq!(encoded(Reply::Null), b"$-1\r\n");
        assert_eq!(encoded(Reply::Array(vec![])), b"*0\r\n");
        assert_eq!(
            encoded(Reply::Array(vec![
                Reply::Integer(1),
                Reply::Bulk(b"x".to_vec())
            ])),
            b"*2\r\n:1\r\n$1\r\nx\r\n"
        );
        let mut out = Vec::new();
        encode_command(&mut out, &[b"GET", b"k"]);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn replies_round_trip() {
        let replies = [
            Reply::ok(),
            Reply::err("unknown command 'FOO'"),
            Reply::Integer(i64::MIN),
            Reply::Bulk(b"\r\n\0".to_vec()),
            Reply::Null,
            Reply::Array(vec![
                Reply::Simple("a".into()),
                Reply::Array(vec![Reply::Null]),
            ]),
        ];
        for reply in replies {
            let wire = encoded(reply.clone());
            for cut in 0..wire.len() {
                assert_eq!(parse_reply(&wire[..cut]), Parse::Incomplete);
            }
            assert_eq!(parse_reply(&wire), Parse::Complete(reply, wire.len()));
        }
        assert!(matches!(parse_reply(b"?x\r\n"), Parse::Error(_)));
    }
}

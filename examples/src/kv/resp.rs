//! RESP2, the Redis wire protocol: an incremental request parser and a reply
//! encoder (plus a reply parser for the built-in load clients).
//!
//! Why it is shaped so:
//! - The parser works on a byte buffer the connection owns and never consumes
//!   anything itself. It answers `Complete(cmd, consumed)`, `Incomplete` or
//!   `Error(msg)`, so the caller decides when to drain its buffer and can parse
//!   every complete command of a pipelined read before writing the replies in
//!   one write. Nothing is copied until a whole command has arrived.
//! - Requests come in two forms, as in Redis: arrays of bulk strings
//!   (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what client libraries send) and inline
//!   commands (`PING\r\n`, what `redis-cli` and `telnet` users type).
//! - Malformed input is a protocol error with a Redis-like message; the server
//!   replies with it and closes that one connection, since the stream can no
//!   longer be framed. Limits on line and bulk sizes stop a client from making
//!   the server buffer without bound.

use std::fmt::Write as _;

/// Longest inline command or `*`/`$` header line accepted.
pub const MAX_INLINE: usize = 64 * 1024;
/// Largest bulk string accepted in a request.
pub const MAX_BULK: usize = 64 * 1024 * 1024;
/// Most arguments accepted in one request array.
pub const MAX_ARGS: usize = 1024 * 1024;

/// Result of trying to parse one item from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// One item and the number of bytes it took from the front of the buffer.
    Complete(T, usize),
    /// The buffer holds only a prefix of an item: read more and try again.
    Incomplete,
    /// The input is not RESP; the message is meant for the client.
    Error(String),
}

/// A request: its arguments, command name first. An empty request (a blank
/// inline line or `*0\r\n`) is returned as an empty vector and should be skipped.
pub type Command = Vec<Vec<u8>>;

/// Parses one request from the front of `buf`.
pub fn parse_command(buf: &[u8]) -> Parse<Command> {
    match buf.first() {
        None => Parse::Incomplete,
        Some(b'*') => parse_array(buf),
        Some(_) => parse_inline(buf),
    }
}

fn parse_array(buf: &[u8]) -> Parse<Command> {
    let (count, mut pos) = match header_line(buf, 0) {
        Line::Complete(line, next) => match parse_int(&line[1..]) {
            Some(n) if n <= MAX_ARGS as i64 => (n, next),
            _ => return Parse::Error("Protocol error: invalid multibulk length".into()),
        },
        Line::Incomplete => return Parse::Incomplete,
        Line::TooLong => return Parse::Error("Protocol error: invalid multibulk length".into()),
    };
    if count <= 0 {
        return Parse::Complete(Vec::new(), pos);
    }
    let mut args = Vec::with_capacity((count as usize).min(64));
    for _ in 0..count {
        match buf.get(pos) {
            None => return Parse::Incomplete,
            Some(b'$') => {}
            Some(&other) => {
                return Parse::Error(format!(
                    "Protocol error: expected '$', got '{}'",
                    char::from(other).escape_default()
                ))
            }
        }
        let (len, start) = match header_line(buf, pos) {
            Line::Complete(line, next) => match parse_int(&line[1..]) {
                Some(n) if (0..=MAX_BULK as i64).contains(&n) => (n as usize, next),
                _ => return Parse::Error("Protocol error: invalid bulk length".into()),
            },
            Line::Incomplete => return Parse::Incomplete,
            Line::TooLong => return Parse::Error("Protocol error: invalid bulk length".into()),
        };
        let end = start + len;
        if buf.len() < end + 2 {
            return Parse::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parse::Error("Protocol error: expected CRLF after bulk string".into());
        }
        args.push(buf[start..end].to_vec());
        pos = end + 2;
    }
    Parse::Complete(args, pos)
}

fn parse_inline(buf: &[u8]) -> Parse<Command> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_INLINE {
            Parse::Error("Protocol error: too big inline request".into())
        } else {
            Parse::Incomplete
        };
    };
    if nl > MAX_INLINE {
        return Parse::Error("Protocol error: too big inline request".into());
    }
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let args = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Parse::Complete(args, nl + 1)
}

enum Line<'a> {
    /// The line without its CRLF, and the offset just past the CRLF.
    Complete(&'a [u8], usize),
    Incomplete,
    TooLong,
}

/// A `\r\n`-terminated line starting at `start`.
fn header_line(buf: &[u8], start: usize) -> Line<'_> {
    let window = &buf[start..buf.len().min(start + MAX_INLINE + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Line::Complete(&window[..i], start + i + 2),
        None if window.len() >= MAX_INLINE + 2 => Line::TooLong,
        None => Line::Incomplete,
    }
}

/// A strict decimal integer: optional '-', then 1 to 19 digits, nothing else.
pub fn parse_int(digits: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(digits).ok()?;
    let body = text.strip_prefix('-').unwrap_or(text);
    if body.is_empty() || body.len() > 19 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A reply, as the server sends it and the load clients read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a status line.
    Simple(String),
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
        Reply::Simple("OK".into())
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
        b'+' => Parse::Complete(Reply::Simple(text()), next - start),
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

    fn args(words: &[&str]) -> Command {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    fn encoded(reply: Reply) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        out
    }

    #[test]
    fn array_command() {
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        assert_eq!(
            parse_command(wire),
            Parse::Complete(args(&["SET", "k", "hello"]), wire.len())
        );
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let wire = b"*2\r\n$4\r\nECHO\r\n$12\r\nhello\r\nworld\r\n";
        for cut in 0..wire.len() {
            assert_eq!(
                parse_command(&wire[..cut]),
                Parse::Incomplete,
                "cut at {cut}"
            );
        }
        assert_eq!(
            parse_command(wire),
            Parse::Complete(args(&["ECHO", "hello\r\nworld"]), wire.len())
        );
    }

    #[test]
    fn pipelined_commands_parse_one_at_a_time() {
        let wire = b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n*1\r\n$3";
        let mut pos = 0;
        let mut got = Vec::new();
        while let Parse::Complete(cmd, used) = parse_command(&wire[pos..]) {
            got.push(cmd);
            pos += used;
        }
        assert_eq!(
            got,
            vec![args(&["PING"]), args(&["PING"]), args(&["GET", "x"])]
        );
        assert_eq!(&wire[pos..], b"*1\r\n$3");
    }

    #[test]
    fn inline_commands() {
        assert_eq!(
            parse_command(b"PING\r\n"),
            Parse::Complete(args(&["PING"]), 6)
        );
        assert_eq!(
            parse_command(b"set  a   b\n"),
            Parse::Complete(args(&["set", "a", "b"]), 11)
        );
        assert_eq!(parse_command(b"\r\n"), Parse::Complete(vec![], 2));
        assert_eq!(parse_command(b"PIN"), Parse::Incomplete);
    }

    #[test]
    fn empty_and_null_arrays_are_skippable() {
        assert_eq!(parse_command(b"*0\r\n"), Parse::Complete(vec![], 4));
        assert_eq!(parse_command(b"*-1\r\n"), Parse::Complete(vec![], 5));
        assert_eq!(
            parse_command(b"*1\r\n$0\r\n\r\n"),
            Parse::Complete(vec![vec![]], 10)
        );
    }

    #[test]
    fn malformed_requests_are_protocol_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"*x\r\n", "invalid multibulk length"),
            (b"*2\r\n:1\r\n", "expected '$', got ':'"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$abc\r\n", "invalid bulk length"),
            (b"*1\r\n$3\r\nabcXY", "expected CRLF after bulk string"),
            (b"*99999999999\r\n", "invalid multibulk length"),
            (b"*1\r\n$999999999999\r\n", "invalid bulk length"),
        ];
        for (wire, want) in cases {
            match parse_command(wire) {
                Parse::Error(msg) => {
                    assert!(msg.starts_with("Protocol error: "), "{msg}");
                    assert!(msg.contains(want), "{msg} lacks {want}");
                }
                other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(wire)),
            }
        }
    }

    #[test]
    fn unterminated_lines_are_bounded() {
        let long = vec![b'a'; MAX_INLINE + 10];
        assert!(matches!(parse_command(&long), Parse::Error(m) if m.contains("too big")));
        let mut header = b"*".to_vec();
        header.extend_from_slice(&vec![b'1'; MAX_INLINE + 10]);
        assert!(matches!(parse_command(&header), Parse::Error(_)));
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
        assert_eq!(
            parse_command(&out),
            Parse::Complete(args(&["GET", "k"]), out.len())
        );
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

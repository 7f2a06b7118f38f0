//! The request side of RESP2: an incremental parser that keeps its state
//! between reads.
//!
//! Why it is shaped so:
//! - A request can be far larger than one read (a `DEL` with a million keys
//!   is 7 MB; a `SET` of a 60 MB value arrives in thousands of reads). The
//!   parser is therefore a state machine that is fed each read's bytes once:
//!   header lines are scanned only where new bytes arrived, and each argument
//!   is copied once, from the read buffer into its own vector. Re-parsing a
//!   growing buffer from byte 0 on every read, as a stateless parser must,
//!   made such a request cost seconds of CPU (quadratic in its size).
//! - It owns no input buffer: what it has not yet turned into arguments is at
//!   most one header line (bounded by [`MAX_INLINE`]), so after a large
//!   request nothing stays allocated but what the command itself kept.
//! - Every request is capped as a whole ([`RequestParser::new`]'s `max_request`,
//!   Redis's `client-query-buffer-limit`, 1 GB by default): the wire bytes
//!   plus a vector header per argument, so a million empty arguments count
//!   for what they cost in memory, not just for their 6 bytes each.
//! - Requests come in two forms, as in Redis: arrays of bulk strings
//!   (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what client libraries send) and inline
//!   commands (`SET k "a b"\r\n`, what `redis-cli` and `telnet` users type),
//!   split with Redis's quoting rules ([`split_inline`]).
//! - Malformed input is a protocol error with Redis's message (`Protocol
//!   error: ...`); the caller replies with it and closes that one connection,
//!   since the stream can no longer be framed.

use crate::kv::resp::parse_int;

/// Longest inline command or `*`/`$` header line accepted (Redis: 64 KB).
pub const MAX_INLINE: usize = 64 * 1024;
/// Largest bulk string accepted in a request (Redis's `proto-max-bulk-len`).
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// Default cap on one whole request (Redis's `client-query-buffer-limit`).
pub const DEFAULT_MAX_REQUEST: usize = 1024 * 1024 * 1024;
/// A bulk string's vector is allocated up front only up to this size; past
/// it, it grows as bytes arrive, so a client that announces 512 MB and sends
/// nothing holds 1 MB, not 512.
const PREALLOC: usize = 1024 * 1024;
/// What an argument costs besides its bytes: its vector's header.
const ARG_OVERHEAD: usize = std::mem::size_of::<Vec<u8>>();

/// A request: its arguments, command name first. An empty request (a blank
/// inline line or `*0\r\n`) is returned as an empty vector and should be skipped.
pub type Command = Vec<Vec<u8>>;

/// What one call to [`RequestParser::parse`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Every byte given was taken in; a request is still incomplete.
    NeedMore,
    /// A whole request, and how many of the given bytes it took (the rest
    /// belongs to the next request).
    Command(Command, usize),
    /// The input is not RESP, or too large; the message is meant for the client.
    Error(String),
}

enum State {
    /// Between requests.
    Start,
    /// Collecting an inline command's line in `line`.
    Inline,
    /// Collecting the `*N` line in `line`.
    ArrayHeader,
    /// Expecting the `$len` line of the next argument, collected in `line`.
    BulkHeader { args: Command, left: usize },
    /// Collecting `len` bytes of an argument, then its CRLF (`crlf` of which
    /// have been seen).
    Bulk {
        args: Command,
        left: usize,
        arg: Vec<u8>,
        len: usize,
        crlf: u8,
    },
}

/// An incremental RESP2 request parser; one per connection.
///
/// # Examples
///
/// ```
/// use safepoint_examples::kv::request::{RequestParser, Step};
///
/// let mut parser = RequestParser::new(1 << 20);
/// // A request split over two reads: the first read's bytes are kept.
/// assert_eq!(parser.parse(b"*2\r\n$3\r\nGET\r\n$1"), Step::NeedMore);
/// assert_eq!(
///     parser.parse(b"\r\nk\r\nPING\r\n"),
///     Step::Command(vec![b"GET".to_vec(), b"k".to_vec()], 5)
/// );
/// assert_eq!(parser.parse(b"PING\r\n"), Step::Command(vec![b"PING".to_vec()], 6));
/// ```
pub struct RequestParser {
    state: State,
    /// The part of a header or inline line seen so far (at most [`MAX_INLINE`] + 2).
    line: Vec<u8>,
    max_request: usize,
    /// What the current request has cost so far, against `max_request`.
    cost: usize,
}

impl RequestParser {
    /// A parser that refuses requests costing more than `max_request` bytes
    /// (wire bytes plus a vector header per argument).
    pub fn new(max_request: usize) -> RequestParser {
        RequestParser {
            state: State::Start,
            line: Vec::new(),
            max_request,
            cost: 0,
        }
    }

    /// Whether the parser is between requests (nothing partial is held).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Start) && self.line.is_empty()
    }

    /// Feeds `buf` (new bytes, each given once) and returns when a request is
    /// complete, an error is found, or `buf` is used up.
    ///
    /// After an error the parser's state is unspecified: close the connection.
    pub fn parse(&mut self, buf: &[u8]) -> Step {
        if matches!(self.state, State::Start) && self.line.is_empty() {
            if let Some((command, used)) = self.whole_array(buf) {
                return Step::Command(command, used);
            }
        }
        let mut pos = 0;
        loop {
            match self.advance(buf, &mut pos) {
                Ok(Some(command)) => {
                    self.cost = 0;
                    self.shrink_line();
                    return Step::Command(command, pos);
                }
                Ok(None) if pos == buf.len() => return Step::NeedMore,
                Ok(None) => {}
                Err(message) => return Step::Error(message),
            }
        }
    }

    /// The fast path, for the common case of a whole, well-formed array
    /// request at the front of `buf` (pipelined small commands): parsed in
    /// place, without the state machine or copying header lines. `None`
    /// for anything else (incomplete, inline, malformed, over a limit):
    /// the state machine then takes the same bytes, so a request is
    /// scanned at most twice, and errors get their messages there.
    fn whole_array(&self, buf: &[u8]) -> Option<(Command, usize)> {
        let (count, mut pos) = fast_header(buf, 0, b'*')?;
        if count <= 0 || count > 1024 {
            return None;
        }
        let mut args = Vec::with_capacity(count as usize);
        let mut cost = pos;
        for _ in 0..count {
            let (len, start) = fast_header(buf, pos, b'$')?;
            let len = usize::try_from(len).ok()?;
            let end = start.checked_add(len)?;
            if buf.get(end..end + 2)? != b"\r\n" {
                return None;
            }
            cost += end + 2 - pos + ARG_OVERHEAD;
            if len > MAX_BULK || cost > self.max_request {
                return None;
            }
            args.push(buf[start..end].to_vec());
            pos = end + 2;
        }
        Some((args, pos))
    }

    /// Takes one step from `buf[*pos..]`: `Ok(Some)` when a request completes,
    /// `Ok(None)` when more input is needed or the state moved on.
    fn advance(&mut self, buf: &[u8], pos: &mut usize) -> Result<Option<Command>, String> {
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start => {
                let Some(&first) = buf.get(*pos) else {
                    return Ok(None);
                };
                self.state = if first == b'*' {
                    State::ArrayHeader
                } else {
                    State::Inline
                };
                Ok(None)
            }
            State::Inline => match self.take_line(buf, pos)? {
                None => {
                    self.state = State::Inline;
                    Ok(None)
                }
                Some(()) => {
                    let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let args = split_inline(line)?;
                    self.line.clear();
                    Ok(Some(args))
                }
            },
            State::ArrayHeader => {
                if self.take_line(buf, pos)?.is_none() {
                    self.state = State::ArrayHeader;
                    return Ok(None);
                }
                let count = self
                    .header_int(b'*')
                    .filter(|&n| n <= i64::from(i32::MAX))
                    .ok_or("Protocol error: invalid multibulk length")?;
                if count <= 0 {
                    return Ok(Some(Vec::new()));
                }
                let left = count as usize;
                self.state = State::BulkHeader {
                    args: Vec::with_capacity(left.min(1024)),
                    left,
                };
                Ok(None)
            }
            State::BulkHeader { args, left } => {
                if self.line.is_empty() {
                    match buf.get(*pos) {
                        None => {
                            self.state = State::BulkHeader { args, left };
                            return Ok(None);
                        }
                        Some(b'$') => {}
                        Some(&other) => {
                            return Err(format!(
                                "Protocol error: expected '$', got '{}'",
                                char::from(other).escape_default()
                            ))
                        }
                    }
                }
                if self.take_line(buf, pos)?.is_none() {
                    self.state = State::BulkHeader { args, left };
                    return Ok(None);
                }
                let len =
                    self.header_int(b'$')
                        .filter(|n| (0..=MAX_BULK as i64).contains(n))
                        .ok_or("Protocol error: invalid bulk length")? as usize;
                self.charge(len + 2 + ARG_OVERHEAD)?;
                self.state = State::Bulk {
                    args,
                    left,
                    arg: Vec::with_capacity(len.min(PREALLOC)),
                    len,
                    crlf: 0,
                };
                Ok(None)
            }
            State::Bulk {
                mut args,
                left,
                mut arg,
                len,
                mut crlf,
            } => {
                let rest = &buf[*pos..];
                let want = len - arg.len();
                let n = want.min(rest.len());
                if n > 0 {
                    if arg.capacity() - arg.len() < n {
                        // Grow towards the announced length, doubling, so a
                        // large argument is reallocated O(log n) times.
                        let target = (arg.len() + n).max(arg.capacity() * 2).min(len);
                        arg.reserve_exact(target - arg.len());
                    }
                    arg.extend_from_slice(&rest[..n]);
                    *pos += n;
                }
                while arg.len() == len && crlf < 2 && *pos < buf.len() {
                    let expected = if crlf == 0 { b'\r' } else { b'\n' };
                    if buf[*pos] != expected {
                        return Err("Protocol error: expected CRLF after bulk string".into());
                    }
                    crlf += 1;
                    *pos += 1;
                }
                if crlf < 2 {
                    self.state = State::Bulk {
                        args,
                        left,
                        arg,
                        len,
                        crlf,
                    };
                    return Ok(None);
                }
                args.push(arg);
                if left == 1 {
                    return Ok(Some(args));
                }
                self.state = State::BulkHeader {
                    args,
                    left: left - 1,
                };
                Ok(None)
            }
        }
    }

    /// Moves bytes up to and including the next `\n` into `self.line`:
    /// `Some(())` once the line is whole, `None` if `buf` ran out first.
    fn take_line(&mut self, buf: &[u8], pos: &mut usize) -> Result<Option<()>, String> {
        let rest = &buf[*pos..];
        let (taken, whole) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (rest.len(), false),
        };
        let too_long = self.line.len() + taken > MAX_INLINE + 2;
        if too_long {
            return Err(match self.line.first().or(rest.first()) {
                Some(b'*') => "Protocol error: invalid multibulk length".into(),
                Some(b'$') => "Protocol error: invalid bulk length".into(),
                _ => "Protocol error: too big inline request".into(),
            });
        }
        self.charge(taken)?;
        self.line.extend_from_slice(&rest[..taken]);
        *pos += taken;
        Ok(whole.then_some(()))
    }

    /// The integer of a whole `<kind><digits>\r\n` line in `self.line`,
    /// which is cleared.
    fn header_int(&mut self, kind: u8) -> Option<i64> {
        let parsed = self
            .line
            .strip_prefix(&[kind])
            .and_then(|l| l.strip_suffix(b"\r\n"))
            .and_then(parse_int);
        self.line.clear();
        parsed
    }

    fn charge(&mut self, bytes: usize) -> Result<(), String> {
        self.cost = self.cost.saturating_add(bytes);
        if self.cost > self.max_request {
            return Err(format!(
                "Protocol error: request larger than the client query buffer limit ({} bytes)",
                self.max_request
            ));
        }
        Ok(())
    }

    /// A long line's buffer is not kept for the short ones that follow.
    fn shrink_line(&mut self) {
        if self.line.capacity() > 4096 {
            self.line = Vec::new();
        }
    }
}

/// `<kind><integer>\r\n` at `buf[at..]`: the integer and the offset past
/// the line, or `None` if incomplete or not so.
fn fast_header(buf: &[u8], at: usize, kind: u8) -> Option<(i64, usize)> {
    let rest = buf.get(at..)?;
    if rest.first() != Some(&kind) {
        return None;
    }
    // Header lines are short; a long one is the state machine's to judge.
    let window = &rest[..rest.len().min(24)];
    let cr = window.iter().position(|&b| b == b'\r')?;
    if window.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    Some((parse_int(&window[1..cr])?, at + cr + 2))
}

/// Splits an inline command into arguments the way Redis's `sdssplitargs`
/// does: words separated by spaces; `"..."` with the escapes `\n \r \t \b \a
/// \\ \" \xHH`; `'...'` with `\'`. A closing quote must be followed by a space
/// or the end of the line.
///
/// # Errors
///
/// `Protocol error: unbalanced quotes in request` for an unterminated quote
/// or a closing quote followed by something other than a space.
///
/// # Examples
///
/// ```
/// use safepoint_examples::kv::request::split_inline;
///
/// assert_eq!(
///     split_inline(br#"SET k "a b\x21" 'it\'s'"#).unwrap(),
///     vec![b"SET".to_vec(), b"k".to_vec(), b"a b!".to_vec(), b"it's".to_vec()]
/// );
/// assert!(split_inline(b"SET k \"open").is_err());
/// ```
pub fn split_inline(line: &[u8]) -> Result<Command, String> {
    const UNBALANCED: &str = "Protocol error: unbalanced quotes in request";
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            match (quote, line.get(i).copied()) {
                (Some(_), None) => return Err(UNBALANCED.into()),
                (None, None) => break,
                (None, Some(b)) if b.is_ascii_whitespace() => break,
                (None, Some(q @ (b'"' | b'\''))) => quote = Some(q),
                (Some(q), Some(b)) if b == q => {
                    // The closing quote must end the word.
                    if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return Err(UNBALANCED.into());
                    }
                    i += 1;
                    break;
                }
                (Some(b'"'), Some(b'\\')) if i + 1 < line.len() => {
                    if let Some(byte) = hex_pair(line, i + 2).filter(|_| line[i + 1] == b'x') {
                        word.push(byte);
                        i += 3;
                    } else {
                        i += 1;
                        word.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                }
                (Some(b'\''), Some(b'\\')) if line.get(i + 1) == Some(&b'\'') => {
                    i += 1;
                    word.push(b'\'');
                }
                (_, Some(b)) => word.push(b),
            }
            i += 1;
        }
        args.push(word);
    }
}

fn hex_pair(line: &[u8], at: usize) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    let hi = digit(*line.get(at)?)?;
    let lo = digit(*line.get(at + 1)?)?;
    Some((hi * 16 + lo) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Command {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    /// Every request in `wire`, fed in pieces of `step` bytes.
    fn feed(wire: &[u8], step: usize) -> Result<Vec<Command>, String> {
        let mut parser = RequestParser::new(DEFAULT_MAX_REQUEST);
        let mut got = Vec::new();
        for piece in wire.chunks(step.max(1)) {
            let mut pos = 0;
            while pos < piece.len() {
                match parser.parse(&piece[pos..]) {
                    Step::NeedMore => break,
                    Step::Command(cmd, used) => {
                        got.push(cmd);
                        pos += used;
                    }
                    Step::Error(e) => return Err(e),
                }
            }
        }
        assert!(parser.is_idle(), "a partial request is left over");
        Ok(got)
    }

    fn error(wire: &[u8]) -> String {
        let mut parser = RequestParser::new(DEFAULT_MAX_REQUEST);
        match parser.parse(wire) {
            Step::Error(e) => e,
            other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(wire)),
        }
    }

    #[test]
    fn any_split_gives_the_same_requests() {
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$12\r\nhello\r\nworld\r\nPING\r\n*0\r\n\
                     set  a   \"b c\"\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
        let want = vec![
            args(&["SET", "k", "hello\r\nworld"]),
            args(&["PING"]),
            vec![],
            args(&["set", "a", "b c"]),
            args(&["GET", ""]),
        ];
        for step in 1..=wire.len() {
            assert_eq!(feed(wire, step).unwrap(), want, "step {step}");
        }
    }

    #[test]
    fn every_strict_prefix_needs_more() {
        let wire = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
        for cut in 1..wire.len() {
            let mut parser = RequestParser::new(DEFAULT_MAX_REQUEST);
            assert_eq!(parser.parse(&wire[..cut]), Step::NeedMore, "cut at {cut}");
            assert_eq!(
                parser.parse(&wire[cut..]),
                Step::Command(args(&["ECHO", "hello"]), wire.len() - cut)
            );
        }
    }

    #[test]
    fn empty_and_null_arrays_and_blank_lines_are_skippable() {
        assert_eq!(
            feed(b"*0\r\n*-1\r\n\r\n", 100).unwrap(),
            vec![Command::new(); 3]
        );
    }

    #[test]
    fn malformed_requests_are_protocol_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"*x\r\n", "invalid multibulk length"),
            (b"*01\r\n", "invalid multibulk length"),
            (b"*2\r\n:1\r\n", "expected '$', got ':'"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$-0\r\n", "invalid bulk length"),
            (b"*1\r\n$03\r\nabc\r\n", "invalid bulk length"),
            (b"*1\r\n$abc\r\n", "invalid bulk length"),
            (b"*1\r\n$3\r\nabcXY", "expected CRLF after bulk string"),
            (b"*99999999999\r\n", "invalid multibulk length"),
            (b"*1\r\n$999999999999\r\n", "invalid bulk length"),
            (b"SET k \"v\r\n", "unbalanced quotes"),
        ];
        for (wire, want) in cases {
            let msg = error(wire);
            assert!(msg.starts_with("Protocol error: "), "{msg}");
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
    }

    #[test]
    fn unterminated_lines_are_bounded() {
        let long = vec![b'a'; MAX_INLINE + 10];
        assert!(error(&long).contains("too big inline request"));
        let mut header = b"*".to_vec();
        header.extend_from_slice(&vec![b'1'; MAX_INLINE + 10]);
        assert!(error(&header).contains("invalid multibulk length"));
        // Also when the line arrives a byte at a time.
        let mut parser = RequestParser::new(DEFAULT_MAX_REQUEST);
        let mut failed = false;
        for b in long.chunks(1) {
            if let Step::Error(_) = parser.parse(b) {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn whole_request_is_capped() {
        let mut parser = RequestParser::new(1000);
        // Two 400-byte arguments fit; a third does not.
        let mut wire = b"*3\r\n".to_vec();
        for _ in 0..3 {
            wire.extend_from_slice(b"$400\r\n");
            wire.extend_from_slice(&[b'x'; 400]);
            wire.extend_from_slice(b"\r\n");
        }
        match parser.parse(&wire) {
            Step::Error(e) => assert!(e.contains("client query buffer limit (1000 bytes)"), "{e}"),
            other => panic!("{other:?}"),
        }
        // A million empty arguments cost their vectors, too.
        let mut parser = RequestParser::new(1_000_000);
        let mut wire = b"*1000000\r\n".to_vec();
        for _ in 0..100_000 {
            wire.extend_from_slice(b"$0\r\n\r\n");
        }
        assert!(matches!(parser.parse(&wire), Step::Error(_)));
        // An announced length past the cap fails before its bytes arrive.
        let mut parser = RequestParser::new(1000);
        assert!(matches!(
            parser.parse(b"*1\r\n$5000\r\n"),
            Step::Error(e) if e.contains("query buffer limit")
        ));
    }

    #[test]
    fn a_large_argument_is_taken_in_pieces() {
        let len = 3 * PREALLOC + 17;
        let mut wire = format!("*2\r\n$3\r\nSET\r\n${len}\r\n").into_bytes();
        wire.extend(std::iter::repeat_n(b'v', len));
        wire.extend_from_slice(b"\r\n");
        let got = feed(&wire, 16 * 1024).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0][1].len(), len);
        assert_eq!(
            got[0][1].capacity(),
            len,
            "grown exactly to the announced size"
        );
    }

    #[test]
    fn inline_quoting() {
        let ok = |line: &str, want: &[&str]| {
            assert_eq!(split_inline(line.as_bytes()).unwrap(), args(want), "{line}")
        };
        ok("", &[]);
        ok("   ", &[]);
        ok("set a b", &["set", "a", "b"]);
        ok(r#"set "a b" c"#, &["set", "a b", "c"]);
        ok(r#"set k "\x41\n\t\"\\""#, &["set", "k", "A\n\t\"\\"]);
        ok(r#"set k "\xZZ""#, &["set", "k", "xZZ"]);
        ok(r"set k 'it\'s \n'", &["set", "k", "it's \\n"]);
        ok(r#"set k """#, &["set", "k", ""]);
        ok(r#"set k a"b""#, &["set", "k", "ab"]);
        for bad in [
            r#"set k "a"#,
            r"set k 'a",
            r#"set k "a"b"#,
            r"set k 'a'b",
            r#"set k a"b"c"#,
        ] {
            assert!(split_inline(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

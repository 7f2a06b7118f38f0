//! What each command does: one parsed request in, one reply (or an action the
//! connection must take) out.
//!
//! Why it is shaped so: execution is synchronous and touches only the store and
//! the counters, so a command is applied whole before the connection reaches its
//! next `safepoint().await`, and every command can be unit-tested without a
//! runtime or a socket. The two commands that are not pure, SAVE (wait for a
//! checkpoint) and QUIT (close after replying), come back as [`Action`]s for the
//! connection task to carry out.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use crate::kv::resp::{parse_int, Reply};
use crate::kv::stats::CheckpointStats;
use crate::kv::store::{now_ms, Bytes, IncrError, Store};

/// What the connection must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this reply and go on.
    Reply(Reply),
    /// Take a checkpoint now and reply `+OK` once it is on disk.
    Save,
    /// Send `+OK` and close the connection.
    Quit,
}

/// What commands can see besides the command itself.
pub struct Context<'a> {
    /// The key space.
    pub store: &'a Store,
    /// Checkpoint figures, for INFO.
    pub checkpoints: &'a CheckpointStats,
    /// Facts about the server, for INFO.
    pub server: &'a ServerFacts,
    /// Whether writes are refused (`MISCONF`): the last checkpoint failed and
    /// `--stop-writes-on-checkpoint-error` is on.
    pub refuse_writes: bool,
    /// Client figures, for INFO.
    pub clients: ClientCounts,
}

/// Client figures for INFO's clients section.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCounts {
    /// Clients connected now.
    pub connected: usize,
    /// Clients refused since start (`rejected_connections`).
    pub rejected: u64,
    /// The cap (`maxclients`).
    pub max: usize,
}

/// What a write gets while the last checkpoint failed (Redis's wording, with
/// checkpoints for RDB snapshots).
pub const MISCONF: &str = "MISCONF Errors writing to disk (the last checkpoint, or the \
    append-only log); commands that may modify the data set are disabled until a write \
    succeeds. Check the server log for the error";

/// Longest part of an unknown command's name echoed back (Redis: 128).
const ECHOED_NAME: usize = 128;
/// Longest command name known here (`FLUSHALL`), rounded up.
const NAME_MAX: usize = 16;

/// Whether a command (its name in any case) changes the key space, and so
/// is refused under `MISCONF` and, with `appendfsync always`, waits for the
/// log before its reply goes out.
pub fn is_write(name: &[u8]) -> bool {
    [&b"SET"[..], b"DEL", b"INCR", b"FLUSHALL", b"FLUSHDB"]
        .iter()
        .any(|w| name.eq_ignore_ascii_case(w))
}

/// Fixed facts about the running server, for INFO.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// When the server started.
    pub started: Instant,
    /// The port it listens on.
    pub port: u16,
    /// Worker threads.
    pub workers: usize,
    /// Checkpoint period, if periodic checkpoints are on.
    pub checkpoint_every: Option<Duration>,
    /// The data directory.
    pub dir: String,
}

/// Runs one non-empty command.
///
/// Takes `args` mutably so SET can move its value into the store rather
/// than copy it; what it leaves in `args` is unspecified.
pub fn execute(ctx: &Context<'_>, args: &mut [Vec<u8>]) -> Action {
    let Some((name, rest)) = args.split_first_mut() else {
        return Action::Reply(Reply::err("empty command"));
    };
    // Upper-cased on the stack: no command name is longer than NAME_MAX,
    // so a longer one is unknown whatever its case.
    let mut name_buf = [0u8; NAME_MAX];
    let upper: &[u8] = match name_buf.get_mut(..name.len()) {
        Some(upper) => {
            upper.copy_from_slice(name);
            upper.make_ascii_uppercase();
            upper
        }
        None => b"",
    };
    let name: &[u8] = name;
    let wrong_args = || {
        let lower = String::from_utf8_lossy(name).to_lowercase();
        Reply::err(format!("wrong number of arguments for '{lower}' command"))
    };
    let arity = |ok: bool| if ok { Ok(()) } else { Err(wrong_args()) };
    match upper {
        b"SAVE" if rest.is_empty() => return Action::Save,
        b"QUIT" => return Action::Quit,
        _ => {}
    }
    if ctx.refuse_writes && is_write(upper) {
        return Action::Reply(Reply::Error(MISCONF.into()));
    }
    let now = now_ms();
    let reply = (|| -> Result<Reply, Reply> {
        Ok(match upper {
            b"PING" => match rest {
                [] => Reply::Simple(Cow::Borrowed("PONG")),
                [msg] => Reply::Bulk(msg.clone()),
                _ => return Err(wrong_args()),
            },
            b"ECHO" => {
                arity(rest.len() == 1)?;
                Reply::Bulk(rest[0].clone())
            }
            b"GET" => {
                arity(rest.len() == 1)?;
                match ctx.store.get(&rest[0], now) {
                    Some(v) => Reply::Bulk(v),
                    None => Reply::Null,
                }
            }
            b"SET" => {
                arity(rest.len() >= 2)?;
                let expires = set_expiry(&rest[2..], now)?;
                // The parser sized the value exactly: no reallocation here.
                let value = Bytes::from(std::mem::take(&mut rest[1]));
                ctx.store.set(&rest[0], value, expires);
                Reply::ok()
            }
            b"DEL" => {
                arity(!rest.is_empty())?;
                let n = rest.iter().filter(|k| ctx.store.del(k, now)).count();
                Reply::Integer(n as i64)
            }
            b"EXISTS" => {
                arity(!rest.is_empty())?;
                let n = rest.iter().filter(|k| ctx.store.exists(k, now)).count();
                Reply::Integer(n as i64)
            }
            b"INCR" => {
                arity(rest.len() == 1)?;
                match ctx.store.incr(&rest[0], now) {
                    Ok(n) => Reply::Integer(n),
                    Err(IncrError::NotAnInteger) => {
                        Reply::err("value is not an integer or out of range")
                    }
                    Err(IncrError::Overflow) => Reply::err("increment or decrement would overflow"),
                }
            }
            b"DBSIZE" => {
                arity(rest.is_empty())?;
                Reply::Integer(ctx.store.len() as i64)
            }
            b"FLUSHALL" | b"FLUSHDB" => {
                // Redis accepts an optional ASYNC or SYNC; both are immediate here.
                arity(rest.len() <= 1)?;
                ctx.store.flush();
                Reply::ok()
            }
            b"SAVE" => return Err(wrong_args()),
            b"INFO" => {
                arity(rest.len() <= 1)?;
                let section = rest
                    .first()
                    .map(|s| String::from_utf8_lossy(s).to_lowercase());
                Reply::Bulk(info(ctx, section.as_deref()).into_bytes())
            }
            // Clients such as redis-cli ask for command docs on connect; an
            // empty array is a valid "nothing to tell" answer.
            b"COMMAND" => Reply::Array(Vec::new()),
            _ => Reply::err(format!(
                "unknown command '{}'",
                String::from_utf8_lossy(&name[..name.len().min(ECHOED_NAME)])
            )),
        })
    })();
    match reply {
        Ok(reply) | Err(reply) => Action::Reply(reply),
    }
}

/// Parses SET's options (`EX seconds` or `PX milliseconds`) into an expiry
/// time. As in Redis, the time must fit a signed 64-bit count of ms since the
/// epoch, so `PX 9223372036854775807` is refused rather than wrapped.
fn set_expiry(options: &[Vec<u8>], now: u64) -> Result<Option<u64>, Reply> {
    match options {
        [] => Ok(None),
        [unit, amount] => {
            let scale: i64 = match unit.to_ascii_uppercase().as_slice() {
                b"EX" => 1000,
                b"PX" => 1,
                _ => return Err(Reply::err("syntax error")),
            };
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            match parse_int(amount) {
                Some(n) if n > 0 => n
                    .checked_mul(scale)
                    .and_then(|ms| now.checked_add(ms))
                    .map(|at| Some(at as u64))
                    .ok_or_else(|| Reply::err("invalid expire time in 'set' command")),
                Some(_) => Err(Reply::err("invalid expire time in 'set' command")),
                None => Err(Reply::err("value is not an integer or out of range")),
            }
        }
        _ => Err(Reply::err("syntax error")),
    }
}

fn info(ctx: &Context<'_>, section: Option<&str>) -> String {
    let want = |name: &str| {
        matches!(section, None | Some("all" | "everything" | "default")) || section == Some(name)
    };
    let mut out = String::new();
    let s = ctx.server;
    if want("server") {
        out.push_str("# Server\r\n");
        out.push_str("redis_version:7.0.0-safepoint-kv\r\n");
        out.push_str(&format!(
            "safepoint_kv_version:{}\r\n",
            env!("CARGO_PKG_VERSION")
        ));
        out.push_str(&format!("process_id:{}\r\n", std::process::id()));
        out.push_str(&format!("tcp_port:{}\r\n", s.port));
        out.push_str(&format!(
            "uptime_in_seconds:{}\r\n",
            s.started.elapsed().as_secs()
        ));
        out.push_str(&format!("worker_threads:{}\r\n", s.workers));
        out.push_str("\r\n");
    }
    if want("clients") {
        let c = ctx.clients;
        out.push_str("# Clients\r\n");
        out.push_str(&format!("connected_clients:{}\r\n", c.connected));
        out.push_str(&format!("maxclients:{}\r\n", c.max));
        out.push_str(&format!("rejected_connections:{}\r\n", c.rejected));
        out.push_str("\r\n");
    }
    if want("persistence") {
        let c = ctx.checkpoints.summary();
        let last = c.last;
        out.push_str("# Persistence\r\n");
        out.push_str(&format!("keys:{}\r\n", ctx.store.len()));
        out.push_str(&format!("dir:{}\r\n", s.dir));
        out.push_str(&format!(
            "checkpoint_every_ms:{}\r\n",
            s.checkpoint_every.map_or(0, |d| d.as_millis())
        ));
        out.push_str(&format!(
            "rdb_last_save_time:{}\r\n",
            c.last_save_ms.map_or(0, |ms| ms / 1000)
        ));
        out.push_str(&format!(
            "rdb_last_bgsave_status:{}\r\n",
            if c.last_failed { "err" } else { "ok" }
        ));
        out.push_str(&format!("rdb_saves:{}\r\n", c.taken));
        let log = ctx.store.log();
        out.push_str(&format!("aof_enabled:{}\r\n", u8::from(log.is_some())));
        if let Some(log) = log {
            out.push_str(&format!("aof_fsync:{}\r\n", log.fsync().name()));
            out.push_str(&format!(
                "aof_last_write_status:{}\r\n",
                if log.failed() { "err" } else { "ok" }
            ));
            let (appends, fsyncs) = log.counts();
            out.push_str(&format!("aof_appends:{appends}\r\n"));
            out.push_str(&format!("aof_fsyncs:{fsyncs}\r\n"));
        }
        out.push_str(&format!("checkpoints_taken:{}\r\n", c.taken));
        out.push_str(&format!("checkpoints_failed:{}\r\n", c.failed));
        out.push_str(&format!(
            "last_checkpoint_keys:{}\r\n",
            last.map_or(0, |l| l.keys)
        ));
        out.push_str(&format!(
            "last_time_to_stop_us:{}\r\n",
            last.map_or(0, |l| l.time_to_stop.as_micros())
        ));
        out.push_str(&format!(
            "last_pause_us:{}\r\n",
            last.map_or(0, |l| l.pause.as_micros())
        ));
        out.push_str(&format!(
            "last_write_us:{}\r\n",
            last.map_or(0, |l| l.write.as_micros())
        ));
        out.push_str(&format!("pause_p50_us:{}\r\n", c.pauses.quantile_us(0.5)));
        out.push_str(&format!("pause_p99_us:{}\r\n", c.pauses.quantile_us(0.99)));
        out.push_str(&format!("pause_max_us:{}\r\n", c.pauses.max_us()));
        if let Some(e) = &c.last_error {
            out.push_str(&format!(
                "last_checkpoint_error:{}\r\n",
                e.replace(['\r', '\n'], " ")
            ));
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        store: Store,
        checkpoints: CheckpointStats,
        server: ServerFacts,
        refuse_writes: bool,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                store: Store::new(8),
                checkpoints: CheckpointStats::new(None),
                server: ServerFacts {
                    started: Instant::now(),
                    port: 6380,
                    workers: 2,
                    checkpoint_every: Some(Duration::from_secs(1)),
                    dir: "./data".into(),
                },
                refuse_writes: false,
            }
        }

        fn run(&self, words: &[&str]) -> Action {
            let ctx = Context {
                store: &self.store,
                checkpoints: &self.checkpoints,
                server: &self.server,
                refuse_writes: self.refuse_writes,
                clients: ClientCounts::default(),
            };
            let mut args: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            execute(&ctx, &mut args)
        }

        fn reply(&self, words: &[&str]) -> Reply {
            match self.run(words) {
                Action::Reply(r) => r,
                other => panic!("{words:?} gave {other:?}"),
            }
        }
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn basic_commands() {
        let f = Fixture::new();
        assert_eq!(f.reply(&["PING"]), Reply::Simple("PONG".into()));
        assert_eq!(f.reply(&["ping", "hi"]), bulk("hi"));
        assert_eq!(f.reply(&["ECHO", "x y"]), bulk("x y"));
        assert_eq!(f.reply(&["GET", "k"]), Reply::Null);
        assert_eq!(f.reply(&["set", "k", "v"]), Reply::ok());
        assert_eq!(f.reply(&["GET", "k"]), bulk("v"));
        assert_eq!(f.reply(&["EXISTS", "k", "k", "nope"]), Reply::Integer(2));
        assert_eq!(f.reply(&["INCR", "n"]), Reply::Integer(1));
        assert_eq!(f.reply(&["INCR", "n"]), Reply::Integer(2));
        assert_eq!(
            f.reply(&["INCR", "k"]),
            Reply::err("value is not an integer or out of range")
        );
        assert_eq!(f.reply(&["DBSIZE"]), Reply::Integer(2));
        assert_eq!(f.reply(&["DEL", "k", "n", "nope"]), Reply::Integer(2));
        assert_eq!(f.reply(&["SET", "a", "1"]), Reply::ok());
        assert_eq!(f.reply(&["FLUSHALL"]), Reply::ok());
        assert_eq!(f.reply(&["DBSIZE"]), Reply::Integer(0));
        assert_eq!(f.reply(&["COMMAND", "DOCS"]), Reply::Array(vec![]));
        assert_eq!(f.run(&["SAVE"]), Action::Save);
        assert_eq!(f.run(&["quit"]), Action::Quit);
    }

    #[test]
    fn set_with_expiry() {
        let f = Fixture::new();
        assert_eq!(f.reply(&["SET", "a", "1", "EX", "100"]), Reply::ok());
        assert_eq!(f.reply(&["SET", "b", "1", "px", "1"]), Reply::ok());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(f.reply(&["GET", "a"]), bulk("1"));
        assert_eq!(f.reply(&["GET", "b"]), Reply::Null);
        assert_eq!(
            f.reply(&["SET", "a", "1", "EX", "0"]),
            Reply::err("invalid expire time in 'set' command")
        );
        assert_eq!(
            f.reply(&["SET", "a", "1", "EX", "soon"]),
            Reply::err("value is not an integer or out of range")
        );
        assert_eq!(
            f.reply(&["SET", "a", "1", "NX"]),
            Reply::err("syntax error")
        );
        assert_eq!(
            f.reply(&["SET", "a", "1", "KEEP", "5"]),
            Reply::err("syntax error")
        );
        for too_far in [
            &["PX", "9223372036854775807"][..],
            &["EX", "9223372036854775"],
            &["EX", "9223372036854775807"],
        ] {
            let mut words = vec!["SET", "a", "1"];
            words.extend_from_slice(too_far);
            assert_eq!(
                f.reply(&words),
                Reply::err("invalid expire time in 'set' command"),
                "{too_far:?}"
            );
        }
        assert_eq!(
            f.reply(&["SET", "a", "1", "EX", "010"]),
            Reply::err("value is not an integer or out of range")
        );
    }

    #[test]
    fn misconf_refuses_writes_only() {
        let mut f = Fixture::new();
        f.reply(&["SET", "a", "1"]);
        f.refuse_writes = true;
        for write in [
            &["SET", "a", "2"][..],
            &["del", "a"],
            &["INCR", "n"],
            &["FLUSHALL"],
            &["FLUSHDB"],
        ] {
            assert_eq!(f.reply(write), Reply::Error(MISCONF.into()), "{write:?}");
        }
        assert_eq!(f.reply(&["GET", "a"]), bulk("1"));
        assert_eq!(f.reply(&["DBSIZE"]), Reply::Integer(1));
        assert_eq!(f.run(&["SAVE"]), Action::Save);
    }

    #[test]
    fn errors() {
        let f = Fixture::new();
        assert_eq!(
            f.reply(&["FROB", "x"]),
            Reply::err("unknown command 'FROB'")
        );
        let long = "X".repeat(10_000);
        assert_eq!(
            f.reply(&[&long]),
            Reply::err(format!("unknown command '{}'", &long[..128]))
        );
        assert_eq!(
            f.reply(&["GET"]),
            Reply::err("wrong number of arguments for 'get' command")
        );
        assert_eq!(
            f.reply(&["SAVE", "now"]),
            Reply::err("wrong number of arguments for 'save' command")
        );
        assert_eq!(
            f.reply(&["PING", "a", "b"]),
            Reply::err("wrong number of arguments for 'ping' command")
        );
    }

    #[test]
    fn info_sections() {
        let f = Fixture::new();
        f.reply(&["SET", "a", "1"]);
        let Reply::Bulk(all) = f.reply(&["INFO"]) else {
            panic!("INFO is a bulk string")
        };
        let all = String::from_utf8(all).unwrap();
        for field in [
            "# Server",
            "tcp_port:6380",
            "# Persistence",
            "# Clients",
            "maxclients:0",
            "keys:1",
            "rdb_last_save_time:0",
            "checkpoints_taken:0",
            "pause_p99_us:0",
            "pause_max_us:0",
        ] {
            assert!(all.contains(field), "{field} missing from {all}");
        }
        let Reply::Bulk(p) = f.reply(&["INFO", "persistence"]) else {
            panic!("INFO is a bulk string")
        };
        let p = String::from_utf8(p).unwrap();
        assert!(
            p.starts_with("# Persistence") && !p.contains("# Server"),
            "{p}"
        );
    }
}

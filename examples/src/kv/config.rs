//! Command-line flags of the key-value server.
//!
//! Why it is shaped so: a dozen flags do not need a dependency. [`parse`] takes
//! the arguments (without the program name) and returns either a [`Config`], a
//! request for help, or an error saying which flag and value were wrong and what
//! was expected; `main` prints the error with the usage and exits with status 2.
//! Both `--flag value` and `--flag=value` are accepted.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::kv::aof::Fsync;

/// Usage text printed by `--help` and after a flag error.
pub const USAGE: &str = "\
usage: safepoint-kv [OPTIONS]

A Redis-compatible (RESP2) key-value server on the safepoint runtime that takes
consistent checkpoints by stopping the world.

options:
  --port PORT                 port to listen on; 0 picks a free one (default 6380)
  --bind ADDR                 address to listen on (default 127.0.0.1)
  --dir DIR                   data directory holding dump.kv (default ./data)
  --workers N                 worker threads (default: number of CPUs)
  --checkpoint-every SECS     seconds between checkpoints, fractions allowed;
                              0 disables periodic checkpoints (default 1)
  --duration SECS             demo mode: run built-in load clients for SECS
                              seconds, print the figures and exit
  --clients N                 load clients in demo mode (default 50)
  --ignore-corrupt-snapshot   start empty when dump.kv is corrupt or truncated
  --maxclients N              most clients connected at once; extras get
                              '-ERR max number of clients reached' (default
                              10000, lowered to fit the open file limit,
                              which is raised at start when allowed)
  --client-query-buffer-limit BYTES
                              largest request accepted, e.g. 64mb (default 1gb)
  --client-output-buffer-limit BYTES
                              close a client whose pending replies pass this,
                              e.g. 256mb; 0 means no limit (default 0)
  --appendonly yes|no         log every write to appendonly-<gen>.kv in DIR,
                              replayed at start after dump.kv (default no)
  --appendfsync always|everysec|no
                              when the log is fsynced: before replying
                              (always), once a second, or by the OS
                              (default everysec)
  --stop-writes-on-checkpoint-error yes|no
                              refuse writes with -MISCONF while the last
                              checkpoint failed (default yes)
  --help                      print this help
";

/// The server's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Port to listen on (0: any free port).
    pub port: u16,
    /// Address to listen on.
    pub bind: IpAddr,
    /// Data directory.
    pub dir: PathBuf,
    /// Worker threads.
    pub workers: usize,
    /// Time between periodic checkpoints; `None` disables them.
    pub checkpoint_every: Option<Duration>,
    /// Demo mode: how long the load clients run.
    pub duration: Option<Duration>,
    /// Load clients in demo mode.
    pub clients: usize,
    /// Start empty instead of refusing a corrupt snapshot.
    pub ignore_corrupt_snapshot: bool,
    /// Most clients at once, as asked; `None` takes the default (lowered to
    /// fit the open file limit either way, see [`crate::kv::limits`]).
    pub max_clients: Option<usize>,
    /// Largest request accepted, in bytes.
    pub max_request: usize,
    /// Pending reply bytes past which a client is closed; 0: no limit.
    pub output_limit: usize,
    /// Refuse writes while the last checkpoint failed (Redis's
    /// `stop-writes-on-bgsave-error`).
    pub stop_writes_on_checkpoint_error: bool,
    /// Keep the append-only log.
    pub appendonly: bool,
    /// When the log is fsynced.
    pub appendfsync: Fsync,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            port: 6380,
            bind: IpAddr::from([127, 0, 0, 1]),
            dir: PathBuf::from("./data"),
            workers: num_cpus::get().max(1),
            checkpoint_every: Some(Duration::from_secs(1)),
            duration: None,
            clients: 50,
            ignore_corrupt_snapshot: false,
            max_clients: None,
            max_request: crate::kv::request::DEFAULT_MAX_REQUEST,
            output_limit: 0,
            stop_writes_on_checkpoint_error: true,
            appendonly: false,
            appendfsync: Fsync::EverySec,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Run with these settings.
    Run(Config),
    /// Print [`USAGE`] and exit 0.
    Help,
}

/// A bad command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parses the arguments that follow the program name.
pub fn parse<I, S>(args: I) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut config = Config::default();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let takes_value = !matches!(flag.as_str(), "--help" | "-h" | "--ignore-corrupt-snapshot");
        if !takes_value && inline.is_some() {
            return Err(ConfigError(format!("{flag} takes no value")));
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| ConfigError(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--ignore-corrupt-snapshot" => config.ignore_corrupt_snapshot = true,
            "--port" => {
                let v = value()?;
                config.port = v
                    .parse()
                    .map_err(|_| bad(&flag, &v, "a port number from 0 to 65535"))?;
            }
            "--bind" => {
                let v = value()?;
                config.bind = v
                    .parse()
                    .map_err(|_| bad(&flag, &v, "an IP address such as 127.0.0.1 or ::1"))?;
            }
            "--dir" => {
                let v = value()?;
                if v.is_empty() {
                    return Err(bad(&flag, &v, "a directory path"));
                }
                config.dir = PathBuf::from(v);
            }
            "--workers" => config.workers = positive(&flag, &value()?)?,
            "--clients" => config.clients = positive(&flag, &value()?)?,
            "--checkpoint-every" => {
                let v = value()?;
                let secs = seconds(&flag, &v)?;
                config.checkpoint_every = (!secs.is_zero()).then_some(secs);
            }
            "--duration" => {
                let v = value()?;
                let secs = seconds(&flag, &v)?;
                if secs.is_zero() {
                    return Err(bad(&flag, &v, "a number of seconds greater than 0"));
                }
                config.duration = Some(secs);
            }
            "--maxclients" => config.max_clients = Some(positive(&flag, &value()?)?),
            "--client-query-buffer-limit" => {
                let v = value()?;
                config.max_request = match byte_size(&v) {
                    Some(n) if n > 0 => n,
                    _ => return Err(bad(&flag, &v, "a size in bytes such as 1gb or 65536")),
                };
            }
            "--client-output-buffer-limit" => {
                let v = value()?;
                config.output_limit = byte_size(&v)
                    .ok_or_else(|| bad(&flag, &v, "a size in bytes such as 256mb, or 0"))?;
            }
            "--appendonly" => config.appendonly = yes_no(&flag, &value()?)?,
            "--appendfsync" => {
                let v = value()?;
                config.appendfsync = match v.as_str() {
                    "always" => Fsync::Always,
                    "everysec" => Fsync::EverySec,
                    "no" => Fsync::No,
                    _ => return Err(bad(&flag, &v, "always, everysec or no")),
                };
            }
            "--stop-writes-on-checkpoint-error" => {
                config.stop_writes_on_checkpoint_error = yes_no(&flag, &value()?)?
            }
            other if other.starts_with('-') => {
                return Err(ConfigError(format!("unknown flag {other}")))
            }
            other => return Err(ConfigError(format!("unexpected argument '{other}'"))),
        }
    }
    Ok(Parsed::Run(config))
}

fn bad(flag: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError(format!(
        "{flag}: invalid value '{value}': expected {expected}"
    ))
}

fn positive(flag: &str, value: &str) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(flag, value, "a whole number greater than 0")),
    }
}

/// A byte count with an optional unit, as Redis writes them: `b`, `k`/`kb`,
/// `m`/`mb`, `g`/`gb` (powers of 1024), case-insensitive.
fn byte_size(value: &str) -> Option<usize> {
    let lower = value.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let scale: usize = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    digits.parse::<usize>().ok()?.checked_mul(scale)
}

fn yes_no(flag: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(bad(flag, value, "yes or no")),
    }
}

fn seconds(flag: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| bad(flag, value, "a number of seconds such as 1 or 0.05"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().copied()) {
            Ok(Parsed::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(e) => e.0,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[]);
        assert_eq!(c.port, 6380);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.dir, PathBuf::from("./data"));
        assert!(c.workers >= 1);
        assert_eq!(c.checkpoint_every, Some(Duration::from_secs(1)));
        assert_eq!(c.duration, None);
        assert_eq!(c.clients, 50);
        assert!(!c.ignore_corrupt_snapshot);
        assert_eq!(c.max_clients, None);
        assert_eq!(c.max_request, 1 << 30);
        assert_eq!(c.output_limit, 0);
        assert!(c.stop_writes_on_checkpoint_error);
        assert!(!c.appendonly);
        assert_eq!(c.appendfsync, Fsync::EverySec);
    }

    #[test]
    fn every_flag() {
        let c = run(&[
            "--port",
            "0",
            "--bind=::1",
            "--dir",
            "/tmp/x",
            "--workers",
            "3",
            "--checkpoint-every",
            "0.05",
            "--duration=10",
            "--clients",
            "8",
            "--ignore-corrupt-snapshot",
            "--maxclients",
            "7",
            "--client-query-buffer-limit=64MB",
            "--client-output-buffer-limit",
            "1k",
            "--stop-writes-on-checkpoint-error",
            "no",
            "--appendonly",
            "yes",
            "--appendfsync=always",
        ]);
        assert_eq!(c.port, 0);
        assert_eq!(c.bind.to_string(), "::1");
        assert_eq!(c.dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.workers, 3);
        assert_eq!(c.checkpoint_every, Some(Duration::from_millis(50)));
        assert_eq!(c.duration, Some(Duration::from_secs(10)));
        assert_eq!(c.clients, 8);
        assert!(c.ignore_corrupt_snapshot);
        assert_eq!(c.max_clients, Some(7));
        assert_eq!(c.max_request, 64 << 20);
        assert_eq!(c.output_limit, 1024);
        assert!(!c.stop_writes_on_checkpoint_error);
        assert!(c.appendonly);
        assert_eq!(c.appendfsync, Fsync::Always);
        assert_eq!(run(&["--appendfsync", "no"]).appendfsync, Fsync::No);
        assert_eq!(run(&["--checkpoint-every", "0"]).checkpoint_every, None);
        assert_eq!(
            run(&["--client-query-buffer-limit", "123"]).max_request,
            123
        );
    }

    #[test]
    fn help() {
        assert_eq!(parse(["--port", "1", "--help"]), Ok(Parsed::Help));
        assert_eq!(parse(["-h"]), Ok(Parsed::Help));
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            error(&["--port", "70000"]),
            "--port: invalid value '70000': expected a port number from 0 to 65535"
        );
        assert!(error(&["--bind", "localhost"]).starts_with("--bind: invalid value 'localhost'"));
        assert!(error(&["--workers", "0"]).contains("greater than 0"));
        assert!(error(&["--clients=-1"]).starts_with("--clients: invalid value '-1'"));
        assert!(error(&["--checkpoint-every", "-1"]).starts_with("--checkpoint-every"));
        assert!(error(&["--checkpoint-every", "nan"]).starts_with("--checkpoint-every"));
        assert!(error(&["--duration", "0"]).contains("greater than 0"));
        assert_eq!(error(&["--port"]), "--port needs a value");
        assert!(error(&["--maxclients", "0"]).contains("greater than 0"));
        assert!(error(&["--client-query-buffer-limit", "0"]).contains("a size in bytes"));
        assert!(error(&["--client-query-buffer-limit", "1tb"]).contains("a size in bytes"));
        assert!(error(&["--client-output-buffer-limit", "-1"]).contains("a size in bytes"));
        assert!(error(&["--appendfsync", "sometimes"]).contains("always, everysec or no"));
        assert!(error(&["--appendonly", "1"]).contains("yes or no"));
        assert_eq!(
            error(&["--stop-writes-on-checkpoint-error", "maybe"]),
            "--stop-writes-on-checkpoint-error: invalid value 'maybe': expected yes or no"
        );
        assert_eq!(error(&["--verbose"]), "unknown flag --verbose");
        assert_eq!(error(&["extra"]), "unexpected argument 'extra'");
        assert_eq!(
            error(&["--ignore-corrupt-snapshot=yes"]),
            "--ignore-corrupt-snapshot takes no value"
        );
    }
}

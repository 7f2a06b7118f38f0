//! The open-file limit and the client cap derived from it (`--maxclients`).
//!
//! Why it is shaped so: every client holds a descriptor, and so does every
//! checkpoint (the temporary file, the data directory). A server that lets
//! clients take every descriptor can no longer checkpoint (EMFILE) and
//! leaves the extra clients connected but never answered (the kernel
//! completes their handshake; accept fails). So, as Redis does, the server
//! raises its soft `RLIMIT_NOFILE` at start as far as the client cap plus a
//! reserve needs (and the hard limit allows), lowers the cap to fit what it
//! got, and refuses clients past the cap with an error reply.

/// Descriptors kept out of the client cap: the listener, the reactor, the
/// signal pipe, stdio, the snapshot and log files, and room to accept and
/// refuse an extra client (Redis keeps 32 too).
pub const RESERVED_FDS: usize = 32;
/// The client cap when none is asked for (Redis's `maxclients` default).
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;

/// What [`fit_max_clients`] settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCap {
    /// Most clients connected at once.
    pub max_clients: usize,
    /// The soft open-file limit now in force.
    pub fd_limit: u64,
}

/// Raises the soft open-file limit towards `wanted` clients plus
/// [`RESERVED_FDS`] and returns the cap that fits the limit obtained.
///
/// # Errors
///
/// When the limit cannot be read, or leaves no room for a single client.
///
/// # Examples
///
/// ```
/// use safepoint_examples::kv::limits::fit_max_clients;
///
/// let cap = fit_max_clients(Some(10)).unwrap();
/// assert!(cap.max_clients <= 10 && cap.max_clients >= 1);
/// ```
pub fn fit_max_clients(wanted: Option<usize>) -> Result<ClientCap, String> {
    let wanted = wanted.unwrap_or(DEFAULT_MAX_CLIENTS);
    let need = (wanted + RESERVED_FDS) as u64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "cannot read the open file limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur < need {
        let raised = libc::rlimit {
            rlim_cur: need.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        let applied = raised.rlim_cur > limit.rlim_cur
            // SAFETY: setrlimit only reads the struct we own; a refusal
            // leaves the limit as it was, which the code below works with.
            && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
        if applied {
            limit.rlim_cur = raised.rlim_cur;
        }
    }
    let room = limit.rlim_cur.saturating_sub(RESERVED_FDS as u64);
    if room == 0 {
        return Err(format!(
            "the open file limit is {} and {RESERVED_FDS} descriptors are kept for the server; \
             raise it (ulimit -n) to serve clients",
            limit.rlim_cur
        ));
    }
    let max_clients = (wanted as u64).min(room) as usize;
    if max_clients < wanted {
        eprintln!(
            "warning: maxclients lowered from {wanted} to {max_clients}: the open file limit is {} \
             (hard limit {}) and {RESERVED_FDS} descriptors are kept for checkpoints and the server",
            limit.rlim_cur, limit.rlim_max
        );
    }
    Ok(ClientCap {
        max_clients,
        fd_limit: limit.rlim_cur,
    })
}

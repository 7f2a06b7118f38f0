//! `TCP_INQ`: reads that also say whether the receive queue is now empty.
//!
//! An edge-triggered reactor may only forget a socket's read readiness once
//! a read has shown the queue empty. A short read shows it; a read that
//! fills the caller's buffer exactly does not, so the caller's next read is
//! a `recv` that returns `WouldBlock`, one system call per message spent
//! only to learn "nothing more". Request/response protocols with fixed-size
//! frames (`read_exact` of a header, then of a body) hit that every time.
//!
//! Linux (4.18 and later) can say it with the data: with the `TCP_INQ`
//! socket option on, `recvmsg` returns a `TCP_CM_INQ` control message with
//! the bytes left in the queue after the read. Zero means empty, so
//! readiness is cleared at once and the `WouldBlock` read never happens.
//! Data arriving after the read raises a newer reactor event, exactly as
//! after a short read, so nothing is lost (see
//! `Registration::poll_read_stream`).
//!
//! `recvmsg` with a control message costs more than a plain `recv` (the
//! kernel copies a message header and an iovec in and the control message
//! out: about 60 ns a read on a loaded server), and a short read already
//! says the queue was empty. So a stream asks only while its reads fill the
//! buffer: a plain read that fills it turns asking on for the next read, and
//! a read that comes back short turns it off again. A request/response
//! server whose reads are short never pays for it; fixed-size frames pay
//! one `WouldBlock` read when they start, then none.
//!
//! Where the option is unavailable (another OS, an old kernel, a socket that
//! refuses it) reads fall back to plain `recv` and readiness is cleared the
//! usual way.

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::{AsRawFd, RawFd};

    /// Turns `TCP_INQ` on. Returns whether the kernel accepted it.
    pub(crate) fn enable(socket: &impl AsRawFd) -> bool {
        let on: libc::c_int = 1;
        // SAFETY: `socket` is an open socket for the duration of the call;
        // `on` outlives the call and its size is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INQ,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    /// Control buffer for one `TCP_CM_INQ` message (`CMSG_SPACE(4)` is 24
    /// bytes on 64-bit Linux), aligned for `cmsghdr` by its `u64`s.
    type ControlBuf = [u64; 4];

    /// `recvmsg` into `buf`. Returns the bytes read (that many bytes of
    /// `buf` are now initialised) and, when the kernel attached it, the
    /// bytes still queued after this read.
    pub(crate) fn recv(
        fd: RawFd,
        buf: &mut [MaybeUninit<u8>],
    ) -> io::Result<(usize, Option<usize>)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control: ControlBuf = [0; 4];
        // SAFETY: `msghdr` is a plain C struct for which all-zero is a valid
        // (empty) value; the fields that matter are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of::<ControlBuf>() as _;
        // SAFETY: `msg` points at `iov` (which covers exactly `buf`, valid
        // for writes of `buf.len()` bytes) and at `control` (valid for
        // `msg_controllen` bytes); all three outlive the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut inq = None;
        // SAFETY: `msg` was filled in by a successful `recvmsg`, so its
        // control fields describe initialised bytes inside `control`, which
        // is still alive; `CMSG_FIRSTHDR`/`CMSG_NXTHDR` only return headers
        // that lie wholly within `msg_controllen`, or null.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let header = &*cmsg;
                if header.cmsg_level == libc::SOL_TCP && header.cmsg_type == libc::TCP_CM_INQ {
                    // The payload is one `int`; it need not be aligned for it.
                    let value = libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned();
                    inq = usize::try_from(value).ok();
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok((n as usize, inq))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    pub(crate) fn enable<S>(_socket: &S) -> bool {
        false
    }
}

/// One stream's use of `TCP_INQ`: whether the kernel took the option, and
/// whether the next read should ask (see the module docs).
#[derive(Debug)]
pub(crate) struct Inq {
    enabled: bool,
    /// A hint, not a synchronisation: a stale value only picks the other
    /// read call, which is correct either way. Relaxed.
    ask: AtomicBool,
}

impl Inq {
    /// Turns `TCP_INQ` on for `socket` if the kernel allows it.
    pub(crate) fn enable(socket: &impl std::os::fd::AsRawFd) -> Inq {
        Inq {
            enabled: imp::enable(socket),
            ask: AtomicBool::new(false),
        }
    }

    #[cfg(all(test, any(target_os = "linux", target_os = "android")))]
    fn enabled(&self) -> bool {
        self.enabled
    }
}

/// Reads from `stream` into `buf`, which may be uninitialised. Returns the
/// bytes read (that many bytes of `buf` are now initialised) and whether the
/// receive queue is known to be empty after the read: only a read that
/// asked (`recvmsg` with `TCP_INQ`) can know that of a read that filled
/// `buf`; a short read says it by being short.
pub(crate) fn read<S: std::os::fd::AsRawFd>(
    stream: &S,
    inq: &Inq,
    buf: &mut [MaybeUninit<u8>],
) -> io::Result<(usize, bool)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if inq.enabled && inq.ask.load(Ordering::Relaxed) {
        let (n, left) = imp::recv(stream.as_raw_fd(), buf)?;
        if n < buf.len() {
            inq.ask.store(false, Ordering::Relaxed);
        }
        return Ok((n, left == Some(0)));
    }
    let n = crate::net::uninit::recv(stream.as_raw_fd(), buf)?;
    if inq.enabled && n > 0 && n == buf.len() {
        inq.ask.store(true, Ordering::Relaxed);
    }
    Ok((n, false))
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::io::Write;
    use std::mem::MaybeUninit;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::AtomicBool;

    use super::{read, Inq};

    #[test]
    fn asks_while_reads_fill_the_buffer_and_claims_empty_only_when_it_is() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let inq = Inq::enable(&server);
        assert!(inq.enabled(), "TCP_INQ refused by this kernel");
        let mut buf = [MaybeUninit::new(0); 64];
        // Blocking socket: each read waits for data. A plain read that fills
        // the buffer cannot tell; it makes the next read ask.
        client.write_all(&[1; 100]).unwrap();
        assert_eq!(read(&server, &inq, &mut buf).unwrap(), (64, false));
        // Asked: short, and the kernel says empty.
        assert_eq!(read(&server, &inq, &mut buf).unwrap(), (36, true));
        // The short read stopped the asking; the next full read is plain...
        client.write_all(&[2; 128]).unwrap();
        assert_eq!(read(&server, &inq, &mut buf).unwrap(), (64, false));
        // ...and the one after asks: a full read that emptied the queue is
        // known empty, the `WouldBlock` read this module exists to save.
        assert_eq!(read(&server, &inq, &mut buf).unwrap(), (64, true));
        // Still asking while reads fill the buffer, with data left over.
        client.write_all(&[3; 70]).unwrap();
        assert_eq!(read(&server, &inq, &mut buf).unwrap(), (64, false));
        assert_eq!(read(&server, &inq, &mut buf).unwrap(), (6, true));
        // Without the option, never claimed empty.
        let off = Inq {
            enabled: false,
            ask: AtomicBool::new(true),
        };
        client.write_all(&[4; 10]).unwrap();
        assert_eq!(read(&server, &off, &mut buf).unwrap(), (10, false));
    }
}

//! Reads into uninitialised memory, and the one cast that lets `&mut [u8]`
//! callers share that path.
//!
//! hyper's `ReadBufCursor` and tokio's `ReadBuf` hand out buffers that may be
//! uninitialised. Zero-filling them before every read (what adapters over
//! `futures-io` must do, since `AsyncRead` takes `&mut [u8]`) costs a memset
//! of the whole buffer per read; the kernel writes the bytes anyway, so the
//! sockets read straight into `&mut [MaybeUninit<u8>]` and report how many
//! bytes are now initialised.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;

/// `recv(2)` on socket `fd` into `buf`, with no flags. On `Ok(n)` the
/// first `n` bytes of `buf` are initialised.
///
/// `recv`, not `read`: on a socket both end in the same `recvmsg` of the
/// protocol, but `read` first goes through the VFS (`vfs_read`, the access
/// and position checks, `sock_read_iter`), about 50 ns more kernel time per
/// call in a `perf` profile of the HTTP example, where tokio (through std's
/// `TcpStream::read`) calls `recv`.
pub(crate) fn recv(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole
    // call (an exclusive borrow), and the kernel writes at most that many;
    // `MaybeUninit<u8>` has the layout of `u8`.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Views an initialised buffer as possibly uninitialised, to read into it
/// through the paths above.
///
/// # Safety
///
/// The caller must only let the returned slice be written with initialised
/// bytes (as `recv(2)`/`recvmsg(2)` do): writing `MaybeUninit::uninit()`
/// through it would leave `buf`, a `&mut [u8]`, holding uninitialised bytes.
pub(crate) unsafe fn as_uninit_mut(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the size, alignment and validity of `u8`
    // (every `u8` is a valid `MaybeUninit<u8>`); the caller promises not to
    // de-initialise any byte, so `buf` stays valid as `[u8]` afterwards.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

//! `PollEvented`: a mio socket plus its driver registration.
//!
//! Every socket type is this wrapper around the matching mio type, so the rules
//! live in one place: register on creation (with the current driver, or with a
//! listener's driver for accepted sockets), deregister *before* the file
//! descriptor closes on drop, and run every operation through the registration's
//! "ready, try, clear on `WouldBlock`" loop.

use std::io::{self, IoSlice, Read, Write};
use std::ops::Deref;
use std::task::{Context, Poll};

use mio::event::Source;
use mio::Interest;

use crate::driver::registration::Registration;
use crate::driver::scheduled_io::Direction;
use crate::driver::Handle;

pub(crate) struct PollEvented<E: Source> {
    /// `Some` until drop, which takes it to deregister it.
    io: Option<E>,
    registration: Registration,
}

impl<E: Source> PollEvented<E> {
    /// Registers with the current driver (panics outside a runtime).
    #[track_caller]
    pub(crate) fn new(mut io: E) -> io::Result<PollEvented<E>> {
        let registration = Registration::new(&mut io, Interest::READABLE | Interest::WRITABLE)?;
        Ok(PollEvented {
            io: Some(io),
            registration,
        })
    }

    /// Registers with `handle`'s driver.
    pub(crate) fn with_handle(mut io: E, handle: Handle) -> io::Result<PollEvented<E>> {
        let registration =
            Registration::with_handle(handle, &mut io, Interest::READABLE | Interest::WRITABLE)?;
        Ok(PollEvented {
            io: Some(io),
            registration,
        })
    }

    pub(crate) fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Deregisters and hands back the socket, for `into_std`/`into_raw_fd`:
    /// the caller then owns a file descriptor this driver no longer watches.
    pub(crate) fn into_inner(mut self) -> E {
        let mut io = self.io.take().expect("socket used after drop");
        // Fails only for a descriptor that is not in the poll (nothing to
        // undo); the caller gets the socket either way.
        let _ = self.registration.deregister(&mut io);
        io
    }
}

/// The operations every stream type shares, written once: readiness waits,
/// the non-waiting `try_*` forms, and the `poll_write*` of `AsyncWrite`.
impl<E: Source> PollEvented<E>
where
    for<'a> &'a E: Read + Write,
{
    pub(crate) async fn ready(&self, dir: Direction) -> io::Result<()> {
        self.registration.readiness(dir).await
    }

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.registration
            .try_io(Direction::Read, || (&**self).read(buf))
    }

    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.registration
            .try_io(Direction::Write, || (&**self).write(buf))
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.registration
            .try_io(Direction::Write, || (&**self).write_vectored(bufs))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.registration
            .poll_io(cx, Direction::Write, || (&**self).write(buf))
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.registration
            .poll_io(cx, Direction::Write, || (&**self).write_vectored(bufs))
    }
}

impl<E: Source> Deref for PollEvented<E> {
    type Target = E;
    fn deref(&self) -> &E {
        self.io.as_ref().expect("socket used after drop")
    }
}

impl<E: Source> Drop for PollEvented<E> {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            // Errors mean the fd was never (or is no longer) in the poll; either
            // way there is nothing left to undo.
            let _ = self.registration.deregister(&mut io);
        }
    }
}

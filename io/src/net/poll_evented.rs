//! `PollEvented`: a mio socket plus its driver registration.
//!
//! Every socket type is this wrapper around the matching mio type, so the rules
//! live in one place: register on creation (with the current driver, or with a
//! listener's driver for accepted sockets), deregister *before* the file
//! descriptor closes on drop, and run every operation through the registration's
//! "ready, try, clear on `WouldBlock`" loop.

use std::io;
use std::ops::Deref;

use mio::event::Source;
use mio::Interest;

use crate::driver::registration::Registration;
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

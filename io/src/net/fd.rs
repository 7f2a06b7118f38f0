//! The file-descriptor traits (`AsRawFd`, `AsFd`, `IntoRawFd`) for every
//! socket type, written once.
//!
//! They let a socket reach code that speaks in file descriptors: socket2's
//! `SockRef` for options this crate does not wrap (keepalive intervals,
//! `TCP_USER_TIMEOUT`), `nix`, or handing the socket to another runtime.
//! `into_raw_fd` deregisters from the driver first, so the reactor never
//! reports events for a descriptor it no longer owns.

/// Implements the three traits for `$ty`, whose `io` field is a
/// `PollEvented` around a mio socket.
macro_rules! impl_fd {
    ($ty:ty) => {
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&*self.io)
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&*self.io)
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            /// Deregisters from the driver and hands over the descriptor,
            /// still in non-blocking mode.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.io.into_inner())
            }
        }
    };
}

pub(crate) use impl_fd;

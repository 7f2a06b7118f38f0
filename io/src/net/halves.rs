//! What the owned halves of TCP and Unix streams share, written once: the
//! write half's `AsyncWrite` and shut-down-on-drop, `reunite`'s check, and
//! the reunite error's `Display`.
//!
//! Both stream types split the same way (an `Arc` of the stream, the read
//! half using only the read direction's poll slot and the write half only
//! the write direction's), so only the types and their documentation differ;
//! the documented methods stay in `tcp::split` and `unix::split`.

/// For read half `$rd`, write half `$wr` (fields `inner: Arc<$stream>` and
/// `shutdown_on_drop: bool`) and error `$err`: `AsyncWrite` and `Drop` for
/// `$wr`, `Display`/`Error` for `$err`, and `$rd::reunite_halves`. `$stream`
/// has a `pub(crate) io` (a `PollEvented`) and `shutdown`.
macro_rules! owned_halves {
    ($stream:ident, $rd:ident, $wr:ident, $err:ident) => {
        impl $rd {
            fn reunite_halves(self, mut write: $wr) -> Result<$stream, $err> {
                if !std::sync::Arc::ptr_eq(&self.inner, &write.inner) {
                    return Err($err(self, write));
                }
                write.shutdown_on_drop = false;
                let inner = write.inner.clone();
                drop(write);
                drop(self);
                Ok(std::sync::Arc::try_unwrap(inner).expect("both halves were dropped just above"))
            }
        }

        impl std::fmt::Display for $err {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(
                    "tried to reunite halves that are not from the same ",
                    stringify!($stream)
                ))
            }
        }

        impl std::error::Error for $err {}

        impl futures_io::AsyncWrite for $wr {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.inner.io.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.inner.io.poll_write_vectored(cx, bufs)
            }

            /// Nothing is buffered in user space: nothing to flush.
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            /// Shuts down writing (sends FIN).
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.inner.shutdown(std::net::Shutdown::Write))
            }
        }

        impl Drop for $wr {
            fn drop(&mut self) {
                if !self.shutdown_on_drop {
                    return;
                }
                // The peer may already be gone (ENOTCONN): nothing to report.
                let _ = self.inner.shutdown(std::net::Shutdown::Write);
            }
        }
    };
}

pub(crate) use owned_halves;

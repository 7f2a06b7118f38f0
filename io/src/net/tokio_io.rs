//! tokio's I/O traits (`tokio::io::AsyncRead`/`AsyncWrite`) on the streams,
//! behind the `tokio-io` feature.
//!
//! Implemented for `TcpStream`, `UnixStream` and the owned halves of both.
//! Code written against tokio's traits (tokio-util's codecs, tokio-rustls,
//! hyper-util's `TokioIo`) then takes safepoint's streams as they are,
//! without a compatibility wrapper. Only tokio's trait definitions are used
//! (tokio with no features): nothing here starts or needs tokio's runtime.
//! Reads fill tokio's `ReadBuf` through `poll_read_uninit`, so its
//! uninitialised part is never zero-filled first; writes are vectored.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::ReadBuf;

use super::tcp::{OwnedReadHalf, OwnedWriteHalf};
use super::{unix, TcpStream, UnixStream};

/// Implements `tokio::io::AsyncRead` for `$ty`, which has
/// `poll_read_uninit(&self, cx, &mut [MaybeUninit<u8>])`.
macro_rules! tokio_read {
    ($($ty:ty),*) => {$(
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                read_buf(cx, buf, |cx, unfilled| self.poll_read_uninit(cx, unfilled))
            }
        }
    )*};
}

/// Implements `tokio::io::AsyncWrite` for `$ty` through its
/// `futures_io::AsyncWrite` implementation (`poll_close` is shutdown).
macro_rules! tokio_write {
    ($($ty:ty),*) => {$(
        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                futures_io::AsyncWrite::poll_write(self, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                futures_io::AsyncWrite::poll_write_vectored(self, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                futures_io::AsyncWrite::poll_flush(self, cx)
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                futures_io::AsyncWrite::poll_close(self, cx)
            }
        }
    )*};
}

tokio_read!(TcpStream, UnixStream, OwnedReadHalf, unix::OwnedReadHalf);
tokio_write!(TcpStream, UnixStream, OwnedWriteHalf, unix::OwnedWriteHalf);

/// Reads into `buf`'s unfilled part with `read` and marks what it wrote
/// as initialised and filled.
fn read_buf(
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    read: impl FnOnce(&mut Context<'_>, &mut [std::mem::MaybeUninit<u8>]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<()>> {
    // SAFETY: the slice goes only to `poll_read_uninit`, which lets the
    // kernel write received bytes into it and never de-initialises a byte
    // (tokio's contract for `unfilled_mut`).
    let n = ready!(read(cx, unsafe { buf.unfilled_mut() }))?;
    // SAFETY: `poll_read_uninit` returned `n`: the first `n` bytes of the
    // unfilled part are initialised now.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Poll::Ready(Ok(()))
}

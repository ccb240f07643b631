//! A new connection's protocol sniffing, bounded in time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::idle::Activity;

/// The HTTP/2 client preface; `auto::Builder` reads up to this many bytes to pick the protocol.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bounds the protocol sniffing of a new connection by `header_read_timeout`.
///
/// `auto::Builder` reads the first bytes (up to the 24-byte HTTP/2 preface) to choose HTTP/1
/// or HTTP/2 with no timeout of its own, and HTTP/1's header-read timeout only starts after
/// that: a client that connects and sends nothing (or a few preface bytes) would otherwise
/// hold a connection permit forever (tests/faults.rs, slowloris). Reads fail with `TimedOut`
/// once the deadline passes while the bytes seen so far could still be the preface; the
/// deadline is dropped as soon as they cannot (HTTP/1) or the preface is complete (HTTP/2).
///
/// The outcome goes to the connection's [`Activity`]: HTTP/2 connections get an idle timer.
pub(super) struct SniffDeadline<I> {
    io: I,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    matched: usize,
    activity: Option<Arc<Activity>>,
}

impl<I> SniffDeadline<I> {
    pub(super) fn new(io: I, timeout: Duration, activity: Arc<Activity>) -> Self {
        Self {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            matched: 0,
            activity: Some(activity),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SniffDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let Some(deadline) = this.deadline.as_mut() else {
            return result;
        };
        match &result {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                let rest = &H2_PREFACE[this.matched..];
                let n = new.len().min(rest.len());
                if new.is_empty() || new[..n] != rest[..n] || this.matched + n == H2_PREFACE.len() {
                    this.deadline = None;
                    let http2 = !new.is_empty() && new[..n] == rest[..n];
                    if let Some(a) = this.activity.take() {
                        a.sniffed(http2);
                    }
                } else {
                    this.matched += n;
                }
            }
            Poll::Ready(Err(_)) => this.deadline = None,
            Poll::Pending => {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request started within the header read timeout",
                    )));
                }
            }
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SniffDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

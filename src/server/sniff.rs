//! A new connection's protocol, HTTP/1 or HTTP/2, read from its first bytes within a deadline.
//!
//! Done here rather than by hyper-util's `auto` builder for two reasons:
//! - a deadline: the sniffing has none of its own, and HTTP/1's header-read timeout only
//!   starts after it, so a client that connects and sends nothing (or a few preface bytes)
//!   would hold a connection permit forever (tests/faults.rs, slowloris);
//! - memory: `auto` hands hyper the sniffed bytes as a first read of their own, a few bytes
//!   long. hyper then finds its 8 KiB read buffer not quite empty, grows it to 16 KiB, and an
//!   idle keep-alive connection keeps that for its whole life. [`Prefixed`] gives the sniffed
//!   bytes back together with whatever else has arrived, so the whole request is read at
//!   once and the buffer stays at 8 KiB (bench/README.md, "Memory per connection").

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The HTTP/2 client preface.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the bytes are the complete HTTP/2 preface (`Some(true)`) or cannot be
/// (`Some(false)`, HTTP/1), and returns the connection with those bytes put back. `None`:
/// the client closed, failed, or sent no decisive bytes within `timeout`; the connection is
/// to be dropped.
pub(super) async fn sniff<I: AsyncRead + Unpin>(
    mut io: I,
    timeout: Duration,
) -> Option<(Prefixed<I>, bool)> {
    let mut prefix = [0u8; 24];
    let mut len = 0;
    let decided = tokio::time::timeout(timeout, async {
        loop {
            match io.read(&mut prefix[len..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => len += n,
            }
            if prefix[..len] != H2_PREFACE[..len] {
                return Some(false);
            }
            if len == H2_PREFACE.len() {
                return Some(true);
            }
        }
    })
    .await
    .ok()??;
    Some((
        Prefixed {
            io,
            prefix,
            start: 0,
            end: len as u8,
        },
        decided,
    ))
}

/// A connection whose first bytes were already read: they come first, and in the same read
/// as whatever else is already waiting.
pub(super) struct Prefixed<I> {
    io: I,
    prefix: [u8; 24],
    start: u8,
    end: u8,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.start == this.end {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let rest = &this.prefix[this.start as usize..this.end as usize];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.start += n as u8;
        if this.start == this.end && buf.remaining() > 0 {
            // What has arrived since: an error or the end of the stream shows up again on the
            // next read, after the prefix has been taken.
            let _ = Pin::new(&mut this.io).poll_read(cx, buf);
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        (l.accept().await.unwrap().0, client)
    }

    #[tokio::test]
    async fn an_http1_request_comes_back_whole_in_the_first_read() {
        let (server, mut client) = pair().await;
        let request = b"PUT /User/1001 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}";
        client.write_all(request).await.unwrap();
        let (mut io, http2) = sniff(server, Duration::from_secs(30)).await.unwrap();
        assert!(!http2);
        let mut buf = vec![0u8; 8192];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(
            &buf[..n],
            request,
            "the sniffed bytes and the rest, in one read"
        );
    }

    #[tokio::test]
    async fn the_http2_preface_is_recognised_and_given_back() {
        let (server, mut client) = pair().await;
        client.write_all(&H2_PREFACE[..10]).await.unwrap();
        client.flush().await.unwrap();
        let sniffed = tokio::spawn(sniff(server, Duration::from_secs(30)));
        client.write_all(&H2_PREFACE[10..]).await.unwrap();
        let (mut io, http2) = sniffed.await.unwrap().unwrap();
        assert!(http2);
        let mut buf = [0u8; 64];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], H2_PREFACE);
    }

    #[tokio::test]
    async fn a_silent_or_vanished_client_is_dropped() {
        let (server, client) = pair().await;
        assert!(sniff(server, Duration::from_millis(100)).await.is_none());
        drop(client);
        let (server, mut client) = pair().await;
        client.write_all(b"PRI * HT").await.unwrap();
        drop(client);
        assert!(sniff(server, Duration::from_secs(30)).await.is_none());
    }
}

//! The two channels between the async side and the translation's blocking thread: the
//! request body flows in frame by frame, the output flows out in chunks, and a full output
//! channel is the signal to start streaming the answer.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use super::EVENTS_BODY_LIMIT;
use crate::body::BoxError;

#[derive(Debug, thiserror::Error)]
#[error("the body is over the events limit of {0} bytes")]
pub(super) struct TooLarge(usize);

/// Moves the request body into the translation's channel, frame by frame.
pub(super) async fn feed<B>(body: B, tx: mpsc::Sender<io::Result<Bytes>>)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    loop {
        let Some(item) = body.frame().await.and_then(data) else {
            return;
        };
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
            return; // the run stopped (an error), or the body did: nothing more to move
        }
    }
}

/// One frame as the translation reads it: data, nothing (trailers, empty), or an io::Error
/// (the body's own error type need not be `Send`, so it is not held across an await).
fn data<E: Into<BoxError>>(frame: Result<Frame<Bytes>, E>) -> Option<io::Result<Bytes>> {
    match frame {
        Ok(frame) => frame.into_data().ok().map(Ok),
        Err(e) => {
            let e: BoxError = e.into();
            Some(Err(if crate::request::is_length_limit(&*e) {
                io::Error::new(io::ErrorKind::InvalidData, TooLarge(EVENTS_BODY_LIMIT))
            } else {
                io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string())
            }))
        }
    }
}

/// The blocking side of the input channel.
pub(super) struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl ChannelReader {
    pub(super) fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// The blocking side of the output channel. The first time the channel is full it says so
/// (the answer then starts streaming) and waits for the client.
pub(super) struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    full: Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>,
}

impl ChannelWriter {
    pub(super) fn new(
        tx: mpsc::Sender<Bytes>,
        full: Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>,
    ) -> Self {
        Self { tx, full }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let chunk = Bytes::copy_from_slice(data);
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the client went away");
        match self.tx.try_send(chunk) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                if let Some(tx) = self.full.lock().ok().and_then(|mut f| f.take()) {
                    let _ = tx.send(());
                }
                self.tx.blocking_send(chunk).map_err(|_| gone())?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(gone()),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

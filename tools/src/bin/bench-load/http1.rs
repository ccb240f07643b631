//! The client side of HTTP/1.1, as little of it as the benchmark needs: one keep-alive
//! connection, a pre-built request written as is, answers framed by `Content-Length` or
//! chunked encoding. No allocation per request once the read buffer has grown, so the load
//! generator's own cost stays small next to the proxy it measures.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection and its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends the request, reads one whole answer: its status, and whether the server closes.
    pub async fn roundtrip(&mut self, req: &[u8]) -> io::Result<(u16, bool)> {
        self.stream.write_all(req).await?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((status, used, close)) = parse_response(&self.buf)? {
                self.buf.drain(..used);
                return Ok((status, close));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed mid-answer",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

pub fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// `Some((status, bytes used, close))` once `buf` holds a whole answer.
pub fn parse_response(buf: &[u8]) -> io::Result<Option<(u16, usize, bool)>> {
    let Some(head_end) = find(buf, b"\r\n\r\n", 0) else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| bad("bad content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            close = v.contains("close") || (close && !v.contains("keep-alive"));
        }
    }
    let body_start = head_end + 4;
    if chunked {
        return chunked_end(buf, body_start).map(|end| end.map(|e| (status, e, close)));
    }
    let length = match (length, status) {
        (_, 204 | 304) | (_, 100..=199) => 0,
        (Some(n), _) => n,
        // No framing: the body runs to the close; not expected from anything benchmarked.
        (None, _) => {
            close = true;
            0
        }
    };
    if buf.len() < body_start + length {
        return Ok(None);
    }
    Ok(Some((status, body_start + length, close)))
}

/// Where a chunked body that starts at `pos` ends, once all of it is in `buf`.
fn chunked_end(buf: &[u8], mut pos: usize) -> io::Result<Option<usize>> {
    loop {
        let Some(line_end) = find(buf, b"\r\n", pos) else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&buf[pos..line_end]).map_err(|_| bad("chunk"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers (rare) end with an empty line.
            if buf.len() >= pos + 2 && &buf[pos..pos + 2] == b"\r\n" {
                return Ok(Some(pos + 2));
            }
            return Ok(find(buf, b"\r\n\r\n", pos).map(|e| e + 4));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_framed() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1";
        assert_eq!(parse_response(r).unwrap(), Some((200, 40, false)));
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok";
        assert_eq!(parse_response(r).unwrap(), None);
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), Some((404, r.len(), true)));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n";
        assert_eq!(parse_response(r).unwrap(), None);
    }

    #[test]
    fn trailers_and_http10_close() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\nnext";
        assert_eq!(parse_response(r).unwrap(), Some((200, r.len() - 4, false)));
        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), Some((200, r.len(), true)));
        let r = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), Some((200, r.len(), false)));
        assert!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
    }
}

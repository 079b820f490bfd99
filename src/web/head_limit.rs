//! A request head too long for the HTTP parser gets the API's JSON error, not a bare 400.
//!
//! actix-http answers a request line over 64 KiB (the `http` crate's URI limit) with an
//! empty 400 and a head over 128 KiB with an empty 431, before any application code runs,
//! and offers no hook for the body. [`HeadGuard`] sits between the socket and the HTTP
//! dispatcher and follows HTTP/1.1 framing (heads, `Content-Length` and chunked bodies,
//! pipelined requests): a request line or head growing past [`MAX_HEAD_BYTES`] is never
//! handed to the parser; the guard answers it with 414 `uri_too_long` or 431
//! `headers_too_large` and closes the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest accepted request line, and longest accepted head (line plus headers).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Where in a connection's byte stream the framer is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading a head; `line_done` once its request line ended.
    Head {
        line_done: bool,
    },
    /// Inside a body with this many bytes left.
    Body(u64),
    /// A chunk-size line of a chunked body.
    ChunkSize,
    /// Chunk data with this many bytes left, then its CRLF.
    ChunkData(u64),
    ChunkCrlf,
    /// Trailer lines after the last chunk; `empty` while the current line has no bytes.
    Trailer {
        empty: bool,
    },
    /// Framing the guard does not follow (an unparsable head, an upgrade): the rest of the
    /// connection passes through and the HTTP parser decides.
    Passthrough,
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UriTooLong,
    HeadersTooLarge,
}

impl Refusal {
    fn response(self) -> Vec<u8> {
        let (status, code, message) = match self {
            Refusal::UriTooLong => (
                "414 URI Too Long",
                "uri_too_long",
                format!(
                    "the request line is longer than {MAX_HEAD_BYTES} bytes; send long inputs in a POST body"
                ),
            ),
            Refusal::HeadersTooLarge => (
                "431 Request Header Fields Too Large",
                "headers_too_large",
                format!("the request headers are larger than {MAX_HEAD_BYTES} bytes"),
            ),
        };
        let body = serde_json::json!({ "error": { "code": code, "message": message, "docs": format!("/v1/docs#error-{code}") } })
            .to_string();
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Follows HTTP/1.1 request framing over the bytes a connection receives.
#[derive(Debug)]
pub struct Framer {
    state: State,
    /// The current head so far (at most [`MAX_HEAD_BYTES`]).
    head: Vec<u8>,
    /// The current chunk-size line so far.
    line: Vec<u8>,
}

impl Default for Framer {
    fn default() -> Self {
        Framer { state: State::Head { line_done: false }, head: Vec::new(), line: Vec::new() }
    }
}

impl Framer {
    /// Takes the next bytes received. `Err` when a head outgrew the limit: none of these
    /// bytes may reach the parser then.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        let mut i = 0;
        while i < bytes.len() {
            match &mut self.state {
                State::Passthrough => return Ok(()),
                State::Head { line_done } => {
                    let b = bytes[i];
                    i += 1;
                    // Empty lines before a request line are allowed (RFC 9112 2.2).
                    if self.head.is_empty() && (b == b'\r' || b == b'\n') {
                        continue;
                    }
                    self.head.push(b);
                    if b == b'\n' && !*line_done {
                        *line_done = true;
                    }
                    if self.head.len() > MAX_HEAD_BYTES {
                        return Err(if *line_done { Refusal::HeadersTooLarge } else { Refusal::UriTooLong });
                    }
                    if self.head.ends_with(b"\r\n\r\n") || self.head.ends_with(b"\n\n") {
                        self.state = self.after_head();
                        self.head.clear();
                    }
                }
                State::Body(left) => {
                    let n = (*left).min((bytes.len() - i) as u64);
                    *left -= n;
                    i += n as usize;
                    if *left == 0 {
                        self.state = State::Head { line_done: false };
                    }
                }
                State::ChunkSize => {
                    let b = bytes[i];
                    i += 1;
                    if b != b'\n' {
                        if self.line.len() < 1024 {
                            self.line.push(b);
                        }
                        continue;
                    }
                    let text = String::from_utf8_lossy(&self.line);
                    let size = text.split(';').next().unwrap_or("").trim();
                    self.state = match u64::from_str_radix(size, 16) {
                        Ok(0) => State::Trailer { empty: true },
                        Ok(n) => State::ChunkData(n),
                        Err(_) => State::Passthrough,
                    };
                    self.line.clear();
                }
                State::ChunkData(left) => {
                    let n = (*left).min((bytes.len() - i) as u64);
                    *left -= n;
                    i += n as usize;
                    if *left == 0 {
                        self.state = State::ChunkCrlf;
                    }
                }
                State::ChunkCrlf => {
                    let b = bytes[i];
                    i += 1;
                    if b == b'\n' {
                        self.state = State::ChunkSize;
                    }
                }
                State::Trailer { empty } => {
                    let b = bytes[i];
                    i += 1;
                    match b {
                        b'\n' if *empty => self.state = State::Head { line_done: false },
                        b'\n' => *empty = true,
                        b'\r' => {}
                        _ => *empty = false,
                    }
                }
            }
        }
        Ok(())
    }

    /// What follows a complete head: its body's framing.
    fn after_head(&self) -> State {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&self.head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return State::Passthrough,
        }
        let mut length = None;
        for h in req.headers.iter() {
            let value = String::from_utf8_lossy(h.value);
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return if value.to_ascii_lowercase().trim_end().ends_with("chunked") {
                    State::ChunkSize
                } else {
                    State::Passthrough
                };
            }
            if h.name.eq_ignore_ascii_case("upgrade") {
                return State::Passthrough;
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                match value.trim().parse::<u64>() {
                    Ok(n) => length = Some(n),
                    Err(_) => return State::Passthrough,
                }
            }
        }
        match length {
            Some(n) if n > 0 => State::Body(n),
            _ => State::Head { line_done: false },
        }
    }
}

/// A connection whose incoming bytes pass through a [`Framer`].
pub struct HeadGuard<S> {
    io: S,
    framer: Framer,
    /// The refusal being written, and how much of it is out.
    refusal: Option<(Vec<u8>, usize)>,
}

impl<S> HeadGuard<S> {
    pub fn new(io: S) -> Self {
        HeadGuard { io, framer: Framer::default(), refusal: None }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.refusal.is_none() {
            let before = buf.filled().len();
            match Pin::new(&mut this.io).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            let fed = this.framer.feed(&buf.filled()[before..]);
            match fed {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(refusal) => {
                    tracing::info!(?refusal, "request head over the limit refused");
                    buf.set_filled(before);
                    this.refusal = Some((refusal.response(), 0));
                }
            }
        }
        // Write the refusal, then end the stream: the parser sees an unfinished head and
        // closes the connection.
        let (bytes, written) = this.refusal.as_mut().expect("set above");
        while *written < bytes.len() {
            match Pin::new(&mut this.io).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadGuard<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(parts: &[&[u8]]) -> Result<(), Refusal> {
        let mut f = Framer::default();
        for p in parts {
            f.feed(p)?;
        }
        Ok(())
    }

    #[test]
    fn long_request_lines_and_heads_are_refused_and_bodies_are_not_heads() {
        let long_uri = format!("GET /v1/search?q={} HTTP/1.1\r\n\r\n", "a".repeat(100_000));
        assert_eq!(feed_all(&[long_uri.as_bytes()]), Err(Refusal::UriTooLong));
        let big_header = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "b".repeat(40_000));
        assert_eq!(feed_all(&[big_header.as_bytes()]), Err(Refusal::HeadersTooLarge));

        // A 60 KB body without newlines, then a pipelined request: bodies are skipped.
        let body = format!("{{\"ids\": [\"{}\"]}}", "9".repeat(60_000));
        let post = format!("POST /v1/forecasts HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let next = b"GET /healthz HTTP/1.1\r\n\r\n";
        assert_eq!(feed_all(&[post.as_bytes(), next]), Ok(()));
        // Split at every kind of boundary.
        let all = [post.as_bytes(), next].concat();
        let mut f = Framer::default();
        for chunk in all.chunks(7) {
            f.feed(chunk).unwrap();
        }
        assert_eq!(f.state, State::Head { line_done: false });

        // A chunked body, then a long request line on the same connection.
        let chunked = format!(
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            50_000,
            "c".repeat(50_000)
        );
        let mut f = Framer::default();
        f.feed(chunked.as_bytes()).unwrap();
        assert_eq!(f.state, State::Head { line_done: false });
        assert_eq!(f.feed(long_uri.as_bytes()), Err(Refusal::UriTooLong));
    }

    #[test]
    fn a_refusal_is_the_apis_json_error() {
        let r = String::from_utf8(Refusal::UriTooLong.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 414 "), "{r}");
        let body: serde_json::Value = serde_json::from_str(r.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "uri_too_long");
    }
}

//! A plain-TCP connection's first request head, read by fedgate before
//! hyper is given the connection.
//!
//! hyper sets up 16 KiB of buffers for every connection it serves (an
//! 8 KiB read buffer at the first read and an 8 KiB write buffer at once),
//! and keeps them for the connection's life. A client that opens
//! connections and trickles their heads a byte at a time (slowloris) would
//! hold that much on each until the header timeout. Reading the first head
//! here, in a buffer that grows only as bytes arrive, holds a few hundred
//! bytes for such a connection instead (`docs/performance.md`), and hyper
//! starts once a whole head has come, with the bytes read so far played
//! back to it first ([`Prefixed`]).
//!
//! What is read is not parsed here: the head ends at the first empty line
//! (`\n\n` or `\n\r\n`), and hyper parses and checks everything, as if it
//! had read the bytes itself. A head that reaches [`MAX_HEAD_BYTES`]
//! without its end is handed over too, so hyper answers 431 as usual.

use std::pin::Pin;
use std::task::{Context, Poll};

use memchr::memmem;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::server::MAX_HEAD_BYTES;

/// How much is read from the socket at a time while waiting for the head
/// (on the stack: only what arrived is kept).
const READ_CHUNK: usize = 4096;

/// How the wait for the first head ended.
#[derive(Debug)]
pub enum FirstHead {
    /// A whole head (and whatever came after it), or [`MAX_HEAD_BYTES`]
    /// without an end: for hyper.
    Ready(Vec<u8>),
    /// The client closed (or the socket failed) before a whole head.
    Closed,
}

/// Read until the end of the first request head is in, or
/// [`MAX_HEAD_BYTES`] are, or the client goes away. Bounded in time by the
/// caller (the header timeout).
pub async fn read(stream: &TcpStream) -> FirstHead {
    let mut got: Vec<u8> = Vec::new();
    loop {
        if stream.readable().await.is_err() {
            return FirstHead::Closed;
        }
        let mut chunk = [0u8; READ_CHUNK];
        let room = READ_CHUNK.min(MAX_HEAD_BYTES - got.len());
        let n = match stream.try_read(&mut chunk[..room]) {
            Ok(0) => return FirstHead::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return FirstHead::Closed,
        };
        // Search only the new bytes and the three before them: the whole
        // wait is linear in what arrives, however it is split.
        let from = got.len().saturating_sub(3);
        got.extend_from_slice(&chunk[..n]);
        if head_ends(&got[from..]) || got.len() >= MAX_HEAD_BYTES {
            return FirstHead::Ready(got);
        }
    }
}

/// Whether `b` holds the empty line that ends a request head.
fn head_ends(b: &[u8]) -> bool {
    memmem::find(b, b"\n\n").is_some() || memmem::find(b, b"\n\r\n").is_some()
}

/// A stream whose first bytes are `head` (already read from it), then the
/// stream's own.
pub struct Prefixed<S> {
    head: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(head: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed { head, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = buf.remaining().min(this.head.len() - this.at);
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                // Played back: give the memory back now, not at the end of
                // the connection.
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_head_ends_at_the_first_empty_line_with_or_without_cr() {
        assert!(head_ends(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(head_ends(b"GET / HTTP/1.1\nHost: a\n\n"));
        assert!(head_ends(b"\r\n\r\nbody"));
        assert!(!head_ends(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!head_ends(b"GET / HTTP/1.1\r\n\r"));
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn a_head_split_across_writes_is_whole_and_played_back_before_the_rest() {
        let (mut client, server) = pair().await;
        let head = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n";
        let reader = tokio::spawn(async move {
            let got = read(&server).await;
            (got, server)
        });
        // Split in the middle of the final CRLF CRLF: found across the seam.
        let cut = head.len() - 2;
        client.write_all(&head[..cut]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        client.write_all(&head[cut..]).await.unwrap();
        let (got, server) = reader.await.unwrap();
        let FirstHead::Ready(bytes) = got else {
            panic!("no head: {got:?}")
        };
        assert_eq!(bytes, head);
        client.write_all(b"body").await.unwrap();
        drop(client);
        let mut all = Vec::new();
        Prefixed::new(bytes, server)
            .read_to_end(&mut all)
            .await
            .unwrap();
        assert_eq!(
            all,
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
        );
    }

    #[tokio::test]
    async fn a_head_without_an_end_is_handed_over_at_the_cap_and_a_closed_client_is_closed() {
        let (mut client, server) = pair().await;
        let reader = tokio::spawn(async move { read(&server).await });
        let mut line = b"GET / HTTP/1.1\r\nX: ".to_vec();
        line.resize(MAX_HEAD_BYTES + 4096, b'a');
        let _ = client.write_all(&line).await;
        let FirstHead::Ready(bytes) = reader.await.unwrap() else {
            panic!("not handed over")
        };
        assert_eq!(bytes.len(), MAX_HEAD_BYTES);
        let (client, server) = pair().await;
        drop(client);
        assert!(matches!(read(&server).await, FirstHead::Closed));
    }
}

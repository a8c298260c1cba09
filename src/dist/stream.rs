//! A futures-io view of a tokio `TcpStream` that can be cloned.
//!
//! erl_dist speaks futures-io, and its `message::channel` wants a `Clone`
//! stream so the sending and the receiving half can live in different tasks.
//! tokio's `TcpStream` is neither, but it can be read and written through a
//! shared reference (`poll_read_ready` + `try_read`), so an `Arc` of it is
//! enough. Readiness wakers are kept per direction by tokio, so one task
//! reading and another writing do not steal each other's wake-ups.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub(crate) struct SharedStream(Arc<TcpStream>);

impl SharedStream {
    pub(crate) fn new(stream: TcpStream) -> Self {
        SharedStream(Arc::new(stream))
    }
}

impl futures_io::AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf) {
                // Readiness can be spurious: wait for the next edge.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl futures_io::AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TCP socket has no user-space buffer: every write already went to the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the last clone is dropped (both halves of a session).
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Reads one exact buffer through the futures-io trait, without pulling in
    /// the futures crate just for `AsyncReadExt`.
    async fn read_exact(stream: &mut SharedStream, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = std::future::poll_fn(|cx| {
                futures_io::AsyncRead::poll_read(Pin::new(&mut *stream), cx, &mut buf[filled..])
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
        }
        Ok(())
    }

    async fn write_all(stream: &mut SharedStream, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| {
                futures_io::AsyncWrite::poll_write(Pin::new(&mut *stream), cx, buf)
            })
            .await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    #[tokio::test]
    async fn clones_read_and_write_the_same_socket_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");

        let mut reader = SharedStream::new(client);
        let mut writer = reader.clone();

        write_all(&mut writer, b"ping").await.expect("write");
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.expect("server read");
        assert_eq!(&got, b"ping");

        server.write_all(b"pong!").await.expect("server write");
        let mut got = [0u8; 5];
        read_exact(&mut reader, &mut got).await.expect("read");
        assert_eq!(&got, b"pong!");

        drop(server);
        let mut rest = [0u8; 1];
        let eof = read_exact(&mut reader, &mut rest).await;
        assert_eq!(
            eof.expect_err("peer closed").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}

//! What the fuzz targets share: a peer that is a byte string (an in-memory
//! stream erl_dist can read from) and a tiny executor for the async parsers.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// A connection whose far end sent `input` and then closed; what we write is
/// kept (the seed generator reads it). Cloneable like erl_dist's channel needs.
#[derive(Clone, Default)]
pub struct Peer(Arc<Mutex<PeerState>>);

#[derive(Default)]
struct PeerState {
    input: Vec<u8>,
    read: usize,
    written: Vec<u8>,
}

impl Peer {
    pub fn sending(input: &[u8]) -> Self {
        Peer(Arc::new(Mutex::new(PeerState {
            input: input.to_vec(),
            ..PeerState::default()
        })))
    }

    pub fn written(&self) -> Vec<u8> {
        self.state().written.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PeerState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl futures_io::AsyncRead for Peer {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut s = self.state();
        let n = buf.len().min(s.input.len() - s.read);
        let from = s.read;
        buf[..n].copy_from_slice(&s.input[from..from + n]);
        s.read += n;
        Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncWrite for Peer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.state().written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs a future whose I/O is a [`Peer`]: it never waits, so a `Pending`
/// means it waits for something no peer can send, which is a hang.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the future waits on something a peer that has closed cannot send");
}

/// The names and the cookie the distribution targets use.
pub const OWN_NODE: &str = "beamup-1@127.0.0.1";
pub const LOCAL_NODE: &str = "demo@127.0.0.1";
pub const COOKIE: &str = "fuzz-cookie-3b9d";

//! A bound on what the local node can make the reporter decode.
//!
//! erl_dist reads a frame by allocating the length the peer announces (up to
//! 4 GiB) and eetf decodes terms by reserving the element counts the peer
//! announces and recursing once per nesting level, so a frame such as "a list
//! of 4 billion elements" or a list nested 100 000 deep aborts the reporter
//! (allocation failure, stack overflow), and an atom cache reference or a
//! distribution header inside a term hits eetf's `unimplemented!()`, all
//! before any of our code sees it (fuzz/'s dist_messages target with
//! BEAMUP_FUZZ_RAW=1 finds each within seconds, see fuzz/README.md).
//! [`CheckedFrames`] sits under erl_dist's receiver: it reads each frame itself, drops one longer than [`MAX_FRAME`]
//! without buffering it, and walks the external term format of the rest
//! ([`check_frame`]) before erl_dist sees a byte of it. A frame that fails
//! is skipped with a warning (the stream stays in step, like the session's
//! reader skipping an undecodable message): a reply it carried then times out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncWrite};
use tracing::warn;

/// Far above any reply beamup asks for (`erlang:nodes()` of a thousand nodes
/// is ~30 KiB, the relay's parsed program a few KiB), far below what would
/// hurt.
pub const MAX_FRAME: usize = 1 << 20;

/// Elements (tuple, list and map entries, fun variables) all the terms of
/// one frame may announce together. eetf builds a `Term` of ~56 bytes for
/// each before anything checks it, so a frame of a few MiB of one-byte
/// elements would cost hundreds of MiB: this keeps a frame under ~1 MiB of
/// decoded terms, ten times the largest reply beamup asks for
/// (`erlang:nodes()` of 1,024 peers; the relay's parsed program, ~3,000).
pub const MAX_ELEMENTS: usize = 16 * 1024;

/// Deepest term nesting accepted: a `{badrpc, {'EXIT', {Reason, Stack}}}`
/// reply is about ten levels deep.
pub const MAX_DEPTH: usize = 128;

/// The pass-through type tag that starts every message frame (no atom cache).
const PASS_THROUGH: u8 = 112;
const VERSION: u8 = 131;

/// A stream whose reads hand on only length-checked, term-checked frames of
/// the distribution protocol after the handshake; writes pass through.
#[derive(Debug, Clone)]
pub struct CheckedFrames<S> {
    inner: S,
    header: [u8; 4],
    header_len: usize,
    /// The frame being read (or, with `skip`, only its remaining length).
    body: Vec<u8>,
    skip: usize,
    /// A checked frame, header included, being handed on.
    out: Vec<u8>,
    out_pos: usize,
}

impl<S> CheckedFrames<S> {
    pub fn new(inner: S) -> Self {
        CheckedFrames {
            inner,
            header: [0; 4],
            header_len: 0,
            body: Vec::new(),
            skip: 0,
            out: Vec::new(),
            out_pos: 0,
        }
    }

    fn announced(&self) -> usize {
        u32::from_be_bytes(self.header) as usize
    }

    fn next_frame(&mut self) {
        self.header_len = 0;
        self.body.clear();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CheckedFrames<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut chunk = [0u8; 8192];
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.len().min(this.out.len() - this.out_pos);
                buf[..n].copy_from_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                return Poll::Ready(Ok(n));
            }
            if this.header_len < 4 {
                let from = this.header_len;
                let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut this.header[from..]))?;
                if n == 0 {
                    // EOF: erl_dist sees it (mid-header too) as the connection closing.
                    return Poll::Ready(Ok(0));
                }
                this.header_len += n;
                if this.header_len == 4 && this.announced() > MAX_FRAME {
                    this.skip = this.announced();
                }
                continue;
            }
            let len = this.announced();
            if this.skip > 0 {
                let want = this.skip.min(chunk.len());
                let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk[..want]))?;
                if n == 0 {
                    return Poll::Ready(Ok(0));
                }
                this.skip -= n;
                if this.skip == 0 {
                    warn!(
                        bytes = len,
                        limit = MAX_FRAME,
                        "skipped a message from the local node that is larger than beamup reads"
                    );
                    this.next_frame();
                }
                continue;
            }
            if this.body.len() < len {
                let want = (len - this.body.len()).min(chunk.len());
                let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk[..want]))?;
                if n == 0 {
                    return Poll::Ready(Ok(0));
                }
                this.body.extend_from_slice(&chunk[..n]);
                continue;
            }
            // A whole frame (a tick when empty).
            match check_frame(&this.body) {
                Ok(()) => {
                    this.out.clear();
                    this.out.extend_from_slice(&this.header);
                    this.out.append(&mut this.body);
                    this.out_pos = 0;
                }
                Err(reason) => {
                    warn!(bytes = len, %reason, "skipped a message from the local node that beamup does not decode");
                }
            }
            this.next_frame();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CheckedFrames<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// Checks one frame body (after its length): empty (a tick), or the
/// pass-through tag and then terms, each `131` + a term whose every count
/// fits in the bytes left and whose nesting is at most [`MAX_DEPTH`].
/// Anything else is for erl_dist to reject; compressed terms, which the
/// distribution never sends, are refused (their size is unknowable unpacked).
pub fn check_frame(body: &[u8]) -> Result<(), String> {
    let Some((&tag, mut rest)) = body.split_first() else {
        return Ok(());
    };
    if tag != PASS_THROUGH {
        return Ok(());
    }
    let mut elements = 0;
    while !rest.is_empty() {
        let mut walk = Walk {
            bytes: rest,
            elements,
        };
        if walk.u8()? != VERSION {
            return Err("a term without the version byte 131".into());
        }
        walk.term(0)?;
        rest = walk.bytes;
        elements = walk.elements;
    }
    Ok(())
}

struct Walk<'a> {
    bytes: &'a [u8],
    /// Elements announced so far in this frame (see [`MAX_ELEMENTS`]).
    elements: usize,
}

impl Walk<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if n > self.bytes.len() {
            return Err(format!(
                "a term announces {n} bytes where {} are left",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// `n` sub-terms, each at least one byte: more than the bytes left is a lie.
    fn terms(&mut self, n: usize, depth: usize) -> Result<(), String> {
        if n > self.bytes.len() {
            return Err(format!(
                "a term announces {n} elements where {} bytes are left",
                self.bytes.len()
            ));
        }
        self.elements = self.elements.saturating_add(n);
        if self.elements > MAX_ELEMENTS {
            return Err(format!(
                "a message of more than {MAX_ELEMENTS} elements (beamup's replies hold far fewer)"
            ));
        }
        (0..n).try_for_each(|_| self.term(depth))
    }

    /// One term, tags as in OTP's "External Term Format" chapter.
    fn term(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("a term nested deeper than {MAX_DEPTH} levels"));
        }
        let inner = depth + 1;
        match self.u8()? {
            // SMALL_INTEGER, INTEGER, NEW_FLOAT, FLOAT
            97 => self.take(1).map(drop),
            98 => self.take(4).map(drop),
            70 => self.take(8).map(drop),
            99 => self.take(31).map(drop),
            // ATOM, ATOM_UTF8, STRING (u16 length); SMALL_ATOM(_UTF8) (u8)
            100 | 118 | 107 => {
                let n = self.u16()?;
                self.take(n).map(drop)
            }
            115 | 119 => {
                let n = usize::from(self.u8()?);
                self.take(n).map(drop)
            }
            // BINARY
            109 => {
                let n = self.u32()?;
                self.take(n).map(drop)
            }
            // BIT_BINARY: the last byte holds 1..=8 bits
            77 => {
                let n = self.u32()?;
                let bits = self.u8()?;
                if n > 0 && !(1..=8).contains(&bits) {
                    return Err(format!("a bit binary whose last byte holds {bits} bits"));
                }
                self.take(n).map(drop)
            }
            // SMALL_BIG, LARGE_BIG: digits count, sign, digits
            110 => {
                let n = usize::from(self.u8()?);
                self.take(n + 1).map(drop)
            }
            111 => {
                let n = self.u32()?;
                self.take(1)?;
                self.take(n).map(drop)
            }
            106 => Ok(()),
            // SMALL_TUPLE, LARGE_TUPLE, LIST (+ tail), MAP (pairs)
            104 => {
                let n = usize::from(self.u8()?);
                self.terms(n, inner)
            }
            105 => {
                let n = self.u32()?;
                self.terms(n, inner)
            }
            108 => {
                let n = self.u32()?;
                self.terms(n, inner)?;
                self.term(inner)
            }
            116 => {
                let n = self.u32()?;
                self.terms(n.saturating_mul(2), inner)
            }
            // PID, NEW_PID; PORT, NEW_PORT, V4_PORT: node atom + fixed fields
            103 => self.node_and(inner, 9),
            88 => self.node_and(inner, 12),
            102 => self.node_and(inner, 5),
            89 => self.node_and(inner, 8),
            120 => self.node_and(inner, 12),
            // REFERENCE; NEW_REFERENCE, NEWER_REFERENCE: id word count,
            // node atom, creation (1 or 4 bytes), the id words
            101 => self.node_and(inner, 5),
            114 => {
                let words = self.u16()?;
                self.node_and(inner, 1 + words * 4)
            }
            90 => {
                let words = self.u16()?;
                self.node_and(inner, 4 + words * 4)
            }
            // EXPORT: module, function, arity
            113 => self.terms(3, inner),
            // NEW_FUN: size, arity, uniq, index, free count, then module,
            // old index, old uniq, pid and the free variables.
            112 => {
                self.take(4 + 1 + 16 + 4)?;
                let free = self.u32()?;
                self.terms(4, inner)?;
                self.terms(free, inner)
            }
            // FUN (old): free count, pid, module, index, uniq, free variables
            117 => {
                let free = self.u32()?;
                self.terms(4, inner)?;
                self.terms(free, inner)
            }
            80 => Err("a compressed term (the distribution never sends one)".into()),
            tag => Err(format!("an unknown term tag {tag}")),
        }
    }

    fn node_and(&mut self, depth: usize, fixed: usize) -> Result<(), String> {
        self.term(depth)?;
        self.take(fixed).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use erl_dist::message::{Message, RecvError, channel};
    use erl_dist::term::{Atom, Pid, Term};

    use super::*;

    /// An in-memory connection: reads what `input` holds, keeps what is written.
    #[derive(Clone, Default)]
    struct Mem(Arc<Mutex<Wire>>);

    #[derive(Default)]
    struct Wire {
        input: Vec<u8>,
        read: usize,
        written: Vec<u8>,
    }

    impl Mem {
        fn sending(input: Vec<u8>) -> Self {
            Mem(Arc::new(Mutex::new(Wire {
                input,
                ..Wire::default()
            })))
        }

        fn written(&self) -> Vec<u8> {
            self.0.lock().unwrap().written.clone()
        }
    }

    impl AsyncRead for Mem {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut s = self.0.lock().unwrap();
            let (input, read) = (&s.input, s.read);
            // Small reads, to go through every partial-read path.
            let n = buf.len().min(input.len() - read).min(7);
            buf[..n].copy_from_slice(&input[read..read + n]);
            s.read += n;
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Mem {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.lock().unwrap().written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// `112, 131, <term>`: a frame body carrying one term.
    fn body(term: &[u8]) -> Vec<u8> {
        [&[PASS_THROUGH, VERSION][..], term].concat()
    }

    fn deep_list(depth: usize) -> Vec<u8> {
        let mut t = Vec::new();
        for _ in 0..depth {
            t.extend_from_slice(&[108, 0, 0, 0, 1]);
        }
        t.push(106);
        t.extend(std::iter::repeat_n(106, depth));
        t
    }

    async fn encoded(message: Message) -> Vec<u8> {
        let wire = Mem::default();
        let (mut tx, _rx) = channel(wire.clone(), Default::default());
        tx.send(message).await.unwrap();
        wire.written()
    }

    #[test]
    fn terms_that_would_abort_the_decoder_are_refused() {
        let refused: [(&str, Vec<u8>, &str); 8] = [
            (
                "a list of 4 billion",
                body(&[108, 255, 255, 255, 255, 106]),
                "elements",
            ),
            (
                "a tuple of 4 billion",
                body(&[105, 255, 255, 255, 255]),
                "elements",
            ),
            (
                "a binary longer than the frame",
                body(&[109, 0, 1, 0, 0, 1]),
                "bytes",
            ),
            (
                "a list nested 100 000 deep",
                body(&deep_list(100_000)),
                "deeper",
            ),
            (
                "a bit binary with 0 bits",
                body(&[77, 0, 0, 0, 1, 0, 255]),
                "bits",
            ),
            (
                "a compressed term",
                body(&[80, 0, 0, 0, 9, 1, 2, 3]),
                "compressed",
            ),
            // eetf's decoder has `unimplemented!()` for these two: a panic.
            (
                "an atom cache reference",
                body(&[104, 1, 82, 0]),
                "unknown term tag 82",
            ),
            (
                "a distribution header",
                body(&[68, 0]),
                "unknown term tag 68",
            ),
        ];
        for (what, frame_body, needle) in refused {
            let e = check_frame(&frame_body).expect_err(what);
            assert!(e.contains(needle), "{what}: {e}");
        }
        let accepted: [(&str, Vec<u8>); 4] = [
            ("a tick", vec![]),
            ("a list nested 100 deep", body(&deep_list(100))),
            ("a bit binary with 3 bits", body(&[77, 0, 0, 0, 1, 3, 255])),
            ("not pass-through: erl_dist's to reject", vec![1, 2, 3]),
        ];
        for (what, frame_body) in accepted {
            assert_eq!(check_frame(&frame_body), Ok(()), "{what}");
        }
    }

    /// A list of `n` small integers (2 bytes each): within the frame cap
    /// long before it is within the element cap.
    fn int_list(n: u32) -> Vec<u8> {
        let mut t = vec![108];
        t.extend_from_slice(&n.to_be_bytes());
        for _ in 0..n {
            t.extend_from_slice(&[97, 1]);
        }
        t.push(106);
        t
    }

    #[test]
    fn element_counts_are_capped_per_frame() {
        // 200,000 elements fit in 400 KB: eetf would build ~11 MiB of terms.
        let big = body(&int_list(200_000));
        assert!(big.len() < MAX_FRAME);
        let e = check_frame(&big).expect_err("over the element cap");
        assert!(e.contains("elements"), "{e}");
        // Two terms of one frame add up.
        let half = int_list(MAX_ELEMENTS as u32 / 2 + 1);
        let two = [&body(&half)[..], &[VERSION][..], &half[..]].concat();
        assert!(check_frame(&two).is_err());
        // `erlang:nodes()` of 1,024 peers is far below it.
        assert_eq!(check_frame(&body(&int_list(1_100))), Ok(()));
    }

    #[tokio::test]
    async fn bad_frames_are_skipped_and_the_stream_stays_in_step() {
        let pid = Pid::new("beamup-1@127.0.0.1", 1, 0, 5);
        let good = encoded(Message::send(pid.clone(), Term::from(Atom::from("true")))).await;
        let mut input = frame(&[]);
        input.extend(frame(&body(&[108, 255, 255, 255, 255, 106])));
        input.extend(frame(&body(&deep_list(100_000))));
        // Announces more than MAX_FRAME and sends it all: drained, never buffered.
        input.extend_from_slice(&((MAX_FRAME + 1) as u32).to_be_bytes());
        input.extend(std::iter::repeat_n(0, MAX_FRAME + 1));
        input.extend(&good);
        let peer = Mem::sending(input);

        let (_tx, mut rx) = channel(CheckedFrames::new(peer), Default::default());
        assert!(matches!(rx.recv().await, Ok(Message::Tick)));
        match rx.recv().await {
            Ok(Message::Send(m)) => assert_eq!(m.message, Term::from(Atom::from("true"))),
            other => panic!("expected the good frame, got {other:?}"),
        }
        assert!(matches!(rx.recv().await, Err(RecvError::Closed)));
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_the_connection_closing() {
        let peer = Mem::sending(vec![0, 0, 1, 0, PASS_THROUGH, VERSION]);
        let (_tx, mut rx) = channel(CheckedFrames::new(peer), Default::default());
        assert!(matches!(rx.recv().await, Err(RecvError::Closed)));
    }
}

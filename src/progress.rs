//! The transport under the WebSocket, when wsmux sets the connection up: it records write
//! progress (for [`crate::Config::write_timeout`]) and reads ahead into a buffer of its own.
//!
//! **Read-ahead.** tungstenite zeroes the spare room of its read buffer before every read, even
//! a read that finds the socket empty: with a 32 KiB buffer, 16 KiB on average, about 0.2 µs a
//! read, more than the rest of a small message's handling. So tungstenite gets a small buffer
//! ([`TUNGSTENITE_READ`]) and this wrapper reads the socket in large chunks into a buffer it
//! zeroes once, and copies out. It is a trade, measured (tokio, loopback): a unary RPC call at
//! 1 in flight is about 4 % faster; receiving bulk data costs one more copy of every byte (of
//! memory still in cache), about 5–10 % more CPU for 16 KiB messages, no visible change for
//! 1 MiB ones.
//!
//! **Drained.** It also tells when a socket read brought less than it asked for and all of it
//! has been handed on ([`Clock::drained`]): the socket is most likely empty. The driver of a
//! connection served by `Router::serve_connection` then answers the calls it just read before
//! the read that finds the socket empty (see `Driver::poll_early`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncWrite};

/// The read buffer tungstenite gets over a [`Progress`] transport: one read takes at most this
/// much from the read-ahead buffer, and tungstenite zeroes at most this much before it.
/// 8 KiB: 4 KiB was no faster for small messages and slower for large ones (more reads).
pub(crate) const TUNGSTENITE_READ: usize = 8 * 1024;

/// When the wrapped transport last accepted a byte, and whether its last read drained it.
#[derive(Debug)]
pub(crate) struct Clock {
    base: Instant,
    /// Nanoseconds after `base`.
    last: AtomicU64,
    /// The last read from the socket brought less than it asked for, and all of it has been
    /// handed on: a read now would most likely find the socket empty (see [`Clock::drained`]).
    drained: AtomicBool,
}

impl Clock {
    fn touch(&self) {
        let nanos = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Ordering::Relaxed);
    }

    /// The last time the transport took bytes.
    pub(crate) fn last_progress(&self) -> Instant {
        self.base + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Whether the latest socket read, since [`Clock::forget_drained`], was short and all it
    /// brought has been handed on (nothing left ahead): the next read would most likely only
    /// find the socket empty. A hint, as tokio takes a short read to mean (it then skips that
    /// read): the driver puts such a read after the work the messages it read bring, instead
    /// of before (see `Task::read_socket`).
    pub(crate) fn drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// Forgets what [`Clock::drained`] says of the reads so far, so that it tells of the reads
    /// from now on (WebSocket messages already in tungstenite's buffer come without any).
    pub(crate) fn forget_drained(&self) {
        self.drained.store(false, Ordering::Relaxed);
    }
}

/// A transport with write progress and read-ahead (see the module docs).
pub(crate) struct Progress<S> {
    inner: S,
    clock: Arc<Clock>,
    /// Read from the socket, not yet handed on: `ahead[start..end]`. Allocated (and zeroed)
    /// at the first read, reused after.
    ahead: Box<[u8]>,
    ahead_size: usize,
    start: usize,
    end: usize,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Progress<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("inner", &self.inner)
            .field("read_ahead", &self.ahead_size)
            .field("buffered", &(self.end - self.start))
            .finish_non_exhaustive()
    }
}

/// Wraps `inner`, reading ahead `read_ahead` bytes at a time; the clock is the driver's.
pub(crate) fn wrap<S>(inner: S, read_ahead: usize) -> (Progress<S>, Arc<Clock>) {
    let clock = Arc::new(Clock {
        base: Instant::now(),
        last: AtomicU64::new(0),
        drained: AtomicBool::new(false),
    });
    let progress = Progress {
        inner,
        clock: clock.clone(),
        ahead: Box::default(),
        ahead_size: read_ahead.max(1),
        start: 0,
        end: 0,
    };
    (progress, clock)
}

impl<S: AsyncRead + Unpin> AsyncRead for Progress<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.start == this.end {
            this.clock.drained.store(false, Ordering::Relaxed);
            if buf.len() >= this.ahead_size {
                // As large as a read-ahead: no point in a copy.
                let n = futures::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                this.clock.drained.store(n < buf.len(), Ordering::Relaxed);
                return Poll::Ready(Ok(n));
            }
            if this.ahead.is_empty() {
                this.ahead = vec![0; this.ahead_size].into_boxed_slice();
            }
            let n = futures::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut this.ahead))?;
            (this.start, this.end) = (0, n);
        }
        let n = buf.len().min(this.end - this.start);
        buf[..n].copy_from_slice(&this.ahead[this.start..this.start + n]);
        this.start += n;
        // `end` is what the read that filled `ahead` brought: less than asked, a short read.
        if this.start == this.end && this.end < this.ahead.len() {
            this.clock.drained.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Progress<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 {
                self.clock.touch();
            }
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::AsyncReadExt;
    use futures::task::noop_waker_ref;
    use std::collections::VecDeque;

    enum Step {
        /// As many of these bytes as fit; the rest stays for the next read.
        Bytes(Vec<u8>),
        Pending,
        Fail,
    }

    /// A transport that answers each read with its next scripted step, then the end.
    struct Script {
        steps: VecDeque<Step>,
        reads: Vec<usize>,
    }

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.reads.push(buf.len());
            match self.steps.pop_front() {
                None => Poll::Ready(Ok(0)),
                Some(Step::Pending) => Poll::Pending,
                Some(Step::Fail) => Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
                Some(Step::Bytes(mut bytes)) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    if n < bytes.len() {
                        self.steps.push_front(Step::Bytes(bytes.split_off(n)));
                    }
                    Poll::Ready(Ok(n))
                }
            }
        }
    }

    fn script(steps: Vec<Step>, read_ahead: usize) -> Progress<Script> {
        wrap(Script { steps: steps.into(), reads: Vec::new() }, read_ahead).0
    }

    fn read(p: &mut Progress<Script>, len: usize) -> Poll<io::Result<Vec<u8>>> {
        let mut buf = vec![0; len];
        let mut cx = Context::from_waker(noop_waker_ref());
        Pin::new(p).poll_read(&mut cx, &mut buf).map_ok(|n| buf[..n].to_vec())
    }

    fn got(p: &mut Progress<Script>, len: usize) -> Vec<u8> {
        match read(p, len) {
            Poll::Ready(Ok(bytes)) => bytes,
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    #[test]
    fn small_reads_are_served_from_one_large_socket_read() {
        let data: Vec<u8> = (0..=255).collect();
        let mut p = script(vec![Step::Bytes(data.clone())], 1024);
        let mut all = Vec::new();
        loop {
            let chunk = got(&mut p, 10);
            if chunk.is_empty() {
                break;
            }
            all.extend(chunk);
        }
        assert_eq!(all, data);
        // One read brought all 256 bytes, asking for the whole read-ahead; then the end.
        assert_eq!(p.inner.reads, [1024, 1024]);
    }

    #[test]
    fn pending_errors_and_the_end_pass_through_and_no_byte_is_lost() {
        let steps =
            vec![Step::Bytes(vec![1, 2, 3]), Step::Pending, Step::Fail, Step::Bytes(vec![4])];
        let mut p = script(steps, 8);
        assert_eq!(got(&mut p, 2), [1, 2]);
        // Buffered bytes come first, without a socket read; an empty read reads nothing.
        assert!(got(&mut p, 0).is_empty());
        assert_eq!(got(&mut p, 2), [3]);
        assert!(read(&mut p, 2).is_pending());
        match read(&mut p, 2) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("expected the error, got {other:?}"),
        }
        assert_eq!(got(&mut p, 2), [4]);
        assert!(got(&mut p, 2).is_empty());
        assert_eq!(p.inner.reads, [8, 8, 8, 8, 8]);
    }

    #[test]
    fn drained_once_a_short_read_is_all_handed_on() {
        let steps = vec![Step::Bytes(vec![1; 8]), Step::Bytes(vec![2; 3]), Step::Pending];
        let mut p = script(steps, 8);
        let drained = |p: &Progress<Script>| p.clock.drained();
        assert!(!drained(&p), "nothing read yet");
        // A full read: the socket may hold more.
        assert_eq!(got(&mut p, 8), [1; 8]);
        assert!(!drained(&p));
        // A short read, handed on in two parts: drained only after the second.
        assert_eq!(got(&mut p, 2), [2; 2]);
        assert!(!drained(&p), "a byte is still ahead");
        assert_eq!(got(&mut p, 2), [2]);
        assert!(drained(&p));
        // The next read finds the socket empty, as the hint said; it says no more.
        assert!(read(&mut p, 2).is_pending());
        assert!(!drained(&p));
        // Forgotten: a read served from what is ahead, without the socket, says nothing.
        let mut p = script(vec![Step::Bytes(vec![4; 3])], 8);
        assert_eq!(got(&mut p, 1), [4]);
        p.clock.forget_drained();
        assert_eq!(got(&mut p, 1), [4]);
        assert!(!drained(&p), "a byte is still ahead");
        assert_eq!(got(&mut p, 1), [4]);
        assert!(drained(&p), "the last of a short read");
        // Straight to the socket: a short read is drained at once.
        let mut p = script(vec![Step::Bytes(vec![3; 5])], 4);
        assert_eq!(got(&mut p, 16), [3; 5]);
        assert!(drained(&p));
    }

    #[test]
    fn a_read_as_large_as_the_read_ahead_goes_straight_to_the_socket() {
        let mut p = script(vec![Step::Bytes(vec![9; 100])], 16);
        assert_eq!(got(&mut p, 64), [9; 64]);
        assert!(p.ahead.is_empty(), "no read-ahead buffer was needed");
        // A smaller read goes through the read-ahead again.
        assert_eq!(got(&mut p, 4), [9; 4]);
        assert_eq!(p.inner.reads, [64, 16]);
    }

    #[test]
    fn what_is_read_ahead_equals_what_the_socket_sent_whatever_the_read_sizes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        // The socket hands out uneven pieces; the reader asks for uneven sizes.
        let steps = data.chunks(333).map(|c| Step::Bytes(c.to_vec())).collect();
        let mut p = script(steps, 1000);
        let mut all = Vec::new();
        futures::executor::block_on(async {
            let mut size = 1;
            loop {
                let mut buf = vec![0; size];
                let n = p.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
                size = size % 1500 + 97;
            }
        });
        assert_eq!(all, data);
    }
}

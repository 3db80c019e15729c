//! In-memory transports for fault tests: a bounded duplex pipe, and a wrapper that injects
//! faults (short reads and writes, random chunking, writes returning 0, read errors, EOF,
//! stalls that resume) into any transport.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::io::{AsyncRead, AsyncWrite};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One direction of a [`duplex`] pipe.
#[derive(Default)]
struct Buffer {
    data: VecDeque<u8>,
    capacity: usize,
    /// The writing end closed or was dropped: reads see EOF once `data` is empty.
    closed: bool,
    /// The reading end was dropped: writes fail.
    reader_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One end of an in-memory, bounded, duplex byte pipe.
pub struct PipeEnd {
    incoming: Arc<Mutex<Buffer>>,
    outgoing: Arc<Mutex<Buffer>>,
}

/// Two connected ends; each direction buffers at most `capacity` bytes, so a writer waits
/// for its reader like on a socket whose buffers are full.
pub fn duplex(capacity: usize) -> (PipeEnd, PipeEnd) {
    assert!(capacity > 0);
    let new = || Arc::new(Mutex::new(Buffer { capacity, ..Buffer::default() }));
    let (a, b) = (new(), new());
    (PipeEnd { incoming: a.clone(), outgoing: b.clone() }, PipeEnd { incoming: b, outgoing: a })
}

impl AsyncRead for PipeEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut b = lock(&self.incoming);
        if b.data.is_empty() {
            if b.closed {
                return Poll::Ready(Ok(0));
            }
            b.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(b.data.len());
        for (dst, src) in buf.iter_mut().zip(b.data.drain(..n)) {
            *dst = src;
        }
        if let Some(w) = b.writer.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for PipeEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut b = lock(&self.outgoing);
        if b.reader_gone || b.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = b.capacity - b.data.len();
        if room == 0 {
            b.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(room);
        b.data.extend(&buf[..n]);
        if let Some(w) = b.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut b = lock(&self.outgoing);
        b.closed = true;
        if let Some(w) = b.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut out = lock(&self.outgoing);
        out.closed = true;
        if let Some(w) = out.reader.take() {
            w.wake();
        }
        drop(out);
        let mut inc = lock(&self.incoming);
        inc.reader_gone = true;
        if let Some(w) = inc.writer.take() {
            w.wake();
        }
    }
}

/// A switch shared with the test: while it is shut, every read and write of the transports
/// holding it is pending; opening it wakes them.
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<GateState>>);

#[derive(Default)]
struct GateState {
    shut: bool,
    /// Reads or writes that found the gate shut (so a test can see the stall took hold).
    blocked: usize,
    waiting: Vec<Waker>,
    /// Tests waiting for `blocked` to grow (see [`Gate::until_blocked`]).
    watchers: Vec<Waker>,
}

impl Gate {
    pub fn shut(&self) {
        lock(&self.0).shut = true;
    }
    pub fn open(&self) {
        let mut g = lock(&self.0);
        g.shut = false;
        for w in g.waiting.drain(..) {
            w.wake();
        }
    }
    /// Resolves once `n` polls have found the gate shut.
    pub async fn until_blocked(&self, n: usize) {
        std::future::poll_fn(|cx| {
            let mut g = lock(&self.0);
            if g.blocked >= n {
                return Poll::Ready(());
            }
            g.watchers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
    fn poll_pass(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = lock(&self.0);
        if !g.shut {
            return Poll::Ready(());
        }
        g.blocked += 1;
        g.waiting.push(cx.waker().clone());
        for w in g.watchers.drain(..) {
            w.wake();
        }
        Poll::Pending
    }
}

/// The faults a [`FaultIo`] injects. The default injects none.
#[derive(Clone, Default)]
pub struct Faults {
    /// Each read returns at most this many bytes (0: no cap).
    pub max_read: usize,
    /// Each write takes at most this many bytes (0: no cap).
    pub max_write: usize,
    /// With a seed, each read and write is cut to a pseudo-random size in `1..=cap` (the caps
    /// above if set): the transport's bytes arrive in arbitrary chunks.
    pub random_chunks: Option<u64>,
    /// Cutting (the three fields above) starts after this many bytes in each direction, so the
    /// HTTP upgrade can pass first: tungstenite takes an upgrade dribbled in tiny pieces for an
    /// attack (and refuses it, which is right).
    pub cut_after: usize,
    /// After this many bytes written, every write returns `Ok(0)`.
    pub zero_writes_after: Option<usize>,
    /// After this many bytes read, every read fails with `ConnectionReset`.
    pub read_error_after: Option<usize>,
    /// After this many bytes read, every read returns EOF (`Ok(0)`).
    pub eof_after: Option<usize>,
    /// While shut, reads and writes are pending.
    pub gate: Gate,
}

/// A transport wrapper that injects [`Faults`], and counts its polls.
pub struct FaultIo<S> {
    inner: S,
    faults: Faults,
    rng: u64,
    read: usize,
    written: usize,
    /// Every `poll_write` call (to catch a writer spinning on `Ok(0)`).
    pub write_polls: Arc<AtomicUsize>,
    /// Every `poll_read` call.
    pub read_polls: Arc<AtomicUsize>,
}

impl<S> FaultIo<S> {
    pub fn new(inner: S, faults: Faults) -> Self {
        let rng = faults.random_chunks.unwrap_or(0).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        FaultIo {
            inner,
            faults,
            rng,
            read: 0,
            written: 0,
            write_polls: Arc::default(),
            read_polls: Arc::default(),
        }
    }

    fn cut(&mut self, len: usize, cap: usize, done: usize) -> usize {
        if done < self.faults.cut_after {
            return len.min(self.faults.cut_after - done);
        }
        let cap = if cap == 0 { usize::MAX } else { cap };
        let mut n = len.min(cap);
        if self.faults.random_chunks.is_some() && n > 1 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            n = (self.rng % n as u64) as usize + 1;
        }
        n
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FaultIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.read_polls.fetch_add(1, Ordering::Relaxed);
        futures::ready!(self.faults.gate.poll_pass(cx));
        if self.faults.read_error_after.is_some_and(|at| self.read >= at) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if self.faults.eof_after.is_some_and(|at| self.read >= at) {
            return Poll::Ready(Ok(0));
        }
        let limit = [self.faults.read_error_after, self.faults.eof_after]
            .into_iter()
            .flatten()
            .map(|at| at - self.read)
            .min()
            .unwrap_or(usize::MAX);
        let cap = self.faults.max_read;
        let done = self.read;
        let n = self.cut(buf.len().min(limit), cap, done);
        let got = futures::ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf[..n]))?;
        self.read += got;
        Poll::Ready(Ok(got))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FaultIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_polls.fetch_add(1, Ordering::Relaxed);
        futures::ready!(self.faults.gate.poll_pass(cx));
        let limit = match self.faults.zero_writes_after {
            Some(at) if self.written >= at => return Poll::Ready(Ok(0)),
            Some(at) => at - self.written,
            None => usize::MAX,
        };
        let cap = self.faults.max_write;
        let done = self.written;
        let n = self.cut(buf.len().min(limit), cap, done);
        let put = futures::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        self.written += put;
        Poll::Ready(Ok(put))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::ready!(self.faults.gate.poll_pass(cx));
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// What a [`Watched`] transport is asked to do, told to its watcher as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoEvent {
    /// A read is about to start (the watcher may panic here, as a faulty transport would).
    ReadStart,
    /// A read that brought bytes (or the end).
    Read,
    /// A read that found nothing (and armed the waker).
    Empty,
    Write,
}

/// A transport that tells `watch` of each read and write of `inner`, in order.
pub struct Watched<S> {
    pub inner: S,
    pub watch: Arc<dyn Fn(IoEvent) + Send + Sync>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        (self.watch)(IoEvent::ReadStart);
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        (self.watch)(if poll.is_pending() { IoEvent::Empty } else { IoEvent::Read });
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        (self.watch)(IoEvent::Write);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

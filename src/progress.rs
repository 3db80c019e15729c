//! Write progress: when the transport last took bytes, for the driver's write timeout
//! ([`crate::Config::write_timeout`]).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncWrite};

/// When the wrapped transport last accepted a byte.
#[derive(Debug)]
pub(crate) struct Clock {
    base: Instant,
    /// Nanoseconds after `base`.
    last: AtomicU64,
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
}

/// A transport that records its write progress in a [`Clock`].
#[derive(Debug)]
pub(crate) struct Progress<S> {
    inner: S,
    clock: Arc<Clock>,
}

/// Wraps `inner`; the clock is shared with the driver.
pub(crate) fn wrap<S>(inner: S) -> (Progress<S>, Arc<Clock>) {
    let clock = Arc::new(Clock { base: Instant::now(), last: AtomicU64::new(0) });
    (Progress { inner, clock: clock.clone() }, clock)
}

impl<S: AsyncRead + Unpin> AsyncRead for Progress<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
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

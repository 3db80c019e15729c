//! `ChannelIo`: a channel as a byte stream, for tunnels and self-framed protocols.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::io::{AsyncRead, AsyncWrite};
use futures::Sink;

use wsmux_proto::Read;

use crate::channel::Channel;
use crate::shared::Wait;

/// The most one `poll_write` sends as one message: large writes are split so that a single
/// write never exceeds the peer's minimum max message size.
const MAX_WRITE: usize = 64 * 1024;

/// A [`Channel`] as `AsyncRead + AsyncWrite`. Reading ignores message boundaries and returns
/// `Ok(0)` at the peer's FIN; a reset reads as `ConnectionReset`. Each write is one message;
/// `close` finishes the sending side.
#[derive(Debug)]
pub struct ChannelIo {
    channel: Channel,
    /// Bytes of a message the channel had half-gathered before the conversion.
    leftover: Bytes,
}

impl ChannelIo {
    pub(crate) fn new(mut channel: Channel) -> Self {
        let leftover = channel.take_partial();
        ChannelIo { channel, leftover }
    }

    /// The channel underneath.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}

impl AsyncRead for ChannelIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if !this.leftover.is_empty() {
            let n = buf.len().min(this.leftover.len());
            buf[..n].copy_from_slice(&this.leftover[..n]);
            this.leftover.advance(n);
            return Poll::Ready(Ok(n));
        }
        let id = this.channel.id();
        let mut inner = this.channel.shared().lock();
        let result = match inner.proto.read(id, buf.len()) {
            Ok(Read::Chunk(chunk)) => {
                let n = chunk.data.len();
                buf[..n].copy_from_slice(&chunk.data);
                Poll::Ready(Ok(n))
            }
            Ok(Read::Pending) => {
                inner.park_channel(id, Wait::Read, cx.waker());
                Poll::Pending
            }
            Ok(Read::End) => Poll::Ready(Ok(0)),
            Err(e) => Poll::Ready(Err(crate::Error::from(e).into())),
        };
        inner.after_command();
        result
    }
}

impl AsyncWrite for ChannelIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = futures::ready!(this.channel.poll_send_ready(cx)) {
            return Poll::Ready(Err(e.into()));
        }
        let n = buf.len().min(MAX_WRITE);
        match this.channel.start_send(Bytes::copy_from_slice(&buf[..n])) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(e.error.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().channel).poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().channel).poll_close(cx).map_err(Into::into)
    }
}

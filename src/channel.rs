//! `Channel`: one logical, flow-controlled, bidirectional flow of whole messages.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{Sink, Stream};

use wsmux_proto::{ChannelId, ErrorCode, Read};

use crate::error::{Error, SendError};
use crate::io::ChannelIo;
use crate::shared::{Shared, Wait};

/// One channel of a session: send and receive whole messages, in order, flow-controlled.
///
/// - [`Channel::send`] queues a message; it waits only while the channel's send buffer is full
///   (the peer reads slowly), never for other channels.
/// - [`Channel::recv`] returns the next whole message, `Ok(None)` once the peer finished its
///   side, or an error if the channel was reset or the session failed: a clean end and a reset
///   are always distinguishable.
/// - [`Channel::finish`] ends this side (half-close); [`Channel::reset`] aborts both sides.
///
/// Dropping a channel whose peer may still send resets it with CANCEL; otherwise it finishes
/// this side after the queued messages. `Channel` is also a [`Stream`] of messages and a
/// [`Sink`] of messages, and [`Channel::into_io`] turns it into a byte stream.
#[derive(Debug)]
pub struct Channel {
    shared: Shared,
    id: ChannelId,
    /// Parts of a message that spans several frames, gathered as the application reads them
    /// (reading is what returns credit, so a message larger than the window still flows).
    partial: Partial,
    /// Let go of already (see [`Channel::recv_last`]): dropping it has nothing left to do.
    released: bool,
    /// This channel's reader may hold the driver's read lease (see `WriteNow::read_now`).
    leasing: bool,
    /// Whole messages taken with the last one read, to hand out without the lock (see
    /// [`RECV_BATCH`]); empty whenever `partial` is not.
    ready: VecDeque<Bytes>,
}

/// Up to this many bytes of small whole messages that wait behind the one a read takes (each
/// counted with its part charge of 64 bytes: at most 64 messages) are taken with it, under the
/// same lock, and handed out by the following reads without it.
/// They are held against the session's bound like the message read (PROTOCOL.md's held
/// messages). Measured: 64-byte messages over 64 channels, the lock was a fifth of the time.
const RECV_BATCH: usize = 4096;

impl Channel {
    pub(crate) fn new(shared: Shared, id: ChannelId) -> Self {
        Channel {
            shared,
            id,
            partial: Partial::default(),
            released: false,
            leasing: false,
            ready: VecDeque::new(),
        }
    }

    /// The channel's id (odd if the client opened it, even if the server did).
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Sends one message. Returns once it is queued; hands the message back on failure.
    pub async fn send(&mut self, msg: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        // Fast path: room in the send buffer, so check and queue under one lock.
        let msg = {
            let mut inner = self.shared.lock();
            match inner.proto.try_send(self.id, msg.into()) {
                Ok(None) => {
                    inner.after_command();
                    return Ok(());
                }
                Ok(Some(msg)) => msg,
                Err((e, value)) => return Err(SendError { value, error: e.into() }),
            }
        };
        if let Err(error) = poll_fn(|cx| self.poll_send_ready(cx)).await {
            return Err(SendError { value: msg, error });
        }
        self.start_send(msg)
    }

    /// Ready once a message may be queued without passing the channel's send buffer.
    pub fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.shared.lock();
        match inner.proto.poll_writable(self.id) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                inner.park_channel(self.id, Wait::Write, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// Queues one message now, whatever the send buffer holds (see [`Channel::poll_send_ready`]).
    pub fn start_send(&mut self, msg: Bytes) -> Result<(), SendError<Bytes>> {
        let mut inner = self.shared.lock();
        let queued = inner.proto.send_or_return(self.id, msg);
        if queued.is_ok() {
            inner.after_command();
        }
        queued.map_err(|(e, value)| SendError { value, error: e.into() })
    }

    /// Receives the next whole message; `Ok(None)` once the peer has finished its side.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`Channel::recv`] for a caller done with the channel once it has the peer's last message
    /// (a unary call's answer): when the peer has finished after the message read, the channel
    /// is let go of in the same lock, as dropping it would. Its state is then gone: reading
    /// again is a bug, a reset does nothing (the wire is done), dropping it costs nothing.
    pub(crate) async fn recv_last(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_message(cx, true)).await
    }

    /// Polls for the next whole message (see [`Channel::recv`]).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>> {
        self.poll_message(cx, false)
    }

    /// [`Channel::poll_recv`]; with `last`, as [`Channel::recv_last`].
    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
        last: bool,
    ) -> Poll<Result<Option<Bytes>, Error>> {
        debug_assert!(!self.released, "a channel read after recv_last let go of it");
        if let Some(msg) = self.ready.pop_front() {
            if last && self.ready.is_empty() {
                self.release_if_finished();
            }
            return Poll::Ready(Ok(Some(msg)));
        }
        let mut inner = self.shared.lock();
        let mut read_socket = self.shared.caller_reads();
        let result = loop {
            match inner.proto.read_joining(self.id, usize::MAX) {
                Ok(Read::Chunk(chunk)) if chunk.eom && self.partial.is_empty() => {
                    if !last {
                        inner.proto.read_more_whole(self.id, RECV_BATCH, &mut self.ready);
                    }
                    break Poll::Ready(Ok(Some(chunk.data)));
                }
                Ok(Read::Chunk(chunk)) => {
                    self.partial.push(chunk.data);
                    if chunk.eom {
                        break Poll::Ready(Ok(Some(self.partial.take())));
                    }
                }
                Ok(Read::Pending) if read_socket && inner.proto.channel_count() == 1 => {
                    // Nothing yet, on the session's only channel (a call, say): read the socket
                    // here, unless the driver's task is busy (see `WriteNow::read_now`). With
                    // more channels, the driver reads for all of them: readers taking turns at
                    // the socket cost more than they save (measured: 64-byte messages over 64
                    // channels, about 20 % slower on async-std). Not parked meanwhile, so what
                    // the round reads for this channel does not wake this very task.
                    read_socket = false;
                    inner.unpark_reader(self.id);
                    inner.after_command();
                    drop(inner);
                    self.leasing |= self.shared.read_now(self.lease_token(), cx.waker());
                    inner = self.shared.lock();
                }
                Ok(Read::Pending) => {
                    inner.park_channel(self.id, Wait::Read, cx.waker());
                    break Poll::Pending;
                }
                Ok(Read::End) => break Poll::Ready(Ok(None)),
                Err(e) => break Poll::Ready(Err(e.into())),
            }
        };
        if last && matches!(result, Poll::Ready(Ok(Some(_)))) && inner.proto.read_finished(self.id)
        {
            inner.proto.release(self.id);
            inner.channels.remove(&self.id);
            self.released = true;
        }
        // Reading may owe the peer credit: let the driver send it.
        inner.after_command();
        drop(inner);
        if result.is_ready() {
            // It read what it waited for: the socket's waker is the lease's, in place.
            self.end_lease(false);
        } else if read_socket {
            // It waits without reading (the session has more channels now): the driver reads.
            self.end_lease(true);
        }
        result
    }

    /// After `recv_last` handed out the last of `ready`: lets go of the channel if that was the
    /// peer's last message.
    fn release_if_finished(&mut self) {
        let mut inner = self.shared.lock();
        if inner.proto.read_finished(self.id) {
            inner.proto.release(self.id);
            inner.channels.remove(&self.id);
            self.released = true;
        }
        inner.after_command();
    }

    /// Names this channel's reader to the driver's lease (see `WriteNow::read_now`).
    fn lease_token(&self) -> u64 {
        u64::from(self.id.0) + 1
    }

    /// Hands the socket back to the driver if this channel's reader held it; `wake_driver`, as
    /// for `WriteNow::end_lease`.
    fn end_lease(&mut self, wake_driver: bool) {
        if std::mem::take(&mut self.leasing) {
            self.shared.end_lease(self.lease_token(), wake_driver);
        }
    }

    /// Whether the peer has finished its side and every message it sent has been read: the next
    /// [`Channel::recv`] returns `Ok(None)` at once. A handler that sees this after reading a
    /// request can answer with [`Channel::finish_with`], so the reply and the end leave in one
    /// frame.
    pub fn peer_finished(&self) -> bool {
        self.partial.is_empty()
            && self.ready.is_empty()
            && self.shared.lock().proto.read_finished(self.id)
    }

    /// Waits until what this side sends can no longer arrive: the peer reset the channel, or
    /// the session ended. The error says why. It never resolves while the channel is healthy,
    /// so a task that works for the peer can race its work against it and stop when the peer
    /// gave up.
    pub async fn stopped(&mut self) -> Error {
        poll_fn(|cx| self.poll_stopped(cx)).await
    }

    /// Polls for the end of the sending direction (see [`Channel::stopped`]).
    pub fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        let mut inner = self.shared.lock();
        match inner.proto.send_stopped(self.id) {
            Some(e) => Poll::Ready(e.into()),
            None => {
                inner.park_channel(self.id, Wait::Stopped, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Whether what this side sends can no longer arrive (see [`Channel::stopped`]).
    pub(crate) fn send_stopped(&self) -> bool {
        self.shared.lock().proto.send_stopped(self.id).is_some()
    }

    /// Whether the peer's FIN has arrived, read or not: the peer's side is complete.
    pub(crate) fn fin_received(&self) -> bool {
        self.shared.lock().proto.fin_received(self.id)
    }

    /// Finishes this side: the peer reads the queued messages, then the end. Waits until the
    /// FIN is handed to the connection. Finishing twice is harmless.
    pub async fn finish(&mut self) -> Result<(), Error> {
        self.start_finish()?;
        self.flush().await
    }

    /// Queues FIN after the queued messages, without waiting for it to leave.
    pub(crate) fn start_finish(&mut self) -> Result<(), Error> {
        let mut inner = self.shared.lock();
        inner.proto.finish(self.id)?;
        inner.after_command();
        Ok(())
    }

    /// Sends a last message and finishes, so both leave in ONE frame when the message fits:
    /// the shape of a reply to a request. Hands the message back on failure.
    pub async fn finish_with(&mut self, msg: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        let msg = msg.into();
        if let Err(error) = poll_fn(|cx| self.poll_send_ready(cx)).await {
            return Err(SendError { value: msg, error });
        }
        {
            let mut inner = self.shared.lock();
            let queued = inner.proto.send_or_return(self.id, msg);
            let finished = match queued {
                Ok(()) => inner.proto.finish(self.id).map_err(|e| (e, Bytes::new())),
                Err(refused) => Err(refused),
            };
            inner.after_command();
            if let Err((e, value)) = finished {
                return Err(SendError { value, error: e.into() });
            }
        }
        self.flush().await.map_err(|error| SendError { value: Bytes::new(), error })
    }

    /// Queues `last` (if any) and FIN at once, whatever the send buffer holds, so both leave in
    /// one frame: how an RPC call ends, without waiting.
    /// Whether a message of `len` bytes could be sent now (see `wsmux_proto::Session::check_send`).
    pub(crate) fn check_send(&self, len: usize) -> Result<(), Error> {
        self.shared.lock().proto.check_send(self.id, len).map_err(Into::into)
    }

    pub(crate) fn send_last_now(&mut self, last: Option<Bytes>) -> Result<(), Error> {
        let mut inner = self.shared.lock();
        let queued = match last {
            Some(msg) => inner.proto.send(self.id, msg),
            None => Ok(()),
        };
        let finished = queued.and_then(|()| inner.proto.finish(self.id));
        inner.after_command();
        finished.map_err(Into::into)
    }

    /// Waits until every queued message has been handed to the connection.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flushed(cx)).await
    }

    pub(crate) fn poll_flushed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.shared.lock();
        match inner.proto.poll_flushed(self.id) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                inner.park_channel(self.id, Wait::Write, cx.waker());
                inner.after_command();
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// Aborts both directions with `code`: queued and unread data is dropped, the peer's reads
    /// and sends fail with this code.
    pub fn reset(&mut self, code: ErrorCode, reason: &str) {
        self.ready.clear();
        let mut inner = self.shared.lock();
        inner.proto.reset(self.id, code, reason);
        inner.after_command();
    }

    /// Stops reading: what the peer sent and was not read is dropped, and the peer is told to
    /// stop sending (STOP, PROTOCOL.md section 4.9; a browser's `readable.cancel(code)`). The
    /// peer's writes then fail with [`crate::ChannelError::Stopped`]; this side may go on sending
    /// and finish as usual. Receiving afterwards fails with
    /// [`crate::ChannelError::LocallyStopped`].
    pub fn stop_receiving(&mut self, code: ErrorCode, reason: &str) {
        let mut inner = self.shared.lock();
        // Once the peer's FIN is in there is nothing to stop: what it sent stays readable,
        // messages read ahead included.
        if !inner.proto.fin_received(self.id) {
            self.ready.clear();
        }
        inner.proto.stop_receiving(self.id, code, reason);
        inner.after_command();
    }

    /// Turns the channel into a byte stream (`AsyncRead + AsyncWrite`) for tunnels and
    /// protocols that do their own framing. Message boundaries are ignored when reading; each
    /// write is sent as one message.
    pub fn into_io(self) -> ChannelIo {
        ChannelIo::new(self)
    }

    /// What was taken from the session but not handed out: a part-gathered message, or whole
    /// messages taken ahead, joined.
    pub(crate) fn take_partial(&mut self) -> Bytes {
        // A byte stream holds nothing against the session's bound (it reads part by part): what
        // was taken for it so far is the application's now.
        self.shared.lock().proto.release_held(self.id);
        if self.ready.is_empty() {
            return self.partial.take();
        }
        let mut joined = Vec::with_capacity(self.ready.iter().map(Bytes::len).sum());
        self.ready.drain(..).for_each(|m| joined.extend_from_slice(&m));
        Bytes::from(joined)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

/// The parts of a message that spans several frames. They are joined once, at the message's
/// end, into a buffer of exactly its size: growing one buffer part by part would copy a 1 MiB
/// message about twice.
#[derive(Debug, Default)]
struct Partial {
    parts: Vec<Bytes>,
    len: usize,
}

impl Partial {
    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn push(&mut self, part: Bytes) {
        self.len += part.len();
        self.parts.push(part);
    }

    /// The parts joined (without a copy when there is only one), leaving `self` empty.
    fn take(&mut self) -> Bytes {
        let len = std::mem::take(&mut self.len);
        match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts.pop().unwrap_or_default(),
            _ => {
                let mut joined = BytesMut::with_capacity(len);
                for part in self.parts.drain(..) {
                    joined.extend_from_slice(&part);
                }
                joined.freeze()
            }
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.end_lease(true);
        if self.released {
            return;
        }
        let mut inner = self.shared.lock();
        inner.proto.release(self.id);
        inner.channels.remove(&self.id);
        inner.after_command();
    }
}

impl Stream for Channel {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Result::transpose)
    }
}

impl Sink<Bytes> for Channel {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_send_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        self.get_mut().start_send(item).map_err(|e| e.error)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flushed(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        {
            let mut inner = this.shared.lock();
            inner.proto.finish(this.id)?;
            inner.after_command();
        }
        this.poll_flushed(cx)
    }
}

#[cfg(all(test, feature = "async-std"))]
mod tests {
    use crate::server::{Server, ServerConfig};
    use crate::{Config, Error, Session};

    /// A client session and the server's end of it, over loopback.
    async fn pair() -> (Session, Session, Server) {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.expect("bind");
        let url = format!("ws://{}/mux", server.local_addr());
        let (client, driver) =
            crate::client::connect(&url, Config::default()).await.expect("connect");
        crate::spawn(driver);
        let theirs = server.accept().await.expect("accept");
        (client, theirs, server)
    }

    #[test]
    fn recv_last_lets_go_of_the_channel_with_the_peers_last_message_only() -> Result<(), Error> {
        async_std::task::block_on(async {
            let (client, server, _listener) = pair().await;
            // The answer comes with the peer's FIN: released as it is read, before the drop.
            let mut ch = client.open("a").await?;
            ch.finish().await?;
            let mut theirs = server.accept().await.expect("incoming").accept();
            assert_eq!(theirs.recv().await?, None);
            theirs.finish_with("last").await.map_err(|e| e.error)?;
            assert_eq!(ch.recv_last().await?.as_deref(), Some(&b"last"[..]));
            assert_eq!(client.stats().open_channels, 0, "released while the handle lives");
            drop(ch);

            // The answer comes without FIN: the channel stays until dropped, which cancels it.
            let mut ch = client.open("b").await?;
            let mut theirs = server.accept().await.expect("incoming").accept();
            theirs.send("not last").await?;
            assert_eq!(ch.recv_last().await?.as_deref(), Some(&b"not last"[..]));
            assert_eq!(client.stats().open_channels, 1);
            drop(ch);
            match theirs.stopped().await {
                Error::Channel(crate::ChannelError::Reset { code, .. }) => {
                    assert_eq!(code, crate::ErrorCode::CANCEL)
                }
                other => panic!("expected a CANCEL reset, got {other:?}"),
            }
            Ok(())
        })
    }
}

//! The calling side: a [`Client`] on a session, and the objects of calls in progress.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, Stream};
use futures_timer::Delay;
use wsmux_proto::rpc::{CallHeader, CallMessage, Code};

use super::{
    data_message, deadline_after, timer_until, Bidi, ClientStreaming, ServerStreaming, Status,
    Unary,
};
use crate::channel::Channel;
use crate::codec::{Bincode, Codec};
use crate::session::{OpenOptions, Session};
use crate::ErrorCode;

/// Options of one call: a deadline and request headers.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    headers: Vec<(String, Bytes)>,
}

impl CallOptions {
    /// No deadline (unless the client has a default one) and no headers.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// The call fails with DEADLINE_EXCEEDED after `timeout`; the callee is told and stops.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a request header (names 1–255 bytes, values at most 65535 bytes, at most 64
    /// headers; a name may repeat).
    ///
    /// # Panics
    /// If the name or the value is outside those bounds, or this is the 65th header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        let (name, value) = (name.into(), value.into());
        assert!(self.headers.len() < wsmux_proto::rpc::MAX_HEADERS, "at most 64 headers");
        assert!(!name.is_empty() && name.len() <= 255, "a header name is 1-255 bytes: {name:?}");
        assert!(value.len() <= usize::from(u16::MAX), "a header value is at most 65535 bytes");
        self.headers.push((name, value));
        self
    }
}

/// Calls methods served at the other end of a session (either end may call, either may serve).
///
/// Cheap to clone. Calls wait for a free channel when the peer's channel limit is reached, so
/// the number in flight is bounded by the session, never by spawning.
pub struct Client<C = Bincode> {
    session: Session,
    codec: Arc<C>,
    timeout: Option<Duration>,
}

impl<C> Clone for Client<C> {
    fn clone(&self) -> Self {
        Client { session: self.session.clone(), codec: self.codec.clone(), timeout: self.timeout }
    }
}

impl<C> std::fmt::Debug for Client<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Client<Bincode> {
    /// A client on `session` with the default codec (bincode 2).
    pub fn new(session: Session) -> Self {
        Client::with_codec(session, Bincode)
    }
}

impl<C: Send + Sync + 'static> Client<C> {
    /// A client on `session` whose values go through `codec`.
    pub fn with_codec(session: Session, codec: C) -> Self {
        Client { session, codec: Arc::new(codec), timeout: None }
    }

    /// A deadline for every call that does not set its own. Default: none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The session the calls go over.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Calls `method` with `req` and waits for the answer.
    pub async fn unary<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
    ) -> Result<Resp, Status>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        self.unary_with(method, req, CallOptions::new()).await
    }

    /// [`Client::unary`] with options. The request and the answer are one WebSocket message
    /// each. Dropping the future cancels the call.
    pub async fn unary_with<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        options: CallOptions,
    ) -> Result<Resp, Status>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        let (deadline, metadata) = self.header(&options);
        let body = data_message(&*self.codec, req)?;
        let open = OpenOptions::new_static(method.name()).metadata(metadata).message(body).finish();
        with_deadline(deadline, async {
            let mut ch = self.session.open_with(open).await.map_err(|e| Status::from_error(&e))?;
            let answer = ch.recv_last().await.map_err(|e| Status::from_error(&e))?;
            single_answer(&mut ch, &*self.codec, answer)
        })
        .await
    }

    /// Calls `method` with `req`; the responses come as a stream. Dropping it cancels the call.
    pub async fn server_streaming<Req, Resp>(
        &self,
        method: &ServerStreaming<Req, Resp>,
        req: &Req,
        options: CallOptions,
    ) -> Result<Responses<Resp, C>, Status>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        let body = data_message(&*self.codec, req)?;
        let call = self.start(method.name(), Some(body), &options).await?;
        Ok(Responses { call, _types: PhantomData })
    }

    /// Starts a call to `method` whose requests you send one by one, then finish to get the
    /// answer.
    pub async fn client_streaming<Req, Resp>(
        &self,
        method: &ClientStreaming<Req, Resp>,
        options: CallOptions,
    ) -> Result<ClientStreamingCall<Req, Resp, C>, Status>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        let call = self.start(method.name(), None, &options).await?;
        Ok(ClientStreamingCall { call, _types: PhantomData })
    }

    /// Starts a call to `method` where requests and responses stream both ways.
    pub async fn bidi<Req, Resp>(
        &self,
        method: &Bidi<Req, Resp>,
        options: CallOptions,
    ) -> Result<BidiCall<Req, Resp, C>, Status>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        let call = self.start(method.name(), None, &options).await?;
        Ok(BidiCall { call, _types: PhantomData })
    }

    /// The deadline and the call header for `options`.
    fn header(&self, options: &CallOptions) -> (Option<Instant>, Bytes) {
        let timeout = options.timeout.or(self.timeout);
        let timeout_ms = timeout.map_or(0, |t| {
            // Rounded up, at least 1: 0 would mean no deadline.
            u32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(u32::MAX).max(1)
        });
        let header = CallHeader { timeout_ms, headers: options.headers.clone() };
        (deadline_after(timeout), header.encode())
    }

    async fn start(
        &self,
        method: &'static str,
        request: Option<Bytes>,
        options: &CallOptions,
    ) -> Result<Call<C>, Status> {
        let (deadline, metadata) = self.header(options);
        let mut open = OpenOptions::new_static(method).metadata(metadata);
        if let Some(request) = request {
            open = open.message(request).finish();
        }
        let ch = with_deadline(deadline, async {
            self.session.open_with(open).await.map_err(|e| Status::from_error(&e))
        })
        .await?;
        let timer = deadline.map(timer_until);
        Ok(Call { ch, codec: self.codec.clone(), timer, done: false, backlog: VecDeque::new() })
    }
}

/// Runs `call`, failing with DEADLINE_EXCEEDED (and dropping it, which cancels the call) when
/// `deadline` passes first.
async fn with_deadline<T>(
    deadline: Option<Instant>,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let Some(deadline) = deadline else { return call.await };
    let timer = timer_until(deadline);
    futures::select_biased! {
        result = call.fuse() => result,
        () = timer.fuse() => Err(Status::deadline_exceeded("deadline exceeded")),
    }
}

/// The one answer of a unary or client-streaming call.
fn single_answer<Resp, C: Codec<Resp>>(
    ch: &mut Channel,
    codec: &C,
    answer: Option<Bytes>,
) -> Result<Resp, Status> {
    let Some(msg) = answer else {
        return Err(Status::internal("the call ended without an answer"));
    };
    match CallMessage::decode(&msg) {
        Ok(CallMessage::Data(value)) => {
            codec.decode(value).map_err(|e| Status::internal(format!("undecodable answer: {e}")))
        }
        Ok(CallMessage::Status { code: Code::OK, .. }) => {
            Err(Status::internal("the call ended OK without an answer"))
        }
        Ok(CallMessage::Status { code, text }) => Err(Status::new(code, text)),
        Err(e) => {
            ch.reset(ErrorCode::PROTOCOL, "a malformed call message");
            Err(Status::internal(format!("a malformed answer: {e}")))
        }
    }
}

/// A call in progress: its channel, codec and deadline.
struct Call<C> {
    ch: Channel,
    codec: Arc<C>,
    timer: Option<Delay>,
    done: bool,
    /// Messages read ahead, looking for the callee's status after a failed send; they are
    /// still the application's, in order.
    backlog: VecDeque<Bytes>,
}

impl<C> Call<C> {
    /// Fails the call if its deadline passed: the callee is told (reset CANCEL).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Status> {
        let Some(timer) = &mut self.timer else { return Poll::Pending };
        if self.done || timer.poll_unpin(cx).is_pending() {
            return Poll::Pending;
        }
        self.done = true;
        self.ch.reset(ErrorCode::CANCEL, "deadline exceeded");
        Poll::Ready(Status::deadline_exceeded("deadline exceeded"))
    }

    /// The next response: `None` once the call ended OK, an error item once if it failed.
    fn poll_response<Resp>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Resp, Status>>>
    where
        C: Codec<Resp>,
    {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(status) = self.poll_deadline(cx) {
            return Poll::Ready(Some(Err(status)));
        }
        let next = match self.backlog.pop_front() {
            Some(msg) => Ok(Some(msg)),
            None => futures::ready!(self.ch.poll_recv(cx)),
        };
        let msg = match next {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Err(e) => {
                self.done = true;
                return Poll::Ready(Some(Err(Status::from_error(&e))));
            }
        };
        Poll::Ready(match CallMessage::decode(&msg) {
            Ok(CallMessage::Data(value)) => Some(
                self.codec
                    .decode(value)
                    .map_err(|e| Status::internal(format!("undecodable response: {e}"))),
            ),
            Ok(CallMessage::Status { code: Code::OK, .. }) => {
                self.done = true;
                None
            }
            Ok(CallMessage::Status { code, text }) => {
                self.done = true;
                Some(Err(Status::new(code, text)))
            }
            Err(e) => {
                self.done = true;
                self.ch.reset(ErrorCode::PROTOCOL, "a malformed call message");
                Some(Err(Status::internal(format!("a malformed response: {e}"))))
            }
        })
    }

    async fn send<Req>(&mut self, req: &Req) -> Result<(), Status>
    where
        C: Codec<Req>,
    {
        let msg = data_message(&*self.codec, req)?;
        let sent = poll_fn(|cx| {
            if let Poll::Ready(status) = self.poll_deadline(cx) {
                return Poll::Ready(Err(status));
            }
            self.ch.poll_send_ready(cx).map_err(|e| Status::from_error(&e))
        })
        .await;
        match sent.and_then(|()| self.ch.start_send(msg).map_err(|e| Status::from_error(&e.error)))
        {
            Ok(()) => Ok(()),
            // The callee may have ended the call already: its status says why.
            Err(status) => Err(self.callee_status().unwrap_or(status)),
        }
    }

    /// After a failed send or finish: the callee's failure status, if it has arrived. The
    /// messages read to find it stay queued for the application. Only once the callee is done
    /// sending (it finished, or the channel is reset): what it sent is then bounded by one
    /// window, whereas reading a live channel would return credit and let it send on, so
    /// repeated local failures could pile up its messages here.
    fn callee_status(&mut self) -> Option<Status> {
        if !(self.ch.fin_received() || self.ch.send_stopped()) {
            return None;
        }
        while let Some(Ok(Some(msg))) = self.ch.recv().now_or_never() {
            self.backlog.push_back(msg);
        }
        self.backlog.iter().find_map(|msg| match CallMessage::decode(msg) {
            Ok(CallMessage::Status { code, text }) if code != Code::OK => {
                Some(Status::new(code, text))
            }
            _ => None,
        })
    }

    /// Ends the requests, within the deadline. A callee that already ended the call (its FIN
    /// arrived) makes this a success: the responses tell the outcome.
    async fn finish(&mut self) -> Result<(), Status> {
        let finished = match self.ch.start_finish() {
            Err(e) => Err(e),
            // The outer error is the deadline (the call is over), the inner one the channel's.
            Ok(()) => {
                poll_fn(|cx| match self.poll_deadline(cx) {
                    Poll::Ready(status) => Poll::Ready(Err(status)),
                    Poll::Pending => self.ch.poll_flushed(cx).map(Ok),
                })
                .await?
            }
        };
        match finished {
            Ok(()) => Ok(()),
            Err(_) if self.ch.fin_received() => Ok(()),
            Err(e) => Err(self.callee_status().unwrap_or_else(|| Status::from_error(&e))),
        }
    }

    /// The one answer of a unary or client-streaming call, within the deadline.
    async fn answer<Resp>(&mut self) -> Result<Resp, Status>
    where
        C: Codec<Resp>,
    {
        let answer = match self.backlog.pop_front() {
            Some(msg) => Some(msg),
            None => {
                poll_fn(|cx| {
                    if let Poll::Ready(status) = self.poll_deadline(cx) {
                        return Poll::Ready(Err(status));
                    }
                    self.ch.poll_recv(cx).map_err(|e| Status::from_error(&e))
                })
                .await?
            }
        };
        single_answer(&mut self.ch, &*self.codec, answer)
    }
}

/// The responses of a server-streaming call: a [`Stream`] that ends (`None`) when the call
/// ended OK, or yields the call's failure once. Dropping it cancels the call.
pub struct Responses<Resp, C = Bincode> {
    call: Call<C>,
    _types: PhantomData<fn() -> Resp>,
}

impl<Resp, C: Codec<Resp>> Responses<Resp, C> {
    /// The next response (see the type's docs).
    pub async fn recv(&mut self) -> Option<Result<Resp, Status>> {
        poll_fn(|cx| self.call.poll_response(cx)).await
    }
}

impl<Resp, C: Codec<Resp>> Stream for Responses<Resp, C> {
    type Item = Result<Resp, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().call.poll_response(cx)
    }
}

impl<Resp, C> std::fmt::Debug for Responses<Resp, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responses").field("channel", &self.call.ch.id()).finish_non_exhaustive()
    }
}

/// A client-streaming call: send requests, then [`ClientStreamingCall::finish`] for the
/// answer. Dropping it cancels the call.
pub struct ClientStreamingCall<Req, Resp, C = Bincode> {
    call: Call<C>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp, C: Codec<Req> + Codec<Resp>> ClientStreamingCall<Req, Resp, C> {
    /// Sends one request; waits while the callee reads slowly.
    pub async fn send(&mut self, req: &Req) -> Result<(), Status> {
        self.call.send(req).await
    }

    /// Ends the requests and waits for the answer. (A callee may answer before all requests
    /// arrived; that answer is the call's outcome.)
    pub async fn finish(mut self) -> Result<Resp, Status> {
        self.call.finish().await?;
        self.call.answer().await
    }
}

impl<Req, Resp, C> std::fmt::Debug for ClientStreamingCall<Req, Resp, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStreamingCall")
            .field("channel", &self.call.ch.id())
            .finish_non_exhaustive()
    }
}

/// A bidirectional call: send requests and receive responses, in any order; finish to end the
/// requests. Dropping it cancels the call.
pub struct BidiCall<Req, Resp, C = Bincode> {
    call: Call<C>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp, C: Codec<Req> + Codec<Resp>> BidiCall<Req, Resp, C> {
    /// Sends one request; waits while the callee reads slowly.
    pub async fn send(&mut self, req: &Req) -> Result<(), Status> {
        self.call.send(req).await
    }

    /// Ends the requests; responses may still come.
    pub async fn finish(&mut self) -> Result<(), Status> {
        self.call.finish().await
    }

    /// The next response: `None` once the call ended OK, an error item once if it failed.
    pub async fn recv(&mut self) -> Option<Result<Resp, Status>> {
        poll_fn(|cx| self.call.poll_response(cx)).await
    }
}

impl<Req, Resp, C> std::fmt::Debug for BidiCall<Req, Resp, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BidiCall").field("channel", &self.call.ch.id()).finish_non_exhaustive()
    }
}

//! The serving side: a [`Router`] of typed handlers; a call that has to wait runs as its own
//! task.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use wsmux_proto::rpc::{status_message, CallHeader, CallMessage, Code};

use super::{data_message, Bidi, ClientStreaming, ServerStreaming, Status, Unary};
use crate::channel::Channel;
use crate::codec::{Bincode, Codec};
use crate::driver::Driver;
use crate::error::Error;
use crate::session::{AcceptNow, Incoming, Session};
use crate::{ChannelError, ErrorCode};

/// What a handler knows of its call.
#[derive(Debug, Clone)]
pub struct CallContext {
    method: &'static str,
    deadline: Option<Instant>,
    headers: Vec<(String, Bytes)>,
    session: Session,
}

impl CallContext {
    /// The method's name.
    pub fn method(&self) -> &str {
        self.method
    }

    /// When the caller stops waiting (the handler is stopped then), if the caller set one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The request headers, in order.
    pub fn headers(&self) -> &[(String, Bytes)] {
        &self.headers
    }

    /// The first request header called `name`.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The session the call came on: a handler may call the caller back through it.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// How a call's work ended, short of an answer.
enum Stop {
    /// Answer with this status.
    Answer(Status),
    /// The caller is gone (it reset the call, or the session ended): answer nothing.
    Gone,
    /// The caller broke the protocol of the call: reset it with PROTOCOL.
    Broken(&'static str),
}

impl From<Status> for Stop {
    fn from(status: Status) -> Stop {
        Stop::Answer(status)
    }
}

/// The call's channel, shared by the task running the call and the handler's [`Requests`] and
/// [`Sender`] (all in that one task: the lock is never contended, and never held across a
/// wait).
#[derive(Clone)]
struct CallChannel(Arc<Mutex<Channel>>);

impl CallChannel {
    fn lock(&self) -> MutexGuard<'_, Channel> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next request of the call, read and decoded by `codec` (which may fail):
    /// `Ok(None)` at the caller's FIN.
    fn poll_request<Req, C: Codec<Req>>(
        &self,
        cx: &mut Context<'_>,
        codec: &C,
    ) -> Poll<Result<Option<Result<Req, Status>>, Stop>> {
        self.lock().poll_recv(cx).map(|r| match r {
            Ok(Some(msg)) => match CallMessage::decode(&msg) {
                Ok(CallMessage::Data(value)) => Ok(Some(
                    codec.decode(value).map_err(|e| Status::invalid_argument(e.to_string())),
                )),
                Ok(CallMessage::Status { .. }) => Err(Stop::Broken("a STATUS from the caller")),
                Err(_) => Err(Stop::Broken("a malformed call message")),
            },
            Ok(None) => Ok(None),
            Err(_) => Err(Stop::Gone),
        })
    }

    /// Sends one streamed answer. One larger than the caller accepts is not attempted: the
    /// error ends the call with a RESOURCE_EXHAUSTED status (a refused send would turn the end
    /// into a reset).
    async fn send(&self, msg: Bytes) -> Result<(), Error> {
        self.lock().check_send(msg.len())?;
        poll_fn(|cx| self.lock().poll_send_ready(cx)).await?;
        self.lock().start_send(msg).map_err(|e| e.error)
    }

    /// Ends the call: `last` (an answer or a status) and FIN leave together. An answer larger
    /// than the caller accepts becomes a RESOURCE_EXHAUSTED status.
    fn finish(&self, last: Option<Bytes>) {
        let mut ch = self.lock();
        // Checked before it is sent: a refused send would make the end a reset (LIMIT) instead
        // of the status that says why.
        let last = match last {
            Some(msg) => match ch.check_send(msg.len()) {
                Err(e @ Error::Channel(ChannelError::MessageTooLarge { .. })) => {
                    let status = Status::from_error(&e);
                    Some(status_message(status.code(), status.message()))
                }
                _ => Some(msg),
            },
            None => None,
        };
        let _ = ch.send_last_now(last);
    }
}

/// Runs `work` until it ends, the caller gives up, or the deadline passes.
async fn run_call<T>(
    chan: &CallChannel,
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T, Stop>>,
) -> Result<T, Stop> {
    let mut work = pin!(AssertUnwindSafe(work).catch_unwind());
    let mut timer = deadline.map(super::timer_until);
    poll_fn(|cx| {
        if let Poll::Ready(result) = work.as_mut().poll(cx) {
            return Poll::Ready(
                result.unwrap_or_else(|_| {
                    Err(Stop::Answer(Status::internal("the handler panicked")))
                }),
            );
        }
        if chan.lock().poll_stopped(cx).is_ready() {
            return Poll::Ready(Err(Stop::Gone));
        }
        if let Some(timer) = &mut timer {
            if timer.poll_unpin(cx).is_ready() {
                return Poll::Ready(Err(Stop::Answer(Status::deadline_exceeded(
                    "deadline exceeded",
                ))));
            }
        }
        Poll::Pending
    })
    .await
}

/// Answers the call as its work ended and lets go of the channel.
fn end_call(chan: &CallChannel, result: Result<Option<Bytes>, Stop>) {
    match result {
        Ok(last) => chan.finish(last),
        Err(Stop::Answer(status)) => {
            chan.finish(Some(status_message(status.code(), status.message())));
        }
        Err(Stop::Gone) => {}
        Err(Stop::Broken(why)) => chan.lock().reset(ErrorCode::PROTOCOL, why),
    }
}

/// The one request of a unary or server-streaming call.
async fn read_request<Req, C: Codec<Req>>(chan: &CallChannel, codec: &C) -> Result<Req, Stop> {
    match poll_fn(|cx| chan.poll_request(cx, codec)).await? {
        Some(request) => request.map_err(Stop::from),
        None => Err(Status::invalid_argument("the call carried no request").into()),
    }
}

/// The stream of requests of a client-streaming or bidirectional call. It ends (`None`) at the
/// caller's FIN. A request that does not decode is an `INVALID_ARGUMENT` item; the next ones
/// still come.
pub struct Requests<Req, C = Bincode> {
    chan: CallChannel,
    codec: Arc<C>,
    /// The caller finished, left, or broke the call: nothing more comes.
    done: bool,
    _types: PhantomData<fn() -> Req>,
}

impl<Req, C> Requests<Req, C> {
    fn new(chan: &CallChannel, codec: Arc<C>) -> Self {
        Requests { chan: chan.clone(), codec, done: false, _types: PhantomData }
    }
}

impl<Req, C: Codec<Req>> Requests<Req, C> {
    /// The next request; `None` once the caller has finished.
    pub async fn recv(&mut self) -> Option<Result<Req, Status>> {
        poll_fn(|cx| self.poll_request(cx)).await
    }

    /// The next request; after the caller's end, its departure or a broken call (one error
    /// item), `None` for good.
    fn poll_request(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Req, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match futures::ready!(self.chan.poll_request(cx, &*self.codec)) {
            Ok(Some(request)) => return Poll::Ready(Some(request)),
            Ok(None) => None,
            Err(Stop::Broken(why)) => {
                self.chan.lock().reset(ErrorCode::PROTOCOL, why);
                Some(Err(Status::internal(why)))
            }
            Err(_) => Some(Err(Status::cancelled("the caller is gone"))),
        };
        self.done = true;
        Poll::Ready(item)
    }
}

impl<Req, C: Codec<Req>> Stream for Requests<Req, C> {
    type Item = Result<Req, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_request(cx)
    }
}

impl<Req, C> std::fmt::Debug for Requests<Req, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests").finish_non_exhaustive()
    }
}

/// Sends the responses of a server-streaming or bidirectional call. The call ends when the
/// handler returns: with FIN on `Ok(())`, with a status on `Err`.
pub struct Sender<Resp, C = Bincode> {
    chan: CallChannel,
    codec: Arc<C>,
    _types: PhantomData<fn(Resp)>,
}

impl<Resp, C> Sender<Resp, C> {
    fn new(chan: &CallChannel, codec: Arc<C>) -> Self {
        Sender { chan: chan.clone(), codec, _types: PhantomData }
    }
}

impl<Resp, C: Codec<Resp>> Sender<Resp, C> {
    /// Sends one response; waits while the caller reads slowly. Fails with CANCELLED once the
    /// caller is gone (the handler is stopped then anyway), RESOURCE_EXHAUSTED if the message is
    /// larger than the caller accepts.
    pub async fn send(&mut self, value: &Resp) -> Result<(), Status> {
        let msg = data_message(&*self.codec, value)?;
        self.chan.send(msg).await.map_err(|e| Status::from_error(&e))
    }
}

impl<Resp, C> std::fmt::Debug for Sender<Resp, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// Runs one call; the [`InFlight`] guard lives as long as the call's future.
type Handler = dyn Fn(CallChannel, CallContext, InFlight) -> BoxFuture<'static, ()> + Send + Sync;

/// Handlers by method name. Build it with [`Router::unary`] and its siblings, then
/// [`Router::serve`] a session (or [`Router::serve_connection`] a server's connection): a call
/// that answers at once ends in the serving loop, one that has to wait runs as its own task, at
/// most [`Router::max_in_flight`] at once per session (past that, a call is answered
/// RESOURCE_EXHAUSTED at once). A method the router does not know is answered UNIMPLEMENTED.
pub struct Router<C = Bincode> {
    methods: HashMap<&'static str, Arc<Handler>>,
    codec: Arc<C>,
    max_in_flight: usize,
    otherwise: Option<Arc<Otherwise>>,
}

/// What serves a channel whose route is no method of the router.
type Otherwise = dyn Fn(Incoming) -> BoxFuture<'static, ()> + Send + Sync;

impl<C> Clone for Router<C> {
    /// A router with the same handlers, for serving another session.
    fn clone(&self) -> Self {
        Router {
            methods: self.methods.clone(),
            codec: self.codec.clone(),
            max_in_flight: self.max_in_flight,
            otherwise: self.otherwise.clone(),
        }
    }
}

impl<C> std::fmt::Debug for Router<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut methods: Vec<_> = self.methods.keys().collect();
        methods.sort();
        f.debug_struct("Router")
            .field("methods", &methods)
            .field("max_in_flight", &self.max_in_flight)
            .field("otherwise", &self.otherwise.is_some())
            .finish()
    }
}

impl Router<Bincode> {
    /// An empty router with the default codec (bincode 2).
    pub fn new() -> Self {
        Router::with_codec(Bincode)
    }
}

impl Default for Router<Bincode> {
    fn default() -> Self {
        Router::new()
    }
}

/// The default bound on calls running at once per session: the default number of channels a
/// session accepts, so a well-behaved peer never sees RESOURCE_EXHAUSTED.
const DEFAULT_MAX_IN_FLIGHT: usize = 256;

impl<C: Send + Sync + 'static> Router<C> {
    /// An empty router whose handlers' values go through `codec`.
    pub fn with_codec(codec: C) -> Self {
        Router {
            methods: HashMap::new(),
            codec: Arc::new(codec),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            otherwise: None,
        }
    }

    /// Hands every channel whose route is none of the router's methods to `handler` instead of
    /// answering it UNIMPLEMENTED, so one session carries calls and plain channels (a tunnel,
    /// a file transfer) side by side. The handler's future runs like a call that has to wait
    /// (as its own task), outside the `max_in_flight` bound: the session's channel limit
    /// bounds those channels.
    pub fn otherwise<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Incoming) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.otherwise = Some(Arc::new(move |incoming| handler(incoming).boxed()));
        self
    }

    /// Adds every method of `other`, each keeping its own codec, so one session serves methods
    /// of several codecs (bincode for Rust peers, [`Json`](crate::Json) for browsers). `other`'s
    /// [`Router::otherwise`] handler is used only if this router has none; its limit of calls in
    /// flight gives way to this one's.
    ///
    /// # Panics
    ///
    /// If both routers have a method of the same name.
    pub fn merge<C2>(mut self, other: Router<C2>) -> Self {
        for (name, handler) in other.methods {
            self = self.add(name, handler);
        }
        if self.otherwise.is_none() {
            self.otherwise = other.otherwise;
        }
        self
    }

    /// At most `n` calls run at once per served session; past that a call is answered
    /// RESOURCE_EXHAUSTED without running. Default 256 (the default channel limit).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    fn add(mut self, name: &'static str, handler: Arc<Handler>) -> Self {
        let max = wsmux_proto::frame::MAX_ROUTE_LEN;
        assert!(!name.is_empty() && name.len() <= max, "a method name is 1-{max} bytes: {name:?}");
        assert!(self.methods.insert(name, handler).is_none(), "method {name:?} registered twice");
        self
    }

    /// Registers a method whose call runs the work `make` builds, under the call's deadline and
    /// watch for the caller leaving; the work's result ends the call (section 17 of the spec).
    fn route<M, W>(self, name: &'static str, make: M) -> Self
    where
        M: Fn(CallChannel, Arc<C>, CallContext) -> W + Send + Sync + 'static,
        W: Future<Output = Result<Option<Bytes>, Stop>> + Send + 'static,
    {
        let codec = self.codec.clone();
        self.add(
            name,
            Arc::new(move |chan: CallChannel, ctx: CallContext, in_flight: InFlight| {
                let deadline = ctx.deadline;
                let work = make(chan.clone(), codec.clone(), ctx);
                async move {
                    let _in_flight = in_flight;
                    let result = run_call(&chan, deadline, work).await;
                    end_call(&chan, result);
                }
                .boxed()
            }),
        )
    }

    /// Serves `method` with `handler`: one request in, one response out.
    pub fn unary<Req, Resp, F, Fut>(self, method: Unary<Req, Resp>, handler: F) -> Self
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        C: Codec<Req> + Codec<Resp>,
        F: Fn(Req, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.route(method.name(), move |chan, codec, ctx| {
            let handler = handler.clone();
            async move {
                let req: Req = read_request(&chan, &*codec).await?;
                let resp = handler(req, ctx).await?;
                Ok(Some(data_message(&*codec, &resp)?))
            }
        })
    }

    /// Serves `method` with `handler`: one request in, responses out through a [`Sender`]
    /// until the handler returns.
    pub fn server_streaming<Req, Resp, F, Fut>(
        self,
        method: ServerStreaming<Req, Resp>,
        handler: F,
    ) -> Self
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        C: Codec<Req> + Codec<Resp>,
        F: Fn(Req, Sender<Resp, C>, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.route(method.name(), move |chan, codec, ctx| {
            let handler = handler.clone();
            async move {
                let req: Req = read_request(&chan, &*codec).await?;
                handler(req, Sender::new(&chan, codec), ctx).await?;
                Ok(None)
            }
        })
    }

    /// Serves `method` with `handler`: requests in through [`Requests`], one response out.
    pub fn client_streaming<Req, Resp, F, Fut>(
        self,
        method: ClientStreaming<Req, Resp>,
        handler: F,
    ) -> Self
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        C: Codec<Req> + Codec<Resp>,
        F: Fn(Requests<Req, C>, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.route(method.name(), move |chan, codec, ctx| {
            let handler = handler.clone();
            async move {
                let resp = handler(Requests::new(&chan, codec.clone()), ctx).await?;
                Ok(Some(data_message(&*codec, &resp)?))
            }
        })
    }

    /// Serves `method` with `handler`: requests in through [`Requests`] and responses out
    /// through a [`Sender`], at the same time, until the handler returns.
    pub fn bidi<Req, Resp, F, Fut>(self, method: Bidi<Req, Resp>, handler: F) -> Self
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        C: Codec<Req> + Codec<Resp>,
        F: Fn(Requests<Req, C>, Sender<Resp, C>, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.route(method.name(), move |chan, codec, ctx| {
            let handler = handler.clone();
            async move {
                let requests = Requests::new(&chan, codec.clone());
                handler(requests, Sender::new(&chan, codec), ctx).await?;
                Ok(None)
            }
        })
    }

    /// Serves the calls that arrive on `session` until it closes. Every channel the peer opens
    /// on `session` is taken as a call. A call is first polled right here: one that answers at
    /// once ends without a task of its own, one that has to wait becomes a task on the runtime
    /// the features select. So a handler runs in this loop until its first wait: one that
    /// computes at length first holds up the calls that come after it meanwhile, and should
    /// move that work to a task of its own (or a blocking pool).
    #[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
    pub fn serve(self, session: Session) -> impl Future<Output = ()> + Send {
        self.serve_with(session, super::spawn_call)
    }

    /// [`Router::serve`] with your own way to run a call that has to wait: `spawn` gets only
    /// those calls' futures. Every call's first poll runs in this loop, outside whatever
    /// `spawn` sets up (a span, task-local values, another runtime's context): a handler that
    /// needs those before its first wait does not get them.
    pub fn serve_with<S>(self, session: Session, spawn: S) -> impl Future<Output = ()> + Send
    where
        S: Fn(BoxFuture<'static, ()>) + Send,
    {
        let in_flight = Arc::new(AtomicUsize::new(0));
        async move {
            while let Some(incoming) = session.accept().await {
                if let Some(mut call) = self.prepare(incoming, &session, &in_flight) {
                    if poll_fn(|cx| Poll::Ready(poll_first(&mut call, cx))).await.is_pending() {
                        spawn(call);
                    }
                }
            }
        }
    }

    /// Runs one connection: its driver and the calls that arrive on it, in ONE future, to spawn
    /// in place of the driver and [`Router::serve`]. A call that answers at once (a unary
    /// request arrives whole with its open) runs within this future: no task of its own, no
    /// hand-off between tasks, the answer written straight away, before the driver reads the
    /// socket again (when wsmux set the connection up, the read that would find it empty comes
    /// after the answer). A call that has to wait becomes a task on the runtime the features
    /// select. Resolves as the driver does.
    ///
    /// The price: a handler runs on the connection's task until its first wait, so one that
    /// computes at length before awaiting anything holds up the whole connection meanwhile
    /// (with [`Router::serve`], only the calls after it): have such a handler move the work to
    /// a task of its own. Only the driver reads the socket of such a session:
    /// [`Config::caller_reads`](crate::Config::caller_reads) is turned off for it.
    ///
    /// # Panics
    ///
    /// If `driver` is not the driver of `session`'s connection: the calls would never come.
    #[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
    pub fn serve_connection(
        self,
        session: Session,
        driver: Driver,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.serve_connection_with(session, driver, super::spawn_call)
    }

    /// [`Router::serve_connection`] with your own way to run a call that has to wait.
    pub fn serve_connection_with<S>(
        self,
        session: Session,
        mut driver: Driver,
        spawn: S,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Fn(BoxFuture<'static, ()>) + Send,
    {
        assert!(driver.drives(&session), "serve_connection: the driver of another connection");
        // Calls then arrive only through the driver's reads (a call waiting alone for its
        // next request does not read the socket itself, see `Config::caller_reads`).
        session.shared().stop_caller_reads();
        let in_flight = Arc::new(AtomicUsize::new(0));
        // Held while calls may come: dropped once the session closes, like `serve`'s.
        let mut session = Some(session);
        poll_fn(move |cx| {
            // Polls that stop reading once they have calls (see `Driver::poll_early`): their
            // answers go out before the read that finds the socket empty. Then the driver is
            // polled again at once, to read on; all of them read one budget's worth of
            // messages at most, then the driver wakes this task to read on later.
            let mut budget = crate::driver::READ_BUDGET;
            loop {
                let (done, stopped_early) = driver.poll_early(cx, &mut budget);
                // Calls arrive only through the driver's reads, so looking after each of its polls
                // finds every one: no waker to park, none to wake.
                while let Some(current) = &session {
                    let next = match current.accept_now() {
                        AcceptNow::Incoming(incoming) => Some(incoming),
                        AcceptNow::Empty(_) => break,
                        AcceptNow::Closed => None,
                    };
                    let Some(incoming) = next else {
                        session = None;
                        break;
                    };
                    if let Some(mut call) = self.prepare(incoming, current, &in_flight) {
                        if poll_first(&mut call, cx).is_pending() {
                            spawn(call);
                        }
                    }
                }
                if !stopped_early {
                    return done;
                }
            }
        })
    }

    /// The call an open starts, or `None` if it was answered at once (unknown method, too many
    /// calls, a malformed call header).
    fn prepare(
        &self,
        incoming: Incoming,
        session: &Session,
        in_flight: &Arc<AtomicUsize>,
    ) -> Option<BoxFuture<'static, ()>> {
        let answer_now = |incoming: Incoming, status: Status| {
            let msg = status_message(status.code(), status.message());
            let _ = incoming.accept().send_last_now(Some(msg));
            None
        };
        let Some((&method, handler)) = self.methods.get_key_value(incoming.route()) else {
            if let Some(otherwise) = &self.otherwise {
                return Some(otherwise(incoming));
            }
            let status =
                Status::new(Code::UNIMPLEMENTED, format!("no method {:?}", incoming.route()));
            return answer_now(incoming, status);
        };
        if in_flight.load(Ordering::Acquire) >= self.max_in_flight {
            let status = Status::resource_exhausted(format!(
                "{} calls in flight, the most this server runs at once",
                self.max_in_flight
            ));
            return answer_now(incoming, status);
        }
        let header = match CallHeader::decode(incoming.metadata()) {
            Ok(header) => header,
            Err(e) => {
                return answer_now(incoming, Status::invalid_argument(format!("call header: {e}")))
            }
        };
        let timeout = Duration::from_millis(u64::from(header.timeout_ms));
        let deadline = super::deadline_after((header.timeout_ms > 0).then_some(timeout));
        let ctx =
            CallContext { method, deadline, headers: header.headers, session: session.clone() };
        let guard = InFlight::enter(in_flight.clone());
        let chan = CallChannel(Arc::new(Mutex::new(incoming.accept())));
        Some(handler(chan, ctx, guard))
    }
}

/// Polls a call once in the serving task. A handler's panic is already caught inside the call
/// (it answers INTERNAL); this guards the serving loop, and with `serve_connection` the
/// connection's driver, against a panic in the call's own code: it ends the call only.
fn poll_first(call: &mut BoxFuture<'static, ()>, cx: &mut Context<'_>) -> Poll<()> {
    let poll = std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx)));
    poll.unwrap_or(Poll::Ready(()))
}

/// Counts one running call while it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

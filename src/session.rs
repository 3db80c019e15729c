//! `Session`: the application's handle to one multiplexed connection.

use std::collections::hash_map::RandomState;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures::io::{AsyncRead, AsyncWrite};

use wsmux_proto::{ChannelId, ErrorCode, OpenError, Session as Proto, SessionError, Side, Stats};

use crate::channel::Channel;
use crate::config::Config;
use crate::driver::Driver;
use crate::error::Error;
use crate::shared::{park_in, Shared};

/// A handle to one wsmux session: opens and accepts channels.
///
/// Cheap to clone; all clones drive the same connection. Dropping the last `Session` handle
/// closes the session gracefully: GOAWAY, no new channels, open channels finish, then the
/// WebSocket closes. Channels keep working until they end.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), wsmux::Error> {
/// let (session, driver) = wsmux::client::connect("ws://127.0.0.1:9000/mux", Default::default()).await?;
/// wsmux::spawn(driver);
/// let mut ch = session.open("echo").await?;
/// ch.send(bytes::Bytes::from_static(b"hi")).await?;
/// assert_eq!(ch.recv().await?.as_deref(), Some(&b"hi"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Session {
    shared: Shared,
}

/// What to open: route, metadata, and optionally a first message that leaves with the OPEN.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    route: std::borrow::Cow<'static, str>,
    metadata: Bytes,
    message: Option<Bytes>,
    finish: bool,
}

impl OpenOptions {
    /// Opens `route` with no metadata and no first message.
    pub fn new(route: impl Into<String>) -> Self {
        Self::with_route(std::borrow::Cow::Owned(route.into()))
    }

    /// Opens a route known at compile time (an RPC method): the route is never copied.
    pub(crate) fn new_static(route: &'static str) -> Self {
        Self::with_route(std::borrow::Cow::Borrowed(route))
    }

    fn with_route(route: std::borrow::Cow<'static, str>) -> Self {
        OpenOptions { route, metadata: Bytes::new(), message: None, finish: false }
    }

    /// Opaque bytes for the acceptor (at most 65535; the peer's limit is 16 KiB by default).
    pub fn metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// A first message, sent in the same frame as the OPEN when it fits.
    pub fn message(mut self, message: impl Into<Bytes>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Finishes the sending side right after the first message: with [`OpenOptions::message`]
    /// this is a whole request in ONE WebSocket message.
    pub fn finish(mut self) -> Self {
        self.finish = true;
        self
    }
}

impl Session {
    /// Starts a client session on a WebSocket that completed its handshake (with the
    /// `wsmux.v1` subprotocol). Spawn the returned driver.
    pub fn client<S>(ws: WebSocketStream<S>, config: Config) -> (Session, Driver)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::start(Side::Client, ws, config, None)
    }

    /// Starts a server session on an accepted WebSocket. Spawn the returned driver.
    pub fn server<S>(ws: WebSocketStream<S>, config: Config) -> (Session, Driver)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::start(Side::Server, ws, config, None)
    }

    /// Starts a session; with `clock` (the transport's write progress, when wsmux wrapped the
    /// transport itself) the driver enforces [`Config::write_timeout`].
    pub(crate) fn start<S>(
        side: Side,
        ws: WebSocketStream<S>,
        config: Config,
        clock: Option<Arc<crate::progress::Clock>>,
    ) -> (Session, Driver)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut protocol = config.protocol.clone();
        // A seed the peer cannot know for the channel table (see `proto::Config::hash_seed`).
        protocol.hash_seed = std::hash::BuildHasher::hash_one(&RandomState::new(), Instant::now());
        let proto = Proto::new(side, protocol, Instant::now());
        let shared = Shared::new(proto, config.caller_reads);
        shared.add_session_handle();
        let driver =
            Driver::new(ws, shared.clone(), config.close_timeout, config.write_timeout, clock);
        (Session { shared }, driver)
    }

    /// The upgrade request a server session came from: path, query, headers (cookies, Origin).
    /// `None` on a client session, and on one started with [`Session::server`] directly.
    pub fn upgrade_request(&self) -> Option<&crate::server::UpgradeRequest> {
        self.shared.peer().map(|p| &p.request)
    }

    /// What the server's authorization hook ([`crate::server::ServerConfig::authorize`])
    /// granted this session, if it is a `T`: the user, claims, tenant... `None` on a client
    /// session or without a hook.
    pub fn auth<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.shared.peer()?.grant.as_deref()?.downcast_ref()
    }

    /// Which end this is.
    pub fn side(&self) -> Side {
        self.shared.lock().proto.side()
    }

    /// Opens a channel to `route`. Returns at once: no round trip, data may follow right away.
    /// Waits only while the peer's limit of concurrent channels is reached (until the peer's
    /// SETTINGS arrive, its limit is taken to be one channel: they come first on the wire).
    pub async fn open(&self, route: &str) -> Result<Channel, Error> {
        self.open_with(OpenOptions::new(route)).await
    }

    /// Opens a channel with metadata and possibly a first message (see [`OpenOptions`]).
    pub async fn open_with(&self, options: OpenOptions) -> Result<Channel, Error> {
        let mut options = Some(options);
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            let o = options.as_ref().expect("not polled once ready");
            let message_len = o.message.as_ref().map(Bytes::len);
            // Checked first, so the buffers move into proto once (a clone could allocate).
            match inner.proto.check_open(&o.route, o.metadata.len(), message_len) {
                Ok(()) => {}
                Err(OpenError::TooManyChannels(_)) => {
                    park_in(&mut inner.open, cx.waker());
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            let OpenOptions { route, metadata, message, finish } =
                options.take().expect("not polled once ready");
            let id = inner.proto.open(route, metadata, message, finish)?;
            inner.after_command();
            Poll::Ready(Ok(Channel::new(self.shared.clone(), id)))
        })
        .await
    }

    /// Opens a channel without waiting: fails with [`OpenError::TooManyChannels`] at the limit
    /// (one channel until the peer's SETTINGS have arrived).
    pub fn try_open(&self, options: OpenOptions) -> Result<Channel, Error> {
        let mut inner = self.shared.lock();
        let id =
            inner.proto.open(options.route, options.metadata, options.message, options.finish)?;
        inner.after_command();
        Ok(Channel::new(self.shared.clone(), id))
    }

    /// The next channel the peer opened, or `None` once the session is closing or closed.
    /// Accept or refuse it; dropping an [`Incoming`] refuses it with REFUSED.
    pub async fn accept(&self) -> Option<Incoming> {
        poll_fn(|cx| match self.accept_now() {
            AcceptNow::Incoming(incoming) => Poll::Ready(Some(incoming)),
            AcceptNow::Closed => Poll::Ready(None),
            AcceptNow::Empty(mut inner) => {
                park_in(&mut inner.accept, cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// The next channel the peer opened if one is waiting, without waiting.
    pub(crate) fn accept_now(&self) -> AcceptNow<'_> {
        let mut inner = self.shared.lock();
        if let Some(incoming) = inner.proto.accept() {
            inner.after_command();
            return AcceptNow::Incoming(Incoming {
                shared: self.shared.clone(),
                id: incoming.id,
                route: incoming.route,
                metadata: incoming.metadata,
                taken: false,
            });
        }
        if inner.proto.is_closing() || inner.driver_gone {
            return AcceptNow::Closed;
        }
        AcceptNow::Empty(inner)
    }

    /// Closes the session gracefully: GOAWAY with `code` and `reason`, incoming channels not
    /// yet accepted are refused, no new channels either way, open channels finish within the
    /// drain timeout, then the WebSocket closes. Calling it again does nothing.
    pub fn close(&self, code: ErrorCode, reason: &str) {
        self.shared.close(code, reason, None);
    }

    /// Waits until the session has ended; `None` if it ended cleanly.
    pub async fn closed(&self) -> Option<SessionError> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.proto.is_closed() || inner.driver_gone {
                return Poll::Ready(inner.proto.error().cloned());
            }
            park_in(&mut inner.closed, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Measures the round-trip time now: sends a wsmux PING (or waits for the one already on
    /// its way) and returns the time its answer took. Fails if the session ends first.
    pub async fn ping(&self) -> Result<std::time::Duration, Error> {
        let before = {
            let mut inner = self.shared.lock();
            inner.proto.ping(Instant::now());
            inner.after_command();
            inner.proto.pings_answered()
        };
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.proto.pings_answered() > before {
                if let Some(rtt) = inner.proto.stats().rtt {
                    return Poll::Ready(Ok(rtt));
                }
            }
            if inner.proto.is_closed() || inner.driver_gone {
                let err = inner.proto.error().cloned().unwrap_or(SessionError::LocallyClosed);
                return Poll::Ready(Err(err.into()));
            }
            park_in(&mut inner.pong, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().proto.is_closed()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Counters: frames, bytes, channels, resets, and the round-trip time.
    pub fn stats(&self) -> Stats {
        self.shared.lock().proto.stats()
    }
}

impl Clone for Session {
    fn clone(&self) -> Self {
        self.shared.add_session_handle();
        Session { shared: self.shared.clone() }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.shared.drop_session_handle() {
            let mut inner = self.shared.lock();
            inner.proto.close(Instant::now(), ErrorCode::NO_ERROR, "session dropped");
            inner.after_command();
        }
    }
}

/// What [`Session::accept_now`] found.
pub(crate) enum AcceptNow<'a> {
    Incoming(Incoming),
    /// None waiting: the lock is still held, to park a waker without a race.
    Empty(crate::shared::Guard<'a>),
    /// The session is closing or closed: no more will come.
    Closed,
}

/// A channel the peer opened, waiting to be accepted or refused.
#[derive(Debug)]
pub struct Incoming {
    shared: Shared,
    id: ChannelId,
    route: String,
    metadata: Bytes,
    taken: bool,
}

impl Incoming {
    /// The route the peer asked for.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The peer's metadata.
    pub fn metadata(&self) -> &Bytes {
        &self.metadata
    }

    /// The channel's id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Accepts the channel. Nothing is sent: the peer did not wait.
    pub fn accept(mut self) -> Channel {
        self.taken = true;
        // `taken` keeps Drop from refusing; the channel handle takes over the release.
        Channel::new(self.shared.clone(), self.id)
    }

    /// Refuses the channel with `code` (NOT_FOUND for an unknown route, REFUSED to say "retry
    /// later") and a short reason. Data the peer already sent is dropped.
    pub fn refuse(mut self, code: ErrorCode, reason: &str) {
        self.refuse_once(code, reason);
    }

    fn refuse_once(&mut self, code: ErrorCode, reason: &str) {
        if std::mem::replace(&mut self.taken, true) {
            return;
        }
        let mut inner = self.shared.lock();
        inner.proto.refuse(Instant::now(), self.id, code, reason);
        inner.channels.remove(&self.id);
        inner.after_command();
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.refuse_once(ErrorCode::REFUSED, "not accepted");
    }
}

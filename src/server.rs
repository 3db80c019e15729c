//! The server endpoint: listen, upgrade with subprotocol negotiation and an Origin policy,
//! and hand out sessions.

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use futures::FutureExt;

use crate::config::Config;
use crate::driver::Driver;
use crate::error::Error;
use crate::handshake::{self, HeadError, Refusal};
use crate::origin::{is_trusted, Via};
use crate::session::Session;

pub use crate::handshake::{UpgradeRequest, SUBPROTOCOL};
pub use crate::origin::OriginPolicy;

/// Configuration of a server: the sessions' config plus the upgrade policy and server limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Configuration of every session (its `handshake_timeout` bounds each upgrade). Its
    /// `protocol.memory_budget` is the server-wide memory budget every session shares (see
    /// [`ServerConfig::memory_budget`]).
    pub session: Config,
    /// The one URL path that serves wsmux; `None` accepts any path. Default `/mux`.
    pub path: Option<String>,
    /// Which browser origins may connect. Default: same host only; a request without Origin
    /// (not a browser) is allowed. An allow-list entry that can never match is an
    /// [`Error::Config`] from [`Server::bind`] and [`accept`].
    pub origins: OriginPolicy,
    /// Reverse proxies whose forwarding headers are believed: for a connection from one of
    /// these addresses, the host and scheme the Origin policy compares with come from
    /// `Forwarded` (`host=`, `proto=`; its last element) or `X-Forwarded-Host` /
    /// `X-Forwarded-Proto`, instead of `Host` (such a proxy must set or strip all three: a
    /// client's own `Forwarded` passed through would win). Default none: behind a proxy, either list it
    /// here or have it pass the browser's Host on (nginx: `proxy_set_header Host $http_host;`).
    /// Only [`Server`] and [`accept_from`] know the peer's address; [`accept`] never trusts.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Upgrades in progress at once; more connections are answered 503 at once (and past as
    /// many 503 answers in progress, closed without one). Default 256
    /// (slowloris clients hold at most this many slots, each for at most the timeout).
    pub max_pending_handshakes: usize,
    /// Live sessions at once; more are answered 503. Default 10,000: an idle session costs
    /// about 36 KiB (`examples/bench mem-connections`), so about 360 MiB and as many file
    /// descriptors at the bound.
    pub max_sessions: usize,
    /// Sessions upgraded and waiting for [`Server::accept`]. Default 128, like a `listen(2)`
    /// backlog: past it the upgrade task waits, and the pending-handshake bound applies.
    pub accept_backlog: usize,
    /// Largest upgrade request head (request line, headers and the blank line), in bytes; a
    /// longer one is answered 431 however the client split it into writes.
    /// Default 16 KiB: browsers send under 2 KiB; cookies make it grow, rarely past 8 KiB.
    /// Read into memory per pending handshake, so it bounds their memory with
    /// `max_pending_handshakes` (4 MiB by default).
    pub max_request_head: usize,
    /// Most header lines in an upgrade request; more are answered 431. Default 64 (a
    /// browser's upgrade has about 15).
    pub max_request_headers: usize,
    /// Decides, before the upgrade, whether a request may have a session. Default none:
    /// every request that passes the path, subprotocol and Origin checks is upgraded. Set it
    /// with [`ServerConfig::authorize`].
    pub authorize: Option<Authorizer>,
    /// Serve `wss://`: TLS with this config before the upgrade (under the same handshake
    /// timeout), by the listener (`Server`) and by [`accept`] alike. Default none: plain `ws://`. See
    /// [`crate::tls::server_config`].
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::tls::rustls::ServerConfig>>,
}

/// A refused upgrade: the HTTP status and the sentence the client gets, before any WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    status: u16,
    message: String,
}

impl Rejection {
    /// Refuses with `status` (a 4xx or 5xx; anything else becomes 403) and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        let status = if (400..=599).contains(&status) { status } else { 403 };
        Rejection { status, message: message.into() }
    }

    /// 401: no credentials, or credentials that do not check out.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Rejection::new(401, message)
    }

    /// 403: the credentials are good but do not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Rejection::new(403, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The sentence sent as the response body.
    pub fn message(&self) -> &str {
        &self.message
    }
}

type Grant = Arc<dyn Any + Send + Sync>;
type AuthorizeFn =
    dyn Fn(&UpgradeRequest) -> BoxFuture<'static, Result<Grant, Rejection>> + Send + Sync;

/// The authorization hook of a server (see [`ServerConfig::authorize`]).
#[derive(Clone)]
pub struct Authorizer(Arc<AuthorizeFn>);

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer(..)")
    }
}

/// What a server learned of its peer during the upgrade.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) request: UpgradeRequest,
    pub(crate) grant: Option<Grant>,
}

impl ServerConfig {
    /// Serves `wss://` with `tls` (see [`crate::tls::server_config`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: Arc<crate::tls::rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the authorization hook. It sees each upgrade request that passed the path,
    /// subprotocol and Origin checks (path, query, headers, cookies, Origin) and answers, under
    /// the handshake timeout and within `max_pending_handshakes`:
    /// - `Ok(value)`: the upgrade goes ahead, and `value` stays with the session
    ///   ([`Session::auth`]), for handlers to know who calls;
    /// - `Err(rejection)`: the client gets the rejection's HTTP status and sentence, and no
    ///   session is created.
    ///
    /// The hook takes the request by reference and returns a `'static` future: read what you
    /// need first, then move it into the future (which may look the token up elsewhere).
    ///
    /// ```
    /// use wsmux::server::{Rejection, ServerConfig};
    ///
    /// struct User(String);
    ///
    /// let config = ServerConfig::default().authorize(|req| {
    ///     // Browsers cannot set headers on a WebSocket: the page puts the token in the URL.
    ///     let token = req.query_param("token");
    ///     async move {
    ///         match token.as_deref() {
    ///             Some("s3cret") => Ok(User("ada".into())),
    ///             Some(_) => Err(Rejection::forbidden("unknown token")),
    ///             None => Err(Rejection::unauthorized("a token is required")),
    ///         }
    ///     }
    /// });
    /// ```
    pub fn authorize<F, Fut, T>(mut self, hook: F) -> Self
    where
        F: Fn(&UpgradeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Rejection>> + Send + 'static,
        T: Any + Send + Sync,
    {
        let hook = move |req: &UpgradeRequest| {
            hook(req).map(|r| r.map(|value| Arc::new(value) as Grant)).boxed()
        };
        self.authorize = Some(Authorizer(Arc::new(hook)));
        self
    }

    /// Bounds what all sessions of this server together can be made to hold by their peers
    /// (unread data, reassembly) beyond each session's initial grant: a new budget of `bytes`,
    /// shared by every session started with this config or a clone of it. Default
    /// [`DEFAULT_MEMORY_BUDGET`] (256 MiB).
    ///
    /// Every session gets its announced SESSION_WINDOW (256 KiB) and as much reassembly without
    /// asking; window growth (for speed, up to `max_session_window`) and further reassembly are
    /// reserved from the budget, and given back when the session ends. When it is spent,
    /// windows stop growing (transfers go on at the initial window's pace) and joining a
    /// message beyond the grant resets its channel with LIMIT. The worst case for the whole
    /// server is the budget plus, per live session, `2 × session_window + session_send_buffer`
    /// and one queued message (see `wsmux_proto::Config`); an idle session holds nothing.
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.session.protocol.memory_budget = Some(wsmux_proto::MemoryBudget::new(bytes));
        self
    }
}

/// The default server-wide memory budget: 256 MiB. Sixteen sessions can grow their windows to
/// the full 16 MiB at once; beyond the budget, sessions keep their initial 256 KiB grants.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * 1024 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        let mut session = Config::default();
        session.protocol.memory_budget =
            Some(wsmux_proto::MemoryBudget::new(DEFAULT_MEMORY_BUDGET));
        ServerConfig {
            session,
            path: Some("/mux".into()),
            origins: OriginPolicy::default(),
            trusted_proxies: Vec::new(),
            max_pending_handshakes: 256,
            max_sessions: 10_000,
            accept_backlog: 128,
            max_request_head: 16 * 1024,
            max_request_headers: 64,
            authorize: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// Performs the server side of the upgrade on `stream` and starts a session: TLS first if
/// [`ServerConfig::tls`] is set, then the HTTP upgrade, both within the handshake timeout.
/// Answers every refusal with an HTTP status and a sentence (426 not a WebSocket upgrade, 400
/// no `wsmux.v1`, 403 Origin, 404 path, 431 oversize head, or the authorization hook's)
/// before returning [`Error::Handshake`]; a failed TLS handshake is [`Error::Tls`]; gives up
/// with [`Error::Timeout`] after the handshake timeout. A config whose Origin allow-list has
/// an entry that can never match is [`Error::Config`], before anything is read.
///
/// The peer's address is unknown here, so `trusted_proxies` never apply: use [`accept_from`]
/// when you have it.
pub async fn accept<S>(stream: S, config: &ServerConfig) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_inner(stream, None, config).await
}

/// [`accept`] for a connection from `remote`: the authorization hook sees the address
/// ([`UpgradeRequest::remote`]), and forwarding headers count if it is one of
/// [`ServerConfig::trusted_proxies`].
pub async fn accept_from<S>(
    stream: S,
    remote: std::net::SocketAddr,
    config: &ServerConfig,
) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_inner(stream, Some(remote), config).await
}

async fn accept_inner<S>(
    stream: S,
    remote: Option<std::net::SocketAddr>,
    config: &ServerConfig,
) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    config.origins.validate().map_err(Error::Config)?;
    let timeout = config.session.handshake_timeout;
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        // Boxed: the TLS stream makes this future large (several KiB), and debug builds copy
        // a future on the stack at every layer of an executor's block_on.
        let handshake = Box::pin(async {
            let stream = futures_rustls::TlsAcceptor::from(tls.clone())
                .accept(stream)
                .await
                .map_err(|e| Error::Tls(format!("handshake: {e}")))?;
            upgrade(stream, remote, config).await
        });
        return crate::timeout(timeout, "handshake", handshake).await?;
    }
    crate::timeout(timeout, "handshake", upgrade(stream, remote, config)).await?
}

async fn upgrade<S>(
    mut stream: S,
    remote: Option<std::net::SocketAddr>,
    config: &ServerConfig,
) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let via = Via {
        #[cfg(feature = "tls")]
        tls: config.tls.is_some(),
        #[cfg(not(feature = "tls"))]
        tls: false,
        trusted_proxy: is_trusted(remote.map(|a| a.ip()), &config.trusted_proxies),
    };
    let head =
        handshake::read_request(&mut stream, config.max_request_head, config.max_request_headers);
    let checked = match head.await {
        Ok(mut req) => match handshake::check(&req, config.path.as_deref(), &config.origins, via) {
            Ok(key) => {
                req.remote = remote;
                authorize(config, req).await.map(|peer| (key, peer))
            }
            Err(refusal) => Err(refusal),
        },
        Err(HeadError::Io(e)) => return Err(e.into()),
        Err(HeadError::Refused(r)) => Err(r),
    };
    let (accept_key, peer) = match checked {
        Ok(checked) => checked,
        Err(refusal) => {
            // The peer may already be gone; the refusal is what matters.
            let _ = handshake::refuse(&mut stream, &refusal).await;
            return Err(Error::Handshake(format!("{}: {}", refusal.status, refusal.message)));
        }
    };
    handshake::switch(&mut stream, &accept_key).await?;
    let ws_config = config.session.websocket().read_buffer_size(crate::progress::TUNGSTENITE_READ);
    let (stream, clock) = crate::progress::wrap(stream, config.session.ws_read_buffer);
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config)).await;
    let (session, driver) =
        Session::start(wsmux_proto::Side::Server, ws, config.session.clone(), Some(clock));
    session.shared().set_peer(peer);
    Ok((session, driver))
}

/// Runs the authorization hook, if any, on a request that passed the protocol checks.
async fn authorize(config: &ServerConfig, request: UpgradeRequest) -> Result<Peer, Refusal> {
    let grant = match &config.authorize {
        None => None,
        Some(hook) => match (hook.0)(&request).await {
            Ok(grant) => Some(grant),
            Err(r) => return Err(Refusal::new(r.status, r.message)),
        },
    };
    Ok(Peer { request, grant })
}

#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
pub use listener::Server;

#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
mod listener {
    use super::*;
    use dashmap::DashMap;
    use futures::channel::{mpsc, oneshot};
    use futures::lock::Mutex;
    use futures::{FutureExt, SinkExt, StreamExt};
    use std::net::SocketAddr;
    use std::time::Duration;

    use crate::shared::park_in;

    /// The GOAWAY reason of a server shutdown.
    const SHUTTING_DOWN: &str = "server shutting down";
    use wsmux_proto::ErrorCode;

    use crate::shared::Shared;

    /// A TCP listener that upgrades connections and hands out sessions, spawning their drivers
    /// on the runtime the features select.
    ///
    /// Dropping the server stops accepting; sessions already handed out live on.
    #[derive(Debug)]
    pub struct Server {
        local_addr: SocketAddr,
        sessions: Mutex<mpsc::Receiver<Session>>,
        live: Arc<DashMap<u64, Shared>>,
        limits: Arc<Limits>,
        /// Dropped to stop the accept loop.
        stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    }

    #[derive(Debug)]
    struct Limits {
        config: ServerConfig,
        pending: AtomicUsize,
        /// Busy refusals lingering right now.
        refusing: AtomicUsize,
        next_id: AtomicU64,
        connections: AtomicU64,
        live: Arc<DashMap<u64, Shared>>,
        /// Set by [`Server::shutdown`] to its drain: a handshake that completes after it is
        /// closed at once, with that drain.
        shutdown_drain: std::sync::Mutex<Option<std::time::Duration>>,
        /// Woken when a session ends or a handshake finishes (every [`Server::shutdown`]
        /// waiting).
        changed: std::sync::Mutex<Vec<std::task::Waker>>,
        /// The accept loop still holds the port.
        listening: AtomicBool,
    }

    impl Limits {
        /// Closes every live session. The map is only read to take the handles: closing one
        /// may write to its socket, which must not happen under the map's lock.
        fn close_live(&self, code: ErrorCode, reason: &str, drain: Option<Duration>) {
            let live: Vec<Shared> = self.live.iter().map(|e| e.value().clone()).collect();
            for shared in &live {
                shared.close(code, reason, drain);
            }
        }

        fn wake_shutdowns(&self) {
            let waiting =
                std::mem::take(&mut *self.changed.lock().unwrap_or_else(|e| e.into_inner()));
            waiting.into_iter().for_each(std::task::Waker::wake);
        }
    }

    /// A connection counted in `pending` from its accept until its session is live; the count
    /// is given back however the handshake ends (a panicking authorization hook included).
    struct PendingSlot(Arc<Limits>);

    impl Drop for PendingSlot {
        fn drop(&mut self) {
            self.0.pending.fetch_sub(1, Ordering::SeqCst);
            self.0.wake_shutdowns();
        }
    }

    /// The port, held by the accept loop; released (and `listening` cleared) however the loop
    /// ends, so that [`Server::shutdown`] returns only once the port is free.
    struct ListenerSlot(Option<crate::rt::TcpListener>, Arc<Limits>);

    impl Drop for ListenerSlot {
        fn drop(&mut self) {
            drop(self.0.take());
            self.1.listening.store(false, Ordering::SeqCst);
            self.1.wake_shutdowns();
        }
    }

    /// A session in `live` until its driver task ends, however it ends.
    struct LiveSlot(Arc<Limits>, u64);

    impl Drop for LiveSlot {
        fn drop(&mut self) {
            self.0.live.remove(&self.1);
            self.0.wake_shutdowns();
        }
    }

    impl Server {
        /// Binds `addr` (for example `127.0.0.1:9000`, or port 0 for any) and starts accepting.
        /// A config whose Origin allow-list has an entry that can never match is
        /// [`Error::Config`].
        pub async fn bind(addr: &str, config: ServerConfig) -> Result<Server, Error> {
            config.origins.validate().map_err(Error::Config)?;
            let listener = crate::rt::bind(addr).await?;
            let local_addr = crate::rt::local_addr(&listener)?;
            let (tx, rx) = mpsc::channel(config.accept_backlog);
            let (stop_tx, stop_rx) = oneshot::channel();
            let live = Arc::new(DashMap::new());
            let limits = Arc::new(Limits {
                config,
                pending: AtomicUsize::new(0),
                refusing: AtomicUsize::new(0),
                next_id: AtomicU64::new(0),
                connections: AtomicU64::new(0),
                live: live.clone(),
                shutdown_drain: std::sync::Mutex::new(None),
                changed: std::sync::Mutex::new(Vec::new()),
                listening: AtomicBool::new(true),
            });
            crate::rt::spawn(accept_loop(listener, limits.clone(), tx, stop_rx));
            let stop = std::sync::Mutex::new(Some(stop_tx));
            Ok(Server { local_addr, sessions: Mutex::new(rx), live, limits, stop })
        }

        /// The address the server listens on.
        pub fn local_addr(&self) -> SocketAddr {
            self.local_addr
        }

        /// The next upgraded session (its driver already runs), or `None` once the server has
        /// shut down.
        pub async fn accept(&self) -> Option<Session> {
            self.sessions.lock().await.next().await
        }

        /// TCP connections accepted since the server started (upgraded or not).
        pub fn connections_accepted(&self) -> u64 {
            self.limits.connections.load(Ordering::Relaxed)
        }

        /// Sessions alive right now.
        pub fn session_count(&self) -> usize {
            self.live.len()
        }

        /// Starts a graceful shutdown of every live session: GOAWAY with `code`, open channels
        /// finish within the drain timeout, then each WebSocket closes.
        pub fn close_all(&self, code: ErrorCode, reason: &str) {
            self.limits.close_live(code, reason, None);
        }

        /// Shuts the server down gracefully and waits until it is done:
        ///
        /// 1. stops accepting connections (the port is released; a handshake already under
        ///    way completes, and its session is closed at once);
        /// 2. sends GOAWAY (NO_ERROR) to every session, so peers open nothing new and retry
        ///    elsewhere, while channels already open go on;
        /// 3. waits for those channels to finish, at most `drain`: whatever is still open then
        ///    fails (the application sees [`SessionError::LocallyClosed`](crate::SessionError));
        /// 4. closes every WebSocket (each gets [`Config::close_timeout`](crate::Config) for
        ///    its close handshake).
        ///
        /// Returns once the port is released and every session's driver has finished: after
        /// at most about the
        /// handshake timeout (upgrades under way), `drain`, and the close timeout.
        /// [`Server::accept`] returns `None` after it. Several tasks may await it at once.
        pub async fn shutdown(&self, drain: Duration) {
            *self.limits.shutdown_drain.lock().unwrap_or_else(|e| e.into_inner()) = Some(drain);
            drop(self.stop.lock().unwrap_or_else(|e| e.into_inner()).take());
            self.limits.close_live(ErrorCode::NO_ERROR, SHUTTING_DOWN, Some(drain));
            let limits = &self.limits;
            futures::future::poll_fn(|cx| {
                park_in(&mut limits.changed.lock().unwrap_or_else(|e| e.into_inner()), cx.waker());
                // The port first: the accept loop counts its last connection in `pending`
                // before it lets go of the port. Then `pending`: a handshake enters `live`
                // before it leaves `pending`.
                let idle = !limits.listening.load(Ordering::SeqCst)
                    && limits.pending.load(Ordering::SeqCst) == 0
                    && limits.live.is_empty();
                if idle {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            })
            .await;
        }
    }

    async fn accept_loop(
        listener: crate::rt::TcpListener,
        limits: Arc<Limits>,
        tx: mpsc::Sender<Session>,
        stop: oneshot::Receiver<()>,
    ) {
        let port = ListenerSlot(Some(listener), limits.clone());
        let Some(listener) = &port.0 else { return };
        let mut stop = stop.fuse();
        loop {
            // Biased: once a shutdown has begun, no further connection is taken.
            let stream = futures::select_biased! {
                _ = stop => return,
                s = crate::rt::accept(listener).fuse() => s,
            };
            let (stream, remote) = match stream {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    futures_timer::Delay::new(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            limits.connections.fetch_add(1, Ordering::Relaxed);
            // Counted before the task runs, so a shutdown starting now waits for it.
            let before = limits.pending.fetch_add(1, Ordering::SeqCst);
            let slot = PendingSlot(limits.clone());
            let over = before >= limits.config.max_pending_handshakes;
            crate::rt::spawn(serve(stream, remote, slot, over, tx.clone()));
        }
    }

    async fn serve(
        mut stream: crate::rt::TcpStream,
        remote: SocketAddr,
        slot: PendingSlot,
        too_many_pending: bool,
        mut tx: mpsc::Sender<Session>,
    ) {
        let limits = slot.0.clone();
        let busy = too_many_pending || limits.live.len() >= limits.config.max_sessions;
        if busy {
            drop(slot);
            // A refusal lingers (up to a second) so the client reads it; past as many lingering
            // refusals as pending handshakes, a connection is closed without an answer.
            if limits.refusing.fetch_add(1, Ordering::AcqRel) < limits.config.max_pending_handshakes
            {
                let refusal = Refusal::new(503, "server busy; retry later");
                let _ = handshake::refuse(&mut stream, &refusal).await;
            }
            limits.refusing.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let result = accept_from(stream, remote, &limits.config).await;
        let (session, driver) = match result {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return; // the slot gives the pending count back
            }
        };
        let id = limits.next_id.fetch_add(1, Ordering::Relaxed);
        limits.live.insert(id, session.shared().clone());
        let live = LiveSlot(limits.clone(), id);
        // Counted as pending until it is live, so a shutdown never misses it.
        drop(slot);
        let drain = *limits.shutdown_drain.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(drain) = drain {
            session.shared().close(ErrorCode::NO_ERROR, SHUTTING_DOWN, Some(drain));
        }
        crate::rt::spawn(async move {
            let _live = live; // leaves `live` when the driver ends, even by a panic
            if let Err(e) = driver.await {
                tracing::debug!(error = %e, "session ended with an error");
            }
        });
        // If nobody accepts any more, the session is dropped here and closes gracefully.
        let _ = tx.send(session).await;
    }
}

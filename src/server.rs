//! The server endpoint: listen, upgrade with subprotocol negotiation and an Origin policy,
//! and hand out sessions.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use futures::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::driver::Driver;
use crate::error::Error;
use crate::handshake::{self, HeadError, Refusal};
use crate::session::Session;

pub use crate::handshake::{OriginPolicy, UpgradeRequest, SUBPROTOCOL};

/// Configuration of a server: the sessions' config plus the upgrade policy and server limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Configuration of every session (its `handshake_timeout` bounds each upgrade).
    pub session: Config,
    /// The one URL path that serves wsmux; `None` accepts any path. Default `/mux`.
    pub path: Option<String>,
    /// Which browser origins may connect. Default: same host only; no Origin is allowed.
    pub origins: OriginPolicy,
    /// Upgrades in progress at once; more connections are answered 503 at once (and past as
    /// many 503 answers in progress, closed without one). Default 256
    /// (slowloris clients hold at most this many slots, each for at most the timeout).
    pub max_pending_handshakes: usize,
    /// Live sessions at once; more are answered 503. Default 10,000.
    pub max_sessions: usize,
    /// Sessions upgraded and waiting for [`Server::accept`]. Default 128.
    pub accept_backlog: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            session: Config::default(),
            path: Some("/mux".into()),
            origins: OriginPolicy::default(),
            max_pending_handshakes: 256,
            max_sessions: 10_000,
            accept_backlog: 128,
        }
    }
}

/// Performs the server side of the upgrade on `stream` and starts a session. Answers every
/// refusal with an HTTP status and a sentence (426 not a WebSocket upgrade, 400 no `wsmux.v1`,
/// 403 Origin, 404 path, 431 oversize head) before returning [`Error::Handshake`]; gives up
/// with [`Error::Timeout`] after the handshake timeout.
pub async fn accept<S>(stream: S, config: &ServerConfig) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = config.session.handshake_timeout;
    crate::timeout(timeout, "handshake", upgrade(stream, config)).await?
}

async fn upgrade<S>(mut stream: S, config: &ServerConfig) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let checked = match handshake::read_request(&mut stream).await {
        Ok(req) => handshake::check(&req, config.path.as_deref(), &config.origins),
        Err(HeadError::Io(e)) => return Err(e.into()),
        Err(HeadError::Refused(r)) => Err(r),
    };
    let accept_key = match checked {
        Ok(key) => key,
        Err(refusal) => {
            // The peer may already be gone; the refusal is what matters.
            let _ = handshake::refuse(&mut stream, &refusal).await;
            return Err(Error::Handshake(format!("{}: {}", refusal.status, refusal.message)));
        }
    };
    handshake::switch(&mut stream, &accept_key).await?;
    let ws_config = config.session.websocket();
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config)).await;
    Ok(Session::server(ws, config.session.clone()))
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
        _stop: oneshot::Sender<()>,
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
    }

    impl Server {
        /// Binds `addr` (for example `127.0.0.1:9000`, or port 0 for any) and starts accepting.
        pub async fn bind(addr: &str, config: ServerConfig) -> Result<Server, Error> {
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
            });
            crate::rt::spawn(accept_loop(listener, limits.clone(), tx, stop_rx));
            Ok(Server { local_addr, sessions: Mutex::new(rx), live, limits, _stop: stop_tx })
        }

        /// The address the server listens on.
        pub fn local_addr(&self) -> SocketAddr {
            self.local_addr
        }

        /// The next upgraded session (its driver already runs), or `None` once the listener
        /// has failed.
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
            let now = std::time::Instant::now();
            for entry in self.live.iter() {
                let mut inner = entry.value().lock();
                inner.proto.close(now, code, reason);
                inner.after_command();
            }
        }
    }

    async fn accept_loop(
        listener: crate::rt::TcpListener,
        limits: Arc<Limits>,
        tx: mpsc::Sender<Session>,
        stop: oneshot::Receiver<()>,
    ) {
        let mut stop = stop.fuse();
        loop {
            let stream = futures::select! {
                _ = stop => return,
                s = crate::rt::accept(&listener).fuse() => s,
            };
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    futures_timer::Delay::new(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            limits.connections.fetch_add(1, Ordering::Relaxed);
            crate::rt::spawn(serve(stream, limits.clone(), tx.clone()));
        }
    }

    async fn serve(
        mut stream: crate::rt::TcpStream,
        limits: Arc<Limits>,
        mut tx: mpsc::Sender<Session>,
    ) {
        let busy = limits.pending.fetch_add(1, Ordering::AcqRel)
            >= limits.config.max_pending_handshakes
            || limits.live.len() >= limits.config.max_sessions;
        if busy {
            limits.pending.fetch_sub(1, Ordering::AcqRel);
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
        let result = accept(stream, &limits.config).await;
        limits.pending.fetch_sub(1, Ordering::AcqRel);
        let (session, driver) = match result {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let id = limits.next_id.fetch_add(1, Ordering::Relaxed);
        limits.live.insert(id, session.shared().clone());
        let live = limits.live.clone();
        crate::rt::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(error = %e, "session ended with an error");
            }
            live.remove(&id);
        });
        // If nobody accepts any more, the session is dropped here and closes gracefully.
        let _ = tx.send(session).await;
    }
}

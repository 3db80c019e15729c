//! The systems compared: raw async-tungstenite, yamux over the same WebSocket, and wsmux. Each
//! builds a connected client/server pair over loopback TCP on the runtime `N`.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use bytes::{Buf, Bytes};
use futures::channel::{mpsc, oneshot};
use futures::io::{AsyncRead, AsyncWrite};
use futures::{SinkExt, StreamExt};

use crate::net::Net;

pub(crate) type Ws<N> = WebSocketStream<<N as Net>::Stream>;

/// Two TCP ends over loopback: (client, server).
pub(crate) async fn tcp_pair<N: Net>() -> (N::Stream, N::Stream) {
    let listener = N::bind().await;
    let addr = N::local_addr(&listener);
    futures::join!(N::connect(addr), N::accept(&listener))
}

/// The WebSocket configuration every system's WebSocket uses, so they are compared on the same
/// footing: wsmux's defaults (32 KiB read buffer, 128 KiB write buffer), no message limit
/// beyond the bulk case's 1 MiB messages.
pub(crate) fn ws_config() -> WebSocketConfig {
    wsmux::Config::default()
        .websocket()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
        .max_write_buffer_size(usize::MAX)
}

/// A raw WebSocket pair: (client, server).
pub(crate) async fn raw_pair<N: Net>() -> (Ws<N>, Ws<N>) {
    let (c, s) = tcp_pair::<N>().await;
    let client =
        async_tungstenite::client_async_with_config("ws://127.0.0.1/", c, Some(ws_config()));
    let server = async_tungstenite::accept_async_with_config(s, Some(ws_config()));
    let (client, server) = futures::join!(client, server);
    (client.expect("client handshake").0, server.expect("server handshake"))
}

/// The wsmux configuration of the bench: the defaults, with overrides from the environment
/// for tuning experiments (WSMUX_FRAME, WSMUX_WINDOW, WSMUX_READBUF, in bytes; WSMUX_CALLER_READS, 0 or 1).
pub(crate) fn wsmux_config<N: Net>() -> wsmux::Config {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
    let mut config = wsmux::Config::default();
    config.caller_reads = N::CALLER_READS;
    if let Some(n) = env("WSMUX_CALLER_READS") {
        config.caller_reads = n != 0;
    }
    if let Some(n) = env("WSMUX_FRAME") {
        config.protocol.max_frame_payload = n as u32;
    }
    if let Some(n) = env("WSMUX_WINDOW") {
        config.protocol.initial_window = n as u32;
        config.protocol.send_buffer = n as u32;
    }
    if let Some(n) = env("WSMUX_READBUF") {
        config.ws_read_buffer = n;
    }
    config
}

/// A wsmux pair: (client session, server session), drivers spawned on `N`.
pub(crate) async fn wsmux_pair<N: Net>(config: wsmux::Config) -> (wsmux::Session, wsmux::Session) {
    let (client, (server, server_driver)) = wsmux_pair_unspawned::<N>(config).await;
    N::spawn(async move {
        let _ = server_driver.await;
    });
    (client, server)
}

/// A wsmux pair whose server driver is the caller's to run: (client session, (server
/// session, server driver)); the client's driver is spawned on `N`.
pub(crate) async fn wsmux_pair_unspawned<N: Net>(
    config: wsmux::Config,
) -> (wsmux::Session, (wsmux::Session, wsmux::Driver)) {
    let (c, s) = tcp_pair::<N>().await;
    wsmux_on::<N>(c, s, config).await
}

/// A wsmux pair on two TCP ends (client, server), with `config` on both; the client's driver
/// spawned on `N`, the server's the caller's to run.
pub(crate) async fn wsmux_on<N: Net>(
    c: N::Stream,
    s: N::Stream,
    config: wsmux::Config,
) -> (wsmux::Session, (wsmux::Session, wsmux::Driver)) {
    let mut server_config = wsmux::server::ServerConfig::default();
    server_config.session = config.clone();
    let client = wsmux::client::connect_on(c, "ws://127.0.0.1/mux", config);
    let server = wsmux::server::accept(s, &server_config);
    let (client, server) = futures::join!(client, server);
    let (client, client_driver) = client.expect("wsmux client");
    let server = server.expect("wsmux server");
    N::spawn(async move {
        let _ = client_driver.await;
    });
    (client, server)
}

/// A byte stream over a WebSocket: each write is one binary message, reads concatenate
/// messages, flushes are the caller's (so yamux's own batching decides them).
pub(crate) struct WsIo<S> {
    ws: WebSocketStream<S>,
    unread: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        while self.unread.is_empty() {
            match futures::ready!(self.ws.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(b))) => self.unread = b,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Ok(0)),
            }
        }
        let n = buf.len().min(self.unread.len());
        buf[..n].copy_from_slice(&self.unread[..n]);
        self.unread.advance(n);
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::ready!(self.ws.poll_ready_unpin(cx)).map_err(io::Error::other)?;
        self.ws
            .start_send_unpin(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_flush_unpin(cx).map_err(io::Error::other)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_close_unpin(cx).map_err(io::Error::other)
    }
}

/// One end of a yamux connection: open streams, receive the peer's.
pub(crate) struct Yamux {
    open: mpsc::UnboundedSender<oneshot::Sender<yamux::Stream>>,
    pub(crate) inbound: mpsc::UnboundedReceiver<yamux::Stream>,
}

impl Yamux {
    pub(crate) async fn open(&self) -> yamux::Stream {
        let (tx, rx) = oneshot::channel();
        self.open.unbounded_send(tx).expect("yamux connection alive");
        rx.await.expect("yamux open")
    }
}

/// A yamux pair over one WebSocket: (client, server). Each connection is driven by a task.
pub(crate) async fn yamux_pair<N: Net>(max_streams: usize) -> (Yamux, Yamux) {
    let (c, s) = raw_pair::<N>().await;
    let client =
        drive_yamux::<N, _>(WsIo { ws: c, unread: Bytes::new() }, yamux::Mode::Client, max_streams);
    let server =
        drive_yamux::<N, _>(WsIo { ws: s, unread: Bytes::new() }, yamux::Mode::Server, max_streams);
    (client, server)
}

fn drive_yamux<N: Net, T>(io: T, mode: yamux::Mode, max_streams: usize) -> Yamux
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut config = yamux::Config::default();
    config.set_max_num_streams(max_streams);
    let mut conn = yamux::Connection::new(io, config, mode);
    let (open_tx, mut open_rx) = mpsc::unbounded::<oneshot::Sender<yamux::Stream>>();
    let (inbound_tx, inbound_rx) = mpsc::unbounded();
    let mut waiting: VecDeque<oneshot::Sender<yamux::Stream>> = VecDeque::new();
    N::spawn(futures::future::poll_fn(move |cx| {
        while let Poll::Ready(Some(request)) = open_rx.poll_next_unpin(cx) {
            waiting.push_back(request);
        }
        while !waiting.is_empty() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(Ok(stream)) => {
                    let _ = waiting.pop_front().map(|w| w.send(stream));
                }
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        loop {
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    let _ = inbound_tx.unbounded_send(stream);
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }));
    Yamux { open: open_tx, inbound: inbound_rx }
}

/// Sends `msg` and flushes (raw, flush per message).
pub(crate) async fn raw_send<N: Net>(ws: &mut Ws<N>, msg: Bytes) {
    ws.send(Message::Binary(msg)).await.expect("raw send");
}

/// Receives the next binary message (raw).
pub(crate) async fn raw_recv<N: Net>(ws: &mut Ws<N>) -> Bytes {
    loop {
        match ws.next().await.expect("raw stream open").expect("raw recv") {
            Message::Binary(b) => return b,
            _ => continue,
        }
    }
}

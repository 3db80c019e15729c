//! The throughput and latency cases. Each function runs ONE system once and returns its figure;
//! `main` interleaves the systems and rounds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::{SinkExt, StreamExt};
use wsmux::OpenOptions;

use crate::net::Net;
use crate::systems::{
    raw_pair, raw_recv, raw_send, tcp_pair, ws_config, wsmux_pair, wsmux_pair_unspawned, yamux_pair,
};

/// One measured figure.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// Bytes or messages per second.
    Rate(f64),
    /// Latency percentiles over `n` samples.
    Latency { p50: Duration, p99: Duration, n: usize },
    /// Echo latency while a bulk flow runs, with the bulk's rate during and alone (bytes/s).
    Hol { p50: Duration, p99: Duration, n: usize, bulk: f64, solo: f64 },
    /// Bytes of memory per item.
    Memory { per_item: f64, items: usize },
    /// Calls (or echoes) per second, with the latency of each.
    Calls { rate: f64, p50: Duration, p99: Duration, n: usize },
}

/// Calls per second over `elapsed`, with the latency percentiles of `samples`.
fn calls(samples: Vec<Duration>, elapsed: Duration) -> Value {
    match latency(samples) {
        Value::Latency { p50, p99, n } => {
            Value::Calls { rate: n as f64 / elapsed.as_secs_f64(), p50, p99, n }
        }
        other => other,
    }
}

pub(crate) fn latency(mut samples: Vec<Duration>) -> Value {
    samples.sort();
    let n = samples.len();
    let at = |p: f64| samples[((n - 1) as f64 * p).round() as usize];
    Value::Latency { p50: at(0.50), p99: at(0.99), n }
}

fn block(size: usize) -> Bytes {
    Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

const SMALL: usize = 64;
const WARMUP: usize = 200;

// ----- bulk -----

/// Raw WebSocket bulk: `total` bytes in `size`-byte messages; flush per message or batched.
pub(crate) async fn bulk_raw<N: Net>(batched: bool, size: usize, total: usize) -> Value {
    let (mut client, mut server) = raw_pair::<N>().await;
    let count = total / size;
    let (done_tx, done_rx) = oneshot::channel();
    N::spawn(async move {
        let mut got = 0;
        for _ in 0..count {
            got += raw_recv::<N>(&mut server).await.len();
        }
        let _ = done_tx.send((got, server));
    });
    let msg = block(size);
    let start = Instant::now();
    // The sender is a task like the receiver (and like every other system's senders), not
    // this thread: otherwise raw would get a thread more than the others.
    let (sent_tx, sent_rx) = oneshot::channel();
    N::spawn(async move {
        for _ in 0..count {
            if batched {
                client.feed(Message::Binary(msg.clone())).await.expect("feed");
            } else {
                raw_send::<N>(&mut client, msg.clone()).await;
            }
        }
        client.flush().await.expect("flush");
        let _ = sent_tx.send(client);
    });
    let (got, _server) = done_rx.await.expect("receiver");
    let _client = sent_rx.await.expect("sender");
    Value::Rate(got as f64 / start.elapsed().as_secs_f64())
}

/// yamux bulk over one WebSocket: `channels` streams share `total` bytes.
pub(crate) async fn bulk_yamux<N: Net>(size: usize, total: usize, channels: usize) -> Value {
    let (client, mut server) = yamux_pair::<N>(channels + 16).await;
    let (done_tx, mut done_rx) = mpsc::unbounded();
    N::spawn(async move {
        for _ in 0..channels {
            let mut stream = server.inbound.next().await.expect("inbound stream");
            let done = done_tx.clone();
            N::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = 0;
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let _ = done.unbounded_send(got);
            });
        }
        let _keep = server;
        futures::future::pending::<()>().await;
    });
    let msg = block(size);
    let per_channel = total / size / channels;
    let start = Instant::now();
    for _ in 0..channels {
        let mut stream = client.open().await;
        let msg = msg.clone();
        N::spawn(async move {
            for _ in 0..per_channel {
                stream.write_all(&msg).await.expect("yamux write");
            }
            stream.close().await.expect("yamux close");
        });
    }
    let mut got = 0;
    for _ in 0..channels {
        got += done_rx.next().await.expect("yamux reader");
    }
    Value::Rate(got as f64 / start.elapsed().as_secs_f64())
}

/// wsmux bulk: `channels` channels share `total` bytes.
pub(crate) async fn bulk_wsmux<N: Net>(size: usize, total: usize, channels: usize) -> Value {
    let (client, server) = wsmux_pair::<N>(crate::systems::wsmux_config::<N>()).await;
    let per_channel = total / size / channels;
    bulk_wsmux_between::<N>(client, server, size, channels, Until::Messages(per_channel)).await
}

/// How long each sender of [`bulk_wsmux_between`] sends.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// This many messages.
    Messages(usize),
    /// Until this long after the start.
    Elapsed(Duration),
}

/// `channels` channels of `client` send messages of `size` bytes to `server` until `until`;
/// bytes per second received.
pub(crate) async fn bulk_wsmux_between<N: Net>(
    client: wsmux::Session,
    server: wsmux::Session,
    size: usize,
    channels: usize,
    until: Until,
) -> Value {
    let (done_tx, mut done_rx) = mpsc::unbounded();
    N::spawn(async move {
        for _ in 0..channels {
            let mut ch = server.accept().await.expect("incoming").accept();
            let done = done_tx.clone();
            N::spawn(async move {
                let mut got = 0;
                while let Some(m) = ch.recv().await.expect("wsmux recv") {
                    got += m.len();
                }
                let _ = done.unbounded_send(got);
            });
        }
        server.closed().await;
        if std::env::var_os("WSMUX_BENCH_EACH").is_some() {
            // How well the sender packed: frames per WebSocket message received.
            let s = server.stats();
            let per = s.frames_received as f64 / s.messages_received.max(1) as f64;
            eprintln!("    the server received {per:.1} frames per message");
        }
    });
    let msg = block(size);
    let start = Instant::now();
    for _ in 0..channels {
        let mut ch = client.open("bulk").await.expect("open");
        let msg = msg.clone();
        N::spawn(async move {
            let mut sent = 0;
            while match until {
                Until::Messages(n) => sent < n,
                Until::Elapsed(time) => start.elapsed() < time,
            } {
                ch.send(msg.clone()).await.expect("wsmux send");
                sent += 1;
            }
            ch.finish().await.expect("finish");
            let _ = ch.recv().await;
        });
    }
    let mut got = 0;
    for _ in 0..channels {
        got += done_rx.next().await.expect("wsmux reader");
    }
    let rate = got as f64 / start.elapsed().as_secs_f64();
    drop(client);
    Value::Rate(rate)
}

// ----- small messages over many channels -----

/// Raw: `total` 64-byte messages on one WebSocket (messages/s).
pub(crate) async fn small_raw<N: Net>(batched: bool, total: usize) -> Value {
    match bulk_raw::<N>(batched, SMALL, total * SMALL).await {
        Value::Rate(bytes) => Value::Rate(bytes / SMALL as f64),
        other => other,
    }
}

/// yamux: 64-byte writes spread over `channels` streams (messages/s).
pub(crate) async fn small_yamux<N: Net>(total: usize, channels: usize) -> Value {
    match bulk_yamux::<N>(SMALL, total * SMALL, channels).await {
        Value::Rate(bytes) => Value::Rate(bytes / SMALL as f64),
        other => other,
    }
}

/// wsmux: 64-byte messages spread over `channels` channels (messages/s).
pub(crate) async fn small_wsmux<N: Net>(total: usize, channels: usize) -> Value {
    match bulk_wsmux::<N>(SMALL, total * SMALL, channels).await {
        Value::Rate(bytes) => Value::Rate(bytes / SMALL as f64),
        other => other,
    }
}

// ----- echo on an idle connection -----

/// Sends every binary message back, until the connection ends (raw WebSocket).
async fn raw_echo_server<N: Net>(mut server: crate::systems::Ws<N>) {
    while let Some(Ok(msg)) = server.next().await {
        if msg.is_binary() && server.send(msg).await.is_err() {
            break;
        }
    }
}

pub(crate) async fn echo_raw<N: Net>(samples: usize) -> Value {
    let (mut client, server) = raw_pair::<N>().await;
    N::spawn(raw_echo_server::<N>(server));
    let msg = block(SMALL);
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP {
        let t = Instant::now();
        raw_send::<N>(&mut client, msg.clone()).await;
        raw_recv::<N>(&mut client).await;
        if i >= WARMUP {
            times.push(t.elapsed());
        }
    }
    latency(times)
}

pub(crate) async fn echo_yamux<N: Net>(samples: usize) -> Value {
    let (client, mut server) = yamux_pair::<N>(16).await;
    N::spawn(async move {
        while let Some(stream) = server.inbound.next().await {
            N::spawn(yamux_echo(stream));
        }
    });
    let mut stream = client.open().await;
    let msg = block(SMALL);
    let mut buf = [0u8; SMALL];
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP {
        let t = Instant::now();
        stream.write_all(&msg).await.expect("write");
        stream.flush().await.expect("flush");
        stream.read_exact(&mut buf).await.expect("read");
        if i >= WARMUP {
            times.push(t.elapsed());
        }
    }
    latency(times)
}

async fn yamux_echo(mut stream: yamux::Stream) {
    let mut buf = [0u8; SMALL];
    while stream.read_exact(&mut buf).await.is_ok() {
        if stream.write_all(&buf).await.is_err() || stream.flush().await.is_err() {
            break;
        }
    }
}

pub(crate) async fn echo_wsmux<N: Net>(samples: usize) -> Value {
    let (client, server) = wsmux_pair::<N>(crate::systems::wsmux_config::<N>()).await;
    N::spawn(serve_wsmux::<N>(server));
    let mut ch = client.open("echo").await.expect("open");
    let msg = block(SMALL);
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP {
        let t = Instant::now();
        ch.send(msg.clone()).await.expect("send");
        ch.recv().await.expect("recv").expect("echo");
        if i >= WARMUP {
            times.push(t.elapsed());
        }
    }
    latency(times)
}

/// Serves wsmux routes for the bench: `echo` and `discard` (the interop profile).
async fn serve_wsmux<N: Net>(session: wsmux::Session) {
    while let Some(incoming) = session.accept().await {
        N::spawn(async move {
            let _ = wsmux::interop::handle(incoming).await;
        });
    }
}

// ----- head-of-line: echo while another flow bulk-sends -----

/// Runs `bulk` (which returns bytes sent when `stop` is set) for `duration` alone, then again
/// while `echo` collects samples; returns the HoL figure.
async fn hol<N, B, BF, E, EF>(duration: Duration, bulk: B, echo: E) -> Value
where
    N: Net,
    B: Fn(Arc<AtomicBool>, Arc<AtomicU64>) -> BF,
    BF: std::future::Future<Output = ()> + Send + 'static,
    E: FnOnce(Arc<AtomicBool>) -> EF,
    EF: std::future::Future<Output = Vec<Duration>>,
{
    let timed = |stop: Arc<AtomicBool>| async move {
        futures_timer::Delay::new(duration).await;
        stop.store(true, Ordering::Release);
    };
    // Starts the bulk flow as its own task: (stop flag, bytes sent, done signal).
    let start_bulk = || {
        let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let task = bulk(stop.clone(), sent.clone());
        N::spawn(async move {
            task.await;
            let _ = done_tx.send(());
        });
        (stop, sent, done_rx)
    };
    // Alone.
    let (stop, sent, done_rx) = start_bulk();
    let start = Instant::now();
    timed(stop).await;
    let solo = sent.load(Ordering::Acquire) as f64 / start.elapsed().as_secs_f64();
    let _ = done_rx.await;
    // With the echo beside it.
    let (stop, sent, done_rx) = start_bulk();
    let start = Instant::now();
    let (samples, ()) = futures::join!(echo(stop.clone()), timed(stop));
    let during = sent.load(Ordering::Acquire) as f64 / start.elapsed().as_secs_f64();
    let _ = done_rx.await;
    match latency(samples) {
        Value::Latency { p50, p99, n } => Value::Hol { p50, p99, n, bulk: during, solo },
        other => other,
    }
}

const HOL_BLOCK: usize = 16 * 1024;

pub(crate) async fn hol_wsmux<N: Net>(duration: Duration) -> Value {
    let (client, server) = wsmux_pair::<N>(crate::systems::wsmux_config::<N>()).await;
    N::spawn(serve_wsmux::<N>(server));
    let bulk_client = client.clone();
    let bulk = move |stop: Arc<AtomicBool>, sent: Arc<AtomicU64>| {
        let client = bulk_client.clone();
        async move {
            let mut ch = client.open("discard").await.expect("open");
            let msg = block(HOL_BLOCK);
            while !stop.load(Ordering::Acquire) {
                ch.send(msg.clone()).await.expect("send");
                sent.fetch_add(HOL_BLOCK as u64, Ordering::Release);
            }
            let _ = ch.finish().await;
        }
    };
    let echo = |stop: Arc<AtomicBool>| async move {
        let mut ch = client.open("echo").await.expect("open");
        let msg = block(SMALL);
        let mut times = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let t = Instant::now();
            ch.send(msg.clone()).await.expect("send");
            ch.recv().await.expect("recv").expect("echo");
            times.push(t.elapsed());
        }
        times
    };
    hol::<N, _, _, _, _>(duration, bulk, echo).await
}

pub(crate) async fn hol_yamux<N: Net>(duration: Duration) -> Value {
    let (client, mut server) = yamux_pair::<N>(64).await;
    // The first byte of each stream says what it is for: b(ulk) or e(cho).
    N::spawn(async move {
        while let Some(mut stream) = server.inbound.next().await {
            N::spawn(async move {
                let mut kind = [0u8; 1];
                if stream.read_exact(&mut kind).await.is_err() {
                    return;
                }
                if kind[0] == b'e' {
                    yamux_echo(stream).await;
                } else {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            });
        }
    });
    let client = Arc::new(client);
    let bulk_client = client.clone();
    let bulk = move |stop: Arc<AtomicBool>, sent: Arc<AtomicU64>| {
        let client = bulk_client.clone();
        async move {
            let mut stream = client.open().await;
            stream.write_all(b"b").await.expect("write");
            let msg = block(HOL_BLOCK);
            while !stop.load(Ordering::Acquire) {
                stream.write_all(&msg).await.expect("write");
                sent.fetch_add(HOL_BLOCK as u64, Ordering::Release);
            }
            let _ = stream.close().await;
        }
    };
    let echo = |stop: Arc<AtomicBool>| async move {
        let mut stream = client.open().await;
        stream.write_all(b"e").await.expect("write");
        let msg = block(SMALL);
        let mut buf = [0u8; SMALL];
        let mut times = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let t = Instant::now();
            stream.write_all(&msg).await.expect("write");
            stream.flush().await.expect("flush");
            stream.read_exact(&mut buf).await.expect("read");
            times.push(t.elapsed());
        }
        times
    };
    hol::<N, _, _, _, _>(duration, bulk, echo).await
}

/// The reference: the bulk and the echo on two separate raw WebSocket connections.
pub(crate) async fn hol_raw_two_connections<N: Net>(duration: Duration) -> Value {
    let bulk = move |stop: Arc<AtomicBool>, sent: Arc<AtomicU64>| async move {
        let (mut client, mut server) = raw_pair::<N>().await;
        N::spawn(async move { while let Some(Ok(_)) = server.next().await {} });
        let msg = block(HOL_BLOCK);
        while !stop.load(Ordering::Acquire) {
            client.feed(Message::Binary(msg.clone())).await.expect("feed");
            sent.fetch_add(HOL_BLOCK as u64, Ordering::Release);
        }
        let _ = client.close(None).await;
    };
    let echo = |stop: Arc<AtomicBool>| async move {
        let (mut client, server) = raw_pair::<N>().await;
        N::spawn(raw_echo_server::<N>(server));
        let msg = block(SMALL);
        let mut times = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let t = Instant::now();
            raw_send::<N>(&mut client, msg.clone()).await;
            raw_recv::<N>(&mut client).await;
            times.push(t.elapsed());
        }
        times
    };
    hol::<N, _, _, _, _>(duration, bulk, echo).await
}

// ----- open + first echo -----

pub(crate) async fn open_wsmux<N: Net>(samples: usize) -> Value {
    let (client, server) = wsmux_pair::<N>(crate::systems::wsmux_config::<N>()).await;
    N::spawn(serve_wsmux::<N>(server));
    let msg = block(SMALL);
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP {
        let t = Instant::now();
        // The OPEN carries the first message: no round trip before data.
        let options = OpenOptions::new("echo").message(msg.clone()).finish();
        let mut ch = client.open_with(options).await.expect("open");
        ch.recv().await.expect("recv").expect("echo");
        if i >= WARMUP {
            times.push(t.elapsed());
        }
        let _ = ch.recv().await; // the echo's FIN
    }
    latency(times)
}

pub(crate) async fn open_yamux<N: Net>(samples: usize) -> Value {
    let (client, mut server) = yamux_pair::<N>(1024).await; // streams are closed as we go
    N::spawn(async move {
        while let Some(stream) = server.inbound.next().await {
            N::spawn(yamux_echo(stream));
        }
    });
    let msg = block(SMALL);
    let mut buf = [0u8; SMALL];
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP {
        let t = Instant::now();
        let mut stream = client.open().await;
        stream.write_all(&msg).await.expect("write");
        stream.flush().await.expect("flush");
        stream.read_exact(&mut buf).await.expect("read");
        if i >= WARMUP {
            times.push(t.elapsed());
        }
        let _ = stream.close().await;
    }
    latency(times)
}

/// A new WebSocket connection per exchange: TCP connect, upgrade, one echo.
pub(crate) async fn open_new_connection<N: Net>(samples: usize) -> Value {
    let listener = Arc::new(N::bind().await);
    let addr = N::local_addr(&listener);
    let accepting = listener.clone();
    N::spawn(async move {
        loop {
            let tcp = N::accept(&accepting).await;
            N::spawn(async move {
                let Ok(mut ws) =
                    async_tungstenite::accept_async_with_config(tcp, Some(ws_config())).await
                else {
                    return;
                };
                if let Some(Ok(msg)) = ws.next().await {
                    let _ = ws.send(msg).await;
                }
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    let msg = block(SMALL);
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP / 4 {
        let t = Instant::now();
        let tcp = N::connect(addr).await;
        let (mut ws, _) =
            async_tungstenite::client_async_with_config("ws://127.0.0.1/", tcp, Some(ws_config()))
                .await
                .expect("handshake");
        ws.send(Message::Binary(msg.clone())).await.expect("send");
        while !matches!(ws.next().await, Some(Ok(Message::Binary(_)))) {}
        if i >= WARMUP / 4 {
            times.push(t.elapsed());
        }
        let _ = ws.close(None).await;
    }
    latency(times)
}

/// For the record: a bare TCP round trip of 64 bytes, the floor under every echo.
pub(crate) async fn echo_tcp<N: Net>(samples: usize) -> Value {
    let (mut client, mut server) = tcp_pair::<N>().await;
    N::spawn(async move {
        let mut buf = [0u8; SMALL];
        while server.read_exact(&mut buf).await.is_ok() {
            if server.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let msg = block(SMALL);
    let mut buf = [0u8; SMALL];
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP {
        let t = Instant::now();
        client.write_all(&msg).await.expect("write");
        client.read_exact(&mut buf).await.expect("read");
        if i >= WARMUP {
            times.push(t.elapsed());
        }
    }
    latency(times)
}

// ----- RPC: unary calls beside the raw echo -----

/// The payload of the unary echo. A `Vec<u8>` (the default) is a sequence serde hands over
/// byte by byte, about 1,700 instructions per 64-byte payload at each end (callgrind);
/// `bytes::Bytes` (`WSMUX_BENCH_RPC_PAYLOAD=bytes`) goes through serde as one byte string.
pub(crate) trait Payload:
    serde::Serialize + serde::de::DeserializeOwned + From<Vec<u8>> + Clone + Send + Sync + 'static
{
    const NAME: &'static str;
}

impl Payload for Bytes {
    const NAME: &'static str = "bytes::Bytes";
}

impl Payload for Vec<u8> {
    const NAME: &'static str = "Vec<u8>";
}

/// Whether the unary echo's payload is `bytes::Bytes` instead of a `Vec<u8>` (see [`Payload`]).
pub(crate) fn bytes_payload() -> bool {
    std::env::var("WSMUX_BENCH_RPC_PAYLOAD").is_ok_and(|v| v == "bytes")
}

fn rpc_echo<P: Payload>() -> wsmux::rpc::Unary<P, P> {
    wsmux::rpc::Unary::new("echo")
}

/// Raw: `total` 64-byte echoes on one WebSocket, `in_flight` outstanding at a time (pipelined).
pub(crate) async fn rpc_raw<N: Net>(total: usize, in_flight: usize) -> Value {
    let (mut client, server) = raw_pair::<N>().await;
    N::spawn(raw_echo_server::<N>(server));
    let msg = block(SMALL);
    for _ in 0..WARMUP {
        raw_send::<N>(&mut client, msg.clone()).await;
        raw_recv::<N>(&mut client).await;
    }
    let mut sent = std::collections::VecDeque::with_capacity(in_flight);
    let mut times = Vec::with_capacity(total);
    let start = Instant::now();
    for i in 0..total + in_flight {
        if sent.len() == in_flight || i >= total {
            raw_recv::<N>(&mut client).await;
            times.push(sent.pop_front().map_or(Duration::ZERO, |t: Instant| t.elapsed()));
        }
        if i < total {
            sent.push_back(Instant::now());
            raw_send::<N>(&mut client, msg.clone()).await;
        }
        if times.len() == total {
            break;
        }
    }
    calls(times, start.elapsed())
}

/// Blocks the 1-in-flight comparison alternates between raw and wsmux.
const RPC_BLOCKS: usize = 20;

/// The raw echo and the wsmux unary call at 1 in flight, measured side by side: both
/// connections are set up first, then `total` calls of each run in alternating blocks (who goes
/// first alternates too). On a shared 2-core machine the speed of a run drifts and depends on
/// where the scheduler puts the threads; taking turns gives both systems the same conditions,
/// so their ratio is steadier than that of two runs one after the other. Returns (raw, wsmux).
pub(crate) async fn rpc_side_by_side<N: Net, P: Payload>(total: usize) -> (Value, Value) {
    let (mut raw, server) = raw_pair::<N>().await;
    N::spawn(raw_echo_server::<N>(server));
    let client = rpc_wsmux_client::<N, P>().await;
    let (msg, payload, echo) = (block(SMALL), P::from(vec![7u8; SMALL]), rpc_echo::<P>());
    for _ in 0..WARMUP {
        raw_send::<N>(&mut raw, msg.clone()).await;
        raw_recv::<N>(&mut raw).await;
        client.unary(&echo, &payload).await.expect("call");
    }
    let per_block = total.div_ceil(RPC_BLOCKS);
    let mut times = [Vec::with_capacity(total), Vec::with_capacity(total)];
    let mut elapsed = [Duration::ZERO; 2];
    for block in 0..2 * RPC_BLOCKS {
        // 0 = raw, 1 = wsmux: raw, wsmux, wsmux, raw, raw, wsmux, ...
        let which = (block + block / 2) % 2;
        let start = Instant::now();
        for _ in 0..per_block {
            let t = Instant::now();
            if which == 0 {
                raw_send::<N>(&mut raw, msg.clone()).await;
                raw_recv::<N>(&mut raw).await;
            } else {
                client.unary(&echo, &payload).await.expect("call");
            }
            times[which].push(t.elapsed());
        }
        elapsed[which] += start.elapsed();
    }
    let [raw_times, wsmux_times] = times;
    (calls(raw_times, elapsed[0]), calls(wsmux_times, elapsed[1]))
}

/// A wsmux RPC client whose server (an echo method) runs on its connection's task.
async fn rpc_wsmux_client<N: Net, P: Payload>() -> wsmux::rpc::Client {
    let config = crate::systems::wsmux_config::<N>();
    let (client, (server, server_driver)) = wsmux_pair_unspawned::<N>(config).await;
    let router = wsmux::rpc::Router::new()
        .unary(rpc_echo::<P>(), |payload: P, _| async move { Ok(payload) });
    // The server's connection and its calls run as one task (see `Router::serve_connection`).
    let connection = router.serve_connection_with(server, server_driver, |call| N::spawn(call));
    N::spawn(async move {
        let _ = connection.await;
    });
    wsmux::rpc::Client::new(client)
}

/// wsmux RPC: `total` unary calls with a 64-byte payload, from `in_flight` concurrent callers.
pub(crate) async fn rpc_wsmux<N: Net, P: Payload>(total: usize, in_flight: usize) -> Value {
    let client = rpc_wsmux_client::<N, P>().await;
    let (payload, echo) = (P::from(vec![7u8; SMALL]), rpc_echo::<P>());
    for _ in 0..WARMUP {
        client.unary(&echo, &payload).await.expect("call");
    }
    let start = Instant::now();
    let times = if in_flight == 1 {
        let mut times = Vec::with_capacity(total);
        for _ in 0..total {
            let t = Instant::now();
            client.unary(&echo, &payload).await.expect("call");
            times.push(t.elapsed());
        }
        times
    } else {
        let (done_tx, mut done_rx) = mpsc::unbounded();
        for _ in 0..in_flight {
            let (client, payload, done) = (client.clone(), payload.clone(), done_tx.clone());
            N::spawn(async move {
                let mut times = Vec::with_capacity(total / in_flight);
                for _ in 0..total / in_flight {
                    let t = Instant::now();
                    client.unary(&echo, &payload).await.expect("call");
                    times.push(t.elapsed());
                }
                let _ = done.unbounded_send(times);
            });
        }
        let mut times = Vec::with_capacity(total);
        for _ in 0..in_flight {
            times.extend(done_rx.next().await.expect("caller"));
        }
        times
    };
    calls(times, start.elapsed())
}

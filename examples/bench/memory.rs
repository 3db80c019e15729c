//! Memory cases: resident memory per idle channel and per idle connection.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;

use crate::cases::Value;
use crate::net::Net;
use crate::systems::{ws_config, wsmux_pair};

/// Runs one memory case in a child process (`--measure-memory`) and reads its figure.
pub(crate) fn in_fresh_process(runtime: &str, case: &str, system: &str, n: usize) -> Value {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .args(["--measure-memory", runtime, case, system, &n.to_string()])
        .output()
        .expect("run the memory case");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Say what the child did about the file-descriptor limit.
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        if line.starts_with("(file-descriptor")
            || line.trim_start().starts_with("accept under load")
        {
            println!("  {line}");
        }
    }
    let per_item = stdout
        .lines()
        .find_map(|l| l.strip_prefix("bytes_per_item ")?.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!("memory case failed: {stdout}{}", String::from_utf8_lossy(&output.stderr))
        });
    Value::Memory { per_item, items: n }
}

/// Raises this process's soft limit of open files toward `wanted` (up to the hard limit),
/// saying what it did; the 10,000-connection case needs more than the common default of 1024.
pub(crate) fn raise_fd_limit(wanted: u64) {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) if soft < wanted => {
            let target = wanted.min(hard);
            match rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard) {
                Ok(()) => eprintln!("(file-descriptor limit raised from {soft} to {target})"),
                Err(e) => eprintln!("(file-descriptor limit {soft}; raising it failed: {e})"),
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("(file-descriptor limit unknown: {e})"),
    }
}

/// The memory case itself, in the child process.
pub(crate) async fn measure<N: Net>(case: &str, system: &str, n: usize) -> Value {
    raise_fd_limit(n as u64 + 1024);
    match (case, system) {
        ("mem-channels", _) => idle_channels::<N>(n).await,
        ("mem-hostile", _) => hostile_sessions::<N>(n).await,
        (_, "raw") => idle_connections::<N>(n, "raw").await,
        _ => idle_connections::<N>(n, "wsmux").await,
    }
}

/// Resident set size of this process, from /proc/self/statm.
pub(crate) fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// `n` idle channels on one session, both ends in this process (so each channel is counted
/// with its state at BOTH ends, and its application handles).
pub(crate) async fn idle_channels<N: Net>(n: usize) -> Value {
    let mut config = wsmux::Config::default();
    config.protocol.max_channels = n as u32 + 16;
    config.protocol.accept_backlog = n + 16;
    let (client, server) = wsmux_pair::<N>(config).await;
    let before = rss();
    let open = async {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(client.open("idle").await.expect("open"));
        }
        v
    };
    let accept = async {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(server.accept().await.expect("incoming").accept());
        }
        v
    };
    let (opened, accepted) = futures::join!(open, accept);
    let after = rss();
    assert_eq!(server.stats().open_channels as usize, n);
    drop((opened, accepted));
    Value::Memory { per_item: after.saturating_sub(before) as f64 / n as f64, items: n }
}

/// `n` idle connections to one server in this process; the clients run in a child process so
/// only the server side is measured. `kind` is `wsmux` or `raw`.
pub(crate) async fn idle_connections<N: Net>(n: usize, kind: &'static str) -> Value {
    let listener = N::bind().await;
    let addr = N::local_addr(&listener);
    let (tx, mut rx) = mpsc::unbounded::<Box<dyn std::any::Any + Send>>();
    N::spawn(async move {
        // n idle connections, then one more: accepting under load (catalogue L4).
        for _ in 0..n + 1 {
            let tcp = N::accept(&listener).await;
            let tx = tx.clone();
            N::spawn(async move {
                if kind == "wsmux" {
                    let config = wsmux::server::ServerConfig::default();
                    let (session, driver) =
                        wsmux::server::accept(tcp, &config).await.expect("upgrade");
                    N::spawn(async move {
                        let _ = driver.await;
                    });
                    let _ = tx.unbounded_send(Box::new(session));
                } else {
                    let ws = async_tungstenite::accept_async_with_config(tcp, Some(ws_config()))
                        .await
                        .expect("upgrade");
                    let (sink, mut stream) = ws.split();
                    let _ = tx.unbounded_send(Box::new(sink));
                    while let Some(Ok(_)) = stream.next().await {}
                }
            });
        }
    });
    let before = rss();
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--idle-client", kind, &addr.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the client process");
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(rx.next().await.expect("connection"));
    }
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("child stdout"));
    out.read_line(&mut line).expect("child says ready");
    let after = rss();
    if kind == "wsmux" {
        accept_under_load(addr, n, &mut rx).await;
    }
    drop(child.stdin.take()); // the child exits when its stdin closes
    let _ = out.read_to_string(&mut line);
    let _ = child.wait();
    drop(held);
    Value::Memory { per_item: after.saturating_sub(before) as f64 / n as f64, items: n }
}

/// With `n` idle connections held, one more client connects, upgrades and pings: the server
/// must still accept promptly (catalogue L4). Prints the figures on stderr.
async fn accept_under_load(
    addr: std::net::SocketAddr,
    n: usize,
    rx: &mut mpsc::UnboundedReceiver<Box<dyn std::any::Any + Send>>,
) {
    let started = std::time::Instant::now();
    let tcp = async_std::net::TcpStream::connect(addr).await.expect("connect under load");
    let url = format!("ws://{addr}/mux");
    let (session, driver) = wsmux::client::connect_on(tcp, &url, wsmux::Config::default())
        .await
        .expect("upgrade under load");
    wsmux::spawn(driver);
    let upgraded = started.elapsed();
    let _server_side = rx.next().await.expect("the server accepted it");
    let rtt = session.ping().await.expect("ping under load");
    eprintln!(
        "    accept under load: with {n} idle connections, one more connected and upgraded in \
         {:.2} ms; its first ping took {:.0} µs",
        upgraded.as_secs_f64() * 1e3,
        rtt.as_secs_f64() * 1e6
    );
}

/// The child process of [`idle_connections`]: opens `n` connections of `kind` to `addr`,
/// says "ready", and holds them until its stdin closes.
pub(crate) fn idle_client(kind: &str, addr: &str, n: usize) {
    raise_fd_limit(n as u64 + 1024);
    let addr: std::net::SocketAddr = addr.parse().expect("address");
    async_std::task::block_on(async move {
        let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
            let batch = chunk.iter().map(|_| async {
                let tcp = async_std::net::TcpStream::connect(addr).await.expect("connect");
                let held: Box<dyn std::any::Any + Send> = if kind == "wsmux" {
                    let url = format!("ws://{addr}/mux");
                    let (session, driver) =
                        wsmux::client::connect_on(tcp, &url, wsmux::Config::default())
                            .await
                            .expect("wsmux");
                    wsmux::spawn(driver);
                    Box::new(session)
                } else {
                    let url = format!("ws://{addr}/");
                    let (ws, _) =
                        async_tungstenite::client_async_with_config(url, tcp, Some(ws_config()))
                            .await
                            .expect("raw");
                    Box::new(ws)
                };
                held
            });
            held.extend(futures::future::join_all(batch).await);
        }
        println!("ready {}", held.len());
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    });
}

/// Server RSS with `sessions` hostile clients (catalogue S13/S14): each opens 256 channels to
/// `echo`, announces the minimum window, sends 256 KiB on every channel and never reads. The
/// clients run in a child process; the figure is the server's RSS growth per session, once it
/// has stopped growing.
pub(crate) async fn hostile_sessions<N: Net>(sessions: usize) -> Value {
    let listener = N::bind().await;
    let addr = N::local_addr(&listener);
    N::spawn(async move {
        // One config for all: its clones share the server's memory budget.
        let config = wsmux::server::ServerConfig::default();
        for _ in 0..sessions {
            let tcp = N::accept(&listener).await;
            let config = config.clone();
            N::spawn(async move {
                let (session, driver) = wsmux::server::accept(tcp, &config).await.expect("upgrade");
                N::spawn(async move {
                    let _ = driver.await;
                });
                wsmux::interop::serve(session).await;
            });
        }
    });
    let before = rss();
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--hostile-client", &addr.to_string(), &sessions.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the client process");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("child stdout"));
    out.read_line(&mut line).expect("child says ready");
    // The attack has been sent (or is blocked by credit): wait until the RSS stops growing.
    let mut peak = rss();
    let mut still = 0;
    let started = std::time::Instant::now();
    while still < 10 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100)); // block_on's thread: the server runs on others
        let now = rss();
        if now > peak + (1 << 20) {
            still = 0;
        } else {
            still += 1;
        }
        peak = peak.max(now);
    }
    drop(child.stdin.take());
    let _ = out.read_to_string(&mut line);
    let _ = child.wait();
    let grown = peak.saturating_sub(before);
    eprintln!(
        "    hostile: {sessions} sessions × 256 channels × 256 KiB unread: server RSS grew by \
         {:.1} MiB",
        grown as f64 / (1u64 << 20) as f64
    );
    Value::Memory { per_item: grown as f64 / sessions as f64, items: sessions }
}

/// The child process of [`hostile_sessions`]: `n` sessions to `addr`, each opening 256 channels
/// to `echo` and sending 256 KiB on every one without ever reading; says "ready" once every
/// channel's sending is queued or under way, and holds everything until its stdin closes.
pub(crate) fn hostile_client(addr: &str, n: usize) {
    raise_fd_limit(n as u64 + 1024);
    let addr: std::net::SocketAddr = addr.parse().expect("address");
    async_std::task::block_on(async move {
        let mut held = Vec::with_capacity(n);
        let block = bytes::Bytes::from(vec![7u8; 64 * 1024]);
        for _ in 0..n {
            let tcp = async_std::net::TcpStream::connect(addr).await.expect("connect");
            let url = format!("ws://{addr}/mux");
            let mut config = wsmux::Config::default();
            // The smallest window the spec allows: the server's replies pile up on its side.
            config.protocol.initial_window = 64 * 1024;
            let (session, driver) =
                wsmux::client::connect_on(tcp, &url, config).await.expect("wsmux");
            wsmux::spawn(driver);
            for _ in 0..256 {
                let mut ch = session.open("echo").await.expect("open");
                let block = block.clone();
                async_std::task::spawn(async move {
                    for _ in 0..4 {
                        if ch.send(block.clone()).await.is_err() {
                            break;
                        }
                    }
                    // Never read; hold the channel until the process ends.
                    futures::future::pending::<()>().await;
                });
            }
            held.push(session);
        }
        // Let the sends start.
        async_std::task::sleep(Duration::from_millis(500)).await;
        println!("ready {}", held.len());
        let mut sink = Vec::new();
        let _ = async_std::io::ReadExt::read_to_end(&mut async_std::io::stdin(), &mut sink).await;
    });
}

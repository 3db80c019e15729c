//! Soak: random traffic over many channels and sessions for a given time, every byte checked.
//!
//! A server and several client sessions on loopback. In each session more workers than the
//! server allows channels run random operations in a loop, so opens wait at the channel cap
//! and channels open and close at it all the time:
//!
//! - `echo`: messages of random sizes, each echoed back and compared;
//! - `upload`: a random amount in random-size messages; the server answers its checksum;
//! - `download`: the server sends a random amount made from a seed; compared by checksum;
//! - `abort`: a transfer the client resets or drops halfway (the server must cope).
//!
//! Sessions are replaced now and then (graceful close, reconnect). The resident set is reported
//! at the start, ten times through the run, and at the end; the run fails if any byte differed,
//! any operation failed, a closed session still held channel state, the server kept a session
//! after its shutdown, or the resident set grew by more than a fifth between the first sample
//! (after the warm-up) and the last.
//!
//! Run: `cargo run --release --example soak -- --seconds 600` (`--help` for options).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use wsmux::server::{Server, ServerConfig};
use wsmux::{ChannelError, Config, Error, ErrorCode, Incoming, OpenOptions, Session};

struct Options {
    seconds: u64,
    sessions: usize,
    workers: usize,
    max_channels: u32,
    seed: u64,
}

fn options() -> Options {
    let mut o = Options { seconds: 60, sessions: 4, workers: 48, max_channels: 32, seed: 1 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> u64 {
            let v = args.next().unwrap_or_else(|| panic!("{name} needs a value"));
            v.parse().unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        };
        match arg.as_str() {
            "--seconds" => o.seconds = value("--seconds"),
            "--sessions" => o.sessions = value("--sessions") as usize,
            "--workers" => o.workers = value("--workers") as usize,
            "--max-channels" => o.max_channels = value("--max-channels") as u32,
            "--seed" => o.seed = value("--seed"),
            _ => {
                println!(
                    "usage: soak [--seconds 60] [--sessions 4] [--workers 48 (per session)] \
                     [--max-channels 32 (server's cap per session)] [--seed 1]"
                );
                std::process::exit(if arg == "--help" { 0 } else { 2 });
            }
        }
    }
    o
}

/// xorshift64*: deterministic per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A message size: mostly small, sometimes up to 64 KiB, now and then empty.
    fn size(&mut self) -> usize {
        match self.below(10) {
            0 => 0,
            1..=6 => self.below(512) as usize,
            7 | 8 => self.below(8 * 1024) as usize,
            _ => self.below(64 * 1024) as usize,
        }
    }
}

fn fnv(hash: &mut u64, data: &[u8]) {
    for &b in data {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Deterministic bytes from a seed.
fn bytes(seed: u64, len: usize) -> Bytes {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

#[derive(Default)]
struct Stats {
    ops: [AtomicU64; 4],
    bytes: AtomicU64,
    failures: AtomicU64,
    sessions: AtomicU64,
}

/// How long anything may hang before it counts as a failure.
const HANG: Duration = Duration::from_secs(60);

const OPS: [&str; 4] = ["echo", "upload", "download", "abort"];

fn fail(stats: &Stats, what: String) {
    stats.failures.fetch_add(1, Ordering::Relaxed);
    eprintln!("FAILURE: {what}");
}

// ----- server -----

async fn serve(session: Session, stats: Arc<Stats>) {
    while let Some(incoming) = session.accept().await {
        let stats = stats.clone();
        async_std::task::spawn(async move {
            match handle(incoming).await {
                // The client aborts some channels on purpose (CANCEL): expected here.
                Err(Error::Channel(ChannelError::Reset { code: ErrorCode::CANCEL, .. }))
                | Ok(()) => {}
                Err(e) => fail(&stats, format!("server side: {e}")),
            }
        });
    }
}

async fn handle(incoming: Incoming) -> Result<(), Error> {
    let route = incoming.route().to_owned();
    let metadata = incoming.metadata().clone();
    let mut ch = incoming.accept();
    match route.as_str() {
        "echo" => wsmux::interop::echo(ch).await,
        "upload" => {
            let mut hash = FNV_START;
            let mut total = 0u64;
            while let Some(msg) = ch.recv().await? {
                fnv(&mut hash, &msg);
                total += msg.len() as u64;
            }
            let mut receipt = hash.to_le_bytes().to_vec();
            receipt.extend_from_slice(&total.to_le_bytes());
            ch.finish_with(receipt).await.map_err(|e| e.error)
        }
        "download" => {
            let (len, seed) = download_request(&metadata);
            let mut rng = Rng(seed | 1);
            let mut sent = 0;
            while sent < len {
                let n = rng.size().min(len - sent);
                ch.send(bytes(seed + sent as u64, n)).await?;
                sent += n;
            }
            ch.finish().await
        }
        _ => {
            ch.reset(ErrorCode::NOT_FOUND, "no such route");
            Ok(())
        }
    }
}

fn download_request(metadata: &[u8]) -> (usize, u64) {
    let len = u32::from_le_bytes(metadata[..4].try_into().unwrap_or_default()) as usize;
    let seed = u64::from_le_bytes(metadata[4..12].try_into().unwrap_or_default());
    (len, seed)
}

// ----- client -----

/// One random operation; returns the bytes it moved, or why it failed.
async fn operation(session: &Session, rng: &mut Rng, stats: &Stats) -> Result<u64, String> {
    let kind = rng.below(4) as usize;
    stats.ops[kind].fetch_add(1, Ordering::Relaxed);
    let seed = rng.next();
    match kind {
        0 => {
            let mut ch = session.open("echo").await.map_err(|e| format!("open echo: {e}"))?;
            let mut moved = 0;
            for i in 0..rng.below(16) + 1 {
                let msg = bytes(seed + i, rng.size());
                ch.send(msg.clone()).await.map_err(|e| format!("echo send: {e}"))?;
                match ch.recv().await {
                    Ok(Some(back)) if back == msg => moved += 2 * msg.len() as u64,
                    other => {
                        return Err(format!("echo of {} bytes came back as {other:?}", msg.len()))
                    }
                }
            }
            ch.finish().await.map_err(|e| format!("echo finish: {e}"))?;
            match ch.recv().await {
                Ok(None) => Ok(moved),
                other => Err(format!("echo end: {other:?}")),
            }
        }
        1 => {
            let ch = session.open("upload").await.map_err(|e| format!("open upload: {e}"))?;
            let (mut tx, mut rx) = ch.split();
            let total = rng.below(1 << 20) as usize;
            let (mut hash, mut sent) = (FNV_START, 0);
            while sent < total {
                let msg = bytes(seed + sent as u64, rng.size().min(total - sent));
                fnv(&mut hash, &msg);
                sent += msg.len();
                tx.send(msg).await.map_err(|e| format!("upload send: {e}"))?;
            }
            tx.close().await.map_err(|e| format!("upload finish: {e}"))?;
            let receipt = match rx.next().await {
                Some(Ok(r)) if r.len() == 16 => r,
                other => return Err(format!("upload receipt: {other:?}")),
            };
            let theirs = u64::from_le_bytes(receipt[..8].try_into().unwrap_or_default());
            let their_total = u64::from_le_bytes(receipt[8..].try_into().unwrap_or_default());
            if (theirs, their_total) != (hash, sent as u64) {
                return Err(format!("upload of {sent} bytes: the server got {their_total}"));
            }
            match rx.next().await {
                None => Ok(sent as u64),
                other => Err(format!("upload end: {other:?}")),
            }
        }
        2 => {
            let len = rng.below(1 << 20) as usize;
            let mut metadata = (len as u32).to_le_bytes().to_vec();
            metadata.extend_from_slice(&seed.to_le_bytes());
            let options = OpenOptions::new("download").metadata(metadata).finish();
            let mut ch =
                session.open_with(options).await.map_err(|e| format!("open download: {e}"))?;
            // What the server sends, recomputed here.
            let mut expected = FNV_START;
            let mut r = Rng(seed | 1);
            let mut sent = 0;
            while sent < len {
                let n = r.size().min(len - sent);
                fnv(&mut expected, &bytes(seed + sent as u64, n));
                sent += n;
            }
            let (mut hash, mut got) = (FNV_START, 0);
            loop {
                match ch.recv().await {
                    Ok(Some(msg)) => {
                        fnv(&mut hash, &msg);
                        got += msg.len();
                    }
                    Ok(None) => break,
                    Err(e) => return Err(format!("download after {got} of {len} bytes: {e}")),
                }
            }
            if (hash, got) != (expected, len) {
                return Err(format!("download of {len} bytes: got {got}, checksums differ"));
            }
            Ok(len as u64)
        }
        _ => {
            let mut ch = session.open("echo").await.map_err(|e| format!("open abort: {e}"))?;
            let _ = ch.send(bytes(seed, rng.size())).await;
            if rng.below(2) == 0 {
                let _ = ch.recv().await;
            }
            if rng.below(2) == 0 {
                ch.reset(ErrorCode::CANCEL, "soak abort");
            } else {
                drop(ch);
            }
            Ok(0)
        }
    }
}

async fn connect(url: &str, stats: &Stats) -> Session {
    let (session, driver) = wsmux::client::connect(url, Config::default()).await.expect("connect");
    wsmux::spawn(driver);
    stats.sessions.fetch_add(1, Ordering::Relaxed);
    session
}

/// One client session slot: its workers run until `stop`; the session is replaced after a
/// random number of operations.
async fn slot(
    url: String,
    index: usize,
    o: Arc<Options>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng(o.seed.wrapping_mul(1000).wrapping_add(index as u64 + 1) | 1);
    while !stop.load(Ordering::Relaxed) {
        let session = connect(&url, &stats).await;
        let ops_left = Arc::new(AtomicU64::new(200 + rng.below(2000)));
        let workers: Vec<_> = (0..o.workers)
            .map(|w| {
                let (session, stats, stop, ops_left) =
                    (session.clone(), stats.clone(), stop.clone(), ops_left.clone());
                let mut rng = Rng(rng.next() ^ w as u64 | 1);
                async_std::task::spawn(async move {
                    let take = |n: u64| n.checked_sub(1);
                    while !stop.load(Ordering::Relaxed)
                        && ops_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, take).is_ok()
                    {
                        match operation(&session, &mut rng, &stats).await {
                            Ok(moved) => stats.bytes.fetch_add(moved, Ordering::Relaxed),
                            Err(e) => {
                                fail(&stats, e);
                                return;
                            }
                        };
                    }
                })
            })
            .collect();
        // A hang is a failure too, not a soak that never ends.
        let all = futures::future::join_all(workers);
        if async_std::future::timeout(HANG, all).await.is_err() {
            fail(&stats, format!("operations still running {HANG:?} after the session's last"));
            return;
        }
        session.close(ErrorCode::NO_ERROR, "soak: next session");
        match async_std::future::timeout(HANG, session.closed()).await {
            Ok(None) => {}
            Ok(Some(e)) => fail(&stats, format!("session ended with {e}")),
            Err(_) => fail(&stats, format!("session not closed {HANG:?} after its GOAWAY")),
        }
        let left = session.stats().held_channels;
        if left != 0 {
            fail(&stats, format!("a closed session still counts {left} channels"));
        }
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let o = Arc::new(options());
    async_std::task::block_on(async move {
        let start_rss = rss_kib();
        let mut config = ServerConfig::default();
        config.session.protocol.max_channels = o.max_channels;
        let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
        let url = format!("ws://{}/mux", server.local_addr());
        println!(
            "soak: {} s, {} sessions × {} workers, server cap {} channels per session, seed {}",
            o.seconds, o.sessions, o.workers, o.max_channels, o.seed
        );
        println!("start: RSS {start_rss} KiB");
        let server = Arc::new(server);
        let stats = Arc::new(Stats::default());
        let acceptor = async_std::task::spawn({
            let (server, stats) = (server.clone(), stats.clone());
            async move {
                while let Some(session) = server.accept().await {
                    async_std::task::spawn(serve(session, stats.clone()));
                }
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let slots: Vec<_> = (0..o.sessions)
            .map(|i| {
                async_std::task::spawn(slot(url.clone(), i, o.clone(), stats.clone(), stop.clone()))
            })
            .collect();

        let began = Instant::now();
        let run = Duration::from_secs(o.seconds);
        let tick = (run / 10).max(Duration::from_secs(1));
        let mut samples = Vec::new();
        while began.elapsed() < run {
            async_std::task::sleep(tick.min(run - began.elapsed())).await;
            let ops: u64 = stats.ops.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            let rss = rss_kib();
            samples.push(rss);
            println!(
                "{:>5.0} s: {ops} operations, {:.1} GiB moved, {} sessions, {} server sessions \
                 live, RSS {rss} KiB, failures {}",
                began.elapsed().as_secs_f64(),
                stats.bytes.load(Ordering::Relaxed) as f64 / (1u64 << 30) as f64,
                stats.sessions.load(Ordering::Relaxed),
                server.session_count(),
                stats.failures.load(Ordering::Relaxed),
            );
        }
        stop.store(true, Ordering::Relaxed);
        let ended = async {
            futures::future::join_all(slots).await;
            server.shutdown(Duration::from_secs(10)).await;
            acceptor.await;
        };
        if async_std::future::timeout(HANG, ended).await.is_err() {
            fail(&stats, format!("the run did not wind down within {HANG:?}"));
        }
        let elapsed = began.elapsed();

        let ops: Vec<u64> = stats.ops.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let failures = stats.failures.load(Ordering::Relaxed);
        println!("\nafter {:.0} s:", elapsed.as_secs_f64());
        for (name, n) in OPS.iter().zip(&ops) {
            println!("  {name:>8}: {n}");
        }
        println!(
            "  {:.2} GiB verified, {} sessions, {} failures",
            stats.bytes.load(Ordering::Relaxed) as f64 / (1u64 << 30) as f64,
            stats.sessions.load(Ordering::Relaxed),
            failures
        );
        // Steady state: the first sample is after the warm-up; later ones must not climb.
        let first = samples.first().copied().unwrap_or(0);
        let last = samples.last().copied().unwrap_or(0);
        let peak = samples.iter().copied().max().unwrap_or(0);
        let growth = last as f64 / first.max(1) as f64;
        println!(
            "  RSS under load: first sample {first} KiB, last {last} KiB ({:+.1} %), peak {peak} KiB",
            (growth - 1.0) * 100.0
        );
        println!("  RSS after shutdown {} KiB (start {start_rss} KiB)", rss_kib());
        // Fewer than two samples (or no /proc) would check nothing: that is a failure too.
        let measured = samples.len() >= 2 && first > 0;
        if !measured {
            println!("  too few RSS samples to judge memory (run at least 2 s on Linux)");
        }
        if failures > 0 || server.session_count() != 0 || growth > 1.2 || !measured {
            println!("soak: FAILED");
            std::process::exit(1);
        }
        println!("soak: ok");
    });
}

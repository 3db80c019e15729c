//! The wsmux demo: a server and a client on loopback, three kinds of traffic at once over ONE
//! WebSocket connection, and a report of what happened.
//!
//! - calls: request/response, each a channel opened with its request and FIN in one frame;
//! - events: a server-pushed stream of typed events on one long-lived channel;
//! - bulk: an upload of tens of MiB, verified by checksum on the server.
//!
//! The calls run WHILE the bulk transfer runs, so their latency shows whether one big flow
//! blocks the small ones (it must not).
//!
//! Run: `cargo run --release --example demo` (`-- --help` for options).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wsmux::server::{Server, ServerConfig};
use wsmux::{Bincode, Channel, Codec, Config, Error, ErrorCode, Incoming, OpenOptions, Session};

/// An event pushed by the server.
#[derive(Serialize, Deserialize, Debug)]
struct Event {
    seq: u64,
    topic: String,
    value: f64,
}

/// The reply to a bulk upload.
#[derive(Serialize, Deserialize, Debug)]
struct Receipt {
    bytes: u64,
    checksum: u64,
}

struct Options {
    bulk_mib: usize,
    events: u64,
}

const HELP: &str = "wsmux demo: server and client on loopback, several channels over one connection

USAGE: cargo run --release --example demo -- [--bulk-mib N] [--events N] [--quick]

  --bulk-mib N   size of the bulk upload in MiB (default 64)
  --events N     number of events the server pushes (default 2000)
  --quick        small sizes (8 MiB bulk, 500 events), for tests and CI
  --help         this text";

fn parse_args() -> Result<Options, String> {
    let mut o = Options { bulk_mib: 64, events: 2000 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--bulk-mib" => o.bulk_mib = value("--bulk-mib")? as usize,
            "--events" => o.events = value("--events")?,
            "--quick" => {
                o.bulk_mib = 8;
                o.events = 500;
            }
            "--help" | "-h" => {
                // Not println!: it panics when stdout is a pipe closed early (`| head`).
                let _ = std::io::Write::write_all(
                    &mut std::io::stdout(),
                    format!("{HELP}\n").as_bytes(),
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n\n{HELP}")),
        }
    }
    Ok(o)
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = async_std::task::block_on(run(options)) {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

async fn run(options: Options) -> Result<(), Error> {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
    let url = format!("ws://{}/mux", server.local_addr());
    let (client, driver) = wsmux::client::connect(&url, Config::default()).await?;
    wsmux::spawn(driver);
    let session = server.accept().await.ok_or(Error::Timeout("accept"))?;
    let events = options.events;
    async_std::task::spawn(serve(session, events));

    let started = Instant::now();
    let bulk_done = Arc::new(AtomicBool::new(false));
    let bulk = async_std::task::spawn(upload(client.clone(), options.bulk_mib, bulk_done.clone()));
    let subscription = async_std::task::spawn(subscribe(client.clone()));
    let mut latencies = Vec::new();
    let mut call_no = 0u64;
    // Call while the bulk transfer runs (and at least 200 times).
    while !bulk_done.load(Ordering::Acquire) || latencies.len() < 200 {
        let t = Instant::now();
        let sum = call(&client, call_no, 2 * call_no).await?;
        latencies.push(t.elapsed());
        assert_eq!(sum, 3 * call_no, "wrong answer to call {call_no}");
        call_no += 1;
    }
    let (receipt, expected, bulk_time) = bulk.await?;
    let (event_count, events_in_order) = subscription.await?;
    let total = started.elapsed();
    let rtt = client.ping().await?;
    let stats = client.stats();

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let mib = receipt.bytes as f64 / (1024.0 * 1024.0);
    println!("wsmux demo: server and client on 127.0.0.1, one WebSocket connection\n");
    println!("  TCP connections used        {}", server.connections_accepted());
    println!("  channels opened             {}", stats.channels_opened);
    println!("  frames sent / received      {} / {}", stats.frames_sent, stats.frames_received);
    println!(
        "  bytes sent / received       {:.1} MiB / {:.1} MiB",
        stats.bytes_sent as f64 / 1048576.0,
        stats.bytes_received as f64 / 1048576.0
    );
    println!("  round-trip time (PING)      {}", fmt(rtt));
    println!();
    println!(
        "  bulk upload                 {mib:.0} MiB in {:.2} s = {:.0} MiB/s, checksum {}",
        bulk_time.as_secs_f64(),
        mib / bulk_time.as_secs_f64(),
        if receipt.checksum == expected { "ok" } else { "MISMATCH" }
    );
    println!(
        "  calls during the bulk       {} calls, latency p50 {} / p99 {}",
        latencies.len(),
        fmt(pct(0.50)),
        fmt(pct(0.99))
    );
    println!(
        "  event stream                {event_count} events, {}",
        if events_in_order { "in order" } else { "OUT OF ORDER" }
    );
    println!("  total time                  {:.2} s", total.as_secs_f64());
    let ok = receipt.checksum == expected && events_in_order && event_count == events;
    drop(client);
    if !ok {
        return Err(Error::Handshake("the demo's checks failed".into()));
    }
    Ok(())
}

/// One request/response call: the request, and FIN, leave in ONE WebSocket message.
async fn call(client: &Session, a: u64, b: u64) -> Result<u64, Error> {
    let request = Codec::<(u64, u64)>::encode(&Bincode, &(a, b))?;
    let options = OpenOptions::new("add").message(request).finish();
    let mut ch = client.open_with(options).await?;
    let reply = ch.recv().await?.ok_or(Error::Timeout("no reply"))?;
    Ok(Codec::<u64>::decode(&Bincode, &reply)?)
}

/// Uploads `mib` MiB in 1 MiB messages; returns the server's receipt, our checksum, the time.
async fn upload(
    client: Session,
    mib: usize,
    done: Arc<AtomicBool>,
) -> Result<(Receipt, u64, Duration), Error> {
    let started = Instant::now();
    let mut ch = client.open("upload").await?;
    let mut checksum = Fnv::default();
    // Eight distinct 1 MiB blocks, sent in turn (cloning `Bytes` copies nothing).
    let blocks: Vec<Bytes> = (0..8)
        .map(|i| (0..1 << 20).map(|k: usize| (k.wrapping_mul(31) ^ i) as u8).collect())
        .collect();
    for i in 0..mib {
        let block = blocks[i % blocks.len()].clone();
        checksum.update(&block);
        ch.send(block).await?;
    }
    ch.finish().await?;
    let reply = ch.recv().await?.ok_or(Error::Timeout("no receipt"))?;
    let receipt: Receipt = Bincode.decode(&reply)?;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Release);
    Ok((receipt, checksum.0, elapsed))
}

/// Subscribes to the event stream; returns how many events came and whether in order.
async fn subscribe(client: Session) -> Result<(u64, bool), Error> {
    let mut events = client.open("events").await?.typed::<(), Event>();
    let (mut count, mut in_order) = (0, true);
    while let Some(event) = events.recv().await? {
        in_order &= event.seq == count;
        count += 1;
    }
    Ok((count, in_order))
}

/// The server side: one task per channel, by route.
async fn serve(session: Session, events: u64) {
    while let Some(incoming) = session.accept().await {
        async_std::task::spawn(async move {
            if let Err(e) = route(incoming, events).await {
                eprintln!("server: {e}");
            }
        });
    }
}

async fn route(incoming: Incoming, events: u64) -> Result<(), Error> {
    let route = incoming.route().to_owned();
    match route.as_str() {
        "add" => {
            let mut ch = incoming.accept();
            let request = ch.recv().await?.ok_or(Error::Timeout("no request"))?;
            let (a, b): (u64, u64) = Bincode.decode(&request)?;
            // The reply and FIN leave in one frame.
            ch.finish_with(Codec::<u64>::encode(&Bincode, &(a + b))?).await?;
            Ok(())
        }
        "upload" => receive_upload(incoming.accept()).await,
        "events" => {
            let mut ch = incoming.accept().typed::<Event, ()>();
            for seq in 0..events {
                let event = Event { seq, topic: "sensor".into(), value: seq as f64 * 0.5 };
                ch.send(event).await.map_err(Error::from)?;
            }
            ch.finish().await
        }
        other => {
            incoming.refuse(ErrorCode::NOT_FOUND, &format!("no route {other}"));
            Ok(())
        }
    }
}

async fn receive_upload(mut ch: Channel) -> Result<(), Error> {
    let (mut bytes, mut checksum) = (0u64, Fnv::default());
    while let Some(block) = ch.recv().await? {
        bytes += block.len() as u64;
        checksum.update(&block);
    }
    let receipt = Receipt { bytes, checksum: checksum.0 };
    ch.finish_with(Codec::<Receipt>::encode(&Bincode, &receipt)?).await?;
    Ok(())
}

/// FNV-1a over 64-bit little-endian words (a short tail byte by byte): a checksum both ends
/// compute over the stream, eight times faster than byte-wise FNV. Messages arrive whole, so
/// both ends see the same word boundaries.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn update(&mut self, data: &[u8]) {
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            self.0 = (self.0 ^ word).wrapping_mul(0x100_0000_01b3);
        }
        for &b in words.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    }
}

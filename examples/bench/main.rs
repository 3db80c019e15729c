//! The wsmux benchmark: wsmux beside raw async-tungstenite (flush per message, and batched) and
//! beside yamux over the same WebSocket, on loopback, in ONE process run, systems interleaved
//! round by round. It prints a table per case with ratios, checks DESIGN.md's targets, and
//! writes JSON lines. Every loop is bounded in count or time. No figure here is asserted.
//!
//! Run: `cargo run --release --example bench` (`-- --help` for options).

mod cases;
mod memory;
mod net;
mod report;
mod systems;
mod wan;

use std::time::Duration;

use bytes::Bytes;

use cases::*;
use net::{AsyncStd, Net, Tokio};
use report::Report;

const HELP: &str =
    "wsmux bench: wsmux beside raw async-tungstenite and yamux over the same WebSocket

USAGE: cargo run --release --example bench -- [OPTIONS] [CASES...]

  --runtime R     async-std, tokio, or both (default both)
  --rounds N      rounds per case; systems are interleaved within each round (default 3)
  --quick         tiny sizes, one round: a smoke test, not a measurement
  --json PATH     where to write JSON lines (default target/bench.jsonl)
  --only SYSTEMS  run only these systems, comma-separated (tcp, raw, raw-flush, raw-batch,
                  yamux, wsmux, ...), for profiling
  --help          this text

CASES (default all): bulk-16k bulk-1m bulk-64ch small-64ch echo hol open rpc wan-20ms wan-50ms
                     mem-channels mem-connections mem-hostile

ENVIRONMENT: WSMUX_BENCH_RPC_PAYLOAD=bytes makes the rpc case's payload bytes::Bytes (default
Vec<u8>); WSMUX_CALLER_READS=0/1 sets Config::caller_reads; WSMUX_BENCH_CURRENT_THREAD=1 runs
tokio on one thread.";

/// Sizes of one run.
struct Sizes {
    bulk_16k: usize,
    bulk_1m: usize,
    small_per_run: usize,
    echo_samples: usize,
    hol: Duration,
    open_samples: usize,
    new_conn_samples: usize,
    rpc_calls: usize,
    idle_channels: usize,
    idle_connections: usize,
    wan: Duration,
}

const FULL: Sizes = Sizes {
    bulk_16k: 512 << 20,
    bulk_1m: 1 << 30,
    small_per_run: 1 << 20,
    echo_samples: 10_000,
    hol: Duration::from_secs(2),
    open_samples: 5_000,
    new_conn_samples: 1_000,
    rpc_calls: 10_240,
    idle_channels: 100_000,
    idle_connections: 10_000,
    wan: Duration::from_secs(1),
};

const QUICK: Sizes = Sizes {
    bulk_16k: 2 << 20,
    bulk_1m: 4 << 20,
    small_per_run: 6_400,
    echo_samples: 100,
    hol: Duration::from_millis(100),
    open_samples: 100,
    new_conn_samples: 20,
    rpc_calls: 128,
    idle_channels: 1_000,
    idle_connections: 50,
    wan: Duration::from_millis(200),
};

/// (case, title, systems)
const CASES: &[(&str, &str, &[&str])] = &[
    ("bulk-16k", "bulk, 1 channel, 16 KiB messages", &["raw-flush", "raw-batch", "yamux", "wsmux"]),
    ("bulk-1m", "bulk, 1 channel, 1 MiB messages", &["raw-flush", "raw-batch", "yamux", "wsmux"]),
    (
        "bulk-64ch",
        "bulk, 64 channels at once, 16 KiB messages (raw: one WebSocket)",
        &["raw-batch", "yamux", "wsmux"],
    ),
    (
        "small-64ch",
        "64-byte messages over 64 channels (raw: one WebSocket)",
        &["raw-flush", "raw-batch", "yamux", "wsmux"],
    ),
    ("echo", "64-byte echo on an idle connection", &["tcp", "raw", "yamux", "wsmux"]),
    (
        "hol",
        "head-of-line: 64-byte echo while another channel bulk-sends (raw: two connections)",
        &["raw-2conn", "yamux", "wsmux"],
    ),
    (
        "open",
        "open + first 64-byte echo on a new channel (new-conn: TCP + upgrade + echo)",
        &["new-conn", "yamux", "wsmux"],
    ),
    (
        "rpc",
        "unary calls, 64-byte payload ({payload}), 1 and 64 in flight (raw: 64-byte echo on one WebSocket, pipelined; at 1 in flight the two take turns in blocks)",
        &["raw-1", "wsmux-1", "raw-64", "wsmux-64"],
    ),
    (
        "wan-20ms",
        "bulk at 20 ms round trip (a delay line), 16 KiB messages; without growth the session window caps 64 channels at 256 KiB / RTT = 13 MB/s, one channel is capped by its own 256 KiB window",
        &["1ch-fixed", "1ch-grow", "64ch-fixed", "64ch-grow"],
    ),
    (
        "wan-50ms",
        "bulk at 50 ms round trip (a delay line), 16 KiB messages; caps without growth: 5.2 MB/s",
        &["1ch-fixed", "1ch-grow", "64ch-fixed", "64ch-grow"],
    ),
    (
        "mem-channels",
        "resident memory per idle open channel, one session (both ends in-process)",
        &["wsmux"],
    ),
    (
        "mem-connections",
        "resident memory per idle connection, server side (clients in a child process)",
        &["raw", "wsmux"],
    ),
    (
        "mem-hostile",
        "server memory per hostile session: 256 channels to echo, 256 KiB sent on each, nothing read (clients in a child process)",
        &["1-session", "8-sessions", "100-sessions"],
    ),
];

async fn measure<N: Net>(case: &str, system: &str, s: &Sizes) -> Value {
    match (case, system) {
        ("bulk-16k", "raw-flush") => bulk_raw::<N>(false, 16 << 10, s.bulk_16k / 4).await,
        ("bulk-16k", "raw-batch") => bulk_raw::<N>(true, 16 << 10, s.bulk_16k).await,
        ("bulk-16k", "yamux") => bulk_yamux::<N>(16 << 10, s.bulk_16k, 1).await,
        ("bulk-16k", "wsmux") => bulk_wsmux::<N>(16 << 10, s.bulk_16k, 1).await,
        ("bulk-1m", "raw-flush") => bulk_raw::<N>(false, 1 << 20, s.bulk_1m).await,
        ("bulk-1m", "raw-batch") => bulk_raw::<N>(true, 1 << 20, s.bulk_1m).await,
        ("bulk-1m", "yamux") => bulk_yamux::<N>(1 << 20, s.bulk_1m, 1).await,
        ("bulk-1m", "wsmux") => bulk_wsmux::<N>(1 << 20, s.bulk_1m, 1).await,
        ("bulk-64ch", "raw-batch") => bulk_raw::<N>(true, 16 << 10, s.bulk_16k).await,
        ("bulk-64ch", "yamux") => bulk_yamux::<N>(16 << 10, s.bulk_16k, 64).await,
        ("bulk-64ch", "wsmux") => bulk_wsmux::<N>(16 << 10, s.bulk_16k, 64).await,
        ("small-64ch", "raw-flush") => small_raw::<N>(false, s.small_per_run / 4).await,
        ("small-64ch", "raw-batch") => small_raw::<N>(true, s.small_per_run).await,
        ("small-64ch", "yamux") => small_yamux::<N>(s.small_per_run / 4, 64).await,
        ("small-64ch", "wsmux") => small_wsmux::<N>(s.small_per_run, 64).await,
        ("echo", "tcp") => echo_tcp::<N>(s.echo_samples).await,
        ("echo", "raw") => echo_raw::<N>(s.echo_samples).await,
        ("echo", "yamux") => echo_yamux::<N>(s.echo_samples).await,
        ("echo", "wsmux") => echo_wsmux::<N>(s.echo_samples).await,
        ("hol", "raw-2conn") => hol_raw_two_connections::<N>(s.hol).await,
        ("hol", "yamux") => hol_yamux::<N>(s.hol).await,
        ("hol", "wsmux") => hol_wsmux::<N>(s.hol).await,
        ("open", "new-conn") => open_new_connection::<N>(s.new_conn_samples).await,
        ("open", "yamux") => open_yamux::<N>(s.open_samples).await,
        ("open", "wsmux") => open_wsmux::<N>(s.open_samples).await,
        ("rpc", "raw-1") => rpc_raw::<N>(s.rpc_calls, 1).await,
        ("rpc", "wsmux-1") if bytes_payload() => rpc_wsmux::<N, Bytes>(s.rpc_calls, 1).await,
        ("rpc", "wsmux-1") => rpc_wsmux::<N, Vec<u8>>(s.rpc_calls, 1).await,
        ("rpc", "raw-64") => rpc_raw::<N>(s.rpc_calls * 4, 64).await,
        ("rpc", "wsmux-64") if bytes_payload() => rpc_wsmux::<N, Bytes>(s.rpc_calls * 4, 64).await,
        ("rpc", "wsmux-64") => rpc_wsmux::<N, Vec<u8>>(s.rpc_calls * 4, 64).await,
        // Memory is measured in a fresh process each time: freed memory stays resident, so a
        // case measured after another would reuse its pages and look free.
        ("mem-channels", _) => memory::in_fresh_process(N::NAME, case, system, s.idle_channels),
        ("mem-hostile", _) => {
            let n = system.split('-').next().and_then(|n| n.parse().ok()).unwrap_or(1);
            memory::in_fresh_process(
                N::NAME,
                case,
                system,
                if s.idle_connections < 1000 { n.min(2) } else { n },
            )
        }
        ("mem-connections", _) => {
            memory::in_fresh_process(N::NAME, case, system, s.idle_connections)
        }
        ("wan-20ms" | "wan-50ms", _) => {
            let rtt = Duration::from_millis(if case == "wan-20ms" { 20 } else { 50 });
            let channels = if system.starts_with("64ch") { 64 } else { 1 };
            wan::bulk_at_rtt::<N>(rtt, channels, system.ends_with("grow"), s.wan).await
        }
        other => unreachable!("no case {other:?}"),
    }
}

async fn run<N: Net>(
    cases: &[&str],
    only: Option<&str>,
    sizes: &Sizes,
    rounds: usize,
    report: &mut Report,
) {
    println!("\n=== runtime {} ===", N::NAME);
    for &(case, title, systems) in CASES {
        if !cases.contains(&case) {
            continue;
        }
        // Memory cases are one round each: their figure is a size, not a noisy rate.
        let rounds = if case.starts_with("mem") { 1 } else { rounds };
        for _ in 0..rounds {
            for &system in
                systems.iter().filter(|s| only.is_none_or(|o| o.split(',').any(|o| o == **s)))
            {
                if case == "rpc" && only.is_none() && system.ends_with("-1") {
                    // The two at 1 in flight take turns in one measurement (see
                    // `rpc_side_by_side`); `--only` measures one alone.
                    if system == "raw-1" {
                        let (raw, wsmux) = match bytes_payload() {
                            true => rpc_side_by_side::<N, Bytes>(sizes.rpc_calls).await,
                            false => rpc_side_by_side::<N, Vec<u8>>(sizes.rpc_calls).await,
                        };
                        report.add(N::NAME, case, "raw-1", raw);
                        report.add(N::NAME, case, "wsmux-1", wsmux);
                    }
                    continue;
                }
                let value = measure::<N>(case, system, sizes).await;
                if std::env::var_os("WSMUX_BENCH_EACH").is_some() {
                    eprintln!("  {case} {system}: {value:?}");
                }
                report.add(N::NAME, case, system, value);
            }
        }
        if report.has(N::NAME, case) {
            let payload = if bytes_payload() { Bytes::NAME } else { <Vec<u8>>::NAME };
            let title = title.replace("{payload}", payload);
            print!("{}", report.table(N::NAME, case, &title));
        }
    }
    print!("{}", report.targets(N::NAME));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure-memory") {
        let n = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(0);
        let value = match args[1].as_str() {
            "tokio" => Tokio::block_on(memory::measure::<Tokio>(&args[2], &args[3], n)),
            _ => AsyncStd::block_on(memory::measure::<AsyncStd>(&args[2], &args[3], n)),
        };
        if let Value::Memory { per_item, .. } = value {
            println!("bytes_per_item {per_item}");
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--hostile-client") {
        let n = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
        memory::hostile_client(&args[1], n);
        return;
    }
    if args.first().map(String::as_str) == Some("--idle-client") {
        let n = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(0);
        memory::idle_client(&args[1], &args[2], n);
        return;
    }
    let mut runtimes = vec!["async-std", "tokio"];
    let mut rounds = 3;
    let mut quick = false;
    let mut json = std::path::PathBuf::from("target/bench.jsonl");
    let mut cases: Vec<&str> = Vec::new();
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runtime" => {
                runtimes = match it.next().map(String::as_str) {
                    Some("both") => vec!["async-std", "tokio"],
                    Some("async-std") => vec!["async-std"],
                    Some("tokio") => vec!["tokio"],
                    _ => fail("--runtime takes async-std, tokio or both"),
                }
            }
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| fail("--rounds needs a number"))
            }
            "--quick" => quick = true,
            "--only" => {
                only = Some(it.next().unwrap_or_else(|| fail("--only needs a system")).clone())
            }
            "--json" => json = it.next().unwrap_or_else(|| fail("--json needs a path")).into(),
            "--help" | "-h" => {
                // Not println!: it panics when stdout is a pipe closed early (`| head`).
                let _ = std::io::Write::write_all(
                    &mut std::io::stdout(),
                    format!("{HELP}\n").as_bytes(),
                );
                return;
            }
            name => match CASES.iter().find(|c| c.0 == name) {
                Some(c) => cases.push(c.0),
                None => fail(&format!("unknown case or option {name}")),
            },
        }
    }
    if cases.is_empty() {
        cases = CASES.iter().map(|c| c.0).collect();
    }
    let sizes = if quick { &QUICK } else { &FULL };
    if quick {
        rounds = 1;
    }
    println!(
        "wsmux bench: 127.0.0.1, {} cores; figures are from this run, ratios are what matter",
        num_cores()
    );
    let mut report = Report::default();
    for runtime in runtimes {
        match runtime {
            "async-std" => AsyncStd::block_on(run::<AsyncStd>(
                &cases,
                only.as_deref(),
                sizes,
                rounds,
                &mut report,
            )),
            _ => Tokio::block_on(run::<Tokio>(&cases, only.as_deref(), sizes, rounds, &mut report)),
        }
    }
    if let Some(dir) = json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&json, report.json_lines()) {
        Ok(()) => println!("\nJSON lines: {}", json.display()),
        Err(e) => eprintln!("cannot write {}: {e}", json.display()),
    }
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n\n{HELP}");
    std::process::exit(2);
}

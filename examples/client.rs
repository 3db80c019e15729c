//! A wsmux client for the reference server: runs the interoperability routes over one
//! connection and reports what it measured.
//!
//! Run the server first: `cargo run --release --example server`, then
//! `cargo run --release --example client -- --url ws://127.0.0.1:9000/mux`.

use std::time::Instant;

use bytes::Bytes;
use wsmux::{Config, Error, OpenOptions};

const HELP: &str = "wsmux client: exercises a server's echo, source and discard routes

USAGE: cargo run --release --example client -- [OPTIONS]

  --url URL      server URL (default ws://127.0.0.1:9000/mux)
  --bytes N      bytes to pull from source and push to discard (default 16777216)
  --echoes N     echo round trips to time (default 1000)
  --help         this text";

fn main() {
    let mut url = "ws://127.0.0.1:9000/mux".to_owned();
    let mut bytes: u64 = 16 << 20;
    let mut echoes: usize = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--url" => url = value(),
            "--bytes" => bytes = value().parse().unwrap_or_else(|_| fail("--bytes needs a number")),
            "--echoes" => {
                echoes = value().parse().unwrap_or_else(|_| fail("--echoes needs a number"))
            }
            "--help" | "-h" => {
                // Not println!: it panics when stdout is a pipe closed early (`| head`).
                let _ = std::io::Write::write_all(
                    &mut std::io::stdout(),
                    format!("{HELP}\n").as_bytes(),
                );
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    if let Err(e) = async_std::task::block_on(run(&url, bytes, echoes.max(1))) {
        eprintln!("client failed: {e}");
        std::process::exit(1);
    }
}

async fn run(url: &str, bytes: u64, echoes: usize) -> Result<(), Error> {
    let (session, driver) = wsmux::client::connect(url, Config::default()).await?;
    wsmux::spawn(driver);
    println!("connected to {url}");

    let mut echo = session.open("echo").await?;
    let mut times = Vec::with_capacity(echoes);
    for i in 0..echoes {
        let msg = Bytes::from(format!("ping {i}"));
        let t = Instant::now();
        echo.send(msg.clone()).await?;
        let reply = echo.recv().await?;
        times.push(t.elapsed());
        assert_eq!(reply.as_ref(), Some(&msg), "echo returned something else");
    }
    echo.finish().await?;
    times.sort();
    println!(
        "echo      {echoes} round trips, p50 {:?}, p99 {:?}",
        times[times.len() / 2],
        times[(times.len() - 1) * 99 / 100]
    );

    let t = Instant::now();
    let options = OpenOptions::new("source").metadata(bytes.to_string()).finish();
    let mut source = session.open_with(options).await?;
    let mut received = 0u64;
    while let Some(m) = source.recv().await? {
        received += m.len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("source    {received} bytes in {secs:.3} s ({:.0} MiB/s)", mib(received) / secs);

    let t = Instant::now();
    let mut discard = session.open("discard").await?;
    let block = Bytes::from(vec![0x5a; 64 * 1024]);
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(block.len() as u64) as usize;
        discard.send(block.slice(..n)).await?;
        sent += n as u64;
    }
    discard.finish().await?;
    discard.recv().await?; // the server finishes after reading everything
    let secs = t.elapsed().as_secs_f64();
    println!("discard   {sent} bytes in {secs:.3} s ({:.0} MiB/s)", mib(sent) / secs);

    let stats = session.stats();
    println!(
        "session   {} frames sent, {} received, RTT {:?}",
        stats.frames_sent, stats.frames_received, stats.smoothed_rtt
    );
    session.close(wsmux::ErrorCode::NO_ERROR, "done");
    session.closed().await;
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n\n{HELP}");
    std::process::exit(2);
}

//! The reference wsmux server: serves the interoperability routes (`echo`, `discard`,
//! `source`) and RPC methods (`interop.*`, see PROTOCOL.md section 14) on one URL, for
//! `examples/client.rs`, browsers and other implementations.
//!
//! Run: `cargo run --release --example server -- --listen 127.0.0.1:9000`

use wsmux::server::{OriginPolicy, Server, ServerConfig};

const HELP: &str = "wsmux reference server: serves the routes echo, discard and source and the
RPC methods interop.unary, .fail, .header, .hang, .count, .concat and .echo (raw bytes) and
interop.json.sum and .callback (JSON; the callback calls the client back) (PROTOCOL.md 14)

USAGE: cargo run --release --example server -- [OPTIONS]

  --listen ADDR         address to listen on (default 127.0.0.1:9000)
  --path PATH           URL path of the WebSocket endpoint (default /mux)
  --allow-origin ORIGIN also accept browsers from ORIGIN (repeatable; default: same host only)
  --any-origin          accept every Origin
  --help                this text";

fn main() {
    let mut listen = "127.0.0.1:9000".to_owned();
    let mut config = ServerConfig::default();
    let mut allowed = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--listen" => listen = value(),
            "--path" => config.path = Some(value()),
            "--allow-origin" => allowed.push(value()),
            "--any-origin" => config.origins = OriginPolicy::Any,
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
    if !allowed.is_empty() && config.origins != OriginPolicy::Any {
        config.origins = OriginPolicy::AllowList(allowed);
    }
    let path = config.path.clone().unwrap_or_else(|| "/".into());
    async_std::task::block_on(async move {
        let server = match Server::bind(&listen, config).await {
            Ok(s) => s,
            Err(e) => fail(&format!("cannot listen on {listen}: {e}")),
        };
        println!(
            "wsmux server on ws://{}{path} (routes: echo, discard, source; RPC: interop.*)",
            server.local_addr()
        );
        while let Some(session) = server.accept().await {
            println!("session {:?} opened ({} live)", session.side(), server.session_count());
            async_std::task::spawn(wsmux::interop::serve(session));
        }
    });
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n\n{HELP}");
    std::process::exit(2);
}

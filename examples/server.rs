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
  --plain ADDR          also serve a plain WebSocket (no wsmux) on ADDR, the baseline the
                        JS benchmark compares with: its first message, a text, picks the mode:
                        \"echo\" (every message back), \"source N SIZE\" (N bytes in binary
                        messages of SIZE, then close) or \"discard\" (read until a text
                        message, then answer it with the byte count received, as text)
  --initial-window N    the credit each channel grants the client (default 262144: 256 KiB
                        per round trip per channel)
  --max-channel-window N
                        let a channel's window grow up to N while this end reads fast
                        (default 4194304; 262144 turns growth off, the library's default)
  --max-frame-payload N the largest DATA payload it accepts and sends (default 16384, the
                        minimum: small frames interleave channels finely; larger ones cost
                        less per byte)
  --help                this text";

fn main() {
    let mut listen = "127.0.0.1:9000".to_owned();
    let mut config = ServerConfig::default();
    // Browsers are this server's clients: a channel's window may grow (4 MiB) so that one
    // upload is not held to 256 KiB per round trip (--max-channel-window to change).
    config.session.protocol.max_channel_window = 4 << 20;
    let mut allowed = Vec::new();
    let mut plain = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--listen" => listen = value(),
            "--path" => config.path = Some(value()),
            "--allow-origin" => allowed.push(value()),
            "--any-origin" => config.origins = OriginPolicy::Any,
            "--plain" => plain = Some(value()),
            "--initial-window" => match value().parse() {
                Ok(bytes) if bytes >= 65536 => config.session.protocol.initial_window = bytes,
                _ => fail("--initial-window: a byte count of at least 65536"),
            },
            "--max-channel-window" => match value().parse() {
                Ok(bytes) => config.session.protocol.max_channel_window = bytes,
                _ => fail("--max-channel-window: a byte count"),
            },
            "--max-frame-payload" => match value().parse() {
                Ok(bytes) if bytes >= 16384 => config.session.protocol.max_frame_payload = bytes,
                _ => fail("--max-frame-payload: a byte count of at least 16384"),
            },
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
        if let Some(addr) = plain {
            let listener = match async_std::net::TcpListener::bind(&addr).await {
                Ok(l) => l,
                Err(e) => fail(&format!("cannot listen on {addr}: {e}")),
            };
            let local = listener.local_addr().map_or(addr, |a| a.to_string());
            println!("plain WebSocket on ws://{local}/ (modes: echo, source N SIZE, discard)");
            async_std::task::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    async_std::task::spawn(plain::serve(tcp));
                }
            });
        }
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

/// The plain WebSocket baseline: the same work as the wsmux routes, without wsmux.
mod plain {
    use async_tungstenite::tungstenite::protocol::WebSocketConfig;
    use async_tungstenite::tungstenite::Message;
    use futures::{SinkExt, StreamExt};

    pub(crate) async fn serve(tcp: async_std::net::TcpStream) {
        // Messages up to 64 MiB, as wsmux's default message limit allows.
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        let Ok(mut ws) = async_tungstenite::accept_async_with_config(tcp, Some(config)).await
        else {
            return;
        };
        let Some(Ok(Message::Text(mode))) = ws.next().await else { return };
        let words: Vec<&str> = mode.split_whitespace().collect();
        match words.as_slice() {
            ["echo"] => {
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            }
            ["source", n, size] => {
                let (Ok(n), Ok(size)) = (n.parse::<usize>(), size.parse::<usize>()) else {
                    return;
                };
                let block = bytes::Bytes::from(vec![7u8; size.clamp(1, 16 << 20)]);
                let mut left = n;
                while left > 0 {
                    let len = left.min(block.len());
                    if ws.feed(Message::Binary(block.slice(..len))).await.is_err() {
                        return;
                    }
                    left -= len;
                }
                let _ = ws.flush().await;
                let _ = ws.close(None).await;
            }
            ["discard"] => {
                let mut got = 0usize;
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Binary(b) => got += b.len(),
                        Message::Text(_) => {
                            let _ = ws.send(Message::text(got.to_string())).await;
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                let _ = ws.close(None).await;
            }
        }
    }
}

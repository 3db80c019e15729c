//! Windows at a real round trip: a user-space delay line between two TCP ends, and bulk
//! transfers through it with the session window growing (the default) or held at its initial
//! size. The delay line adds latency only: it forwards as fast as it reads and buffers without
//! bound, so a raw WebSocket through it would not see the round trip at all (TCP's own window
//! ends at the line); wsmux's credit is end to end, and there the round trip shows.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cases::{bulk_wsmux_between, Until, Value};
use crate::net::Net;

/// Listens on loopback for ONE connection and forwards it to `target`, each byte `one_way`
/// later in each direction. Its threads end with the connection.
fn delay_line(target: SocketAddr, one_way: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the delay line");
    let addr = listener.local_addr().expect("delay line address");
    std::thread::spawn(move || {
        let Ok((inbound, _)) = listener.accept() else { return };
        let Ok(outbound) = TcpStream::connect(target) else { return };
        for s in [&inbound, &outbound] {
            let _ = s.set_nodelay(true);
        }
        let (a, b) = (inbound.try_clone().expect("clone"), outbound.try_clone().expect("clone"));
        std::thread::spawn(move || forward(inbound, outbound, one_way));
        forward(b, a, one_way);
    });
    addr
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
fn forward(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, chunk) in rx {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// wsmux bulk through a delay line of round trip `rtt`: `channels` channels send 16 KiB
/// messages for `time`; MB/s received. `grow`: the session window may grow (the default), else
/// it stays at its initial 256 KiB.
pub(crate) async fn bulk_at_rtt<N: Net>(
    rtt: Duration,
    channels: usize,
    grow: bool,
    time: Duration,
) -> Value {
    let mut config = crate::systems::wsmux_config::<N>();
    if !grow {
        config.protocol.max_session_window = config.protocol.session_window;
    }
    let listener = N::bind().await;
    let line = delay_line(N::local_addr(&listener), rtt / 2);
    let (c, s) = futures::join!(N::connect(line), N::accept(&listener));
    let (client, (server, server_driver)) = crate::systems::wsmux_on::<N>(c, s, config).await;
    N::spawn(async move {
        let _ = server_driver.await;
    });
    bulk_wsmux_between::<N>(client, server, 16 << 10, channels, Until::Elapsed(time)).await
}

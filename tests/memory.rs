//! Memory a hostile peer can make a server hold (catalogue S13, S14): the session window, the
//! bound on held messages, the session send buffer and the server's memory budget, checked on
//! real sessions against the reference `echo` route while the attack runs.
//!
//! The attacker is the one PROTOCOL.md section 12 describes: it opens 256 channels to `echo`,
//! takes no growth of its own windows, sends far more than any bound on every channel and
//! reads nothing. Every sample of the server side's counters must stay within the documented
//! formula, the attack must be stopped by credit (the server takes in much less than was sent),
//! and a well-behaved session on the same server keeps its echo working.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;

use common::*;
use wsmux::proto::{MemoryBudget, Stats};
use wsmux::server::{Server, ServerConfig};
use wsmux::{Config, Session};

const CHANNELS: usize = 256;
/// Bytes each attacking channel tries to send: 128 MiB per session in all.
const PER_CHANNEL: usize = 512 * 1024;
const BLOCK: usize = 64 * 1024;

/// A client that opens [`CHANNELS`] channels to `echo` on `server`, sends [`PER_CHANNEL`]
/// bytes on each in 64 KiB messages and never reads; its windows stay at the spec minimum
/// per channel and at its initial 256 KiB for the session, so the echoes pile up server-side.
async fn attack(server: &Server) -> Session {
    let url = format!("ws://{}/mux", server.local_addr());
    let mut config = Config::default();
    config.protocol.initial_window = 64 * 1024;
    config.protocol.max_session_window = config.protocol.session_window;
    let (client, driver) = wsmux::client::connect(&url, config).await.unwrap();
    wsmux::spawn(driver);
    let block = Bytes::from(vec![0x5a; BLOCK]);
    for _ in 0..CHANNELS {
        let mut ch = client.open("echo").await.unwrap();
        let block = block.clone();
        async_std::task::spawn(async move {
            for _ in 0..PER_CHANNEL / BLOCK {
                if ch.send(block.clone()).await.is_err() {
                    return;
                }
            }
            // Holds the channel, unread, until the test ends.
            futures::future::pending::<()>().await;
        });
    }
    client
}

/// The documented per-session bound (`wsmux_proto::Config`), checked on one sample.
fn assert_within_session_bound(stats: &Stats, config: &wsmux::proto::Config) {
    assert!(stats.session_window <= u64::from(config.max_session_window), "{stats:?}");
    // Every part paid its charge in credit: unread data, parts and all, is within the window.
    assert!(stats.unread_cost as u64 <= stats.session_window, "{stats:?}");
    assert!(stats.reassembly_bytes <= u64::from(config.max_reassembly), "{stats:?}");
    let queued = config.max_session_send_buffer as usize + BLOCK;
    assert!(stats.queued_bytes <= queued, "{stats:?}");
}

/// What the session holds for its peer now: unread data (with its part charges), messages
/// its handlers hold, replies queued.
fn held(stats: &Stats) -> u64 {
    stats.unread_cost as u64 + stats.reassembly_bytes + stats.queued_bytes as u64
}

/// Samples `sessions` every 20 ms, checking `each` on every sample, until their counters have
/// not moved for 25 samples in a row (the attack is blocked) or 20 s passed.
async fn watch(sessions: &[Session], mut each: impl FnMut(&[Stats])) -> Vec<Stats> {
    let mut last: Vec<Stats> = Vec::new();
    let mut still = 0;
    let started = std::time::Instant::now();
    while still < 25 && started.elapsed() < Duration::from_secs(20) {
        async_std::task::sleep(Duration::from_millis(20)).await;
        let now: Vec<Stats> = sessions.iter().map(Session::stats).collect();
        each(&now);
        let moved = now.iter().zip(&last).any(|(a, b)| a.bytes_received != b.bytes_received);
        still = if moved || last.is_empty() { 0 } else { still + 1 };
        last = now;
    }
    last
}

/// S13: one hostile session stays within its bound; the attack is stopped by credit; a
/// bystander session on the same server is unaffected.
#[test]
fn a_peer_that_never_reads_its_echoes_is_held_to_the_session_bound() {
    run(async {
        let config = ServerConfig::default();
        let proto = config.session.protocol.clone();
        let server = Server::bind("127.0.0.1:0", config).await.unwrap();
        let _attacker = attack(&server).await;
        let hostile = server.accept().await.unwrap();
        async_std::task::spawn(wsmux::interop::serve(hostile.clone()));
        let honest = bystander(&server).await;

        let last = watch(std::slice::from_ref(&hostile), |s| {
            assert_within_session_bound(&s[0], &proto);
        })
        .await;
        let stats = &last[0];
        let attempted = (CHANNELS * PER_CHANNEL) as u64;
        assert!(
            stats.bytes_received < attempted / 2,
            "credit should have stopped the attack: the server took {} of {attempted} bytes",
            stats.bytes_received
        );
        // The bound is what the formula says, not what the attacker tried: far below the
        // 56 MiB a session could be made to hold before the session window.
        let bound = 2 * (16 << 20) + 2 * (256 << 10) + (32 << 20) + (16 << 20) + BLOCK as u64;
        assert!(held(stats) <= bound, "{} held, over the bound {bound}", held(stats));
        assert_echoes(&honest).await;
        assert!(hostile.stats().open_channels as usize >= CHANNELS, "the attacker was not cut");
    });
}

/// S14: many hostile sessions share the server's memory budget: what they hold beyond their
/// free grants never passes it, and a well-behaved session still gets its echo.
#[test]
fn many_hostile_sessions_stay_within_the_server_memory_budget() {
    run(async {
        const SESSIONS: usize = 12;
        const BUDGET: u64 = 8 << 20;
        let mut config = ServerConfig::default().memory_budget(BUDGET);
        // Closing at the end cuts the attackers' channels soon.
        config.session.protocol.drain_timeout = Duration::from_millis(100);
        let proto = config.session.protocol.clone();
        let budget: MemoryBudget = proto.memory_budget.clone().unwrap();
        let server = Server::bind("127.0.0.1:0", config).await.unwrap();
        let mut hostile = Vec::new();
        let mut attackers = Vec::new();
        for _ in 0..SESSIONS {
            attackers.push(attack(&server).await);
            let session = server.accept().await.unwrap();
            async_std::task::spawn(wsmux::interop::serve(session.clone()));
            hostile.push(session);
        }
        let honest = bystander(&server).await;
        // Free per session: the window's initial grant (parts and all), free reassembly, the
        // send buffer and one queued message.
        let free = 2 * u64::from(proto.session_window)
            + u64::from(proto.session_send_buffer)
            + BLOCK as u64;
        let mut peak = 0;
        watch(&hostile, |all| {
            assert!(budget.used() <= BUDGET);
            let total: u64 = all.iter().map(held).sum();
            peak = peak.max(total);
            assert!(
                total <= BUDGET + SESSIONS as u64 * free,
                "{SESSIONS} sessions hold {total} bytes: over the budget plus their free grants"
            );
            for s in all {
                assert_within_session_bound(s, &proto);
            }
        })
        .await;
        assert!(peak > 0, "the attack reached the server");
        assert_echoes(&honest).await;
        // The budget comes back whole when the sessions end.
        drop(attackers);
        for s in &hostile {
            s.close(wsmux::ErrorCode::NO_ERROR, "test over");
        }
        for s in &hostile {
            s.closed().await;
        }
        assert_eq!(budget.used(), 0, "ended sessions still hold budget");
    });
}

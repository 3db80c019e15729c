//! Churn at the channel cap (catalogue L2, the short form: `examples/soak` is the long one):
//! many more workers than the server allows channels open, close, reset and drop channels in a
//! loop; every echo is checked, and afterwards neither end holds any channel state.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;

use common::*;
use wsmux::server::ServerConfig;
use wsmux::{Config, ErrorCode};

#[test]
fn churn_at_the_channel_cap_checks_every_echo_and_leaves_no_state() {
    run(async {
        let mut server_config = ServerConfig::default();
        server_config.session.protocol.max_channels = 8;
        let (client, server) = pair_with(Config::default(), server_config).await;
        async_std::task::spawn(wsmux::interop::serve(server.clone()));
        let workers: Vec<_> = (0..32u64)
            .map(|w| {
                let client = client.clone();
                async_std::task::spawn(async move {
                    for i in 0..40u64 {
                        let mut ch = client.open("echo").await.unwrap();
                        let msg =
                            Bytes::from(pattern(w * 1000 + i, ((w * 7 + i * 13) % 3000) as usize));
                        ch.send(msg.clone()).await.unwrap();
                        assert_eq!(ch.recv().await.unwrap().unwrap(), msg, "worker {w} op {i}");
                        match i % 3 {
                            0 => {
                                ch.finish().await.unwrap();
                                assert_eq!(ch.recv().await.unwrap(), None);
                            }
                            1 => ch.reset(ErrorCode::CANCEL, "churn"),
                            _ => drop(ch), // the peer still sends: a reset with CANCEL
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await;
        }
        assert_eq!(client.stats().channels_opened, 32 * 40);
        // The last resets and FINs are on their way: wait until both ends have freed it all.
        // Looks again after each PING round trip (progress at both ends, not a sleep; a PING
        // may overtake queued frames, hence the loop).
        loop {
            let (c, s) = (client.stats(), server.stats());
            if c.held_channels + s.held_channels == 0 && c.open_channels + s.open_channels == 0 {
                break;
            }
            client.ping().await.expect("the session lives");
        }
        assert!(!client.is_closed() && !server.is_closed());
    });
}

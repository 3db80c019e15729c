//! wss://: TLS on both ends through rustls, with a certificate generated here, at test time.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use wsmux::server::{Server, ServerConfig};
use wsmux::tls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use wsmux::Error;

/// A self-signed certificate for `localhost`, and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der());
    (generated.cert.der().clone(), key.into())
}

async fn tls_server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Server {
    let tls = wsmux::tls::server_config_from_der(vec![cert], key).unwrap();
    Server::bind("127.0.0.1:0", ServerConfig::default().tls(tls)).await.unwrap()
}

#[test]
fn channels_work_end_to_end_over_wss() {
    run(async {
        let (cert, key) = certificate();
        let server = tls_server(cert.clone(), key).await;
        let url = format!("wss://localhost:{}/mux", server.local_addr().port());
        let tls = wsmux::tls::client_config([cert]).unwrap();
        let (client, driver) =
            wsmux::client::connect_tls(&url, Default::default(), tls).await.unwrap();
        wsmux::spawn(driver);
        let session = server.accept().await.unwrap();
        async_std::task::spawn(wsmux::interop::serve(session));
        // Several channels at once, a large message among them: TLS records are not messages.
        let sizes = [1, 1000, 300_000];
        let mut channels = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let mut ch = client.open("echo").await.unwrap();
            ch.send(Bytes::from(pattern(i as u64, len))).await.unwrap();
            channels.push(ch);
        }
        for (i, ch) in channels.iter_mut().enumerate() {
            let got = ch.recv().await.unwrap().unwrap();
            assert_eq!(checksum(&got), checksum(&pattern(i as u64, sizes[i])), "channel {i}");
        }
        assert_eq!(server.session_count(), 1);
    });
}

#[test]
fn a_certificate_the_client_does_not_trust_fails_the_connect_with_a_tls_error() {
    run(async {
        let (cert, key) = certificate();
        let server = tls_server(cert, key).await;
        let url = format!("wss://localhost:{}/mux", server.local_addr().port());
        let (other, _) = certificate();
        let tls = wsmux::tls::client_config([other]).unwrap();
        let err = wsmux::client::connect_tls(&url, Default::default(), tls).await.unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{err}");
        assert!(err.to_string().contains("certificate"), "{err}");
        assert_eq!(server.session_count(), 0);
    });
}

#[test]
fn a_plain_ws_client_gets_no_session_from_a_wss_server() {
    run(async {
        let (cert, key) = certificate();
        let mut config = ServerConfig::default()
            .tls(wsmux::tls::server_config_from_der(vec![cert], key).unwrap());
        config.session.handshake_timeout = std::time::Duration::from_millis(500);
        let server = Server::bind("127.0.0.1:0", config).await.unwrap();
        let url = format!("ws://127.0.0.1:{}/mux", server.local_addr().port());
        assert!(wsmux::client::connect(&url, Default::default()).await.is_err());
        assert_eq!(server.session_count(), 0);
    });
}

#[test]
fn pem_files_load_and_bad_ones_say_which_file() {
    let dir = std::env::temp_dir().join(format!("wsmux-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.key_pair.serialize_pem()).unwrap();
    assert!(wsmux::tls::server_config(&cert_path, &key_path).is_ok());
    assert!(wsmux::tls::client_config_from_pem(&cert_path).is_ok());
    let missing = dir.join("missing.pem");
    let err = wsmux::tls::server_config(&missing, &key_path).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let err = wsmux::tls::server_config(&cert_path, &cert_path).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

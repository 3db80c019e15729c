//! The server's authorization hook: it sees the upgrade request (path, query, headers,
//! cookies, Origin) and accepts, with a value the session keeps, or refuses with an HTTP
//! status before any WebSocket exists.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use common::*;
use wsmux::server::{Rejection, Server, ServerConfig};
use wsmux::Error;

#[derive(Debug, PartialEq)]
struct User(String);

/// A server whose hook accepts the token `good` from the query string, from a
/// `Authorization: Bearer` header or from a `session` cookie; counts the hook's calls.
async fn token_server(calls: Arc<AtomicUsize>) -> (Server, String) {
    let config = ServerConfig::default().authorize(move |req| {
        calls.fetch_add(1, Ordering::SeqCst);
        // The listener tells the hook who connects (an address filter could refuse here).
        assert!(req.remote.is_some_and(|a| a.ip().is_loopback()), "{:?}", req.remote);
        let token = req
            .query_param("token")
            .or_else(|| req.header("authorization")?.strip_prefix("Bearer ").map(str::to_owned))
            .or_else(|| req.cookie("session").map(str::to_owned));
        async move {
            match token.as_deref() {
                Some("good") => Ok(User("ada".into())),
                Some(other) => Err(Rejection::forbidden(format!("token {other:?} is not valid"))),
                None => Err(Rejection::unauthorized("a token is required")),
            }
        }
    });
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let url = format!("ws://{}/mux", server.local_addr());
    (server, url)
}

/// Echoes one message on the server session, then checks who the hook said it was.
async fn echo_once(server: &Server, client: &wsmux::Session) -> Option<String> {
    let session = server.accept().await.unwrap();
    let who = session.auth::<User>().map(|u| u.0.clone());
    async_std::task::spawn(wsmux::interop::serve(session));
    let mut ch = client.open("echo").await.unwrap();
    ch.send(bytes::Bytes::from_static(b"hi")).await.unwrap();
    assert_eq!(ch.recv().await.unwrap().as_deref(), Some(&b"hi"[..]));
    who
}

#[test]
fn a_token_in_the_query_string_is_accepted_and_the_session_knows_the_user() {
    run(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let (server, url) = token_server(calls.clone()).await;
        let (client, driver) =
            wsmux::client::connect(&format!("{url}?x=1&token=go%6Fd"), Default::default())
                .await
                .unwrap();
        wsmux::spawn(driver);
        assert_eq!(echo_once(&server, &client).await.as_deref(), Some("ada"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_header_or_a_cookie_carries_the_token_too() {
    run(async {
        let (server, url) = token_server(Arc::default()).await;
        for (name, value) in [("Authorization", "Bearer good"), ("Cookie", "a=b; session=good")] {
            let mut request = url.as_str().into_client_request().unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
            let (client, driver) =
                wsmux::client::connect(request, Default::default()).await.unwrap();
            wsmux::spawn(driver);
            assert_eq!(echo_once(&server, &client).await.as_deref(), Some("ada"), "{name}");
        }
    });
}

#[test]
fn a_missing_token_gets_401_a_bad_one_403_and_no_session_is_created() {
    run(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let (server, url) = token_server(calls.clone()).await;
        for (query, status, words) in
            [("", 401, "a token is required"), ("?token=bad", 403, "\"bad\" is not valid")]
        {
            let err = wsmux::client::connect(&format!("{url}{query}"), Default::default())
                .await
                .unwrap_err();
            match err {
                Error::Refused { status: s, message } => {
                    assert_eq!(s, status, "{query}");
                    assert!(message.contains(words), "{query}: {message}");
                }
                other => panic!("{query}: expected a refusal, got {other}"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(server.session_count(), 0);
        assert_eq!(server.connections_accepted(), 2);
    });
}

#[test]
fn the_hook_never_sees_a_request_that_fails_the_protocol_checks() {
    run(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let (_server, url) = token_server(calls.clone()).await;
        let wrong_path = url.replace("/mux", "/other");
        let err = wsmux::client::connect(&format!("{wrong_path}?token=good"), Default::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Refused { status: 404, .. }), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_hook_that_never_answers_is_cut_by_the_handshake_timeout() {
    run(async {
        let mut config = ServerConfig::default()
            .authorize(|_| futures::future::pending::<Result<(), Rejection>>());
        config.session.handshake_timeout = Duration::from_millis(200);
        config.max_pending_handshakes = 1;
        let server = Server::bind("127.0.0.1:0", config).await.unwrap();
        let url = format!("ws://{}/mux", server.local_addr());
        // The client would wait a minute: the server closing the connection in the middle of
        // the upgrade (no answer at all) is the server's timeout.
        let mut patient = wsmux::Config::default();
        patient.handshake_timeout = Duration::from_secs(60);
        let cut = |err: &Error| match err {
            Error::WebSocket(e) => matches!(
                **e,
                tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::HandshakeIncomplete
                )
            ),
            _ => false,
        };
        let started = std::time::Instant::now();
        let err = wsmux::client::connect(&url, patient.clone()).await.unwrap_err();
        assert!(cut(&err), "{err:?}");
        // The slot it held is free again: the next client gets the same treatment, not 503.
        let err = wsmux::client::connect(&url, patient).await.unwrap_err();
        assert!(cut(&err), "{err:?}");
        // Two cuts at 200 ms each, one after the other: not before, and far from the client's
        // minute (a loose upper bound: no timing race).
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(400), "cut early, after {waited:?}");
        assert!(waited < Duration::from_secs(30), "{waited:?}");
        assert_eq!(server.session_count(), 0);
    });
}

#[test]
fn query_params_and_cookies_are_parsed_as_browsers_send_them() {
    let mut req = wsmux::server::UpgradeRequest {
        path: "/mux".into(),
        query: "a=1&token=x%2By%3D+z&empty&bad=%zz".into(),
        headers: vec![("cookie".into(), "sid=abc; theme=dark".into())],
        remote: None,
    };
    assert_eq!(req.query_param("token").as_deref(), Some("x+y= z"));
    assert_eq!(req.query_param("a").as_deref(), Some("1"));
    assert_eq!(req.query_param("empty").as_deref(), Some(""));
    assert_eq!(req.query_param("bad").as_deref(), Some("%zz"));
    assert_eq!(req.query_param("missing"), None);
    assert_eq!(req.cookie("theme"), Some("dark"));
    assert_eq!(req.cookie("sid"), Some("abc"));
    assert_eq!(req.cookie("nope"), None);
    req.headers.push(("origin".into(), "https://app.example".into()));
    assert_eq!(req.origin(), Some("https://app.example"));
}

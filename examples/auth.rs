//! Token authentication over wss://: the server's authorization hook reads a token from the
//! query string (what a browser page can send; native clients may use a header instead),
//! refuses with 401 or 403 before any WebSocket exists, and hands the user to the session,
//! where an RPC handler reads it.
//!
//! Run: `cargo run --example auth` (loopback; the certificate is generated at start-up: in
//! production load yours with `wsmux::tls::server_config("fullchain.pem", "privkey.pem")`).

use std::collections::HashMap;
use std::sync::Arc;

use wsmux::rpc::{Client, Router, Status, Unary};
use wsmux::server::{Rejection, Server, ServerConfig};
use wsmux::tls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// Who a token belongs to: what the hook grants and handlers read back.
#[derive(Debug, Clone)]
struct User {
    name: String,
    admin: bool,
}

/// Answers the caller's name, as the server knows it from the token.
const WHOAMI: Unary<(), String> = Unary::new("whoami");
/// Admins only.
const SHUTDOWN: Unary<(), ()> = Unary::new("admin.shutdown");

fn main() {
    async_std::task::block_on(run());
}

async fn run() {
    // A self-signed certificate for localhost, made now.
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let cert: CertificateDer<'static> = generated.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der());
    let tls = wsmux::tls::server_config_from_der(vec![cert.clone()], key.into()).expect("tls");

    // The token table stands in for a database or a signed-token check.
    let tokens: Arc<HashMap<&str, User>> = Arc::new(HashMap::from([
        ("t-ada", User { name: "ada".into(), admin: true }),
        ("t-bob", User { name: "bob".into(), admin: false }),
    ]));
    let config = ServerConfig::default().tls(tls).authorize(move |req| {
        let token = req.query_param("token");
        let tokens = tokens.clone();
        async move {
            let token = token.ok_or_else(|| Rejection::unauthorized("add ?token=..."))?;
            tokens.get(token.as_str()).cloned().ok_or_else(|| Rejection::forbidden("unknown token"))
        }
    });
    let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
    let port = server.local_addr().port();
    println!("wsmux auth example: wss://localhost:{port}/mux, tokens in the query string\n");

    let router = Router::new()
        .unary(WHOAMI, |(), ctx| {
            let user = ctx.session().auth::<User>().cloned();
            async move { user.map(|u| u.name).ok_or_else(|| Status::internal("no user")) }
        })
        .unary(SHUTDOWN, |(), ctx| {
            let admin = ctx.session().auth::<User>().is_some_and(|u| u.admin);
            async move {
                if admin {
                    Ok(())
                } else {
                    Err(Status::permission_denied("admins only"))
                }
            }
        });
    async_std::task::spawn(async move {
        while let Some(session) = server.accept().await {
            async_std::task::spawn(router.clone().serve(session));
        }
    });

    let client_tls = wsmux::tls::client_config([cert]).expect("client tls");
    for query in ["", "?token=nope", "?token=t-bob", "?token=t-ada"] {
        let url = format!("wss://localhost:{port}/mux{query}");
        print!("  connect {:<18} ", if query.is_empty() { "(no token)" } else { query });
        match wsmux::client::connect_tls(&url, Default::default(), client_tls.clone()).await {
            Err(e) => println!("refused: {e}"),
            Ok((session, driver)) => {
                wsmux::spawn(driver);
                let client = Client::new(session);
                let name = client.unary(&WHOAMI, &()).await.expect("whoami");
                let shutdown = match client.unary(&SHUTDOWN, &()).await {
                    Ok(()) => "allowed".to_owned(),
                    Err(status) => format!("{status}"),
                };
                println!("session as {name:?}; admin.shutdown: {shutdown}");
            }
        }
    }
}

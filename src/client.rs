//! The client endpoint: connect to a `ws://` URL and start a session.

use async_tungstenite::tungstenite;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use futures::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::driver::Driver;
use crate::error::Error;
use crate::handshake::SUBPROTOCOL;
use crate::session::Session;

/// Connects to `request` (a `ws://host[:port]/path` URL, or an `http::Request` built from one
/// when you need extra headers such as `Authorization`), upgrades with subprotocol `wsmux.v1`,
/// and starts a client session. Spawn the driver (see [`crate::spawn`]).
///
/// Fails with [`Error::Timeout`] if connecting and the upgrade take longer than
/// [`Config::handshake_timeout`], with [`Error::Refused`] if the server answers the upgrade
/// with an HTTP error (401 from an authorization hook, 403 Origin...), and with
/// [`Error::Handshake`] if the server does not select `wsmux.v1`.
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
pub async fn connect<R>(request: R, config: Config) -> Result<(Session, Driver), Error>
where
    R: IntoClientRequest,
{
    let request = request.into_client_request()?;
    let timeout = config.handshake_timeout;
    crate::timeout(timeout, "connect", async {
        let (host, port) = host_port(request.uri())?;
        let tcp = crate::rt::connect(&host, port).await?;
        connect_on(tcp, request, config).await
    })
    .await?
}

/// Upgrades an already connected stream (TCP, TLS, anything) and starts a client session.
pub async fn connect_on<S, R>(
    stream: S,
    request: R,
    config: Config,
) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    R: IntoClientRequest,
{
    let mut request = request.into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let ws_config = config.websocket();
    let (ws, response) =
        match async_tungstenite::client_async_with_config(request, stream, Some(ws_config)).await {
            Ok(pair) => pair,
            Err(tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                let message = String::from_utf8_lossy(body).trim().to_owned();
                return Err(Error::Refused { status: response.status().as_u16(), message });
            }
            Err(e) => return Err(e.into()),
        };
    let selected = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
    if selected != Some(SUBPROTOCOL) {
        return Err(Error::Handshake(format!(
            "server selected subprotocol {selected:?}, expected {SUBPROTOCOL}"
        )));
    }
    Ok(Session::client(ws, config))
}

#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
fn host_port(uri: &tungstenite::http::Uri) -> Result<(String, u16), Error> {
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(Error::Url(
                "wss:// is not supported yet; use connect_on with a TLS stream".into(),
            ))
        }
        other => return Err(Error::Url(format!("scheme {other:?} is not ws://"))),
    }
    let host = uri.host().ok_or_else(|| Error::Url(format!("no host in {uri}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok((host, uri.port_u16().unwrap_or(80)))
}

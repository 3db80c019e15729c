//! The client endpoint: connect to a `ws://` URL and start a session.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use futures::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::driver::Driver;
use crate::error::Error;
use crate::handshake::SUBPROTOCOL;
use crate::session::Session;

/// Connects to `url` (`ws://host[:port]/path`), upgrades with subprotocol `wsmux.v1`, and
/// starts a client session. Spawn the driver (see [`crate::spawn`]).
///
/// Fails with [`Error::Timeout`] if connecting and the upgrade take longer than
/// [`Config::handshake_timeout`], and with [`Error::Handshake`] if the server does not select
/// `wsmux.v1`.
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
pub async fn connect(url: &str, config: Config) -> Result<(Session, Driver), Error> {
    let timeout = config.handshake_timeout;
    crate::timeout(timeout, "connect", async {
        let (host, port) = host_port(url)?;
        let tcp = crate::rt::connect(&host, port).await?;
        connect_on(tcp, url, config).await
    })
    .await?
}

/// Upgrades an already connected stream (TCP, TLS, anything) and starts a client session.
pub async fn connect_on<S>(stream: S, url: &str, config: Config) -> Result<(Session, Driver), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let ws_config = config.websocket();
    let (ws, response) =
        async_tungstenite::client_async_with_config(request, stream, Some(ws_config)).await?;
    let selected = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
    if selected != Some(SUBPROTOCOL) {
        return Err(Error::Handshake(format!(
            "server selected subprotocol {selected:?}, expected {SUBPROTOCOL}"
        )));
    }
    Ok(Session::client(ws, config))
}

#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
fn host_port(url: &str) -> Result<(String, u16), Error> {
    let request = url.into_client_request()?;
    let uri = request.uri();
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(Error::Url(
                "wss:// is not supported yet; use connect_on with a TLS stream".into(),
            ))
        }
        other => return Err(Error::Url(format!("scheme {other:?} is not ws://"))),
    }
    let host = uri.host().ok_or_else(|| Error::Url(format!("no host in {url}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok((host, uri.port_u16().unwrap_or(80)))
}

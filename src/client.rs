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
        let (host, port) = host_port(request.uri(), false)?;
        let tcp = crate::rt::connect(&host, port).await?;
        connect_on(tcp, request, config).await
    })
    .await?
}

/// [`connect`] to a `wss://` URL: TCP, then TLS with `tls` (see [`crate::tls::client_config`];
/// the certificate must name the URL's host), then the upgrade, all within the handshake
/// timeout. A certificate that does not verify is [`Error::Tls`].
#[cfg(all(feature = "tls", any(feature = "async-std", feature = "smol", feature = "tokio")))]
pub async fn connect_tls<R>(
    request: R,
    config: Config,
    tls: std::sync::Arc<crate::tls::rustls::ClientConfig>,
) -> Result<(Session, Driver), Error>
where
    R: IntoClientRequest,
{
    use crate::tls::pki_types::ServerName;
    let request = request.into_client_request()?;
    let timeout = config.handshake_timeout;
    // Boxed: the TLS stream makes this future large (several KiB), and debug builds copy a
    // future on the stack at every layer of an executor's block_on.
    crate::timeout(
        timeout,
        "connect",
        Box::pin(async {
            let (host, port) = host_port(request.uri(), true)?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| Error::Url(format!("{host} is not a TLS server name: {e}")))?;
            let tcp = crate::rt::connect(&host, port).await?;
            let stream = futures_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| Error::Tls(format!("handshake with {host}: {e}")))?;
            connect_on(stream, request, config).await
        }),
    )
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
    let ws_config = config.websocket().read_buffer_size(crate::progress::TUNGSTENITE_READ);
    let (stream, clock) = crate::progress::wrap(stream, config.ws_read_buffer);
    let (ws, _response) =
        match async_tungstenite::client_async_with_config(request, stream, Some(ws_config)).await {
            Ok(pair) => pair,
            Err(tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                let message = String::from_utf8_lossy(body).trim().to_owned();
                return Err(Error::Refused { status: response.status().as_u16(), message });
            }
            // tungstenite checks that the server selected the one subprotocol we offer (its
            // answer must be among those requested): its refusal is ours to name.
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(e),
            )) => {
                return Err(Error::Handshake(format!(
                    "the server did not select subprotocol {SUBPROTOCOL}: {e}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
    Ok(Session::start(wsmux_proto::Side::Client, ws, config, Some(clock)))
}

/// Host and port of a `ws://` URL, or of a `wss://` one when `tls` (default ports 80 and 443).
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
fn host_port(uri: &tungstenite::http::Uri, tls: bool) -> Result<(String, u16), Error> {
    let default_port = match (uri.scheme_str(), tls) {
        (Some("ws"), false) => 80,
        (Some("wss"), true) => 443,
        (Some("wss"), false) => {
            return Err(Error::Url(
                "wss:// needs TLS: use client::connect_tls (feature tls), or connect_on with a \
                 TLS stream"
                    .into(),
            ))
        }
        (Some("ws"), true) => return Err(Error::Url("connect_tls is for wss:// URLs".into())),
        (other, _) => return Err(Error::Url(format!("scheme {other:?} is not ws:// or wss://"))),
    };
    let host = uri.host().ok_or_else(|| Error::Url(format!("no host in {uri}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok((host, uri.port_u16().unwrap_or(default_port)))
}

//! The server side of the HTTP upgrade, done by hand so every refusal gets a clear HTTP answer.
//!
//! tungstenite's own server handshake closes the connection without a word on a plain GET; a
//! browser or curl user deserves a status and a sentence. So the request head is read here
//! (bounded in size, under the caller's timeout), checked (method, upgrade headers, version,
//! key, path, subprotocol, Origin), and either refused with a 4xx or answered with
//! `101 Switching Protocols`; the WebSocket then starts on the raw socket.

use std::net::SocketAddr;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use async_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::error::Error;
use crate::origin::{OriginPolicy, Via};

/// The WebSocket subprotocol wsmux speaks.
pub const SUBPROTOCOL: &str = "wsmux.v1";

/// The parts of an upgrade request a policy may look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?` (empty if none).
    pub query: String,
    /// Headers as (lower-case name, value), in order.
    pub headers: Vec<(String, String)>,
    /// The TCP peer's address, when the server knows it ([`Server`](crate::server::Server)
    /// and [`accept_from`](crate::server::accept_from) do): a reverse proxy's, behind one.
    pub remote: Option<SocketAddr>,
}

impl UpgradeRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The value of query parameter `name`, percent-decoded (`+` is a space), or `None` if the
    /// query has no such parameter. Browsers cannot set headers on a WebSocket, so a token in
    /// the URL (`wss://host/mux?token=...`) is how a page authenticates.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k) == name).then(|| percent_decode(v))
            })
            .next()
    }

    /// The value of cookie `name` from the `Cookie` headers, as sent.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The `Origin` header: present when a browser page connects.
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }

    fn header_tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
    }
}

/// Decodes `%XX` escapes and `+` (a space in a query); malformed escapes stay as they are and
/// bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A refusal: status, reason sentence, and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// HTTP status code.
    pub(crate) status: u16,
    /// One sentence for the response body.
    pub(crate) message: String,
    extra: Vec<(&'static str, &'static str)>,
}

impl Refusal {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        Refusal { status, message: message.into(), extra: Vec::new() }
    }
}

/// Checks an upgrade request. `Ok` carries the `Sec-WebSocket-Accept` value.
pub(crate) fn check(
    req: &UpgradeRequest,
    path: Option<&str>,
    origins: &OriginPolicy,
    via: Via,
) -> Result<String, Refusal> {
    let upgrade = req.header_tokens("upgrade").any(|t| t.eq_ignore_ascii_case("websocket"));
    let connection = req.header_tokens("connection").any(|t| t.eq_ignore_ascii_case("upgrade"));
    if !upgrade || !connection {
        let mut r = Refusal::new(426, "this endpoint speaks WebSocket (subprotocol wsmux.v1) only");
        r.extra.push(("Upgrade", "websocket"));
        return Err(r);
    }
    if req.header("sec-websocket-version") != Some("13") {
        let mut r = Refusal::new(426, "unsupported WebSocket version; 13 is required");
        r.extra.push(("Sec-WebSocket-Version", "13"));
        return Err(r);
    }
    let key = req.header("sec-websocket-key").unwrap_or("");
    if !is_websocket_key(key) {
        return Err(Refusal::new(400, "missing or malformed Sec-WebSocket-Key"));
    }
    if let Some(expected) = path {
        if req.path != expected {
            return Err(Refusal::new(404, format!("no WebSocket endpoint at {}", req.path)));
        }
    }
    if !req.header_tokens("sec-websocket-protocol").any(|t| t == SUBPROTOCOL) {
        return Err(Refusal::new(400, "the client must offer subprotocol wsmux.v1"));
    }
    origins.check(req, via)?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// Reads a request head (up to the blank line). Refuses heads longer than `max_head` bytes with
/// 431 (however the reads split them), malformed ones with 400, and requests that are not GET
/// with 405.
pub(crate) async fn read_request<S>(
    stream: &mut S,
    max_head: usize,
    max_headers: usize,
) -> Result<UpgradeRequest, HeadError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        let end = find_head_end(&buf[scan_from..]).map(|e| e + scan_from);
        // The limit is on the head itself (blank line included), so where the reads happened
        // to split it changes nothing: a head of max_head + 1 bytes is refused whether it came
        // in one read or in many.
        if end.unwrap_or(buf.len()) > max_head {
            return Err(HeadError::Refused(Refusal::new(431, "request head too large")));
        }
        if let Some(end) = end {
            if end != buf.len() {
                // A client must wait for 101 before it sends frames.
                return Err(HeadError::Refused(Refusal::new(400, "data after the request head")));
            }
            return parse_head(&buf, max_headers);
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn parse_head(buf: &[u8], max_headers: usize) -> Result<UpgradeRequest, HeadError> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let bad = |m: &str| HeadError::Refused(Refusal::new(400, m));
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::Refused(Refusal::new(431, "too many headers")))
        }
        Err(e) => return Err(bad(&format!("malformed request: {e}"))),
    }
    if req.method != Some("GET") {
        return Err(HeadError::Refused(Refusal::new(405, "only GET can upgrade")));
    }
    if req.version != Some(1) {
        return Err(bad("HTTP/1.1 is required"));
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    Ok(UpgradeRequest { path: path.to_owned(), query: query.to_owned(), headers, remote: None })
}

/// Why a request head was not accepted.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The socket failed or closed.
    Io(std::io::Error),
    /// The request is refused with this answer.
    Refused(Refusal),
}

/// Writes a refusal, closes the write side, then drains (bounded) what the client still sends,
/// so closing does not turn into a TCP reset that destroys the answer before it is read.
pub(crate) async fn refuse<S>(stream: &mut S, refusal: &Refusal) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reason = match refusal.status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = format!("{}\n", refusal.message);
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        refusal.status,
        body.len()
    );
    for (name, value) in &refusal.extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;
    stream.close().await?;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = crate::timeout(LINGER_TIME, "linger", drain).await;
    Ok(())
}

/// How much a refused client may still send before the connection is dropped anyway.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes the `101 Switching Protocols` answer that selects wsmux.v1.
pub(crate) async fn switch<S>(stream: &mut S, accept: &str) -> Result<(), Error>
where
    S: AsyncWrite + Unpin,
{
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;
    Ok(())
}

/// Whether `key` is what RFC 6455 section 4.1 asks for: 16 bytes in base64, that is 22
/// base64 characters and `==` (the last character carries 2 bits, so it is one of `AQgw`).
fn is_websocket_key(key: &str) -> bool {
    let b = key.as_bytes();
    let base64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    b.len() == 24 && b[..22].iter().all(base64) && b"AQgw".contains(&b[21]) && &b[22..] == b"=="
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &[(&str, &str)]) -> UpgradeRequest {
        let mut headers: Vec<(String, String)> = [
            ("host", "example.com:9000"),
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-protocol", "chat, wsmux.v1"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        for (n, v) in extra {
            headers.retain(|(name, _)| name != n);
            if !v.is_empty() {
                headers.push((n.to_string(), v.to_string()));
            }
        }
        UpgradeRequest { path: "/mux".into(), query: String::new(), headers, remote: None }
    }

    #[test]
    fn a_good_request_gets_the_rfc_accept_key() {
        // The example of RFC 6455 section 1.3.
        let accept =
            check(&request(&[]), Some("/mux"), &OriginPolicy::default(), Via::default()).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn refusals_name_their_cause() {
        let p = OriginPolicy::default();
        let status =
            |r: UpgradeRequest| check(&r, Some("/mux"), &p, Via::default()).unwrap_err().status;
        assert_eq!(status(request(&[("upgrade", "")])), 426);
        assert_eq!(status(request(&[("sec-websocket-version", "8")])), 426);
        assert_eq!(status(request(&[("sec-websocket-key", "short")])), 400);
        // 24 characters, but not 16 bytes in base64.
        assert_eq!(status(request(&[("sec-websocket-key", "!!!!!!!!!!!!!!!!!!!!!!==")])), 400);
        assert_eq!(status(request(&[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZR==")])), 400);
        assert_eq!(status(request(&[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQAA")])), 400);
        assert_eq!(status(request(&[("sec-websocket-protocol", "chat")])), 400);
        assert_eq!(status(request(&[("origin", "https://evil.example")])), 403);
        let mut wrong_path = request(&[]);
        wrong_path.path = "/other".into();
        assert_eq!(status(wrong_path), 404);
    }

    #[test]
    fn a_request_without_origin_is_allowed() {
        // No Origin header at all (not a browser).
        let same = OriginPolicy::SameHost;
        assert!(check(&request(&[("origin", "")]), None, &same, Via::default()).is_ok());
    }
}

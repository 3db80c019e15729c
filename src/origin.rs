//! The Origin check of the upgrade: which browser pages may open a session.
//!
//! A browser sends `Origin` (`scheme://host[:port]`, or `null`) with every WebSocket upgrade;
//! a page cannot forge it. The server compares it with the host the request was sent to: its
//! `Host` header, or what a trusted reverse proxy says it received (`Forwarded` /
//! `X-Forwarded-Host`). Names are compared as written: `localhost` and `127.0.0.1` are two
//! hosts, as they are two origins to the browser.

use std::net::IpAddr;

use crate::handshake::{Refusal, UpgradeRequest};

/// Which browser origins may connect.
///
/// A request without `Origin` (not a browser: a native client, curl) is always allowed; this
/// policy is about which web pages may talk to the server with their users' cookies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Same host only, the default: an Origin must name the host and port the request was sent
    /// to (a missing port is its scheme's default: 80 for `http`, 443 for `https`). Its scheme
    /// must be `http` or `https`, and, when the server knows the request's scheme (it
    /// terminates TLS, or a trusted proxy says `proto=https`), it decides the default port of a
    /// `Host` without one, so `http://app.example` does not pass for `https://app.example`.
    #[default]
    SameHost,
    /// Same host, plus these origins: each exactly `scheme://host[:port]` as a browser sends it
    /// (no path, no trailing slash, no wildcard; case and a default port do not matter), or
    /// `null` to admit pages that have no origin (`file://` pages, sandboxed iframes: any such
    /// page can send `null`, so admit it only with some other authentication). An entry
    /// that can never match is an error when the server starts ([`Error::Config`]).
    ///
    /// [`Error::Config`]: crate::Error::Config
    AllowList(Vec<String>),
    /// Any origin, `null` included. Only for servers that authenticate every session some
    /// other way (a token the page got from the server, not a cookie).
    Any,
}

/// How the request reached the server, for the scheme and the host it was sent to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Via {
    /// The server terminated TLS itself.
    pub(crate) tls: bool,
    /// The TCP peer is one of `ServerConfig::trusted_proxies`: its forwarding headers count.
    pub(crate) trusted_proxy: bool,
}

/// An origin, normalized: lower-case scheme and host, and the port (the scheme's default when
/// it has one and none is written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (an IPv6 literal in brackets) into a lower-case host and its port.
fn authority(s: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("an unclosed [ in the host")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("text after the IPv6 literal")?),
        };
        (format!("[{inside}]"), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (s.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("no host");
    }
    if host.contains(':') && !host.starts_with('[') {
        return Err("a host with ':' (an IPv6 address is written in brackets)");
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| "a port over 65535")?)
        }
        Some(_) => return Err("a malformed port"),
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// Parses an origin as a browser serializes it, or says why it can never be one.
fn parse(s: &str) -> Result<Origin, &'static str> {
    if s.is_empty() {
        return Err("it is empty");
    }
    if s.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err("it contains spaces or control characters");
    }
    if s.contains('*') {
        return Err("wildcards never match: list each origin, or use OriginPolicy::Any");
    }
    let (scheme, rest) = s
        .split_once("://")
        .ok_or("it has no scheme: an origin is scheme://host[:port], like https://app.example")?;
    let valid_scheme = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !valid_scheme {
        return Err("a malformed scheme");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or trailing slash");
    }
    if rest.contains('@') {
        return Err("an origin has no user name");
    }
    let scheme = scheme.to_ascii_lowercase();
    if matches!(scheme.as_str(), "ws" | "wss") {
        return Err("ws:// and wss:// are the socket's schemes, never a page's (write http(s)://)");
    }
    if !rest.is_ascii() {
        return Err("browsers send international names in punycode (xn--...)");
    }
    let (host, port) = authority(rest)?;
    if port == Some(0) {
        return Err("port 0");
    }
    let port = port.or_else(|| default_port(&scheme));
    Ok(Origin { scheme, host, port })
}

impl OriginPolicy {
    /// Checks the allow-list: every entry must be an origin a browser can send.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let OriginPolicy::AllowList(list) = self else { return Ok(()) };
        for entry in list {
            if entry != "null" {
                parse(entry).map_err(|why| {
                    format!(
                        "ServerConfig::origins: allow-list entry {entry:?} can never match: {why}"
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Checks the request's `Origin`, if any; a refusal is a 403 whose sentence says why and
    /// which setting would admit it.
    pub(crate) fn check(&self, req: &UpgradeRequest, via: Via) -> Result<(), Refusal> {
        let Some(raw) = req.header("origin") else { return Ok(()) };
        if matches!(self, OriginPolicy::Any) {
            return Ok(());
        }
        let listed = |pred: &dyn Fn(&str) -> bool| match self {
            OriginPolicy::AllowList(list) => list.iter().any(|e| pred(e)),
            _ => false,
        };
        if raw == "null" {
            if listed(&|e| e == "null") {
                return Ok(());
            }
            return Err(Refusal::new(
                403,
                "origin null (a file:// page or a sandboxed iframe) is not allowed; \
                 ServerConfig::origins admits it only if its allow-list names \"null\"",
            ));
        }
        let Ok(origin) = parse(raw) else {
            return Err(Refusal::new(403, format!("malformed Origin header {raw:?}")));
        };
        if listed(&|e| parse(e).is_ok_and(|e| e == origin)) {
            return Ok(());
        }
        let (host, scheme) = target(req, via);
        let same = host.as_deref().and_then(|h| authority(h).ok()).is_some_and(|(h, port)| {
            let port = port.or_else(|| default_port(scheme.unwrap_or(&origin.scheme)));
            matches!(origin.scheme.as_str(), "http" | "https")
                // A known scheme must be the page's too: http://app.example:443 is not the
                // https site, whatever its port says.
                && scheme.is_none_or(|s| s == origin.scheme)
                && h == origin.host
                && port == origin.port
        });
        if same {
            return Ok(());
        }
        let loopback = |h: &str| ["localhost", "127.0.0.1", "[::1]"].contains(&h);
        let target_host = host.as_deref().and_then(|h| authority(h).ok()).map(|(h, _)| h);
        let hint = if loopback(&origin.host) && target_host.is_some_and(|h| loopback(&h)) {
            " (localhost, 127.0.0.1 and [::1] are different origins)"
        } else {
            ""
        };
        Err(Refusal::new(
            403,
            format!(
                "origin {raw} is not allowed: the request was sent to {}{hint}; \
                 ServerConfig::origins (OriginPolicy::AllowList) admits other origins",
                host.as_deref().unwrap_or("(no Host header)")
            ),
        ))
    }
}

/// The host (with port, as written) and the scheme the request was sent to: a trusted proxy's
/// `Forwarded` (RFC 7239, its last element: the nearest proxy's) or `X-Forwarded-Host` /
/// `X-Forwarded-Proto`, else `Host` and whether this server terminated TLS.
fn target(req: &UpgradeRequest, via: Via) -> (Option<String>, Option<&'static str>) {
    let mut host = req.header("host").map(str::to_owned);
    let mut scheme = via.tls.then_some("https");
    if via.trusted_proxy {
        let last = |name: &str| {
            let mut values = req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
            values.next_back().and_then(|(_, v)| v.rsplit(',').next()).map(|v| v.trim().to_owned())
        };
        let forwarded = last("forwarded").map(|element| {
            let param = |key: &str| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case(key)
                        .then(|| v.trim().trim_matches('"').to_owned())
                })
            };
            (param("host"), param("proto"))
        });
        let (fhost, fproto) = forwarded.unwrap_or((None, None));
        let fhost = fhost.or_else(|| last("x-forwarded-host"));
        let fproto = fproto.or_else(|| last("x-forwarded-proto"));
        if let Some(h) = fhost.filter(|h| !h.is_empty()) {
            host = Some(h);
        }
        match fproto.map(|p| p.to_ascii_lowercase()).as_deref() {
            Some("https" | "wss") => scheme = Some("https"),
            Some("http" | "ws") => scheme = Some("http"),
            _ => {}
        }
    }
    (host, scheme)
}

/// Whether `peer` is one of `trusted` (an IPv4-mapped IPv6 address counts as its IPv4 one).
pub(crate) fn is_trusted(peer: Option<IpAddr>, trusted: &[IpAddr]) -> bool {
    peer.is_some_and(|p| trusted.iter().any(|t| t.to_canonical() == p.to_canonical()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> UpgradeRequest {
        UpgradeRequest {
            path: "/mux".into(),
            query: String::new(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            remote: None,
        }
    }

    fn allows(policy: &OriginPolicy, origin: &str, host: &str, via: Via) -> bool {
        policy.check(&request(&[("host", host), ("origin", origin)]), via).is_ok()
    }

    #[test]
    fn same_host_compares_host_and_port_with_the_schemes_default() {
        let p = OriginPolicy::SameHost;
        let plain = Via::default();
        assert!(allows(&p, "http://example.com:9000", "example.com:9000", plain));
        assert!(allows(&p, "http://EXAMPLE.com:9000", "example.COM:9000", plain));
        assert!(!allows(&p, "http://evil.example", "example.com:9000", plain));
        assert!(allows(&p, "http://example.com:80", "example.com", plain));
        assert!(allows(&p, "https://example.com", "example.com:443", plain));
        assert!(!allows(&p, "https://example.com", "example.com:80", plain));
        assert!(allows(&p, "http://[::1]:9000", "[::1]:9000", plain));
        assert!(!allows(&p, "http://localhost:9000", "127.0.0.1:9000", plain));
        // Not a web scheme: never the same host.
        assert!(!allows(&p, "chrome-extension://example.com:9000", "example.com:9000", plain));
        // A TLS server knows its scheme: a plain-http page does not pass for its https one.
        let tls = Via { tls: true, ..Via::default() };
        assert!(allows(&p, "https://example.com", "example.com", tls));
        assert!(!allows(&p, "http://example.com", "example.com", tls));
        assert!(allows(&p, "http://example.com", "example.com", plain));
        // Nor does it with the https port written out.
        assert!(!allows(&p, "http://example.com:443", "example.com", tls));
        assert!(!allows(&p, "http://example.com:8443", "example.com:8443", tls));
        assert!(allows(&p, "https://example.com:8443", "example.com:8443", tls));
    }

    #[test]
    fn null_and_malformed_origins_are_refused_unless_listed() {
        let req = request(&[("host", "a.example"), ("origin", "null")]);
        let err = OriginPolicy::SameHost.check(&req, Via::default()).unwrap_err();
        assert_eq!(err.status, 403);
        assert!(err.message.contains("allow-list names \"null\""), "{}", err.message);
        let listed = OriginPolicy::AllowList(vec!["null".into()]);
        assert!(listed.check(&req, Via::default()).is_ok());
        assert!(OriginPolicy::Any.check(&req, Via::default()).is_ok());
        let bad = request(&[("host", "a.example"), ("origin", "a.example")]);
        let err = OriginPolicy::SameHost.check(&bad, Via::default()).unwrap_err();
        assert!(err.message.contains("malformed Origin"), "{}", err.message);
    }

    #[test]
    fn allow_list_entries_match_as_browsers_send_them_and_bad_ones_are_errors() {
        let list = OriginPolicy::AllowList(vec![
            "https://App.Example".into(),
            "https://b.example:443".into(),
            "http://[::1]:8080".into(),
        ]);
        list.validate().unwrap();
        let v = Via::default();
        assert!(allows(&list, "https://app.example", "api.example", v));
        assert!(allows(&list, "https://b.example", "api.example", v));
        assert!(allows(&list, "http://[::1]:8080", "api.example", v));
        assert!(!allows(&list, "http://app.example", "api.example", v));
        assert!(!allows(&list, "https://other.example", "api.example", v));
        for (entry, why) in [
            ("https://app.example/", "trailing slash"),
            ("app.example", "no scheme"),
            ("*", "wildcards"),
            ("https://*.example", "wildcards"),
            ("https://app.example/path", "no path"),
            ("https://app.example:99999", "over 65535"),
            ("https://app.example:", "malformed port"),
            ("https://", "no host"),
            (" https://app.example", "spaces"),
            ("", "empty"),
            ("https://user@app.example", "user name"),
            ("wss://app.example", "never a page's"),
            ("https://bücher.example", "punycode"),
            ("https://app.example:0", "port 0"),
        ] {
            let err = OriginPolicy::AllowList(vec![entry.into()]).validate().unwrap_err();
            assert!(err.contains(why), "{entry:?}: {err}");
            assert!(err.contains("ServerConfig::origins"), "{err}");
        }
    }

    #[test]
    fn refusals_name_the_setting_and_the_loopback_confusion() {
        let req = request(&[("host", "127.0.0.1:9000"), ("origin", "http://localhost:9000")]);
        let err = OriginPolicy::SameHost.check(&req, Via::default()).unwrap_err();
        assert!(err.message.contains("sent to 127.0.0.1:9000"), "{}", err.message);
        assert!(err.message.contains("different origins"), "{}", err.message);
        assert!(err.message.contains("OriginPolicy::AllowList"), "{}", err.message);
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let p = OriginPolicy::SameHost;
        let req = request(&[
            ("host", "127.0.0.1:9000"),
            ("origin", "https://app.example"),
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-proto", "https"),
        ]);
        assert!(p.check(&req, Via::default()).is_err());
        let proxied = Via { trusted_proxy: true, ..Via::default() };
        assert!(p.check(&req, proxied).is_ok());
        // The proxy says https: a plain-http page does not pass.
        let mut http = req.clone();
        http.headers[1].1 = "http://app.example".into();
        assert!(p.check(&http, proxied).is_err());
        // Forwarded (RFC 7239) wins over X-Forwarded-*; its last element is the nearest proxy's.
        let req = request(&[
            ("host", "127.0.0.1:9000"),
            ("origin", "https://app.example"),
            (
                "forwarded",
                "for=1.2.3.4;host=evil.example, for=5.6.7.8;host=\"app.example\";proto=https",
            ),
            ("x-forwarded-host", "evil.example"),
        ]);
        assert!(p.check(&req, proxied).is_ok());
        let trusted = ["10.0.0.1".parse().unwrap()];
        assert!(is_trusted(Some("10.0.0.1".parse().unwrap()), &trusted));
        assert!(is_trusted(Some("::ffff:10.0.0.1".parse().unwrap()), &trusted));
        assert!(!is_trusted(Some("10.0.0.2".parse().unwrap()), &trusted));
        assert!(!is_trusted(None, &trusted));
    }
}

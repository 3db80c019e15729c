//! `wss://`: WebSocket over TLS, through rustls (with the ring crypto provider).
//!
//! The server side takes a [`rustls::ServerConfig`] in [`crate::server::ServerConfig::tls`];
//! [`server_config`] builds one from PEM files. The client side is
//! [`crate::client::connect_tls`] with a [`rustls::ClientConfig`]; [`client_config`] builds one
//! that trusts the roots you give (your CA, or a test certificate).
//!
//! ```no_run
//! # async fn f() -> Result<(), wsmux::Error> {
//! use wsmux::server::{Server, ServerConfig};
//! // A real certificate: the chain and the key, PEM (for example from Let's Encrypt).
//! let tls = wsmux::tls::server_config("/etc/wsmux/fullchain.pem", "/etc/wsmux/privkey.pem")?;
//! let server = Server::bind("0.0.0.0:443", ServerConfig::default().tls(tls)).await?;
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

pub use futures_rustls::pki_types;
pub use futures_rustls::rustls;

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

/// The crypto provider wsmux builds its configs with: explicit, so an application that links
/// another provider as well does not make rustls's process default ambiguous.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

/// A server config from a PEM certificate chain (leaf first) and a PEM private key (PKCS#8,
/// PKCS#1 or SEC1), offering HTTP/1.1 by ALPN (the WebSocket upgrade is HTTP/1.1).
pub fn server_config(
    cert_chain: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
    let certs = CertificateDer::pem_file_iter(cert_chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(&format!("reading {}", cert_chain.display()), e))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| tls_error(&format!("reading {}", key.display()), e))?;
    server_config_from_der(certs, key)
}

/// A server config from a certificate chain and key already in memory (DER).
pub fn server_config_from_der(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    if certs.is_empty() {
        return Err(Error::Tls("the certificate chain is empty".into()));
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("certificate and key", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client config that trusts exactly `roots` (DER certificates: your CA, or a self-signed
/// server certificate).
pub fn client_config(
    roots: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut store = rustls::RootCertStore::empty();
    for cert in roots {
        store.add(cert).map_err(|e| tls_error("a root certificate", e))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client config that trusts the PEM certificates in `path`.
pub fn client_config_from_pem(path: impl AsRef<Path>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let path = path.as_ref();
    let roots = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(&format!("reading {}", path.display()), e))?;
    client_config(roots)
}

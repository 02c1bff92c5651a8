//! SIP over TLS (RFC 3261 26.2, RFC 5922): the server and client settings built from the
//! `[sip] tls_*` files, read once at start so a wrong file stops the engine with its name
//! rather than failing the first call. Owns no socket; the TCP edge (`tcp`) wraps its
//! streams with what this builds.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::sip::SipConfig;

/// Where Debian and its derivatives keep the system's trusted authorities.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("[sip] {key} {path:?}: {why}")]
    File {
        key: &'static str,
        path: String,
        why: String,
    },
    #[error("[sip] tls_certificate and tls_private_key: {0}")]
    Keys(rustls::Error),
    #[error("[sip] tls needs tls_certificate and tls_private_key (PEM files), or write tls = \"\"")]
    NoCertificate,
}

/// What wraps the SIP streams: an acceptor when the engine listens for TLS (`[sip] tls`), and always a
/// connector for the trunks and phones reached by `sips:` or `transport=tls`.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: Option<TlsAcceptor>,
    pub(crate) connector: TlsConnector,
}

impl Tls {
    pub(crate) fn from_config(sip: &SipConfig) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let identity = match (sip.tls_certificate.trim(), sip.tls_private_key.trim()) {
            ("", _) | (_, "") => None,
            (cert, key) => Some((certificates("tls_certificate", cert)?, private_key(key)?)),
        };
        // A listener without a certificate is refused here too, not only by `hotline check`:
        // it must never be left closed without a word.
        let acceptor = match (&identity, sip.tls.trim()) {
            (_, "") => None,
            (None, _) => return Err(TlsError::NoCertificate),
            (Some((chain, key)), _) => {
                let config = ServerConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(TlsError::Keys)?
                    .with_no_client_auth()
                    .with_single_cert(chain.clone(), key.clone_key())
                    .map_err(TlsError::Keys)?;
                Some(TlsAcceptor::from(Arc::new(config)))
            }
        };
        // Without a bundle of its own and none on the system, no authority is trusted: TLS
        // calls then fail with "unknown issuer" in the log, and nothing else is affected.
        let ca = match sip.tls_ca.trim() {
            "" if !Path::new(SYSTEM_BUNDLE).exists() => None,
            "" => Some(SYSTEM_BUNDLE),
            path => Some(path),
        };
        let mut roots = RootCertStore::empty();
        if let Some(path) = ca {
            let (added, _unusable) = roots.add_parsable_certificates(certificates("tls_ca", path)?);
            if added == 0 {
                return Err(TlsError::File {
                    key: "tls_ca",
                    path: path.to_owned(),
                    why: "no usable CA certificate in the file".into(),
                });
            }
        }
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Keys)?
            .with_root_certificates(roots);
        let client = match identity {
            Some((chain, key)) => client
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Keys)?,
            None => client.with_no_client_auth(),
        };
        Ok(Tls {
            acceptor,
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name a server's certificate must carry: the host we were sent to, or its address.
pub(crate) fn server_name(name: Option<&str>, addr: std::net::SocketAddr) -> ServerName<'static> {
    name.and_then(|n| ServerName::try_from(n.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
}

fn certificates(key: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |why: String| TlsError::File {
        key,
        path: path.to_owned(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn private_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        key: "tls_private_key",
        path: path.to_owned(),
        why: e.to_string(),
    })
}

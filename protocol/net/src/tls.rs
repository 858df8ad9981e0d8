//! TLS 1.3 (rustls with the `ring` provider): what the server presents, what the client trusts,
//! and error messages a user can act on.
//!
//! The client authenticates the server with a CA certificate it is given (`--tls-ca`) and the
//! name it expects (`--tls-server-name`, by default the host it connects to). The server may
//! also require a client certificate signed by a CA it is given (`--tls-client-ca`), so that
//! only known clients can make it spend CPU.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore, ServerConfig};

use crate::NetError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, NetError> {
    std::fs::read(path)
        .map_err(|e| NetError::Config(format!("cannot read the {what} {}: {e}", path.display())))
}

fn certs(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| NetError::Config(format!("{origin}: not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(NetError::Config(format!(
            "{origin}: no certificate in it (expected PEM 'BEGIN CERTIFICATE' blocks)"
        )));
    }
    Ok(certs)
}

fn key(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, NetError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        NetError::Config(format!(
            "{origin}: no usable private key in it (expected PEM PKCS#8, PKCS#1 or SEC1; {e})"
        ))
    })
}

fn roots(pem: &[u8], origin: &str) -> Result<RootCertStore, NetError> {
    let mut store = RootCertStore::empty();
    for c in certs(pem, origin)? {
        store
            .add(c)
            .map_err(|e| NetError::Config(format!("{origin}: unusable CA certificate ({e})")))?;
    }
    Ok(store)
}

/// What a TLS server presents and whom it admits.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    client_auth: bool,
}

impl ServerTls {
    /// From PEM bytes: the certificate chain, its private key and, to require client
    /// certificates, the CA that signs them. `origin` names the source in error messages.
    pub fn from_pem(
        cert_chain: &[u8],
        key_pem: &[u8],
        client_ca: Option<&[u8]>,
        origin: &str,
    ) -> Result<Self, NetError> {
        let chain = certs(cert_chain, &format!("{origin} certificate"))?;
        let key = key(key_pem, &format!("{origin} key"))?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Config(format!("TLS setup: {e}")))?;
        let builder = match client_ca {
            Some(ca) => {
                let roots = roots(ca, &format!("{origin} client CA"))?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| NetError::Config(format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            NetError::Config(format!(
                "{origin}: the certificate and the key do not form a usable pair ({e})"
            ))
        })?;
        // Sessions are long and one per connection: no resumption tickets.
        config.send_tls13_tickets = 0;
        Ok(ServerTls {
            config: Arc::new(config),
            client_auth: client_ca.is_some(),
        })
    }

    /// From PEM files (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
    pub fn from_files(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, NetError> {
        let chain = read(cert, "certificate file (--tls-cert)")?;
        let k = read(key, "private key file (--tls-key)")?;
        let ca = client_ca
            .map(|p| read(p, "client CA file (--tls-client-ca)"))
            .transpose()?;
        Self::from_pem(&chain, &k, ca.as_deref(), &cert.display().to_string())
    }

    /// The rustls configuration (for an asynchronous acceptor).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_cert(&self) -> bool {
        self.client_auth
    }
}

/// Whom a TLS client trusts and, optionally, the certificate it presents.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl ClientTls {
    /// From PEM bytes: the CA that signs the server's certificate and, optionally, a client
    /// certificate chain and key (for servers that require them).
    pub fn from_pem(
        ca: &[u8],
        identity: Option<(&[u8], &[u8])>,
        origin: &str,
    ) -> Result<Self, NetError> {
        let roots = roots(ca, &format!("{origin} CA"))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Config(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
        let config = match identity {
            Some((chain, k)) => builder
                .with_client_auth_cert(
                    certs(chain, &format!("{origin} client certificate"))?,
                    key(k, &format!("{origin} client key"))?,
                )
                .map_err(|e| {
                    NetError::Config(format!(
                        "{origin}: the client certificate and key do not form a usable pair ({e})"
                    ))
                })?,
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// From PEM files (`--tls-ca`, and `--tls-cert`/`--tls-key` for a client certificate).
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, NetError> {
        let ca_pem = read(ca, "CA file (--tls-ca)")?;
        let id = identity
            .map(|(c, k)| -> Result<_, NetError> {
                Ok((
                    read(c, "client certificate file (--tls-cert)")?,
                    read(k, "client key file (--tls-key)")?,
                ))
            })
            .transpose()?;
        Self::from_pem(
            &ca_pem,
            id.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
            &ca.display().to_string(),
        )
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// A rustls error in words a user can act on.
pub(crate) fn explain(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "the peer's certificate is not signed by a CA this side trusts (pi-client: the CA \
             given with --tls-ca; pi-server: the one given with --tls-client-ca)"
                .into()
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate does not cover the name this client expects: pass \
              --tls-server-name with a name the certificate lists"
            .into(),
        E::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => "the peer's certificate has expired or is not valid yet".into(),
        E::InvalidCertificate(c) => format!("the peer's certificate was refused ({c:?})"),
        E::NoCertificatesPresented => {
            "the client presented no certificate, but this server requires one \
             (--tls-client-ca); pi-client needs --tls-cert and --tls-key"
                .into()
        }
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate: pass --tls-cert and --tls-key".into()
        }
        E::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown,
        ) => "the peer refused this side's certificate (not signed by a CA it trusts)".into(),
        E::AlertReceived(a) => format!("the peer ended the TLS connection with alert {a:?}"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "the peer does not speak TLS here (is it running with --insecure-plaintext? Use \
             TLS on both sides, or --insecure-plaintext on both)"
                .into()
        }
        E::DecryptError => {
            "a TLS record failed its integrity check: the data was altered on the way".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_a_clear_configuration_error() {
        let e = ClientTls::from_pem(b"not a certificate", None, "ca.pem")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let e = ServerTls::from_files(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
            None,
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
    }
}

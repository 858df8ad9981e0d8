//! A throwaway certificate authority for tests, the demo and `pi-server dev-cert`: one CA that
//! signs a server certificate (for the given names) and a client certificate. Never use these
//! outside a test bed: the keys are written to disk unencrypted.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::NetError;

/// PEM texts of a throwaway CA and the two certificates it signed.
pub struct DevPki {
    /// The CA certificate (clients trust it with `--tls-ca`; servers with `--tls-client-ca`).
    pub ca_cert: String,
    /// The server certificate and key (`--tls-cert`, `--tls-key` of pi-server).
    pub server_cert: String,
    pub server_key: String,
    /// A client certificate and key (`--tls-cert`, `--tls-key` of pi-client).
    pub client_cert: String,
    pub client_key: String,
}

/// File names [`DevPki::write`] uses inside its directory.
pub const FILES: [&str; 5] = [
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

fn err(e: rcgen::Error) -> NetError {
    NetError::Config(format!("generating a throwaway certificate: {e}"))
}

impl DevPki {
    /// A fresh CA, a server certificate valid for `names` (DNS names or IP addresses) and a
    /// client certificate.
    pub fn generate(names: &[&str]) -> Result<Self, NetError> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "pi throwaway CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(err)?).map_err(err)?;

        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut server = CertificateParams::new(names).map_err(err)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "pi-server");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().map_err(err)?;
        let server_cert = server.signed_by(&server_key, &ca).map_err(err)?;

        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        client
            .distinguished_name
            .push(DnType::CommonName, "pi-client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().map_err(err)?;
        let client_cert = client.signed_by(&client_key, &ca).map_err(err)?;

        Ok(DevPki {
            ca_cert: ca.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        })
    }

    /// Writes the five PEM files ([`FILES`]) into `dir` (created if needed); returns their paths.
    pub fn write(&self, dir: &Path) -> Result<[PathBuf; 5], NetError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let texts = [
            &self.ca_cert,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ];
        let paths = FILES.map(|f| dir.join(f));
        for (p, t) in paths.iter().zip(texts) {
            std::fs::write(p, t)
                .map_err(|e| NetError::Config(format!("cannot write {}: {e}", p.display())))?;
        }
        Ok(paths)
    }
}

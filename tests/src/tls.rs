//! HTTPS: a certificate authority made up at start, a server certificate for 127.0.0.1
//! and localhost signed by it, and the rustls configuration serving with them.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls::pki_types::PrivatePkcs8KeyDer;

/// What an HTTPS server needs: its TLS configuration, and the CA certificate clients must
/// trust to accept it.
#[derive(Debug)]
pub(crate) struct TlsIdentity {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) ca_pem: String,
}

impl TlsIdentity {
    pub(crate) fn generate() -> io::Result<TlsIdentity> {
        let ca_key =
            KeyPair::generate().map_err(|error| certificate_error("the CA key", &error))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .map_err(|error| certificate_error("the CA certificate", &error))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "qmgr test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_certificate = ca_params
            .self_signed(&ca_key)
            .map_err(|error| certificate_error("the CA certificate", &error))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key =
            KeyPair::generate().map_err(|error| certificate_error("the server key", &error))?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(|error| certificate_error("the server certificate", &error))?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_certificate = server_params
            .signed_by(&server_key, &issuer)
            .map_err(|error| certificate_error("the server certificate", &error))?;

        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder.with_no_client_auth().with_single_cert(
                    vec![server_certificate.der().clone()],
                    PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
                )
            })
            .map_err(|error| io::Error::other(format!("configuring TLS: {error}")))?;
        // The server speaks HTTP/1.1 only; saying so keeps clients from trying h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsIdentity {
            config: Arc::new(config),
            ca_pem: ca_certificate.pem(),
        })
    }
}

fn certificate_error(what: &str, error: &rcgen::Error) -> io::Error {
    io::Error::other(format!("generating {what}: {error}"))
}

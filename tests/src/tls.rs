//! HTTPS: a certificate authority made up at start, a server certificate for 127.0.0.1
//! and localhost signed by it, and the rustls configuration serving with them. The same
//! CA signs client certificates, which a server may require.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::ring;
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// What an HTTPS server needs: its TLS configuration, and the CA certificate clients must
/// trust to accept it.
#[derive(Debug)]
pub(crate) struct TlsIdentity {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) ca_pem: String,
    pub(crate) issuer: CertificateIssuer,
}

/// The test CA, able to sign client certificates.
pub(crate) struct CertificateIssuer(Arc<Issuer<'static, KeyPair>>);

impl std::fmt::Debug for CertificateIssuer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CertificateIssuer(qmgr test CA)")
    }
}

/// A client certificate and its private key, signed by a test server's CA.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    /// The certificate, DER (what its SHA-1 thumbprint is computed over).
    pub certificate_der: Vec<u8>,
}

impl CertificateIssuer {
    /// A certificate for client authentication with the subject `CN=<common_name>`.
    pub(crate) fn client_certificate(&self, common_name: &str) -> io::Result<ClientIdentity> {
        let key = KeyPair::generate().map_err(|error| certificate_error("a client key", &error))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|error| certificate_error("a client certificate", &error))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let certificate = params
            .signed_by(&key, &self.0)
            .map_err(|error| certificate_error("a client certificate", &error))?;
        Ok(ClientIdentity {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            certificate_der: certificate.der().to_vec(),
        })
    }
}

/// One thing wrong with an HTTPS test server's certificate, for tests of the checks a
/// client makes (and of the flags that relax them). Each defect comes alone: everything
/// else about the certificate is as good as the plain server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateDefect {
    /// Valid from 2000 to 2001 only.
    Expired,
    /// Names `wrong.example` only, not 127.0.0.1 or localhost.
    WrongHost,
    /// Signed by a CA other than the one [`crate::TestServer::ca_pem`] gives.
    UnknownCa,
    /// Its extended key usage is client authentication only.
    ClientAuthOnly,
}

impl TlsIdentity {
    /// `require_client_certificate`: the handshake fails unless the client presents a
    /// certificate signed by the test CA.
    pub(crate) fn generate(require_client_certificate: bool) -> io::Result<TlsIdentity> {
        TlsIdentity::generate_with(require_client_certificate, None)
    }

    /// As [`TlsIdentity::generate`], with a server certificate that has `defect`.
    pub(crate) fn generate_with(
        require_client_certificate: bool,
        defect: Option<CertificateDefect>,
    ) -> io::Result<TlsIdentity> {
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
        let issuer = Arc::new(Issuer::new(ca_params.clone(), ca_key));

        let server_key =
            KeyPair::generate().map_err(|error| certificate_error("the server key", &error))?;
        let names = if defect == Some(CertificateDefect::WrongHost) {
            vec!["wrong.example".to_owned()]
        } else {
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
        };
        let common_name = names[0].clone();
        let mut server_params = CertificateParams::new(names)
            .map_err(|error| certificate_error("the server certificate", &error))?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        server_params.extended_key_usages = if defect == Some(CertificateDefect::ClientAuthOnly) {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        if defect == Some(CertificateDefect::Expired) {
            server_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            server_params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        server_params.use_authority_key_identifier_extension = true;
        let server_certificate = if defect == Some(CertificateDefect::UnknownCa) {
            // A CA like the test CA under another name, which no client is given.
            let stranger_key = KeyPair::generate()
                .map_err(|error| certificate_error("the unknown CA's key", &error))?;
            let mut stranger_params = ca_params;
            stranger_params.distinguished_name = rcgen::DistinguishedName::new();
            stranger_params
                .distinguished_name
                .push(DnType::CommonName, "qmgr unknown test CA");
            let stranger = Issuer::new(stranger_params, stranger_key);
            server_params.signed_by(&server_key, &stranger)
        } else {
            server_params.signed_by(&server_key, &issuer)
        }
        .map_err(|error| certificate_error("the server certificate", &error))?;

        let provider = Arc::new(ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| io::Error::other(format!("configuring TLS: {error}")))?;
        let builder = if require_client_certificate {
            let mut roots = RootCertStore::empty();
            roots
                .add(ca_certificate.der().clone())
                .map_err(|error| io::Error::other(format!("trusting the test CA: {error}")))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| {
                    io::Error::other(format!("configuring client authentication: {error}"))
                })?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(
                vec![server_certificate.der().clone()],
                PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
            )
            .map_err(|error| io::Error::other(format!("configuring TLS: {error}")))?;
        // The server speaks HTTP/1.1 only; saying so keeps clients from trying h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsIdentity {
            config: Arc::new(config),
            ca_pem: ca_certificate.pem(),
            issuer: CertificateIssuer(issuer),
        })
    }
}

fn certificate_error(what: &str, error: &rcgen::Error) -> io::Error {
    io::Error::other(format!("generating {what}: {error}"))
}

//! Client certificates for TLS client authentication
//! (IBackgroundCopyJobHttpOptions::SetClientCertificateByName / ByID).
//!
//! Windows names a certificate by a system store and either its subject or the SHA-1 hash
//! of its DER encoding. qmgr's stores are directories of PEM files,
//! `$XDG_CONFIG_HOME/qmgr/certs/<StoreName>/` (see [`crate::paths::StatePaths::certs_dir`]):
//!
//! - every `*.pem` and `*.crt` file of the directory is a candidate; its first certificate
//!   is the one it offers (certificates after it are taken as its chain, as curl does);
//! - a certificate matches a hash when the SHA-1 of its DER encoding is that hash, and a
//!   subject when the subject is its whole RFC 4514 subject (`CN=client,O=Example`) or the
//!   value of its common name (`client`), compared without regard to ASCII case;
//! - its private key is in the same file, or in `<stem>.key` beside it.
//!
//! The job records the setting as given; it is resolved to files each time a transfer
//! starts, so a store may be filled or changed after the call.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{ErrorContext, QmgrError, Result};
use crate::hresult;

/// Bytes in a certificate hash (SHA-1).
pub const CERTIFICATE_HASH_LEN: usize = 20;

/// The highest `BG_CERT_STORE_LOCATION` (LOCAL_MACHINE_ENTERPRISE).
pub const MAX_STORE_LOCATION: u32 = 7;

/// File name endings of certificate files in a store.
const CERTIFICATE_EXTENSIONS: [&str; 2] = ["pem", "crt"];
/// The ending of a private key file beside a certificate file.
const KEY_EXTENSION: &str = "key";

/// How a job's certificate is picked from its store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CertificateSelector {
    /// SetClientCertificateByName: the subject, whole or just its common name.
    Subject(String),
    /// SetClientCertificateByID: the SHA-1 hash of the DER certificate.
    Sha1([u8; CERTIFICATE_HASH_LEN]),
}

/// A job's client certificate setting, as the caller gave it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientCertificate {
    /// `BG_CERT_STORE_LOCATION`, recorded and reported back; every location means the
    /// caller's own stores.
    pub store_location: u32,
    pub store_name: String,
    pub selector: CertificateSelector,
}

/// A certificate found in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedCertificate {
    /// The PEM file whose first certificate this is.
    pub certificate: PathBuf,
    /// The key file, when the key is not in the certificate file.
    pub key: Option<PathBuf>,
    pub sha1: [u8; CERTIFICATE_HASH_LEN],
    /// The subject, RFC 4514 style.
    pub subject: String,
}

/// Checks a store location (`E_INVALIDARG` beyond the `BG_CERT_STORE_LOCATION` values).
pub fn check_store_location(location: u32) -> Result<()> {
    if location > MAX_STORE_LOCATION {
        return Err(QmgrError::invalid_arg(format!(
            "certificate store location {location} is not a BG_CERT_STORE_LOCATION value \
             (0 to {MAX_STORE_LOCATION})"
        )));
    }
    Ok(())
}

/// Finds the certificate `selector` names in the store directory `store_dir`.
///
/// A missing store or no matching certificate is `CRYPT_E_NOT_FOUND`, a matching
/// certificate without a private key `NTE_NO_KEY`; both in the LOCAL_FILE context.
pub fn resolve(store_dir: &Path, selector: &CertificateSelector) -> Result<ResolvedCertificate> {
    let entries = std::fs::read_dir(store_dir).map_err(|error| {
        not_found(format!(
            "cannot read the certificate store {}: {error}",
            store_dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| CERTIFICATE_EXTENSIONS.contains(&ext))
        })
        .collect();
    // The same store gives the same answer whatever order the directory lists.
    files.sort();
    for path in files {
        let Ok(contents) = std::fs::read(&path) else {
            continue;
        };
        let Some(found) = first_certificate(&contents) else {
            continue;
        };
        if !found.matches(selector) {
            continue;
        }
        let key = key_for(&path, &contents)?;
        return Ok(ResolvedCertificate {
            certificate: path,
            key,
            sha1: found.sha1,
            subject: found.subject,
        });
    }
    Err(not_found(format!(
        "no certificate in {} has {}",
        store_dir.display(),
        describe(selector)
    )))
}

/// The first certificate of a PEM file: its hash, subject and common names.
struct Candidate {
    sha1: [u8; CERTIFICATE_HASH_LEN],
    subject: String,
    common_names: Vec<String>,
}

impl Candidate {
    fn matches(&self, selector: &CertificateSelector) -> bool {
        match selector {
            CertificateSelector::Sha1(hash) => self.sha1 == *hash,
            CertificateSelector::Subject(wanted) => {
                normalized_subject(&self.subject).eq_ignore_ascii_case(&normalized_subject(wanted))
                    || self
                        .common_names
                        .iter()
                        .any(|name| name.eq_ignore_ascii_case(wanted))
            }
        }
    }
}

/// A subject with the spaces around its separators removed: `CN=a, O=b` is `CN=a,O=b`.
fn normalized_subject(subject: &str) -> String {
    subject
        .split(',')
        .map(|part| part.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
}

fn first_certificate(contents: &[u8]) -> Option<Candidate> {
    let pem = Pem::iter_from_buffer(contents)
        .map_while(std::result::Result::ok)
        .find(|pem| pem.label == "CERTIFICATE")?;
    let (_, certificate) = X509Certificate::from_der(&pem.contents).ok()?;
    let subject = certificate.subject();
    let common_names = subject
        .iter_common_name()
        .filter_map(|name| name.as_str().ok().map(str::to_owned))
        .collect();
    Some(Candidate {
        sha1: Sha1::digest(&pem.contents).into(),
        subject: subject.to_string(),
        common_names,
    })
}

/// Where the private key of the certificate file `path` is: `None` when the file holds it.
fn key_for(path: &Path, contents: &[u8]) -> Result<Option<PathBuf>> {
    let holds_key = Pem::iter_from_buffer(contents)
        .map_while(std::result::Result::ok)
        .any(|pem| pem.label.ends_with("PRIVATE KEY"));
    if holds_key {
        return Ok(None);
    }
    let beside = path.with_extension(KEY_EXTENSION);
    if beside.is_file() {
        return Ok(Some(beside));
    }
    Err(QmgrError::new(
        hresult::NTE_NO_KEY,
        ErrorContext::LocalFile,
        format!(
            "the client certificate {} has no private key: neither the file nor {} holds one",
            path.display(),
            beside.display()
        ),
    ))
}

fn not_found(description: String) -> QmgrError {
    QmgrError::new(
        hresult::CRYPT_E_NOT_FOUND,
        ErrorContext::LocalFile,
        description,
    )
}

fn describe(selector: &CertificateSelector) -> String {
    match selector {
        CertificateSelector::Subject(subject) => format!("the subject {subject:?}"),
        CertificateSelector::Sha1(hash) => {
            let mut text = String::from("the SHA-1 hash ");
            for byte in hash {
                let _ = write!(text, "{byte:02x}");
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Minted {
        certificate_pem: String,
        key_pem: String,
        sha1: [u8; CERTIFICATE_HASH_LEN],
    }

    fn mint(common_name: &str) -> Minted {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        let certificate = params.self_signed(&key).unwrap();
        Minted {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            sha1: Sha1::digest(certificate.der()).into(),
        }
    }

    #[test]
    fn a_certificate_is_found_by_common_name_or_whole_subject_in_any_case() {
        let store = tempfile::tempdir().unwrap();
        let other = mint("other");
        let client = mint("client");
        std::fs::write(
            store.path().join("a-other.pem"),
            other.certificate_pem + &other.key_pem,
        )
        .unwrap();
        std::fs::write(
            store.path().join("client.pem"),
            client.certificate_pem + &client.key_pem,
        )
        .unwrap();

        for wanted in [
            "client",
            "CLIENT",
            "CN=client, O=Example",
            "cn=Client, o=example",
        ] {
            let found =
                resolve(store.path(), &CertificateSelector::Subject(wanted.into())).unwrap();
            assert_eq!(
                found.certificate,
                store.path().join("client.pem"),
                "{wanted}"
            );
            assert_eq!(found.key, None);
            assert_eq!(found.sha1, client.sha1);
            assert!(found.subject.contains("CN=client"), "{}", found.subject);
        }
    }

    #[test]
    fn a_certificate_is_found_by_hash_with_its_key_beside_it() {
        let store = tempfile::tempdir().unwrap();
        let client = mint("client");
        let other = mint("client");
        std::fs::write(store.path().join("one.crt"), &client.certificate_pem).unwrap();
        std::fs::write(store.path().join("one.key"), &client.key_pem).unwrap();
        std::fs::write(store.path().join("two.pem"), &other.certificate_pem).unwrap();
        std::fs::write(store.path().join("two.key"), &other.key_pem).unwrap();
        std::fs::write(store.path().join("notes.txt"), "not a certificate").unwrap();

        let found = resolve(store.path(), &CertificateSelector::Sha1(other.sha1)).unwrap();
        assert_eq!(found.certificate, store.path().join("two.pem"));
        assert_eq!(found.key, Some(store.path().join("two.key")));
        assert_eq!(found.sha1, other.sha1);
    }

    #[test]
    fn no_match_and_no_store_are_crypt_e_not_found() {
        let store = tempfile::tempdir().unwrap();
        let client = mint("client");
        std::fs::write(
            store.path().join("client.pem"),
            client.certificate_pem + &client.key_pem,
        )
        .unwrap();
        std::fs::write(
            store.path().join("broken.pem"),
            "-----BEGIN CERTIFICATE-----\n",
        )
        .unwrap();

        let error =
            resolve(store.path(), &CertificateSelector::Subject("server".into())).unwrap_err();
        assert_eq!(error.hresult, hresult::CRYPT_E_NOT_FOUND);
        assert_eq!(error.context, ErrorContext::LocalFile);
        assert!(error.description.contains("\"server\""), "{error}");

        let error = resolve(store.path(), &CertificateSelector::Sha1([7; 20])).unwrap_err();
        assert_eq!(error.hresult, hresult::CRYPT_E_NOT_FOUND);
        assert!(error.description.contains(&"07".repeat(20)), "{error}");

        let missing = store.path().join("absent");
        let error = resolve(&missing, &CertificateSelector::Subject("client".into())).unwrap_err();
        assert_eq!(error.hresult, hresult::CRYPT_E_NOT_FOUND);
        assert!(error.description.contains("absent"), "{error}");
    }

    #[test]
    fn a_certificate_without_a_key_is_nte_no_key() {
        let store = tempfile::tempdir().unwrap();
        let client = mint("client");
        std::fs::write(store.path().join("client.pem"), &client.certificate_pem).unwrap();
        let error = resolve(store.path(), &CertificateSelector::Sha1(client.sha1)).unwrap_err();
        assert_eq!(error.hresult, hresult::NTE_NO_KEY);
        assert!(error.description.contains("client.key"), "{error}");
    }

    #[test]
    fn store_locations_beyond_the_enum_are_invalid() {
        for location in 0..=MAX_STORE_LOCATION {
            check_store_location(location).unwrap();
        }
        let error = check_store_location(MAX_STORE_LOCATION + 1).unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG);
    }
}

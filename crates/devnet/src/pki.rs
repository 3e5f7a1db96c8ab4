//! The dev CA and the platform's server certificate (rcgen on ring, ECDSA P-256).
//!
//! Reused when present: a CA that exists is kept (so clients that trust it keep working); the
//! server certificate is issued again only when missing.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};

use crate::fsutil::{self, FsError};
use crate::layout::Layout;

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// File I/O.
    #[error(transparent)]
    Fs(#[from] FsError),
}

const CA_NAME: &str = "mpc-devnet development CA (NOT for production)";

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "mpc-devnet");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn server_params(extra_ips: &[Ipv4Addr]) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "127.0.0.1");
    p.distinguished_name = dn;
    // `platform`: the name the nodes reach it by on their own Docker networks
    // (`--docker-networks`).
    p.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into()?),
        SanType::DnsName("platform".try_into()?),
    ];
    p.subject_alt_names.extend(
        extra_ips
            .iter()
            .map(|ip| SanType::IpAddress(IpAddr::V4(*ip))),
    );
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// PEM texts of a freshly made CA and server certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// CA certificate.
    pub ca_cert_pem: String,
    /// CA key (PKCS#8 PEM).
    pub ca_key_pem: String,
    /// Server certificate.
    pub server_cert_pem: String,
    /// Server key (PKCS#8 PEM).
    pub server_key_pem: String,
}

/// Makes a CA (or uses `ca` = (cert PEM, key PEM)) and a server certificate for 127.0.0.1 and
/// localhost signed by it. Pure: no files.
pub fn issue(ca: Option<(&str, &str)>) -> Result<Issued, PkiError> {
    issue_for(ca, &[])
}

/// [`issue`] with more IP addresses in the server certificate.
pub fn issue_for(ca: Option<(&str, &str)>, extra_ips: &[Ipv4Addr]) -> Result<Issued, PkiError> {
    let (ca_cert_pem, ca_key) = match ca {
        Some((cert, key)) => (cert.to_owned(), KeyPair::from_pem(key)?),
        None => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let cert = ca_params()?.self_signed(&key)?;
            (cert.pem(), key)
        }
    };
    let ca_key_pem = ca_key.serialize_pem();
    // The issuer needs the CA's name, key usages and key id method, which `ca_params` fixes.
    let issuer = Issuer::new(ca_params()?, ca_key);
    let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let server = server_params(extra_ips)?.signed_by(&server_key, &issuer)?;
    Ok(Issued {
        ca_cert_pem,
        ca_key_pem,
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
    })
}

/// Makes the files of [`Layout`] that are missing: `ca.crt`, `ca.key` (0600),
/// `tls/server.crt`, `tls/server.key` (0600). Returns whether anything was created.
pub fn ensure(layout: &Layout) -> Result<bool, PkiError> {
    let have_ca = layout.ca_cert().exists() && layout.ca_key().exists();
    let have_server = layout.server_cert().exists() && layout.server_key().exists();
    if have_ca && have_server {
        return Ok(false);
    }
    fsutil::create_dir(&layout.tls_dir())?;
    let ca_texts = if have_ca {
        Some((
            fsutil::read_text(&layout.ca_cert())?,
            fsutil::read_text(&layout.ca_key())?,
        ))
    } else {
        None
    };
    let issued = issue(ca_texts.as_ref().map(|(c, k)| (c.as_str(), k.as_str())))?;
    if !have_ca {
        fsutil::write_private(&layout.ca_key(), issued.ca_key_pem.as_bytes())?;
        fsutil::write_public(&layout.ca_cert(), issued.ca_cert_pem.as_bytes())?;
    }
    fsutil::write_private(&layout.server_key(), issued.server_key_pem.as_bytes())?;
    fsutil::write_public(&layout.server_cert(), issued.server_cert_pem.as_bytes())?;
    Ok(true)
}

/// Issues the server certificate again, from the devnet's CA, for 127.0.0.1, localhost and
/// `extra_ips` (a platform process listening on a test's own link address). Processes started
/// before keep serving the old one, which stays valid.
pub fn reissue_server(layout: &Layout, extra_ips: &[Ipv4Addr]) -> Result<(), PkiError> {
    let ca = (
        fsutil::read_text(&layout.ca_cert())?,
        fsutil::read_text(&layout.ca_key())?,
    );
    let issued = issue_for(Some((&ca.0, &ca.1)), extra_ips)?;
    fsutil::write_private(&layout.server_key(), issued.server_key_pem.as_bytes())?;
    fsutil::write_public(&layout.server_cert(), issued.server_cert_pem.as_bytes())?;
    Ok(())
}

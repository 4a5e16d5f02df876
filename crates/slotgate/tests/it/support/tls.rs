//! A certificate authority made by a test (rcgen), and the certificates it
//! issues, written as PEM files into a temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A test CA: its certificate is `ca.pem` in `dir`.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Where the CA's certificate and what it issues are written.
    pub dir: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `DIR/NAME-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("slotgate test CA {name}"));
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        let ca = TestCa {
            issuer,
            dir: dir.join(name),
        };
        std::fs::create_dir_all(&ca.dir).expect("the CA's directory");
        std::fs::write(ca.cert_path(), ca.issuer.pem()).expect("writing the CA certificate");
        ca
    }

    /// The CA's certificate (PEM).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a certificate for `names` (DNS names or IP addresses) with
    /// common name `cn`; writes `NAME.pem` and `NAME.key` and returns their paths.
    pub fn issue(&self, file: &str, cn: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("a certificate");
        let (cert_path, key_path) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("writing a certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("writing a key");
        (cert_path, key_path)
    }
}

//! TLS to PostgreSQL, with libpq's settings read from the `--store` URL:
//! `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`),
//! `sslrootcert` (a PEM file, or `system` for the system's roots), and a
//! client certificate (`sslcert`, `sslkey`) for a database that asks for one.
//! tokio-postgres knows only the first three modes and none of the files, so
//! these parameters are taken out of the URL before it parses the rest.
//!
//! As with libpq: `prefer` (the default) tries TLS and falls back to a plain
//! connection when the server has none; `prefer` and `require` encrypt
//! without checking the server's certificate unless a root certificate is
//! given (then they check it as `verify-ca` does); `verify-ca` checks that
//! the certificate chains to a trusted root; `verify-full` checks the host
//! name too. Without `sslrootcert`, `~/.postgresql/root.crt` is used if it
//! exists, and `~/.postgresql/postgresql.crt` and `.key` likewise for the
//! client certificate. A parameter the URL lacks is taken from libpq's
//! variable (`PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`) when set:
//! the URL's own parameter wins ([`libpq_parameter`]). `sslrootcert=system` asks for `verify-full` (its
//! default then), as libpq does: any CA of the system could otherwise sign a
//! certificate for somebody else's host.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;
use crate::tls::{provider, read_certs, read_key};

/// libpq's `sslmode`, all five that tokio-postgres can carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str, from: Whence) -> Result<Mode, StoreError> {
        Ok(match value {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                let whence = match from {
                    Whence::Environment => "PGSSLMODE",
                    _ => "the --store URL",
                };
                return Err(StoreError(format!(
                    "sslmode={other} in {whence} is not supported: use disable, prefer, \
                     require, verify-ca or verify-full"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone)]
enum Roots {
    /// The system's store (`sslrootcert=system`).
    System,
    /// A PEM file of CA certificates.
    File(PathBuf),
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: the connection is encrypted, but anybody in between could
    /// answer (`prefer` and `require` without a root certificate).
    Nothing,
    /// That it chains to a trusted root.
    Chain,
    /// That it chains to a trusted root and names the host connected to.
    ChainAndName,
}

/// The TLS settings of one `--store` URL.
#[derive(Debug, Clone)]
pub(super) struct Tls {
    mode: Mode,
    /// Where `mode` came from.
    mode_from: Whence,
    check: Check,
    roots: Option<Roots>,
    /// The client certificate chain and its key, if the database asks for one.
    client: Option<(PathBuf, PathBuf)>,
}

/// A libpq parameter of the URL that tokio-postgres does not know (or, for
/// `sslmode`, knows only in part).
const OURS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Where the `sslmode` in use came from, for the startup log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whence {
    Url,
    Environment,
    Default,
}

/// libpq's rule for one TLS parameter: the URL's value if it has one, else
/// its environment variable (`sslmode` -> `PGSSLMODE`) if set and not empty.
/// `env` reads a variable.
fn libpq_parameter(
    name: &str,
    in_url: Option<String>,
    env: &impl Fn(&str) -> Option<String>,
) -> (Option<String>, Whence) {
    match in_url {
        Some(value) => (Some(value), Whence::Url),
        None => match env(&format!("PG{}", name.to_uppercase())).filter(|v| !v.is_empty()) {
            Some(value) => (Some(value), Whence::Environment),
            None => (None, Whence::Default),
        },
    }
}

/// Splits `url` into what tokio-postgres parses (the URL without our
/// parameters) and the TLS settings, which it checks.
pub(super) fn split(url: &str) -> Result<(tokio_postgres::Config, Tls), StoreError> {
    split_in(
        url,
        std::env::var_os("HOME").map(PathBuf::from).as_deref(),
        &|name| std::env::var(name).ok(),
    )
}

/// [`split`], with libpq's default files looked for in `home` and its
/// variables read by `env`.
fn split_in(
    url: &str,
    home: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(tokio_postgres::Config, Tls), StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut given: [Option<String>; 4] = Default::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode_str(name).decode_utf8_lossy();
        if !OURS.contains(&name.as_ref()) {
            kept.push(pair);
            continue;
        }
        let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
        let at = OURS.iter().position(|n| *n == name).expect("one of ours");
        given[at] = Some(value);
    }
    let [mode, rootcert, cert, key] = given;
    let (mode, mode_from) = libpq_parameter("sslmode", mode, env);
    let mode = mode
        .as_deref()
        .map(|m| Mode::parse(m, mode_from))
        .transpose()?;
    let rootcert = libpq_parameter("sslrootcert", rootcert, env).0;
    let cert = libpq_parameter("sslcert", cert, env).0.map(PathBuf::from);
    let key = libpq_parameter("sslkey", key, env).0.map(PathBuf::from);
    let rest = match kept.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", kept.join("&")),
    };
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| StoreError(format!("the --store URL: {}", super::with_causes(&e))))?;
    let default_file = |name: &str| {
        let path = home?.join(".postgresql").join(name);
        path.exists().then_some(path)
    };
    let mut tls = Tls::new(mode, rootcert, (cert, key), default_file)?;
    tls.mode_from = mode_from;
    config.ssl_mode(match tls.mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    Ok((config, tls))
}

impl Tls {
    /// The settings the URL gave; `default_file(NAME)` is `~/.postgresql/NAME`
    /// if it exists, where libpq looks when the URL names no file.
    fn new(
        mode: Option<Mode>,
        rootcert: Option<String>,
        (cert, key): (Option<PathBuf>, Option<PathBuf>),
        default_file: impl Fn(&str) -> Option<PathBuf>,
    ) -> Result<Tls, StoreError> {
        let system = rootcert.as_deref() == Some("system");
        let mode = mode.unwrap_or(if system {
            Mode::VerifyFull
        } else {
            Mode::Prefer
        });
        if system && mode != Mode::VerifyFull {
            return Err(StoreError(format!(
                "sslrootcert=system needs sslmode=verify-full (not {}): any CA of the system \
                 could sign a certificate for another host",
                mode.name()
            )));
        }
        let roots = match rootcert {
            Some(r) if r == "system" => Some(Roots::System),
            Some(file) => Some(Roots::File(file.into())),
            None => default_file("root.crt").map(Roots::File),
        };
        let check = match (mode, &roots) {
            (Mode::VerifyFull, _) => Check::ChainAndName,
            (Mode::VerifyCa, _) | (Mode::Prefer | Mode::Require, Some(_)) => Check::Chain,
            _ => Check::Nothing,
        };
        if check != Check::Nothing && roots.is_none() {
            return Err(StoreError(format!(
                "sslmode={} checks the database's certificate: add sslrootcert=FILE (the CA's \
                 certificate, PEM) or sslrootcert=system (the system's roots) to the --store URL",
                mode.name()
            )));
        }
        let client = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (Some(_), None) | (None, Some(_)) => {
                return Err(StoreError(
                    "the --store URL needs both sslcert and sslkey for a client certificate".into(),
                ))
            }
            (None, None) => default_file("postgresql.crt").zip(default_file("postgresql.key")),
        };
        Ok(Tls {
            mode,
            mode_from: Whence::Default,
            check,
            roots,
            client,
        })
    }

    /// The connector for tokio-postgres; reads the files again, so a
    /// renewed certificate is used from the next connection on.
    pub(super) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let failed = |e: String| StoreError(format!("TLS to PostgreSQL: {e}"));
        let roots = match &self.roots {
            None => RootCertStore::empty(),
            Some(Roots::System) => {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                roots
            }
            Some(Roots::File(path)) => {
                let mut roots = RootCertStore::empty();
                for ca in read_certs(path).map_err(failed)? {
                    roots
                        .add(ca)
                        .map_err(|e| failed(format!("{}: {e}", path.display())))?;
                }
                roots
            }
        };
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3");
        let builder = match self.check {
            Check::ChainAndName => {
                let verifier = WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| failed(format!("the roots of {}: {e}", self.roots_name())))?;
                builder.with_webpki_verifier(verifier)
            }
            Check::Chain | Check::Nothing => {
                let verifier = WithoutName {
                    roots: (self.check == Check::Chain).then_some(roots),
                    algorithms: provider.signature_verification_algorithms,
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
            }
        };
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = read_certs(cert).map_err(failed)?;
                let key = read_key(key).map_err(failed)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    failed(format!("the client certificate {}: {e}", cert.display()))
                })?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots_name(&self) -> String {
        match &self.roots {
            None => "none".into(),
            Some(Roots::System) => "the system's".into(),
            Some(Roots::File(path)) => path.display().to_string(),
        }
    }
}

/// What the log and errors say: the mode and what is checked, no secrets.
impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sslmode={}", self.mode.name())?;
        match self.mode_from {
            Whence::Url => {}
            Whence::Environment => write!(f, " from PGSSLMODE")?,
            Whence::Default => write!(f, " by default")?,
        }
        match self.check {
            _ if self.mode == Mode::Disable => write!(f, " (no TLS)")?,
            Check::Nothing => write!(f, " (encrypted, the server's certificate not checked)")?,
            Check::Chain => write!(
                f,
                " (certificate chain checked against roots {})",
                self.roots_name()
            )?,
            Check::ChainAndName => write!(
                f,
                " (certificate chain and host name checked against roots {})",
                self.roots_name()
            )?,
        }
        if let Some((cert, _)) = &self.client {
            write!(f, ", client certificate {}", cert.display())?;
        }
        Ok(())
    }
}

/// Checks the server's certificate without its host name (`verify-ca`), or
/// not at all when it has no roots (`prefer`, `require`); either way the
/// handshake's signatures are checked, so the server holds the key of the
/// certificate it shows.
#[derive(Debug)]
struct WithoutName {
    roots: Option<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for WithoutName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of `url` where no `~/.postgresql/` files are.
    fn settings(url: &str) -> Result<Tls, String> {
        split_in(url, None, &|_| None)
            .map(|(_, tls)| tls)
            .map_err(|e| e.0)
    }

    #[rustfmt::skip]
    #[test]
    fn the_url_says_the_mode_and_what_is_checked() {
        let cases: &[(&str, &str)] = &[
            ("postgres://u@db/x",                                   "sslmode=prefer by default (encrypted, the server's certificate not checked)"),
            ("postgres://u@db/x?sslmode=disable",                   "sslmode=disable (no TLS)"),
            ("postgres://u@db/x?sslmode=require",                   "sslmode=require (encrypted, the server's certificate not checked)"),
            ("postgres://u@db/x?sslmode=require&sslrootcert=/ca",   "sslmode=require (certificate chain checked against roots /ca)"),
            ("postgres://u@db/x?sslmode=verify-ca&sslrootcert=/ca", "sslmode=verify-ca (certificate chain checked against roots /ca)"),
            ("postgres://u@db/x?sslrootcert=system",                "sslmode=verify-full by default (certificate chain and host name checked against roots the system's)"),
            ("postgres://u@db/x?sslmode=verify-full&sslrootcert=%2Fmy%20ca.pem&sslcert=/c&sslkey=/k",
                "sslmode=verify-full (certificate chain and host name checked against roots /my ca.pem), client certificate /c"),
        ];
        for (url, said) in cases {
            assert_eq!(settings(url).map(|t| t.to_string()).as_deref(), Ok(*said), "{url}");
        }
    }

    #[test]
    fn libpq_variables_fill_in_what_the_url_lacks() {
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("verify-full".to_string()),
            "PGSSLROOTCERT" => Some("/env-ca".to_string()),
            "PGSSLCERT" => Some(String::new()),
            _ => None,
        };
        let with_env = |url: &str| split_in(url, None, &env).map(|(_, t)| t.to_string());
        assert_eq!(
            with_env("postgres://u@db/x").unwrap(),
            "sslmode=verify-full from PGSSLMODE (certificate chain and host name checked against roots /env-ca)"
        );
        assert_eq!(
            with_env("postgres://u@db/x?sslmode=require&sslrootcert=/ca").unwrap(),
            "sslmode=require (certificate chain checked against roots /ca)",
            "the URL's own parameters win"
        );
        assert_eq!(
            libpq_parameter("sslcert", None, &env),
            (None, Whence::Default),
            "an empty variable is not set"
        );
        let bad = split_in("postgres://u@db/x", None, &|n: &str| {
            (n == "PGSSLMODE").then(|| "allow".to_string())
        })
        .unwrap_err();
        assert!(bad.0.contains("sslmode=allow in PGSSLMODE"), "{}", bad.0);
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_the_reason() {
        let refused = |url: &str, why: &str| {
            let e = settings(url).expect_err(url);
            assert!(e.contains(why), "{url}: {e}");
        };
        refused(
            "postgres://u@db/x?sslmode=verify-full",
            "add sslrootcert=FILE",
        );
        refused(
            "postgres://u@db/x?sslmode=verify-ca",
            "add sslrootcert=FILE",
        );
        refused("postgres://u@db/x?sslmode=allow", "sslmode=allow");
        refused(
            "postgres://u@db/x?sslmode=require&sslrootcert=system",
            "needs sslmode=verify-full",
        );
        refused("postgres://u@db/x?sslcert=/c", "both sslcert and sslkey");
    }

    #[test]
    fn the_other_parameters_reach_tokio_postgres() {
        let (config, _) = split_in(
            "postgres://u@db:6543/x?application_name=sg&sslmode=require&connect_timeout=7",
            None,
            &|_| None,
        )
        .unwrap();
        assert_eq!(config.get_application_name(), Some("sg"));
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(
            config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(7))
        );
        let unknown = split_in(
            "postgres://u@db/x?sslmode=disable&nonsense=1",
            None,
            &|_| None,
        )
        .unwrap_err();
        assert!(
            unknown.0.contains("unknown option `nonsense`"),
            "{}",
            unknown.0
        );
    }
}

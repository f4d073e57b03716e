//! Connecting to Postgres: the target's settings (fields or a `url`), read once, with
//! the password kept out of every message, and TLS through rustls.
//!
//! `sslmode` follows libpq's names, with one difference a newcomer may question:
//! `require` verifies the certificate chain and host name, like `verify-full`, where
//! libpq would encrypt without checking who answers. A TLS session nobody verified only
//! stops a passive eavesdropper, and that is what `prefer` is for: it never promised
//! TLS (a server that declines gets plaintext), so checking certificates there would
//! break servers with self-signed certificates without protecting anything.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::Value as Json;
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Client, Config, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::engine::{EngineError, ErrorKind};
use crate::project::Target;

/// How a connection uses TLS (`sslmode`, as libpq spells it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext.
    Disable,
    /// TLS when the server offers it, certificate unchecked; else plaintext.
    Prefer,
    /// TLS, certificate chain and host name verified.
    Require,
    /// TLS, certificate chain verified, host name not.
    VerifyCa,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "unknown sslmode `{other}`; expected disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A Postgres target's connection settings.
#[derive(Clone)]
pub struct PgSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    /// PEM file of the certificate authorities to trust instead of the built-in roots.
    pub sslrootcert: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for servers that ask for one.
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// How long a statement waits for a lock (`lock_timeout`), e.g. a publish's swap
    /// while a reader holds the table; zero waits forever.
    pub lock_timeout: Duration,
    /// How long one statement may run (`statement_timeout`); zero is no limit.
    pub statement_timeout: Duration,
    pub application_name: String,
    /// The TLS connector, built once from the settings above; `None` for `disable`.
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgSettings({})", self.describe())
    }
}

impl PgSettings {
    /// Reads the target's settings: `url` (`postgres://user:pass@host:port/db?sslmode=...`)
    /// and/or the fields `host`, `port`, `user`, `password`, `dbname` (or `database`),
    /// `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `connect_timeout`, `lock_timeout`,
    /// `statement_timeout` (seconds), `application_name`; fields win over the URL.
    pub fn from_target(target: &Target) -> Result<PgSettings, EngineError> {
        let invalid = |reason: String| {
            let help = format!(
                "check the settings of target `{}` in {}",
                target.name,
                target.origin.as_ref().map_or("profiles.yml".into(), |p| format!("`{}`", p.display()))
            );
            refused(&format!("target `{}`", target.name), &reason, help)
        };
        let mut settings = PgSettings {
            host: "localhost".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            dbname: "postgres".into(),
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            connect_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(60),
            statement_timeout: Duration::ZERO,
            application_name: "etlm".into(),
            tls: None,
        };
        let get = |key: &str| target.settings.get(key);
        if let Some(url) = get("url").and_then(Json::as_str) {
            settings.apply_url(url).map_err(invalid)?;
        }
        let text = |v: &Json| match v {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if let Some(host) = get("host").and_then(text) {
            settings.host = host;
        }
        if let Some(port) = get("port").and_then(text) {
            settings.port = port.parse().map_err(|_| invalid(format!("`port` must be a number, got `{port}`")))?;
        }
        if let Some(user) = get("user").or(get("username")).and_then(text) {
            settings.user = user;
        }
        if let Some(password) = get("password").or(get("pass")).and_then(text) {
            settings.password = Some(password);
        }
        if let Some(db) = get("dbname").or(get("database")).and_then(text) {
            settings.dbname = db;
        }
        if let Some(mode) = get("sslmode").and_then(text) {
            settings.sslmode = SslMode::parse(&mode).map_err(invalid)?;
        }
        for (key, slot) in [
            ("sslrootcert", &mut settings.sslrootcert),
            ("sslcert", &mut settings.sslcert),
            ("sslkey", &mut settings.sslkey),
        ] {
            if let Some(path) = get(key).and_then(text) {
                *slot = Some(path.into());
            }
        }
        for (key, slot) in [
            ("connect_timeout", &mut settings.connect_timeout),
            ("lock_timeout", &mut settings.lock_timeout),
            ("statement_timeout", &mut settings.statement_timeout),
        ] {
            if let Some(t) = get(key).and_then(text) {
                let secs: f64 = t
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .ok_or_else(|| invalid(format!("`{key}` must be seconds (0 to 86400), got `{t}`")))?;
                *slot = Duration::from_secs_f64(secs);
            }
        }
        if let Some(name) = get("application_name").and_then(text) {
            settings.application_name = name;
        }
        if settings.sslmode != SslMode::Disable {
            settings.tls = Some(settings.tls_connector().map_err(invalid)?);
        }
        Ok(settings)
    }

    /// Reads a connection URL. The TLS options (`sslmode`, `sslrootcert`, `sslcert`,
    /// `sslkey`) are etlm's, taken out before tokio-postgres parses the rest: it knows
    /// fewer modes and no certificate files.
    fn apply_url(&mut self, url: &str) -> Result<(), String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("sslmode", mode) => self.sslmode = SslMode::parse(mode)?,
                ("sslrootcert", path) => self.sslrootcert = Some(path.into()),
                ("sslcert", path) => self.sslcert = Some(path.into()),
                ("sslkey", path) => self.sslkey = Some(path.into()),
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
        // The parser's message may quote the URL, password included: it is not shown.
        let config: Config = url.parse().map_err(|_| "`url` is not a valid postgres connection URL".to_string())?;
        if let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() {
            self.host = host.clone();
        }
        if let Some(port) = config.get_ports().first() {
            self.port = *port;
        }
        if let Some(user) = config.get_user() {
            self.user = user.to_string();
        }
        if let Some(password) = config.get_password() {
            self.password = Some(String::from_utf8_lossy(password).into_owned());
        }
        if let Some(db) = config.get_dbname() {
            self.dbname = db.to_string();
        }
        if let Some(timeout) = config.get_connect_timeout() {
            self.connect_timeout = *timeout;
        }
        if let Some(name) = config.get_application_name() {
            self.application_name = name.to_string();
        }
        Ok(())
    }

    /// `user@host:port/dbname`: what messages show (never the password).
    pub fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    /// Every string a message must never contain.
    pub fn secrets(&self) -> Vec<&str> {
        self.password.iter().map(String::as_str).filter(|p| !p.is_empty()).collect()
    }

    fn config(&self) -> Config {
        let mut config = Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .connect_timeout(self.connect_timeout)
            .options(&format!(
                "-c lock_timeout={} -c statement_timeout={}",
                self.lock_timeout.as_millis(),
                self.statement_timeout.as_millis()
            ))
            .application_name(&self.application_name)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => WireSslMode::Disable,
                SslMode::Prefer => WireSslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
            });
        if let Some(p) = &self.password {
            config.password(p);
        }
        config
    }

    /// The rustls connector for this `sslmode`: trusted roots from `sslrootcert` (else
    /// the Mozilla roots built into the binary), a client certificate when given.
    fn tls_connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match &self.sslrootcert {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| pem_error("sslrootcert", path, e))? {
                    let cert = cert.map_err(|e| pem_error("sslrootcert", path, e))?;
                    roots.add(cert).map_err(|e| format!("`sslrootcert` `{}`: {e}", path.display()))?;
                }
                roots
            }
            None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        };
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| {
                match &self.sslrootcert {
                    Some(path) => format!("`sslrootcert` `{}` holds no usable certificate: {e}", path.display()),
                    None => format!("the built-in root certificates are unusable: {e}"),
                }
            })?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { webpki, mode: self.sslmode }));
        let config = match (&self.sslcert, &self.sslkey) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| pem_error("sslcert", cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error("sslcert", cert, e))?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error("sslkey", key, e))?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| format!("`sslcert`/`sslkey`: {e}"))?
            }
            _ => return Err("`sslcert` and `sslkey` go together: set both or neither".into()),
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

fn pem_error(key: &str, path: &std::path::Path, e: rustls::pki_types::pem::Error) -> String {
    format!("could not read `{key}` `{}`: {e}", path.display())
}

/// Checks the server's certificate as the `sslmode` asks: `prefer` accepts any,
/// `verify-ca` forgives a host name the certificate does not name, the others check all.
/// Handshake signatures are always checked.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    mode: SslMode,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.mode == SslMode::Prefer {
            return Ok(ServerCertVerified::assertion());
        }
        // The verifier checks the chain first, so a name error means the chain is good.
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.mode == SslMode::VerifyCa => Ok(ServerCertVerified::assertion()),
            result => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Opens a connection; its driver runs on the current runtime until the client is
/// dropped.
pub async fn connect(settings: &PgSettings) -> Result<Client, EngineError> {
    let config = settings.config();
    let opened = async {
        match &settings.tls {
            None => open(&config, NoTls).await,
            Some(tls) => open(&config, tls.clone()).await,
        }
    };
    // `connect_timeout` covers the whole start-up: TCP, TLS and authentication, so a
    // server that accepts and never answers cannot hang the run.
    match tokio::time::timeout(settings.connect_timeout, opened).await {
        Ok(opened) => opened.map_err(|e| connect_error(settings, &e)),
        Err(_) => Err(refused(
            &settings.describe(),
            &format!("no answer within {:.0} s (`connect_timeout`)", settings.connect_timeout.as_secs_f64()),
            "check that the host and port are a Postgres server that is up, or raise `connect_timeout`".into(),
        )),
    }
}

async fn open<T>(config: &Config, tls: T) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Asks the server to cancel the statement running on `token`'s connection, over TLS
/// when the connection used it. Best effort: a connection already gone has nothing to
/// cancel.
pub async fn cancel(settings: &PgSettings, token: &CancelToken) {
    let _ = match &settings.tls {
        None => token.cancel_query(NoTls).await,
        Some(tls) => token.cancel_query(tls.clone()).await,
    };
}

/// Why a connection failed and what to change, without the password.
fn connect_error(settings: &PgSettings, e: &tokio_postgres::Error) -> EngineError {
    let mode = settings.sslmode.as_str();
    let (reason, help) = if tls_refused(e) {
        (
            format!("the server does not support TLS and sslmode is {mode}"),
            "enable `ssl` on the server, or set `sslmode: disable` in the target if plaintext is acceptable".into(),
        )
    } else if let Some(cert) = certificate_error(e) {
        certificate_reason(settings, cert)
    } else if matches!(e.code(), Some(c) if *c == SqlState::INVALID_PASSWORD
        || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    {
        (
            super::error_text(e),
            format!(
                "check the target's `user` and `password` (and the environment variable its `env_var()` reads); \
                 the server's pg_hba.conf decides who may connect to `{}`",
                settings.dbname
            ),
        )
    } else {
        (
            super::error_text(e),
            format!("check that the server is running and accepts connections on {}:{}", settings.host, settings.port),
        )
    };
    let secrets = settings.secrets();
    refused(&settings.describe(), &redact(&reason, &secrets), redact(&help, &secrets))
}

/// `could not connect to postgres at <target>: <reason>`, with what to change.
fn refused(target: &str, reason: &str, help: String) -> EngineError {
    EngineError::new(ErrorKind::Connect, format!("could not connect to postgres at {target}: {reason}")).with_help(help)
}

/// Whether the server declined TLS that the `sslmode` requires (tokio-postgres reports
/// it with this text and no other mark).
fn tls_refused(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.to_string() == "server does not support TLS")
}

/// The certificate problem of a failed TLS handshake, if that is what failed.
fn certificate_error(e: &tokio_postgres::Error) -> Option<&CertificateError> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // rustls errors arrive wrapped in an io::Error, whose `source` skips them.
        let inner: &(dyn std::error::Error + 'static) =
            match s.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
                Some(wrapped) => wrapped,
                None => s,
            };
        if let Some(rustls::Error::InvalidCertificate(cert)) = inner.downcast_ref::<rustls::Error>() {
            return Some(cert);
        }
        source = s.source();
    }
    None
}

fn certificate_reason(settings: &PgSettings, cert: &CertificateError) -> (String, String) {
    match cert {
        CertificateError::UnknownIssuer => match &settings.sslrootcert {
            Some(path) => (
                format!("the server's certificate is not signed by a certificate authority in `{}`", path.display()),
                "set `sslrootcert` to the PEM file of the certificate authority that signed the server's certificate"
                    .into(),
            ),
            None => (
                "the server's certificate is not signed by a trusted certificate authority".into(),
                "set `sslrootcert` to the PEM file of the certificate authority that signed the server's \
                 certificate (e.g. your cloud provider's CA bundle)"
                    .into(),
            ),
        },
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
            format!("the server's certificate is not valid for host `{}`", settings.host),
            "connect with a host name the certificate names, or use `sslmode: verify-ca` to check the \
             certificate chain but not the host name"
                .into(),
        ),
        other => (
            format!("the server's certificate was rejected: {other}"),
            "check the server's certificate and the target's `sslmode` and `sslrootcert`".into(),
        ),
    }
}

/// `text` with every secret replaced by `***`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets.iter().fold(text.to_string(), |t, s| t.replace(s, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::EngineKind;

    fn target(settings: serde_json::Value) -> Target {
        let serde_json::Value::Object(map) = settings else { panic!("settings are a JSON object") };
        Target {
            name: "pg".into(),
            engine: EngineKind::Postgres,
            schema: "public".into(),
            database: None,
            threads: None,
            settings: map.into_iter().collect(),
            origin: None,
            project_dir: PathBuf::new(),
        }
    }

    fn reason(e: EngineError) -> String {
        assert_eq!(e.kind, ErrorKind::Connect, "expected a connection error, got {e}");
        let message = e.to_string();
        message.split_once(": ").map(|(_, reason)| reason.to_string()).unwrap_or(message)
    }

    #[test]
    fn a_url_gives_its_tls_options_to_etlm_and_the_rest_to_tokio_postgres() {
        let s = PgSettings::from_target(&target(serde_json::json!({
            "url": "postgres://ann:pw@db.example.com:6543/shop?sslmode=verify-ca&application_name=nightly"
        })))
        .expect("valid url");
        assert_eq!(s.describe(), "ann@db.example.com:6543/shop");
        assert_eq!(s.sslmode, SslMode::VerifyCa);
        assert_eq!(s.application_name, "nightly");
        assert_eq!(s.secrets(), vec!["pw"]);
    }

    #[test]
    fn fields_win_over_the_url() {
        let s = PgSettings::from_target(&target(serde_json::json!({
            "url": "postgres://ann:pw@db.example.com:6543/shop?sslmode=require",
            "port": 5433, "dbname": "other", "sslmode": "disable"
        })))
        .expect("valid settings");
        assert_eq!(s.describe(), "ann@db.example.com:5433/other");
        assert_eq!(s.sslmode, SslMode::Disable);
    }

    #[test]
    fn an_invalid_url_is_reported_without_quoting_it() {
        let e = PgSettings::from_target(&target(serde_json::json!({"url": "postgres://ann:s3cret@host:notaport/db"})))
            .expect_err("bad port");
        let reason = reason(e);
        assert_eq!(reason, "`url` is not a valid postgres connection URL");
    }

    #[test]
    fn unknown_sslmodes_and_a_lone_client_certificate_are_errors() {
        let e = PgSettings::from_target(&target(serde_json::json!({"sslmode": "verify"}))).expect_err("bad mode");
        assert!(reason(e).starts_with("unknown sslmode `verify`"));
        let e = PgSettings::from_target(&target(serde_json::json!({"sslmode": "require", "sslcert": "/c.pem"})))
            .expect_err("no key");
        assert_eq!(reason(e), "`sslcert` and `sslkey` go together: set both or neither");
        let url = "postgres://ann@host/db?sslmode=require&sslrootcert=/no/ca.pem";
        let e = PgSettings::from_target(&target(serde_json::json!({ "url": url }))).expect_err("no file");
        assert!(reason(e).starts_with("could not read `sslrootcert` `/no/ca.pem`"));
    }

    #[test]
    fn debug_output_and_redacted_text_never_show_the_password() {
        let s = PgSettings::from_target(&target(serde_json::json!({"user": "ann", "password": "s3cret"})))
            .expect("valid settings");
        assert_eq!(format!("{s:?}"), "PgSettings(ann@localhost:5432/postgres)");
        assert_eq!(redact("auth failed for s3cret", &s.secrets()), "auth failed for ***");
        assert!(!format!("{:?}", target(serde_json::json!({"password": "s3cret"}))).contains("s3cret"));
    }
}

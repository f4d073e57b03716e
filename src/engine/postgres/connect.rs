//! Connecting to Postgres: the target's settings (fields or a `url`), read once, with
//! the password kept out of every message.

use std::time::Duration;

use serde_json::Value as Json;
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::{Client, Config, NoTls};

use crate::engine::EngineError;
use crate::project::Target;

/// How a connection uses TLS (`sslmode`, as libpq spells it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
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
    pub connect_timeout: Duration,
    pub application_name: String,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgSettings({})", self.describe())
    }
}

impl PgSettings {
    /// Reads the target's settings: `url` (`postgres://user:pass@host:port/db?sslmode=...`)
    /// and/or the fields `host`, `port`, `user`, `password`, `dbname` (or `database`),
    /// `sslmode`, `connect_timeout` (seconds), `application_name`; fields win over the URL.
    pub fn from_target(target: &Target) -> Result<PgSettings, String> {
        let mut settings = PgSettings {
            host: "localhost".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            dbname: "postgres".into(),
            sslmode: SslMode::Prefer,
            connect_timeout: Duration::from_secs(10),
            application_name: "etlm".into(),
        };
        let get = |key: &str| target.settings.get(key);
        if let Some(url) = get("url").and_then(Json::as_str) {
            settings.apply_url(url)?;
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
            settings.port = port.parse().map_err(|_| format!("`port` must be a number, got `{port}`"))?;
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
            settings.sslmode = SslMode::parse(&mode)?;
        }
        if let Some(t) = get("connect_timeout").and_then(text) {
            let secs: u64 = t.parse().map_err(|_| format!("`connect_timeout` must be seconds, got `{t}`"))?;
            settings.connect_timeout = Duration::from_secs(secs);
        }
        if let Some(name) = get("application_name").and_then(text) {
            settings.application_name = name;
        }
        Ok(settings)
    }

    fn apply_url(&mut self, url: &str) -> Result<(), String> {
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
        self.sslmode = match config.get_ssl_mode() {
            WireSslMode::Disable => SslMode::Disable,
            WireSslMode::Require => SslMode::Require,
            _ => self.sslmode,
        };
        if let Some(mode) = url.split(['?', '&']).find_map(|p| p.strip_prefix("sslmode=")) {
            self.sslmode = SslMode::parse(mode)?;
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
            .application_name(&self.application_name);
        if let Some(p) = &self.password {
            config.password(p);
        }
        config
    }
}

/// Opens a connection; its driver runs on the current runtime until the client is
/// dropped.
pub async fn connect(settings: &PgSettings) -> Result<Client, EngineError> {
    let mut config = settings.config();
    let fail = |e: tokio_postgres::Error| EngineError::Connect {
        target: settings.describe(),
        reason: redact(&super::error_text(&e), &settings.secrets()),
    };
    match settings.sslmode {
        SslMode::Disable | SslMode::Prefer => {
            config.ssl_mode(WireSslMode::Disable);
            let (client, connection) = config.connect(NoTls).await.map_err(fail)?;
            tokio::spawn(connection);
            Ok(client)
        }
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Err(EngineError::Connect {
            target: settings.describe(),
            reason: "TLS is not available in this build".into(),
        }),
    }
}

/// `text` with every secret replaced by `***`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets.iter().fold(text.to_string(), |t, s| t.replace(s, "***"))
}

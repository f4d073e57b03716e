//! Where a run sends its OpenLineage events: the project file's `openlineage:` block,
//! with the environment variables the official clients read on top of it
//! (`OPENLINEAGE_URL`, `OPENLINEAGE_ENDPOINT`, `OPENLINEAGE_API_KEY`,
//! `OPENLINEAGE_NAMESPACE`, `OPENLINEAGE_DISABLED`, and `OPENLINEAGE__TRANSPORT__TYPE`
//! with its `__URL`, `__ENDPOINT`, `__TIMEOUT`, `__LOG_FILE_PATH`, `__AUTH__API_KEY`).
//! The API key is read only from the environment: project files are committed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Env;
use super::yaml::Yaml;
use crate::diagnostics::{Code, Diagnostic, Span};

/// The `openlineage:` block as written.
#[derive(Clone, Debug, Default)]
pub struct OpenLineageFile {
    pub namespace: Option<String>,
    pub disabled: bool,
    pub kind: Option<(String, Span)>,
    pub url: Option<String>,
    pub endpoint: Option<String>,
    pub timeout: Option<f64>,
    pub path: Option<String>,
}

/// Where the events go.
#[derive(Clone, PartialEq)]
pub enum Transport {
    /// POST each event to `url` + `endpoint`, with a bearer token when there is a key.
    Http { url: String, endpoint: String, api_key: Option<String>, timeout: Duration },
    /// One JSON event per line, appended to the file.
    File { path: PathBuf },
    /// One JSON event per line on stderr.
    Console,
}

/// Shows the API key's presence, never its value.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Http { url, endpoint, api_key, timeout } => f
                .debug_struct("Http")
                .field("url", url)
                .field("endpoint", endpoint)
                .field("api_key", &api_key.as_ref().map(|_| "***"))
                .field("timeout", timeout)
                .finish(),
            Transport::File { path } => f.debug_struct("File").field("path", path).finish(),
            Transport::Console => f.write_str("Console"),
        }
    }
}

/// Where a run sends events, and the job namespace they carry.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenLineageConfig {
    pub namespace: String,
    pub transport: Transport,
}

/// The default job namespace, as the official clients name it.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The default endpoint under an HTTP transport's URL.
pub const DEFAULT_ENDPOINT: &str = "api/v1/lineage";
/// How long one HTTP request (and the wait for undelivered events at the end) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const KEYS: &[&str] = &["disabled", "namespace", "transport"];
const TRANSPORT_KEYS: &[&str] = &["endpoint", "path", "timeout", "type", "url"];

impl OpenLineageFile {
    /// Reads the block; every problem is pushed to `errors` with its span.
    pub fn parse(yaml: &Yaml, errors: &mut Vec<Diagnostic>) -> OpenLineageFile {
        let mut out = OpenLineageFile::default();
        let Some(entries) = check_keys(yaml, "openlineage", KEYS, errors) else { return out };
        for (key, value) in entries {
            match key.name.as_str() {
                "namespace" => out.namespace = string(value, "openlineage.namespace", errors),
                "disabled" => match value.to_json() {
                    serde_json::Value::Bool(b) => out.disabled = b,
                    _ => errors.push(value.shape_error("true or false", "openlineage.disabled")),
                },
                _ => out.transport(value, errors),
            }
        }
        out
    }

    fn transport(&mut self, yaml: &Yaml, errors: &mut Vec<Diagnostic>) {
        let Some(entries) = check_keys(yaml, "openlineage.transport", TRANSPORT_KEYS, errors) else { return };
        for (key, value) in entries {
            let context = format!("openlineage.transport.{}", key.name);
            match key.name.as_str() {
                "type" => self.kind = string(value, &context, errors).map(|k| (k, value.span)),
                "url" => self.url = string(value, &context, errors),
                "endpoint" => self.endpoint = string(value, &context, errors),
                "path" => self.path = string(value, &context, errors),
                _ => match value.to_json().as_f64() {
                    Some(s) if s > 0.0 && s <= 3600.0 => self.timeout = Some(s),
                    _ => errors.push(value.shape_error("a number of seconds (at most 3600)", &context)),
                },
            }
        }
        if let Some((kind, span)) = &self.kind
            && !matches!(kind.as_str(), "http" | "file" | "console")
        {
            errors.push(
                Diagnostic::error(Code::InvalidOpenLineage, format!("`{kind}` is not an OpenLineage transport"))
                    .with_label(*span, "unknown transport")
                    .with_help("use `http`, `file` or `console`"),
            );
        }
    }
}

fn check_keys<'a>(
    yaml: &'a Yaml,
    context: &str,
    known: &[&str],
    errors: &mut Vec<Diagnostic>,
) -> Option<&'a [(super::yaml::YamlKey, Yaml)]> {
    let entries = yaml.expect_map(context).map_err(|d| errors.push(d)).ok()?;
    for (key, _) in entries {
        if !known.contains(&key.name.as_str()) {
            errors.push(
                Diagnostic::error(Code::InvalidProject, format!("`{}` is not a setting of `{context}`", key.name))
                    .with_label(key.span, "unknown setting")
                    .with_help(format!("known: {}", known.join(", "))),
            );
        }
    }
    Some(entries)
}

fn string(yaml: &Yaml, context: &str, errors: &mut Vec<Diagnostic>) -> Option<String> {
    yaml.expect_string(context).map_err(|d| errors.push(d)).ok()
}

/// The configuration a run uses: the project file's block with the environment on top.
/// `None` when events are off (no transport anywhere, or disabled); an `Err` for an
/// environment value that makes no sense, naming the variable.
pub fn resolve(
    file: Option<&OpenLineageFile>,
    env: &Env,
    root: &Path,
) -> Result<Option<OpenLineageConfig>, Diagnostic> {
    let default = OpenLineageFile::default();
    let file = file.unwrap_or(&default);
    let var = |name: &str| env.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let disabled = match var("OPENLINEAGE_DISABLED") {
        Some(v) => matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        None => file.disabled,
    };
    let url = var("OPENLINEAGE__TRANSPORT__URL").or_else(|| var("OPENLINEAGE_URL")).or_else(|| file.url.clone());
    let kind = match var("OPENLINEAGE__TRANSPORT__TYPE") {
        Some(k) => Some(k),
        None if var("OPENLINEAGE_URL").is_some() => Some("http".to_string()),
        None => file.kind.as_ref().map(|(k, _)| k.clone()),
    };
    let Some(kind) = kind.or_else(|| url.as_ref().map(|_| "http".to_string())) else { return Ok(None) };
    if disabled {
        return Ok(None);
    }
    let env_error = |what: String| {
        Diagnostic::error(Code::InvalidOpenLineage, what)
            .with_help("see docs/operations.md (OpenLineage) for the variables etlm reads")
    };
    let transport = match kind.to_ascii_lowercase().as_str() {
        "http" => {
            let url = url.ok_or_else(|| env_error("the OpenLineage http transport has no URL".into()))?;
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(env_error(format!("the OpenLineage URL `{url}` is not an http:// or https:// URL")));
            }
            let endpoint = var("OPENLINEAGE__TRANSPORT__ENDPOINT")
                .or_else(|| var("OPENLINEAGE_ENDPOINT"))
                .or_else(|| file.endpoint.clone())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
            let timeout = match var("OPENLINEAGE__TRANSPORT__TIMEOUT") {
                Some(t) => match t.parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
                    _ => {
                        return Err(env_error(format!(
                            "`OPENLINEAGE__TRANSPORT__TIMEOUT={t}` is not a number of seconds"
                        )));
                    }
                },
                None => file.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64),
            };
            let api_key = var("OPENLINEAGE__TRANSPORT__AUTH__API_KEY").or_else(|| var("OPENLINEAGE_API_KEY"));
            Transport::Http { url, endpoint, api_key, timeout }
        }
        "file" => {
            let path = var("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH")
                .or_else(|| file.path.clone())
                .ok_or_else(|| env_error("the OpenLineage file transport has no `path`".into()))?;
            Transport::File { path: root.join(path) }
        }
        "console" => Transport::Console,
        other => {
            return Err(env_error(format!(
                "`OPENLINEAGE__TRANSPORT__TYPE={other}` is not `http`, `file` or `console`"
            )));
        }
    };
    let namespace = var("OPENLINEAGE_NAMESPACE")
        .or_else(|| file.namespace.clone())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    Ok(Some(OpenLineageConfig { namespace, transport }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_environment_turns_events_on_and_wins_over_the_file() {
        let root = Path::new("/p");
        assert_eq!(resolve(None, &env(&[]), root).unwrap(), None, "off unless configured");
        let on = resolve(None, &env(&[("OPENLINEAGE_URL", "http://m:5000"), ("OPENLINEAGE_API_KEY", "k")]), root)
            .unwrap()
            .unwrap();
        assert_eq!(on.namespace, DEFAULT_NAMESPACE);
        assert_eq!(
            on.transport,
            Transport::Http {
                url: "http://m:5000".into(),
                endpoint: DEFAULT_ENDPOINT.into(),
                api_key: Some("k".into()),
                timeout: DEFAULT_TIMEOUT
            }
        );
        assert!(!format!("{:?}", on.transport).contains("\"k\""), "the key is never shown");
        let file = OpenLineageFile {
            namespace: Some("nightly".into()),
            path: Some("events.jsonl".into()),
            kind: Some(("file".into(), Span::file_start(crate::diagnostics::FileId::default()))),
            ..Default::default()
        };
        let from_file = resolve(Some(&file), &env(&[]), root).unwrap().unwrap();
        assert_eq!(from_file.transport, Transport::File { path: root.join("events.jsonl") });
        assert_eq!(from_file.namespace, "nightly");
        let console = resolve(Some(&file), &env(&[("OPENLINEAGE__TRANSPORT__TYPE", "console")]), root).unwrap();
        assert_eq!(console.unwrap().transport, Transport::Console);
        assert_eq!(resolve(Some(&file), &env(&[("OPENLINEAGE_DISABLED", "true")]), root).unwrap(), None);
        let bad = resolve(None, &env(&[("OPENLINEAGE__TRANSPORT__TYPE", "kafka")]), root).unwrap_err();
        assert!(bad.message.contains("kafka"), "{}", bad.message);
    }
}

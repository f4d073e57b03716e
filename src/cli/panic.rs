//! What a panic prints: an "internal error" report that asks for a bug report, with the
//! values of secret-looking environment variables (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`,
//! `*KEY*`, `DBT_ENV_SECRET_*`) masked wherever they appear in the message.

use crate::project::{Env, mask_env};

/// Names whose values are masked in a panic's report.
fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY"].iter().any(|w| upper.contains(w))
}

/// The report a panic prints, `message` with the secrets of `env` masked.
fn report(message: &str, location: &str, env: &Env) -> String {
    // Short values (`KEY=1`) would mask every digit of the report.
    let text = mask_env(env, message, |name, value| is_secret(name) && value.len() >= 4);
    format!(
        "error[internal]: etlm hit a bug: {text}\n  --> {location}\n  = note: nothing half-built was published; every relation is at its old or its new version\n  = help: please report it with the command you ran and this message (etlm {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Replaces the default panic message with [`report`].
pub fn install_hook(env: &Env) {
    let env = env.clone();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let location = info.location().map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        eprintln!("{}", report(&message, &location, &env));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_masks_secret_values() {
        let env: Env = [("PGPASSWORD", "hunter22"), ("DBT_ENV_SECRET_TOKEN", "tok-123"), ("HOME", "/root")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let text = report("could not use hunter22 with tok-123 in /root", "src/x.rs:1", &env);
        assert!(!text.contains("hunter22") && !text.contains("tok-123"), "{text}");
        assert!(text.contains("in /root") && text.starts_with("error[internal]"), "{text}");
    }
}

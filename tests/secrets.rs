//! Secret environment variables (#18, defect 9), as dbt treats them: `DBT_ENV_SECRET_*`
//! (and `ETLM_SECRET_*`) are read only in profiles and hooks; in a model or a config
//! value they are an error with file:line, and their values never reach a file etlm
//! writes, its output or the run history.

mod support;

use std::path::Path;

use support::{copy_project, etlm_with};

const SENTINEL: &str = "s3cr3t-sentinel-9c1d";

/// Every file under `dir`, as text where it is text.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        if let Ok(bytes) = std::fs::read(entry.path())
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(entry.path().display().to_string());
        }
    }
    found
}

fn example() -> (tempfile::TempDir, std::path::PathBuf) {
    copy_project(Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project").to_str().unwrap())
}

#[test]
fn a_secret_in_model_sql_or_config_is_an_error_and_written_nowhere() {
    let envs = [("DBT_ENV_SECRET_PW", SENTINEL), ("ETLM_SECRET_KEY", SENTINEL)];
    let (_tmp, dir) = example();
    std::fs::write(
        dir.join("models/marts/leaky.sql"),
        "select 1 as id,\n  '{{ env_var(\"DBT_ENV_SECRET_PW\") }}' as pw\n",
    )
    .unwrap();
    let run = etlm_with(&dir, &["compile"], &envs);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("`DBT_ENV_SECRET_PW` is a secret"), "{}", run.stderr);
    assert!(run.stderr.contains("models/marts/leaky.sql:2"), "points at the line: {}", run.stderr);
    assert!(!run.stdout.contains(SENTINEL) && !run.stderr.contains(SENTINEL));
    assert_eq!(files_containing(&dir, SENTINEL), Vec::<String>::new());

    std::fs::remove_file(dir.join("models/marts/leaky.sql")).unwrap();
    let project = std::fs::read_to_string(dir.join("etlm.yml")).unwrap();
    let with_schema = project.replace(
        "      +materialized: table",
        "      +materialized: table\n      +schema: \"{{ env_var('ETLM_SECRET_KEY') }}\"",
    );
    std::fs::write(dir.join("etlm.yml"), with_schema).unwrap();
    let run = etlm_with(&dir, &["compile"], &envs);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("`ETLM_SECRET_KEY` is a secret") && run.stderr.contains("etlm.yml:"), "{}", run.stderr);
    assert_eq!(files_containing(&dir, SENTINEL), Vec::<String>::new());
}

#[test]
fn hooks_read_secrets_and_their_errors_are_masked_everywhere() {
    let envs = [("DBT_ENV_SECRET_PW", SENTINEL)];
    let (_tmp, dir) = example();
    // One hook that works with the secret, one whose error message quotes it.
    std::fs::write(
        dir.join("models/marts/hooked.sql"),
        "{{ config(post_hook=[\"select '{{ env_var('DBT_ENV_SECRET_PW') }}' as ok\", \
         \"select cast('{{ env_var('DBT_ENV_SECRET_PW') }}' as int) as fails\"]) }}\nselect 1 as id\n",
    )
    .unwrap();
    let run = etlm_with(&dir, &["build"], &envs);
    assert_eq!(run.code, 1, "the second hook fails: {}\n{}", run.stdout, run.stderr);
    let hooked = run.stdout.lines().find(|l| l.contains("hooked")).unwrap_or_default().to_string();
    assert!(run.stdout.contains("*****"), "the message is there, masked: {}", run.stdout);
    assert!(!run.stdout.contains(SENTINEL) && !run.stderr.contains(SENTINEL), "{hooked}");
    let history = etlm_with(&dir, &["runs", "--models", "--limit", "1"], &envs);
    assert!(history.stdout.contains("*****") && !history.stdout.contains(SENTINEL), "{}", history.stdout);
    assert_eq!(files_containing(&dir, SENTINEL), Vec::<String>::new(), "no file holds the secret");
}

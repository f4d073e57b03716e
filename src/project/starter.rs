//! The starter project `etlm init` writes (`templates/init/`): a seed, a staging view, a
//! mart table, an incremental model, YAML and singular tests, and a profile with the
//! embedded engine as default and Postgres beside it. `__PROJECT__` in the templates
//! becomes the project's name.

use std::path::{Path, PathBuf};

/// The template files, by path in the new project.
const FILES: &[(&str, &str)] = &[
    ("etlm.yml", include_str!("../../templates/init/etlm.yml")),
    ("profiles.yml", include_str!("../../templates/init/profiles.yml")),
    (".gitignore", include_str!("../../templates/init/gitignore")),
    ("seeds/raw_orders.csv", include_str!("../../templates/init/seeds/raw_orders.csv")),
    ("seeds/schema.yml", include_str!("../../templates/init/seeds/schema.yml")),
    ("models/staging/stg_orders.sql", include_str!("../../templates/init/models/staging/stg_orders.sql")),
    ("models/staging/schema.yml", include_str!("../../templates/init/models/staging/schema.yml")),
    ("models/marts/daily_revenue.sql", include_str!("../../templates/init/models/marts/daily_revenue.sql")),
    ("models/marts/orders.sql", include_str!("../../templates/init/models/marts/orders.sql")),
    ("models/marts/schema.yml", include_str!("../../templates/init/models/marts/schema.yml")),
    (
        "tests/assert_revenue_is_not_negative.sql",
        include_str!("../../templates/init/tests/assert_revenue_is_not_negative.sql"),
    ),
];

/// The project name for a folder: its name in lowercase, with every character other
/// than a letter, digit or `_` made `_` (a name must be a SQL identifier and a YAML key).
pub fn project_name(dir: &Path) -> String {
    let base = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let name = name.trim_matches('_');
    match name.chars().next() {
        None => "my_project".into(),
        Some(c) if c.is_ascii_digit() => format!("p_{name}"),
        Some(_) => name.to_string(),
    }
}

/// The files of a starter project called `name`, as (path under `dir`, content).
pub fn starter_files(dir: &Path, name: &str) -> Vec<(PathBuf, String)> {
    FILES.iter().map(|(path, text)| (dir.join(path), text.replace("__PROJECT__", name))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_name_becomes_an_identifier() {
        assert_eq!(project_name(Path::new("/tmp/My Shop-2")), "my_shop_2");
        assert_eq!(project_name(Path::new("/tmp/2024")), "p_2024");
        assert_eq!(project_name(Path::new("/tmp/---")), "my_project");
        let files = starter_files(Path::new("/x"), "shop");
        assert!(files.iter().all(|(p, text)| p.starts_with("/x") && !text.contains("__PROJECT__")));
    }
}

//! Every diagnostic code etlm emits, in one enum: a code is kebab-case, stable and never
//! reused (`error[unknown-ref]`). What each means for a user is in docs/diagnostics.md;
//! a test fails when a code here has no entry there.

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $text:literal,)+) => {
        /// A diagnostic's code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Code {
            /// Every code, in the order declared.
            pub const ALL: &[Code] = &[$(Code::$variant,)+];

            /// The code as users see it: `unknown-ref`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)+
                }
            }
        }
    };
}

codes! {
    /// No `etlm.yml` or `dbt_project.yml` in the project directory.
    NoProject = "no-project",
    /// The project file lacks `name` or has a malformed value.
    InvalidProject = "invalid-project",
    /// A YAML file does not parse.
    YamlSyntax = "yaml-syntax",
    /// A YAML value has the wrong shape.
    YamlShape = "yaml-shape",
    /// A config key etlm does not know.
    UnknownConfig = "unknown-config",
    /// A known config key with a value it does not accept.
    InvalidConfig = "invalid-config",
    /// A config value's Jinja does not render.
    ConfigRender = "config-render",
    /// A key of a YAML properties entry that neither etlm nor dbt knows (warning).
    UnknownPropertyKey = "unknown-property-key",
    /// A key in the project file that neither etlm nor dbt knows (warning).
    UnknownProjectKey = "unknown-project-key",
    /// YAML properties for a name no model has (warning).
    UnmatchedProperties = "unmatched-properties",
    /// A Python model, which etlm does not build (warning).
    PythonModel = "python-model",
    /// `ref()` to a name that is no model or seed.
    UnknownRef = "unknown-ref",
    /// `source()` to a table not declared.
    UnknownSource = "unknown-source",
    /// Nodes that depend on each other in a circle.
    DependencyCycle = "dependency-cycle",
    /// Two models with one name.
    DuplicateModel = "duplicate-model",
    /// Two macros with one name.
    DuplicateMacro = "duplicate-macro",
    /// Two docs blocks with one name.
    DuplicateDocs = "duplicate-docs",
    /// Two properties entries for one name.
    DuplicateProperties = "duplicate-properties",
    /// Two unit tests with one name.
    DuplicateUnitTest = "duplicate-unit-test",
    /// Two installed packages (or a package and the project) with one name.
    DuplicatePackage = "duplicate-package",
    /// A template that does not parse.
    JinjaSyntax = "jinja-syntax",
    /// A template that fails while rendering.
    JinjaRender = "jinja-render",
    /// A Jinja name that is not defined, or a `var()` with no value and no default.
    UndefinedVariable = "undefined-variable",
    /// A Jinja call to a function (macro) that does not exist.
    UnknownFunction = "unknown-function",
    /// A Jinja filter that does not exist.
    UnknownFilter = "unknown-filter",
    /// A Jinja `include` or `import` of a template that does not exist.
    TemplateNotFound = "template-not-found",
    /// A `{% docs %}` block without a name or an end.
    DocsBlock = "docs-block",
    /// A `{% snapshot %}` block without a name or an end.
    SnapshotBlock = "snapshot-block",
    /// Compiled SQL that does not parse.
    SqlSyntax = "sql-syntax",
    /// A column no relation in scope has.
    UnknownColumn = "unknown-column",
    /// An unqualified column more than one joined relation has.
    AmbiguousColumn = "ambiguous-column",
    /// A macro asked for the columns of a relation etlm does not know while compiling.
    UnknownColumns = "unknown-columns",
    /// A compile-time query (`run_query`, `statement`) failed on the target.
    QueryFailedCompiling = "query-failed-compiling",
    /// A YAML test naming a generic test that does not exist.
    UnknownTest = "unknown-test",
    /// A malformed unit test.
    InvalidUnitTest = "invalid-unit-test",
    /// A unit test fixture file that is not there.
    MissingFixture = "missing-fixture",
    /// `etlm lineage` was given a node or column that does not exist.
    UnknownLineageTarget = "unknown-lineage-target",
    /// A `--select` / `--exclude` that cannot be read.
    InvalidSelector = "invalid-selector",
    /// A `--select` selector that matches no node (a warning; an error with
    /// `--fail-on-empty-selection`).
    EmptySelection = "empty-selection",
    /// `--vars` that is not a mapping.
    InvalidVars = "invalid-vars",
    /// A command-line argument etlm cannot use.
    InvalidArgument = "invalid-argument",
    /// `etlm init` would overwrite files (nothing is written).
    ProjectExists = "project-exists",
    /// OpenLineage settings (project file or environment) etlm cannot use.
    InvalidOpenLineage = "invalid-openlineage",
    /// OpenLineage events that could not be delivered (a warning: the run's result stands).
    OpenLineageUndelivered = "openlineage-undelivered",
    /// `ETLM_FAILPOINT` that cannot be read.
    InvalidFailpoint = "invalid-failpoint",
    /// `profiles.yml` has no such profile.
    UnknownProfile = "unknown-profile",
    /// The profile has no such target.
    UnknownTarget = "unknown-target",
    /// A target of an unknown type.
    InvalidTarget = "invalid-target",
    /// A `profiles.yml` value's Jinja does not render.
    ProfileRender = "profile-render",
    /// A file that could not be read or written.
    Io = "io",
    /// The async runtime could not start.
    Runtime = "runtime",
    /// An entry of `packages.yml` etlm cannot read.
    InvalidPackage = "invalid-package",
    /// A `package-lock.yml` etlm cannot read.
    InvalidLock = "invalid-lock",
    /// A package that could not be fetched.
    PackageFetch = "package-fetch",
    /// Version ranges no release meets, or one package from two places.
    PackageConflict = "package-conflict",
    /// A seed whose CSV is malformed at a line.
    SeedMalformed = "seed-malformed",
    /// A seed that cannot be loaded as declared.
    SeedInvalid = "seed-invalid",
    /// Another run holds the target's run lock.
    WarehouseLocked = "warehouse-locked",
    /// The target could not be reached, or refused the connection.
    ConnectionFailed = "connection-failed",
    /// The target cannot be written by this user: a missing privilege, a read-only folder.
    PermissionDenied = "permission-denied",
    /// A rebuild would break relations built on it.
    DependentRelations = "dependent-relations",
    /// The engine could not do what the run asked.
    EngineError = "engine-error",
    /// A query of `etlm show` or `etlm runs` failed.
    QueryFailed = "query-failed",
    /// The run history could not be read.
    NoHistory = "no-history",
    /// `on-run-start` or `on-run-end` failed.
    HookFailed = "hook-failed",
    /// Ctrl-C stopped the run.
    Interrupted = "interrupted",
    /// `--state` is not a build's target folder.
    StateNotFound = "state-not-found",
    /// A `--state` file is not an etlm artifact, or names what etlm does not run.
    InvalidState = "invalid-state",
    /// A command that needs `--state` was run without it.
    MissingState = "missing-state",
    /// `--defer` to a build that has no warehouse to lend.
    DeferUnavailable = "defer-unavailable",
    /// `result:` selectors or `etlm retry` without a previous run.
    NoPreviousRun = "no-previous-run",
    /// `etlm retry` of a run it cannot repeat (a backfill).
    RetryUnsupported = "retry-unsupported",
    /// `etlm source freshness` with no source that has a rule.
    NothingToCheck = "nothing-to-check",
}

/// Compares with the code's text, as tests and callers spell it: `d.code == "io"`.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    /// Every code has its entry in the user docs, and no code is declared twice.
    #[test]
    fn every_code_is_documented_once() {
        let docs = include_str!("../../docs/diagnostics.md");
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "`{code}` is declared twice");
            assert!(docs.contains(&format!("`{code}`")), "docs/diagnostics.md has no entry for `{code}`");
        }
    }
}

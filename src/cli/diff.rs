//! `etlm diff --state DIR`: what changed against another build's manifest, as text,
//! JSON or Markdown; with `--fail-on breaking` a breaking change exits with code 1.
//! `-s`/`--exclude` narrow the report to the selected nodes (removed ones always show).

use std::io::IsTerminal;

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::project::Env;
use crate::report::Format;
use crate::report::diff::{Palette, human, json, markdown};
use crate::report::{Output, print_diagnostics};
use crate::state::diff::{Class, diff_project};

/// Flags of `etlm diff`.
#[derive(Debug, clap::Args, Clone)]
pub struct DiffArgs {
    /// Exit with code 1 when a change of this class is found.
    #[arg(long, value_enum, value_name = "CLASS")]
    pub fail_on: Option<FailOn>,
}

/// Which changes fail the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A removed or retyped column read downstream, or a removed or renamed model.
    Breaking,
}

pub fn run(
    global: &GlobalArgs,
    args: &DiffArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    if global.state.is_none() {
        return Err(vec![
            Diagnostic::error(Code::MissingState, "`etlm diff` needs `--state DIR`, the target folder of another build")
                .with_help("build main or production first, e.g. `etlm compile --project-dir ../main`, then pass `--state ../main/target`"),
        ]);
    }
    let colour = std::io::stdout().is_terminal() && !env.contains_key("NO_COLOR");
    let other = super::load_state(global)?.expect("--state was given");
    let compiled = super::compile_with(global, env, sources, "diff")?;
    print_diagnostics(out, &compiled.warnings, sources);
    let mut diff = diff_project(&compiled, &other);
    diff.retain_selected(&super::selected(global, &compiled)?);
    let text = match global.format {
        Format::Json => json(&diff),
        Format::Markdown => markdown(&diff),
        Format::Human => human(&diff, Palette::new(colour)),
    };
    out.lines(&[text.trim_end().to_string()]);
    let fail = args.fail_on == Some(FailOn::Breaking) && diff.count(Class::Breaking) > 0;
    Ok(if fail { Outcome::Failure } else { Outcome::Success })
}

//! `alphanet gradcheck`: every op's and every model × loss's f64 gradient check as a table.

use crate::model::Arch;
use crate::ops::gradcheck::CheckResult;
use crate::ops::{batchnorm, dense, elementwise, gru, loss, lstm, pooling, ts_features};
use std::process::ExitCode;

/// The arguments of `alphanet gradcheck`.
#[derive(Debug, Clone, clap::Args)]
pub struct GradcheckCommand {
    /// Only this architecture's whole-model checks (ops are always checked).
    #[arg(long, value_enum)]
    pub model: Option<Arch>,
}

impl GradcheckCommand {
    /// Prints the table; fails when any check fails.
    pub fn run(self) -> ExitCode {
        let rows = all_checks(self.model);
        print!("{}", render(&rows));
        if rows.iter().any(|r| !r.pass) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// All op checks, then the whole-model checks (optionally of one architecture only).
pub fn all_checks(model: Option<Arch>) -> Vec<CheckResult> {
    let mut rows = Vec::new();
    for f in [
        ts_features::checks,
        pooling::checks,
        batchnorm::checks,
        dense::checks,
        elementwise::checks,
        lstm::checks,
        gru::checks,
        loss::checks,
    ] {
        rows.extend(f());
    }
    let wanted = model.map(|a| format!("model {a:?} "));
    rows.extend(
        crate::model::checks::checks()
            .into_iter()
            .filter(|r| wanted.as_ref().is_none_or(|w| r.name.starts_with(w))),
    );
    rows
}

/// The table as text; the caller exits non-zero when any row fails.
pub fn render(rows: &[CheckResult]) -> String {
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(2).max(2);
    let sw = rows.iter().map(|r| r.shape.len()).max().unwrap_or(5).max(5);
    let mut s = format!(
        "{:<w$}  {:<sw$}  {:>12}  {:>12}  pass\n",
        "op", "shape", "max abs err", "max rel err"
    );
    for r in rows {
        s += &format!(
            "{:<w$}  {:<sw$}  {:>12.3e}  {:>12.3e}  {}\n",
            r.name,
            r.shape,
            r.max_abs,
            r.max_rel,
            if r.pass { "ok" } else { "FAIL" }
        );
    }
    let worst = rows.iter().map(|r| r.max_rel).fold(0.0, f64::max);
    let failed = rows.iter().filter(|r| !r.pass).count();
    s += &format!(
        "{} checks, {failed} failed, worst relative error {worst:.3e}\n",
        rows.len()
    );
    s
}

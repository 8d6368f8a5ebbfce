//! Reading a factor to evaluate and aligning it to a panel as `[T, N]` (NaN where absent).
//!
//! A factor is given on the command line as `NAME=PATH[@FIRST_DATE]` (or just `PATH`, named
//! after its file stem). Accepted files:
//!
//! - **Long CSV** (`.csv`): a header naming the columns `date`, `code`, `factor` (any order,
//!   other columns ignored), then one row per value, e.g. the `factor.csv` that `alphanet
//!   predict` and `alphanet demo` write. Unambiguous: every value carries its date and code.
//!   Dates and codes must exist in the panel; empty or non-finite values are absent.
//! - **`.npy`** f32 `[T', N]`, columns in the panel's code order. With T' = the panel's T it
//!   covers the whole panel; otherwise `@FIRST_DATE` gives the panel date of row 0 (the
//!   `factor.npy` of `alphanet predict --from D` starts at D).

use std::path::{Path, PathBuf};

use crate::data::npy::NpyArray;
use crate::data::panel::Panel;
use crate::{Error, Result};

/// A parsed `NAME=PATH[@FIRST_DATE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorSpec {
    pub name: String,
    pub path: PathBuf,
    pub first_date: Option<String>,
}

impl FactorSpec {
    pub fn parse(s: &str) -> Result<FactorSpec> {
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) => (Some(n.trim().to_string()), r),
            None => (None, s),
        };
        let (path, first_date) = match rest.rsplit_once('@') {
            Some((p, d)) => (PathBuf::from(p), Some(d.to_string())),
            None => (PathBuf::from(rest), None),
        };
        let name = name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        if name.is_empty() || path.as_os_str().is_empty() {
            return Err(Error::Config(format!(
                "--factor {s:?}: expected NAME=PATH[@FIRST_DATE], e.g. v2=out/factor.csv or \
                 v2=out/factor.npy@2018-06-01"
            )));
        }
        Ok(FactorSpec {
            name,
            path,
            first_date,
        })
    }

    /// The factor as `[T, N]` over `panel`.
    pub fn load(&self, panel: &Panel) -> Result<Vec<f32>> {
        match self.path.extension().and_then(|e| e.to_str()) {
            Some("csv") => {
                if self.first_date.is_some() {
                    return Err(Error::Config(format!(
                        "--factor {}: @FIRST_DATE is for .npy files; a CSV carries its dates",
                        self.name
                    )));
                }
                read_long_csv(&self.path, panel)
            }
            Some("npy") => read_npy(&self.path, self.first_date.as_deref(), panel),
            _ => Err(Error::Config(format!(
                "--factor {}: {} is neither .csv (date,code,factor) nor .npy ([T, N])",
                self.name,
                self.path.display()
            ))),
        }
    }
}

fn read_npy(path: &Path, first_date: Option<&str>, panel: &Panel) -> Result<Vec<f32>> {
    let (t_all, n) = (panel.n_dates(), panel.n_stocks());
    let arr = NpyArray::<f32>::open(path)?;
    let bad = |msg: String| Error::Npy {
        path: path.to_path_buf(),
        msg,
    };
    let shape = arr.shape().to_vec();
    if shape.len() != 2 || shape[1] != n {
        return Err(bad(format!(
            "shape {shape:?}: a factor is [dates, {n}] with columns in the panel's code order"
        )));
    }
    let start = match first_date {
        Some(d) => panel.date_index(d)?,
        None if shape[0] == t_all => 0,
        None => {
            return Err(bad(format!(
                "{} rows but the panel has {t_all} dates: say which date row 0 is \
                 (NAME=PATH@YYYY-MM-DD) or give the long CSV (date,code,factor)",
                shape[0]
            )))
        }
    };
    if start + shape[0] > t_all {
        return Err(bad(format!(
            "{} rows from {} run past the panel's last date {}",
            shape[0],
            panel.meta().dates[start],
            panel.meta().dates[t_all - 1]
        )));
    }
    let mut out = vec![f32::NAN; t_all * n];
    out[start * n..(start + shape[0]) * n].copy_from_slice(arr.as_slice());
    Ok(out)
}

fn read_long_csv(path: &Path, panel: &Panel) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |line: usize, msg: String| Error::Data(format!("{}:{line}: {msg}", path.display()));
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let col = |name: &str| {
        header.iter().position(|&h| h == name).ok_or_else(|| {
            bad(
                1,
                format!("header {header:?} lacks a {name:?} column (expected date,code,factor)"),
            )
        })
    };
    let (cd, cc, cf) = (col("date")?, col("code")?, col("factor")?);
    let meta = panel.meta();
    let codes: std::collections::HashMap<&str, usize> = meta
        .codes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let n = panel.n_stocks();
    let mut out = vec![f32::NAN; panel.n_dates() * n];
    // The line each (date, code) was first given on (0: not yet), to refuse duplicates.
    let mut line_of = vec![0u32; panel.n_dates() * n];
    let mut duplicates: Vec<(usize, usize, usize)> = Vec::new();
    let mut n_duplicates = 0usize;
    let mut cached: Option<(String, usize)> = None;
    let mut absent = 0usize;
    for (k, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize| {
            fields.get(c).copied().ok_or_else(|| {
                bad(
                    k + 1,
                    format!("{} fields, expected {}", fields.len(), header.len()),
                )
            })
        };
        let (d, c, v) = (get(cd)?, get(cc)?, get(cf)?);
        let t = match &cached {
            Some((date, t)) if date == d => *t,
            _ => {
                let t = panel.date_index(d).map_err(|e| bad(k + 1, e.to_string()))?;
                cached = Some((d.to_string(), t));
                t
            }
        };
        // The importers write codes upper-case (SH600000); a lower-case file means the same.
        let i = *(codes.get(c))
            .or_else(|| codes.get(c.to_ascii_uppercase().as_str()))
            .ok_or_else(|| bad(k + 1, format!("code {c:?} is not in the panel")))?;
        let first = &mut line_of[t * n + i];
        if *first != 0 {
            n_duplicates += 1;
            if duplicates.len() < 3 {
                duplicates.push((t * n + i, *first as usize, k + 1));
            }
            continue;
        }
        *first = u32::try_from(k + 1).unwrap_or(u32::MAX);
        let value = if v.is_empty() {
            f32::NAN
        } else {
            v.parse::<f32>()
                .map_err(|_| bad(k + 1, format!("factor value {v:?} is not a number")))?
        };
        if value.is_finite() {
            out[t * n + i] = value;
        } else {
            absent += 1;
        }
    }
    if absent > 0 {
        eprintln!(
            "warning: {}: {absent} row(s) have an empty, NaN or infinite factor value and are \
             treated as absent",
            path.display()
        );
    }
    if n_duplicates > 0 {
        let shown: Vec<String> = duplicates
            .iter()
            .map(|&(cell, a, b)| {
                format!(
                    "{} {} on lines {a} and {b}",
                    meta.dates[cell / n],
                    meta.codes[cell % n]
                )
            })
            .collect();
        return Err(Error::Data(format!(
            "{}: {n_duplicates} duplicate (date, code) row(s), e.g. {}: a factor has one value per \
             date and code; remove the duplicates (which value is meant cannot be guessed)",
            path.display(),
            shown.join("; ")
        )));
    }
    Ok(out)
}

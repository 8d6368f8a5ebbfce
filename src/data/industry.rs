//! Industry codes from a classification snapshot CSV (baostock's `query_stock_industry` layout:
//! `updateDate,code,code_name,industry,industryClassification`). A snapshot is not
//! point-in-time: every date of the panel gets the stock's snapshot industry.

use std::collections::BTreeMap;
use std::path::Path;

use super::builder::normalize_code;
use crate::error::{Error, Result};

/// The industries of `codes` from an optional snapshot file: the industry names, each code's
/// index, the line `meta.json` records about it, and a warning line when the file gives no
/// industry for some of the codes. No file leaves every industry unknown (−1); a file that gives
/// none of the codes an industry is refused (it is the wrong file, or its codes do not match).
#[allow(clippy::type_complexity)]
pub fn industries_for(
    path: Option<&Path>,
    codes: &[String],
) -> Result<(Vec<String>, Vec<i16>, String, Option<String>)> {
    let Some(p) = path else {
        return Ok((
            Vec::new(),
            vec![-1; codes.len()],
            "industry unknown (-1): no --industry file given".into(),
            None,
        ));
    };
    let (names, index) = read_industries(p, codes)?;
    let unknown: Vec<&str> = codes
        .iter()
        .zip(&index)
        .filter(|(_, &k)| k < 0)
        .map(|(c, _)| c.as_str())
        .collect();
    if unknown.len() == codes.len() {
        return Err(Error::Data(format!(
            "--industry {}: none of the {} codes of the import (e.g. {}) has an industry in it; \
             check that it is the right file (its `code` column holds codes like sh.600000 or \
             600000.SH) or leave --industry out",
            p.display(),
            codes.len(),
            codes.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let warning = (!unknown.is_empty()).then(|| {
        format!(
            "--industry {} gives no industry for {} of {} stocks (e.g. {}): they get industry -1 and \
             are left out of industry neutralization and of enhance",
            p.display(),
            unknown.len(),
            codes.len(),
            unknown.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        )
    });
    Ok((
        names,
        index,
        format!("industry = snapshot {} (not point-in-time)", p.display()),
        warning,
    ))
}

/// The industries of `codes` from the CSV at `path`: the sorted names of the industries that
/// occur among `codes`, and each code's index into them (−1 where the snapshot has no row or an
/// empty industry).
pub fn read_industries(path: &Path, codes: &[String]) -> Result<(Vec<String>, Vec<i16>)> {
    let mut rd = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let headers = rd.headers().map_err(|e| csv_error(path, e))?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::Data(format!(
                "{}: header has no `{name}` column (expected updateDate,code,code_name,industry,...)",
                path.display()
            ))
        })
    };
    let (code_col, ind_col) = (col("code")?, col("industry")?);
    let mut by_code: BTreeMap<String, String> = BTreeMap::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let industry = rec.get(ind_col).unwrap_or("").trim();
        if !industry.is_empty() {
            by_code.insert(
                normalize_code(rec.get(code_col).unwrap_or("")),
                industry.to_string(),
            );
        }
    }
    let mut names: Vec<String> = codes
        .iter()
        .filter_map(|c| by_code.get(c).cloned())
        .collect();
    names.sort();
    names.dedup();
    if names.len() > i16::MAX as usize {
        return Err(Error::Data(format!(
            "{}: {} industries do not fit the panel's i16 index",
            path.display(),
            names.len()
        )));
    }
    let index = codes
        .iter()
        .map(|c| {
            by_code
                .get(c)
                .and_then(|ind| names.binary_search(ind).ok())
                .map_or(-1, |k| k as i16)
        })
        .collect();
    Ok((names, index))
}

/// A CSV error as `file:line: what`, the line taken from the error's position when it has one.
pub fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    let what = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("malformed row: {len} fields where the header has {expected_len}"),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    };
    match line {
        Some(l) => Error::Data(format!("{}:{l}: {what}", path.display())),
        None => Error::Data(format!("{}: {what}", path.display())),
    }
}

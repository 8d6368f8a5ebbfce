//! Retraining windows (docs/protocol.md): a pure function of the panel's calendar and the flags, so every
//! shard of a run computes the same windows.
//!
//! Window k predicts the dates `[p_k, p_{k+1})` (the last one runs to the panel's end), where
//! `p_k` is the first trading date on or after `start + k·period`. Its in-sample part is the
//! `insample_days` trading dates before `insample_end(p_k)`: the last in-sample label window
//! `t+1..=t+HORIZON` ends the day before `p_k`. The in-sample part is split train:validation with
//! the purge gap of [`split_train_val`].

use crate::data::calendar::parse_date;
use crate::data::samples::PICTURE_DAYS;
use crate::train::split::{insample_end, split_train_val};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// `--retrain-every`: calendar months (`6M`, `1Y`) or trading days (`120d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    Months(usize),
    TradingDays(usize),
}

impl FromStr for Period {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "--retrain-every {s:?}: expected a positive count with a unit, e.g. 6M (months), 1Y (years) or 120d (trading days)"
            ))
        };
        let s = s.trim();
        let unit = s.chars().last().ok_or_else(bad)?;
        let n: usize = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        match unit {
            'M' | 'm' => Ok(Period::Months(n)),
            'Y' | 'y' => Ok(Period::Months(n.checked_mul(12).ok_or_else(bad)?)),
            'D' | 'd' => Ok(Period::TradingDays(n)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Months(n) => write!(f, "{n}M"),
            Period::TradingDays(n) => write!(f, "{n}d"),
        }
    }
}

/// What the windows are computed from (besides the calendar).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// First prediction date (`YYYY-MM-DD`; the first trading date on or after it is used).
    pub start: String,
    /// Last prediction date (`YYYY-MM-DD`; the last trading date on or before it is used); `None`
    /// runs to the panel's end. Runs started before the option existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    pub every: Period,
    /// Trading dates of in-sample history per window (before sampling every `sample_every`).
    pub insample_days: usize,
    /// Chronological train:validation ratio.
    pub split: (usize, usize),
}

/// One retraining window, as panel date indices (half-open ranges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub index: usize,
    /// In-sample sample dates: `train` then, after the purge gap, `val`.
    pub insample: Range<usize>,
    pub train: Range<usize>,
    pub val: Range<usize>,
    /// Out-of-sample dates this window's models predict.
    pub predict: Range<usize>,
    /// In-sample dates actually used, when the panel's history was shorter than asked.
    pub shrunk_to: Option<usize>,
}

/// The windows of `dates` (the panel's sorted trading calendar). Fails when the start is not a
/// date, lies after the panel, or leaves the first window too little history to split.
pub fn plan_windows(dates: &[String], cfg: &ScheduleConfig) -> Result<Vec<Window>> {
    if parse_date(&cfg.start).is_none() {
        return Err(Error::Config(format!(
            "--start {}: not a YYYY-MM-DD date",
            cfg.start
        )));
    }
    if cfg.insample_days == 0 {
        return Err(Error::Config("--insample-days must be at least 1".into()));
    }
    match cfg.every {
        Period::Months(m) if !(1..=MAX_MONTHS).contains(&m) => {
            return Err(Error::Config(format!(
                "--retrain-every {m}M: must be 1 to {MAX_MONTHS} months ({} years)",
                MAX_MONTHS / 12
            )))
        }
        Period::TradingDays(0) => {
            return Err(Error::Config(
                "--retrain-every 0d: must be at least 1 trading day".into(),
            ))
        }
        _ => {}
    }
    // One past the last prediction date.
    let stop = match &cfg.end {
        None => dates.len(),
        Some(end) if parse_date(end).is_none() => {
            return Err(Error::Config(format!("--end {end}: not a YYYY-MM-DD date")))
        }
        Some(end) if end.as_str() < cfg.start.as_str() => {
            return Err(Error::Config(format!(
                "--end {end} is before --start {}",
                cfg.start
            )))
        }
        Some(end) => dates.partition_point(|d| d.as_str() <= end.as_str()),
    };
    let first = first_on_or_after(dates, &cfg.start);
    if first >= stop {
        return Err(Error::Data(format!(
            "--start {} is after the panel's last date {}{}",
            cfg.start,
            dates[..stop].last().map_or("(none)", String::as_str),
            if stop < dates.len() {
                " on or before --end"
            } else {
                ""
            }
        )));
    }
    let mut starts = vec![first];
    for k in 1.. {
        let p = match cfg.every {
            Period::Months(m) => match add_months(&cfg.start, k * m) {
                Some(anchor) => first_on_or_after(dates, &anchor),
                None => break, // past year 9999: past any panel
            },
            Period::TradingDays(d) => first.saturating_add(k.saturating_mul(d)),
        };
        if p >= stop {
            break;
        }
        // A calendar gap longer than the period maps two anchors onto one trading date.
        if p > *starts.last().expect("non-empty") {
            starts.push(p);
        }
    }
    let ends = starts.iter().skip(1).copied().chain([stop]);
    starts
        .iter()
        .zip(ends)
        .enumerate()
        .map(|(index, (&p, end))| window(dates, cfg, index, p..end))
        .collect()
}

fn window(
    dates: &[String],
    cfg: &ScheduleConfig,
    index: usize,
    predict: Range<usize>,
) -> Result<Window> {
    // The first date with a full 30-day picture.
    let earliest = PICTURE_DAYS - 1;
    let end = insample_end(predict.start);
    let available = end.saturating_sub(earliest);
    let start = end.saturating_sub(cfg.insample_days).max(earliest);
    let (train, val) =
        split_train_val(start, end.max(start), cfg.split.0, cfg.split.1).map_err(|e| {
            // More history helps only where the panel has it; otherwise the window itself is short.
            let fix = if available > cfg.insample_days {
                format!(
                "choose a larger --insample-days (the panel has {available} dates of history here)"
            )
            } else {
                "choose a later --start".to_string()
            };
            Error::Data(format!(
                "window {index} (predicting from {}) has {} in-sample dates: {e}; {fix}",
                dates[predict.start],
                available.min(cfg.insample_days)
            ))
        })?;
    Ok(Window {
        index,
        insample: start..end,
        train,
        val,
        shrunk_to: (available < cfg.insample_days).then_some(available),
        predict,
    })
}

/// Index of the first date `>= date` (`dates.len()` when none is).
fn first_on_or_after(dates: &[String], date: &str) -> usize {
    dates.partition_point(|d| d.as_str() < date)
}

/// The longest `--retrain-every` in months (100 years).
pub const MAX_MONTHS: usize = 1200;

/// `date + months` in the calendar, the day clamped to the target month's length
/// (2011-01-31 + 1M = 2011-02-28); `None` past the year 9999. `date` must be a valid
/// `YYYY-MM-DD`.
fn add_months(date: &str, months: usize) -> Option<String> {
    let num = |r: Range<usize>| date[r].parse::<usize>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let total = (y * 12 + (m - 1)).checked_add(months)?;
    let (y, m) = (total / 12, total % 12 + 1);
    if y > 9999 {
        return None;
    }
    (1..=d)
        .rev()
        .map(|day| format!("{y:04}-{m:02}-{day:02}"))
        .find(|s| parse_date(s).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_clamp_to_month_end() {
        let add = |d: &str, m: usize| add_months(d, m).unwrap();
        assert_eq!(add("2011-01-31", 1), "2011-02-28");
        assert_eq!(add("2011-01-31", 6), "2011-07-31");
        assert_eq!(add("2011-08-31", 6), "2012-02-29");
        assert_eq!(add("2011-12-15", 1), "2012-01-15");
        assert_eq!(add("2011-07-31", 0), "2011-07-31");
        assert_eq!(add_months("2011-07-31", 12 * 8000), None);
    }

    #[test]
    fn end_caps_the_last_window() {
        let dates: Vec<String> = (0..400)
            .map(|k| {
                let (m, d) = (1 + k / 28, 1 + k % 28);
                format!("{:04}-{:02}-{d:02}", 2011 + (m - 1) / 12, (m - 1) % 12 + 1)
            })
            .collect();
        let cfg = |end: Option<&str>| ScheduleConfig {
            start: "2011-06-01".into(),
            end: end.map(String::from),
            every: Period::Months(3),
            insample_days: 100,
            split: (4, 1),
        };
        let all = plan_windows(&dates, &cfg(None)).unwrap();
        assert_eq!(all.last().unwrap().predict.end, dates.len());
        let capped = plan_windows(&dates, &cfg(Some("2011-12-15"))).unwrap();
        let last = capped.last().unwrap();
        assert_eq!(dates[last.predict.end - 1], "2011-12-15");
        assert_eq!(dates[last.predict.start], "2011-12-01");
        assert_eq!(capped.len(), 3);
        assert!(plan_windows(&dates, &cfg(Some("2011-05-01"))).is_err());
        assert!(plan_windows(&dates, &cfg(Some("2011-13-01"))).is_err());
    }

    #[test]
    fn period_parses() {
        assert_eq!("6M".parse::<Period>().unwrap(), Period::Months(6));
        assert_eq!("1Y".parse::<Period>().unwrap(), Period::Months(12));
        assert_eq!("120d".parse::<Period>().unwrap(), Period::TradingDays(120));
        for bad in ["", "M", "0M", "6", "6W", "-1M", "6 M"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }
}

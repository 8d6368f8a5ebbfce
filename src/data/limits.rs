//! A-share daily price limits (docs/data.md): the limit ratio by board, ST status and date, the
//! exchange's limit prices in cents, and the `tradable.npy` bits for an open at a limit.

use super::panel::flags;

/// The daily price limit as a fraction (docs/data.md): ±20% on STAR (688xxx) and on ChiNext
/// (300xxx/301xxx) from 2020-08-24 (ST included there), else ±5% for ST, else ±10%.
/// `code` may carry any exchange prefix/suffix (`SZ300001`, `sz.300001`, `300001.SZ`).
pub fn limit_ratio(code: &str, date: &str, st: bool) -> f64 {
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let star = digits.starts_with("688");
    let chinext = digits.starts_with("300") || digits.starts_with("301");
    if star || (chinext && date >= "2020-08-24") {
        0.20
    } else if st {
        0.05
    } else {
        0.10
    }
}

/// An exchange price: rounded half-up to 0.01 CNY.
pub fn round_price(p: f64) -> f64 {
    (p * 100.0 + 0.5).floor() / 100.0
}

/// The (down, up) limit prices after a raw previous close. Computed in integer cents so that a
/// close stored in f32 (11.15 → 11.1499996) still gives the exchange's half-up result (12.27).
pub fn limit_prices(prev_raw_close: f64, ratio: f64) -> (f64, f64) {
    let cents = (prev_raw_close * 100.0).round() as i64;
    let pct = (ratio * 100.0).round() as i64;
    let at = |p: i64| ((cents * p + 50).div_euclid(100)) as f64 / 100.0;
    (at(100 - pct), at(100 + pct))
}

/// `LIMIT_UP_OPEN` / `LIMIT_DOWN_OPEN` bits for a raw open against the limit prices
/// (half a tick of slack for prices stored in f32).
pub fn open_limit_flags(prev_raw_close: f64, raw_open: f64, ratio: f64) -> u8 {
    let (down, up) = limit_prices(prev_raw_close, ratio);
    let mut f = 0;
    if raw_open >= up - 0.005 {
        f |= flags::LIMIT_UP_OPEN;
    }
    if raw_open <= down + 0.005 {
        f |= flags::LIMIT_DOWN_OPEN;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_board_rules() {
        assert_eq!(limit_ratio("SH600000", "2019-01-02", false), 0.10);
        assert_eq!(limit_ratio("SH600000", "2019-01-02", true), 0.05);
        assert_eq!(limit_ratio("SZ300001", "2019-01-02", false), 0.10);
        assert_eq!(limit_ratio("sz.300001", "2020-08-24", true), 0.20);
        assert_eq!(limit_ratio("688001.SH", "2019-08-01", false), 0.20);
        assert_eq!(limit_prices(10.0, 0.1), (9.0, 11.0));
        assert_eq!(limit_prices(3.33, 0.1), (3.0, 3.66));
        assert_eq!(open_limit_flags(3.33, 3.66, 0.1), flags::LIMIT_UP_OPEN);
        assert_eq!(open_limit_flags(3.33, 3.65, 0.1), 0);
        assert_eq!(open_limit_flags(3.33, 3.0, 0.1), flags::LIMIT_DOWN_OPEN);
        assert_eq!(limit_prices(11.15f32 as f64, 0.1), (10.04, 12.27));
        assert_eq!(limit_prices(7.77, 0.05), (7.38, 8.16));
    }
}

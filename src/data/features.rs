//! The 15 raw features of docs/features.md: their names in channel order and one stock-day's
//! values from its prices, volume and turnover.

/// The 15 raw features of docs/features.md, in channel order.
pub const FEATURE_NAMES: [&str; 15] = [
    "return1",
    "open",
    "close",
    "high",
    "low",
    "volume",
    "vwap",
    "turn",
    "free_turn",
    "close/free_turn",
    "open/turn",
    "volume/low",
    "vwap/high",
    "low/high",
    "vwap/close",
];

/// The 15 features of docs/features.md for one stock-day (`return1` NaN when there is no prior close).
#[allow(clippy::too_many_arguments)]
pub fn feature_row(
    ret1: f64,
    open: f64,
    close: f64,
    high: f64,
    low: f64,
    volume: f64,
    vwap: f64,
    turn: f64,
    free_turn: f64,
) -> [f32; 15] {
    [
        ret1,
        open,
        close,
        high,
        low,
        volume,
        vwap,
        turn,
        free_turn,
        close / free_turn,
        open / turn,
        volume / low,
        vwap / high,
        low / high,
        vwap / close,
    ]
    .map(|x| x as f32)
}

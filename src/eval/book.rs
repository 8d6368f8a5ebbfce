//! A portfolio marked and traded at VWAP, and the loop that runs it through a rebalance
//! schedule. Shared by the layered backtest and the index enhancement.
//!
//! **Timing (no look-ahead).** A portfolio decided on signal date t (from data up to t) is
//! traded at t+1's VWAP. Between trades the book is buy-and-hold: weights drift with prices.
//! The return of day d is the book's value at `vwap_d` over its value at `vwap_{d−1}`, so a
//! position entered at t+1 and left at t+11 earns exactly the label `vwap_{t+11}/vwap_{t+1} − 1`
//! of docs/data.md. A stock without a finite VWAP on a day (e.g. suspended) keeps its last price.
//!
//! **Costs.** A trade from drifted weights w to target w' turns over `τ = Σ |w' − w|` (both
//! sides); each side pays `cost`, so the book loses `cost · τ` of its value on the trade day:
//! `1 + r_d = (1 + r_hold,d)(1 − cost · τ)`. Building from cash is τ = 1.

use crate::data::panel::PanelView;
use crate::Result;

/// Stock weights (dense over the panel's N stocks, summing to 1 once invested) and the VWAP
/// each position was last marked at.
#[derive(Debug, Clone)]
pub struct Book {
    pub weights: Vec<f64>,
    marked: Vec<f64>,
}

impl Book {
    pub fn new(n_stocks: usize) -> Book {
        Book {
            weights: vec![0.0; n_stocks],
            marked: vec![f64::NAN; n_stocks],
        }
    }

    /// Marks the book from the previous mark to `day`'s VWAP: returns the day's return and
    /// lets the weights drift.
    pub fn mark(&mut self, p: PanelView, day: usize) -> f64 {
        let mut r = 0.0;
        for i in 0..self.weights.len() {
            if self.weights[i] == 0.0 {
                continue;
            }
            let v = p.vwap(day, i) as f64;
            if v.is_finite() && v > 0.0 && self.marked[i] > 0.0 {
                let ri = v / self.marked[i] - 1.0;
                r += self.weights[i] * ri;
                self.weights[i] *= 1.0 + ri;
                self.marked[i] = v;
            }
        }
        let total = 1.0 + r;
        if total > 0.0 {
            self.weights.iter_mut().for_each(|w| *w /= total);
        }
        r
    }

    /// Trades to `target` at `day`'s VWAP (the book must be marked to `day` first); returns the
    /// two-way turnover `Σ |target − w|`. A position without a VWAP that day (it cannot trade;
    /// the caller keeps its weight) keeps its last mark.
    pub fn trade(&mut self, p: PanelView, day: usize, target: &[f64]) -> f64 {
        assert_eq!(target.len(), self.weights.len(), "trade: target size");
        let mut turnover = 0.0;
        for (i, (&t, w)) in target.iter().zip(self.weights.iter_mut()).enumerate() {
            turnover += (t - *w).abs();
            let v = p.vwap(day, i) as f64;
            if t != 0.0 && v.is_finite() && v > 0.0 {
                self.marked[i] = v;
            }
            *w = t;
        }
        turnover
    }
}

/// Daily returns of a book run through a schedule, and its turnover at each trade.
#[derive(Debug, Clone)]
pub struct BookRun {
    /// Returns of days `first_trade..=end`; the first is the entry cost alone.
    pub returns: Vec<f64>,
    pub turnover: Vec<f64>,
}

/// Runs a book from cash: on each `trade_days[k]` (increasing) it trades to `target(k, &book)`
/// (the book holds the weights drifted up to that day's VWAP), paying `cost` per side; in
/// between it is marked daily, up to and including `end`.
pub fn run_book(
    p: PanelView,
    trade_days: &[usize],
    end: usize,
    cost: f64,
    mut target: impl FnMut(usize, &Book) -> Result<Vec<f64>>,
) -> Result<BookRun> {
    let mut book = Book::new(p.n_stocks);
    let mut run = BookRun {
        returns: Vec::new(),
        turnover: Vec::new(),
    };
    let Some(&first) = trade_days.first() else {
        return Ok(run);
    };
    let mut next = 0;
    for day in first..=end {
        let mut r = if day > first { book.mark(p, day) } else { 0.0 };
        if trade_days.get(next) == Some(&day) {
            let w = target(next, &book)?;
            let tau = book.trade(p, day, &w);
            r = (1.0 + r) * (1.0 - cost * tau) - 1.0;
            run.turnover.push(tau);
            next += 1;
        }
        run.returns.push(r);
    }
    Ok(run)
}

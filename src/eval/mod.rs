//! Evaluation of a factor against realised returns (docs/evaluation.md): neutralized RankIC, the layered
//! backtest, index enhancement, their statistics and charts.

pub mod baselines;
pub mod book;
pub mod chart;
pub mod enhance;
pub mod factor;
pub mod ic;
pub mod layered;
pub mod neutralize;
pub mod optimize;
pub mod stats;

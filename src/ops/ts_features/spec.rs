//! The feature layer's shape: [`FeatureSpec`] (features, days, window, stride, ops and pairs),
//! the channel order it implies, and the pair lists corr and cov run over ([`all_pairs`] for
//! the full model, [`pairs_among`] for v2.1's sampled features).

use super::op::{Op, OpSet};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Shape and content of the feature layer: which ops, over which windows, on which pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub n_features: usize,
    pub days: usize,
    pub window: usize,
    pub stride: usize,
    pub ops: OpSet,
    /// Feature pairs `(i, j)`, `i < j`, of corr and cov, in channel order.
    pub pairs: Vec<(u16, u16)>,
}

impl FeatureSpec {
    /// Number of output steps `S = (days − window)/stride + 1`.
    pub fn steps(&self) -> usize {
        (self.days - self.window) / self.stride + 1
    }

    /// Number of output channels `C`.
    pub fn channels(&self) -> usize {
        self.ops.iter().map(|op| self.group_width(op)).sum()
    }

    /// Channel names in channel order, e.g. `corr(0,3)`, `stddev(4)`.
    pub fn channel_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.channels());
        for op in self.ops.iter() {
            if op.is_pair() {
                names.extend(
                    self.pairs
                        .iter()
                        .map(|(i, j)| format!("{}({i},{j})", op.name())),
                );
            } else {
                names.extend((0..self.n_features).map(|f| format!("{}({f})", op.name())));
            }
        }
        names
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(format!("feature spec: {msg}")));
        if self.n_features == 0 {
            return bad("n_features must be at least 1".into());
        }
        if self.window < 2 {
            return bad(format!(
                "window {} must be at least 2 (a statistic needs two days)",
                self.window
            ));
        }
        if self.window > self.days {
            return bad(format!(
                "window {} is longer than the {} days of a picture",
                self.window, self.days
            ));
        }
        if self.stride == 0 {
            return bad("stride must be at least 1".into());
        }
        let mut seen = std::collections::HashSet::new();
        for &(i, j) in &self.pairs {
            if !(i < j && (j as usize) < self.n_features) {
                return bad(format!(
                    "pair ({i},{j}) must satisfy i < j < n_features = {}",
                    self.n_features
                ));
            }
            if !seen.insert((i, j)) {
                return bad(format!("pair ({i},{j}) is listed twice"));
            }
        }
        if self.channels() == 0 {
            return bad(format!(
                "ops {} with {} pairs give no channels",
                self.ops,
                self.pairs.len()
            ));
        }
        Ok(())
    }

    fn group_width(&self, op: Op) -> usize {
        if op.is_pair() {
            self.pairs.len()
        } else {
            self.n_features
        }
    }

    /// First channel of each op's group (indexed by `Op as usize`), `None` for ops not in the set.
    pub(super) fn offsets(&self) -> [Option<usize>; 7] {
        let mut offsets = [None; 7];
        let mut at = 0;
        for op in self.ops.iter() {
            offsets[op as usize] = Some(at);
            at += self.group_width(op);
        }
        offsets
    }
}

/// Every pair `(i, j)`, `i < j < n`, lexicographic.
pub fn all_pairs(n: usize) -> Vec<(u16, u16)> {
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i as u16, j as u16)))
        .collect()
}

/// Every pair among `features` (v2.1's sampled features), sorted, `i < j`, lexicographic.
pub fn pairs_among(features: &[u16]) -> Vec<(u16, u16)> {
    let mut f = features.to_vec();
    f.sort_unstable();
    f.dedup();
    let mut pairs = Vec::with_capacity(f.len() * f.len().saturating_sub(1) / 2);
    for (a, &i) in f.iter().enumerate() {
        pairs.extend(f[a + 1..].iter().map(|&j| (i, j)));
    }
    pairs
}

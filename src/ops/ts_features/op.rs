//! The ops of the feature layer and sets of them: [`Op`] names one statistic, [`OpSet`] the
//! `--ops` choice. Kept apart from the layer's shape ([`super::spec`]) because a set of ops also
//! travels on its own: in the model config, the run record and the kernels' op mask.

use crate::error::{Error, Result};
use crate::ops::kernel_consts::{
    OP_CORR, OP_COV, OP_DECAYLINEAR, OP_MEAN, OP_RETURN, OP_STDDEV, OP_ZSCORE,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One feature-extraction op. Declaration order is the normative channel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Corr,
    Cov,
    Stddev,
    Zscore,
    Return,
    DecayLinear,
    Mean,
}

impl Op {
    /// Every op in channel order.
    pub const ALL: [Op; 7] = [
        Op::Corr,
        Op::Cov,
        Op::Stddev,
        Op::Zscore,
        Op::Return,
        Op::DecayLinear,
        Op::Mean,
    ];

    /// The name used by `--ops`, checkpoints and channel names.
    pub fn name(self) -> &'static str {
        match self {
            Op::Corr => "corr",
            Op::Cov => "cov",
            Op::Stddev => "stddev",
            Op::Zscore => "zscore",
            Op::Return => "return",
            Op::DecayLinear => "decaylinear",
            Op::Mean => "mean",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Pair ops produce one channel per feature pair, the others one per feature.
    pub fn is_pair(self) -> bool {
        matches!(self, Op::Corr | Op::Cov)
    }

    /// The op's bit in an [`OpSet`] and in the kernels' op mask: defined once, in
    /// ops/kernel_consts.rs, which the kernels read too.
    pub const fn bit(self) -> u32 {
        match self {
            Op::Corr => OP_CORR,
            Op::Cov => OP_COV,
            Op::Stddev => OP_STDDEV,
            Op::Zscore => OP_ZSCORE,
            Op::Return => OP_RETURN,
            Op::DecayLinear => OP_DECAYLINEAR,
            Op::Mean => OP_MEAN,
        }
    }
}

/// A set of [`Op`]s; serialized as the list of their names in channel order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct OpSet(u32);

impl OpSet {
    /// All seven ops (the default model).
    pub const ALL: OpSet = OpSet(
        Op::Corr.bit()
            | Op::Cov.bit()
            | Op::Stddev.bit()
            | Op::Zscore.bit()
            | Op::Return.bit()
            | Op::DecayLinear.bit()
            | Op::Mean.bit(),
    );
    /// The six ops of the public Python `alphanet` package: all but mean.
    pub const PEER6: OpSet = OpSet(OpSet::ALL.0 & !Op::Mean.bit());

    pub fn contains(self, op: Op) -> bool {
        self.mask() & op.bit() != 0
    }

    /// The kernels' `ops` mask: the OR of the ops' bits.
    pub fn mask(self) -> u32 {
        self.0
    }

    /// The ops of the set, in channel order.
    pub fn iter(self) -> impl Iterator<Item = Op> {
        Op::ALL.into_iter().filter(move |&op| self.contains(op))
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses the `--ops` value, a comma list such as `corr,cov,stddev,zscore,return,decaylinear`.
    pub fn parse(s: &str) -> Result<OpSet> {
        OpSet::from_names(s.split(','))
    }

    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<OpSet> {
        let accepted = || Op::ALL.map(Op::name).join(",");
        let mut set = OpSet(0);
        for name in names {
            let name = name.trim();
            let op = Op::from_name(name).ok_or_else(|| {
                Error::Config(format!(
                    "--ops: unknown op {name:?}; accepted (comma-separated): {}",
                    accepted()
                ))
            })?;
            set.0 |= op.bit();
        }
        if set.is_empty() {
            return Err(Error::Config(format!(
                "--ops: no op given; accepted (comma-separated): {}",
                accepted()
            )));
        }
        Ok(set)
    }
}

impl From<Op> for OpSet {
    fn from(op: Op) -> OpSet {
        OpSet(op.bit())
    }
}

impl fmt::Display for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iter().map(Op::name).collect::<Vec<_>>().join(","))
    }
}

impl fmt::Debug for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpSet({self})")
    }
}

impl TryFrom<Vec<String>> for OpSet {
    type Error = Error;
    fn try_from(names: Vec<String>) -> Result<OpSet> {
        OpSet::from_names(names.iter().map(String::as_str))
    }
}

impl From<OpSet> for Vec<String> {
    fn from(set: OpSet) -> Vec<String> {
        set.iter().map(|op| op.name().to_string()).collect()
    }
}

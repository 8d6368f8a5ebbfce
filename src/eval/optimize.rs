//! The index-enhancement optimizer (docs/evaluation.md): a linear program solved with Clarabel's interior
//! point method.
//!
//! ```text
//! maximize    αᵀw
//! subject to  Σ_{i ∈ g} w_i = target_g          for every group g (industries; they partition
//!                                                the stocks, so Σ w = Σ target_g: fully invested)
//!             Σ s_i w_i = size_target            (size exposure equal to the benchmark's)
//!             lower_i ≤ w_i ≤ upper_i            (long-only and the per-stock deviation bound)
//!             Σ |w_i − w0_i| ≤ τ                 (two-way turnover, when a current book w0 is given)
//! ```
//!
//! The turnover norm is linearised with `u_i ≥ |w_i − w0_i|`: `w_i − u_i ≤ w0_i`,
//! `−w_i − u_i ≤ −w0_i`, `Σ u_i ≤ τ`. Clarabel's form is `Ax + s = b, s ∈ K`: the equalities go
//! to the zero cone, the inequalities (`Ax ≤ b`) to the nonnegative cone.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};

/// One rebalance's problem over its tradable stocks.
#[derive(Debug, Clone)]
pub struct Instance {
    pub alpha: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Group (industry) of each stock, `0..group_target.len()`.
    pub group: Vec<usize>,
    pub group_target: Vec<f64>,
    pub size: Vec<f64>,
    pub size_target: f64,
    /// Current weights `w0` and the cap `τ` on `Σ |w − w0|`; `None` when building from cash.
    pub turnover: Option<(Vec<f64>, f64)>,
}

/// Largest violation of each constraint family by a candidate `w` (0 when satisfied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Residuals {
    pub group: f64,
    pub size: f64,
    pub bounds: f64,
    pub turnover: f64,
}

impl Residuals {
    pub fn max(&self) -> f64 {
        self.group
            .max(self.size)
            .max(self.bounds)
            .max(self.turnover)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SolveError {
    /// No weights satisfy the constraints; the message says which constraint, where it can.
    Infeasible(String),
    /// The solver stopped without a certified answer.
    Failed(String),
}

impl std::fmt::Display for SolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SolveError::Infeasible(m) => write!(f, "infeasible: {m}"),
            SolveError::Failed(m) => write!(f, "solver failed: {m}"),
        }
    }
}

/// Accepted constraint violation of a returned solution.
pub const TOLERANCE: f64 = 1e-6;

impl Instance {
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    pub fn residuals(&self, w: &[f64]) -> Residuals {
        let mut sums = vec![0.0; self.group_target.len()];
        for (&g, &x) in self.group.iter().zip(w) {
            sums[g] += x;
        }
        let group = sums
            .iter()
            .zip(&self.group_target)
            .map(|(s, t)| (s - t).abs())
            .fold(0.0, f64::max);
        let size =
            (self.size.iter().zip(w).map(|(s, x)| s * x).sum::<f64>() - self.size_target).abs();
        let bounds = (0..w.len())
            .map(|i| (self.lower[i] - w[i]).max(w[i] - self.upper[i]).max(0.0))
            .fold(0.0, f64::max);
        let turnover = self.turnover.as_ref().map_or(0.0, |(w0, cap)| {
            (w.iter().zip(w0).map(|(a, b)| (a - b).abs()).sum::<f64>() - cap).max(0.0)
        });
        Residuals {
            group,
            size,
            bounds,
            turnover,
        }
    }

    /// Cheap necessary conditions, checked first so that the common infeasibilities get a
    /// message naming the constraint rather than the solver's bare certificate.
    fn precheck(&self) -> Result<(), SolveError> {
        let n = self.len();
        assert!(
            self.lower.len() == n
                && self.upper.len() == n
                && self.group.len() == n
                && self.size.len() == n,
            "Instance: field lengths differ"
        );
        if let Some(i) = (0..n).find(|&i| self.lower[i] > self.upper[i] + TOLERANCE) {
            return Err(SolveError::Infeasible(format!(
                "stock {i} has lower bound {} above its upper bound {}",
                self.lower[i], self.upper[i]
            )));
        }
        for (g, &target) in self.group_target.iter().enumerate() {
            let (lo, hi) = (0..n)
                .filter(|&i| self.group[i] == g)
                .fold((0.0, 0.0), |(l, h), i| {
                    (l + self.lower[i], h + self.upper[i])
                });
            if target < lo - TOLERANCE || target > hi + TOLERANCE {
                return Err(SolveError::Infeasible(format!(
                    "group {g} must hold weight {target:.6}, but its stocks' bounds allow only {lo:.6}..{hi:.6} \
                     (loosen the per-stock deviation bound)"
                )));
            }
        }
        Ok(())
    }

    /// Maximizes `αᵀw` under the constraints; the returned weights satisfy them within
    /// [`TOLERANCE`] (checked, not assumed).
    pub fn solve(&self) -> Result<Vec<f64>, SolveError> {
        self.precheck()?;
        let n = self.len();
        let turn = self.turnover.as_ref();
        let n_var = if turn.is_some() { 2 * n } else { n };
        // Rows as (column, value) lists with right-hand sides; equalities first.
        let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
        let mut rhs: Vec<f64> = Vec::new();
        let mut group_rows = vec![Vec::new(); self.group_target.len()];
        for (i, &g) in self.group.iter().enumerate() {
            group_rows[g].push((i, 1.0));
        }
        // A group without stocks has target 0 (the precheck saw to that) and no row.
        for (r, &t) in group_rows.into_iter().zip(&self.group_target) {
            if !r.is_empty() {
                rows.push(r);
                rhs.push(t);
            }
        }
        rows.push(self.size.iter().copied().enumerate().collect());
        rhs.push(self.size_target);
        let n_eq = rows.len();
        for i in 0..n {
            rows.push(vec![(i, -1.0)]);
            rhs.push(-self.lower[i]);
            rows.push(vec![(i, 1.0)]);
            rhs.push(self.upper[i]);
        }
        if let Some((w0, cap)) = turn {
            for (i, &x0) in w0.iter().enumerate() {
                rows.push(vec![(i, 1.0), (n + i, -1.0)]);
                rhs.push(x0);
                rows.push(vec![(i, -1.0), (n + i, -1.0)]);
                rhs.push(-x0);
            }
            rows.push((n..2 * n).map(|j| (j, 1.0)).collect());
            rhs.push(*cap);
        }
        let (mut ri, mut ci, mut v) = (Vec::new(), Vec::new(), Vec::new());
        for (r, row) in rows.iter().enumerate() {
            for &(c, x) in row {
                ri.push(r);
                ci.push(c);
                v.push(x);
            }
        }
        let a = CscMatrix::new_from_triplets(rows.len(), n_var, ri, ci, v);
        let p = CscMatrix::<f64>::zeros((n_var, n_var));
        let mut q = vec![0.0; n_var];
        for (qi, a) in q.iter_mut().zip(&self.alpha) {
            *qi = -a;
        }
        let cones = [
            SupportedConeT::ZeroConeT(n_eq),
            SupportedConeT::NonnegativeConeT(rows.len() - n_eq),
        ];
        let settings = DefaultSettingsBuilder::default()
            .verbose(false)
            .max_iter(200)
            .build()
            .map_err(|e| SolveError::Failed(format!("settings: {e:?}")))?;
        let mut solver = DefaultSolver::new(&p, &q, &a, &rhs, &cones, settings)
            .map_err(|e| SolveError::Failed(format!("setup: {e:?}")))?;
        solver.solve();
        let status = solver.solution.status;
        match status {
            SolverStatus::Solved | SolverStatus::AlmostSolved => {}
            SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => {
                return Err(SolveError::Infeasible(if turn.is_some() {
                    "no weights meet the industry and size exposures, the per-stock bounds and \
                     the turnover cap together (loosen the deviation bound or the turnover cap)"
                        .into()
                } else {
                    "no weights meet the industry and size exposures within the per-stock bounds \
                     (loosen the deviation bound)"
                        .into()
                }))
            }
            other => return Err(SolveError::Failed(format!("status {other:?}"))),
        }
        // Interior-point iterates sit strictly inside the bounds up to the solver's tolerance;
        // clipping to the box only removes that slack.
        let w: Vec<f64> = (0..n)
            .map(|i| solver.solution.x[i].clamp(self.lower[i], self.upper[i]))
            .collect();
        let res = self.residuals(&w);
        if res.max() > TOLERANCE {
            return Err(SolveError::Failed(format!(
                "status {status:?} but the solution violates the constraints by {res:?}"
            )));
        }
        Ok(w)
    }
}

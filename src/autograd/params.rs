//! The flat parameter store: parameters, gradients and Adam's two moments in four buffers of the
//! same length, addressed by named ranges, so that Adam (and its CUDA kernel) is a single pass.

use crate::util::float::Float;
use std::ops::Range;

/// Handle to one named parameter tensor inside a [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamId(pub usize);

#[derive(Debug, Clone)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub range: Range<usize>,
    /// L2 coefficient added to the loss as `l2·Σθ²` (Keras `kernel_regularizer=l2(l2)`).
    pub l2: f64,
}

#[derive(Debug, Clone, Default)]
pub struct ParamStore<T> {
    pub data: Vec<T>,
    pub grad: Vec<T>,
    pub m: Vec<T>,
    pub v: Vec<T>,
    pub entries: Vec<ParamEntry>,
    /// Adam step counter (t in the bias correction).
    pub step: u64,
}

impl<T: Float> ParamStore<T> {
    pub fn new() -> Self {
        ParamStore {
            data: vec![],
            grad: vec![],
            m: vec![],
            v: vec![],
            entries: vec![],
            step: 0,
        }
    }

    /// Appends a parameter initialised with `init` (its length must match `shape`).
    pub fn add(&mut self, name: &str, shape: &[usize], init: Vec<T>, l2: f64) -> ParamId {
        let n: usize = shape.iter().product();
        assert_eq!(
            init.len(),
            n,
            "param {name}: init has {} values for shape {shape:?}",
            init.len()
        );
        assert!(
            self.entries.iter().all(|e| e.name != name),
            "param {name} added twice"
        );
        let start = self.data.len();
        self.data.extend(init);
        self.grad.resize(self.data.len(), T::zero());
        self.m.resize(self.data.len(), T::zero());
        self.v.resize(self.data.len(), T::zero());
        self.entries.push(ParamEntry {
            name: name.to_string(),
            shape: shape.to_vec(),
            range: start..start + n,
            l2,
        });
        ParamId(self.entries.len() - 1)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn entry(&self, id: ParamId) -> &ParamEntry {
        &self.entries[id.0]
    }

    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.entries
            .iter()
            .position(|e| e.name == name)
            .map(ParamId)
    }

    pub fn get(&self, id: ParamId) -> &[T] {
        &self.data[self.entries[id.0].range.clone()]
    }

    pub fn get_mut(&mut self, id: ParamId) -> &mut [T] {
        let r = self.entries[id.0].range.clone();
        &mut self.data[r]
    }

    pub fn grad_mut(&mut self, id: ParamId) -> &mut [T] {
        let r = self.entries[id.0].range.clone();
        &mut self.grad[r]
    }

    /// Value slice and gradient slice of one parameter at once (they live in different buffers).
    pub fn value_and_grad(&mut self, id: ParamId) -> (&[T], &mut [T]) {
        let r = self.entries[id.0].range.clone();
        (&self.data[r.clone()], &mut self.grad[r])
    }

    pub fn zero_grad(&mut self) {
        self.grad.iter_mut().for_each(|g| *g = T::zero());
    }

    /// `Σ l2·Σθ²` over the regularised parameters; adds `2·l2·θ` to their gradients when `backward`.
    pub fn l2_penalty(&mut self, backward: bool) -> f64 {
        let mut total = 0.0;
        for e in &self.entries {
            if e.l2 == 0.0 {
                continue;
            }
            let l2 = e.l2;
            total += l2
                * self.data[e.range.clone()]
                    .iter()
                    .map(|x| x.f64() * x.f64())
                    .sum::<f64>();
            if backward {
                for i in e.range.clone() {
                    self.grad[i] += T::c(2.0 * l2) * self.data[i];
                }
            }
        }
        total
    }

    /// Same layout with `f64` values, for gradient checks of a model built in f32.
    pub fn cast<U: Float>(&self) -> ParamStore<U> {
        let conv = |v: &Vec<T>| v.iter().map(|x| U::c(x.f64())).collect();
        ParamStore {
            data: conv(&self.data),
            grad: conv(&self.grad),
            m: conv(&self.m),
            v: conv(&self.v),
            entries: self.entries.clone(),
            step: self.step,
        }
    }
}

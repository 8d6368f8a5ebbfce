//! CPU reference ops. Each op is a pair of free functions `*_forward` / `*_backward` over flat
//! slices with explicit sizes: the same arguments, in the same order, as its CUDA kernel.
//! Backward functions accumulate (`+=`) into their gradient outputs.

pub mod batchnorm;
pub mod dense;
pub mod elementwise;
pub mod gradcheck;
pub mod gru;
pub mod kernel_consts;
pub mod loss;
pub mod lstm;
pub mod normalize;
pub mod pooling;
pub mod recurrent;
pub(crate) mod reduce;
pub mod ts_features;

/// `*_forward(h_out, cache, x, w_ih, w_hh, bias, b, s, i, h)`: the LSTM's and the GRU's forward.
pub type RecurrentForward<T> =
    fn(&mut [T], &mut [T], &[T], &[T], &[T], &[T], usize, usize, usize, usize);
/// `*_backward(dx, dw_ih, dw_hh, dbias, dh_out, cache, x, w_ih, w_hh, b, s, i, h)`.
pub type RecurrentBackward<T> = fn(
    &mut [T],
    &mut [T],
    &mut [T],
    &mut [T],
    &[T],
    &[T],
    &[T],
    &[T],
    &[T],
    usize,
    usize,
    usize,
    usize,
);

/// A recurrent layer's CPU ops; both kinds take the same arguments.
pub struct RecurrentOps<T> {
    /// Floats the forward pass saves for backward, for `(b, s, h)`.
    pub cache_len: fn(usize, usize, usize) -> usize,
    pub forward: RecurrentForward<T>,
    pub backward: RecurrentBackward<T>,
}

/// The CPU ops of an LSTM or a GRU layer; both kinds take the same arguments.
pub fn recurrent_ops<T: crate::util::float::Float>(
    kind: crate::ops::recurrent::Recurrent,
) -> RecurrentOps<T> {
    use crate::ops::recurrent::Recurrent;
    match kind {
        Recurrent::Lstm => RecurrentOps {
            cache_len: lstm::lstm_cache_len,
            forward: lstm::lstm_forward,
            backward: lstm::lstm_backward,
        },
        Recurrent::Gru => RecurrentOps {
            cache_len: gru::gru_cache_len,
            forward: gru::gru_forward,
            backward: gru::gru_backward,
        },
    }
}

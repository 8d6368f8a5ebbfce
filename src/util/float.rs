//! The scalar type every CPU op is generic over: `f32` for training, `f64` for gradient checks.

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A real scalar the CPU reference ops run on. `gemm` dispatches to the matching
/// `matrixmultiply` routine so the dense and recurrent layers use a tuned kernel in both precisions.
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + num_traits::NumAssign
    + From<f32>
    + Copy
    + Send
    + Sync
    + Default
    + Debug
    + Display
    + Sum
    + 'static
{
    fn c(x: f64) -> Self;
    fn f64(self) -> f64;

    /// `C = alpha·A·B + beta·C` on row/column strided matrices (A m×k, B k×n, C m×n).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: isize,
        csa: isize,
        b: &[Self],
        rsb: isize,
        csb: isize,
        beta: Self,
        c: &mut [Self],
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_float {
    ($t:ty, $gemm:path) => {
        impl Float for $t {
            #[inline(always)]
            fn c(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn f64(self) -> f64 {
                self as f64
            }
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: &[Self],
                rsa: isize,
                csa: isize,
                b: &[Self],
                rsb: isize,
                csb: isize,
                beta: Self,
                c: &mut [Self],
                rsc: isize,
                csc: isize,
            ) {
                if m == 0 || n == 0 {
                    return;
                }
                let span = |rows: usize, cols: usize, rs: isize, cs: isize| {
                    if rows == 0 || cols == 0 {
                        0
                    } else {
                        ((rows - 1) as isize * rs + (cols - 1) as isize * cs) as usize + 1
                    }
                };
                assert!(a.len() >= span(m, k, rsa, csa), "gemm: A too short");
                assert!(b.len() >= span(k, n, rsb, csb), "gemm: B too short");
                assert!(c.len() >= span(m, n, rsc, csc), "gemm: C too short");
                // SAFETY: the asserts above bound every index the routine touches.
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        alpha,
                        a.as_ptr(),
                        rsa,
                        csa,
                        b.as_ptr(),
                        rsb,
                        csb,
                        beta,
                        c.as_mut_ptr(),
                        rsc,
                        csc,
                    )
                }
            }
        }
    };
}
impl_float!(f32, matrixmultiply::sgemm);
impl_float!(f64, matrixmultiply::dgemm);

/// Row-major `C[m×n] (+)= op(A)·op(B)` into a contiguous C; the transposes are only the
/// (row, column) strides given for A and B.
#[allow(clippy::too_many_arguments)]
fn matmul_strided<T: Float>(
    c: &mut [T],
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    (rsb, csb): (usize, usize),
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    let beta = if accumulate { T::one() } else { T::zero() };
    T::gemm(
        m,
        k,
        n,
        T::one(),
        a,
        rsa as isize,
        csa as isize,
        b,
        rsb as isize,
        csb as isize,
        beta,
        c,
        n as isize,
        1,
    );
}

/// Row-major `C[m×n] (+)= A[m×k] · B[k×n]`, the common case; `accumulate` keeps what C held.
pub fn matmul<T: Float>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    matmul_strided(c, a, (k, 1), b, (n, 1), m, k, n, accumulate);
}

/// Row-major `C[m×n] (+)= Aᵀ · B` where A is stored k×m.
pub fn matmul_tn<T: Float>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    matmul_strided(c, a, (1, m), b, (n, 1), m, k, n, accumulate);
}

/// Row-major `C[m×n] (+)= A · Bᵀ` where B is stored n×k.
pub fn matmul_nt<T: Float>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    matmul_strided(c, a, (k, 1), b, (1, k), m, k, n, accumulate);
}

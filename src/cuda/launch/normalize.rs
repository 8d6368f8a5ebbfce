//! kernels/normalize.cu: per-picture input normalisation (src/ops/normalize.rs).

use super::{grid1, int, Buf, Gpu};
use crate::cuda::context::Kernel;
use crate::error::Result;
use crate::ops::kernel_consts::{PICTURE_DAYS, PICTURE_FEATURES};

impl Gpu {
    /// out `[B, 15, 30]` = each picture of inp rescaled (src/ops/normalize.rs).
    pub fn normalize_pictures(&self, out: &mut Buf, inp: &Buf, b: usize) -> Result<()> {
        let n = b * PICTURE_FEATURES * PICTURE_DAYS;
        check!("normalize_pictures", inp >= n, out >= n);
        let nb = int(b)?;
        self.launch(
            Kernel::NormalizePictures,
            grid1(b * PICTURE_FEATURES),
            |l| {
                args!(l, out, inp, &nb);
            },
        )
    }
}

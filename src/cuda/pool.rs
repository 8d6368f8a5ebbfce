//! Device memory, reused. Every buffer the engine allocates on the GPU (but two constant vectors
//! kept for good, `Gpu::with_unit_affine`) comes from the [`Pool`] and goes back to it when
//! dropped, so a training step at a batch shape seen before makes no driver allocation
//! (`cuMemAllocAsync`) and no free (docs/engine.md, "Memory").
//!
//! A buffer of `n` elements is a view of `n` elements at the start of a block whose size is `n`'s
//! size class ([`block_bytes`]): sizes are rounded up to 1/8 of their power of two (at most 12.5%
//! unused), so whole-date batches of slightly different sizes share blocks. The pool keeps free
//! blocks up to a limit (a quarter of the device's memory) and frees the rest, and frees all of
//! them when the driver runs out of memory, before trying again.
//!
//! On the CPU stand-in of the driver the pool keeps exact sizes instead, so that the stand-in's
//! guard page still follows each buffer's last element, and fills a reused block with all-ones
//! bytes (NaN), as the stand-in fills fresh memory, so that a read of memory no kernel wrote
//! still shows up as it would in a fresh allocation (docs/cuda_emulator.md).
//!
//! Safety of reuse: the engine runs on one stream (`Gpu::new`), so work queued with a block's
//! next owner runs after all work queued with its previous one.

use std::collections::BTreeMap;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{
    CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, DeviceSlice, DriverError,
    LaunchArgs, PushKernelArg, SyncOnDrop,
};

/// Free blocks by size, and what the pool has done.
#[derive(Default)]
struct State {
    free: BTreeMap<usize, Vec<CudaSlice<u8>>>,
    free_bytes: usize,
    stats: PoolStats,
}

/// Counts since the pool was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Blocks allocated from the driver.
    pub allocated: u64,
    /// Buffers served from a free block.
    pub reused: u64,
    /// Blocks freed to the driver: beyond the limit of free blocks, or all of them when the
    /// driver ran out of memory. (On the stand-in each reuse is also one `cuMemsetD8Async`.)
    pub freed: u64,
}

pub struct Pool {
    stream: Arc<CudaStream>,
    /// The stand-in: exact sizes, reused blocks poisoned.
    emulated: bool,
    /// The most bytes of free blocks kept.
    limit: usize,
    state: Mutex<State>,
}

/// The block size, in bytes, that holds `bytes`: at most 4 KiB rounds up to a multiple of 256,
/// above that to a multiple of 1/8 of the largest power of two not above it.
pub fn block_bytes(bytes: usize) -> usize {
    let bytes = bytes.max(1);
    if bytes <= 4096 {
        return bytes.next_multiple_of(256);
    }
    let step = (1usize << bytes.ilog2()) / 8;
    bytes.next_multiple_of(step)
}

impl Pool {
    pub fn new(stream: Arc<CudaStream>, emulated: bool, limit: usize) -> Arc<Self> {
        Arc::new(Pool {
            stream,
            emulated,
            limit,
            state: Mutex::new(State::default()),
        })
    }

    pub fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while the lock was held left the free lists consistent (each change is one
        // push or pop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `n` elements of uninitialised memory (all-ones bytes on the stand-in).
    pub fn take<T: DeviceRepr>(self: &Arc<Self>, n: usize) -> Result<Pooled<T>, DriverError> {
        let n = n.max(1);
        let bytes = n * std::mem::size_of::<T>();
        let size = match self.emulated {
            true => bytes,
            false => block_bytes(bytes),
        };
        let reused = {
            let mut s = self.lock();
            let block = s.free.get_mut(&size).and_then(Vec::pop);
            match &block {
                Some(_) => {
                    s.free_bytes -= size;
                    s.stats.reused += 1;
                }
                None => s.stats.allocated += 1,
            }
            block
        };
        let block = match reused {
            Some(block) => {
                if self.emulated {
                    let p = block.device_ptr(&self.stream).0;
                    // SAFETY: the block is live and `size` bytes long, on this stream.
                    unsafe {
                        cudarc::driver::result::memset_d8_async(
                            p,
                            0xff,
                            size,
                            self.stream.cu_stream(),
                        )
                    }?;
                }
                block
            }
            // SAFETY: u8 has no invalid bit patterns; the buffer's users write before they read.
            None => match unsafe { self.stream.alloc::<u8>(size) } {
                Ok(block) => block,
                // Out of memory, perhaps because of the free blocks kept here: free them, try again.
                Err(_) if self.release() > 0 => unsafe { self.stream.alloc::<u8>(size) }?,
                Err(e) => return Err(e),
            },
        };
        let p = block.device_ptr(&self.stream).0;
        // SAFETY: the view lies inside the block (n·size_of::<T>() ≤ size bytes, from its start,
        // 256-byte aligned like every driver allocation), which the Pooled owns and outlives it:
        // the view is leaked, never freed, when the Pooled drops.
        let view = unsafe { self.stream.upgrade_device_ptr::<T>(p, n) };
        Ok(Pooled {
            view: ManuallyDrop::new(view),
            block: ManuallyDrop::new(block),
            pool: Arc::clone(self),
        })
    }

    /// Frees every free block; returns how many there were.
    fn release(&self) -> usize {
        let free = {
            let mut s = self.lock();
            s.free_bytes = 0;
            s.stats.freed += s.free.values().map(|b| b.len() as u64).sum::<u64>();
            std::mem::take(&mut s.free)
        };
        // Dropped here, outside the lock: each drop is a driver call.
        free.values().map(Vec::len).sum()
    }

    fn give(&self, block: CudaSlice<u8>) {
        let size = block.len();
        let mut s = self.lock();
        if s.free_bytes + size > self.limit {
            s.stats.freed += 1;
            drop(s);
            drop(block);
            return;
        }
        s.free_bytes += size;
        s.free.entry(size).or_default().push(block);
    }
}

/// A borrowed device tensor (the ops' arguments) and an owned one, taken from the pool: the
/// names every file of `cuda/` uses for them.
pub(crate) type Buf = cudarc::driver::CudaSlice<f32>;
pub(crate) type Owned = Pooled<f32>;

/// A device buffer of the pool: a `CudaSlice<T>` (through `Deref`) whose memory goes back to the
/// pool when it drops.
pub struct Pooled<T: DeviceRepr> {
    view: ManuallyDrop<CudaSlice<T>>,
    block: ManuallyDrop<CudaSlice<u8>>,
    pool: Arc<Pool>,
}

impl<T: DeviceRepr> Drop for Pooled<T> {
    fn drop(&mut self) {
        // SAFETY: each field is taken once, here. The view only borrows the block's memory, so it
        // is leaked (its stream handle released, the memory not freed); the block goes back to
        // the pool.
        unsafe {
            ManuallyDrop::take(&mut self.view).leak();
            self.pool.give(ManuallyDrop::take(&mut self.block));
        }
    }
}

impl<T: DeviceRepr> Deref for Pooled<T> {
    type Target = CudaSlice<T>;
    fn deref(&self) -> &CudaSlice<T> {
        &self.view
    }
}

impl<T: DeviceRepr> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut CudaSlice<T> {
        &mut self.view
    }
}

impl<T: DeviceRepr> std::borrow::Borrow<CudaSlice<T>> for Pooled<T> {
    fn borrow(&self) -> &CudaSlice<T> {
        &self.view
    }
}

impl<T: DeviceRepr> std::borrow::BorrowMut<CudaSlice<T>> for Pooled<T> {
    fn borrow_mut(&mut self) -> &mut CudaSlice<T> {
        &mut self.view
    }
}

// A pooled buffer goes wherever its CudaSlice goes: the generic copy and launch calls of cudarc.

impl<T: DeviceRepr> DeviceSlice<T> for Pooled<T> {
    fn len(&self) -> usize {
        self.view.len()
    }
    fn stream(&self) -> &Arc<CudaStream> {
        self.view.stream()
    }
}

impl<T: DeviceRepr> DevicePtr<T> for Pooled<T> {
    fn device_ptr<'a>(&'a self, stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        self.view.device_ptr(stream)
    }
}

impl<T: DeviceRepr> DevicePtrMut<T> for Pooled<T> {
    fn device_ptr_mut<'a>(&'a mut self, stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        self.view.device_ptr_mut(stream)
    }
}

// SAFETY: the argument pushed is the view's, exactly as for the CudaSlice itself.
unsafe impl<'a, 'b: 'a, T: DeviceRepr> PushKernelArg<&'b Pooled<T>> for LaunchArgs<'a> {
    fn arg(&mut self, arg: &'b Pooled<T>) -> &mut Self {
        self.arg(&*arg.view)
    }
}

// SAFETY: as above.
unsafe impl<'a, 'b: 'a, T: DeviceRepr> PushKernelArg<&'b mut Pooled<T>> for LaunchArgs<'a> {
    fn arg(&mut self, arg: &'b mut Pooled<T>) -> &mut Self {
        self.arg(&mut *arg.view)
    }
}

#[cfg(test)]
mod tests {
    use super::block_bytes;

    #[test]
    fn size_classes_waste_at_most_an_eighth() {
        assert_eq!(block_bytes(0), 256);
        assert_eq!(block_bytes(1), 256);
        assert_eq!(block_bytes(4096), 4096);
        assert_eq!(block_bytes(4097), 4608);
        assert_eq!(block_bytes(1 << 20), 1 << 20);
        assert_eq!(block_bytes((1 << 20) + 1), (1 << 20) + (1 << 17));
        for bytes in (1..2_000_000).step_by(997) {
            let b = block_bytes(bytes);
            assert!(
                b >= bytes && (b - bytes) * 8 <= bytes.max(2048),
                "{bytes} → {b}"
            );
        }
        // Batches of 16000 and 16300 samples (× 120 floats) share a class; 16384 of them too.
        let class = |b: usize| block_bytes(b * 120 * 4);
        assert_eq!(class(16000), class(16300));
        assert_eq!(class(16000), class(16384));
    }
}

//! The driver context: probing for a usable GPU, loading every kernel module (the nvcc fatbin
//! built by build.rs, or the embedded source compiled with NVRTC for the device at hand).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, ValidAsZeroBits,
};
use cudarc::nvrtc::{CompileOptions, Ptx};

use super::kernel_times::KernelTimer;
use super::pool::{Pool, PoolStats, Pooled};
use crate::error::{Error, Result};

/// One `kernels/*.cu` file as embedded by build.rs.
pub struct KernelModule {
    pub name: &'static str,
    /// The source with its local includes inlined: self-contained for NVRTC.
    pub source: &'static str,
    /// sm_80 + sm_90 SASS and compute_90 PTX, when nvcc was found at build time.
    pub fatbin: Option<&'static [u8]>,
    /// Its `extern "C" __global__` functions.
    pub kernels: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// What `probe` found.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub total_mem: usize,
    /// The driver's CUDA version (`cuDriverGetVersion`: 1000·major + 10·minor).
    pub driver: i32,
    /// The CPU stand-in of the CUDA driver (`ALPHANET_CUDA=emulator`); its name says so too.
    pub emulated: bool,
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.compute_capability;
        let gib = self.total_mem as f64 / (1u64 << 30) as f64;
        write!(
            f,
            "cuda:{} {} (sm_{major}{minor}, {gib:.1} GiB, driver CUDA {}.{})",
            self.ordinal,
            self.name,
            self.driver / 1000,
            self.driver % 1000 / 10
        )
    }
}

/// Runs a cudarc call that may panic (its dynamic loader panics when a library or a symbol is
/// missing) and turns the panic into the reason.
fn guarded<T>(
    f: impl FnOnce() -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
        Err(msg.unwrap_or_else(|| "the CUDA library panicked".into()))
    })
}

/// Says whether GPU `ordinal` is usable and, if not, why (no driver library, driver failing to
/// initialize, no device, ordinal out of range), without panicking.
pub fn probe(ordinal: usize) -> std::result::Result<DeviceInfo, String> {
    let emulated = super::emulator::driver()? == super::emulator::Driver::Emulator;
    guarded(|| {
        // SAFETY: only tries to dlopen libcuda; no symbol is called.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("no NVIDIA driver library (libcuda.so) found: no NVIDIA driver is installed, or it is not on the loader path".into());
        }
        let n = CudaContext::device_count()
            .map_err(|e| format!("the NVIDIA driver failed to initialize ({e}): no usable GPU"))?;
        if n <= 0 {
            return Err("the NVIDIA driver reports no GPU".into());
        }
        if ordinal >= n as usize {
            return Err(format!(
                "cuda:{ordinal} requested but the driver sees {n} GPU(s): use cuda:0..cuda:{}",
                n - 1
            ));
        }
        let ctx =
            CudaContext::new(ordinal).map_err(|e| format!("cannot open cuda:{ordinal}: {e}"))?;
        let err = |e: cudarc::driver::DriverError| format!("cannot query cuda:{ordinal}: {e}");
        Ok(DeviceInfo {
            ordinal,
            name: ctx.name().map_err(err)?,
            compute_capability: ctx.compute_capability().map_err(err)?,
            total_mem: ctx.total_mem().map_err(err)?,
            driver: driver_version(),
            emulated,
        })
    })
}

/// The driver's CUDA version, 0 where it cannot say.
fn driver_version() -> i32 {
    let mut v = 0;
    // SAFETY: writes one int; the driver library is loaded (probe checked it).
    let ok = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    if ok == cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        v
    } else {
        0
    }
}

/// Makes NVRTC loadable: found as is on the loader path, or else loaded by full path from
/// `$CUDA_HOME/lib`, `$CUDA_HOME/lib64` (also `CUDA_PATH`), as the pip wheels install it. Once a
/// library with the soname `libnvrtc.so.13` is loaded, cudarc's own dlopen by name finds it.
pub fn nvrtc_available() -> std::result::Result<(), String> {
    // SAFETY: only tries to dlopen libnvrtc.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Ok(());
    }
    let dirs: Vec<PathBuf> = ["CUDA_HOME", "CUDA_PATH"]
        .into_iter()
        .filter_map(std::env::var_os)
        .flat_map(|h| {
            [
                PathBuf::from(&h).join("lib"),
                PathBuf::from(h).join("lib64"),
            ]
        })
        .collect();
    for dir in &dirs {
        // NVRTC dlopens its builtins by name at compile time: load them first, by path.
        if dlopen_global(&dir.join("libnvrtc-builtins.so.13.0"))
            && dlopen_global(&dir.join("libnvrtc.so.13"))
        {
            return Ok(());
        }
    }
    Err(format!(
        "NVRTC (libnvrtc.so.13) not found on the loader path nor in {dirs:?}: install it (scripts/install_cuda_wheels.sh) and set CUDA_HOME or LD_LIBRARY_PATH"
    ))
}

/// dlopen(path, RTLD_NOW | RTLD_GLOBAL), kept open for the life of the process.
#[cfg(unix)]
fn dlopen_global(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        fn dlopen(
            filename: *const std::ffi::c_char,
            flag: std::ffi::c_int,
        ) -> *mut std::ffi::c_void;
    }
    const RTLD_NOW: std::ffi::c_int = 2;
    const RTLD_GLOBAL: std::ffi::c_int = 0x100;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path; the handle is deliberately never closed.
    path.is_file() && !unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_GLOBAL) }.is_null()
}

#[cfg(not(unix))]
fn dlopen_global(_path: &std::path::Path) -> bool {
    false
}

/// Compiles one module's embedded source to PTX with NVRTC for `arch` (e.g. "compute_90").
pub fn compile_nvrtc(module: &KernelModule, arch: &str) -> std::result::Result<Ptx, String> {
    nvrtc_available()?;
    let opts = CompileOptions {
        options: vec![format!("--gpu-architecture={arch}"), "-std=c++17".into()],
        name: Some(format!("{}.cu", module.name)),
        ..Default::default()
    };
    guarded(|| {
        cudarc::nvrtc::compile_ptx_with_opts(module.source, opts)
            .map_err(|e| format!("NVRTC failed on kernels/{}.cu: {e}", module.name))
    })
}

/// An open GPU: context, stream, and every kernel function by name.
pub struct Gpu {
    pub info: DeviceInfo,
    /// "fatbin" when every module came from the nvcc build, else "nvrtc" for those that did not.
    pub kernels_from: &'static str,
    pub(crate) stream: Arc<CudaStream>,
    /// Where every device buffer comes from and returns to (`pool.rs`).
    pool: Arc<Pool>,
    /// γ = 1 and β = 0 for at least `.0` channels, uploaded once ([`Gpu::with_unit_affine`]).
    unit_affine: Mutex<Option<UnitAffine>>,
    /// Every kernel, at `Kernel as usize`.
    functions: Vec<CudaFunction>,
    /// Per-kernel timing, off unless turned on (`alphanet bench`).
    pub timer: KernelTimer,
}

/// Channels, γ = 1, β = 0. Allocated outside the pool: a buffer held for good, taken from the pool
/// in the middle of a step, would leave the step's own peak one block short the next time.
type UnitAffine = (usize, CudaSlice<f32>, CudaSlice<f32>);

/// GPU 0 for a test: the real GPU when the driver is present and sees one, else the stand-in, so
/// that every GPU test runs everywhere. `ALPHANET_REQUIRE_GPU=1` (scripts/gpu_check.sh) demands
/// the real GPU and says why it is unusable; `ALPHANET_CUDA=emulator` demands the stand-in. Call
/// it before anything else opens a GPU in the process: the driver is chosen once.
pub fn open_for_tests() -> Result<Gpu> {
    super::emulator::choose_for_tests()?;
    Gpu::new(0)
}

impl Gpu {
    /// Opens GPU `ordinal` and loads every kernel; the error says why the GPU is not usable.
    pub fn new(ordinal: usize) -> Result<Self> {
        let info = probe(ordinal).map_err(Error::Cuda)?;
        let ctx = CudaContext::new(ordinal).map_err(Error::cuda)?;
        // SAFETY: the engine uses the context's one default stream, so no buffer is ever shared
        // between streams; without tracking, an allocation creates and destroys no events.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = info.compute_capability;
        let mut kernels_from = "fatbin";
        let mut loaded = HashMap::new();
        for m in MODULES {
            let (module, from) =
                load_module(&ctx, m, &format!("compute_{major}{minor}")).map_err(Error::Cuda)?;
            if from == "nvrtc" {
                kernels_from = from;
            }
            for &name in m.kernels {
                loaded.insert(name, module.load_function(name).map_err(Error::cuda)?);
            }
        }
        let functions = (Kernel::ALL.iter())
            .map(|k| {
                loaded.remove(k.name()).ok_or_else(|| {
                    Error::Cuda(format!("kernel {} is in no loaded module", k.name()))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let stream = ctx.default_stream();
        Ok(Gpu {
            pool: Pool::new(stream.clone(), info.emulated, info.total_mem / 4),
            unit_affine: Mutex::new(None),
            info,
            kernels_from,
            stream,
            functions,
            timer: KernelTimer::default(),
        })
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub(crate) fn function(&self, kernel: Kernel) -> &CudaFunction {
        &self.functions[kernel as usize]
    }

    /// A copy of `host` on the device.
    pub fn upload<T: DeviceRepr>(&self, host: &[T]) -> Result<Pooled<T>> {
        let mut dev = self.pool.take::<T>(host.len()).map_err(Error::cuda)?;
        if !host.is_empty() {
            self.stream
                .memcpy_htod(host, &mut *dev)
                .map_err(Error::cuda)?;
        }
        Ok(dev)
    }

    /// `n` zeros (at least one element: the driver allocates no empty buffer).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<Pooled<T>> {
        let mut dev = self.pool.take::<T>(n).map_err(Error::cuda)?;
        self.stream.memset_zeros(&mut *dev).map_err(Error::cuda)?;
        Ok(dev)
    }

    /// An uninitialised buffer, for scratch that a kernel overwrites in full before any read.
    pub(crate) fn scratch(&self, n: usize) -> Result<Pooled<f32>> {
        self.pool.take(n).map_err(Error::cuda)
    }

    /// Runs `f` with a BatchNorm γ = 1 and β = 0 of at least `c` channels (BatchNorm as plain
    /// standardization, x̂), kept on the device after the first call so that a step uploads none.
    pub(crate) fn with_unit_affine<R>(
        &self,
        c: usize,
        f: impl FnOnce(&CudaSlice<f32>, &CudaSlice<f32>) -> Result<R>,
    ) -> Result<R> {
        let mut unit = self.unit_affine.lock().unwrap_or_else(|e| e.into_inner());
        if unit.as_ref().is_none_or(|(n, ..)| *n < c) {
            let ones = self
                .stream
                .clone_htod(&vec![1.0f32; c])
                .map_err(Error::cuda)?;
            *unit = Some((c, ones, self.stream.alloc_zeros(c).map_err(Error::cuda)?));
        }
        let (_, ones, zeros) = unit.as_ref().expect("set above");
        f(ones, zeros)
    }

    /// What the memory pool has done since the GPU was opened.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    pub fn download<T: DeviceRepr>(&self, dev: &CudaSlice<T>) -> Result<Vec<T>> {
        self.stream.clone_dtoh(dev).map_err(Error::cuda)
    }

    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(Error::cuda)
    }
}

/// The nvcc fatbin when there is one and the driver accepts it (a GPU older than sm_80 or newer
/// than the PTX's JIT reach does not), else the NVRTC-compiled source.
fn load_module(
    ctx: &Arc<CudaContext>,
    m: &KernelModule,
    arch: &str,
) -> std::result::Result<(Arc<CudaModule>, &'static str), String> {
    if let Some(fatbin) = m.fatbin {
        if let Ok(module) = ctx.load_module(Ptx::from_binary(fatbin.to_vec())) {
            return Ok((module, "fatbin"));
        }
    }
    let ptx = compile_nvrtc(m, arch)?;
    let module = ctx
        .load_module(ptx)
        .map_err(|e| format!("loading kernels/{}.cu: {e}", m.name))?;
    Ok((module, "nvrtc"))
}

//! Which CUDA driver this process uses: the real one, or the CPU stand-in built from `emulator/`
//! (docs/cuda_emulator.md), chosen once and never silently.
//!
//! cudarc dlopens the driver by name (`libcuda.so` first) on its first driver call, and glibc
//! answers a dlopen by name with a library already loaded under that soname. The stand-in's
//! soname is `libcuda.so`, so loading it by path before any cudarc call makes cudarc use it with
//! no change to the launch code. A process cannot switch afterwards (cudarc keeps the library).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The stand-in, built by build.rs into its output directory.
const EMULATOR_LIB: &str = env!("ALPHANET_EMULATOR_LIB");
/// A symbol only the stand-in defines (emulator/driver.cpp).
const MARKER: &CStr = c"alphanet_cuda_emulator";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Driver {
    Real,
    Emulator,
}

static CHOSEN: OnceLock<std::result::Result<Driver, String>> = OnceLock::new();

/// The driver of this process: the stand-in when `ALPHANET_CUDA=emulator`, else the real one
/// (which may be missing: then opening a GPU fails as it always has). Decided at the first call.
pub(crate) fn driver() -> std::result::Result<Driver, String> {
    CHOSEN
        .get_or_init(|| match emulator_requested()? {
            true => load_emulator(),
            false => Ok(Driver::Real),
        })
        .clone()
}

/// Chooses the driver for [`super::context::open_for_tests`] (see there), once per process.
pub fn choose_for_tests() -> Result<()> {
    let required = std::env::var("ALPHANET_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let chosen = CHOSEN
        .get_or_init(|| {
            if emulator_requested()? {
                return match required {
                    true => Err("ALPHANET_REQUIRE_GPU=1 asks for a real GPU, ALPHANET_CUDA=emulator for the stand-in: unset one".into()),
                    false => load_emulator(),
                };
            }
            match real_driver_usable() {
                Ok(()) => Ok(Driver::Real),
                Err(why) if required => Err(format!("ALPHANET_REQUIRE_GPU=1 but no usable GPU: {why}")),
                Err(_) => load_emulator(),
            }
        })
        .clone()
        .map_err(Error::Cuda)?;
    if required && chosen == Driver::Emulator {
        return Err(Error::Cuda(
            "ALPHANET_REQUIRE_GPU=1 but this process already runs on the CUDA stand-in".into(),
        ));
    }
    Ok(())
}

/// `ALPHANET_CUDA`: unset or empty for the real driver, `emulator` for the stand-in.
pub(crate) fn emulator_requested() -> std::result::Result<bool, String> {
    match std::env::var("ALPHANET_CUDA") {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Ok(v) if v.is_empty() => Ok(false),
        Ok(v) if v == "emulator" => Ok(true),
        Ok(v) => Err(format!(
            "ALPHANET_CUDA={v:?}: the only value is `emulator` (the CPU stand-in of the CUDA driver); unset it for the real driver"
        )),
        Err(e) => Err(format!("ALPHANET_CUDA: {e}")),
    }
}

extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlclose(handle: *mut c_void) -> c_int;
    fn dlerror() -> *const c_char;
}
const RTLD_LAZY: c_int = 1;
const RTLD_NOW: c_int = 2;
const RTLD_NOLOAD: c_int = 4;
const RTLD_GLOBAL: c_int = 0x100;

fn last_dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl* call.
    let e = unsafe { dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-null, NUL-terminated (above).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// Loads the stand-in for the whole process and checks that the name cudarc will dlopen
/// (`libcuda.so`) now resolves to it, not to a real driver loaded earlier.
fn load_emulator() -> std::result::Result<Driver, String> {
    let path = CString::new(EMULATOR_LIB).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated path; the handle is deliberately never closed.
    if unsafe { dlopen(path.as_ptr(), RTLD_NOW | RTLD_GLOBAL) }.is_null() {
        return Err(format!(
            "cannot load the CUDA stand-in {EMULATOR_LIB} (built by build.rs): {}",
            last_dl_error()
        ));
    }
    // SAFETY: NOLOAD only looks the name up among loaded libraries; the symbol is only compared
    // with null.
    let found = unsafe {
        let h = dlopen(c"libcuda.so".as_ptr(), RTLD_NOW | RTLD_NOLOAD);
        let marked = !h.is_null() && !dlsym(h, MARKER.as_ptr()).is_null();
        if !h.is_null() {
            dlclose(h);
        }
        marked
    };
    if !found {
        return Err(
            "the CUDA stand-in is loaded, but libcuda.so resolves to another library already loaded in this process (a real driver): one process cannot switch drivers".into(),
        );
    }
    Ok(Driver::Emulator)
}

/// Whether the real driver (`libcuda.so.1`, the name every driver install provides) initializes
/// and sees a GPU, tried without cudarc, so that a failure leaves the process free to load the
/// stand-in: cudarc tries `libcuda.so` first, which then names the stand-in.
fn real_driver_usable() -> std::result::Result<(), String> {
    type Init = unsafe extern "C" fn(u32) -> c_int;
    type Count = unsafe extern "C" fn(*mut c_int) -> c_int;
    // SAFETY: the real driver's cuInit and cuDeviceGetCount have these C signatures (cuda.h).
    unsafe {
        let h = dlopen(c"libcuda.so.1".as_ptr(), RTLD_LAZY);
        if h.is_null() {
            return Err(format!("no NVIDIA driver library: {}", last_dl_error()));
        }
        let init = dlsym(h, c"cuInit".as_ptr());
        let count = dlsym(h, c"cuDeviceGetCount".as_ptr());
        let mut n: c_int = 0;
        let verdict = if init.is_null() || count.is_null() {
            Err("libcuda.so.1 lacks cuInit or cuDeviceGetCount".to_string())
        } else {
            let init: Init = std::mem::transmute::<*mut c_void, Init>(init);
            let count: Count = std::mem::transmute::<*mut c_void, Count>(count);
            match init(0) {
                0 if count(&mut n) == 0 && n > 0 => Ok(()),
                0 => Err("the NVIDIA driver sees no GPU".to_string()),
                code => Err(format!(
                    "the NVIDIA driver failed to initialize (CUresult {code})"
                )),
            }
        };
        dlclose(h);
        verdict
    }
}

/// The driver calls this process has made so far, by entry point (`cuLaunchKernel`,
/// `cuMemAlloc_v2`, …), when it runs on the stand-in, which counts them; `None` on a real driver.
/// The difference of two readings is what the code between them called.
pub fn driver_calls() -> Option<std::collections::BTreeMap<String, u64>> {
    type Calls = unsafe extern "C" fn(*mut c_char, usize) -> usize;
    if CHOSEN.get().cloned() != Some(Ok(Driver::Emulator)) {
        return None;
    }
    // SAFETY: the stand-in is loaded (chosen above), so NOLOAD finds it, and it exports the
    // symbol with this signature (emulator/driver.cpp), which writes at most `buf.len()` bytes.
    let text = unsafe {
        let h = dlopen(c"libcuda.so".as_ptr(), RTLD_NOW | RTLD_NOLOAD);
        if h.is_null() {
            return None;
        }
        let f = dlsym(h, c"alphanet_emulator_calls".as_ptr());
        // A few dozen entry points: far below 64 KiB.
        let mut buf = vec![0u8; 1 << 16];
        let n = match f.is_null() {
            true => 0,
            false => {
                std::mem::transmute::<*mut c_void, Calls>(f)(buf.as_mut_ptr().cast(), buf.len())
            }
        };
        dlclose(h);
        buf.truncate(if n < buf.len() { n } else { 0 });
        String::from_utf8_lossy(&buf).into_owned()
    };
    Some(
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(name, n)| Some((name.to_string(), n.parse().ok()?)))
            .collect(),
    )
}

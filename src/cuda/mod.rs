//! CUDA backend (docs/engine.md): choosing the device (`--device auto|cpu|cuda:K`), the driver context
//! with every kernel of `kernels/` loaded, and one typed launch wrapper per kernel taking the
//! same arguments, in the same order, as the CPU reference op; and the GPU as a
//! [`crate::device::Device`], on which the one model code trains and predicts.
//!
//! Everything goes through cudarc's dynamic loading: the crate builds and runs without CUDA,
//! and every failure to find a driver, a GPU or NVRTC is a message, never a panic.
//! `ALPHANET_CUDA=emulator` swaps the driver for the CPU stand-in built from `emulator/`
//! (docs/cuda_emulator.md), which runs every kernel on the CPU with memory and barrier checks.

mod context;
mod device;
mod emulator;
pub mod host_maths;
mod kernel_times;
mod launch;
mod params;
mod pictures;
mod pool;

use std::fmt;
use std::str::FromStr;

pub use context::{
    compile_nvrtc, nvrtc_available, open_for_tests, probe, DeviceInfo, Gpu, Kernel, KernelModule,
    MODULES, PTXAS_REPORT,
};
pub use cudarc::driver::CudaSlice;
pub use emulator::driver_calls;
pub use kernel_times::KernelTime;
pub use launch::{DeviceFeatureSpec, MAX_STYLES};
pub use params::GpuParams;
pub use pool::{block_bytes, PoolStats, Pooled};

use crate::error::{Error, Result};

/// The `--device` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first GPU when one is usable, else the CPU.
    Auto,
    Cpu,
    /// GPU number K (`cuda:K`; plain `cuda` is `cuda:0`).
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            let flag = if PYTHON_WORDING.load(std::sync::atomic::Ordering::Relaxed) {
                "device="
            } else {
                "--device "
            };
            Error::Config(format!(
                "{flag}{s:?}: expected auto, cpu, cuda or cuda:K (K a GPU index, e.g. cuda:0)"
            ))
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|k| k.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(k) => write!(f, "cuda:{k}"),
        }
    }
}

/// Where the engine runs.
pub enum Backend {
    Cpu,
    Cuda(Box<Gpu>),
}

/// The last device line [`Backend::open`] printed.
static SAID: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
/// Whether messages name the device as Python's keyword (`device="auto"`) or the CLI flag.
static PYTHON_WORDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Words device messages for Python (`device="auto"` instead of `--device auto`); the Python
/// package calls it when it loads.
pub fn word_for_python() {
    PYTHON_WORDING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// How the user chose `choice`: `--device auto`, or `device="auto"` in Python.
pub fn device_flag(choice: DeviceChoice) -> String {
    if PYTHON_WORDING.load(std::sync::atomic::Ordering::Relaxed) {
        format!("device=\"{choice}\"")
    } else {
        format!("--device {choice}")
    }
}

impl Backend {
    /// Opens the chosen device. `auto` falls back to the CPU and returns why in the note (for the
    /// caller to print once); an explicit `cuda:K` that cannot be used is an error saying why.
    pub fn select(choice: DeviceChoice) -> Result<(Backend, Option<String>)> {
        match choice {
            DeviceChoice::Cpu => Ok((Backend::Cpu, None)),
            DeviceChoice::Cuda(k) => Ok((Backend::Cuda(Box::new(Gpu::new(k)?)), None)),
            DeviceChoice::Auto => {
                // A misspelt ALPHANET_CUDA is an error, not a reason to fall back to the CPU.
                emulator::emulator_requested().map_err(Error::Cuda)?;
                match Gpu::new(0) {
                    Ok(gpu) => Ok((Backend::Cuda(Box::new(gpu)), None)),
                    Err(e) => Ok((Backend::Cpu, Some(format!("{e}; running on the CPU")))),
                }
            }
        }
    }

    /// Opens the device of a command's `--device` flag and says on stderr which one runs (for
    /// `auto` without a usable GPU, also why); an explicit `cuda:K` that cannot be used is an
    /// error that names the flag.
    pub fn open(choice: DeviceChoice) -> Result<Backend> {
        let flag = device_flag(choice);
        let (backend, note) = Backend::select(choice).map_err(|e| match e {
            Error::Cuda(m) => Error::Cuda(format!("{flag} cannot be used: {m}")),
            e => e,
        })?;
        // Said once per process: a Python session opens the device for every call.
        let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
        let line = format!("device: {}", backend.describe());
        if said.as_deref() != Some(line.as_str()) {
            if let Some(n) = note {
                eprintln!("note: {flag}: {n}");
            }
            eprintln!("{line}");
            *said = Some(line);
        }
        Ok(backend)
    }

    /// The device, its driver, and where its kernels came from (fatbin or NVRTC).
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
            Backend::Cuda(gpu) => format!("{} (kernels: {})", gpu.info, gpu.kernels_from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choice_parses_and_rejects() {
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!(
            "cuda:3".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(3)
        );
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", ""] {
            let e = bad.parse::<DeviceChoice>().unwrap_err().to_string();
            assert!(e.contains("expected auto, cpu"), "{bad}: {e}");
        }
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn auto_never_fails() {
        // Without a GPU this falls back to the CPU with a reason; with one it opens it.
        let (backend, note) = Backend::select(DeviceChoice::Auto).unwrap();
        match backend {
            Backend::Cpu => assert!(note.is_some()),
            Backend::Cuda(_) => assert!(note.is_none()),
        }
    }
}
